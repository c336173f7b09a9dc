"""The console entry point (``capacity`` and ``python -m capacity``).

``capacity --version`` is answered here, before the CLI is imported: loading the CLI
(typer, rich, pydantic and the command declarations) costs about 0.3 s of CPU for a line
of text. Everything else goes to :func:`capacity.cli.app.main`.
"""

from __future__ import annotations

import errno
import gc
import os
import sys

# Variables by which a user chooses OpenBLAS's thread count (read when numpy loads it).
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def drop_stdout() -> None:
    """Point standard output at the null device: what is still buffered, flushed at exit,
    would raise again (Python's 'Exception ignored' and exit 120). Here, not in
    :mod:`capacity.cli.common`, so that ``--version`` shares it without loading the CLI."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.__stdout__.fileno() if sys.__stdout__ is not None else 1)
        os.close(fd)
    except (OSError, ValueError):
        pass


def one_blas_thread() -> None:
    """Ask numpy's OpenBLAS (when it loads) for one thread, unless the user chose a count.

    numpy's OpenBLAS starts a thread per core as it loads, and those threads spin
    between calls: ~0.05 s of CPU per command here (2 cores), seconds on a fleet's
    analytic answer. The models' matrix products are small and the simulator runs its
    own threads, so one BLAS thread is all a command needs."""
    if not any(v in os.environ for v in _BLAS_THREAD_VARS):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def main() -> None:
    """Run the CLI; ``--version`` alone is printed without loading it."""
    if sys.argv[1:] == ["--version"]:
        from capacity._version import __version__

        if sys.stdout is None:  # started with stdout closed (>&-): nothing to write to,
            return  # as every other command then
        # The same line as the CLI's own --version option.
        try:
            sys.stdout.write(f"capacity {__version__}\n")
            sys.stdout.flush()
        except OSError as e:  # as the CLI says it (capacity.cli.app.main), without rich
            drop_stdout()
            if e.errno == errno.EPIPE:
                sys.exit(141)
            sys.stderr.write(f"error: standard output: cannot write: {e.strerror or e}\n")
            sys.exit(2)
        return
    one_blas_thread()
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
