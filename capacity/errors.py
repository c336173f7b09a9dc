"""One exception family for everything the user can fix."""

from __future__ import annotations


class CapacityError(Exception):
    """Base class: an error the user can fix (bad input, impossible request)."""


class ProfileError(CapacityError, ValueError):
    """A profile (file, overlay or ``--set`` override) is malformed or impossible.

    The message is a single line naming the source, line, key path, value and rule.
    """

    def __init__(self, message: str, *, source: str = "", line: int | None = None,
                 path: str = "") -> None:
        self.source = source
        self.line = line
        self.path = path
        self.rule = message
        where = source
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        prefix = ": ".join(p for p in (where, path) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
