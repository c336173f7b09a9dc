"""The console entry point (``capacity`` and ``python -m capacity``).

``capacity --version`` is answered here, before the CLI is imported: loading the CLI
(typer, rich, pydantic and the command declarations) costs about 0.3 s of CPU for a line
of text. Everything else goes to :func:`capacity.cli.app.main`.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Run the CLI; ``--version`` alone is printed without loading it."""
    if sys.argv[1:] == ["--version"]:
        from capacity._version import __version__

        # The same line as the CLI's own --version option.
        sys.stdout.write(f"capacity {__version__}\n")
        return
    # Importing the CLI creates a few hundred thousand objects that live as long as the
    # process (classes, pydantic schemas, typing objects) and next to no garbage, so the
    # cyclic collector's passes over them are pure cost (~0.03 s of CPU): it is paused
    # for the import, then those objects are moved out of its sight (gc.freeze).
    gc.disable()
    try:
        from capacity.cli.app import main as app_main
    finally:
        gc.freeze()
        gc.enable()
    try:
        app_main()
    finally:
        # At exit the interpreter runs full collections over every object still alive
        # before it tears the modules down (~0.07 s of CPU after a `ceiling`); frozen
        # objects are skipped. Results are written and files closed by now.
        gc.freeze()
