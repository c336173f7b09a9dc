"""Where numba caches the compiled simulator: imported before numba by ``kernels``.

numba caches next to the source (``capacity/sim/__pycache__``) or under the user's cache
directory. A read-only install (a system site-packages, a container image) run by a user
without a writable home has neither, and numba then refuses to compile at all ("cannot
cache function ...: no locator available"). Here, only in that case, ``NUMBA_CACHE_DIR``
is pointed at a per-user directory that is writable: ``$XDG_CACHE_HOME`` or
``~/.cache`` when they can be created, else one in the system temporary directory owned
by this user (mode 0700), else a fresh temporary directory for this process.

A ``NUMBA_CACHE_DIR`` set by the user always wins.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _writable_dir(path: Path) -> bool:
    """True when ``path`` exists (or can be created) and a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError:
        return False
    return True


def _own_private_dir(path: Path) -> bool:
    """A directory in a shared place: usable only if this user owns it and nobody else
    can write to it (another user could otherwise plant machine code for us to load)."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.stat()
    except OSError:
        return False
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        return False
    return _writable_dir(path)


def choose_cache_dir() -> Path | None:
    """The directory to give numba, or None when numba's own choice works."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if os.access(_PKG, os.W_OK) and _writable_dir(_PKG / "__pycache__"):
        return None  # numba's in-tree cache works
    home = os.environ.get("XDG_CACHE_HOME") or (
        str(Path.home() / ".cache") if os.environ.get("HOME") else "")
    if home and _writable_dir(Path(home) / "capacity" / "numba"):
        return Path(home) / "capacity" / "numba"
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    shared = Path(tempfile.gettempdir()) / f"capacity-numba-{uid}"
    if _own_private_dir(shared):
        return shared
    return Path(tempfile.mkdtemp(prefix="capacity-numba-"))


def configure() -> None:
    """Set ``NUMBA_CACHE_DIR`` if numba's default cache locations are not writable."""
    chosen = choose_cache_dir()
    if chosen is None:
        return
    os.environ["NUMBA_CACHE_DIR"] = str(chosen)
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba already imported: its config was read from the env
        config.CACHE_DIR = str(chosen)  # type: ignore[attr-defined]


def cache_is_warm() -> bool:
    """True when compiled kernels from an earlier run are on disk (a heuristic for the
    progress display: a cold cache means the next simulation compiles first)."""
    where = os.environ.get("NUMBA_CACHE_DIR")
    roots = [Path(where)] if where else [_PKG / "__pycache__"]
    if not where:
        home = os.environ.get("XDG_CACHE_HOME") or (
            str(Path.home() / ".cache") if os.environ.get("HOME") else "")
        if home:
            roots.append(Path(home) / "numba")
    for root in roots:
        try:
            if next(root.rglob("kernels.*.nbi"), None) is not None:
                return True
        except OSError:
            continue
    return False


configure()
