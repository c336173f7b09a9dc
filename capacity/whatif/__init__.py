"""The questions a planner asks — ceiling, size, check, compare, sweep, explain — answered
as typed result objects with ``to_dict()``; rendering is elsewhere."""
