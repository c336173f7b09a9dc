"""Rendering of result objects: rich tables, JSON, CSV (the only layer, with ``cli``, that
imports rich)."""
