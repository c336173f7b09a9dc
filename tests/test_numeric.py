"""capacity.model.numeric against scipy (a dev dependency only) and against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from capacity.model.numeric import betainc, brentq, normal_logsf, t_quantile

# -- brentq -------------------------------------------------------------------------------

FUNCTIONS = [
    (lambda x: x**3 - 2.0, 0.0, 3.0),
    (math.cos, 0.0, 3.0),
    (lambda x: math.exp(x) - 1e5, -5.0, 40.0),
    (lambda x: x - 1e-9, 0.0, 1.0),
    (lambda x: math.atan(x - 7.3) * 1e-12, -100.0, 100.0),
    # The analytic model's use: λ(M(θ) − 1) − rθ, capped where M overflows.
    (lambda x: min(3.0 * math.expm1(min(50.0 * x, 700.0)) - 200.0 * x, 1e300), 1e-3, 20.0),
    (lambda x: -1.0 if x < 0.3 else 1.0, 0.0, 1.0),  # a step: bisection only
    (lambda x: (x - 0.5) ** 3, 0.0, 2.0),  # a flat, triple root
]


@pytest.mark.parametrize("f, a, b", FUNCTIONS)
@pytest.mark.parametrize("tol", [{}, {"xtol": 1e-14, "rtol": 1e-10}, {"xtol": 1e-3}])
def test_brentq_takes_scipys_steps(f: object, a: float, b: float,
                                   tol: dict[str, float]) -> None:
    """The same algorithm as scipy's brentq: the same root to the last bit (or, on a flat
    root too fine for the tolerance, the same failure to converge)."""
    try:
        ref = optimize.brentq(f, a, b, **tol)  # type: ignore[call-overload]
    except RuntimeError:
        with pytest.raises(RuntimeError, match="no convergence"):
            brentq(f, a, b, **tol)  # type: ignore[arg-type]
        return
    assert brentq(f, a, b, **tol) == ref  # type: ignore[arg-type]


def test_brentq_root_is_within_tolerance_and_bracketed_ends_are_roots() -> None:
    """The root is within xtol + rtol·|x| of the true one; an end that is a root wins."""
    x = brentq(lambda t: t * t - 2.0, 0.0, 2.0, xtol=1e-12, rtol=1e-12)
    assert abs(x - math.sqrt(2.0)) <= 1e-12 + 1e-12 * math.sqrt(2.0)
    assert brentq(lambda t: t - 1.0, 1.0, 5.0) == 1.0
    assert brentq(lambda t: t - 5.0, 1.0, 5.0) == 5.0


def test_brentq_refuses_what_it_cannot_solve() -> None:
    """No sign change, a non-finite end, too few steps, a bad tolerance: clear errors."""
    with pytest.raises(ValueError, match="opposite signs"):
        brentq(lambda t: t * t + 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="not finite"):
        brentq(lambda t: math.inf if t > 0 else -1.0, -1.0, 1.0)
    with pytest.raises(RuntimeError, match="no convergence"):
        brentq(lambda t: -1.0 if t < 0.123456789 else 1.0, 0.0, 1.0, maxiter=3)
    with pytest.raises(ValueError, match="rtol"):
        brentq(lambda t: t, -1.0, 1.0, rtol=1e-17)


# -- Student's t quantile -------------------------------------------------------------------

PS = (0.51, 0.6, 0.7, 0.749, 0.75, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9999)


def test_t_quantile_equals_scipy_over_df_1_to_1000() -> None:
    """Within 1e-10 relative of scipy.special.stdtrit for df = 1..1000 and p in
    (0.5, 0.9999] (measured: 2e-12 at worst)."""
    dfs = np.arange(1, 1001)
    for p in PS:
        ours = np.array([t_quantile(p, int(df)) for df in dfs])
        ref = special.stdtrit(dfs, p)
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=0, err_msg=f"p={p}")


@pytest.mark.parametrize("df", [2.5, 7.25, 33.3, 1e4, 99_999.0, 1e5, 1e6, 1e9])
def test_t_quantile_fractional_and_huge_df(df: float) -> None:
    """Any positive df, not only integers; a huge df (the Cornish–Fisher expansion beyond
    100,000) tends to the normal quantile."""
    for p in (0.55, 0.9, 0.999, 0.9999):
        assert t_quantile(p, df) == pytest.approx(float(stats.t.ppf(p, df)), rel=1e-10)


def test_t_quantile_near_the_centre_is_the_density_slope() -> None:
    """Just above ½ the quantile is (p − ½)/f(0) to first order (scipy loses digits
    there; the closed form does not)."""
    for df in (1, 3, 4, 30, 500):
        f0 = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
        for eps in (1e-6, 1e-9):
            assert t_quantile(0.5 + eps, df) == pytest.approx(eps / f0, rel=1e-7)


def test_t_quantile_symmetry_and_closed_forms() -> None:
    """t(1 − p) = −t(p); Cauchy (df 1) and df 2 have closed forms."""
    for df in (1, 2, 5, 60):
        assert t_quantile(0.1, df) == -t_quantile(0.9, df)
    assert t_quantile(0.5, 9) == 0.0
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-15)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729749464, rel=1e-14)
    with pytest.raises(ValueError):
        t_quantile(1.0, 5)
    with pytest.raises(ValueError):
        t_quantile(0.9, 0)


def test_the_engines_table_agrees_with_the_computed_quantiles() -> None:
    """The simulator's tabulated 97.5 % quantiles and the computed ones are one function."""
    from capacity.sim.engine import _T975, _t_quantile

    for df, q in enumerate(_T975, start=1):
        assert t_quantile(0.975, df) == pytest.approx(q, rel=1e-11)
    assert _t_quantile(0.975, 500) == pytest.approx(float(special.stdtrit(500, 0.975)),
                                                     rel=1e-11)
    assert _t_quantile(0.95, 10) == pytest.approx(float(special.stdtrit(10, 0.95)), rel=1e-11)


# -- incomplete beta and the normal tail ------------------------------------------------------


@pytest.mark.parametrize("a, b", [(0.5, 0.5), (0.5, 50.0), (500.0, 0.5), (2.0, 3.0),
                                  (30.0, 40.0), (1e-3, 1.0)])
def test_betainc_equals_scipy(a: float, b: float) -> None:
    """I_x(a, b) within 1e-12 relative of scipy.special.betainc across (0, 1)."""
    xs = np.linspace(0.0, 1.0, 201)
    ours = np.array([betainc(a, b, float(x)) for x in xs])
    np.testing.assert_allclose(ours, special.betainc(a, b, xs), rtol=1e-12, atol=1e-300)


def test_normal_logsf_equals_scipy_and_stays_finite() -> None:
    """log P(Z > z) within 1e-12 relative of scipy from −30 to 60, finite at 1e4."""
    zs = np.linspace(-30.0, 60.0, 1801)
    zs = zs[zs != 0]
    ours = np.array([normal_logsf(float(z)) for z in zs])
    ref = stats.norm.logsf(zs)
    keep = ref != 0
    np.testing.assert_allclose(ours[keep], ref[keep], rtol=1e-12)
    assert normal_logsf(1e4) == pytest.approx(float(stats.norm.logsf(1e4)), rel=1e-12)


# -- the FFT convolution of lattice distributions --------------------------------------------


def test_fft_sizes_are_scipys_fast_lengths() -> None:
    """The padded FFT length is the smallest 5-smooth length ≥ n, as scipy picks."""
    from scipy.fft import next_fast_len

    from capacity.model.workload import _fast_fft_size

    for n in [1, 2, 3, 7, 97, 1000, 1023, 1025, 4097, 10_007, 123_457, 999_983]:
        assert _fast_fft_size(n) == next_fast_len(n, real=True)


@pytest.mark.parametrize("na, nb", [(3000, 2000), (100_000, 50), (20_001, 3001)])
def test_large_convolutions_by_fft_equal_the_direct_sum(na: int, nb: int) -> None:
    """Above 4M products _conv goes through numpy's rfft: a probability vector again
    (non-negative, sum 1), within 1e-17 of the direct convolution, and equal to scipy's
    fftconvolve clipped and renormalised as before."""
    from scipy.signal import fftconvolve

    from capacity.model.workload import _conv

    rng = np.random.default_rng(na)
    a, b = rng.random(na) ** 8, rng.random(nb) ** 3
    a, b = a / a.sum(), b / b.sum()
    assert a.size * b.size > 4_000_000
    out = _conv(a, b)
    assert out.min() >= 0.0 and out.sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(out, np.convolve(a, b), rtol=0, atol=1e-17)
    ref = np.clip(fftconvolve(a, b), 0.0, None)
    np.testing.assert_allclose(out, ref / ref.sum(), rtol=0, atol=1e-18)
    top = _conv(a, b, top=na // 2)
    assert top.size == na // 2 + 1 and top.sum() == pytest.approx(1.0, abs=1e-14)


def test_a_lattice_laws_negligible_tail_is_gathered_not_carried() -> None:
    """_conv gathers a tail of mass at most 1e-15 onto its first point: mass kept, the
    kept points unchanged, the mean moved by at most that mass times the length — and a
    law without such a tail is returned whole."""
    from capacity.model.workload import _TAIL_MASS, _conv

    a = np.exp(-0.5 * ((np.arange(20_000) - 3_000) / 300.0) ** 2)  # a normal, 1e-15 far
    a /= a.sum()
    b = np.full(400, 1 / 400)
    full = np.convolve(a, b)
    out = _conv(a, b)
    assert 3_000 < out.size < full.size                     # cut where the mass is gone
    assert float(full[out.size:].sum()) <= _TAIL_MASS       # only a negligible tail went
    assert out.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(out[:-1], full[: out.size - 1], rtol=0, atol=1e-17)  # FFT
    k = np.arange(full.size)
    assert abs(float(k[: out.size] @ out) - float(k @ full)) <= _TAIL_MASS * full.size
    flat = np.full(9_000, 1 / 9_000)                        # no negligible tail
    assert _conv(flat, b).size == flat.size + b.size - 1


@pytest.mark.parametrize("k", [2, 3, 7, 11, 16])
def test_a_fixed_fan_out_by_squaring_equals_k_successive_copies(k: int) -> None:
    """batch_units_pmf takes a fixed count K's K-fold sum by squaring: the law of K
    successive convolutions, to rounding, with and without a top."""
    from capacity.model.dist import Distribution
    from capacity.model.workload import Batch, CallCost, _conv, batch_units_pmf

    cost = CallCost("tokens", input=Distribution.parse({"uniform": [100.5, 900.5]}, "tokens"))
    child = object()
    inner = cost.pmf(7.0)
    ref = np.ones(1)
    for _ in range(k):
        ref = _conv(ref, inner)
    batch = Batch(count=Distribution.fixed(float(k), "count"),
                  children=(child,))  # type: ignore[arg-type]
    got = batch_units_pmf(batch, {id(child): cost}, 7.0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)
    top = 300.0 * k
    cut = batch_units_pmf(batch, {id(child): cost}, 7.0, top=top)
    t = math.ceil(top / 7.0)
    assert cut.size == t + 1
    np.testing.assert_allclose(cut[:t], ref[:t], rtol=0, atol=1e-15)
    assert cut[t] == pytest.approx(float(ref[t:].sum()), abs=1e-14)
