"""Profiles and what-if overlays shipped inside the package (``capacity/data``).

A user who installed the package without the repository starts from these:
``capacity profiles`` lists them, ``capacity init NAME`` copies one (comments included) to
edit, and every command accepts a shipped name where a path is expected, when no file of
that name exists (``capacity ceiling web-research``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from capacity.errors import CapacityError

KINDS = ("profiles", "overlays")
_DESCRIPTION = re.compile(r"^description:\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Shipped:
    """One shipped YAML file: its name (the file stem), kind and one-line description."""

    name: str
    kind: str
    description: str
    resource: Traversable

    def text(self) -> str:
        """The file's text, comments included."""
        return self.resource.read_text(encoding="utf-8")


def _describe(text: str) -> str:
    m = _DESCRIPTION.search(text)
    if m:
        return m.group(1).strip("'\"")
    # An overlay: its first comment paragraph says what it does; keep its first clause.
    lines = []
    for line in text.splitlines():
        if not line.startswith("#") or not line.strip("# "):
            break
        lines.append(line.strip("# "))
    words = " ".join(lines).removeprefix("What-if: ")
    return re.split(r"(?<=[.;:])\s|\s\(", words, maxsplit=1)[0].rstrip(".;:")


def shipped() -> list[Shipped]:
    """Every shipped profile, then every overlay, by name."""
    root = files("capacity") / "data"
    out = []
    for kind in KINDS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml"):
                out.append(Shipped(entry.name.removesuffix(".yaml"), kind[:-1],
                                   _describe(entry.read_text(encoding="utf-8")), entry))
    return out


def find(name: str) -> Shipped | None:
    """The shipped profile or overlay called ``name`` (with or without ``.yaml``)."""
    stem = name.removesuffix(".yaml")
    return next((s for s in shipped() if s.name == stem), None)


def _exists(text: str) -> bool:
    """Whether a file of that name exists; a name the OS refuses (too long, a NUL byte)
    does not — the loader then says why in one line."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False


def resolve(path: str | Path) -> str | Path:
    """``path`` itself when such a file exists (or it is ``-``), else the shipped file of
    that name; unchanged when neither exists (the loader then says "no such file")."""
    text = str(path)
    if text == "-" or "/" in text or "\\" in text or _exists(text):
        return path
    found = find(text)
    if found is None:
        return path
    return Path(str(found.resource))


_BASE = re.compile(r"^#.*\bMerge over profiles/([\w.-]+)\.yaml", re.MULTILINE)


def overlay_base(name: str) -> str | None:
    """The profile a shipped overlay is merged over (its comment's ``Merge over
    profiles/NAME.yaml``; ``PROFILE`` when it names none); None for a profile."""
    found = find(name)
    if found is None or found.kind != "overlay":
        return None
    m = _BASE.search(found.text())
    return m.group(1) if m else "PROFILE"


def names() -> list[str]:
    """Names of every shipped profile and overlay."""
    return [s.name for s in shipped()]


def text_of(name: str) -> str:
    """The commented text of the shipped ``name``; :class:`CapacityError` if unknown."""
    found = find(name)
    if found is None:
        raise CapacityError(f"no shipped profile {name!r}; shipped: {', '.join(names())}")
    return found.text()


def copy_to(name: str, dest: Path, *, force: bool = False) -> Path:
    """Write the shipped ``name`` to ``dest`` (a file, or a directory to put NAME.yaml in).

    Raises :class:`CapacityError` for an unknown name or an existing file (unless
    ``force``).
    """
    found = find(name)
    if found is None:
        known = ", ".join(names())
        raise CapacityError(f"no shipped profile {name!r}; shipped: {known}")
    target = dest / f"{found.name}.yaml" if dest.is_dir() else dest
    if target.exists() and not force:
        raise CapacityError(f"{target}: already exists (use --force to overwrite)")
    try:
        target.write_text(found.text(), encoding="utf-8")
    except OSError as e:
        raise CapacityError(f"{target}: cannot write: {e.strerror or e}") from None
    return target
