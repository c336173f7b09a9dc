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


_NO_VALUE = object()


class ParameterError(CapacityError, ValueError):
    """An argument out of its domain, named as the library's parameter (``sessions``,
    ``replications``), never as a command-line flag; the CLI shows :meth:`as_option`.

    Attributes
    ----------
    param : the parameter's name (underscores are dashes on the command line).
    rule : what is wrong, in words.
    value : the offending value, when there is one to show.
    """

    def __init__(self, param: str, rule: str, value: object = _NO_VALUE) -> None:
        self.param = param
        self.rule = rule
        self.value = value
        super().__init__(self._text(param))

    def _text(self, name: str) -> str:
        shown = name if self.value is _NO_VALUE else f"{name} {self.value!r}"
        return f"{shown}: {self.rule}"

    def as_option(self) -> str:
        """The message as a command-line user reads it: ``--sessions '0:5': …``."""
        return self._text("--" + self.param.replace("_", "-"))
