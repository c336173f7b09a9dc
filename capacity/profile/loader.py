"""Load profiles from YAML: merge overlays, apply ``--set`` overrides, validate once.

Every failure becomes a one-line :class:`~capacity.errors.ProfileError` naming the file,
the line and the key path, e.g.::

    profiles/web.yaml:14: quotas.azure.rpm: must be > 0, got 0
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from capacity.errors import ProfileError
from capacity.profile.schema import PathT, Profile, check_references

# Expanded YAML nodes allowed in one document: far above any real profile, far below
# what an alias bomb ("billion laughs") expands to.
MAX_EXPANDED_NODES = 100_000


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


def _record(node: yaml.Node, path: PathT, source: str, loc: _Located, budget: list[int],
            depth: int = 0) -> None:
    """Record the line of every key path, counting expanded nodes (alias-bomb guard)."""
    budget[0] += 1
    if budget[0] > MAX_EXPANDED_NODES or depth > 200:
        raise ProfileError(
            f"document expands to more than {MAX_EXPANDED_NODES:,} nodes (YAML alias bomb?)",
            source=source, line=node.start_mark.line + 1)
    loc.where.setdefault(path, (source, node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
            if key == "<<":
                _record(v, path, source, loc, budget, depth + 1)
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
            _record(v, key_path, source, loc, budget, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _record(v, (*path, i), source, loc, budget, depth + 1)


def _parse_yaml(text: str, source: str, loc: _Located) -> dict[str, Any]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ProfileError(f"invalid YAML: {problem}", source=source,
                           line=mark.line + 1 if mark else None) from None
    if node is None:
        raise ProfileError("file is empty; a profile needs models, quotas and session",
                           source=source)
    _record(node, (), source, loc, [0])
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:  # e.g. a python/object tag, an unhashable (complex) key
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        context = getattr(e, "context", None)
        what = f"{context}: {problem}" if context else problem
        raise ProfileError(f"invalid YAML: {' '.join(str(what).split())}", source=source,
                           line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise ProfileError(
            f"a profile is a mapping of keys (models, quotas, session, ...), got "
            f"{type(data).__name__}", source=source, line=node.start_mark.line + 1)
    for key in data:
        if not isinstance(key, str):
            raise ProfileError(f"keys must be strings, got {key!r}", source=source,
                               line=loc.lookup((str(key),))[1])
    return data


_DIST_KINDS = {"fixed", "uniform", "exponential", "lognormal", "choice"}


def _is_dist(value: Any) -> bool:
    """A distribution written as a mapping ({uniform: [...]}, {lognormal: {...}}, ...)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _DIST_KINDS


def _merge(base: Any, over: Any) -> Any:
    """Deep-merge mappings; anything else in the overlay replaces the base.

    A distribution is one value, not a mapping to merge: an overlay's
    ``{exponential: 150s}`` replaces a base ``{uniform: [2m, 3m]}`` outright.
    """
    if _is_dist(base) or _is_dist(over):
        return over
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return over


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Split ``key.path=value`` into a key path and a YAML-typed value."""
    if "=" not in text:
        raise ProfileError(f"--set {text!r}: expected key.path=value")
    key, _, raw = text.partition("=")
    parts: list[str | int] = []
    for part in key.strip().split("."):
        if not part:
            raise ProfileError(f"--set {text!r}: empty key in path {key!r}")
        # Digits index lists; inside a mapping they are turned back into a key (below).
        parts.append(int(part) if part.isdigit() else part)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def _apply_override(data: dict[str, Any], parts: list[str | int], value: Any,
                    text: str) -> list[tuple[tuple[str | int, ...], str]]:
    """Set one value; returns the mappings it had to create, each with the existing key
    its name is close to ("" if none), so a failed validation can suggest the typo."""
    created: list[tuple[tuple[str | int, ...], str]] = []
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        here = ".".join(map(str, parts[: i + 1]))
        if isinstance(node, dict) and isinstance(part, int):
            part = str(part)
            parts[i] = part
        if isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                raise ProfileError(f"--set {text!r}: {here}: no such list index "
                                   f"(the list has {len(node)} items)")
            node = node[part]
        elif isinstance(node, dict):
            if parts[i + 1] == "limit" and isinstance(node.get(part), int | float):
                # `quotas.q.tpm.limit=X` works whether tpm was written as a number or a
                # mapping, so sizing output can always name the `.limit` path.
                node[part] = {"limit": node[part]}
            if part not in node:
                # Creating a mapping is allowed (a new quota, a new dimension); whether it
                # was a typo is for validation to say — then with this suggestion.
                close = difflib.get_close_matches(str(part), [str(k) for k in node], n=1)
                created.append((tuple(parts[: i + 1]), close[0] if close else ""))
                node[part] = {}
            node = node[part]
        else:
            raise ProfileError(f"--set {text!r}: {here} is a value, not a mapping")
    last = parts[-1]
    if isinstance(node, dict) and isinstance(last, int):
        last = str(last)
        parts[-1] = last
    if isinstance(node, list):
        if not isinstance(last, int) or last >= len(node):
            raise ProfileError(f"--set {text!r}: no such list index {last}")
        node[last] = value
    elif isinstance(node, dict):
        if _is_dist(node) and last in _DIST_KINDS:
            # `--set session.cadence.exponential=150s` changes the distribution's kind.
            node.clear()
        node[last] = value
    else:
        raise ProfileError(f"--set {text!r}: cannot set a key inside a value")
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
    if e["type"] not in {"unknown_key", "missing", "extra_forbidden"} and not isinstance(
        value, dict | list
    ) and "got" not in msg:
        msg = f"{msg}, got {value!r}"
    source, line = loc_map.lookup(loc)
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
    names = []
    for p in paths:
        path = Path(p)
        source = str(p)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError("no such file", source=source) from None
        except (OSError, UnicodeDecodeError) as e:
            raise ProfileError(f"cannot read: {e}", source=source) from None
        layer = _parse_yaml(text, source, loc)
        data = _merge(data, copy.deepcopy(layer))
        names.append(path.stem)
    hints: list[tuple[tuple[str | int, ...], str, str]] = []
    for text in overrides:
        parts, value = parse_override(text)
        for created, close in _apply_override(data, parts, value, text):
            loc.where[created] = (f"--set {text}", None)
            hints.append((created, close, text))
        loc.where[tuple(parts)] = (f"--set {text}", None)
    data.setdefault("name", names[0] if names else "profile")
    try:
        return profile_from_dict(data, loc)
    except ProfileError as err:
        for created, close, _text in hints:
            if close and err.path.startswith(_format_loc(created)):
                raise ProfileError(
                    f"{err.rule} (--set created {_format_loc(created)!r}: did you mean "
                    f"{close!r}?)", source=err.source, line=err.line, path=err.path,
                ) from None
        raise


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
    return any(wl.units_per_turn(c) > 0 for c in wl.constraints)
