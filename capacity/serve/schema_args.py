"""Tool-call arguments generated from a tool's JSON Schema.

A mock that answers with a tool call must send arguments the agent's tool accepts:
LangChain parses them with ``json.loads`` and validates them against the tool's schema
(pydantic), and an invalid call ends the agent loop. So the generator aims for a value
*valid* against the schema, not a random one:

* ``const`` first, then ``default``, then ``enum[0]`` / ``examples[0]``;
* ``$ref`` (local: ``#``, ``#/$defs/..``, ``#/definitions/..``; pydantic emits these),
  ``allOf`` (merged), ``anyOf`` / ``oneOf`` (the first non-null branch; past
  ``max_depth`` the ``null`` one or one without ``$ref``, so a self-referencing model ends);
* objects fill every ``required`` property (and the optional ones too, with
  ``fill_optional``), arrays honour ``minItems`` / ``maxItems`` / ``prefixItems`` /
  ``uniqueItems``, numbers honour bounds and ``multipleOf``, strings honour
  ``minLength`` / ``maxLength`` and common ``format`` values.

``pattern``: the placeholders (the property name, a few others) when one matches, else a
string walked from the regex itself (the shortest it allows; lookarounds and
backreferences followed loosely, the result checked against the regex). Recursive schemas
stop at ``max_depth`` with the smallest value the branch allows.

The value is then checked against the schema (:meth:`_Gen.violation`: types, enum/const,
bounds, lengths, pattern, items, required, additionalProperties, not/anyOf/oneOf); one
that fails is made again without the optional fields, and if that fails too: a schema
whose keywords contradict (``enum: []``, minimum > maximum; :func:`_contradiction`)
raises :class:`SchemaError` naming where, so the client gets a 400 as from a provider; a
valid schema beyond the generator (lookahead patterns, formats in unique arrays) gets the
closest value made, never a 400 no provider would send. One answer holds at most 50,000 values and
1,000,000 string characters (nested ``minItems`` multiply): beyond, :class:`SchemaError`.
A keyword breaking its own rule (``multipleOf`` not above 0, a ``pattern`` ECMA-262 refuses
too: unbalanced parentheses or brackets, nothing to repeat) is refused first
(:func:`check_schema`, naming its path: ``/properties/x/multipleOf``). Bounds near the
largest double honour ``multipleOf`` exactly (an integer multiple when the quotient
overflows) and exclusive bounds by the next double.
"""

from __future__ import annotations

import functools
import importlib
import math
import re
import sys
from collections.abc import Callable
from fractions import Fraction
from typing import Any

__all__ = ["SchemaError", "arguments_for", "check_schema", "resolve_ref", "value_for"]


class SchemaError(ValueError):
    """The schema is not one a value can be generated for (malformed, dangling $ref)."""

_FORMATS: dict[str, str] = {
    "date": "2026-01-01",
    "date-time": "2026-01-01T00:00:00Z",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uri-reference": "/example",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "duration": "PT1M",
}

# Sizes a schema may demand: beyond these a request could make the server build huge
# values (minItems: 10**9); such a schema is refused instead.
MAX_SIZE = 1000
# Nodes a regex walk may visit (a pattern's nested repeats of empty groups would
# otherwise loop 10^10 times) — far above any real pattern's few hundred.
_MAX_WALK_STEPS = 200_000

# Values and string characters one generated answer may hold: nested minItems multiply
# (five levels of minItems 30 are 24 million values, 110 s of the server's loop; 1000
# strings of minLength 100,000 are 100 MB), each within MAX_SIZE alone.
_MAX_NODES = 50_000
_MAX_CHARS = 1_000_000

_TYPE_ORDER = ("object", "string", "integer", "number", "boolean", "array", "null")


class _Unsupported(Exception):
    """A regex construct :func:`from_regex` does not follow."""


# Characters tried, in order, for a character class: readable ones first.
_CHAR_POOL = "a0A_x -.:/@" + "".join(chr(i) for i in range(33, 127))


# ``re._parser`` / ``re._constants``: the stdlib's own regex parser and opcodes (private,
# untyped, Python >= 3.11; ``sre_parse`` is their deprecated public alias). Imported once:
# looking them up per character cost more than the walk itself.
_PARSER: Any = importlib.import_module("re._parser")
_K: Any = importlib.import_module("re._constants")


def _char_matches(ch: str, items: list[tuple[Any, Any]]) -> bool:
    """Whether ``ch`` is in a parsed character class (items of ``re``'s parser)."""
    k = _K
    o = ord(ch)
    for op, av in items:
        if op is k.LITERAL and o == av:
            return True
        if op is k.RANGE and av[0] <= o <= av[1]:
            return True
        if op is k.CATEGORY:
            word = ch.isalnum() or ch == "_"
            hit = {k.CATEGORY_DIGIT: ch.isdigit(), k.CATEGORY_NOT_DIGIT: not ch.isdigit(),
                   k.CATEGORY_SPACE: ch.isspace(), k.CATEGORY_NOT_SPACE: not ch.isspace(),
                   k.CATEGORY_WORD: word, k.CATEGORY_NOT_WORD: not word}.get(av)
            if hit is None:
                raise _Unsupported(str(av))
            if hit:
                return True
        if op not in (k.LITERAL, k.RANGE, k.CATEGORY, k.NEGATE):
            raise _Unsupported(str(op))
    return False


@functools.lru_cache(maxsize=256)
def from_regex(pattern: str, min_length: int = 0) -> str | None:
    """A short string that ``pattern`` matches, its repeats lengthened toward
    ``min_length`` characters; None when the regex uses a construct not followed
    (the caller checks the result against the compiled regex either way). Pure, so
    cached: a tool's schema arrives again with every request of a session."""
    k = _K
    try:
        tree = _PARSER.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None
    groups: dict[int, str] = {}
    # Nested repeats multiply: (b{1000}){1000} was a 10^6-character string and 1.6 s of
    # the server's loop, one level more 10^9 (memory). The walk gives up past a length
    # and a number of steps instead (the placeholder answers, as for any construct).
    steps = [0]

    def in_char(items: list[tuple[Any, Any]]) -> str:
        negate = bool(items) and items[0][0] is k.NEGATE
        rest = items[1:] if negate else items
        for ch in _CHAR_POOL:
            if _char_matches(ch, rest) != negate:
                return ch
        if not negate:  # a class of characters outside the pool (CJK, a control range)
            op, av = rest[0]
            if op is k.LITERAL:
                return chr(av)
            if op is k.RANGE:
                return chr(av[0])
        raise _Unsupported("class")

    def gen(seq: Any, depth: int = 0) -> str:
        if depth > 50:
            raise _Unsupported("depth")
        steps[0] += 1
        if steps[0] > _MAX_WALK_STEPS:
            raise _Unsupported("steps")
        out: list[str] = []
        for op, av in seq:
            if op is k.LITERAL:
                out.append(chr(av))
            elif op is k.NOT_LITERAL:
                out.append("a" if av != ord("a") else "b")
            elif op is k.ANY:
                out.append("a")
            elif op is k.IN:
                out.append(in_char(av))
            elif op in (k.MAX_REPEAT, k.MIN_REPEAT, k.POSSESSIVE_REPEAT):
                lo_n, hi_n, sub = av
                if lo_n > MAX_SIZE * 100:
                    raise _Unsupported("repeat")
                # A running total of this sequence's characters so far (re-summing
                # every piece on each pass was quadratic in min_length).
                have = sum(map(len, out))
                parts = []
                for _ in range(lo_n):
                    parts.append(gen(sub, depth + 1))
                    have += len(parts[-1])
                    if have > MAX_SIZE * 100:
                        raise _Unsupported("length")
                n = lo_n
                while min_length - have > 0 and n < hi_n and n < MAX_SIZE * 100:
                    piece = gen(sub, depth + 1)
                    if not piece:
                        break
                    parts.append(piece)
                    have += len(piece)
                    n += 1
                out.append("".join(parts))
            elif op is k.SUBPATTERN:
                text = gen(av[3], depth + 1)
                if av[0]:
                    groups[av[0]] = text
                out.append(text)
            elif op is k.ATOMIC_GROUP:
                out.append(gen(av, depth + 1))
            elif op is k.BRANCH:
                out.append(gen(av[1][0], depth + 1))
            elif op is k.GROUPREF:
                out.append(groups.get(av, ""))
            elif op is k.GROUPREF_EXISTS:
                out.append(gen(av[1] if av[0] in groups else (av[2] or []), depth + 1))
            elif op in (k.AT, k.ASSERT, k.ASSERT_NOT):
                continue  # anchors and lookarounds take no characters
            else:
                raise _Unsupported(str(op))
        return "".join(out)

    try:
        return gen(tree)
    except (_Unsupported, RecursionError, ValueError, OverflowError):
        return None


def repeat_product(pattern: str) -> int:
    """The largest product of minimum repeat counts along one nesting path of
    ``pattern`` (1 for none; 0 when it does not parse): Python's own matcher allocates
    per mandatory repetition, so ``((){100000}){100000}`` exhausted memory matching a
    6-character string."""
    k = _K
    try:
        tree = _PARSER.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return 0

    def worst(seq: Any) -> int:
        m = 1
        for op, av in seq:
            if op in (k.MAX_REPEAT, k.MIN_REPEAT, k.POSSESSIVE_REPEAT):
                m = max(m, max(av[0], 1) * worst(av[2]))
            elif op is k.SUBPATTERN:
                m = max(m, worst(av[3]))
            elif op is k.ATOMIC_GROUP:
                m = max(m, worst(av))
            elif op is k.BRANCH:
                m = max([m, *(worst(b) for b in av[1])])
            elif op in (k.ASSERT, k.ASSERT_NOT):
                m = max(m, worst(av[1]))
            elif op is k.GROUPREF_EXISTS:
                m = max(m, worst(av[1]), worst(av[2] or []))
        return m

    try:
        return worst(tree)
    except RecursionError:
        return MAX_SIZE * 100 + 1


def resolve_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The schema a local ``$ref`` (``#`` or a JSON pointer under it) points to.

    Raises ``ValueError`` for a remote or dangling reference.
    """
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref are supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ValueError(f"dangling $ref {ref!r}")
    if not isinstance(node, dict):
        raise ValueError(f"$ref {ref!r} does not point to a schema")
    return node


def arguments_for(schema: Any, *, fill_optional: bool = True,
                  max_depth: int = 8) -> dict[str, Any]:
    """Arguments (a JSON object) valid against a tool's parameter ``schema``.

    A missing or non-object schema (some clients send ``{}`` or nothing) gives ``{}``;
    a malformed one (``required: 3``, a dangling ``$ref``, ...) raises :class:`SchemaError`.
    """
    if not isinstance(schema, dict):
        return {}
    value = value_for(schema, fill_optional=fill_optional, max_depth=max_depth)
    return value if isinstance(value, dict) else {}


# check_schema's answers by the schema's JSON text: an agent sends the same tools with
# every call, and walking them (a regex compiled per pattern) cost about as much as
# parsing the request (100 tools, 256 KB: ~2 ms a request).
_CHECKED: dict[bytes, str | None] = {}   # the SchemaError's message, None: valid
_CHECKED_MAX = 4096


def _schema_key(schema: Any) -> bytes | None:
    """``schema``'s JSON text as the client ordered it (:func:`capacity.serve.wire.dumps`:
    orjson where installed, whose speed makes the key cheaper than the walk it saves),
    None if it is not JSON."""
    # (Imported here: wire imports history, which imports this module.)
    from capacity.serve.wire import dumps

    try:
        return dumps(schema)
    except (TypeError, ValueError, RecursionError):
        return None


def check_schema(schema: Any) -> None:
    """Raise :class:`SchemaError` naming the keyword when ``schema`` breaks a keyword's
    own rule (``multipleOf`` not above 0, a ``pattern`` that is no regular expression),
    as a provider refuses such a schema whether or not it is used."""
    key = _schema_key(schema)
    if key is not None and key in _CHECKED:
        message = _CHECKED[key]
    else:
        try:
            found = _invalid(schema, "")
            message = None if found is None else f"invalid JSON Schema: {found}"
        except RecursionError:
            message = "not a usable JSON Schema (nested too deeply)"
        if key is not None:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED[key] = message
    if message is not None:
        raise SchemaError(message)


def value_for(schema: dict[str, Any], *, fill_optional: bool = True,
              max_depth: int = 8) -> Any:
    """A JSON value valid against ``schema``, whatever its root type: the generator
    behind :func:`arguments_for`, also used for structured-output answers
    (``response_format`` / ``output_config.format``). Raises :class:`SchemaError` for a
    malformed schema."""
    # A keyword no JSON Schema allows: the provider's 400, not a value made up around it
    # (multipleOf 0 was ignored, an unbalanced pattern answered anyway).
    check_schema(schema)
    try:
        gen = _Gen(schema, fill_optional, max_depth)
        value = gen.value(schema, "", 0)
        problem = gen.violation(value, schema, "")
    except RecursionError:
        raise SchemaError("not a usable JSON Schema (nested too deeply)") from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError,
            OverflowError) as e:
        # Whatever a client sends as a schema must end as a 400, never a crash (and the
        # message says what, not which Python exception: "OverflowError: ..." was sent).
        raise SchemaError(f"not a usable JSON Schema ({e})") from None
    if problem is not None and fill_optional:
        # Optional fields filled can break a schema that holds without them (a default
        # pydantic never checked against its own pattern; "exactly one of id / name").
        try:
            gen = _Gen(schema, False, max_depth)
            bare = gen.value(schema, "", 0)
            if gen.violation(bare, schema, "") is None:
                return bare
        except (TypeError, ValueError, AttributeError, KeyError, IndexError,
                RecursionError, OverflowError):
            pass
    if problem is not None:
        contradiction = _contradiction(schema, "")
        if contradiction is not None:
            # No value can satisfy it: a 400 saying where, never a 200 the client refuses.
            raise SchemaError(f"no value generated satisfies the schema ({problem}; "
                              f"impossible: {contradiction})")
        # A satisfiable schema beyond the generator (lookahead patterns, formats in unique
        # arrays, ...): the closest value it made, as a real model might answer, rather
        # than a 400 no provider would send for a valid schema.
    return value


# re.error messages for a regex that ECMA-262 (JSON Schema's dialect) refuses as well; other
# errors are constructs Python lacks ((?<name>...), \p{L}, a variable-width lookbehind): such
# a pattern is valid, only not followed by the generator.
_BROKEN_REGEX = ("missing ), unterminated subpattern", "unbalanced parenthesis",
                 "unterminated character set", "nothing to repeat", "multiple repeat",
                 "min repeat greater than max repeat", "bad escape (end of pattern)")
# Where a schema holds subschemas: one (or a list of them), or a map of names to them.
_SUBSCHEMA = frozenset({"items", "prefixItems", "allOf", "anyOf", "oneOf", "not", "contains",
                        "additionalProperties", "additionalItems", "if", "then", "else",
                        "propertyNames", "unevaluatedItems", "unevaluatedProperties"})


def _first_in(items: list[Any] | dict[str, Any], where: str,
              find: Callable[[Any, str], str | None]) -> str | None:
    """The first of ``find``'s answers over a list of subschemas (``where/i``) or a map of
    names to them (``where/name``), or None."""
    for i, x in (items.items() if isinstance(items, dict) else enumerate(items)):
        found = find(x, f"{where}/{i}")
        if found is not None:
            return found
    return None


def _invalid(s: Any, where: str) -> str | None:
    """Where schema ``s`` breaks a keyword's own rule (``multipleOf`` not above 0, a
    ``pattern`` that is no regular expression), as ``/path/keyword: why``; or None."""
    if isinstance(s, list):
        return _first_in(s, where, _invalid)
    if not isinstance(s, dict):
        return None
    m = s.get("multipleOf")
    if m is not None and (not isinstance(m, int | float) or isinstance(m, bool) or m <= 0):
        return f"{where}/multipleOf: {m!r} (must be a number greater than 0)"
    pattern = s.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as e:
            empty_class = "[]" in pattern or "[^]" in pattern  # ECMA's, not Python's
            if e.msg in _BROKEN_REGEX and not (
                    e.msg == "unterminated character set" and empty_class):
                return (f"{where}/pattern: {pattern[:60]!r} is not a regular expression "
                        f"({e})")
    for key, sub in s.items():
        # (draft 7's `dependencies` maps names to a schema or to a list of names.)
        if (key in _SCHEMA_MAPS or key == "dependencies") and isinstance(sub, dict):
            found = _first_in(sub, f"{where}/{key}", _invalid)
            if found is not None:
                return found
        elif key in _SUBSCHEMA:
            found = _invalid(sub, f"{where}/{key}")
            if found is not None:
                return found
    return None


_PAIRS = (("minLength", "maxLength"), ("minItems", "maxItems"),
          ("minProperties", "maxProperties"), ("minimum", "maximum"),
          ("minContains", "maxContains"))


def _contradiction(s: Any, where: str) -> str | None:
    """Where schema ``s`` asks for the impossible, read off its keywords alone (``enum:
    []``, ``not: {}``, a minimum above its maximum, a required key additionalProperties
    forbids), or None."""
    if s is False:
        return f"{where or '/'}: the schema false"
    if isinstance(s, list):
        return _first_in(s, where, _contradiction)
    if not isinstance(s, dict):
        return None
    here = where or "/"
    if s.get("enum") == []:
        return f"{here}: enum []"
    if s.get("not") in ({}, True):
        return f"{here}: not {{}}"
    for lo, hi in _PAIRS:
        a, b = s.get(lo), s.get(hi)
        if (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and not isinstance(a, bool) and not isinstance(b, bool) and a > b):
            return f"{here}: {lo} {a} > {hi} {b}"
    a, b = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a >= b:
        return f"{here}: exclusiveMinimum {a} >= exclusiveMaximum {b}"
    items = s.get("items")
    if (s.get("uniqueItems") is True and isinstance(items, dict)
            and isinstance(items.get("enum"), list)
            and isinstance(s.get("minItems"), int) and s["minItems"] > len(items["enum"])):
        return f"{here}: {s['minItems']} unique items of {len(items['enum'])} values"
    props: dict[str, Any] = s["properties"] if isinstance(s.get("properties"), dict) else {}
    if s.get("additionalProperties") is False and not s.get("patternProperties"):
        for key in s.get("required") or []:
            if isinstance(key, str) and key not in props:
                return f"{here}: required {key!r} but additionalProperties false"
    for key, sub in s.items():
        if key in _SCHEMA_MAPS and isinstance(sub, dict):
            # A map of names to schemas: a property called "not" or "enum" is a name.
            found = _first_in(sub, f"{where}/{key}", _contradiction)
            if found is not None:
                return found
        elif key in ("anyOf", "oneOf") and isinstance(sub, list) and sub:
            # Impossible only if every branch is.
            each = [_contradiction(b, f"{where}/{key}/{i}") for i, b in enumerate(sub)]
            if all(each):
                return each[0]
        elif key in _SCHEMA_KEYS:
            found = _contradiction(sub, f"{where}/{key}")
            if found is not None:
                return found
    return None


_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                          "dependentSchemas"})
# Subschemas whose impossibility is the whole's (not "not": the negation of an impossible
# schema is anything; a property's subschema counts once it is required or filled — the
# generator failed on it, which is the only time this is asked).
_SCHEMA_KEYS = frozenset({"items", "prefixItems", "allOf", "contains"})


def _refers(s: Any) -> bool:
    """Whether schema ``s`` holds a ``$ref`` anywhere (a branch that may recurse)."""
    if isinstance(s, dict):
        return "$ref" in s or any(_refers(v) for v in s.values())
    if isinstance(s, list):
        return any(_refers(v) for v in s)
    return False


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``True != 1`` (Python's ``==`` says otherwise)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _is_type(v: Any, t: Any) -> bool:
    """Whether ``v`` is of JSON Schema type ``t`` (an unknown type name passes)."""
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, float) and v.is_integer())
    checks: dict[str, Any] = {"string": str, "boolean": bool, "object": dict, "array": list,
                              "null": type(None)}
    if t == "number":
        return isinstance(v, int | float) and not isinstance(v, bool)
    return isinstance(v, checks[t]) if t in checks else True


def _search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` finds a match in ``text``; None for a regex ``re`` cannot
    compile (the generator ignored it as well: a lookbehind of variable width)."""
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return None


def _multiple(v: float, m: float) -> bool:
    """``v`` a multiple of ``m``, to float rounding (0.3 of 0.1); exactly when the
    quotient overflows a double (1e308 of 0.5), as the jsonschema package checks it."""
    q = v / m
    if not math.isfinite(q):
        return Fraction(v) % Fraction(m) == 0
    return abs(q - round(q)) <= 1e-9 * max(1.0, abs(q))


_MAX_EXACT_FLOAT = int(sys.float_info.max)


def _huge_multiple(v: float, step: float, low: float, high: float, xlo: float | None,
                   xhi: float | None) -> int | float:
    """The multiple of ``step`` nearest ``v`` within the bounds, for a ``v / step`` past
    the doubles: an integer multiple of the step's numerator (``step`` is p / 2^k, so p is
    a multiple of it), exact in JSON; a ValueError naming the keywords when none fits."""
    p = Fraction(step).numerator
    for k in (math.ceil(Fraction(v) / p), math.floor(Fraction(v) / p)):
        c = k * p
        if (low <= c <= high and (xlo is None or c > xlo) and (xhi is None or c < xhi)):
            return float(c) if abs(c) <= _MAX_EXACT_FLOAT and float(c) == c else c
    raise ValueError(f"no multiple of multipleOf {step!r} between its minimum/maximum")


class _Gen:
    def __init__(self, root: dict[str, Any], fill_optional: bool, max_depth: int) -> None:
        self.root = root
        self.fill_optional = fill_optional
        self.max_depth = max_depth
        self.nodes = 0  # values generated so far (against _MAX_NODES)
        self.chars = 0  # string characters generated so far (against _MAX_CHARS)

    def deref(self, s: Any, seen: int = 0) -> dict[str, Any]:
        """Follow ``$ref`` and merge ``allOf`` into one plain schema dict."""
        if not isinstance(s, dict):
            return {} if s is True or s is None else {"not": {}}
        while "$ref" in s and isinstance(s["$ref"], str) and seen < 32:
            rest = {k: v for k, v in s.items() if k != "$ref"}
            target: dict[str, Any] = resolve_ref(self.root, s["$ref"])
            s = {**target, **rest}
            seen += 1
        if isinstance(s.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in s.items() if k != "allOf"}
            for sub in s["allOf"]:
                sub = self.deref(sub, seen + 1)
                for k, v in sub.items():
                    if k == "properties" and isinstance(v, dict):
                        merged["properties"] = {**merged.get("properties", {}), **v}
                    elif k == "required" and isinstance(v, list):
                        merged["required"] = [*merged.get("required", []), *v]
                    else:
                        merged.setdefault(k, v)
            s = merged
        out: dict[str, Any] = s
        return out

    def value(self, s: Any, name: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise ValueError(f"the schema demands more than {_MAX_NODES:,} values "
                             "(nested minItems multiply)")
        s = self.deref(s)
        if "const" in s:
            return s["const"]
        if "default" in s:
            return s["default"]
        if isinstance(s.get("enum"), list) and s["enum"]:
            return s["enum"][0]
        for key in ("anyOf", "oneOf"):
            branches = s.get(key)
            if isinstance(branches, list) and branches:
                # A nullable field (pydantic's Optional) is better filled with a real value.
                derefd = [self.deref(b) for b in branches]
                non_null = [b for b in derefd if b.get("type") != "null"]
                pick = (non_null or derefd)[0]
                if depth >= self.max_depth:
                    # A self-referencing model (``next: Optional[Node]``; the OpenAI SDK's
                    # strict schema makes it required) recursed here without end: past
                    # max_depth end it with ``null`` or a branch that refers nowhere.
                    ends = ([b for b in derefd if b.get("type") == "null"]
                            + [b for b in derefd if not _refers(b)])
                    pick = ends[0] if ends else pick
                base = {k: v for k, v in s.items() if k not in ("anyOf", "oneOf")}
                return self.value({**base, **pick}, name, depth)
        if isinstance(s.get("examples"), list) and s["examples"]:
            return s["examples"][0]
        typ = s.get("type")
        if isinstance(typ, list):
            typ = next((t for t in _TYPE_ORDER if t in typ and t != "null"),
                       typ[0] if typ else None)
        if typ is None:
            typ = ("object" if "properties" in s else "array" if "items" in s
                   else "string")
        if typ == "object":
            return self.obj(s, depth)
        if typ == "array":
            return self.array(s, name, depth)
        if typ == "string":
            return self.string(s, name)
        if typ == "integer":
            return self.number(s, integer=True)
        if typ == "number":
            return self.number(s, integer=False)
        if typ == "boolean":
            return True
        return None

    def obj(self, s: dict[str, Any], depth: int) -> dict[str, Any]:
        props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
        assert isinstance(props, dict)
        required = [r for r in s.get("required", []) if isinstance(r, str)]
        out: dict[str, Any] = {}
        deep = depth >= self.max_depth
        for key, sub in props.items():
            if key in required or (self.fill_optional and not deep):
                out[key] = self.value(sub, key, depth + 1)
        for key in required:
            if key not in out:  # required but not described: any value will do
                extra = s.get("additionalProperties")
                out[key] = (self.value(extra, key, depth + 1) if isinstance(extra, dict)
                            else f"mock {key}")
        min_props = s.get("minProperties")
        if isinstance(min_props, int) and min_props > MAX_SIZE:
            raise ValueError(f"minProperties {min_props} above {MAX_SIZE}")
        if isinstance(min_props, int) and len(out) < min_props:
            extra = s.get("additionalProperties")
            i = 0
            while len(out) < min_props:
                out[f"key{i}"] = (self.value(extra, "key", depth + 1)
                                  if isinstance(extra, dict) else "mock")
                i += 1
        return out

    def array(self, s: dict[str, Any], name: str, depth: int) -> list[Any]:
        lo = s.get("minItems", 1 if depth < self.max_depth else 0)
        if not isinstance(lo, int) or lo > MAX_SIZE:
            raise ValueError(f"minItems {lo!r}: expected an integer up to {MAX_SIZE}")
        hi = s.get("maxItems", max(lo, 1))
        n = max(0, min(max(lo, 1 if depth < self.max_depth else 0), hi))
        prefix = s.get("prefixItems") if isinstance(s.get("prefixItems"), list) else []
        assert isinstance(prefix, list)
        items = s.get("items", {})
        out: list[Any] = [self.value(p, name, depth + 1) for p in prefix[:max(n, len(prefix))]]
        unique = bool(s.get("uniqueItems"))
        i = 0
        item_schema = self.deref(items if isinstance(items, dict) else {})
        while len(out) < n:
            v = self.value(item_schema, name, depth + 1)
            if unique and v in out:
                v = self._vary(item_schema, v, out, i)
            out.append(v)
            i += 1
        return out

    def _vary(self, s: dict[str, Any], v: Any, used: list[Any], i: int) -> Any:
        """Another value of schema ``s`` not in ``used`` (for ``uniqueItems``)."""
        for key in ("const", "enum"):
            if key in s:  # only the listed values are valid: take the next unused one
                allowed = [s[key]] if key == "const" else s[key]
                if isinstance(allowed, list):
                    return next((a for a in allowed if a not in used), v)
        if isinstance(v, dict):  # vary one property (a set of small objects)
            props = s.get("properties")
            for key, sub in (props.items() if isinstance(props, dict) else ()):
                if key in v:
                    nv = self._vary(self.deref(sub), v[key],
                                    [u.get(key) for u in used if isinstance(u, dict)], i)
                    if nv != v[key]:
                        return {**v, key: nv}
            return v
        if isinstance(v, bool):
            return not v
        if isinstance(v, int | float):
            integer = isinstance(v, int)
            m = s.get("multipleOf")
            step: float = m if isinstance(m, int | float) and m > 0 else 1
            for k in range(1, 64):
                for cand in (v + k * step, v - k * step):
                    cand = int(cand) if integer else float(cand)
                    if cand not in used and self._in_bounds(s, cand):
                        return cand
            return v
        if isinstance(v, str):
            for k in range(i, i + 64):
                text = self.string(s, f"{v}{k}")
                if text not in used:
                    return text
        return v

    def violation(self, v: Any, s: Any, where: str) -> str | None:
        """Where and why ``v`` is not valid against schema ``s`` (None when it is).

        The keywords the generator honours are checked (no ``format``, ``if``/``then``,
        ``dependentSchemas``): the serve extra has no jsonschema, and this is only the
        generator's own answer being checked before it is sent."""
        if s is False:
            return f"{where or '/'}: false schema"
        s = self.deref(s)
        at = where or "/"
        if "not" in s and self.violation(v, s["not"], where) is None:
            return f"{at}: matches its 'not' schema"
        if "const" in s and not _same(v, s["const"]):
            return f"{at}: not the const {s['const']!r}"
        if isinstance(s.get("enum"), list) and not any(_same(v, e) for e in s["enum"]):
            return f"{at}: not one of enum {s['enum'][:5]!r}"
        for key in ("anyOf", "oneOf"):
            branches = s.get(key)
            if isinstance(branches, list):
                ok = sum(self.violation(v, b, where) is None for b in branches)
                if ok == 0 or (key == "oneOf" and ok > 1):
                    return f"{at}: valid against {ok} of its {key} branches"
        typ = s.get("type")
        if typ is not None:
            types = typ if isinstance(typ, list) else [typ]
            if not any(_is_type(v, t) for t in types):
                return f"{at}: not of type {typ!r}"
        if isinstance(v, int | float) and not isinstance(v, bool):
            if not self._in_bounds(s, v):
                return f"{at}: {v!r} outside its minimum/maximum"
            m = s.get("multipleOf")
            if isinstance(m, int | float) and m > 0 and not _multiple(v, m):
                return f"{at}: {v!r} not a multiple of {m!r}"
        elif isinstance(v, str):
            lo, hi = s.get("minLength"), s.get("maxLength")
            if (isinstance(lo, int) and len(v) < lo) or (isinstance(hi, int) and len(v) > hi):
                return f"{at}: length {len(v)} outside minLength {lo} / maxLength {hi}"
            pattern = s.get("pattern")
            if isinstance(pattern, str) and _search(pattern, v) is False:
                return f"{at}: does not match pattern {pattern[:60]!r}"
        elif isinstance(v, list):
            return self._array_violation(v, s, where)
        elif isinstance(v, dict):
            return self._object_violation(v, s, where)
        return None

    def _array_violation(self, v: list[Any], s: dict[str, Any], where: str) -> str | None:
        at = where or "/"
        lo, hi = s.get("minItems"), s.get("maxItems")
        if (isinstance(lo, int) and len(v) < lo) or (isinstance(hi, int) and len(v) > hi):
            return f"{at}: {len(v)} items outside minItems {lo} / maxItems {hi}"
        if s.get("uniqueItems") is True:
            for j, x in enumerate(v):
                if any(_same(x, y) for y in v[:j]):
                    return f"{at}: item {j} repeats an earlier one (uniqueItems)"
        prefix = s.get("prefixItems") if isinstance(s.get("prefixItems"), list) else []
        assert isinstance(prefix, list)
        for j, x in enumerate(v):
            sub = prefix[j] if j < len(prefix) else s.get("items", True)
            problem = self.violation(x, sub, f"{where}/{j}")
            if problem is not None:
                return problem
        return None

    def _object_violation(self, v: dict[str, Any], s: dict[str, Any],
                          where: str) -> str | None:
        at = where or "/"
        props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
        assert isinstance(props, dict)
        for key in s.get("required", []):
            if isinstance(key, str) and key not in v:
                return f"{at}: required property {key!r} missing"
        lo, hi = s.get("minProperties"), s.get("maxProperties")
        if (isinstance(lo, int) and len(v) < lo) or (isinstance(hi, int) and len(v) > hi):
            return f"{at}: {len(v)} properties outside minProperties {lo} / maxProperties {hi}"
        pattern_props = (s.get("patternProperties")
                         if isinstance(s.get("patternProperties"), dict) else {})
        assert isinstance(pattern_props, dict)
        extra = s.get("additionalProperties", True)
        for key, x in v.items():
            matched = [sub for rx, sub in pattern_props.items() if _search(rx, key)]
            subs = [props[key]] if key in props else matched
            if not subs:
                subs = [extra]
            for sub in subs:
                problem = self.violation(x, sub, f"{where}/{key}")
                if problem is not None:
                    if sub is False:
                        return f"{at}: property {key!r} not allowed (additionalProperties)"
                    return problem
        return None

    @staticmethod
    def _in_bounds(s: dict[str, Any], x: float) -> bool:
        def num(key: str) -> float | None:
            v = s.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        lo, hi, xlo, xhi = (num(k) for k in ("minimum", "maximum", "exclusiveMinimum",
                                             "exclusiveMaximum"))
        return not ((lo is not None and x < lo) or (hi is not None and x > hi)
                    or (xlo is not None and x <= xlo) or (xhi is not None and x >= xhi))

    def string(self, s: dict[str, Any], name: str) -> str:
        text = self._string(s, name)
        self.chars += len(text)
        if self.chars > _MAX_CHARS:
            raise ValueError(f"the schema demands more than {_MAX_CHARS:,} characters "
                             "of strings (minLength times minItems)")
        return text

    def _string(self, s: dict[str, Any], name: str) -> str:
        fmt = s.get("format")
        candidates = []
        if isinstance(fmt, str) and fmt in _FORMATS:
            candidates.append(_FORMATS[fmt])
        word = name or "value"
        candidates += [f"mock {word}", word, "mock", "a", "0", "A", "x"]
        lo = s.get("minLength", 0) if isinstance(s.get("minLength"), int) else 0
        if lo > MAX_SIZE * 100:
            raise ValueError(f"minLength {lo} above {MAX_SIZE * 100}")
        hi = s.get("maxLength") if isinstance(s.get("maxLength"), int) else None
        pattern = s.get("pattern") if isinstance(s.get("pattern"), str) else None
        rx = None
        if pattern is not None:
            reps = repeat_product(pattern)
            if reps > MAX_SIZE * 100:
                raise ValueError(f"pattern {pattern[:60]!r} repeats at least {reps:,} times; "
                                 f"at most {MAX_SIZE * 100:,}")
            try:
                rx = re.compile(pattern)
            except re.error:
                rx = None
        for c in candidates:
            c = c + "x" * max(0, lo - len(c))
            if hi is not None:
                c = c[:hi]
            if rx is None or rx.search(c):
                return c
        if rx is not None and pattern is not None:
            # None of the placeholders matches: walk the regex itself (a tool with a
            # pattern such as ^[0-9]{3}-[a-z]{2}$ got 'mock code', which the agent's
            # validation refuses).
            made = from_regex(pattern, lo)
            if made is not None and rx.search(made) and len(made) >= lo and (
                    hi is None or len(made) <= hi):
                return made
        c = candidates[0] + "x" * max(0, lo - len(candidates[0]))
        return c[:hi] if hi is not None else c

    @staticmethod
    def number(s: dict[str, Any], *, integer: bool) -> int | float:
        def num(key: str) -> float | None:
            v = s.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        lo, hi = num("minimum"), num("maximum")
        xlo, xhi = num("exclusiveMinimum"), num("exclusiveMaximum")
        step = num("multipleOf")
        if integer:
            step = max(1.0, step or 1.0)
            if step != int(step):
                step = float(math.ceil(step))
        low = -math.inf
        if lo is not None:
            low = lo
        if xlo is not None:
            low = max(low, xlo)
        high = math.inf
        if hi is not None:
            high = hi
        if xhi is not None:
            high = min(high, xhi)
        # Start from 1 (a natural count) and move into [low, high].
        v = 1.0
        if v < low or (xlo is not None and v <= xlo):
            v = low
        if v > high or (xhi is not None and v >= xhi):
            v = high
        if step and not math.isfinite(v / step):
            # A bound near the largest double over a small multipleOf (1e308 / 0.5): the
            # quotient overflowed ("cannot convert float infinity to integer" was the
            # 400). Step by the step's numerator instead, exactly: an integer multiple.
            return _huge_multiple(v, step, low, high, xlo, xhi)
        if step:
            k = math.ceil(v / step)
            v = k * step
            if (xlo is not None and v <= xlo):
                v += step
            if v > high or (xhi is not None and v >= xhi):
                v = (k - 1) * step
        elif xlo is not None and v <= xlo:
            v = xlo + (1 if integer else min(1.0, (high - xlo) / 2 if math.isfinite(high)
                                             else 1.0))
        elif xhi is not None and v >= xhi:
            v = xhi - (1 if integer else min(1.0, (xhi - low) / 2 if math.isfinite(low)
                                             else 1.0))
        if integer:
            iv = math.ceil(v) if math.isfinite(v) else 1
            if xlo is not None and iv <= xlo:
                iv = math.floor(xlo) + 1
            if xhi is not None and iv >= xhi:  # 1e308 - 1 is 1e308 in doubles
                iv = math.ceil(xhi) - 1
            return int(iv)
        # Past 2^53 a step of 1 is lost to rounding (exclusiveMinimum 1e308 gave 1e308):
        # the next double inward.
        if xlo is not None and v <= xlo:
            v = math.nextafter(xlo, math.inf)
        if xhi is not None and v >= xhi:
            v = math.nextafter(xhi, -math.inf)
        return float(v)
