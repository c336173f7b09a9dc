"""A writable directory for numba's on-disk cache, even from a read-only install.

numba caches compiled kernels beside their source (``__pycache__``) and falls back to
the user's cache directory; a read-only site-packages with no home directory has
neither, and every simulation failed ("cannot cache function ... no locator
available"). Imported first by :mod:`capacity.sim.kernels`: when the package directory
is not writable and ``NUMBA_CACHE_DIR`` is unset, point numba at a per-user directory
under the system's temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent

if "NUMBA_CACHE_DIR" not in os.environ and not os.access(_HERE, os.W_OK):
    _dir = Path(tempfile.gettempdir()) / f"capacity-numba-cache-{os.getuid()}"
    _dir.mkdir(mode=0o700, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(_dir)
