"""Streaming readers: OTLP JSON trace files and JSONL request logs -> LLM call records.

Both read a file a line at a time (an OTLP JSON Lines file — what the OpenTelemetry
Collector's file exporter writes, one ``ExportTraceServiceRequest`` per line — or a JSONL
request log) and keep only a compact record per LLM call, the root span of each trace
and the session id seen on a trace: span payloads (prompts, messages, events, resource
attributes) are dropped as they are read, so memory grows with the number of LLM calls
and turns kept, not with the number or size of spans. A single pretty-printed OTLP JSON
document is also accepted; it is parsed whole (use JSON Lines for files larger than
memory).

GenAI attribute names recognised (first match wins):

============ ==================================================================
field        attributes
============ ==================================================================
LLM span     ``gen_ai.operation.name`` in chat / text_completion / generate_content,
             or ``gen_ai.system`` / ``gen_ai.provider.name`` with a model, or
             OpenInference ``openinference.span.kind = LLM``
model        ``gen_ai.request.model``, ``gen_ai.response.model``, ``llm.model_name``
input        ``gen_ai.usage.input_tokens``, ``gen_ai.usage.prompt_tokens``,
             ``llm.token_count.prompt``
output       ``gen_ai.usage.output_tokens``, ``gen_ai.usage.completion_tokens``,
             ``llm.token_count.completion``
cached       ``gen_ai.usage.cache_read.input_tokens``,
             ``gen_ai.usage.cache_read_input_tokens``,
             ``llm.token_count.prompt_details.cache_read``
max_tokens   ``gen_ai.request.max_tokens``, ``max_tokens`` / ``max_completion_tokens``
             inside OpenInference's ``llm.invocation_parameters``
session      ``session.id`` (OpenInference), ``gen_ai.conversation.id`` on any span
             of the trace
============ ==================================================================

A **turn** is a trace: the LLM calls under one root span (the agent's turn span, or the
request span of an agent served over HTTP). Its start and end are the root span's.

Several files are pooled. A JSONL log's session ids are its own: two logs that both hold a
session ``s1`` (two load-test runs at one N) hold two sessions, never one whose turns merge.
OTLP trace ids are global, so a trace may span files (a rotated export); a span read twice
(same traceId and spanId: a file copied, overlapping exports) is kept once, with a note.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal

from capacity.errors import CapacityError
from capacity.jsonsafe import json_kind
from capacity.model.dist import MAX_TOKENS

from .jsonl import CallRecord, RequestLogError, iter_request_log, loads

Format = Literal["otlp-json", "jsonl", "auto"]


class TraceError(CapacityError):
    """A trace file cannot be read; the message names file and line or span."""


# Times on both sides of UNIX_TIME_MIN_S, or a jump larger than MAX_TRACE_SPAN_S among times
# below it, mean two clocks (Unix time and a monotonic one, or two monotonic ones):
# durations across them would be garbage. Unix times may be months apart (days of logs).
MAX_TRACE_SPAN_S = 30 * 86400.0
UNIX_TIME_MIN_S = 1e9
"""Times from here (2001) on are Unix times; a clock from 0 stays below (31 years)."""
# No LLM deployment's typical call takes longer: a log whose median call does has its
# times in another unit.
MAX_MEDIAN_CALL_S = 600.0
# Traces are UTF-8; a leading byte-order mark (Windows tools write one) is dropped, as jq and
# pandas do, not read as part of the first JSON value.
TEXT_ENCODING = "utf-8-sig"

_LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion"}
_MODEL_KEYS = ("gen_ai.request.model", "gen_ai.response.model", "llm.model_name")
_INPUT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
               "llm.token_count.prompt")
_OUTPUT_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                "llm.token_count.completion")
_CACHED_KEYS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                "llm.token_count.prompt_details.cache_read")
_MAX_TOKENS_KEYS = ("gen_ai.request.max_tokens",)
_SESSION_KEYS = ("session.id", "gen_ai.conversation.id")


@dataclass
class ReadResult:
    """What the readers kept: LLM calls, turn boundaries and what was skipped."""

    calls: list[CallRecord] = field(default_factory=list)
    turn_bounds: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    """(session, turn) -> (start, end) seconds of the turn's root span (OTLP only)."""
    files: list[str] = field(default_factory=list)
    spans: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_at: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sessionless_turns: int = 0
    time_scale: float = 1.0
    """The factor the times were stretched by (:func:`capacity.fit.fitter.scale_times`)."""
    recorded_scales: dict[str, tuple[float, int]] = field(default_factory=dict)
    """JSONL file -> (the ``time_scale`` K its lines record, the first such line)."""
    repeated_spans: int = 0
    """LLM spans dropped as repeats of one already read (same traceId and spanId)."""
    _span_ids: set[tuple[str, str]] = field(default_factory=set)
    _repeat_at: str = ""
    _file_sessions: dict[str, str] = field(default_factory=dict)
    """JSONL session id -> the first file it was read in."""
    _shared_sessions: int = 0
    _first: tuple[float, str] = (math.inf, "")
    _last: tuple[float, str] = (-math.inf, "")

    def skip(self, reason: str, where: str) -> None:
        """Count one skipped span (the first place each reason occurred is kept)."""
        self.skipped[reason] += 1
        self.skipped_at.setdefault(reason, where)

    def clock(self, t: float, where: str) -> None:
        """Track the earliest and latest time seen, to catch two clocks in one input."""
        if t < self._first[0]:
            self._first = (t, where)
        if t > self._last[0]:
            self._last = (t, where)
        (t0, w0), (t1, w1) = self._first, self._last
        if t0 < UNIX_TIME_MIN_S <= t1:
            raise TraceError(
                f"{w1}: mixed clocks: time {t1:.6g} s is Unix time but {t0:.6g} s at {w0} is "
                "not; every file must use one clock (Unix seconds)")
        # Unix times months apart are several days' logs; two clocks from 0 are not.
        if t1 < UNIX_TIME_MIN_S and t1 - t0 > MAX_TRACE_SPAN_S:
            raise TraceError(
                f"{w1}: mixed clocks: time {t1:.6g} s is {(t1 - t0) / 86400:.0f} days after "
                f"{t0:.6g} s at {w0}; every file must use one clock (Unix seconds)")


def detect_format(path: Path) -> Literal["otlp-json", "jsonl"]:
    """``otlp-json`` when the first JSON value holds ``resourceSpans``, else ``jsonl``."""
    with open(path, encoding=TEXT_ENCODING, errors="replace") as fh:
        return _detect_text(fh.read(4096))


def _detect_text(head: str) -> Literal["otlp-json", "jsonl"]:
    """:func:`detect_format` of a file's first 4,096 characters."""
    compact = head.replace(" ", "").replace("\n", "").replace("\t", "").replace("\r", "")
    if compact.startswith(('{"resourceSpans"', '{"resource_spans"')) or (
            '"resourceSpans"' in head or '"resource_spans"' in head):
        return "otlp-json"
    return "jsonl"


def read_traces(paths: Iterable[str | Path], fmt: Format = "auto") -> ReadResult:
    """Read every file into one :class:`ReadResult`; raises :class:`TraceError`."""
    out = ReadResult()
    seen: dict[tuple[int, int], Path] = {}
    stdin_read = False
    for p in paths:
        if str(p) == "-":  # standard input, named <stdin> as the profile loader does
            if stdin_read:
                raise TraceError("'-' (standard input) given more than once; it can be "
                                 "read only once")
            stdin_read = True
            _read_text(sys.stdin.buffer.read(), "<stdin>", fmt, out)
            continue
        path = Path(p)
        if path.is_dir():
            raise TraceError(f"{path}: is a directory, not a trace file")
        if path.is_fifo():  # a pipe (`fit <(zcat log.jsonl.gz)`): read once, like stdin
            with open(path, "rb") as pipe:
                _read_text(pipe.read(), str(path), fmt, out)
            continue
        if not path.is_file():
            raise TraceError(f"{path}: not a regular file or pipe" if path.exists()
                             else f"{path}: no such file")
        # Read twice, every call would be in its turn twice: a fan-out of 2 out of nothing.
        st = path.stat()
        first = seen.setdefault((st.st_dev, st.st_ino), path)
        if first is not path:
            also = "" if str(first) == str(path) else f" (as {first})"
            raise TraceError(f"{path}: given more than once{also}; each file is read once")
        kind = detect_format(path) if fmt == "auto" else fmt
        try:
            # streamed: traces can be large; utf-8-sig drops a leading BOM (Windows tools
            # write one; json.loads refuses it), as jq and pandas do
            with open(path, encoding=TEXT_ENCODING) as fh:
                _read_stream(fh, str(path), kind, out)
        except UnicodeDecodeError:
            with open(path, "rb") as raw:  # the decoder's offset is within its chunk
                raise _not_utf8(raw, str(path)) from None
    if out._shared_sessions:
        out.notes.append(f"{out._shared_sessions:,} session id(s) appear in more than one "
                         "request log: each file's sessions were read as its own")
    if out.repeated_spans:
        out.notes.append(f"{out.repeated_spans:,} LLM span(s) were read before (same traceId "
                         f"and spanId, first repeat at {out._repeat_at}) and were kept once")
    return out


def _read_text(data: bytes, name: str, fmt: Format, out: ReadResult) -> None:
    """A whole trace's bytes (standard input; ``name`` for errors) into ``out``."""
    try:
        text = data.decode(TEXT_ENCODING)
    except UnicodeDecodeError:
        raise _not_utf8(io.BytesIO(data), name) from None
    kind = _detect_text(text[:4096]) if fmt == "auto" else fmt
    _read_stream(io.StringIO(text), name, kind, out)


def _not_utf8(raw: IO[bytes], name: str) -> TraceError:
    """Where the first byte that is not UTF-8 is, by line and column (1-based, in bytes):
    lines split at b"\\n", which no multi-byte UTF-8 sequence contains. A gzip file is
    named as one (its first bytes are 1f 8b), not as a bad byte at line 1."""
    if raw.read(2) == b"\x1f\x8b":
        how = "zcat FILE | capacity fit -" if name == "<stdin>" else \
            f"capacity fit <(zcat {name})"
        return TraceError(f"{name}: gzip-compressed, not text: decompress it first ({how})")
    raw.seek(0)
    for lineno, line in enumerate(raw, 1):
        try:
            line.decode("utf-8")  # a BOM is valid UTF-8: columns count its 3 bytes
        except UnicodeDecodeError as e:
            return TraceError(f"{name}:{lineno}: not UTF-8 text ({e.reason} at column "
                              f"{e.start + 1})")
    return TraceError(f"{name}: not UTF-8 text")  # a sequence cut by the end of the data


def _read_stream(fh: IO[str], name: str, kind: str, out: ReadResult) -> None:
    out.files.append(name)
    if kind == "jsonl":
        _read_jsonl(fh, name, out)
    else:
        _read_otlp(fh, name, out)


# ---------------------------------------------------------------------------------------
# JSONL request logs
# ---------------------------------------------------------------------------------------


def _read_jsonl(fh: IO[str], name: str, out: ReadResult) -> None:
    # Session ids are scoped by file: the n-th file's session s is read as "s\x00n" (the
    # first file's as given). Names never reach the profile; only equality matters.
    nth = len(out.files) - 1
    mine: set[str] = set()
    durations: list[float] = []
    first_scale: tuple[float | None, int] | None = None
    try:
        for lineno, rec in iter_request_log(fh):
            where = f"{name}:{lineno}"
            out.clock(rec.start, where)
            out.clock(rec.end, where)
            if first_scale is None:
                first_scale = (rec.time_scale, lineno)
                if rec.time_scale is not None:
                    out.recorded_scales[name] = (rec.time_scale, lineno)
            elif rec.time_scale != first_scale[0]:  # one log is one run, at one K
                raise TraceError(f"{where}: {_scale_said(rec.time_scale)} but line "
                                 f"{first_scale[1]} {_scale_said(first_scale[0])}; a log "
                                 "is one run at one time scale")
            if rec.session not in mine:
                mine.add(rec.session)
                first = out._file_sessions.setdefault(rec.session, name)
                if first != name:
                    out._shared_sessions += 1
            if nth:
                rec = replace(rec, session=f"{rec.session}\x00{nth}")
            out.calls.append(rec)
            durations.append(rec.end - rec.start)
    except RequestLogError as e:
        where = name if e.line is None else f"{name}:{e.line}"
        raise TraceError(f"{where}: {e.rule}") from None
    # Milliseconds on a clock from 0 pass the Unix-time check but stretch every call 1000×.
    median = sorted(durations)[len(durations) // 2] if durations else 0.0
    if median > MAX_MEDIAN_CALL_S:
        raise TraceError(f"{name}: the median call takes {median:,.0f} s "
                         f"({median / 60:,.0f} min): are the times in milliseconds? start and "
                         "end are seconds")


def _scale_said(k: float | None) -> str:
    return "records no time_scale" if k is None else f"records time_scale {k:g}"


# ---------------------------------------------------------------------------------------
# OTLP JSON
# ---------------------------------------------------------------------------------------


def _json_error(e: json.JSONDecodeError, column: int) -> str:
    """``malformed JSON (<why> at column N)``: some messages end in "at" themselves
    ("Unterminated string starting at"), which read "at at column"."""
    return f"malformed JSON ({e.msg.removesuffix(' at')} at column {column})"


def _iter_documents(fh: IO[str], name: str) -> Iterator[tuple[int, Any]]:
    """Yield (line, parsed object): one per line (JSON Lines), or the whole document."""
    first = fh.readline()
    skipped = 0  # blank lines before the first: the line numbers count them
    while first and not first.strip():
        first = fh.readline()
        skipped += 1
    if not first:
        return
    try:
        obj = loads(first)
    except json.JSONDecodeError:
        rest = first + fh.read()
        try:
            yield 1 + skipped, loads(rest)
        except json.JSONDecodeError as e:
            raise TraceError(f"{name}:{e.lineno + skipped}: "
                             f"{_json_error(e, e.colno)}") from None
        return
    yield 1 + skipped, obj
    for lineno, line in enumerate(fh, 2 + skipped):
        if not line.strip():
            continue
        try:
            yield lineno, loads(line)
        except json.JSONDecodeError as e:
            # The column in this line (e.colno counts from its line break when it is
            # cut short).
            raise TraceError(f"{name}:{lineno}: {_json_error(e, e.pos + 1)}") from None


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    v = d.get(camel)
    return d.get(snake) if v is None else v


@dataclass(frozen=True)
class _Malformed:
    """An OTLP intValue or doubleValue that is no number (``{"intValue": "12.5"}``): kept,
    not read as absent, so that a token count of that kind is named, not skipped as
    missing. ``str()`` is its JSON, for messages."""

    value: dict[str, Any]

    def __str__(self) -> str:
        return json.dumps(self.value)[:120]


def _int64(raw: Any, v: dict[str, Any]) -> int | _Malformed:
    """An OTLP intValue: a decimal string in OTLP JSON, a number from some exporters, in
    exponent form ("1e3") as protobuf's JSON mapping allows; a fraction or a word is kept
    malformed (``int(12.7)`` cut it to 12 without a word)."""
    if isinstance(raw, bool):
        return _Malformed(v)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)  # exact beyond 2^53, where a float is not
        except ValueError:
            pass
    try:
        f = float(raw)
    except (TypeError, ValueError, OverflowError):
        return _Malformed(v)
    return int(f) if math.isfinite(f) and f.is_integer() else _Malformed(v)


def _any_value(v: Any) -> Any:
    """An OTLP AnyValue as a Python value (an int64 is a decimal string in OTLP JSON)."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "string_value"):
        if k in v:
            return v[k]
    for k in ("intValue", "int_value"):
        if k in v:
            return _int64(v[k], v)
    for k in ("doubleValue", "double_value"):
        if k in v:
            try:
                return float(v[k])
            except (TypeError, ValueError, OverflowError):
                return _Malformed(v)
    for k in ("boolValue", "bool_value"):
        if k in v:
            return bool(v[k])
    for k in ("arrayValue", "array_value"):
        if k in v:
            arr = v[k].get("values") if isinstance(v[k], dict) else None
            return [_any_value(x) for x in arr] if isinstance(arr, list) else None
    return None


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    raw = span.get("attributes") or []
    if isinstance(raw, dict):  # some tools write a plain mapping
        return raw
    if not isinstance(raw, list):
        return {}
    out = {}
    for kv in raw:
        if isinstance(kv, dict) and "key" in kv:
            out[str(kv["key"])] = _any_value(kv.get("value"))
    return out


# OTLP times are Unix nanoseconds: 1e17 ns is 1973. A smaller time is another unit (or a
# clock from 0), read as nanoseconds it would make every call 10^3-10^9 times too fast.
# Unix times 1973-5138 in each smaller unit, from the largest.
_MIN_UNIX_NANOS = 1e17
_UNITS = ((1e14, "microseconds"), (1e11, "milliseconds"), (1e8, "seconds"))


def _number(v: Any) -> float | None:
    """A time field's value as a number (OTLP JSON writes int64 as a string), or None."""
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):
        try:  # a number written with a fraction: seconds, most likely
            ns = float(v)
        except (TypeError, ValueError, OverflowError):
            return None
        return ns if math.isfinite(ns) else None


def _no_times(span: dict[str, Any]) -> str:
    """Why a span has no usable start/end time, as a skip reason: a time that is there
    but no number ("soon") is not a missing one."""
    for camel, snake in (("startTimeUnixNano", "start_time_unix_nano"),
                         ("endTimeUnixNano", "end_time_unix_nano")):
        v = _get(span, camel, snake)
        if v is not None and _number(v) is None:
            return f"a {camel} that is not a number"
    return "no startTimeUnixNano/endTimeUnixNano"


def _nanos(span: dict[str, Any], camel: str, snake: str, where: str) -> float | None:
    v = _get(span, camel, snake)
    ns = _number(v)
    if ns is None or ns <= 0:
        return None
    if ns < _MIN_UNIX_NANOS:
        unit = next((u for low, u in _UNITS if ns >= low), None)
        looks = f"looks like Unix {unit}" if unit else "is not a Unix time (a clock from 0?)"
        raise TraceError(f"{where}: {camel} {v!r} {looks}; OTLP times are Unix nanoseconds "
                         "(19 digits today)")
    return ns / 1e9


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for k in keys:
        if attrs.get(k) is not None:
            return k, attrs[k]
    return None, None


def _is_llm_span(attrs: dict[str, Any]) -> bool:
    op = attrs.get("gen_ai.operation.name")
    if op is not None:
        return str(op) in _LLM_OPERATIONS
    if str(attrs.get("openinference.span.kind", "")).upper() == "LLM":
        return True
    return (("gen_ai.system" in attrs or "gen_ai.provider.name" in attrs)
            and _first(attrs, _MODEL_KEYS)[1] is not None)


def _token(attrs: dict[str, Any], keys: tuple[str, ...], where: str,
           prefix: str = "") -> int | None:
    """The first of ``keys`` present, a whole number of tokens (None when none is); one
    error naming ``where`` and the attribute when it is anything else: a fraction, a
    negative, a word were read as absent (the span skipped "with no ..." that has one) or
    cut to a whole number without a word."""
    key, v = _first(attrs, keys)
    if v is None:
        return None
    n: float | None = None
    if isinstance(v, int | float) and not isinstance(v, bool):
        n = v
    elif isinstance(v, str):
        try:
            n = float(v.strip())
        except ValueError:
            n = None
    if n is None or not math.isfinite(n) or not float(n).is_integer() or n < 0:
        got = v if isinstance(v, _Malformed) else json.dumps(v)[:120]
        raise TraceError(f"{where}: {prefix}{key}: expected a whole number of tokens ≥ 0 "
                         f'(OTLP JSON: {{"intValue": "1200"}}), got {got}')
    return int(n)


def _max_tokens(attrs: dict[str, Any], where: str) -> int | None:
    """The request's max_tokens; 0 reads as not sent (no provider accepts a cap of 0, and
    instrumentations record 0 for an unset value), which the profile cannot hold."""
    mt = _token(attrs, _MAX_TOKENS_KEYS, where)
    if mt:
        return mt
    params = attrs.get("llm.invocation_parameters")
    if isinstance(params, str):
        try:
            p = loads(params)
        except json.JSONDecodeError:
            return None
        if isinstance(p, dict):
            return _token(p, ("max_tokens", "max_completion_tokens", "max_output_tokens"),
                          where, "llm.invocation_parameters ") or None
    return None


def _object(v: Any, what: str, where: str) -> dict[str, Any]:
    """``v`` when it is a JSON object ({} when absent); else one error naming ``what``."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise TraceError(f"{where}: {what} is not a JSON object (got {json_kind(v)})")
    return v


def _objects(v: Any, what: str, where: str) -> list[dict[str, Any]]:
    """``v`` when it is a list of JSON objects ([] when absent); else one error."""
    if v is None:
        return []
    if not isinstance(v, list):
        raise TraceError(f"{where}: {what} is not a JSON array (got {json_kind(v)})")
    return [_object(x, f"an item of {what}", where) for x in v]


def _read_otlp(fh: IO[str], name: str, out: ReadResult) -> None:
    sessions: dict[str, str] = {}
    pending: list[tuple[str, CallRecord]] = []  # (trace id, call with turn = trace)
    for lineno, doc in _iter_documents(fh, name):
        if not isinstance(doc, dict):
            raise TraceError(f"{name}:{lineno}: expected an OTLP JSON object with "
                             "resourceSpans")
        rss = _get(doc, "resourceSpans", "resource_spans")
        if rss is None:
            raise TraceError(f"{name}:{lineno}: not OTLP JSON: no resourceSpans "
                             "(use --format jsonl for request logs)")
        where = f"{name}:{lineno}"
        for rs in _objects(rss, "resourceSpans", where):
            rattrs = _attrs(_object(rs.get("resource"), "resource", where))
            rsession = _first(rattrs, _SESSION_KEYS)[1]
            for ss in _objects(_get(rs, "scopeSpans", "scope_spans"), "scopeSpans", where):
                for span in _objects(ss.get("spans"), "spans", where):
                    _one_span(span, name, lineno, rsession, sessions, pending, out)
    for trace, rec in pending:
        session = sessions.get(trace)
        if session is None:
            out.sessionless_turns += 1
            session = ""
        out.calls.append(_with_session(rec, session))
    # Root-span bounds were stored under the empty session; re-key them by the session.
    for key in [k for k in out.turn_bounds if k[0] == "" and k[1] in sessions]:
        out.turn_bounds[(sessions[key[1]], key[1])] = out.turn_bounds.pop(key)


def _with_session(rec: CallRecord, session: str) -> CallRecord:
    return CallRecord(session=session, turn=rec.turn, start=rec.start, end=rec.end,
                      model=rec.model, input_tokens=rec.input_tokens,
                      output_tokens=rec.output_tokens,
                      cached_input_tokens=rec.cached_input_tokens,
                      max_tokens=rec.max_tokens, status=rec.status, retries=rec.retries,
                      name=rec.name, ttft=rec.ttft)


def _one_span(span: Any, name: str, lineno: int, rsession: Any, sessions: dict[str, str],
              pending: list[tuple[str, CallRecord]], out: ReadResult) -> None:
    if not isinstance(span, dict):
        raise TraceError(f"{name}:{lineno}: a span is not a JSON object")
    out.spans += 1
    trace = str(_get(span, "traceId", "trace_id") or "")
    span_id = str(_get(span, "spanId", "span_id") or "?")
    where = f"{name}:{lineno} span {span_id}"
    if not trace:
        out.skip("no traceId", where)
        return
    attrs = _attrs(span)
    start = _nanos(span, "startTimeUnixNano", "start_time_unix_nano", where)
    end = _nanos(span, "endTimeUnixNano", "end_time_unix_nano", where)
    _, sid = _first(attrs, _SESSION_KEYS)
    if sid is None:
        sid = rsession
    if sid is not None and str(sid):
        sessions.setdefault(trace, str(sid))
    parent = _get(span, "parentSpanId", "parent_span_id")
    if not parent and start is not None and end is not None and end >= start:
        out.turn_bounds[("", trace)] = (start, end)
    if not _is_llm_span(attrs):
        return
    if start is None or end is None:
        out.skip(_no_times(span), where)
        return
    if end < start:
        raise TraceError(f"{where}: end time is before start time")
    _, model = _first(attrs, _MODEL_KEYS)
    inp, outp = _token(attrs, _INPUT_KEYS, where), _token(attrs, _OUTPUT_KEYS, where)
    status_obj = span.get("status")
    code = status_obj.get("code") if isinstance(status_obj, dict) else None
    status = 500 if code in (2, "2", "STATUS_CODE_ERROR") else 200
    if status == 200:
        missing = [keys[0] for keys, v in ((_MODEL_KEYS, model), (_INPUT_KEYS, inp),
                                           (_OUTPUT_KEYS, outp)) if v is None]
        if missing:
            out.skip("no " + " / ".join(missing), where)
            return
    elif model is None:
        out.skip("no gen_ai.request.model", where)
        return
    if "429" in str(attrs.get("error.type", "")) or "RateLimit" in str(attrs.get("error.type",
                                                                              "")):
        status = 429
    for what, v in (("input tokens", inp), ("output tokens", outp),
                    ("max_tokens", _max_tokens(attrs, where))):
        if v is not None and v > MAX_TOKENS:  # a profile could not hold it
            raise TraceError(f"{where}: {what}: at most {MAX_TOKENS:,} per call, got {v:,}")
    if span_id != "?":
        if (trace, span_id) in out._span_ids:
            out.repeated_spans += 1
            out._repeat_at = out._repeat_at or where
            return
        out._span_ids.add((trace, span_id))
    out.clock(start, where)
    out.clock(end, where)
    cached = _token(attrs, _CACHED_KEYS, where) or 0
    rec = CallRecord(session="", turn=trace, start=start, end=end, model=str(model),
                     input_tokens=inp or 0, output_tokens=outp or 0,
                     cached_input_tokens=min(cached, inp or 0),
                     max_tokens=_max_tokens(attrs, where), status=status)
    pending.append((trace, rec))
