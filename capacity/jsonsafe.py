"""JSON-safe values: results print non-finite numbers as ``null`` (strict JSON has no NaN)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, overload


def json_kind(v: Any) -> str:
    """What a parsed JSON/YAML value is, for an error: 'null', 'a boolean', 'a number',
    'a string', 'an array', 'an object' (YAML's dates: 'a date')."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, date):
        return "a date"
    return type(v).__name__


def as_written(v: Any) -> str:
    """A scalar for an error, as the file wrote it: ``repr`` but YAML's dates and times
    in ISO form (``2024-01-01``, not ``datetime.date(2024, 1, 1)``)."""
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    return repr(v)


def finite(x: float | None) -> float | None:
    """``x`` as a float, or None when it is None, NaN or infinite."""
    if x is None:
        return None
    return float(x) if math.isfinite(x) else None


@overload
def clean(obj: dict[str, Any]) -> dict[str, Any]: ...


@overload
def clean(obj: list[Any] | tuple[Any, ...]) -> list[Any]: ...


@overload
def clean(obj: float) -> float | None: ...


def clean(obj: Any) -> Any:
    """A copy of nested dicts/lists/tuples with every float passed through :func:`finite`."""
    if isinstance(obj, float):
        return finite(obj)
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj
