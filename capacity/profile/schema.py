"""Profile format: typed, immutable, validated once at load.

A profile describes one agent workload against one provider account:

* ``models`` — latency per model (time to first token + output tokens / tokens per second);
* ``quotas`` — named limits, each over one or more models, with dimensions
  ``rpm``/``tpm``/``itpm``/``otpm``/``rpd``/``tpd``, how they are enforced (fixed window,
  sliding window or token bucket) and how tokens are counted at admission;
* ``session`` — think time (closed loop) or cadence (turn start to turn start) and a
  weighted mix of turn types, each an ordered list of steps;
* ``retry`` — the client's 429 policy (defaults: openai-python ≤ 2.51's rule);
* ``targets`` — acceptable 429 fraction and, optionally, p95 turn latency.

Validation is done by pydantic models (which also give ``capacity schema`` its JSON
Schema); cross-references (a call naming an unknown model, a per-window allowance of
zero, ...) are checked afterwards by :func:`_check_references`. :mod:`capacity.loader`
turns any failure into a :class:`~capacity.errors.ProfileError` naming file, line and
key path.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StrictBool,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from capacity.jsonsafe import as_written
from capacity.model.dist import (
    DURATION_SCHEMA_PATTERN,
    MAX_SECONDS,
    MAX_TOKENS,
    MAX_WEIGHT,
    Distribution,
    dist_json_schema,
    parse_duration,
)
from capacity.profile.presets import apply_preset

# ---------------------------------------------------------------------------------------
# Field types
# ---------------------------------------------------------------------------------------


def _dist_type(quantity: Any) -> Any:
    return Annotated[
        Distribution,
        BeforeValidator(lambda v: Distribution.parse(v, quantity)),
        PlainSerializer(lambda d: d.to_dict()),
        WithJsonSchema(dist_json_schema(quantity)),
    ]


if TYPE_CHECKING:  # to type checkers these are plain Distributions
    DurationDist = Distribution
    TokenDist = Distribution
    CountDist = Distribution
    RateDist = Distribution
else:
    DurationDist = _dist_type("duration")
    TokenDist = _dist_type("tokens")
    CountDist = _dist_type("count")
    RateDist = _dist_type("number")


# ---------------------------------------------------------------------------------------
# Bounded scalar types: one per kind of field, each stating its bounds in the JSON Schema.
# Every number a profile holds is finite and within bounds far beyond any real workload;
# the models downstream can rely on that (no overflow, no negative durations).
# ---------------------------------------------------------------------------------------

MAX_LIMIT = 1e12
"""Largest quota limit (requests or tokens per period)."""
MAX_RETRIES = 100
"""Most retries per call."""
MAX_CONCURRENCY = 1_000_000
"""Largest client concurrency cap."""
MIN_WINDOW_S = 1e-3
"""Shortest enforcement window or bucket depth (1 ms; providers use 1 s or more)."""
MIN_TOKENS_PER_SECOND = 1e-3
"""Slowest generation speed accepted (a token every 1,000 s)."""
MAX_CALLS_PER_TURN = 10_000
"""Most calls one turn may make (repeat and parallel counts multiply)."""
MAX_FALLBACK_DEPTH = 100
"""Most routes one chain of fallbacks may pass through (a route, its fallback, that
route's fallback...): real fleets chain two or three; the fleet's walks recurse."""


def _short(value: Any) -> str:
    text = as_written(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _real(v: Any, what: str, strings: bool = False) -> float:
    """A finite real number (not a bool); numeric strings too when ``strings``."""
    if strings and isinstance(v, str):
        with contextlib.suppress(ValueError):
            v = float(v.replace("_", ""))
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected {what}, got {_short(v)}")
    try:
        x = float(v)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise ValueError(f"must be a finite number, got {_short(v)}")
    return x


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 1000 and float(x).is_integer() else f"{x:g}"


def _seconds_type(low: float, low_open: bool, desc: str) -> Any:
    """Seconds (a number, or a string such as 150s, 2.5m, 500ms) in [low, MAX_SECONDS]."""
    def check(v: Any) -> float:
        s = parse_duration(v)
        if s < low or (low_open and s <= low) or s > MAX_SECONDS:
            rel = ">" if low_open else "≥"
            raise ValueError(f"must be {desc} ({rel} {_fmt(low)}s, at most 30 days = "
                             f"{MAX_SECONDS:,.0f}s), got {_short(v)}")
        return s

    bound: dict[str, Any] = {"exclusiveMinimum": low} if low_open else {"minimum": low}
    return Annotated[float, BeforeValidator(check), WithJsonSchema({
        "anyOf": [{"type": "number", **bound, "maximum": MAX_SECONDS},
                  {"type": "string",
                   "pattern": DURATION_SCHEMA_PATTERN}],
        "description": f"{desc}: seconds, or a string such as 150s, 2.5m, 500ms; "
        f"{'more than' if low_open else 'at least'} {_fmt(low)}s, at most 30 days"})]


def _number_type(low: float, high: float, low_open: bool, what: str,
                 strings: bool = False) -> Any:
    """A finite number in [low, high] (or (low, high])."""
    def check(v: Any) -> float:
        x = _real(v, what, strings)
        if x < low or (low_open and x <= low) or x > high:
            rel = ">" if low_open else "≥"
            raise ValueError(f"must be {rel} {_fmt(low)} and at most {_fmt(high)}, "
                             f"got {_short(v)}")
        return x

    bound: dict[str, Any] = {"exclusiveMinimum": low} if low_open else {"minimum": low}
    return Annotated[float, BeforeValidator(check),
                     WithJsonSchema({"type": "number", **bound, "maximum": high})]


def _count_type(low: int, high: int, what: str) -> Any:
    """A whole number in [low, high] (``3.0`` is accepted as 3, ``true`` is not)."""
    def check(v: Any) -> int:
        x = _real(v, what)
        if not x.is_integer():
            raise ValueError(f"expected {what}, got {_short(v)}")
        if not low <= x <= high:
            raise ValueError(f"must be ≥ {low:,} and at most {high:,}, got {_short(v)}")
        return int(x)

    return Annotated[int, BeforeValidator(check), WithJsonSchema(
        {"type": "integer", "minimum": low, "maximum": high, "description": what})]


if TYPE_CHECKING:  # to type checkers these are plain numbers
    Seconds = float
    PositiveSeconds = float
    WindowSeconds = float
    LimitRate = float
    PositiveFloat = float
    Weight = float
    NonNegInt = int
    PositiveInt = int
    TokenCount = int
else:
    # Durations (seconds).
    Seconds = _seconds_type(0.0, False, "a duration")
    PositiveSeconds = _seconds_type(0.0, True, "a positive duration")
    WindowSeconds = _seconds_type(MIN_WINDOW_S, False, "a positive duration")
    # Rates (per period or per second) and relative weights.
    LimitRate = _number_type(0.0, MAX_LIMIT, True, "a positive number", strings=True)
    PositiveFloat = _number_type(0.0, MAX_LIMIT, True, "a positive number")
    Weight = _number_type(0.0, MAX_WEIGHT, True, "a positive number")
    # Counts and token counts.
    NonNegInt = _count_type(0, MAX_RETRIES, "an integer")
    PositiveInt = _count_type(1, MAX_CONCURRENCY, "an integer")
    TokenCount = _count_type(1, MAX_TOKENS, "an integer number of tokens")

# A fraction may be written as a percentage: "1%" is 0.01 (YAML reads 1% as a string).
# One pattern for the loader and the published JSON Schema, so that an editor validating
# against `capacity schema` refuses what `capacity validate` does: 0 to 100, plain
# decimals (no sign, no exponent), the open ends of an interval left out by lookaheads.
_PERCENT_NUMBER = r"(100(?:\.0*)?|[0-9]{1,2}(?:\.[0-9]*)?|\.[0-9]+)"
_PERCENT_ZERO = r"(?!\s*(?:0+(?:\.0*)?|\.0+)\s*%)"
_PERCENT_HUNDRED = r"(?!\s*100(?:\.0*)?\s*%)"


def _percent_pattern(low_open: bool, high_open: bool) -> str:
    return ("^" + (_PERCENT_ZERO if low_open else "") + (_PERCENT_HUNDRED if high_open else "")
            + r"\s*" + _PERCENT_NUMBER + r"\s*%\s*$")


_PERCENT = re.compile(r"\s*" + _PERCENT_NUMBER + r"\s*%\s*")
PERCENT_SCHEMA_PATTERN = _percent_pattern(False, False)


def _percent(v: Any, low_open: bool = False, high_open: bool = False) -> Any:
    """``"N%"`` as N / 100 (0 to 100, an end left out where the interval is open, the
    value shown as written); another string refused saying what is wanted; anything else
    as given (the number's bounds then check it)."""
    if isinstance(v, str):
        m = _PERCENT.fullmatch(v)
        x = float(m.group(1)) / 100 if m else math.nan
        if m and (x > 0 or not low_open) and (x < 1 or not high_open):
            return x
        low, high = ("above 0%" if low_open else "from 0%"), (
            "below 100%" if high_open else "to 100%")
        raise ValueError(f"expected a fraction (0.01) or a percentage {low} {high} "
                         f"(1%), got {_short(v)}")
    return v


def _fraction_type(*, low_open: bool, high_open: bool) -> Any:
    """A fraction in [0, 1] (an end open when ``low_open`` / ``high_open``): a number, or
    a percentage string (``1%``)."""
    bounds = {"exclusiveMinimum" if low_open else "minimum": 0,
              "exclusiveMaximum" if high_open else "maximum": 1}
    # The Field before the validator: pydantic up to 2.6 cannot put `strict` on a
    # before-validator's schema (the floors' CI found it); this order means the same.
    return Annotated[float,
                     Field(gt=0 if low_open else None, ge=None if low_open else 0,
                           lt=1 if high_open else None, le=None if high_open else 1,
                           strict=True, allow_inf_nan=False),
                     BeforeValidator(lambda v: _percent(v, low_open, high_open)),
                     WithJsonSchema({"anyOf": [
                         {"type": "number", **bounds},
                         {"type": "string", "pattern": _percent_pattern(low_open, high_open),
                          "description": "a percentage: 1% is 0.01"}]})]


if TYPE_CHECKING:
    Fraction = float
    OpenFraction = float
    ThresholdFraction = float
else:
    Fraction = _fraction_type(low_open=False, high_open=False)  # [0, 1]
    OpenFraction = _fraction_type(low_open=True, high_open=True)  # (0, 1)
    ThresholdFraction = _fraction_type(low_open=False, high_open=True)  # [0, 1)

DIMENSIONS: tuple[str, ...] = ("rpm", "tpm", "itpm", "otpm", "rpd", "tpd")
"""Quota dimensions: requests/tokens/input tokens/output tokens per minute, per day."""

DIMENSION_PERIOD_S: dict[str, float] = {
    "rpm": 60.0, "tpm": 60.0, "itpm": 60.0, "otpm": 60.0, "rpd": 86400.0, "tpd": 86400.0,
}
DIMENSION_UNIT: dict[str, str] = {
    "rpm": "requests", "rpd": "requests", "tpm": "tokens", "tpd": "tokens",
    "itpm": "input tokens", "otpm": "output tokens",
}


class Spec(BaseModel):
    """Base of every profile object: frozen, strict about unknown keys (with a suggestion)."""

    # Built on first use, not as each class is defined: that built every nested model's
    # own validator and serializer (~0.05 s of CPU at every start-up, --help included),
    # while a profile validates through Profile's alone.
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True,
                              defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        return cls._check_keys(data)

    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            allowed = [f.alias or name for name, f in cls.model_fields.items()]
            for key in data:
                if key not in allowed:
                    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key '{key}'" + hint.replace("{", "(").replace("}", ")")
                        + "; allowed: {allowed}",
                        {"key": str(key), "allowed": ", ".join(allowed)},
                    )
        elif data is not None and not isinstance(data, BaseModel):
            raise PydanticCustomError(
                "expected_mapping", "expected a mapping of keys, got {got}", {"got": repr(data)}
            )
        return data


# ---------------------------------------------------------------------------------------
# Models and calls
# ---------------------------------------------------------------------------------------


class ModelSpec(Spec):
    """Latency of one model or deployment: ``ttft + output_tokens / tokens_per_second``."""

    ttft: DurationDist = Field(default=Distribution.fixed(0.5, "duration"),
                               description="time to first token (seconds)")
    tokens_per_second: RateDist = Field(description="output tokens generated per second")
    max_tokens: TokenCount | None = Field(
        default=None, description="default max_tokens for calls to this model")

    @field_validator("tokens_per_second")
    @classmethod
    def _positive_rate(cls, v: Distribution) -> Distribution:
        if v.lower < MIN_TOKENS_PER_SECOND:
            raise ValueError(f"must be > 0: at least {MIN_TOKENS_PER_SECOND:g} tokens per "
                             f"second (every value), got {v.describe()}")
        return v


class CallSpec(Spec):
    """One upstream LLM call."""

    model: str = Field(description="a key of `models`")
    input_tokens: TokenDist = Field(description="prompt tokens (including cached ones)")
    cached_input_fraction: Fraction = Field(
        default=0.0,
        description="share of input_tokens read from the provider's prompt cache (0..1)")
    output_tokens: TokenDist = Field(description="generated tokens (cut at max_tokens)")
    max_tokens: TokenCount | None = Field(
        default=None, description="max_tokens sent with the call (defaults to the model's)")
    name: str | None = Field(default=None, description="label shown in reports")


def _step_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        kinds = [k for k in ("call", "parallel", "optional", "repeat") if k in v]
        if len(kinds) == 1:
            return kinds[0]
        if not kinds and len(v) == 1:
            return None
        return kinds[0] if kinds else None
    if isinstance(v, BaseModel):
        return {CallStep: "call", ParallelStep: "parallel", OptionalStep: "optional",
                RepeatStep: "repeat"}.get(type(v))
    return None


class Block(Spec):
    """Body of a compound step: exactly one of ``call`` or ``steps``."""

    call: CallSpec | None = Field(default=None, description="a single call")
    steps: list[Step] | None = Field(default=None, description="a sequence of steps")

    @model_validator(mode="after")
    def _one_body(self) -> Block:
        if (self.call is None) == (self.steps is None):
            raise PydanticCustomError("body", "give exactly one of 'call' or 'steps'")
        if self.steps is not None and not self.steps:
            raise PydanticCustomError("body", "'steps' must not be empty")
        return self

    @property
    def body(self) -> tuple[Step, ...]:
        """The body as a sequence of steps."""
        if self.call is not None:
            return (CallStep(call=self.call),)
        return tuple(self.steps or ())


class ParallelBlock(Block):
    """``count`` copies of the body launched at the same instant (fan-out)."""

    count: CountDist = Field(description="how many copies run in parallel")


class OptionalBlock(Block):
    """The body runs with ``probability``, otherwise it is skipped."""

    probability: Fraction = Field(description="chance that the body runs (0..1)")


class RepeatBlock(Block):
    """The body runs ``count`` times in sequence (e.g. a tool-calling loop of 0..k calls)."""

    count: CountDist = Field(description="how many times the body runs, one after another")


class CallStep(Spec):
    """A single call."""

    call: CallSpec


class ParallelStep(Spec):
    """A parallel group."""

    parallel: ParallelBlock


class OptionalStep(Spec):
    """An optional step."""

    optional: OptionalBlock


class RepeatStep(Spec):
    """A repeated step (loop)."""

    repeat: RepeatBlock


STEP_KINDS = ("call", "parallel", "optional", "repeat")


def _check_step(v: Any) -> Any:
    """Name the problem with a step's keys precisely (the union alone cannot)."""
    if isinstance(v, BaseModel):
        return v
    if not isinstance(v, dict):
        raise PydanticCustomError(
            "step_kind", "a step is a mapping with one of: call, parallel, optional, repeat; "
            "got {got}", {"got": repr(v)})
    kinds = [k for k in STEP_KINDS if k in v]
    others = [str(k) for k in v if k not in STEP_KINDS]
    if not kinds:
        key = others[0] if others else ""
        close = difflib.get_close_matches(key, STEP_KINDS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise PydanticCustomError(
            "step_kind", "unknown step '{key}'" + hint + "; a step is one of: call, parallel, "
            "optional, repeat", {"key": key})
    if len(kinds) > 1:
        raise PydanticCustomError(
            "step_kind", "a step has exactly one of call, parallel, optional, repeat; got "
            "{got}", {"got": ", ".join(kinds)})
    if others:
        close = difflib.get_close_matches(others[0], ["weight", "count", "probability",
                                                      "steps"], n=1)
        where = (f"; '{close[0]}' belongs inside the '{kinds[0]}' block"
                 if close and kinds[0] != "call" else "")
        raise PydanticCustomError(
            "step_kind", "unknown key '{key}' beside '{kind}': a step has exactly one key"
            + where, {"key": others[0], "kind": kinds[0]})
    return v


Step = Annotated[
    Annotated[CallStep, Tag("call")]
    | Annotated[ParallelStep, Tag("parallel")]
    | Annotated[OptionalStep, Tag("optional")]
    | Annotated[RepeatStep, Tag("repeat")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step is a mapping with exactly one of: call, parallel, "
        "optional, repeat",
    ),
    BeforeValidator(_check_step),
]


class TurnSpec(Spec):
    """One turn type: an ordered list of steps, with its weight in the session's mix."""

    weight: Weight = Field(default=1.0, description="relative frequency of this turn type")
    steps: list[Step] = Field(min_length=1, description="the turn's steps, in order")


class SessionSpec(Spec):
    """How a session paces its turns."""

    think_time: DurationDist | None = Field(
        default=None, description="closed loop: pause after a turn ends before the next")
    cadence: DurationDist | None = Field(
        default=None,
        description="fixed cadence: time from one turn start to the next (a late turn "
        "delays the next)")
    turns: dict[str, TurnSpec] = Field(min_length=1, description="turn mix by name")

    @model_validator(mode="after")
    def _one_pacing(self) -> SessionSpec:
        if (self.think_time is None) == (self.cadence is None):
            # Which case: a think time added to a cadence profile read as none given.
            which = ("neither is given" if self.think_time is None else
                     "both are given; remove one (with --set, KEY=null removes a key)")
            raise PydanticCustomError(
                "pacing", "give exactly one of 'think_time' (closed loop) or 'cadence': "
                f"{which}")
        if self.cadence is not None and self.cadence.mean <= 0:
            raise PydanticCustomError("pacing", "cadence must have a positive mean")
        return self

    @property
    def mode(self) -> Literal["think_time", "cadence"]:
        """``think_time`` (closed loop) or ``cadence`` (turn start to turn start)."""
        return "think_time" if self.think_time is not None else "cadence"

    @property
    def pause(self) -> Distribution:
        """The think time or cadence distribution (seconds)."""
        d = self.think_time if self.think_time is not None else self.cadence
        assert d is not None
        return d


class PopulationSpec(SessionSpec):
    """Another kind of session beside ``session``: its own pacing and turn mix, and either
    a fixed count of sessions (held while the ceiling search varies N) or a share of N."""

    sessions: Annotated[int, Field(ge=0, le=MAX_CONCURRENCY, strict=True)] | None = Field(
        default=None, description="a fixed number of these sessions, held while N varies")
    share: OpenFraction | None = \
        Field(default=None, description="this population's share of N (the rest of N runs "
              "`session`)")

    @model_validator(mode="after")
    def _one_size(self) -> PopulationSpec:
        if (self.sessions is None) == (self.share is None):
            raise PydanticCustomError(
                "population_size", "give exactly one of 'sessions' (a fixed count, held) or "
                "'share' (a share of N)")
        return self


# ---------------------------------------------------------------------------------------
# Quotas
# ---------------------------------------------------------------------------------------


_SPAN_DEFAULT_S = 60.0  # an enforcement's window and bucket depth unless given


class Enforcement(Spec):
    """How the provider checks a limit.

    * ``fixed_window``: a counter per window of ``window`` seconds allows
      ⌊Q·window/period⌋ (OpenAI "60,000 RPM as 1,000 per second"; Azure 1 s / 10 s checks).
    * ``sliding_window``: at most ⌊Q·window/period⌋ in any interval of ``window`` seconds.
    * ``token_bucket``: refills continuously at Q/period per second up to a depth of
      ``burst`` seconds of refill (Anthropic).
    """

    type: Literal["fixed_window", "sliding_window", "token_bucket"] = "fixed_window"
    window: WindowSeconds = Field(default=_SPAN_DEFAULT_S,
                                  description="window length for *_window types")
    burst: WindowSeconds = Field(default=_SPAN_DEFAULT_S,
                                 description="token bucket depth, in seconds of refill")

    # Each type reads one of window and burst; the other, given, was silently ignored
    # (`{type: token_bucket, window: 10s}` was a 60 s bucket). Its default (60 s) is let
    # through: a profile's dump carries both fields.
    @field_validator("window")
    @classmethod
    def _window_of_a_window(cls, v: float, info: ValidationInfo) -> float:
        if info.data.get("type") == "token_bucket" and v != _SPAN_DEFAULT_S:
            raise ValueError("a token bucket has no window: its depth is `burst` (seconds of "
                             "refill, 60s unless given); give burst instead (to change the "
                             "type, set the enforcement whole: enforcement={type: "
                             "token_bucket, burst: 10s})")
        return v

    @field_validator("burst")
    @classmethod
    def _burst_of_a_bucket(cls, v: float, info: ValidationInfo) -> float:
        kind = info.data.get("type", "fixed_window")
        if kind != "token_bucket" and v != _SPAN_DEFAULT_S:
            raise ValueError(f"burst is a token bucket's depth; a {kind} has none: give "
                             f"window instead (to change the type, set the enforcement whole: "
                             f"enforcement={{type: {kind}, window: 10s}})")
        return v


class LimitSpec(Spec):
    """A limit with its own enforcement, overriding the quota's."""

    limit: LimitRate = Field(description="requests or tokens per period")
    enforcement: Enforcement | None = None


def _limit(v: Any) -> Any:
    """A limit: a number is shorthand for ``{limit: N}`` (numeric strings such as a quoted
    ``"1e6"`` count as numbers)."""
    if isinstance(v, dict | BaseModel):
        return v
    x = _real(v, "a positive number or {limit: .., enforcement: ..}", strings=True)
    if not 0 < x <= MAX_LIMIT:
        raise ValueError(f"must be > 0 and at most {_fmt(MAX_LIMIT)}, got {_short(v)}")
    return {"limit": x}


class _LimitJsonSchema:
    """A limit's JSON Schema, made when a schema is asked for (``capacity schema``), not at
    import: it holds the enforcement's, and making that builds the Enforcement model."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {"anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_LIMIT},
            {"type": "object", "additionalProperties": False, "required": ["limit"],
             "properties": {"limit": {"type": "number", "exclusiveMinimum": 0,
                                      "maximum": MAX_LIMIT},
                            "enforcement": Enforcement.model_json_schema()}},
        ], "description": "a limit per period, or {limit, enforcement} to override the "
            "quota's"}


Limit = Annotated[LimitSpec, BeforeValidator(_limit), _LimitJsonSchema()]


class QuotaSpec(Spec):
    """A named provider limit shared by the calls to ``models``."""

    preset: Literal["azure-standard", "openai", "anthropic"] | None = Field(
        default=None,
        description="provider rules filling in the fields left out (see capacity.presets)")
    models: list[str] = Field(min_length=1, description="models/deployments sharing it")
    rpm: Limit | None = None
    tpm: Limit | None = None
    itpm: Limit | None = None
    otpm: Limit | None = None
    rpd: Limit | None = None
    tpd: Limit | None = None
    enforcement: Enforcement = Field(default_factory=Enforcement)
    charge_max_tokens: StrictBool = Field(
        default=False,
        description="OpenAI/Azure style: a call is charged prompt + max_tokens at admission")
    cached_input_exempt: StrictBool = Field(
        default=False, description="Anthropic style: cached input tokens are not counted")
    rejected_count: StrictBool = Field(
        default=True,
        description="rejected attempts count against the request limits (OpenAI says so)")

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "preset" in data:
            try:
                data = {**apply_preset(data), "preset": data["preset"]}
            except ValueError as e:
                raise PydanticCustomError("preset", str(e).replace("{", "(").replace(
                    "}", ")")) from None
        return cls._check_keys(data)

    @model_validator(mode="after")
    def _some_dimension(self) -> QuotaSpec:
        if not self.limits():
            raise PydanticCustomError(
                "no_limit", "a quota needs at least one of: " + ", ".join(DIMENSIONS))
        return self

    def limits(self) -> dict[str, LimitSpec]:
        """The dimensions this quota limits, in canonical order."""
        out = {}
        for d in DIMENSIONS:
            v = getattr(self, d)
            if v is not None:
                out[d] = v
        return out

    def enforcement_for(self, dim: str) -> Enforcement:
        """Effective enforcement of one dimension (daily limits default to day windows)."""
        lim: LimitSpec | None = getattr(self, dim)
        if lim is not None and lim.enforcement is not None:
            return lim.enforcement
        if DIMENSION_PERIOD_S[dim] > 60:
            return Enforcement(type="fixed_window", window=DIMENSION_PERIOD_S[dim])
        return self.enforcement


class RetrySpec(Spec):
    """Client behaviour on a 429. The defaults are openai-python ≤ 2.51's rule (and the
    older anthropic SDK's): a retry-after ≤ 60 s is waited, a longer one backs off.
    openai 3.57 waits ≤ 120 s and gives up above; anthropic 2.14 waits any positive
    retry-after (``max_retry_after: 30d`` models it; openai 3.57 is ``max_retry_after:
    120s`` with ``beyond_max_retry_after: give_up``). The defaults stay: the shipped
    answers and the reference models depend on them."""

    max_retries: NonNegInt = Field(default=2, description="retries per call after a 429")
    initial_delay: Seconds = 0.5
    max_delay: Seconds = 8.0
    jitter: Fraction = Field(default=0.25, description="backoff is cut by up to this fraction")
    honour_retry_after: StrictBool = True
    max_retry_after: Seconds = Field(
        default=60.0, description="a longer retry-after falls back to the backoff (or, "
        "with beyond_max_retry_after: give_up, ends the call's retries)")
    beyond_max_retry_after: Literal["backoff", "give_up"] = Field(
        default="backoff",
        description="a retry-after longer than max_retry_after: back off (openai ≤ 2.51) "
        "or give up the call (openai 3.57, max_retry_after 120s)")
    rejection_latency: Seconds = Field(
        default=0.05, description="time for a 429 to reach the client (seconds)")
    on_exhausted: Literal["abort_turn", "continue"] = Field(
        default="abort_turn",
        description="when a call fails after its retries: abort the turn or carry on")


class PacingSpec(Spec):
    """Optional client-side pacing: calls wait instead of being sent into a 429."""

    rpm: PositiveFloat | None = Field(default=None, description="client token bucket, calls/min")
    burst: Seconds = Field(default=1.0, description="client bucket depth, seconds of refill")
    concurrency: PositiveInt | None = Field(default=None, description="max calls in flight")

    @model_validator(mode="after")
    def _something(self) -> PacingSpec:
        if self.rpm is None and self.concurrency is None:
            raise PydanticCustomError("pacing", "give 'rpm' and/or 'concurrency'")
        return self


# ---------------------------------------------------------------------------------------
# Fleets: deployments and routes (the routing rule itself is capacity.model.routing)
# ---------------------------------------------------------------------------------------


class DeploymentSpec(Spec):
    """One deployment: a model (its latency) behind its own quotas.

    ``quotas`` names the quotas its calls are charged on; left out, the quotas whose
    ``models`` list names this deployment, or else those covering its model.
    """

    model: str = Field(description="a key of `models`: the deployment's latency")
    quotas: list[str] | None = Field(
        default=None, description="quotas charged (default: quotas listing this "
        "deployment, else those covering its model)")


SESSION = "session"
"""The name of the main population (the profile's ``session``) in population maps."""

ROUTE_POLICIES = ("weighted", "round_robin", "least_busy", "usage_based", "priority")


def _route_targets(v: Any) -> Any:
    """A list of names (equal weights) or a mapping name → weight (≥ 0)."""
    if isinstance(v, dict):
        out = {}
        for k, w in v.items():
            x = _real(w, "a weight (a number ≥ 0)")
            if not 0 <= x <= MAX_WEIGHT:
                raise ValueError(f"weight of {k!r} must be ≥ 0 and at most "
                                 f"{_fmt(MAX_WEIGHT)}, got {_short(w)}")
            out[str(k)] = x
        return out
    if isinstance(v, BaseModel | str) or not isinstance(v, list | tuple):
        raise PydanticCustomError(
            "route_targets", "expected a list of deployment names or a mapping name → "
            "weight, got {got}", {"got": _short(v)})
    for x in v:
        if not isinstance(x, str):
            raise PydanticCustomError(
                "route_targets", "expected deployment names, got {got}", {"got": _short(x)})
    return list(v)


if TYPE_CHECKING:
    RouteTargets = list[str] | dict[str, float]
else:
    RouteTargets = Annotated[
        list[str] | dict[str, float], BeforeValidator(_route_targets),
        WithJsonSchema({"anyOf": [
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            {"type": "object", "additionalProperties": {
                "type": "number", "minimum": 0, "maximum": MAX_WEIGHT}, "minProperties": 1},
        ], "description": "deployments (or models) in order, or a mapping name → weight"})]


class RouteSpec(Spec):
    """A logical model (what calls name) served by one or more deployments.

    Policies: ``weighted`` (random by weight; ``per_turn`` keeps a turn on one),
    ``round_robin``, ``least_busy`` (fewest calls in flight), ``usage_based`` (lowest share
    of its window used), ``priority`` (first available in order, spilling to the next on a
    429 — Azure PTU then pay-as-you-go). ``fallbacks``: logical models tried, in order,
    once a call's retries on this one are exhausted.
    """

    policy: Literal["weighted", "round_robin", "least_busy", "usage_based",
                    "priority"] = Field(default="weighted", description="how a deployment "
                                        "is chosen for each call")
    deployments: RouteTargets = Field(
        description="deployments (or model names) serving it, in priority order; a "
        "mapping name → weight for `weighted`")
    per_turn: StrictBool = Field(
        default=False, description="weighted only: a turn's calls stay on one deployment")
    spillover: StrictBool | None = Field(
        default=None, description="a 429 moves the call to the next deployment at once "
        "(default: true for priority, false otherwise)")
    fallbacks: list[str] = Field(
        default_factory=list, description="logical models tried after the retries here "
        "are exhausted")

    def targets(self) -> list[tuple[str, float]]:
        """(deployment or model name, weight) in declared order."""
        if isinstance(self.deployments, dict):
            return list(self.deployments.items())
        return [(n, 1.0) for n in self.deployments]


class CooldownSpec(Spec):
    """Skip a deployment that failed too often lately (LiteLLM's rule and defaults)."""

    threshold: ThresholdFraction = \
        Field(default=0.5, description="cool down when failed/calls in the window exceeds "
              "this")
    min_calls: PositiveInt = Field(default=5, description="...and at least this many calls "
                                   "were made in the window")
    window: WindowSeconds = Field(default=60.0, description="counting window (seconds)")
    seconds: Seconds = Field(default=5.0, description="how long the deployment is skipped")


class TargetSpec(Spec):
    """What counts as 'carrying' the load."""

    max_429_fraction: OpenFraction = Field(
        default=0.01, description="acceptable fraction of call attempts answered 429")
    p95_turn_latency: PositiveSeconds | None = Field(
        default=None, description="optional bound on the 95th percentile of turn latency")


class Profile(Spec):
    """A whole profile. Build it with :func:`capacity.loader.load_profile`."""

    name: str | None = Field(default=None, description="defaults to the file name")
    description: str | None = None
    models: dict[str, ModelSpec] = Field(min_length=1)
    quotas: dict[str, QuotaSpec] = Field(min_length=1)
    session: SessionSpec
    retry: RetrySpec = Field(default_factory=RetrySpec)
    pacing: PacingSpec | None = None
    targets: TargetSpec = Field(default_factory=TargetSpec)
    deployments: dict[str, DeploymentSpec] = Field(
        default_factory=dict, description="named deployments (a model behind its own quotas)")
    routes: dict[str, RouteSpec] = Field(
        default_factory=dict, description="logical models served by several deployments")
    cooldown: CooldownSpec | None = Field(
        default=None, description="skip deployments failing too often (off when absent or "
        "`off`; `on`: LiteLLM's defaults)")
    populations: dict[str, PopulationSpec] = Field(
        default_factory=dict, description="more kinds of sessions beside `session`, each a "
        "fixed count or a share of N")

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown_switch(cls, v: Any) -> Any:
        # YAML reads `cooldown: off` / `on` as booleans (JSON profiles and quoted YAML as
        # strings): off is no cooldown, on LiteLLM's defaults (the mapping's own).
        if isinstance(v, str) and v.strip().lower() in ("off", "on"):
            v = v.strip().lower() == "on"
        if v is False:
            return None
        return {} if v is True else v

    @property
    def title(self) -> str:
        """The profile's display name."""
        return self.name or "profile"

    def all_sessions(self) -> dict[str, SessionSpec]:
        """Every population by name: ``session`` first (its name is ``session``), then
        ``populations`` in declared order."""
        return {SESSION: self.session, **self.populations}

    def all_turns(self) -> Iterator[tuple[str, str, TurnSpec]]:
        """(population, turn name, turn) of every population."""
        for pop, spec in self.all_sessions().items():
            for tname, turn in spec.turns.items():
                yield pop, tname, turn

    def session_share(self) -> float:
        """The share of N that runs ``session`` (1 minus the populations' shares)."""
        return 1.0 - math.fsum(p.share or 0.0 for p in self.populations.values())

    def split(self, n: int) -> dict[str, int]:
        """Sessions of each population when N = ``n``: the shares of N by largest
        remainder (ties: declared order, ``session`` first), plus the fixed counts."""
        shares = {SESSION: self.session_share(),
                  **{k: p.share for k, p in self.populations.items() if p.share is not None}}
        exact = {k: n * v for k, v in shares.items()}
        counts = {k: math.floor(x + 1e-9) for k, x in exact.items()}
        left = n - sum(counts.values())
        order = sorted(exact, key=lambda k: -(exact[k] - counts[k]))
        for k in order[:max(left, 0)]:
            counts[k] += 1
        out = {SESSION: counts[SESSION]}
        for k, p in self.populations.items():
            out[k] = p.sessions if p.sessions is not None else counts[k]
        return out

    @property
    def held_sessions(self) -> int:
        """Sessions of the fixed-count populations (present whatever N is)."""
        return sum(p.sessions or 0 for p in self.populations.values())

    def quotas_for(self, model: str) -> list[str]:
        """Names of the quotas that a call to ``model`` (a model or a deployment) touches.

        A deployment's are its ``quotas``; left out, the quotas listing the deployment's
        name, or else those covering its model.
        """
        dep = self.deployments.get(model)
        if dep is not None and dep.model != model:
            if dep.quotas is not None:
                return [q for q in self.quotas if q in dep.quotas]
            own = [q for q, spec in self.quotas.items() if model in spec.models]
            return own or [q for q, spec in self.quotas.items() if dep.model in spec.models]
        if dep is not None and dep.quotas is not None:
            return [q for q in self.quotas if q in dep.quotas]
        return [q for q, spec in self.quotas.items() if model in spec.models]

    def model_of(self, target: str) -> ModelSpec:
        """The latency model of a model or deployment name."""
        dep = self.deployments.get(target)
        return self.models[dep.model if dep is not None else target]

    def max_tokens_for(self, call: CallSpec, target: str | None = None) -> int | None:
        """The call's max_tokens, falling back to the default of the model serving it
        (``target``: the deployment or model chosen; default the call's own model)."""
        if call.max_tokens is not None:
            return call.max_tokens
        name = call.model if target is None else target
        if name not in self.models and name not in self.deployments:
            # A routed call before routing: the first deployment's model stands in.
            name = self.route_targets(name)[0][0]
        return self.model_of(name).max_tokens

    def route_targets(self, logical: str) -> list[tuple[str, float]]:
        """(deployment or model name, weight) serving logical model ``logical``: its
        route's, or the name itself when no route is declared for it."""
        route = self.routes.get(logical)
        return route.targets() if route is not None else [(logical, 1.0)]

    @property
    def routed(self) -> bool:
        """True when some logical model has several deployments or fallbacks."""
        return any(len(r.targets()) > 1 or r.fallbacks for r in self.routes.values())


# (Block and TurnSpec name Step before it is defined: with deferred builds pydantic
# resolves it at the first build, from this module.)


# ---------------------------------------------------------------------------------------
# Cross-reference checks (after the shape is valid)
# ---------------------------------------------------------------------------------------

PathT = tuple[str | int, ...]


def iter_calls(steps: list[Step] | tuple[Step, ...], path: PathT) -> Iterator[tuple[CallSpec,
                                                                                  PathT]]:
    """Every call in a step list, with its key path."""
    for i, step in enumerate(steps):
        p = (*path, i)
        if isinstance(step, CallStep):
            yield step.call, (*p, "call")
            continue
        kind = _step_kind(step)
        assert kind is not None
        block: Block = getattr(step, kind)
        if block.call is not None:
            yield block.call, (*p, kind, "call")
        else:
            yield from iter_calls(block.steps or [], (*p, kind, "steps"))


def max_calls(steps: list[Step] | tuple[Step, ...]) -> int:
    """Most calls a step sequence can make (repeat and parallel counts multiply)."""
    total = 0
    for step in steps:
        if isinstance(step, CallStep):
            total += 1
            continue
        kind = _step_kind(step)
        assert kind is not None
        block: Block = getattr(step, kind)
        times = int(block.count.upper) if isinstance(block, ParallelBlock | RepeatBlock) else 1
        total += times * max_calls(block.body)
    return total


def _takes_time(steps: list[Step] | tuple[Step, ...], profile: Profile) -> bool:
    """True when some call of the steps can take time (time to first token or output)."""
    return any(c.output_tokens.mean > 0 or any(
        profile.model_of(t).ttft.mean > 0 for t in serving(profile, c.model)
        if t in profile.models or t in profile.deployments)
        for c, _ in iter_calls(steps, ()) if _logical_known(profile, c.model))


def check_references(profile: Profile) -> list[tuple[PathT, str]]:
    """Problems that span several keys, as (key path, rule) pairs; empty when consistent."""
    problems: list[tuple[PathT, str]] = []
    model_names = list(profile.models)

    def unknown_model(name: str) -> str:
        close = difflib.get_close_matches(name, model_names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown model {name!r}{hint}; models defined: {', '.join(model_names)}"

    for qname, q in profile.quotas.items():
        for i, m in enumerate(q.models):
            if m not in profile.models and m not in profile.deployments:
                problems.append((("quotas", qname, "models", i), unknown_model(m)))
        for dim, lim in q.limits().items():
            enf = q.enforcement_for(dim)
            if enf.type == "token_bucket":
                depth = lim.limit * enf.burst / DIMENSION_PERIOD_S[dim]
                # Less than one unit deep admits nothing, as a window allowing 0 does (a
                # token dimension too: the analytic bucket chain has no lattice for it).
                if depth < 1:
                    problems.append((
                        ("quotas", qname, dim),
                        f"{lim.limit:g} {dim} in a token bucket {enf.burst:g}s deep holds "
                        f"{depth:.3g} {DIMENSION_UNIT[dim]}: nothing could ever be "
                        "admitted; use a deeper bucket (burst)"))
                continue
            allowance = math.floor(lim.limit * enf.window / DIMENSION_PERIOD_S[dim] + 1e-9)
            if allowance < 1:
                problems.append((
                    ("quotas", qname, dim),
                    f"{lim.limit:g} {dim} checked over {enf.window:g}s windows allows "
                    f"⌊{lim.limit:g}·{enf.window:g}/{DIMENSION_PERIOD_S[dim]:g}⌋ = 0 per "
                    "window: nothing could ever be admitted; use a longer window",
                ))

    fleet_problems = _check_fleet(profile, unknown_model)
    problems += fleet_problems
    fleet_broken = bool(fleet_problems)

    def unknown_logical(name: str) -> str:
        names = [*profile.routes, *profile.deployments, *model_names]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        defined = f"models defined: {', '.join(model_names)}"
        if profile.routes or profile.deployments:
            defined = ("routes, deployments and models defined: "
                       + ", ".join(dict.fromkeys(names)))
        return f"unknown model {name!r}{hint}; {defined}"

    def turns_path(pop: str) -> PathT:
        return ("session", "turns") if pop == SESSION else ("populations", pop, "turns")

    shares = [(k, p.share) for k, p in profile.populations.items() if p.share is not None]
    if shares and not profile.session_share() > 0:
        problems.append((("populations", shares[-1][0], "share"),
                         f"the populations' shares add up to "
                         f"{math.fsum(v for _, v in shares):g} of N: they must leave a "
                         "positive share for `session`"))
    if SESSION in profile.populations:
        problems.append((("populations", SESSION),
                         "'session' names the main population: give this one another name"))

    for pop, tname, turn in profile.all_turns():
        most = max_calls(turn.steps)
        if most > MAX_CALLS_PER_TURN:
            problems.append(((*turns_path(pop), tname, "steps"),
                             f"a turn of this type can make up to {most:,} calls (repeat and "
                             f"parallel counts multiply); at most {MAX_CALLS_PER_TURN:,} per "
                             "turn are supported"))
        for call, path in iter_calls(turn.steps, (*turns_path(pop), tname, "steps")):
            if not _logical_known(profile, call.model):
                problems.append(((*path, "model"), unknown_logical(call.model)))
                continue
            if fleet_broken:
                continue
            for target in serving(profile, call.model):
                mt = profile.max_tokens_for(call, target)
                via = "" if target == call.model else f" (deployment {target!r})"
                if mt is not None and call.output_tokens.lower > mt:
                    problems.append(((*path, "output_tokens"),
                                     f"always exceeds max_tokens {mt}{via} "
                                     f"(got {call.output_tokens.describe()})"))
                for qname in profile.quotas_for(target):
                    q = profile.quotas[qname]
                    charged = {"tpm", "otpm", "tpd"} & set(q.limits())
                    if q.charge_max_tokens and charged and mt is None:
                        latency = profile.deployments[target].model if (
                            target in profile.deployments) else target
                        problems.append(((*path, "max_tokens"),
                                         f"quota {qname!r} charges max_tokens at admission"
                                         f"{via}; set max_tokens on this call or on model "
                                         f"{latency!r}"))
    for pop, spec in profile.all_sessions().items():
        if spec.pause.mean == 0 and not problems and not any(
                _takes_time(t.steps, profile) for t in spec.turns.values()):
            where: PathT = ((SESSION,) if pop == SESSION else ("populations", pop))
            problems.append(((*where, spec.mode),
                             "a session cycle would take no time (zero think time and turns "
                             "whose calls take none): give a think time or a time to first "
                             "token"))
    if not problems and not any(
        profile.quotas_for(target)
        for _, _, turn in profile.all_turns()
        for call, _ in iter_calls(turn.steps, ())
        for target in serving(profile, call.model)
    ):
        problems.append((("quotas",), "no call touches any quota: nothing to compute"))
    if not problems and profile.routes:
        problems += _check_refusable(profile)
    return problems


def _check_refusable(profile: Profile) -> list[tuple[PathT, str]]:
    """A fleet in which no call can ever be answered 429: every call's route spills to
    (or only chooses among) deployments no quota covers — there is no ceiling to find."""
    free: dict[str, list[str]] = {}  # logical model -> its unlimited targets (refusable: [])
    for _, _, turn in profile.all_turns():
        for call, _ in iter_calls(turn.steps, ()):
            if call.model in free:
                continue
            targets = [t for t, w in profile.route_targets(call.model) if w > 0]
            unlimited = [t for t in targets if not profile.quotas_for(t)]
            route = profile.routes.get(call.model)
            spills = route is not None and (route.spillover if route.spillover is not None
                                            else route.policy == "priority")
            # A spilling route refuses only when every deployment refuses; any other
            # sends a call to one deployment, refused when that one is limited.
            refusable = not unlimited if spills else len(unlimited) < len(targets)
            free[call.model] = [] if refusable else unlimited
    if any(not u for u in free.values()):
        return []
    name, unlimited = next(iter(free.items()))
    where: PathT = ("routes", name, "deployments") if name in profile.routes else ("quotas",)
    return [(where, f"no call can ever be answered 429: calls to {name!r} are served by "
             f"{', '.join(repr(u) for u in unlimited)}, which no quota covers (a "
             "deployment's `quotas`, or a quota's `models`), so there is no ceiling to "
             "compute")]


def _logical_known(profile: Profile, name: str) -> bool:
    return name in profile.routes or name in profile.deployments or name in profile.models


def serving(profile: Profile, logical: str) -> list[str]:
    """Every deployment or model a call to ``logical`` may be served by: its route's
    targets, then its fallbacks' (depth first, each once). Assumes a valid fleet."""
    out: list[str] = []
    seen: set[str] = set()

    def walk(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for target, _ in profile.route_targets(name):
            if target not in out:
                out.append(target)
        route = profile.routes.get(name)
        for fb in route.fallbacks if route is not None else ():
            walk(fb)

    walk(logical)
    return out


def _check_fleet(profile: Profile, unknown_model: Any) -> list[tuple[PathT, str]]:
    """Deployments, routes and fallbacks: every name known, no cycle, weights usable."""
    problems: list[tuple[PathT, str]] = []
    quota_names = list(profile.quotas)
    for dname, dep in profile.deployments.items():
        if dep.model not in profile.models:
            problems.append((("deployments", dname, "model"), unknown_model(dep.model)))
        if dname in profile.models and dep.model != dname:
            problems.append((("deployments", dname),
                             f"{dname!r} is also the name of a model, but this deployment "
                             f"runs model {dep.model!r}: give the deployment another name"))
        for i, q in enumerate(dep.quotas or ()):
            if q not in profile.quotas:
                close = difflib.get_close_matches(q, quota_names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append((("deployments", dname, "quotas", i),
                                 f"unknown quota {q!r}{hint}; quotas defined: "
                                 f"{', '.join(quota_names)}"))
        if dep.quotas is not None and all(q in profile.quotas for q in dep.quotas):
            # A quota naming this deployment that its own explicit list leaves out would
            # silently charge nothing: two keys contradict each other.
            for qname, qspec in profile.quotas.items():
                if dname in qspec.models and dname != dep.model and qname not in dep.quotas:
                    problems.append((
                        ("quotas", qname, "models", qspec.models.index(dname)),
                        f"names deployment {dname!r}, but deployments.{dname}.quotas "
                        f"({', '.join(dep.quotas) or 'empty'}) leaves quota {qname!r} out, "
                        f"so it would charge nothing: add {qname!r} to that list or "
                        f"remove {dname!r} here"))
    targets_known = [*profile.deployments, *profile.models]
    for rname, route in profile.routes.items():
        where: PathT = ("routes", rname)
        names = [n for n, _ in route.targets()]
        if not names:
            problems.append(((*where, "deployments"), "a route needs at least one deployment"))
        for i, n in enumerate(names):
            key: str | int = n if isinstance(route.deployments, dict) else i
            if n not in profile.deployments and n not in profile.models:
                close = difflib.get_close_matches(n, targets_known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(((*where, "deployments", key),
                                 f"unknown deployment {n!r}{hint}; deployments and models "
                                 f"defined: {', '.join(targets_known)}"))
            elif names.index(n) != i:
                problems.append(((*where, "deployments", key), f"{n!r} is listed twice"))
        if names and not sum(w for _, w in route.targets()) > 0:
            problems.append(((*where, "deployments"),
                             "weights sum to zero: no deployment could ever be chosen"))
        if route.per_turn and route.policy != "weighted":
            problems.append(((*where, "per_turn"),
                             f"per_turn applies to the weighted policy only (this route is "
                             f"{route.policy!r})"))
        for i, fb in enumerate(route.fallbacks):
            if not _logical_known(profile, fb):
                close = difflib.get_close_matches(
                    fb, [*profile.routes, *targets_known], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(((*where, "fallbacks", i),
                                 f"unknown model {fb!r}{hint}; a fallback names a route, "
                                 "deployment or model"))
    if problems:
        return problems

    # Cycles of fallbacks (a route falling back, directly or not, to itself): one
    # depth-first search, each route finished once and no recursion (walking every path
    # took 2^n steps on n routes each falling back to all later ones: 24 took 8 s).
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in profile.routes:
        if start in state:
            continue
        path, state[start] = [start], 1
        stack = [iter(profile.routes[start].fallbacks)]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = (*path[path.index(nxt):], nxt)
                # Blamed on an edge of the cycle itself: a route that only leads into
                # one (gpt-4o → a mini route falling back to itself) is not the mistake.
                head = cycle[0]
                at = profile.routes[head].fallbacks.index(cycle[1])
                problems.append((("routes", head, "fallbacks", at),
                                 "a cycle of fallbacks: " + " → ".join(cycle)))
                return problems
            elif nxt not in state and nxt in profile.routes:
                path.append(nxt)
                state[nxt] = 1
                stack.append(iter(profile.routes[nxt].fallbacks))

    # How deep the chains run (no cycle now): a chain of 1,000 routes exhausted Python's
    # recursion in the walks downstream, a traceback.
    depth: dict[str, int] = {}
    for start in profile.routes:
        todo = [(start, False)]
        while todo:
            name, expanded = todo.pop()
            if name in depth:
                continue
            kids = [fb for fb in profile.routes[name].fallbacks if fb in profile.routes]
            if expanded:
                depth[name] = 1 + max((depth[k] for k in kids), default=0)
            else:
                todo.append((name, True))
                todo.extend((k, False) for k in kids if k not in depth)
        if depth[start] > MAX_FALLBACK_DEPTH:
            problems.append((("routes", start, "fallbacks"),
                             f"a chain of fallbacks through {depth[start]:,} routes; at most "
                             f"{MAX_FALLBACK_DEPTH} are supported"))
            return problems
    return problems
