"""The JSONL request log: one LLM call per line (pure Python, no dependencies).

``capacity serve --log``, ``capacity loadtest --log`` and your own agent can write it;
``capacity fit`` reads it. One JSON object per line, UTF-8, written when the call ends:

==================== ======== ==========================================================
key                  required meaning
==================== ======== ==========================================================
session              yes      session id (string or integer): one user's conversation
turn                 yes      turn id (string or integer), unique within the session
start                yes      when the call was issued (first attempt), Unix seconds
end                  yes      when its final attempt finished, Unix seconds (≥ start)
model                yes      model or deployment name
input_tokens         yes      prompt tokens, cached ones included
output_tokens        yes      generated tokens
cached_input_tokens  no       prompt tokens read from the provider's cache (default 0)
max_tokens           no       ``max_tokens`` sent with the request (default: not sent)
status               no       HTTP status of the final attempt (default 200)
retries              no       attempts retried before the final one (default 0)
name                 no       the call's label (a profile call ``name``, an agent node)
ttft                 no       seconds from the final attempt's send to its first token
time_scale           no       K of a run at ``--time-scale K`` (``capacity loadtest --log``,
                              ``capacity serve --log`` write it when K ≠ 1): the times are
                              wall seconds, K× short; ``capacity fit`` multiplies them by K.
                              One value for every line of a log (default: not recorded)
==================== ======== ==========================================================

Example::

    {"session": "s1", "turn": 3, "start": 1767225600.125, "end": 1767225603.5,
     "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 180, "max_tokens": 400,
     "name": "query-analysis"}

(one line in the file). Calls of one turn are grouped by ``(session, turn)``; calls that
overlap in time are a parallel fan-out. Times are seconds on one clock for the whole log
(Unix time is the convention; any clock works if every writer shares it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from capacity.errors import CapacityError
from capacity.jsonsafe import json_kind
from capacity.model.dist import MAX_TOKENS

FORMAT_KEYS: tuple[str, ...] = (
    "session", "turn", "start", "end", "model", "input_tokens", "output_tokens",
    "cached_input_tokens", "max_tokens", "status", "retries", "name", "ttft", "time_scale",
)
REQUIRED_KEYS: tuple[str, ...] = FORMAT_KEYS[:7]

# Unix seconds stay below this until the year 5138; a larger start is almost surely
# milliseconds or nanoseconds, which would silently stretch every duration.
_MAX_SECONDS = 1e11
# The largest --time-scale capacity serve, loadtest and fit accept.
MAX_TIME_SCALE = 1_000_000.0


def loads(text: str) -> Any:
    """``json.loads``, with nesting too deep for the parser's recursion reported as a
    :class:`json.JSONDecodeError` (a malformed file, not a crash)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


class RequestLogError(ValueError):
    """A request-log line breaks the format: ``rule`` says how, ``line`` where (if known)."""

    def __init__(self, rule: str, line: int | None = None) -> None:
        self.rule, self.line = rule, line
        super().__init__(rule if line is None else f"line {line}: {rule}")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One LLM call as logged (times in seconds, token counts in tokens)."""

    session: str
    turn: str
    start: float
    end: float
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    max_tokens: int | None = None
    status: int = 200
    retries: int = 0
    name: str | None = None
    ttft: float | None = None
    time_scale: float | None = None
    """K of the ``--time-scale K`` run that logged the call (its times are K× short);
    None: not recorded."""

    @property
    def ok(self) -> bool:
        """True when the final attempt succeeded (2xx)."""
        return 200 <= self.status < 300

    def to_json(self) -> str:
        """The record as one JSON line (no newline); optional keys at their default omitted."""
        d: dict[str, Any] = asdict(self)
        for key, default in (("cached_input_tokens", 0), ("max_tokens", None), ("status", 200),
                             ("retries", 0), ("name", None), ("ttft", None),
                             ("time_scale", None)):
            if d[key] == default:
                del d[key]
        return json.dumps(d, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Any) -> CallRecord:
        """Validate one parsed line; raises :class:`RequestLogError` naming the key and rule."""
        if not isinstance(d, dict):
            raise RequestLogError(f"expected a JSON object, got {json_kind(d)}")
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise RequestLogError(f"missing key(s) {', '.join(missing)} "
                                  f"(required: {', '.join(REQUIRED_KEYS)})")
        unknown = [k for k in d if k not in FORMAT_KEYS]
        if unknown:
            raise RequestLogError(f"unknown key {unknown[0]!r}; allowed: {', '.join(FORMAT_KEYS)}")
        start, end = _seconds(d, "start"), _seconds(d, "end")
        if end < start:
            raise RequestLogError(f"end {end!r} is before start {start!r}")
        ttft = None if d.get("ttft") is None else _nonneg_float(d, "ttft")
        if ttft is not None and ttft > end - start + 1e-6:
            raise RequestLogError(f"ttft {ttft!r} s is longer than the call ({end - start:.6g} s)")
        inp = _count(d, "input_tokens")
        cached = _count(d, "cached_input_tokens", 0)
        if cached > inp:
            raise RequestLogError(f"cached_input_tokens {cached} exceeds input_tokens {inp}")
        max_tokens = None if d.get("max_tokens") is None else _count(d, "max_tokens")
        if max_tokens == 0:  # no provider accepts it; the profile written would not load
            raise RequestLogError("max_tokens: expected an integer ≥ 1 (omit the key when "
                                  "none was sent), got 0")
        name = d.get("name")
        if name is not None and not isinstance(name, str):
            raise RequestLogError(f"name: expected a string, got {name!r}")
        model = d["model"]
        if not isinstance(model, str) or not model:
            raise RequestLogError(f"model: expected a non-empty string, got {model!r}")
        scale = d.get("time_scale")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int | float)
                                  or not 0 < scale <= MAX_TIME_SCALE):  # NaN fails too
            raise RequestLogError(f"time_scale: expected the run's --time-scale K, a number > 0 "
                                  f"and ≤ {MAX_TIME_SCALE:,.0f}, got {scale!r}")
        status = _count(d, "status", 200)
        if not 100 <= status <= 599:  # 0 or 999 read as a failed call, silently
            raise RequestLogError(f"status: expected an HTTP status (100-599), got {status}")
        return cls(
            session=_ident(d, "session"), turn=_ident(d, "turn"), start=start, end=end,
            model=model, input_tokens=inp, output_tokens=_count(d, "output_tokens"),
            cached_input_tokens=cached, max_tokens=max_tokens,
            status=status, retries=_count(d, "retries", 0), name=name,
            ttft=ttft, time_scale=None if scale is None else float(scale),
        )


def _ident(d: dict[str, Any], key: str) -> str:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, str | int) or v == "":
        raise RequestLogError(f"{key}: expected a string or integer id, got {v!r}")
    return str(v)


def _nonneg_float(d: dict[str, Any], key: str) -> float:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise RequestLogError(f"{key}: expected a finite number of seconds ≥ 0, got {v!r}")
    return float(v)


def _seconds(d: dict[str, Any], key: str) -> float:
    v = _nonneg_float(d, key)
    if v > _MAX_SECONDS:
        raise RequestLogError(f"{key}: {v!r} looks like milliseconds or nanoseconds; "
                              "times are seconds")
    return v


def _count(d: dict[str, Any], key: str, default: int | None = None) -> int:
    v = d.get(key, default)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise RequestLogError(f"{key}: expected an integer ≥ 0, got {v!r}")
    if key.endswith("tokens") and v > MAX_TOKENS:  # a profile could not hold it
        raise RequestLogError(f"{key}: at most {MAX_TOKENS:,} tokens per call, got {v:,}")
    return v


class RequestLogWriteError(CapacityError):
    """The request log could not be written (a full disk): ``"<file>: cannot write:
    <the system's reason>"``."""


class RequestLogWriter:
    """Append :class:`CallRecord` lines to a file (line-buffered: a killed run keeps its lines).

    Use as a context manager, or call :meth:`close`::

        with RequestLogWriter("calls.jsonl") as log:
            log.write(CallRecord(session="s1", turn=1, ...))
    """

    def __init__(self, path: str | Path | IO[str]) -> None:
        if isinstance(path, str | Path):
            self._fh: IO[str] = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._owned = True
        else:
            self._fh, self._owned = path, False
        self.name = str(path) if self._owned else "request log"
        self.count = 0

    def write(self, record: CallRecord) -> None:
        """Write one call (a record built elsewhere is re-validated: a bad log is worse
        than an exception at write time)."""
        line = record.to_json()
        CallRecord.from_dict(json.loads(line))
        try:
            self._fh.write(line + "\n")
        except OSError as e:
            raise RequestLogWriteError(f"{self.name}: cannot write: {e.strerror or e}"
                                       ) from None
        self.count += 1

    def write_call(self, **fields: Any) -> None:
        """Write one call from keyword fields (the keys of the format)."""
        self.write(CallRecord.from_dict(fields))

    def close(self) -> None:
        """Flush and close (only a file this writer opened)."""
        try:
            if self._owned:
                self._fh.close()
            else:
                self._fh.flush()
        except OSError as e:
            raise RequestLogWriteError(f"{self.name}: cannot write: {e.strerror or e}"
                                       ) from None

    def __enter__(self) -> RequestLogWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def iter_request_log(fh: IO[str]) -> Iterator[tuple[int, CallRecord]]:
    """Stream ``(line number, record)`` from an open log; blank lines are skipped.

    Raises :class:`RequestLogError` carrying the line number.
    """
    for lineno, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            raw = loads(line)
        except json.JSONDecodeError as e:
            # The column in the file's line: e.colno counts from the line break ending
            # it (a line cut short read "at column 1", pointing at nothing).
            raise RequestLogError(f"malformed JSON ({e.msg.removesuffix(' at')} at column "
                                  f"{e.pos + 1})",
                                  lineno) from None
        try:
            rec = CallRecord.from_dict(raw)
        except RequestLogError as e:
            raise RequestLogError(e.rule, lineno) from None
        yield lineno, rec
