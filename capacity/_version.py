"""The installed distribution's version (one place; modules import it from here, not from the
package root, so that importing any module never imports the whole package)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# The name on the package index ("capacity" there is an unrelated project); the import
# package and the command are both `capacity`.
DISTRIBUTION = "llm-capacity"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
