"""Distributions for counts, tokens and durations.

Every distribution is validated on parsing and written in closed form: it knows its own
moments (for the analytic model), samples vectorised from a passed-in
``numpy.random.Generator`` (for Monte Carlo) and can be discretised onto a lattice (for
Panjer/FFT compound sums). Parsing, bounds, moments and descriptions are plain Python:
validating a profile imports no numpy (the vectorised paths import it when called).

Profiles write them as

* a scalar: ``3``, ``1500``, ``150s``, ``2.5m`` -> fixed;
* ``{uniform: [low, high]}`` (inclusive integers for counts);
* ``{exponential: mean}``;
* ``{lognormal: {median: m, p95: x}}`` (friendlier than mu/sigma);
* ``{choice: {values: [...], weights: [...]}}`` (weights relative: divided by their sum at
  parse, so every consumer draws one law; default equal).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Literal

from capacity.jsonsafe import as_written

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Kind = Literal["fixed", "uniform", "exponential", "lognormal", "choice"]
Quantity = Literal["duration", "tokens", "count", "number"]

# z-score of the 95th percentile, used to turn (median, p95) into lognormal sigma.
_Z95 = 1.6448536269514722  # scipy.special.ndtri(0.95); a test checks it
_STD_NORMAL = NormalDist()


def _ndtr(z: Any) -> NDArray[np.float64]:
    """Standard normal cdf Φ(z), vectorised: the C library's erfc over the array, compiled
    (``capacity.model._special``, ~15 ns a point) or, without a build, ``math.erfc`` (the
    same libm function) mapped over a list (~150 ns a point) — the same values bit for
    bit. Tests check both against each other and scipy.stats.norm."""
    fn = _compiled_ndtr()
    return _ndtr_python(z) if fn is None else fn(z)


@functools.cache
def _compiled_ndtr() -> Callable[[Any], NDArray[np.float64]] | None:
    """``capacity.model._special.ndtr``, imported when first asked (it imports numpy,
    which the profile layer's start does not); None in a source tree without a build."""
    try:
        from capacity.model import _special
    except ImportError:  # pragma: no cover - only without a build
        return None
    return _special.ndtr


def _ndtr_python(z: Any) -> NDArray[np.float64]:
    """:func:`_ndtr` without the compiled loop: ``math.erfc`` mapped over a list into a
    float64 array (half the cost of an object ufunc, the same values)."""
    import numpy as np

    x = -np.asarray(z, dtype=np.float64) / math.sqrt(2.0)
    e = np.fromiter(map(math.erfc, x.ravel().tolist()), dtype=np.float64, count=x.size)
    return np.asarray(0.5 * e.reshape(x.shape), dtype=np.float64)

MAX_COUNT = 1000
"""Largest fan-out or loop count a step may have."""

MAX_SECONDS = 30 * 86_400.0
"""Longest duration a profile may hold: 30 days (2,592,000 s)."""
MAX_TOKENS = 10_000_000
"""Most tokens one call may read or write (10M, above any model's context window)."""
MAX_NUMBER = 1e7
"""Largest other distributed number (e.g. tokens per second)."""
MAX_SPREAD = {"duration": 100.0, "tokens": 1000.0, "number": 1000.0, "count": 1000.0}
"""Largest p95/median of a lognormal, by quantity. Beyond it the mean is dominated by
values that almost never occur (at 1,000 the mean is 6,700× the median), and a duration
tail that long would keep a simulation running for simulated months."""
MAX_WEIGHT = 1e9
"""Largest choice weight (weights are relative; bounded so their sum stays finite)."""

BOUNDS: dict[str, tuple[float, str]] = {
    "duration": (MAX_SECONDS, "30 days (2,592,000 s)"),
    "tokens": (float(MAX_TOKENS), "10,000,000 tokens"),
    "count": (float(MAX_COUNT), "1,000"),
    "number": (MAX_NUMBER, "10,000,000"),
}
"""Upper bound of every value of a distribution, by quantity (value, as said in errors)."""

DURATION_UNITS = "(ms|s|m|min|h|d)"
"""The unit group of a duration string (keys of ``_UNIT_SECONDS``), in every pattern."""
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*" + DURATION_UNITS
                          + r"?\s*$")
DURATION_PATTERN = _DURATION_RE.pattern
"""The parser's own duration rule (the published JSON Schema carries it)."""
DURATION_SCHEMA_PATTERN = r"^[0-9.]+([eE][-+]?[0-9]+)?" + DURATION_UNITS + "?$"
"""The simpler pattern pydantic's schema writes for a duration string; the published
JSON Schema (:mod:`capacity.profile.jsonschema`) replaces it by :data:`DURATION_PATTERN`."""
_UNIT_SECONDS = {None: 1.0, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0,
                 "d": 86400.0}


def _finite_float(value: int | float) -> float | None:
    """``float(value)`` when finite (huge integers included), else None."""
    try:
        x = float(value)
    except OverflowError:
        return None
    return x if math.isfinite(x) else None


def _short(value: Any) -> str:
    """``repr(value)``, cut to stay readable in a one-line error (huge integers)."""
    text = as_written(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_duration(value: Any) -> float:
    """Parse ``150s``, ``2.5m``, ``500ms``, ``1h``, ``1d`` or a bare number into seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 150s or 2.5m, got {_short(value)}")
    if isinstance(value, int | float):
        seconds = _finite_float(value)
        if seconds is None:
            raise ValueError(f"expected a finite duration, got {_short(value)}")
        return seconds
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
            if not math.isfinite(seconds):
                raise ValueError(f"expected a finite duration, got {value!r}")
            return seconds
    raise ValueError(f"expected a duration such as 150s, 2.5m or 500ms, got {_short(value)}")


def format_duration(seconds: float) -> str:
    """Human form of a duration in seconds (``150s``, ``2.5m``)."""
    if not math.isfinite(seconds):
        return "∞"
    if seconds >= 3600 and abs(seconds / 3600 - round(seconds / 3600, 2)) < 1e-9:
        return f"{seconds / 3600:g}h"
    if seconds >= 120 and abs(seconds / 60 - round(seconds / 60, 2)) < 1e-9:
        return f"{seconds / 60:g}m"
    if seconds >= 3600:
        return f"{seconds / 3600:.2f}h"
    if seconds >= 120:
        return f"{seconds / 60:.1f}m"
    return f"{seconds:.3g}s"


def _scalar(value: Any, quantity: Quantity) -> float:
    if quantity == "duration":
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        unit = "an integer" if quantity == "count" else "a number"
        raise ValueError(f"expected {unit}, got {_short(value)}")
    x = _finite_float(value)
    if x is None:
        raise ValueError(f"expected a finite number, got {_short(value)}")
    if quantity == "count" and not x.is_integer():
        raise ValueError(f"expected an integer, got {_short(value)}")
    return x


@dataclass(frozen=True)
class Distribution:
    """A validated non-negative distribution.

    Attributes
    ----------
    kind : one of fixed, uniform, exponential, lognormal, choice.
    params : kind-specific parameters (seconds for durations).
    quantity : what it measures; ``count`` distributions are integer valued.
    values, weights : support and probabilities for ``choice``.
    """

    kind: Kind
    params: tuple[float, ...] = ()
    quantity: Quantity = "number"
    values: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()

    # -- construction ---------------------------------------------------------------
    @classmethod
    def fixed(cls, value: float, quantity: Quantity = "number") -> Distribution:
        """A point mass at ``value``."""
        return cls("fixed", (float(value),), quantity)

    @classmethod
    def parse(cls, raw: Any, quantity: Quantity) -> Distribution:
        """Parse the YAML form of a distribution, raising ``ValueError`` with the rule."""
        d = cls._parse(raw, quantity)
        if quantity == "count" and d.upper > MAX_COUNT:
            raise ValueError(f"counts above {MAX_COUNT:,} per step are not supported "
                             f"(a fan-out or loop that large is not a turn), got {d.describe()}")
        d._check_bounds()
        return d

    def _check_bounds(self) -> None:
        """Every value, the mean and a lognormal's spread within the quantity's bounds."""
        top, said = BOUNDS[self.quantity]
        explicit = [*self.params, *self.values]
        if self.kind == "lognormal":
            spread = MAX_SPREAD[self.quantity]
            if self.params[1] > spread * self.params[0]:
                raise ValueError(
                    f"a lognormal's p95 may be at most {spread:,.0f}× its median, got "
                    f"{self.describe()} ({self.params[1] / self.params[0]:.3g}×)")
        if max(explicit, default=0.0) > top or self.mean > top:
            raise ValueError(f"values may be at most {said}, got {self.describe()}")

    @classmethod
    def _parse(cls, raw: Any, quantity: Quantity) -> Distribution:
        if isinstance(raw, Distribution):
            return raw
        if not isinstance(raw, dict):
            v = _scalar(raw, quantity)
            if v < 0:
                raise ValueError(f"must be ≥ 0, got {raw!r}")
            return cls.fixed(v, quantity)
        if len(raw) != 1:
            raise ValueError(
                "a distribution is a number or one of {uniform: [low, high]}, "
                "{exponential: mean}, {lognormal: {median: .., p95: ..}}, "
                f"{{choice: {{values: [..], weights: [..]}}}}; got keys {sorted(map(str, raw))}"
            )
        (kind, body), = raw.items()
        if kind == "fixed":
            return cls._parse(body, quantity)
        if kind == "uniform":
            if not isinstance(body, list) or len(body) != 2:
                raise ValueError(f"uniform takes [low, high], got {body!r}")
            lo, hi = (_scalar(b, quantity) for b in body)
            if lo < 0 or hi < lo:
                raise ValueError(f"uniform needs 0 ≤ low ≤ high, got [{body[0]}, {body[1]}]")
            if lo == hi:
                return cls.fixed(lo, quantity)
            return cls("uniform", (lo, hi), quantity)
        if kind == "exponential":
            if quantity == "count":
                raise ValueError(
                    "exponential is continuous; a count takes fixed, uniform or choice")
            if isinstance(body, dict):
                if set(body) != {"mean"}:
                    raise ValueError(f"exponential takes a mean, got keys {sorted(map(str, body))}")
                body = body["mean"]
            mean = _scalar(body, quantity)
            if mean <= 0:
                raise ValueError(f"exponential mean must be > 0, got {body!r}")
            return cls("exponential", (mean,), quantity)
        if kind == "lognormal":
            if quantity == "count":
                raise ValueError("lognormal is continuous; a count takes fixed, uniform or choice")
            if not isinstance(body, dict) or set(body) != {"median", "p95"}:
                raise ValueError(f"lognormal takes {{median: .., p95: ..}}, got {body!r}")
            med, p95 = _scalar(body["median"], quantity), _scalar(body["p95"], quantity)
            if med <= 0 or p95 <= med:
                raise ValueError(
                    f"lognormal needs 0 < median < p95, got median={body['median']!r}, "
                    f"p95={body['p95']!r}"
                )
            return cls("lognormal", (med, p95), quantity)
        if kind == "choice":
            return cls._parse_choice(body, quantity)
        raise ValueError(
            f"unknown distribution {kind!r}; use fixed, uniform, exponential, lognormal or choice"
        )

    @classmethod
    def _parse_choice(cls, body: Any, quantity: Quantity) -> Distribution:
        if not isinstance(body, dict) or "values" not in body or not set(body) <= {
            "values", "weights"
        }:
            raise ValueError(f"choice takes {{values: [..], weights: [..]}}, got {body!r}")
        vals = body["values"]
        if not isinstance(vals, list) or not vals:
            raise ValueError(f"choice values must be a non-empty list, got {vals!r}")
        values = [_scalar(v, quantity) for v in vals]
        if min(values) < 0:
            raise ValueError(f"choice values must be ≥ 0, got {vals!r}")
        raw_w = body.get("weights", [1.0] * len(values))
        if not isinstance(raw_w, list) or len(raw_w) != len(values):
            raise ValueError(f"choice needs one weight per value, got {raw_w!r}")
        weights = [_scalar(w, "number") for w in raw_w]
        if max(weights) > MAX_WEIGHT:
            raise ValueError(f"choice weights may be at most {MAX_WEIGHT:.0e}, got {raw_w!r}")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"choice weights must be ≥ 0 with a positive sum, got {raw_w!r}")
        total = sum(weights)
        return cls("choice", (), quantity, tuple(values), tuple(w / total for w in weights))

    # -- moments, cdf, quantiles, sampling -------------------------------------------
    # Closed forms and numpy.random.Generator samplers; scipy is no runtime dependency.
    # ``frozen`` gives the scipy.stats twin, which the tests use to check every formula
    # here (scipy comes with the dev extra).

    @cached_property
    def frozen(self) -> Any:
        """The equivalent frozen ``scipy.stats`` distribution (None for a point mass), a
        cross-check for the tests; needs scipy (``pip install 'llm-capacity[dev]'``)."""
        import numpy as np

        try:
            from scipy import stats
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "Distribution.frozen (a test cross-check) needs scipy: "
                "pip install 'llm-capacity[dev]'") from None

        k, p = self.kind, self.params
        if k == "fixed":
            return None
        if k == "uniform":
            if self.quantity == "count":
                return stats.randint(int(p[0]), int(p[1]) + 1)
            return stats.uniform(loc=p[0], scale=p[1] - p[0])
        if k == "exponential":
            return stats.expon(scale=p[0])
        if k == "lognormal":
            return stats.lognorm(s=self._sigma, scale=p[0])
        return stats.rv_discrete(values=(np.asarray(self.values), np.asarray(self.weights)))

    @property
    def _rv(self) -> Any:
        """Short alias of :attr:`frozen` used by the tests."""
        return self.frozen

    @property
    def _sigma(self) -> float:
        """Lognormal sigma from (median, p95): ln(p95/median) / z_0.95."""
        return math.log(self.params[1] / self.params[0]) / _Z95

    @property
    def _int_uniform(self) -> bool:
        return self.kind == "uniform" and self.quantity == "count"

    @property
    def is_fixed(self) -> bool:
        """True for a point mass."""
        return self.kind == "fixed"

    @property
    def mean(self) -> float:
        """Expected value (same unit as the quantity)."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            return (p[0] + p[1]) / 2.0
        if k == "exponential":
            return p[0]
        if k == "lognormal":
            return p[0] * math.exp(self._sigma**2 / 2.0)
        return math.fsum(v * w for v, w in zip(self.values, self.weights, strict=True))

    @property
    def var(self) -> float:
        """Variance."""
        k, p = self.kind, self.params
        if k == "fixed":
            return 0.0
        if k == "uniform":
            width = p[1] - p[0]
            # Discrete uniform on n = width + 1 integers: (n² - 1)/12.
            return ((width + 1) ** 2 - 1) / 12.0 if self._int_uniform else width**2 / 12.0
        if k == "exponential":
            return p[0] ** 2
        if k == "lognormal":
            s2 = self._sigma**2
            return (math.exp(s2) - 1.0) * p[0] ** 2 * math.exp(s2)
        second = math.fsum(v * v * w for v, w in zip(self.values, self.weights, strict=True))
        return second - self.mean**2

    @property
    def scv(self) -> float:
        """Squared coefficient of variation (nan for a zero mean)."""
        return self.var / self.mean**2 if self.mean > 0 else math.nan

    @property
    def lower(self) -> float:
        """Smallest value in the support."""
        if self.kind in ("fixed", "uniform"):
            return self.params[0]
        if self.kind == "choice":
            return min(v for v, w in zip(self.values, self.weights, strict=True) if w > 0)
        return 0.0

    @property
    def upper(self) -> float:
        """Largest value in the support (inf when unbounded)."""
        if self.kind == "fixed":
            return self.params[0]
        if self.kind == "uniform":
            return self.params[1]
        if self.kind == "choice":
            return max(v for v, w in zip(self.values, self.weights, strict=True) if w > 0)
        return math.inf

    def cdf(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(X ≤ x), vectorised."""
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        k, p = self.kind, self.params
        if k == "fixed":
            return (x >= p[0]).astype(np.float64)
        if k == "uniform":
            if self._int_uniform:
                n = p[1] - p[0] + 1
                return np.clip((np.floor(x) - p[0] + 1) / n, 0.0, 1.0)
            return np.clip((x - p[0]) / (p[1] - p[0]), 0.0, 1.0)
        if k == "exponential":
            return -np.expm1(-np.maximum(x, 0.0) / p[0])
        if k == "lognormal":
            with np.errstate(divide="ignore"):
                z = (np.log(np.maximum(x, 0.0)) - math.log(p[0])) / self._sigma
            return _ndtr(z)
        vals, w = np.asarray(self.values), np.asarray(self.weights)
        return np.asarray((w[None, :] * (vals[None, :] <= x.reshape(-1, 1))).sum(axis=1)
                          ).reshape(x.shape)

    def ppf(self, q: float) -> float:
        """Quantile function."""
        import numpy as np

        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            if self._int_uniform:
                n = p[1] - p[0] + 1
                return float(max(p[0], p[0] + math.ceil(q * n) - 1))
            return p[0] + q * (p[1] - p[0])
        if k == "exponential":
            return -p[0] * math.log1p(-q) if q < 1 else math.inf
        if k == "lognormal":
            return float(p[0] * math.exp(self._sigma * _STD_NORMAL.inv_cdf(q)))
        cum = np.cumsum(np.asarray(self.weights)[np.argsort(self.values)])
        return float(np.sort(self.values)[min(int(np.searchsorted(cum, q - 1e-12)),
                                              len(cum) - 1)])

    def range(self, lo_q: float = 0.05, hi_q: float = 0.95) -> tuple[float, float]:
        """The support when bounded, otherwise the (lo_q, hi_q) quantiles."""
        lo, hi = self.lower, self.upper
        if not math.isfinite(hi):
            lo, hi = self.ppf(lo_q), self.ppf(hi_q)
        return lo, hi

    def mean_clipped(self, cap: float) -> float:
        """E[min(X, cap)]: the mean when values above ``cap`` are cut (e.g. by max_tokens)."""
        import numpy as np

        k, p = self.kind, self.params
        if not math.isfinite(cap) or cap >= self.upper:
            return self.mean
        if cap <= self.lower:
            return cap
        if k == "uniform":
            if self._int_uniform:
                ks = np.arange(int(p[0]), int(p[1]) + 1)
                return float(np.minimum(ks, cap).mean())
            a, b = p
            return ((cap**2 - a**2) / 2.0 + cap * (b - cap)) / (b - a)
        if k == "exponential":
            return p[0] * -math.expm1(-cap / p[0])
        if k == "lognormal":
            mu, s = math.log(p[0]), self._sigma
            return float(math.exp(mu + s * s / 2.0) * _ndtr((math.log(cap) - mu - s * s) / s)
                         + cap * (1.0 - _ndtr((math.log(cap) - mu) / s)))
        return float(np.dot(np.minimum(self.values, cap), self.weights))

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> NDArray[np.float64]:
        """Draw ``size`` values using ``rng`` (counts come back integer valued)."""
        import numpy as np

        k, p = self.kind, self.params
        if k == "fixed":
            return np.full(size, p[0], dtype=np.float64)
        if k == "uniform":
            if self._int_uniform:
                return rng.integers(int(p[0]), int(p[1]), size=size,
                                    endpoint=True).astype(np.float64)
            return rng.uniform(p[0], p[1], size=size)
        if k == "exponential":
            return rng.exponential(p[0], size=size)
        if k == "lognormal":
            return rng.lognormal(math.log(p[0]), self._sigma, size=size)
        return rng.choice(np.asarray(self.values), size=size, p=np.asarray(self.weights))

    def partial_mean(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """E[X; X ≤ x] (the first moment below ``x``), vectorised."""
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        k, p = self.kind, self.params
        if k in ("fixed", "choice") or self._int_uniform:
            vals, w = self._points()
            return np.asarray((w * vals * (vals[None, :] <= x.reshape(-1, 1))).sum(axis=1)
                              ).reshape(x.shape)
        if k == "uniform":
            a, b = p
            c = np.clip(x, a, b)
            return (c * c - a * a) / (2.0 * (b - a))
        if k == "exponential":
            y = np.maximum(x, 0.0) / p[0]
            return p[0] * (-np.expm1(-y) - y * np.exp(-y))
        mu, s = math.log(p[0]), self._sigma
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 0.0)) - mu - s * s) / s
        return self.mean * _ndtr(z)

    def _tails(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                      NDArray[np.float64]]:
        """(P(X > x), E[X; X > x]) of a continuous kind, computed from the upper tail
        (accurate where the cdf is close to 1)."""
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        k, p = self.kind, self.params
        if k == "uniform":
            a, b = p
            c = np.clip(x, a, b)
            return (b - c) / (b - a), (b * b - c * c) / (2.0 * (b - a))
        if k == "exponential":
            y = np.maximum(x, 0.0) / p[0]
            return np.exp(-y), p[0] * (1.0 + y) * np.exp(-y)
        mu, s = math.log(p[0]), self._sigma
        with np.errstate(divide="ignore"):
            z0 = (np.log(np.maximum(x, 0.0)) - mu) / s
        return _ndtr(-z0), self.mean * _ndtr(-(z0 - s))

    def _points(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Support and probabilities of a discrete distribution."""
        import numpy as np

        if self.kind == "fixed":
            return np.array([self.params[0]]), np.array([1.0])
        if self._int_uniform:
            vals = np.arange(self.params[0], self.params[1] + 1.0)
            return vals, np.full(vals.size, 1.0 / vals.size)
        return np.asarray(self.values, dtype=np.float64), np.asarray(self.weights)

    def rounded_points(self, cap: float = math.inf, tail: float = 1e-12,
                       most: int = 1 << 20) -> tuple[NDArray[np.float64],
                                                      NDArray[np.float64]] | None:
        """Support and probabilities of ``min(rint(X), cap)`` — a token count as a draw
        rounds it (numpy's ``rint``; a continuous law's ``P(rint X = k) = F(k + ½) −
        F(k − ½)``, an unbounded one cut at its ``1 − tail`` quantile, the rest on the
        last point); None past ``most`` points."""
        import numpy as np

        if self.kind in ("fixed", "choice") or self._int_uniform:
            vals, w = self._points()
            return np.minimum(np.rint(vals), cap), w
        hi = self.upper if math.isfinite(self.upper) else self.ppf(1.0 - tail)
        hi = min(hi, cap)
        lo = max(math.floor(self.lower) - 1, 0)
        if not math.isfinite(hi) or hi - lo > most or hi < lo:
            return None
        k = np.arange(lo, math.ceil(hi) + 2, dtype=np.float64)
        c = self.cdf(k + 0.5)
        w = np.diff(np.concatenate([[0.0], c]))
        w[-1] += 1.0 - float(c[-1])
        return np.minimum(k, cap), w

    def lattice_pmf(self, h: float, cap: float = math.inf, top: float = math.inf,
                    tail: float = 1e-9) -> NDArray[np.float64]:
        """Probabilities of ``min(X, cap)`` on the lattice 0, h, 2h, ... (index k is k·h).

        Each value x is spread linearly over its two nearest points, ⌊x/h⌋ and ⌈x/h⌉ with
        weights 1 − θ and θ (θ = x/h − ⌊x/h⌋): the lattice distribution has exactly the
        mean of ``min(X, cap)``, at most h²/4 more variance (θ(1−θ)h² per value), and is a
        mean-preserving spread of it, so every convex functional — a stop-loss
        E[(S − q)⁺] in particular — is over-, never under-stated. Nothing rounds away:
        a value far smaller than h keeps its weight as a small chance of one step.

        Values above ``top`` (units) are gathered at the point ⌈top/h⌉ — callers pass a
        ``top`` beyond the limit they compare with, where positions no longer matter. An
        unbounded distribution without a ``top`` is cut at its ``1 − tail`` quantile.
        """
        import numpy as np

        top = min(top, cap)
        t_idx = math.ceil(top / h - 1e-12) if math.isfinite(top) else None
        if self.kind in ("fixed", "choice") or self._int_uniform:
            vals, w = self._points()
            return _spread(np.minimum(vals, cap), w, h, top, t_idx)
        # A continuous law's lattice costs a normal cdf a point (a lognormal's million
        # points, ~0.2 s each time): the same lattice asked again — one call's charge law
        # per constraint and per cycle of a search — is the one made before (a copy).
        key = (self, h, cap, top, tail)
        hit = _LATTICES.get(key)
        if hit is None:
            hit = self._lattice_continuous(h, cap, top, tail)
            if hit.size >= _LATTICE_CACHE_FROM:
                held = sum(v.size for v in _LATTICES.values())
                if held + hit.size > _LATTICE_CACHE_POINTS:
                    _LATTICES.clear()
                _LATTICES[key] = hit
        return hit.copy()

    def _lattice_continuous(self, h: float, cap: float, top: float, tail: float
                            ) -> NDArray[np.float64]:
        """:meth:`lattice_pmf` of a continuous kind (``top`` already at most ``cap``)."""
        import numpy as np

        t = min(top, self.upper)
        if t / h > _DEFAULT_POINTS:
            # Too many points to spell out: cut at the 1 − tail quantile (at most a million
            # points); the tail keeps its mass and, where the lattice reaches, its mean.
            t = min(t, max(self.ppf(1.0 - tail), h), h * _DEFAULT_POINTS)
        k_max = math.ceil(t / h - 1e-12)
        edges = np.minimum(np.arange(k_max + 1, dtype=np.float64) * h, t)
        cdf = self.cdf(edges)
        dF = np.diff(cdf)
        dG = np.diff(self.partial_mean(edges))
        # Above the median, differences of P(X > x) and E[X; X > x] instead: differences
        # of the cdf near 1 keep only its absolute rounding (~1e-16), which (k+1)·dF
        # multiplies by k and the clipping below turned into a bias of the mean.
        surv, upper_mean = self._tails(edges)
        hi = cdf[1:] > 0.5
        dF = np.where(hi, surv[:-1] - surv[1:], dF)
        dG = np.where(hi, upper_mean[:-1] - upper_mean[1:], dG)
        k = np.arange(k_max, dtype=np.float64)
        out = np.zeros(k_max + 2)
        # Mass in [kh, (k+1)h] goes to k and k+1 in the proportions that keep its mean.
        out[:k_max] += np.clip(((k + 1.0) * dF - dG / h), 0.0, None)
        out[1:k_max + 1] += np.clip((dG / h - k * dF), 0.0, None)
        above = max(0.0, 1.0 - float(self.cdf(np.array([t]))[0]))
        if above > 0:
            if cap <= t:  # cut by the cap: exactly the value cap
                at = cap
            elif t >= top:  # beyond the caller's `top`: gathered at ⌈top/h⌉
                at = k_max * h
            else:  # cut for size: at the tail's own mean, where the lattice reaches
                at = (self.mean - float(self.partial_mean(np.array([t]))[0])) / above
                at = max(at, t) if math.isfinite(at) else t
            far = _FAR_POINT * h
            tail_pmf = _spread(np.array([min(at, far)]), np.array([above]), h, math.inf,
                               None)
            if tail_pmf.size > out.size:
                out = np.pad(out, (0, tail_pmf.size - out.size))
            out[: tail_pmf.size] += tail_pmf
            if at > far and math.isinf(top):
                out = self._keep_mean(out, h)
        out = out[: int(np.flatnonzero(out)[-1]) + 1] if out.any() else out[:1]
        result: NDArray[np.float64] = out / out.sum()
        return result

    def _keep_mean(self, out: NDArray[np.float64], h: float) -> NDArray[np.float64]:
        """``out`` (a pmf on step ``h`` whose far tail was pulled in to the last point
        the lattice may reach) mixed with that point so that its mean is E[X] again.

        A tail mean beyond ``_FAR_POINT`` steps (a lognormal with p95 = 1,000× its
        median has its mean 6,700× the median, mostly from values that almost never
        occur) cannot sit at its place; moving a share f of all the mass to the far
        point instead, f = (E[X] − m)/(far − m), restores the mean exactly and only
        spreads the law (convex functionals are overstated, never understated). A mean
        the far point itself cannot carry is refused rather than cut.
        """
        import numpy as np

        far = _FAR_POINT
        mean_idx = self.mean / h
        if not mean_idx < far / 2:
            raise ValueError(
                f"lattice step {h:g} too fine for a mean of {self.mean:g} "
                f"({mean_idx:,.0f} steps; at most {far // 2:,})")
        out = out / out.sum()
        if out.size < far + 1:
            out = np.pad(out, (0, far + 1 - out.size))
        m = float(np.dot(np.arange(out.size, dtype=np.float64), out))
        f = max(0.0, (mean_idx - m) / (far - m))
        out = out * (1.0 - f)
        out[far] += f
        return out

    # -- presentation ---------------------------------------------------------------
    def describe(self) -> str:
        """Short human form, e.g. ``uniform(120s, 180s)``."""
        def f(x: float) -> str:
            return format_duration(x) if self.quantity == "duration" else f"{x:g}"

        if self.kind == "fixed":
            return f(self.params[0])
        if self.kind == "uniform":
            return f"uniform({f(self.params[0])}, {f(self.params[1])})"
        if self.kind == "exponential":
            return f"exponential(mean {f(self.params[0])})"
        if self.kind == "lognormal":
            return f"lognormal(median {f(self.params[0])}, p95 {f(self.params[1])})"
        pairs = ", ".join(
            f"{f(v)}:{w:.2g}" for v, w in zip(self.values, self.weights, strict=True)
        )
        return f"choice({pairs})"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (same shape as the YAML input, numbers in base units)."""
        if self.kind == "fixed":
            return {"fixed": self.params[0]}
        if self.kind == "uniform":
            return {"uniform": list(self.params)}
        if self.kind == "exponential":
            return {"exponential": self.params[0]}
        if self.kind == "lognormal":
            return {"lognormal": {"median": self.params[0], "p95": self.params[1]}}
        return {"choice": {"values": list(self.values), "weights": list(self.weights)}}


def dist_json_schema(quantity: Quantity) -> dict[str, Any]:
    """JSON Schema of the YAML forms accepted for a distribution of ``quantity``."""
    top, said = BOUNDS[quantity]
    if quantity == "duration":
        scalar: dict[str, Any] = {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": top},
                {"type": "string", "pattern": DURATION_SCHEMA_PATTERN},
            ]
        }
    elif quantity == "count":
        scalar = {"type": "integer", "minimum": 0, "maximum": int(top)}
    else:
        scalar = {"type": "number", "minimum": 0, "maximum": top}
    forms: list[dict[str, Any]] = [
        scalar,
        {"type": "object", "additionalProperties": False, "required": ["uniform"],
         "properties": {"uniform": {"type": "array", "items": scalar, "minItems": 2,
                                    "maxItems": 2}}},
        {"type": "object", "additionalProperties": False, "required": ["choice"],
         "properties": {"choice": {
             "type": "object", "additionalProperties": False, "required": ["values"],
             "properties": {"values": {"type": "array", "items": scalar},
                            "weights": {"type": "array", "items": {"type": "number"}}}}}},
    ]
    if quantity != "count":
        forms += [
            {"type": "object", "additionalProperties": False, "required": ["exponential"],
             "properties": {"exponential": scalar}},
            {"type": "object", "additionalProperties": False, "required": ["lognormal"],
             "properties": {"lognormal": {
                 "type": "object", "additionalProperties": False,
                 "required": ["median", "p95"],
                 "properties": {"median": scalar, "p95": scalar}}}},
        ]
    return {"anyOf": forms, "description": f"a {quantity} distribution: every value and "
            f"the mean at most {said}; a lognormal's p95 at most "
            f"{MAX_SPREAD[quantity]:,.0f}× its median"}


_MAX_LATTICE = 1 << 24
_DEFAULT_POINTS = 1 << 20
# Continuous lattices of at least this many points are kept (by distribution, step, cap,
# top and tail), up to this many points in all (then the store starts again).
_LATTICE_CACHE_FROM = 1 << 12
_LATTICE_CACHE_POINTS = 1 << 23
_LATTICES: dict[tuple[Any, ...], Any] = {}
_FAR_POINT = _MAX_LATTICE // 4
"""Furthest lattice index a tail cut for size is placed at (4,194,304 steps; 32 MB)."""


def finest_step(mean: float) -> float:
    """Finest lattice step (units) on which :meth:`Distribution.lattice_pmf` keeps a
    mean of ``mean`` units exactly (a finer one refuses a cut tail it cannot reach)."""
    return 2.0 * mean / _FAR_POINT


def spread_points(values: NDArray[np.float64], weights: NDArray[np.float64],
                  h: float) -> NDArray[np.float64]:
    """Point masses at ``values`` on the lattice 0, h, 2h, … (each spread linearly over
    its two nearest points: the mean kept)."""
    return _spread(values, weights, h, math.inf, None)


def _spread(values: NDArray[np.float64], weights: NDArray[np.float64], h: float,
            top: float, t_idx: int | None, size: int | None = None) -> NDArray[np.float64]:
    """Point masses spread linearly over their two nearest lattice points (mean kept);
    values above ``top`` gathered at the point ``t_idx``."""
    import numpy as np

    pos = values / h
    lo = np.floor(pos)
    frac = pos - lo
    big = values > top if t_idx is not None else np.zeros(values.size, dtype=bool)
    hi_idx = int(lo[~big].max()) + 1 if (~big).any() else 0
    n = max(hi_idx, t_idx if t_idx is not None and big.any() else 0) + 1
    if size is not None:
        n = max(n, size)
    if n > _MAX_LATTICE:
        raise ValueError(f"lattice of {n:,} points")
    out = np.zeros(n)
    keep = ~big
    li = lo[keep].astype(np.int64)
    np.add.at(out, li, weights[keep] * (1.0 - frac[keep]))
    np.add.at(out, li + 1, weights[keep] * frac[keep])
    if big.any():
        assert t_idx is not None
        out[t_idx] += float(weights[big].sum())
    if size is None:
        nz = np.flatnonzero(out)
        out = out[: int(nz[-1]) + 1] if nz.size else out[:1]
    return out
