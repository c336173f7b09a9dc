"""Small numerical routines in plain Python, so that the runtime needs no scipy.

* :func:`brentq` — Brent's root finder on a bracket, a line-by-line port of the algorithm
  scipy's ``optimize.brentq`` runs (``scipy/optimize/Zeros/brentq.c``): the same steps,
  so the same root to the last bit.
* :func:`t_quantile` — quantiles of Student's t, by Newton steps on the t cdf written
  with the regularised incomplete beta function (:func:`betainc`, a Lentz continued
  fraction). tests/test_numeric.py checks both against scipy (a dev dependency only).
* :func:`normal_logsf` — log P(Z > z) of the standard normal, finite far in the tail.
* :func:`fixed_point_between` — ``x = g(x)`` for a non-increasing ``g``, between two of
  its iterates (which bracket it), by :func:`brentq`; :func:`swing_narrows` — whether
  passes that ran out swing about their fixed point, narrowing or not.

Imports only the standard library: the profile and model layers use it without numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

__all__ = ["betainc", "brentq", "fixed_point_between", "normal_logsf", "swing_narrows",
           "t_quantile"]

_EPS = 2.220446049250313e-16
_STD_NORMAL = NormalDist()


def brentq(f: Callable[[float], float], a: float, b: float, *, xtol: float = 2e-12,
           rtol: float = 8.881784197001252e-16, maxiter: int = 100) -> float:
    """A root of ``f`` in [a, b], where f(a) and f(b) have opposite signs (Brent, 1973).

    Converged when the bracket is shorter than ``xtol + rtol·|x|``; ``ValueError`` when
    the ends do not bracket a sign change or ``f`` is not finite there, ``RuntimeError``
    after ``maxiter`` steps. Defaults are scipy's.
    """
    if not (xtol > 0 and rtol >= 4 * _EPS):  # scipy refuses rtol below 4·eps too
        raise ValueError(f"brentq: xtol must be > 0 and rtol ≥ 4·eps, got {xtol}, {rtol}")
    xpre, xcur = float(a), float(b)
    fpre, fcur = float(f(xpre)), float(f(xcur))
    if not (math.isfinite(fpre) and math.isfinite(fcur)):
        raise ValueError(f"brentq: f is not finite at the ends ({fpre}, {fcur})")
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    if math.copysign(1.0, fpre) == math.copysign(1.0, fcur):
        raise ValueError(f"brentq: f({a}) and f({b}) must have opposite signs")
    xblk = fblk = spre = scur = 0.0
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and math.copysign(1.0, fpre) != math.copysign(1.0, fcur):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):  # keep the best point in xcur
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # secant
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # inverse quadratic interpolation
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry  # a good short step
            else:
                spre = scur = sbis  # bisect
        else:
            spre = scur = sbis  # bisect
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = float(f(xcur))
    raise RuntimeError(f"brentq: no convergence in {maxiter} steps (last x = {xcur!r})")


def swing_narrows(xs: Sequence[float]) -> bool | None:
    """How fixed-point passes ``xs`` (``x_{k+1} = g(x_k)``) that ran out ended: None
    where their last two steps go one way (no swing: the last pass stands); True where
    they swing about the fixed point and narrow (a contraction, slow: the point is
    solved between them, :func:`fixed_point_between`); False where they swing as wide
    or wider (the fixed point repels them: no balance there to answer with)."""
    if len(xs) < 3:
        return None
    d1, d2 = xs[-2] - xs[-3], xs[-1] - xs[-2]
    if d1 == 0.0 or d2 == 0.0 or math.copysign(1.0, d1) == math.copysign(1.0, d2):
        return None
    return abs(d2) < abs(d1) * (1.0 - 1e-3)


def fixed_point_between(g: Callable[[float], float], a: float, b: float, *,
                        xtol: float, rtol: float = 8.881784197001252e-16) -> float:
    """The fixed point ``x = g(x)`` of a non-increasing ``g`` between two consecutive
    iterates ``a`` and ``b = g(a)``: for such a ``g`` they lie either side of it (``a``
    below it makes ``g(a)`` above it), where plain passes may swing between them for a
    long while. Solved by :func:`brentq` to ``xtol + rtol·|x|`` (``g(a)`` is not asked
    again, ``g(b)`` once); ``b`` where ``g(x) − x`` does not change sign between them
    (``g`` not monotone to rounding) or is not finite at ``b``."""
    if a == b:
        return b
    known = {a: b - a, b: g(b) - b}
    if not math.isfinite(known[b]) or known[b] == 0.0:
        return b
    if math.copysign(1.0, known[a]) == math.copysign(1.0, known[b]):
        return b

    def h(x: float) -> float:
        got = known.get(x)
        return g(x) - x if got is None else got

    return brentq(h, min(a, b), max(a, b), xtol=xtol, rtol=rtol)


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (modified Lentz; converges for
    x < (a + 1)/(a + b + 2))."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-16:
            return h
    raise RuntimeError(f"betainc: continued fraction did not converge (a={a}, b={b}, x={x})")


def _stirling_rest(x: float) -> float:
    """lgamma(x) − [(x − ½)·log x − x + ½·log 2π] for x ≥ 30 (series error < 1e-16)."""
    u = 1.0 / (x * x)
    return (1.0 / 12.0 - u * (1.0 / 360.0 - u * (1.0 / 1260.0 - u / 1680.0))) / x


def _lbeta(a: float, b: float) -> float:
    """log B(a, b); for a large parameter without the cancellation of three lgammas
    (lgamma(500,000) ≈ 6e6 would leave an absolute error of ~1e-9)."""
    small, big = min(a, b), max(a, b)
    if big < 30.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    # lgamma(big) − lgamma(big + small) by Stirling's series, differences taken exactly.
    return (math.lgamma(small) - small * math.log(big + small)
            - (big - 0.5) * math.log1p(small / big) + small
            + _stirling_rest(big) - _stirling_rest(big + small))


def _betainc(a: float, b: float, x: float, x1m: float, log_x: float,
             log_1mx: float) -> float:
    """I_x(a, b) given 1 − x, log x and log(1 − x), each as accurate as the caller has
    them (1 − x rounded from a tiny difference would cost digits)."""
    if x == 0.0 or x1m == 0.0:
        return 0.0 if x == 0.0 else 1.0
    log_front = a * log_x + b * log_1mx - _lbeta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, x1m) / b


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), a, b > 0, 0 ≤ x ≤ 1."""
    if not (a > 0 and b > 0 and 0.0 <= x <= 1.0):
        raise ValueError(f"betainc: needs a, b > 0 and 0 ≤ x ≤ 1, got {a}, {b}, {x}")
    if x == 0.0 or x == 1.0:
        return x
    return _betainc(a, b, x, 1.0 - x, math.log(x), math.log1p(-x))


def _t_pdf(t: float, df: float) -> float:
    log_c = -_lbeta(0.5, df / 2) - 0.5 * math.log(df)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(t * t / df))


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (p in (0, 1)).

    Newton steps on the t cdf; near the centre the cdf is taken as ½ + ½·I_y(½, df/2),
    y = t²/(df + t²), and in the tail as 1 − ½·I_x(df/2, ½), x = df/(df + t²), so that
    neither loses digits to a difference with ½ or 1.
    """
    if not (0.0 < p < 1.0) or not df > 0:
        raise ValueError(f"t_quantile: needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    centre = p < 0.75
    half_excess, tail = p - 0.5, 1.0 - p  # both exact in binary for p ≥ 0.5

    def residual(t: float) -> float:
        """cdf(t) − p (increasing in t; its derivative is the t density)."""
        # y = t²/(df + t²) and 1 − y = df/(df + t²), with their logs from t itself (a
        # large df multiplies the log's rounding).
        t2 = t * t
        y, y1m = t2 / (df + t2), df / (df + t2)
        log_y, log_1my = 2 * math.log(t) - math.log(df + t2), -math.log1p(t2 / df)
        if centre:
            return 0.5 * _betainc(0.5, df / 2, y, y1m, log_y, log_1my) - half_excess
        return tail - 0.5 * _betainc(df / 2, 0.5, y1m, y, log_1my, log_y)

    # The normal quantile corrected by the Cornish–Fisher expansion in 1/df (Abramowitz
    # & Stegun 26.7.5): exact to rounding beyond 100,000 degrees of freedom, where the
    # incomplete beta's continued fractions lose digits; below, the start of Newton
    # steps kept inside a shrinking bracket.
    z = _STD_NORMAL.inv_cdf(p)
    z2 = z * z
    t = z * (1 + (z2 + 1) / (4 * df) + (5 * z2**2 + 16 * z2 + 3) / (96 * df**2)
             + (3 * z2**3 + 19 * z2**2 + 17 * z2 - 15) / (384 * df**3)
             + (79 * z2**4 + 776 * z2**3 + 1482 * z2**2 - 1920 * z2 - 945)
             / (92160 * df**4))
    if df >= 1e5:
        return t
    lo, hi = 0.0, math.inf
    for _ in range(100):
        r = residual(t)
        if r == 0:
            return t
        if r < 0:
            lo = t
        else:
            hi = t
        step = r / _t_pdf(t, df)
        nxt = t - step
        if not lo < nxt < hi:  # Newton left the bracket: bisect (or double upward)
            nxt = (lo + hi) / 2 if math.isfinite(hi) else 2 * t + 1
        # Quadratic convergence: a step this small leaves an error far below it (the
        # residual's own rounding, ~1e-13 relative, would make smaller steps wander).
        if abs(nxt - t) <= 1e-13 * abs(nxt):
            return nxt
        t = nxt
    raise RuntimeError(f"t_quantile: no convergence (p={p}, df={df})")


def normal_logsf(z: float) -> float:
    """log P(Z > z) for the standard normal; finite however large ``z`` is."""
    if z < 0.0:  # P(Z > z) = 1 − P(Z ≤ z): log1p keeps the digits of a tiny log
        return math.log1p(-0.5 * math.erfc(-z / math.sqrt(2.0)))
    if z < 30.0:
        return math.log(0.5 * math.erfc(z / math.sqrt(2.0)))
    # Far tail: Mills' ratio, P(Z > z) = φ(z)/z · (1 − 1/z² + 3/z⁴ − 15/z⁶ + 105/z⁸ − …)
    # (next term 945/z¹⁰ < 2e-12 here).
    u = 1.0 / (z * z)
    series = 1.0 - u * (1.0 - u * (3.0 - u * (15.0 - u * 105.0)))
    return -0.5 * z * z - math.log(z) - 0.5 * math.log(2 * math.pi) + math.log(series)
