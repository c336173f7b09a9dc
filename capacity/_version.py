"""The distribution's version (one place: pyproject.toml reads it from here at build time,
and modules import it from here, not from the package root, so that importing any module
never imports the whole package).

A literal rather than ``importlib.metadata.version()``: reading the installed metadata
costs ~16 ms of CPU (importlib.metadata and the email parser) in every command, on a
start-up that is measured in tens of milliseconds. tests/test_cli.py checks that the
installed metadata says the same.
"""

from __future__ import annotations

# The name on the package index ("capacity" there is an unrelated project); the import
# package and the command are both `capacity`.
DISTRIBUTION = "llm-capacity"

__version__ = "0.1.0"
