"""Distribution fits: the profile's families by likelihood (AIC), checked by KS distance.

For a continuous quantity (tokens, seconds) the candidates are the families a profile
can write — ``uniform`` (MLE: the sample's range; written unbiased and centred on the
mean), ``exponential`` (MLE: the mean) and ``lognormal`` (MLE: mean and sd of the logs)
— ranked by AIC = 2k − 2·log-likelihood.
The best-ranked family whose Kolmogorov–Smirnov distance to the sample is acceptable
wins; acceptable means at most the 1 % critical value 1.63/√n, or 0.02 when that is
smaller (token counts are integers and durations are rounded, so a tiny, practically
meaningless distance would otherwise reject every family on large samples). When no
family is acceptable the sample itself is written as an empirical ``choice``: twenty
equal-probability quantile bins, each at its bin's mean, so the mean is kept exactly.

Values cut at a cap (output tokens at ``max_tokens``) are right-censored: the exponential
and lognormal likelihoods use the survival function for them, and the KS distance is
taken below the cap.

Counts (fan-out, loop length) are ``fixed``, integer ``uniform`` or ``choice`` over the
observed values, again by AIC. A point sample is ``fixed``. Fits from fewer than
:data:`MIN_SAMPLES` values are marked weak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from capacity.model.dist import MAX_SPREAD, Distribution, Quantity
from capacity.model.numeric import normal_logsf

MIN_SAMPLES = 30
"""Below this many values a fit is reported as weak whatever its KS distance."""

KS_FLOOR = 0.02
"""KS distances up to this are accepted on any sample size (see the module docstring)."""

_KS_C01 = 1.628  # asymptotic 1 % critical value of √n·D
_Z95 = 1.6448536269514722
_BINS = 20


@dataclass(frozen=True)
class Fit:
    """One fitted distribution with its evidence."""

    dist: Distribution
    family: str
    n: int
    ks: float
    """KS distance between the sample's ECDF and the fitted cdf (below any cap)."""
    aic: dict[str, float] = field(default_factory=dict)
    weak: str = ""
    """Why the fit is weak (empty when it is not)."""
    sample: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    cap: float | None = None

    @property
    def ks_limit(self) -> float:
        """The largest KS distance accepted at this sample size."""
        return ks_limit(self.n)

    def comment(self) -> str:
        """One line of evidence for the profile: family, how it was chosen, KS, n."""
        how = self.family
        ranked = sorted(self.aic.items(), key=lambda kv: kv[1])
        if self.family in self.aic and len(ranked) > 1:
            nxt = next((f, a) for f, a in ranked if f != self.family)
            how += f" by AIC (next {nxt[0]} +{nxt[1] - self.aic[self.family]:.3g})"
        text = f"{how}; KS {self.ks:.3f} (n={self.n:,})"
        if self.cap is not None:
            text += f", {int(np.sum(self.sample >= self.cap)):,} cut at {self.cap:g}"
        if self.weak:
            text += f"; WEAK: {self.weak}"
        return text


def ks_limit(n: int) -> float:
    """Accepted KS distance for ``n`` values: max(1 % critical value, KS_FLOOR)."""
    return max(_KS_C01 / math.sqrt(max(n, 1)), KS_FLOOR)


def ks_distance(sorted_x: NDArray[np.float64], d: Distribution, n: int | None = None
                ) -> float:
    """sup |ECDF − F| between a sorted sample and ``d`` (ties allowed).

    An all-integer sample (token counts, counts) is compared with ``d`` rounded to whole
    numbers, as the simulator and providers count: P(round(X) ≤ k) = F(k + ½).
    ``n``: the full sample size when ``sorted_x`` holds only the values below a cap.
    """
    m = len(sorted_x)
    if m == 0:
        return 0.0
    n = m if n is None else n
    if np.all(sorted_x == np.round(sorted_x)):
        hi, lo = d.cdf(sorted_x + 0.5), d.cdf(sorted_x - 0.5)
    else:
        hi = lo = d.cdf(sorted_x)
    i = np.arange(1, m + 1, dtype=np.float64)
    # With ties the ECDF jumps once per distinct value: compare F with the ECDF just after
    # the last copy and just before the first copy of each value.
    last = np.r_[sorted_x[1:] != sorted_x[:-1], True]
    first = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    d_plus = np.max(i[last] / n - hi[last])
    d_minus = np.max(lo[first] - (i[first] - 1) / n)
    return float(max(d_plus, d_minus, 0.0))


def _lognormal(mu: float, sigma: float, quantity: Quantity) -> Distribution:
    return Distribution("lognormal", (math.exp(mu), math.exp(mu + _Z95 * sigma)), quantity)


def _censored_lognormal(x: NDArray[np.float64], cap: float) -> tuple[float, float, float]:
    """(mu, sigma, log-likelihood) with values ≥ cap right-censored.

    Newton's method in Olsen's parameters δ = mu/sigma, h = 1/sigma, where this (Tobit)
    log-likelihood is concave: the maximum is unique and each step that does not raise
    the likelihood is halved until it does.
    """
    y = np.log(x[x < cap])
    nu, nc, c = len(y), int(np.sum(x >= cap)), math.log(cap)
    sy, syy, slx = float(y.sum()), float(np.dot(y, y)), float(y.sum())
    half_log_2pi = 0.5 * math.log(2 * math.pi)

    def loglik(d: float, h: float) -> float:
        if h <= 0:
            return -math.inf
        sq = h * h * syy - 2 * h * d * sy + nu * d * d  # Σ (h·y − δ)²
        return (nu * (math.log(h) - half_log_2pi) - 0.5 * sq - slx
                + nc * normal_logsf(h * c - d))

    mu0, s0 = float(y.mean()), max(float(y.std()), 1e-3)
    d, h = mu0 / s0, 1.0 / s0
    ll = loglik(d, h)
    for _ in range(200):
        t = h * c - d
        lam = math.exp(-0.5 * t * t - half_log_2pi - normal_logsf(t))  # φ(t)/P(Z > t)
        kappa = lam * (lam - t)  # −(d²/dt²) log P(Z > t), in (0, 1)
        g_d = (h * sy - nu * d) + nc * lam  # gradient of the log-likelihood
        g_h = nu / h - (h * syy - d * sy) - nc * lam * c
        h_dd = -nu - nc * kappa
        h_dh = sy + nc * kappa * c
        h_hh = -nu / (h * h) - syy - nc * kappa * c * c
        det = h_dd * h_hh - h_dh * h_dh
        if not det > 0:  # not negative definite (rounding far from the optimum): ascend
            step_d, step_h = g_d * 1e-3, g_h * 1e-3
        else:  # Newton: −H⁻¹·g
            step_d = -(h_hh * g_d - h_dh * g_h) / det
            step_h = -(h_dd * g_h - h_dh * g_d) / det
        scale = 1.0
        while True:
            nd, nh = d + scale * step_d, h + scale * step_h
            nll = loglik(nd, nh)
            if nll >= ll or scale < 1e-12:
                break
            scale /= 2
        if not nll >= ll:
            break
        converged = abs(nd - d) <= 1e-12 * max(1.0, abs(d)) and abs(nh - h) <= 1e-12 * h
        d, h, ll = nd, nh, nll
        if converged:
            break
    return d / h, 1.0 / h, ll


def empirical(x: NDArray[np.float64], quantity: Quantity) -> Distribution:
    """The sample as a ``choice``: its distinct values when few, else 20 quantile bins."""
    xs = np.sort(np.asarray(x, dtype=np.float64))
    vals, counts = np.unique(xs, return_counts=True)
    if len(vals) <= _BINS:
        return Distribution("choice", (), quantity, tuple(map(float, vals)),
                            tuple(float(c) / len(xs) for c in counts))
    chunks = np.array_split(xs, _BINS)
    values = [float(c.mean()) for c in chunks]
    if quantity == "count":
        values = [float(round(v)) for v in values]
    return Distribution("choice", (), quantity, tuple(values),
                        tuple(len(c) / len(xs) for c in chunks))


def _weak(n: int, extra: str = "") -> str:
    if n < MIN_SAMPLES:
        return f"only {n} value{'s' if n != 1 else ''}" + (f"; {extra}" if extra else "")
    return extra


def fit_continuous(x: NDArray[np.float64] | list[float], quantity: Quantity,
                   cap: float | None = None) -> Fit:
    """Fit tokens or seconds (non-negative) by AIC among the profile's families.

    ``cap``: values ≥ cap are right-censored (output tokens cut at ``max_tokens``).
    """
    xs = np.sort(np.asarray(x, dtype=np.float64))
    n = len(xs)
    if n == 0:
        raise ValueError("no values to fit")
    if np.any(xs < 0) or not np.all(np.isfinite(xs)):
        raise ValueError("values must be finite and ≥ 0")
    mean = float(xs.mean())
    censored = cap is not None and bool(np.any(xs >= cap))
    below = xs < cap if censored and cap is not None else np.ones(n, dtype=bool)
    n_unc = int(below.sum())
    if xs[-1] - xs[0] <= 1e-9 * max(1.0, abs(mean)):
        return Fit(Distribution.fixed(float(xs[0]), quantity), "fixed", n, 0.0, {},
                   _weak(n), xs)
    cands: dict[str, tuple[Distribution, float, int]] = {}
    lo, hi = float(xs[0]), float(xs[-1])
    # The sample's range is the MLE (its likelihood ranks the family); the bounds written
    # are the range widened by range/(n−1) at each end (unbiased on small samples) and
    # centred on the sample mean, which every ceiling depends on.
    half = (hi - lo) * (n + 1) / (n - 1) / 2 if n > 1 else 0.0
    centre = mean if not censored else (lo + hi) / 2
    ulo, uhi = max(0.0, centre - half), centre + half
    cands["uniform"] = (Distribution("uniform", (ulo, uhi), quantity), -n * math.log(hi - lo),
                        2)
    if mean > 0 and n_unc > 0:
        m = float(xs.sum()) / n_unc  # censored exponential MLE: total exposure / events
        cands["exponential"] = (Distribution("exponential", (m,), quantity),
                                -n_unc * math.log(m) - float(xs.sum()) / m, 1)
    if xs[0] > 0 and n_unc >= 2:
        if censored and cap is not None:
            mu, s, ll = _censored_lognormal(xs, cap)
        else:
            lx = np.log(xs)
            mu, s = float(lx.mean()), float(lx.std())
            ll = (-n * (math.log(s) + 0.5 * math.log(2 * math.pi)) - float(lx.sum())
                  - 0.5 * n) if s > 0 else -math.inf
        # A spread beyond what a profile accepts (p95/median) is no candidate: the
        # written profile must validate; another family or the empirical choice fits.
        if s > 1e-9 and math.isfinite(ll) and _Z95 * s <= math.log(MAX_SPREAD[quantity]) - 0.01:
            cands["lognormal"] = (_lognormal(mu, s, quantity), ll, 2)
    aic = {f: 2 * k - 2 * ll for f, (_, ll, k) in cands.items()}
    xb = xs[below]
    best: Fit | None = None
    for fam in sorted(aic, key=aic.__getitem__):
        d = cands[fam][0]
        ks = ks_distance(xb, d, n) if len(xb) else 0.0
        fit = Fit(d, fam, n, ks, aic, _weak(n), xs, cap if censored else None)
        if ks <= ks_limit(n):
            return fit
        if best is None or ks < best.ks:
            best = fit
    d = empirical(xs, quantity)
    ks = ks_distance(xs, d)
    why = (f"no family fits (best {best.family} KS {best.ks:.3f} > {ks_limit(n):.3f}); "
           "empirical choice" if best is not None else "empirical choice")
    return Fit(d, "choice (empirical)", n, ks, aic, _weak(n, why) or why, xs,
               cap if censored else None)


def fit_count(k: NDArray[np.float64] | list[int]) -> Fit:
    """Fit a count (fan-out copies, loop iterations): fixed, integer uniform or choice."""
    xs = np.sort(np.asarray(k, dtype=np.float64))
    n = len(xs)
    if n == 0:
        raise ValueError("no values to fit")
    vals, counts = np.unique(xs, return_counts=True)
    if len(vals) == 1:
        return Fit(Distribution.fixed(float(vals[0]), "count"), "fixed", n, 0.0, {},
                   _weak(n), xs)
    lo, hi = float(vals[0]), float(vals[-1])
    ll_u = -n * math.log(hi - lo + 1) if len(vals) == hi - lo + 1 else -math.inf
    ll_c = float(np.sum(counts * np.log(counts / n)))
    aic = {"choice": 2 * (len(vals) - 1) - 2 * ll_c}
    if math.isfinite(ll_u):
        aic["uniform"] = 4 - 2 * ll_u
    choice = Distribution("choice", (), "count", tuple(map(float, vals)),
                          tuple(float(c) / n for c in counts))
    fam = min(aic, key=aic.__getitem__)
    d = Distribution("uniform", (lo, hi), "count") if fam == "uniform" else choice
    return Fit(d, fam, n, ks_distance(xs, d), aic, _weak(n), xs)
