"""Load profiles from YAML: merge overlays, apply ``--set`` overrides, validate once.

Every failure becomes a one-line :class:`~capacity.errors.ProfileError` naming the file,
the line and the key path, e.g.::

    profiles/web.yaml:14: quotas.azure.rpm: must be > 0, got 0

Input limits (checked before any work is done on the input, so hostile input fails fast):

* a profile is a regular file of at most :data:`MAX_PROFILE_BYTES` (1 MiB, hundreds of
  times any real profile): devices (``/dev/zero``), FIFOs, sockets and directories are
  refused without being read;
* at most :data:`MAX_EXPANDED_NODES` YAML nodes after alias expansion (alias bombs), nested
  at most :data:`MAX_DEPTH` levels (also through aliases), no recursive aliases.

YAML is read with YAML 1.2 numbers: ``1e6`` is the number 10⁶ (YAML 1.1 would read it as
a string), wherever it is written.

Merging (overlays, then ``--set``): mappings merge key by key; anything else replaces.
Four values are replaced whole even when written as mappings: a distribution, a step
whose kind changes, an enforcement whose type changes, and a list. A limit written as a
plain number is shorthand for ``{limit: N}``: a number restated over a
``{limit, enforcement}`` mapping changes the limit only, so restating a value never
changes what it means. A ``--set`` whose value is
a mapping merges like an overlay; ``null`` removes a key.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from capacity.errors import ProfileError
from capacity.jsonsafe import as_written, json_kind
from capacity.profile.presets import same_span_field
from capacity.profile.schema import DIMENSIONS, PathT, Profile, check_references

MAX_PROFILE_BYTES = 1 << 20
"""Largest profile file read (1 MiB); larger files are refused before parsing."""
MAX_EXPANDED_NODES = 100_000
"""YAML nodes allowed in one document, aliases expanded: far above any real profile, far
below what an alias bomb ("billion laughs") expands to."""
MAX_DEPTH = 64
"""Deepest nesting of YAML collections (a real profile nests about 15 levels)."""

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """YAML's safe loader (libyaml when available) reading numbers as YAML 1.2 does."""


# Numbers as YAML 1.2's core schema reads them (digit-separating underscores kept). YAML 1.1
# reads `1e6` (no dot, unsigned exponent) as a string, and reads `0226` as octal (150),
# `2:30` in base 60 (150) and `0b10010110` in binary (150): a limit silently other than the
# one written. YAML 1.2 reads 0226 as 226, 0o226 as octal, and 2:30 or 0b1 as strings
# (which the schema then refuses in one line).
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag not in _NUMBER_TAGS]
    for ch, rs in _BaseLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(  # before float: a plain integer is an int
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _yaml12_int(loader: Any, node: Any) -> int:
    """An int as YAML 1.2 reads it: decimal (leading zeros too), ``0o`` octal, ``0x`` hex."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)


_Loader.add_constructor("tag:yaml.org,2002:int", _yaml12_int)

_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.AliasEvent, *_OPEN)


class _Located:
    """Where each key path came from: source name and line (1-based)."""

    def __init__(self) -> None:
        self.where: dict[PathT, tuple[str, int | None]] = {}

    def lookup(self, path: Sequence[str | int]) -> tuple[str, int | None]:
        p = tuple(path)
        while True:
            if p in self.where:
                return self.where[p]
            if not p:
                return "", None
            p = p[:-1]

    def drop_under(self, path: PathT) -> None:
        """Forget every location strictly below ``path`` (its value was replaced)."""
        n = len(path)
        for p in [p for p in self.where if len(p) > n and p[:n] == path]:
            del self.where[p]


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _yaml_error(e: Exception, source: str) -> ProfileError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or (str(e).splitlines() or ["unreadable"])[0]
    context = getattr(e, "context", None)
    what = f"{context}: {problem}" if context else problem
    return ProfileError(f"invalid YAML: {' '.join(str(what).split())}", source=source,
                        line=_line(mark))


def read_profile_text(path: str | Path, source: str | None = None) -> str:
    """The text of a profile file, refusing anything but a regular file of at most
    :data:`MAX_PROFILE_BYTES` (a device or FIFO is never read, so it cannot block)."""
    source = str(path) if source is None else source
    # O_NONBLOCK: opening a FIFO with no writer must not hang; it is refused below.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ProfileError("no such file", source=source) from None
    except IsADirectoryError:
        raise ProfileError("is a directory, not a profile file", source=source) from None
    except (OSError, ValueError) as e:
        raise ProfileError(f"cannot read: {getattr(e, 'strerror', None) or e}",
                           source=source) from None
    chunks: list[bytes] = []
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ProfileError("is a directory, not a profile file", source=source)
        if not stat.S_ISREG(st.st_mode):
            raise ProfileError("not a regular file (a device, FIFO or socket); save the "
                               "profile to a file and pass that", source=source)
        total = 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_PROFILE_BYTES:
                raise ProfileError(f"file is larger than {MAX_PROFILE_BYTES:,} bytes (1 MiB), "
                                   "far larger than any profile", source=source)
            chunks.append(chunk)
    except OSError as e:
        raise ProfileError(f"cannot read: {e.strerror or e}", source=source) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ProfileError(f"not UTF-8 text (byte {e.start})", source=source,
                           line=line) from None


def _check_events(text: str, source: str) -> None:
    """Refuse over-large or over-deep documents from the event stream, before any tree is
    built (libyaml's event parser is iterative; composing a deep tree recurses)."""
    depth = nodes = 0
    try:
        for ev in yaml.parse(text, Loader=_Loader):
            if isinstance(ev, _NODE_EVENTS):
                nodes += 1
                if nodes > MAX_EXPANDED_NODES:
                    raise ProfileError(
                        f"more than {MAX_EXPANDED_NODES:,} YAML nodes; a profile has a few "
                        "hundred", source=source, line=_line(ev.start_mark))
            if isinstance(ev, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ProfileError(
                        f"nested more than {MAX_DEPTH} levels deep; a profile needs about 15",
                        source=source, line=_line(ev.start_mark))
            elif isinstance(ev, _CLOSE):
                depth -= 1
    except yaml.YAMLError as e:
        raise _yaml_error(e, source) from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for kv in node.value for n in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_graph(root: yaml.Node, source: str) -> None:
    """Size and depth of the document with aliases expanded, computed on the alias graph
    without expanding it (iteratively: no recursion on hostile input)."""
    memo: dict[int, tuple[int, int]] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            kids = _children(node)
            size = 1 + sum(memo[id(k)][0] for k in kids)
            depth = 1 + max((memo[id(k)][1] for k in kids), default=0)
            active.discard(key)
            if size > MAX_EXPANDED_NODES:
                raise ProfileError(
                    f"document expands to more than {MAX_EXPANDED_NODES:,} nodes (YAML "
                    "alias bomb?)", source=source, line=_line(node.start_mark))
            if depth > MAX_DEPTH:
                raise ProfileError(
                    f"aliases nest more than {MAX_DEPTH} levels deep", source=source,
                    line=_line(node.start_mark))
            memo[key] = (size, depth)
            continue
        if key in memo:
            continue
        if key in active:
            raise ProfileError("recursive YAML alias (a value that contains itself)",
                               source=source, line=_line(node.start_mark))
        active.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in memo)


def _record(node: yaml.Node, path: PathT, source: str, loc: _Located) -> None:
    """Record the line of every key path; reject duplicate keys (depth and size are
    already bounded by :func:`_check_graph`)."""
    loc.where.setdefault(path, (source, node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            if key == "<<":
                _record(v, path, source, loc)
                continue
            if key in seen:
                # YAML would silently keep the last one: a silently wrong profile.
                raise ProfileError(
                    f"duplicate key {key!r} (first defined at line {seen[key]})",
                    source=source, line=k.start_mark.line + 1,
                    path=_format_loc((*path, key)))
            seen[key] = k.start_mark.line + 1
            key_path = (*path, key)
            loc.where[key_path] = (source, k.start_mark.line + 1)
            _record(v, key_path, source, loc)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _record(v, (*path, i), source, loc)


def _load_yaml(text: str, source: str, loc: _Located | None) -> Any:
    """Parse one YAML document within the input limits; ``None`` for an empty one."""
    _check_events(text, source)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node, source)
        if loc is not None:
            _record(node, (), source, loc)
        return loader.construct_document(node)
    except ProfileError:
        raise
    except yaml.YAMLError as e:  # e.g. a python/object tag, an unhashable (complex) key
        raise _yaml_error(e, source) from None
    except (ValueError, TypeError, OverflowError) as e:
        # e.g. an integer of more digits than Python converts, an impossible date
        msg = " ".join(str(e).split()) or type(e).__name__
        digits = re.search(r"value has (\d+) digits", msg)
        if digits:  # not Python's advice (sys.set_int_max_str_digits) to a profile's author
            msg = f"a number of {int(digits.group(1)):,} digits"
        where = _unreadable_scalar(node)
        raise ProfileError(f"invalid YAML value: {msg}", source=source,
                           line=where[0] if where else None,
                           path=_format_loc(where[1]) if where else "") from None
    finally:
        loader.dispose()


def _unreadable_scalar(root: yaml.Node) -> tuple[int, PathT] | None:
    """(line, key path) of the first scalar under ``root`` YAML cannot turn into a value
    (the document's construction failed somewhere, and says not where)."""
    loader = _Loader("")  # a fresh one: the failed construction left its state behind
    stack: list[tuple[yaml.Node, PathT]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node)
            except (ValueError, TypeError, OverflowError):
                return node.start_mark.line + 1, path
        elif isinstance(node, yaml.MappingNode):
            for k, v in reversed(node.value):
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
                stack += [(v, (*path, key)), (k, path)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(v, (*path, i)) for i, v in reversed(list(enumerate(node.value)))]
    return None


def _parse_yaml(text: str, source: str, loc: _Located) -> dict[str, Any]:
    data = _load_yaml(text, source, loc)
    if data is None:
        raise ProfileError("file is empty; a profile needs models, quotas and session",
                           source=source)
    if not isinstance(data, dict):
        raise ProfileError(
            f"a profile is a mapping of keys (models, quotas, session, ...), got "
            f"{type(data).__name__}", source=source, line=loc.lookup(())[1])
    for key in data:
        if not isinstance(key, str):
            raise ProfileError(_not_a_string("a name", key), source=source,
                               line=loc.lookup((str(key),))[1])
    return data


def _not_a_string(what: str, value: Any) -> str:
    """Why a scalar YAML typed (``no`` is false, ``2024`` a number, ``2024-01-01`` a date)
    is not the string the profile wanted, with the value as written and the cure."""
    shown = ("yes/true/on" if value is True else "no/false/off" if value is False
             else "null/~" if value is None
             else value.isoformat() if isinstance(value, date) else str(value))
    return f"{what} YAML reads as {json_kind(value)} ({shown}), not a string; quote it"


_DIST_KINDS = {"fixed", "uniform", "exponential", "lognormal", "choice"}
_STEP_KINDS = ("call", "parallel", "optional", "repeat")


def _is_dist(value: Any) -> bool:
    """A distribution written as a mapping ({uniform: [...]}, {lognormal: {...}}, ...)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _DIST_KINDS


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def _is_limit_path(path: PathT) -> bool:
    return len(path) == 3 and path[0] == "quotas" and path[2] in DIMENSIONS


def _is_step_path(path: PathT) -> bool:
    return (len(path) >= 5 and path[:2] == ("session", "turns") and path[-2] == "steps"
            and isinstance(path[-1], int))


def _is_enforcement_path(path: PathT) -> bool:
    return len(path) in (3, 4) and path[0] == "quotas" and path[-1] == "enforcement"


def _step_kind(value: Any) -> str | None:
    kinds = [k for k in _STEP_KINDS if isinstance(value, dict) and k in value]
    return kinds[0] if len(kinds) == 1 else None


def _merge(base: Any, over: Any, path: PathT, loc: _Located, over_loc: _Located) -> Any:
    """``over`` merged into ``base`` at ``path`` (see the module docstring).

    ``loc`` holds the locations of ``base`` and forgets those of replaced subtrees;
    ``over_loc`` (the overlay's locations) is adjusted where a shorthand is expanded.
    """
    if _is_limit_path(path):
        if isinstance(base, dict) and _is_number(over):
            # `tpm: 800000` over `tpm: {limit: 800000, enforcement: ..}`: the limit only.
            if path in over_loc.where:
                over_loc.where[(*path, "limit")] = over_loc.where[path]
            over = {"limit": over}
        elif _is_number(base) and isinstance(over, dict):
            if path in loc.where:
                loc.where.setdefault((*path, "limit"), loc.where[path])
            base = {"limit": base}
    replace = _is_dist(base) or _is_dist(over) or not (
        isinstance(base, dict) and isinstance(over, dict))
    if not replace and _is_step_path(path):
        replace = _step_kind(over) is not None and _step_kind(over) != _step_kind(base)
    if not replace and _is_enforcement_path(path):
        # A type across the bucket / window divide reads other fields (a window's `window`
        # kept on a bucket was ignored); fixed <-> sliding keeps the window's length.
        replace = "type" in over and not same_span_field(
            over.get("type"), base.get("type", "fixed_window"))
    if replace:
        loc.drop_under(path)
        return over
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v, (*path, k), loc, over_loc) if k in base else v
    return out


class Override(str):
    """A ``key.path=value`` override given by another flag than ``--set``, which messages
    name instead (``Override("x=1", "--scenario a:")`` is "--scenario a:x=1")."""

    flag: str

    def __new__(cls, text: str, flag: str) -> Override:
        out = super().__new__(cls, text)
        out.flag = flag
        return out


def _flag_name(text: str) -> str:
    """The flag an override came by: ``--set`` or, say, ``--scenario a``."""
    return getattr(text, "flag", "--set ").rstrip(" :")


def _from_flag(source: str) -> bool:
    """Whether an error's source is an override (``--set ...``, ``--scenario NAME:...``)."""
    return source.startswith(("--set ", "--scenario "))


def _flag(text: str) -> str:
    """How a ``--set`` is named in messages (long values cut, so errors stay one line)."""
    prefix = getattr(text, "flag", "--set ")
    text = " ".join(text.split())
    return f"{prefix}{text if len(text) <= 100 else text[:97] + '...'}"


def _parse_value(raw: str, text: str) -> Any:
    """The YAML value of a ``--set`` (plain text when it is not valid YAML)."""
    if not raw.strip():
        # It read as null, which drops an optional key: `rpm=$RPM` with RPM unset removed
        # the limit and raised the ceiling without a word.
        raise ProfileError(f"{_flag(text)}: empty value; write null to remove the key")
    try:
        return _load_yaml(raw, _flag(text), None)
    except ProfileError as e:
        if e.rule.startswith("invalid YAML:"):
            return raw
        raise


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Split ``key.path=value`` into a key path and a YAML-typed value."""
    if "=" not in text:
        raise ProfileError(f"{_flag(text)}: expected key.path=value")
    key, _, raw = text.partition("=")
    parts: list[str | int] = []
    for part in key.strip().split("."):
        if not part:
            raise ProfileError(f"{_flag(text)}: empty key in path {key!r}")
        # Digits index lists; inside a mapping they are turned back into a key (below).
        parts.append(int(part) if part.isdigit() and len(part) < 10 else part)
    return parts, _parse_value(raw, text)


def _walk_paths(value: Any, path: PathT) -> Iterable[PathT]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_paths(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_paths(v, (*path, i))


def _join_dotted_keys(data: Any, parts: list[str | int]) -> list[str | int]:
    """``parts`` with runs that spell an existing key containing dots joined again:
    ``models.gpt-4.1.ttft`` is ``models → gpt-4.1 → ttft`` when the profile has a model
    ``gpt-4.1`` (the longest existing key wins; other paths are unchanged)."""
    out: list[str | int] = []
    node, i = data, 0
    while i < len(parts):
        part = parts[i]
        if isinstance(node, dict) and str(part) not in node:
            for j in range(len(parts), i + 1, -1):
                joined = ".".join(map(str, parts[i:j]))
                if joined in node:
                    part, i = joined, j - 1
                    break
        out.append(part)
        i += 1
        if isinstance(node, dict):
            node = node.get(str(part))
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return out


def _apply_override(data: dict[str, Any], parts: list[str | int], value: Any,
                    text: str, loc: _Located
                    ) -> list[tuple[tuple[str | int, ...], str, list[str]]]:
    """Set one value; returns the mappings it had to create, each with the existing key
    its name is close to ("" if none) and the keys beside it, so a failed validation can
    suggest the typo.

    The value is merged like an overlay; every key path inside it is blamed on the flag.
    """
    created: list[tuple[tuple[str | int, ...], str, list[str]]] = []
    source = _flag(text)
    parts[:] = _join_dotted_keys(data, parts)
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        here = ".".join(map(str, parts[: i + 1]))
        if isinstance(node, dict) and isinstance(part, int):
            part = str(part)
            parts[i] = part
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise ProfileError(f"{_flag(text)}: {here}: no such list index "
                                   f"(the list has {len(node)} items)")
            node = node[part]
        elif isinstance(node, dict):
            if _is_limit_path(tuple(parts[: i + 1])) and _is_number(node.get(part)):
                # `quotas.q.tpm.limit=X` (or `.enforcement.window=..`) works whether tpm
                # was written as a number or a mapping: the number is `{limit: N}`.
                if tuple(parts[: i + 1]) in loc.where:
                    loc.where.setdefault((*parts[: i + 1], "limit"),
                                         loc.where[tuple(parts[: i + 1])])
                node[part] = {"limit": node[part]}
            if part not in node or node[part] is None:
                # Creating a mapping is allowed (a new quota, a new dimension); whether it
                # was a typo is for validation to say — then with this suggestion.
                if part not in node:
                    close = difflib.get_close_matches(str(part), [str(k) for k in node],
                                                      n=1)
                    created.append((tuple(parts[: i + 1]), close[0] if close else "",
                                    [str(k) for k in node]))
                    loc.where[tuple(parts[: i + 1])] = (source, None)
                node[part] = {}
            node = node[part]
        else:
            raise ProfileError(f"{_flag(text)}: {here} is a value, not a mapping")
    last = parts[-1]
    if isinstance(node, dict) and isinstance(last, int):
        last = str(last)
        parts[-1] = last
    if value == {} and isinstance(node, dict) and isinstance(node.get(last), dict):
        # Merged key by key, {} would change nothing — silently, where the user meant to
        # empty or replace the mapping.
        raise ProfileError(f"{_flag(text)}: an empty mapping changes nothing (a mapping "
                           "merges key by key); set the keys inside it")
    full = tuple(parts)
    over_loc = _Located()
    for p in _walk_paths(value, full):
        over_loc.where[p] = (source, None)
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise ProfileError(f"{_flag(text)}: no such list index {last}")
        node[last] = _merge(node[last], value, full, loc, over_loc)
    elif isinstance(node, dict):
        if _is_dist(node) and last in _DIST_KINDS:
            # `--set session.cadence.exponential=150s` changes the distribution's kind.
            node.clear()
            loc.drop_under(full[:-1])
        node[last] = _merge(node[last], value, full, loc, over_loc) if last in node else value
    else:
        raise ProfileError(f"{_flag(text)}: cannot set a key inside a value")
    loc.where.update(over_loc.where)
    return created


def _format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# pydantic adds union/tag segments to locations; they are not keys of the file.
_TAGS = {"call", "parallel", "optional", "repeat"}


def _clean_loc(loc: Sequence[Any], data: Any) -> list[str | int]:
    out: list[str | int] = []
    node = data
    after_step_index = False
    for part in loc:
        if after_step_index and part in _TAGS:
            # pydantic's tagged-union label right after a step's index: not a key.
            after_step_index = False
            continue
        after_step_index = False
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            after_step_index = in_list and len(out) > 0 and out[-1] == "steps"
            out.append(part)
            node = node[part]
        elif part in _TAGS or (isinstance(part, str) and (
            part.startswith("function-") or part in {"int", "float", "str", "bool"}
        )):
            continue  # union branch label
        else:
            out.append(part)
            node = None
    return out


def _value_at(data: Any, loc: Sequence[str | int]) -> Any:
    for part in loc:
        found = (part in data if isinstance(data, dict) else
                 isinstance(data, list) and isinstance(part, int) and part < len(data))
        if found:
            data = data[part]
        else:
            return None
    return data


def _first_error(err: ValidationError, data: Any, loc_map: _Located) -> ProfileError:
    errors = err.errors(include_url=False)
    # Prefer the most specific error (deepest location) so a union's siblings don't hide it.
    e = max(errors, key=lambda x: len(x["loc"]))
    loc = _clean_loc(e["loc"], data)
    msg = str(e["msg"])
    if e["type"] == "unknown_key":
        loc.append(e["ctx"]["key"])
    elif e["type"] == "preset":
        loc.append("preset")
    elif e["type"] == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif e["type"] == "extra_forbidden":
        msg = "unknown key"
    value = e.get("input")
    if e["type"] == "string_type" and isinstance(value, bool | int | float | date):
        # A text value YAML typed (`name: no` is false, `description: 2024-01-01` a
        # date): say so with the value as written, not as Python's repr of what YAML made.
        msg = _not_a_string("a value", value)
    elif e["type"] not in {"unknown_key", "missing", "extra_forbidden"} and not isinstance(
        value, dict | list
    ) and "got" not in msg:
        msg = f"{msg}, got {as_written(value)}"
    if len(loc) >= 2 and loc[-1] == "[key]":
        # A name YAML read as another type (`yes:` is true, `5:` a number): say so, at the
        # mapping, with the name as written (the location holds pydantic's rendering).
        loc = loc[:-2]
        source, line = loc_map.lookup(loc)
        return ProfileError(_not_a_string("a name", value) + " in the file", source=source,
                            line=line, path=_format_loc(loc))
    source, line = loc_map.lookup(loc)
    if isinstance(_value_at(data, loc), dict) and not _from_flag(source):
        # A rule over a whole mapping (cadence's mean, a quota with no limit): when a
        # --set changed something inside it, that flag is what made it fail.
        inside = [where for p, where in loc_map.where.items()
                  if len(p) > len(loc) and list(p[:len(loc)]) == loc
                  and _from_flag(where[0])]
        if inside:
            source, line = inside[-1]
    extra = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return ProfileError(msg[0].lower() + msg[1:] + extra, source=source, line=line,
                        path=_format_loc(loc))


def load_profile(
    paths: str | Path | Iterable[str | Path],
    overrides: Sequence[str] = (),
) -> Profile:
    """Load, merge (in order), override and validate one profile.

    Parameters
    ----------
    paths : one YAML file, or a base followed by overlays merged in order.
    overrides : ``key.path=value`` strings applied last (values parsed as YAML).

    Raises
    ------
    ProfileError : with file, line and key path, for any invalid input.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    loc = _Located()
    data: dict[str, Any] = {}
    names: list[str] = []
    first = ""
    for p in paths:
        path = Path(p)
        source = str(p)
        layer_loc = _Located()
        layer = _parse_yaml(read_profile_text(path, source), source, layer_loc)
        if names:
            _refuse_whole_profile(data, layer, source, first)
        else:
            first = source
        root = loc.where.get(())
        data = _merge(data, copy.deepcopy(layer), (), loc, layer_loc)
        loc.where.update(layer_loc.where)
        if root is not None:
            loc.where[()] = root
        names.append(path.stem)
    hints: list[tuple[tuple[str | int, ...], str, list[str], str]] = []
    for text in overrides:
        parts, value = parse_override(text)
        hints += [(*h, _flag_name(text)) for h in _apply_override(data, parts, value, text, loc)]
    data.setdefault("name", names[0] if names else "profile")
    try:
        return profile_from_dict(data, loc)
    except ProfileError as err:
        for created, close, beside, flag in hints:
            if err.path.startswith(_format_loc(created)):
                # A new key whose validation failed is most likely a typo of an old one.
                keys = ", ".join(beside[:8]) + (", ..." if len(beside) > 8 else "")
                why = (f": did you mean {close!r}?" if close else
                       f", which the profile did not have (its keys there: {keys})"
                       if beside else ", which the profile did not have")
                raise ProfileError(
                    f"{err.rule} ({flag} created {_format_loc(created)!r}{why})",
                    source=err.source, line=err.line, path=err.path) from None
        raise


def _refuse_whole_profile(data: dict[str, Any], layer: dict[str, Any], source: str,
                          base: str) -> None:
    """An overlay that is a whole profile on its own (it validates alone) and that the
    merge would change is refused: merged key by key over the base, their turns, models
    and quotas would mix — a second profile given to ``compare`` failed on the mixed
    session ("give exactly one of 'think_time' ... or 'cadence'") or was silently compared
    as the mix. A copy of the base with some values changed merges to itself: kept."""
    try:
        profile_from_dict({"name": "overlay", **layer})
    except ProfileError:
        return
    merged = _merge(copy.deepcopy(data), copy.deepcopy(layer), (), _Located(), _Located())
    if merged == layer:
        return
    raise ProfileError(f"a whole profile, not an overlay of {base}: merged key by key the "
                       "two would mix; pass only what changes (an overlay, --set or "
                       "--scenario), or run `capacity ceiling` on each profile", source=source)


def profile_from_dict(data: dict[str, Any], loc: _Located | None = None) -> Profile:
    """Validate a plain mapping (as parsed from YAML) into a :class:`Profile`."""
    loc = loc or _Located()
    try:
        profile = Profile.model_validate(data)
    except ValidationError as err:
        raise _first_error(err, data, loc) from None
    problems = check_references(profile)
    if not problems and not _charges_something(profile):
        problems = [(("session", "turns"),
                     "no call ever charges anything to a quota (every call that touches a "
                     "quota is skipped, repeated 0 times or charged 0 units): nothing to "
                     "compute")]
    if problems:
        path, rule = problems[0]
        source, line = loc.lookup(path)
        extra = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ProfileError(rule + extra, source=source, line=line, path=_format_loc(path))
    return profile


def _charges_something(profile: Profile) -> bool:
    """True when at least one quota dimension receives a positive mean charge per turn."""
    from capacity.model.workload import Workload

    wl = Workload.from_profile(profile)
    if not profile.routes:
        return any(wl.units_per_turn(c) > 0 for c in wl.constraints)
    return _fleet_charges_something(profile, wl)


def _fleet_charges_something(profile: Profile, wl: Any) -> bool:
    """:func:`_charges_something` when calls are routed: some call made with a positive
    rate is charged something by some deployment that may serve it."""
    from capacity.model.quota import limit_slots
    from capacity.model.workload import batch_units_mean, metered
    from capacity.profile.schema import serving

    calls = [c for t in wl.turns for ev in t.events for c in ev.batch.calls()]
    targets = {t for c in calls for t in serving(profile, c.model)}
    for slot in limit_slots(profile):
        for target in targets:
            costs = {id(c): metered(profile, slot, c, target) if target in serving(
                profile, c.model) else None for c in calls}
            if any(t.probability * ev.rate * batch_units_mean(ev.batch, costs) > 0
                   for t in wl.turns for ev in t.events):
                return True
    return False
