"""A module imported on first use, for names a module needs only on its heavier paths."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for module ``name`` under ``alias`` in the ``namespace`` (a module's
    globals) until an attribute is first read: then imports it and puts the real module
    in its place, so later lookups cost nothing extra.

    Used as ``np = LazyModule("numpy", globals(), "np")`` in the ``else`` branch of an
    ``if TYPE_CHECKING: import numpy as np`` (type checkers see the real module).
    """

    def __init__(self, name: str, namespace: dict[str, Any], alias: str) -> None:
        self._name, self._namespace, self._alias = name, namespace, alias

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        self._namespace[self._alias] = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
