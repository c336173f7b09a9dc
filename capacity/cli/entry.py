"""The console entry point (``capacity`` and ``python -m capacity``).

``capacity --version`` is answered here, before the CLI is imported: loading the CLI
(typer, rich, pydantic and the command declarations) costs about 0.3 s of CPU for a line
of text. Everything else goes to :func:`capacity.cli.app.main`.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the CLI; ``--version`` alone is printed without loading it."""
    if sys.argv[1:] == ["--version"]:
        from capacity._version import __version__

        # The same line as the CLI's own --version option.
        sys.stdout.write(f"capacity {__version__}\n")
        return
    from capacity.cli.app import main as app_main

    app_main()
