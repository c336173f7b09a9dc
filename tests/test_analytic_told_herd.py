"""Herded retries of a sliding log (issue 13). A refused call that honours the
retry-after is told the time the expiries make room for it, so a spell's first herd
comes back at the expiry that covers its overflow, not at the next one whatever room
that frees (:func:`capacity.analytic.window._told_kernel`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capacity.analytic import clumped
from capacity.analytic import window as _window
from capacity.analytic.model import cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

HERD = Path(__file__).parent / "data" / "herd-told-expiry-1s.yaml"


def _model(path: Path) -> _window.ClumpWindowModel:
    wl = Workload.from_profile(load_profile(path))
    return clumped.clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner


def test_told_kernel_is_the_renewal_sum() -> None:
    # The kernel's transform, summed over the expiries that cross a demand d, equals the
    # law built expiry by expiry: P(ν = j, V = v | d) with j − 1 gaps' launches.
    rng = np.random.default_rng(1)
    e = np.zeros(9)
    e[1:] = rng.random(8)
    e /= e.sum()
    L, off, rho = 256, e.size - 1, 0.4
    ah = (1.0 - rho) / (1.0 - rho * np.fft.rfft(e, L))
    kern, extra = _window._told_kernel(e, ah, L, off, 20, 1.0)
    d = 13
    want = np.zeros(L // 2 + 1, dtype=np.complex128)
    mean_wait = 0.0
    c = np.zeros(d)
    c[0] = 1.0                                   # P(S_{j−1} = x), x < d
    gap = np.ones_like(ah)
    for j in range(1, 60):
        v = np.zeros(L)
        for x in range(d):
            for f in range(d - x, e.size):       # the expiry crossing d from x
                v[off - (x + f - d)] += c[x] * e[f]
        want += gap * np.fft.rfft(v)
        mean_wait += (j - 1) * v.sum()
        c = np.convolve(c, e)[:d]
        gap = gap * ah
    assert np.allclose(kern[d], want, atol=1e-12)
    assert abs(extra[d] - mean_wait) < 1e-9


def test_told_expiry_retries_of_a_few_sessions_seldom_collide() -> None:
    m = _model(HERD)
    assert m.herds
    # The engine at 5 sessions: 5.7 % of the retries refused again; back at the next
    # expiry, whatever room it frees, the herd chain said 57 %.
    assert m.herd_chain(5)["pr"] < 0.1
    told, _window._TOLD = _window._TOLD, False
    try:
        m._chains.clear()
        assert m.herd_chain(5)["pr"] > 0.4
    finally:
        _window._TOLD = told
        m._chains.clear()


def test_told_expiry_herd_within_target() -> None:
    assert_profile_accurate(load_profile(HERD))
