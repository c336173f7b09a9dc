"""Distributions: parsing, moments against scipy/closed forms, lattices, sampling, errors."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from capacity.model.dist import _FAR_POINT, Distribution, parse_duration

NAN, INF = float("nan"), float("inf")


def parse(raw: Any, quantity: str = "number") -> Distribution:
    """Distribution.parse with a quantity default."""
    return Distribution.parse(raw, quantity)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


class TestParseForms:
    """Every YAML form the profile format documents."""

    @pytest.mark.parametrize(("raw", "quantity", "value"), [
        (3, "count", 3.0),
        (1500, "tokens", 1500.0),
        (2.5, "number", 2.5),
        (0, "count", 0.0),
        ({"fixed": 7}, "count", 7.0),
    ])
    def test_scalar_is_a_point_mass(self, raw: Any, quantity: str, value: float) -> None:
        """A bare number is a fixed distribution with that mean and zero variance."""
        d = parse(raw, quantity)
        assert d.is_fixed
        assert (d.mean, d.var, d.lower, d.upper) == (value, 0.0, value, value)

    @pytest.mark.parametrize(("raw", "seconds"), [
        ("150s", 150.0), ("2.5m", 150.0), ("500ms", 0.5), ("1h", 3600.0), ("2min", 120.0),
        ("45", 45.0), (12, 12.0), (0.25, 0.25), (" 3 s ", 3.0), ("1e3ms", 1.0),
        ("1d", 86400.0), ("0.5 d", 43200.0),
    ])
    def test_durations_in_seconds(self, raw: Any, seconds: float) -> None:
        """Durations accept ms, s, m, min, h, d and bare numbers, always in seconds."""
        assert parse_duration(raw) == pytest.approx(seconds, rel=1e-15)
        assert parse(raw, "duration").mean == pytest.approx(seconds, rel=1e-15)

    def test_uniform_durations_with_units(self) -> None:
        """{uniform: [2m, 3m]} spans 120..180 s with mean 150 s."""
        d = parse({"uniform": ["2m", "3m"]}, "duration")
        assert (d.lower, d.upper) == (120.0, 180.0)
        assert d.mean == pytest.approx(150.0)

    def test_uniform_with_equal_bounds_is_fixed(self) -> None:
        """A degenerate uniform [a, a] collapses to a point mass."""
        assert parse({"uniform": [4, 4]}, "count").is_fixed

    def test_exponential_both_spellings(self) -> None:
        """{exponential: 45s} and {exponential: {mean: 45s}} are the same distribution."""
        a = parse({"exponential": "45s"}, "duration")
        b = parse({"exponential": {"mean": "45s"}}, "duration")
        assert a == b
        assert a.mean == pytest.approx(45.0)

    def test_choice_weights_normalised(self) -> None:
        """Choice weights are normalised to probabilities; omitted weights are equal."""
        d = parse({"choice": {"values": [0, 1, 2, 3], "weights": [3, 3.5, 2, 1.5]}}, "count")
        assert d.weights == pytest.approx((0.3, 0.35, 0.2, 0.15))
        e = parse({"choice": {"values": [10, 20, 30]}}, "tokens")
        assert e.weights == pytest.approx((1 / 3, 1 / 3, 1 / 3))

    def test_choice_support_ignores_zero_weights(self) -> None:
        """Values with weight 0 are outside the support (lower/upper)."""
        d = parse({"choice": {"values": [1, 5, 9], "weights": [0, 1, 0]}}, "count")
        assert (d.lower, d.upper, d.mean) == (5.0, 5.0, 5.0)

    @pytest.mark.parametrize(("raw", "quantity"), [
        (5, "count"),
        ({"uniform": [1, 6]}, "count"),
        ({"uniform": ["2m", "3m"]}, "duration"),
        ({"exponential": 30}, "duration"),
        ({"lognormal": {"median": 6000, "p95": 18000}}, "tokens"),
        ({"choice": {"values": [0, 1, 2], "weights": [1, 2, 3]}}, "count"),
    ])
    def test_to_dict_round_trips(self, raw: Any, quantity: str) -> None:
        """parse(d.to_dict()) rebuilds the same distribution."""
        d = parse(raw, quantity)
        assert parse(d.to_dict(), quantity) == d


class TestLognormalMedianP95:
    """{lognormal: {median, p95}}: the p95 really is the 95th percentile."""

    MEDIAN, P95 = 350.0, 1200.0

    def sigma(self) -> float:
        """σ from the stdlib normal quantile, independent of scipy."""
        return math.log(self.P95 / self.MEDIAN) / NormalDist().inv_cdf(0.95)

    def test_quantiles(self) -> None:
        """ppf(0.5) is the median and ppf(0.95) is the p95."""
        d = parse({"lognormal": {"median": self.MEDIAN, "p95": self.P95}}, "tokens")
        assert d.ppf(0.5) == pytest.approx(self.MEDIAN, rel=1e-12)
        assert d.ppf(0.95) == pytest.approx(self.P95, rel=1e-12)

    def test_moments_closed_form(self) -> None:
        """Mean e^{μ+σ²/2} and variance (e^{σ²}−1)e^{2μ+σ²} with μ = ln(median)."""
        d = parse({"lognormal": {"median": self.MEDIAN, "p95": self.P95}}, "tokens")
        s2, mu = self.sigma() ** 2, math.log(self.MEDIAN)
        assert d.mean == pytest.approx(math.exp(mu + s2 / 2), rel=1e-12)
        assert d.var == pytest.approx((math.exp(s2) - 1) * math.exp(2 * mu + s2), rel=1e-12)

    def test_sampled_p95(self) -> None:
        """95% of 200,000 seeded draws fall at or below the p95 (±6 binomial sd)."""
        d = parse({"lognormal": {"median": self.MEDIAN, "p95": self.P95}}, "tokens")
        x = d.sample(np.random.default_rng(5), 200_000)
        frac = float(np.mean(x <= self.P95))
        assert abs(frac - 0.95) <= 6 * math.sqrt(0.95 * 0.05 / x.size)
        assert float(np.median(x)) == pytest.approx(self.MEDIAN, rel=0.01)


# ---------------------------------------------------------------------------------------
# Moments
# ---------------------------------------------------------------------------------------

MOMENT_CASES: list[tuple[Any, str, Any]] = [
    ({"uniform": [80, 250]}, "tokens", stats.uniform(loc=80, scale=170)),
    ({"uniform": [0, 3]}, "count", stats.randint(0, 4)),
    ({"uniform": ["0.4s", "1.2s"]}, "duration", stats.uniform(loc=0.4, scale=0.8)),
    ({"exponential": "45s"}, "duration", stats.expon(scale=45)),
    ({"lognormal": {"median": 6000, "p95": 18000}}, "tokens",
     stats.lognorm(s=math.log(3) / NormalDist().inv_cdf(0.95), scale=6000)),
    ({"choice": {"values": [0, 1, 2, 3], "weights": [0.3, 0.35, 0.2, 0.15]}}, "count",
     stats.rv_discrete(values=([0, 1, 2, 3], [0.3, 0.35, 0.2, 0.15]))),
]


@pytest.mark.parametrize(("raw", "quantity", "ref"), MOMENT_CASES)
def test_mean_and_var_match_scipy(raw: Any, quantity: str, ref: Any) -> None:
    """Mean and variance equal those of the scipy.stats distribution built in the test."""
    d = parse(raw, quantity)
    assert d.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert d.var == pytest.approx(ref.var(), rel=1e-12)


def test_count_uniform_is_inclusive() -> None:
    """{uniform: [1, 6]} for a count is a fair die: mean 3.5, variance 35/12."""
    d = parse({"uniform": [1, 6]}, "count")
    assert d.mean == pytest.approx(3.5)
    assert d.var == pytest.approx(35 / 12)
    assert (d.lower, d.upper) == (1.0, 6.0)


@pytest.mark.parametrize("cap", [10.0, 45.0, 200.0])
def test_mean_clipped_exponential(cap: float) -> None:
    """E[min(X, c)] = μ(1 − e^{−c/μ}) for an exponential."""
    d = parse({"exponential": 45}, "number")
    assert d.mean_clipped(cap) == pytest.approx(45 * (1 - math.exp(-cap / 45)), rel=1e-8)


def test_mean_clipped_lognormal() -> None:
    """E[min(X, c)] of a lognormal matches direct integration of c·P(X>c) + E[X; X≤c]."""
    d = parse({"lognormal": {"median": 350, "p95": 1200}}, "tokens")
    ref = stats.lognorm(s=math.log(1200 / 350) / NormalDist().inv_cdf(0.95), scale=350)
    cap = 1000.0
    below, _ = integrate.quad(lambda x: x * ref.pdf(x), 0, cap, limit=200)
    assert d.mean_clipped(cap) == pytest.approx(below + cap * ref.sf(cap), rel=1e-6)


# ---------------------------------------------------------------------------------------
# Lattice pmf
# ---------------------------------------------------------------------------------------

LATTICE_CASES: list[tuple[Any, str, float]] = [
    (7, "count", 1.0),
    (1000, "tokens", 48.828125),
    ({"uniform": [80, 250]}, "tokens", 10.0),
    ({"uniform": [4000, 9000]}, "tokens", 48.828125),
    ({"uniform": [0, 3]}, "count", 1.0),
    ({"exponential": 45}, "duration", 1.0),
    ({"lognormal": {"median": 6000, "p95": 18000}}, "tokens", 100.0),
    ({"lognormal": {"median": 350, "p95": 1200}}, "tokens", 7.0),
    ({"choice": {"values": [0, 1, 2, 3], "weights": [0.3, 0.35, 0.2, 0.15]}}, "count", 1.0),
    ({"choice": {"values": [120, 480, 990]}}, "tokens", 50.0),
]


@pytest.mark.parametrize(("raw", "quantity", "h"), LATTICE_CASES)
def test_lattice_pmf_is_a_pmf_with_the_right_mean(raw: Any, quantity: str, h: float) -> None:
    """The lattice pmf is non-negative, sums to 1 and its mean is within h/2 of E[X]."""
    d = parse(raw, quantity)
    p = d.lattice_pmf(h)
    assert np.all(p >= 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    lattice_mean = float(np.dot(np.arange(p.size), p)) * h
    assert abs(lattice_mean - d.mean) <= h / 2 + 1e-6 * d.mean


def test_lattice_pmf_of_count_equals_scipy_pmf() -> None:
    """On the unit lattice a count's pmf is exactly scipy's pmf."""
    p = parse({"uniform": [2, 5]}, "count").lattice_pmf(1.0)
    np.testing.assert_allclose(p, stats.randint(2, 6).pmf(np.arange(6)), atol=1e-15)


def test_lattice_pmf_rounds_continuous_values_to_nearest() -> None:
    """For U(0, 1000) on h = 100: P(k) = 0.1 inside, 0.05 at both ends."""
    p = parse({"uniform": [0, 1000]}, "tokens").lattice_pmf(100.0)
    expected = np.full(11, 0.1)
    expected[[0, -1]] = 0.05
    np.testing.assert_allclose(p, expected, atol=1e-12)


@pytest.mark.parametrize(("raw", "cap", "h"), [
    ({"uniform": [0, 1000]}, 240.0, 100.0),
    ({"exponential": 100}, 240.0, 100.0),
    ({"lognormal": {"median": 350, "p95": 1200}}, 1024.0, 48.828125),
])
def test_lattice_pmf_with_cap_keeps_the_clipped_mean(raw: Any, cap: float, h: float) -> None:
    """With a cap the pmf is that of min(X, cap) spread over the nearest lattice points:
    its mean is exactly E[min(X, cap)] and nothing lies beyond ⌈cap/h⌉."""
    d = parse(raw, "tokens")
    p = d.lattice_pmf(h, cap=cap)
    assert p.size <= math.ceil(cap / h) + 1
    assert float(np.dot(np.arange(p.size), p)) * h == pytest.approx(d.mean_clipped(cap),
                                                                     rel=1e-9)


@pytest.mark.parametrize("cap", [240.0, 500.0])
def test_lattice_pmf_with_cap_mean_near_clipped_mean(cap: float) -> None:
    """The capped lattice mean is within one lattice step of E[min(X, cap)]."""
    d = parse({"exponential": 100}, "tokens")
    p = d.lattice_pmf(100.0, cap=cap)
    assert abs(float(np.dot(np.arange(p.size), p)) * 100.0 - d.mean_clipped(cap)) <= 100.0


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------

SAMPLE_CASES = [(raw, q) for raw, q, _ in MOMENT_CASES] + [(4, "count")]


@pytest.mark.parametrize(("raw", "quantity"), SAMPLE_CASES)
def test_sample_is_reproducible_from_the_passed_rng(raw: Any, quantity: str) -> None:
    """The same seed gives the same draws; the global numpy state is never used."""
    d = parse(raw, quantity)
    before = np.random.get_state()[1].copy()
    a = d.sample(np.random.default_rng(42), 1000)
    b = d.sample(np.random.default_rng(42), 1000)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    assert a.shape == (1000,)
    assert np.all(a >= d.lower)
    assert np.all(a <= d.upper)


@pytest.mark.parametrize(("raw", "quantity"), [(raw, q) for raw, q, _ in MOMENT_CASES])
def test_sample_draws_from_the_rng(raw: Any, quantity: str) -> None:
    """Sampling advances the passed generator, and different seeds give different draws."""
    d = parse(raw, quantity)
    rng = np.random.default_rng(1)
    d.sample(rng, 10)
    assert rng.bit_generator.state != np.random.default_rng(1).bit_generator.state
    a = d.sample(np.random.default_rng(1), 200)
    b = d.sample(np.random.default_rng(2), 200)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(("raw", "quantity", "ref"), MOMENT_CASES)
def test_sample_moments(raw: Any, quantity: str, ref: Any) -> None:
    """The mean of 100,000 seeded draws is within 6 standard errors of the scipy mean."""
    d = parse(raw, quantity)
    x = d.sample(np.random.default_rng(11), 100_000)
    assert abs(x.mean() - ref.mean()) <= 6 * math.sqrt(ref.var() / x.size)


def test_count_samples_are_integers() -> None:
    """Counts come back integer valued, with a tuple shape honoured."""
    x = parse({"uniform": [0, 3]}, "count").sample(np.random.default_rng(3), (50, 4))
    assert x.shape == (50, 4)
    np.testing.assert_array_equal(x, np.round(x))


# ---------------------------------------------------------------------------------------
# Invalid input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "quantity", "match"), [
    (-1, "tokens", "≥ 0"),
    (-2, "duration", "≥ 0"),
    (1.5, "count", "integer"),
    (True, "count", "integer"),
    ("many", "count", "integer"),
    ("5 parsecs", "duration", "duration such as"),
    ("-3s", "duration", "duration such as"),
    (True, "duration", "duration"),
    ([1, 2], "tokens", "number"),
    ({"uniform": [5, 1]}, "tokens", "low ≤ high"),
    ({"uniform": [-1, 1]}, "tokens", "low ≤ high"),
    ({"uniform": [1, 2, 3]}, "tokens", r"\[low, high\]"),
    ({"uniform": 3}, "tokens", r"\[low, high\]"),
    ({"uniform": [1.5, 3]}, "count", "integer"),
    ({"exponential": 0}, "duration", "> 0"),
    ({"exponential": {"avg": 3}}, "duration", "mean"),
    ({"exponential": 3}, "count", "continuous"),
    ({"lognormal": {"median": 5, "p95": 5}}, "tokens", "median < p95"),
    ({"lognormal": {"median": 0, "p95": 5}}, "tokens", "median < p95"),
    ({"lognormal": {"median": 5}}, "tokens", "median"),
    ({"lognormal": {"median": 1, "p95": 2}}, "count", "continuous"),
    ({"choice": {"values": []}}, "count", "non-empty"),
    ({"choice": {"values": [1, 2], "weights": [1]}}, "count", "one weight per value"),
    ({"choice": {"values": [1, 2], "weights": [-1, 2]}}, "count", "≥ 0"),
    ({"choice": {"values": [1, 2], "weights": [0, 0]}}, "count", "positive sum"),
    ({"choice": {"values": [-1, 2]}}, "tokens", "≥ 0"),
    ({"choice": [1, 2]}, "tokens", "values"),
    ({"gamma": 3}, "tokens", "unknown distribution 'gamma'"),
    ({"uniform": [1, 2], "exponential": 3}, "tokens", "got keys"),
])
def test_invalid_inputs_raise_value_error(raw: Any, quantity: str, match: str) -> None:
    """Each malformed distribution raises ValueError naming the rule it broke."""
    with pytest.raises(ValueError, match=match):
        parse(raw, quantity)


@pytest.mark.parametrize(("raw", "quantity"), [
    (INF, "count"),
    (NAN, "count"),
    (INF, "tokens"),
    (NAN, "tokens"),
    (INF, "duration"),
    ({"uniform": [0, INF]}, "tokens"),
    ({"uniform": [NAN, 5]}, "tokens"),
    ({"exponential": INF}, "duration"),
    ({"lognormal": {"median": NAN, "p95": 5}}, "tokens"),
    ({"choice": {"values": [1, INF]}}, "tokens"),
    ({"choice": {"values": [1, 2], "weights": [NAN, 1]}}, "count"),
])
def test_non_finite_numbers_raise_value_error(raw: Any, quantity: str) -> None:
    """YAML's .inf/.nan are rejected with a ValueError naming the value, never accepted."""
    with pytest.raises(ValueError, match=r"(?i)finite|got .*(inf|nan)"):
        parse(raw, quantity)


@pytest.mark.parametrize("raw", [
    {"uniform": [120, 180]}, {"exponential": 45}, {"lognormal": {"median": 350, "p95": 1200}},
    {"choice": {"values": [0, 1, 2, 3], "weights": [0.3, 0.35, 0.2, 0.15]}},
])
@pytest.mark.parametrize("quantity", ["tokens", "count"])
def test_closed_forms_match_scipy_stats(raw: Any, quantity: str) -> None:
    """mean, var, cdf, ppf and E[min(X, c)] agree with the scipy.stats twin."""
    from scipy import integrate

    if quantity == "count" and ("exponential" in raw or "lognormal" in raw):
        return
    d = parse(raw, quantity)
    rv = d.frozen
    np.testing.assert_allclose([d.mean, d.var], [rv.mean(), rv.var()], rtol=1e-9)
    xs = np.linspace(0, 2 * d.ppf(0.99), 57)
    np.testing.assert_allclose(d.cdf(xs), rv.cdf(xs), atol=1e-12)
    for q in (0.05, 0.5, 0.95):
        assert d.ppf(q) == pytest.approx(float(rv.ppf(q)), rel=1e-9)
    cap = d.ppf(0.7)
    if quantity == "count" or "choice" in raw:
        expected = float(rv.expect(lambda x: np.minimum(x, cap)))
    else:
        expected = integrate.quad(lambda x: float(rv.sf(x)), 0, cap, limit=200)[0]
    assert d.mean_clipped(cap) == pytest.approx(expected, rel=1e-7)


def test_z95_constant() -> None:
    """The lognormal p95 z-score is scipy's normal quantile."""
    from scipy import stats

    from capacity.model.dist import _Z95

    assert stats.norm.ppf(0.95) == pytest.approx(_Z95, rel=1e-15)


# ---------------------------------------------------------------------------------------
# Exact lattice means for very spread distributions (issue 13)
# ---------------------------------------------------------------------------------------

def _spread_dist(family: str, median: float, spread: float) -> Distribution:
    """A tokens distribution of ``family`` whose values span ``spread``× its median."""
    if family == "lognormal":
        return parse({"lognormal": {"median": median, "p95": median * spread}}, "tokens")
    if family == "exponential":
        return parse({"exponential": median * spread}, "tokens")
    if family == "uniform":
        return parse({"uniform": [median, median * spread]}, "tokens")
    return parse({"choice": {"values": [median, median * spread],
                             "weights": [1.0, 1.0 / spread]}}, "tokens")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=st.sampled_from(["lognormal", "lognormal", "exponential", "uniform", "choice"]),
       median=st.floats(1e-3, 100.0),
       spread=st.one_of(st.just(1000.0), st.floats(1.01, 1000.0)),
       h=st.sampled_from([0.5, 0.75, 1.0, 10.0, 1000.0]))
def test_lattice_keeps_the_exact_mean_of_a_wide_spread(family: str, median: float,
                                                       spread: float, h: float) -> None:
    """Up to the schema's widest lognormal (p95 = 1,000× the median, mean 6,700× it) on
    a step of half a token, the lattice mean is E[X] to 1e-9 and the lattice bounded
    (a tail cut for size used to lose up to 59 % of the mean)."""
    d = _spread_dist(family, median, spread)
    p = d.lattice_pmf(h)
    assert p.min() >= 0.0 and math.isclose(p.sum(), 1.0, rel_tol=1e-12)
    assert p.size <= _FAR_POINT + 2
    lattice_mean = float(np.dot(np.arange(p.size, dtype=np.float64), p)) * h
    assert lattice_mean == pytest.approx(d.mean, rel=1e-9)


def test_lattice_refuses_a_mean_beyond_its_reach() -> None:
    """A mean of more steps than the lattice may hold is an error, never a cut mean."""
    d = parse({"lognormal": {"median": 1000, "p95": 999_000}}, "tokens")
    with pytest.raises(ValueError, match="too fine"):
        d.lattice_pmf(0.5)
    p = d.lattice_pmf(1000.0)  # a coarser step holds it exactly
    assert float(np.dot(np.arange(p.size), p)) * 1000.0 == pytest.approx(d.mean, rel=1e-9)
