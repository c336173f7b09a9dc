"""The analytic model's shortcuts give the answers of the long way round.

Speed itself is measured in benchmarks/ (analytic_accuracy.py's compute column), never
asserted here; these tests pin that each shortcut taken for it leaves the answer as it
was: the think-time sweep that skips constraints far from the binding one, the storms'
search by storm-grid cells, the pacer's scalar interpolation, the FFT buffers and the
compiled loops of capacity/analytic/_kernels.c (numpy's numbers bit for bit).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from numpy.typing import NDArray

from capacity.analytic import clumped, populations, window
from capacity.analytic import model as amodel
from capacity.analytic.pacing import _interp
from capacity.model.dist import Distribution
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile

ROOT = Path(__file__).resolve().parents[1]


def _full_sweep(wl: Workload, target: float) -> tuple[float, float, int, int]:
    """The think-time sweep with every constraint searched (the way before the skip)."""
    lo, hi = wl.profile.session.pause.range()
    out = []
    for v in (lo, hi):
        cyc = amodel.cycle_time(wl, Distribution.fixed(v, "duration"))
        res = amodel._ceilings(wl, cyc, target)
        out.append((min(r.mean_ceiling for r in res), amodel._joint(wl, cyc, res, target)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _near_quotas() -> Profile:
    """dilute-minor-quota with the big model's quota cut to 400 RPM: its four calls a
    turn meet it near where the small model's one call meets its 100 RPM (two quotas
    near one another at both ends of the think-time range: searched and joined)."""
    data = load_profile(ROOT / "tests/data/dilute-minor-quota.yaml").model_dump(
        mode="json", exclude_none=True)
    data["quotas"]["big-q"]["rpm"] = 400
    return profile_from_dict(data)


@pytest.mark.parametrize("path", ["profiles/tool-agent.yaml",
                                  "profiles/chat-assistant.yaml",
                                  "tests/data/dilute-minor-quota.yaml",
                                  "tests/data/retried-minor-otpm.yaml",
                                  "near-quotas"])
def test_sweep_skipping_far_constraints_matches_the_full_sweep(path: str) -> None:
    # tool-agent: four constraints, three far above the binding one (left out);
    # chat-assistant: its ITPM and OTPM near each other (both searched); the two-quota
    # profiles: the ample quota left out, or (near-quotas) both searched and joined.
    profile = _near_quotas() if path == "near-quotas" else load_profile(ROOT / path)
    wl = Workload.from_profile(profile)
    target = wl.profile.targets.max_429_fraction
    full = _full_sweep(wl, target)
    sens = amodel._sensitivity(wl, target)
    assert sens is not None
    assert (sens.mean_ceiling_low, sens.mean_ceiling_high, sens.burst_ceiling_low,
            sens.burst_ceiling_high) == full
    # The searches started from the ceilings at the mean cycle (analyze's): the same.
    cyc = amodel.cycle_time(wl)
    guessed = amodel._sensitivity(wl, target, cyc.cycle_s, amodel._ceilings(wl, cyc, target))
    assert guessed == sens


def test_clears_only_constraints_whose_ceiling_is_above() -> None:
    wl = Workload.from_profile(load_profile(ROOT / "profiles/tool-agent.yaml"))
    target = wl.profile.targets.max_429_fraction
    cyc = amodel.cycle_time(wl)
    for c in (c for c in wl.constraints if wl.units_per_turn(c) > 0):
        burst = amodel.constraint_ceiling(wl, c, cyc.cycle_s, target, None,
                                          cyc.min_cycle_s).burst_ceiling
        # Just below its ceiling it may not be cleared; far below it, it is (the sweep's
        # use); at or above its ceiling never.
        assert not amodel._clears(wl, c, cyc, target, burst)
        if burst > 100:
            assert amodel._clears(wl, c, cyc, target, burst // 4)


@pytest.mark.parametrize("boundary", [1, 2, 17, 45, 46, 199, 202, 203, 497, 999])
@pytest.mark.parametrize("start_off", [-0.12, -0.03, 0.0, 0.04, 0.11])
def test_storm_cell_walk_finds_the_boundary(boundary: int, start_off: float) -> None:
    hi = 5000
    seen: list[int] = []

    def ok(n: int) -> bool:
        seen.append(n)
        return n <= boundary

    start = max(1, round(boundary * (1.0 + start_off)))
    got = clumped._storm_boundary(ok, start, hi)
    if got is None:  # more than _WALK_CELLS cells away: the doubling search takes over
        assert abs(math.log(start / boundary)) > math.log(window._STORM_GRID) * 2
        return
    assert got == boundary
    cells = {window.storm_cell(n) for n in seen}
    assert len(cells) <= clumped._WALK_CELLS + 1


@pytest.mark.parametrize("boundary", [1, 2, 45, 202, 999, 13_412, 14_893])
@pytest.mark.parametrize("start_off", [-0.06, 0.0, 0.04])
def test_storm_cell_walk_with_shares_is_the_bisection(boundary: int, start_off: float
                                                      ) -> None:
    # Given the shares, the walk's last cell is searched along their logs (one storm size
    # there: the share rises smoothly), to the bisection's answer in fewer looks; the
    # share steps where a new cell's storm size starts.
    hi, level = 20_000, 0.01

    def share(n: int) -> float:
        return min(1.0, level * math.exp(0.004 * (n - boundary - 0.5)
                                         + 0.2 * (window.storm_cell(n)
                                                  - window.storm_cell(boundary))))

    start = max(1, round(boundary * (1.0 + start_off)))
    asked: list[int] = []
    bisected: list[int] = []

    def asking(log: list[int]) -> Callable[[int], float]:
        def logged(n: int) -> float:
            log.append(n)
            return share(n)
        return logged

    seen, told = asking(bisected), asking(asked)
    truth = clumped._storm_boundary(lambda n: seen(n) <= level, start, hi)
    got = clumped._storm_boundary(lambda n: told(n) <= level, start, hi, told, level)
    assert got == truth == boundary
    if boundary > 1_000:
        assert len(set(asked)) < len(set(bisected))


def test_storm_cell_walk_ends() -> None:
    assert clumped._storm_boundary(lambda n: True, 200, 205) == 205   # every N passes
    assert clumped._storm_boundary(lambda n: False, 3, 100) == 0      # none does
    assert clumped._storm_boundary(lambda n: n <= 40, 400, 1000) is None  # too far


def test_storm_cell_span_is_the_cell() -> None:
    for n in [*range(1, 80), 195, 202, 474, 497, 999, 12_345]:
        a, b = window.storm_cell_span(n)
        k = window.storm_cell(n)
        assert a <= n <= b
        assert window.storm_cell(a) == window.storm_cell(b) == k
        assert a == 1 or window.storm_cell(a - 1) != k
        assert window.storm_cell(b + 1) != k


def test_scalar_interp_is_numpys() -> None:
    rng = np.random.default_rng(7)
    grid = np.concatenate([[0.0], np.geomspace(0.01, 1e6, 500)])
    for xp, fp in ((grid, 41.7 + grid), (83.2 + grid, grid),
                   (np.sort(rng.random(300)) * 50.0, np.cumsum(rng.random(300)))):
        xs = np.concatenate([rng.random(4000) * xp[-1] * 1.2 - 1.0, xp[:40], xp[-2:]])
        xl, fl = xp.tolist(), fp.tolist()
        for x in xs:
            assert _interp(float(x), xl, fl) == float(np.interp(x, xp, fp))


@pytest.mark.parametrize("n", [7, 64, 341, 1024])
def test_reused_fft_buffers_are_numpys(n: int) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.random(n), rng.random(n)
    rfft, irfft = window._real_fft(n)
    fa = rfft(a).copy()
    assert np.array_equal(fa, np.fft.rfft(a, n))
    prod = fa * np.fft.rfft(b, n)
    assert np.array_equal(irfft(prod), np.fft.irfft(prod, n))


# -- the storm chain's shortcuts (issue 13's speed pass on the storms) -----------------

def _arrivals_long(mdl: window.ClumpWindowModel, first: np.ndarray, gaps: np.ndarray,
                   sizes: np.ndarray, pre: np.ndarray, per_turn: float, dt: float,
                   steps: int, q: int, overflow: float = 0.0) -> np.ndarray:
    """window._storm_arrivals' aborted-turn flow as it was: one loop for every retry
    policy, each step writing the renewal sum's array twice."""
    kmax = pre.size - 1
    w = mdl.window_s
    t = np.arange(steps) * dt
    cell = np.minimum((gaps / dt).astype(np.int64), steps) * (kmax + 1) + sizes
    cnt = np.bincount(cell, minlength=(steps + 1) * (kmax + 1)).reshape(steps + 1, kmax + 1)
    nxt = np.cumsum(cnt[::-1], axis=0)[::-1][:steps] * per_turn
    first_law = np.bincount(first, minlength=kmax + 1).astype(np.float64) / first.size
    first_law[0] = 0.0
    turns = per_turn * first.size
    pause = mdl.storm_pause
    surv = np.clip(1.0 - np.searchsorted(np.sort(pause), t, side="right") / pause.size,
                   0.0, 1.0)
    fz = np.bincount(np.clip((pause / dt).astype(np.int64), 1, steps),
                     minlength=steps + 1)[:steps].astype(np.float64) / pause.size / dt
    ends = np.bincount(np.minimum((mdl.storm_ends / dt).astype(np.int64), steps),
                       minlength=steps + 1)[::-1].cumsum()[::-1][:steps] * per_turn
    starts = turns * surv
    nxt_tot = nxt.sum(axis=1)
    launching = float(first_law.sum())
    into = np.concatenate([ends * dt, [0.0]])
    r = mdl.retry
    lat = r.rejection_latency_s or 0.0
    ks = np.arange(kmax + 1, dtype=np.float64)
    first_units = float(np.dot(ks, first_law))
    nxt_units = nxt @ ks
    per_w = max(round(w / dt), 1)
    m = r.max_retries
    honour = r.honour_retry_after
    back = ((r.backoff_s[-1] if r.backoff_s else 0.0) + lat) / dt
    logged = [0.0] * (steps + 2)
    into_l = [*into.tolist(), 0.0]
    turned_l = ((starts * first_units + nxt_units) * dt).tolist()
    aborted_l = ((starts * launching + nxt_tot) * dt).tolist()
    earlier = 0.0
    for i in range(steps):
        if i:
            st = float(np.add.reduce(np.multiply(into[i - 1::-1], fz[1: i + 1])))
            starts[i] += st
            turned_l[i] += st * first_units * dt
            aborted_l[i] += st * launching * dt
        if honour:
            turned = turned_l[i] + (overflow if i == 0 else 0.0)
            logged[i] += turned
            content = q * max(0.0, 1.0 - i / per_w) + earlier + logged[i]
            trip = (lat + w * max(content - q + 1.0, 0.0) / max(content, 1.0)) / dt
            for k in range(1, m + 1):
                pos = i + k * trip
                j = int(pos)
                if j <= steps:
                    logged[j] += turned * (j + 1 - pos)
                    logged[j + 1] += turned * (pos - j)
            earlier += logged[i] - (logged[i - per_w + 1] if i >= per_w - 1 else 0.0)
            back = m * trip + lat / dt
        pos = i + back
        j = int(pos)
        if j < steps:
            into_l[j] += aborted_l[i] * (j + 1 - pos)
            into_l[j + 1] += aborted_l[i] * (pos - j)
            into[j] = into_l[j]
            into[j + 1] = into_l[j + 1]
    out: np.ndarray = starts[:, None] * first_law[None, :] + nxt
    return out


def _storm_models() -> list[tuple[window.ClumpWindowModel, list[int]]]:
    """Counted sliding logs whose aborted turns feed storms, and N to try: no retries
    (at the think time's mean and, as the think-time sweep builds it, at a short fixed
    pause), honoured retry-afters, and retries that ignore them (a fixed backoff)."""
    out = []
    for name, ns, low in (("counted-sliding-abort-storms.yaml", [12, 17, 19, 24], [10, 12, 14]),
                          ("batch-sliding.yaml", [20, 25, 30], []),
                          ("counted-sliding-sdk-backoff.yaml", [120, 141, 160], [])):
        wl = Workload.from_profile(load_profile(ROOT / "tests/data" / name))
        c = next(x for x in wl.constraints if x.dim == "rpm")
        cycles = [(amodel.cycle_time(wl), ns)]
        if low:   # (its shorter cycle: storms at fewer sessions)
            pause = Distribution.fixed(wl.profile.session.pause.range()[0], "duration")
            cycles.append((amodel.cycle_time(wl, pause), low))
        for cyc, at in cycles:
            inner = clumped.clumped_window_model(wl, c, cyc.cycle_s).inner
            assert inner.storm_first.size and inner.retry.abort_turn
            out.append((inner, at))
    return out


def test_storm_arrivals_are_the_long_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without honoured retries a session's pause starts a fixed time after its abort:
    # the loop drops the retries' bookkeeping (dead when m = 0) and writes each step's
    # renewal term once, when no later step can add to it. Same numbers, bit for bit,
    # in every chain the storm sizes run (the refined steps included).
    short = window._storm_arrivals
    calls = []

    def both(mdl: window.ClumpWindowModel, *args: object, **kw: object) -> np.ndarray:
        got = short(mdl, *args, **kw)  # type: ignore[arg-type]
        assert np.array_equal(got, _arrivals_long(mdl, *args))  # type: ignore[arg-type]
        calls.append(mdl.retry.max_retries)
        return got

    monkeypatch.setattr(window, "_storm_arrivals", both)
    for inner, ns in _storm_models():
        for n in ns:
            window._storm_size(inner, n)
    assert 0 in calls and max(calls) > 0


def test_storm_floors_keep_the_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    # A counted loss log's share is min(1, h·ratio): far above its ceiling a floor of the
    # storm size decides it (or none when h is 0), so the chain stops there. The shares at
    # every N, and the sizes run whole afterwards, are the full chains' bit for bit.
    ns = [10, 14, 18, 24, 40, 80, 200]
    floored = _abort_storm_model()
    got = [floored.attempt_share(n) for n in ns]
    floors = [k for k, v in floored._storm_sizes.items() if isinstance(v, window._StormFloor)]
    assert floors                                    # (some chain stopped or never ran)
    whole = window.ClumpWindowModel._counted_spells
    monkeypatch.setattr(window.ClumpWindowModel, "_counted_spells",
                        lambda self, n, h=None: whole(self, n))
    full = _abort_storm_model()
    assert got == [full.attempt_share(n) for n in ns]
    assert [floored._storm_at(k) for k in floors] == [full._storm_sizes[k] for k in floors]
    assert not any(isinstance(v, window._StormFloor) for v in floored._storm_sizes.values())


def _abort_storm_model() -> window.ClumpWindowModel:
    """counted-sliding-abort-storms.yaml's RPM log, a fresh model (its own storm sizes)."""
    wl = Workload.from_profile(load_profile(ROOT / "tests/data/counted-sliding-abort-storms.yaml"))
    c = next(x for x in wl.constraints if x.dim == "rpm")
    inner = clumped.clumped_window_model(wl, c, amodel.cycle_time(wl).cycle_s).inner
    assert inner._counted_loss and not inner._storm_sizes
    return inner


def _storms_long(mdl: window.ClumpWindowModel, n: float, healthy: dict[str, float],
                 gate: bool = True) -> dict[str, float]:
    """ClumpWindowModel._storms with every storm's size computed (its chain run)."""
    m = mdl.retry.max_retries
    n_u = mdl.storm_threshold()
    if gate and n <= n_u:
        return healthy
    g = mdl.pmf(max(n - 1, 0))
    palm = np.convolve(g, mdl.own_pmf)
    q = math.floor(mdl.q_lat + 1e-9)
    tail = np.concatenate([np.cumsum(palm[::-1])[::-1], [0.0]])
    b = np.arange(mdl.call_pmf.size)
    over = tail[np.clip(q + 1 - b, 0, tail.size - 1)] - tail[min(q + 1, tail.size - 1)]
    at_edge = float(np.dot(mdl.call_pmf, over)) if q > 0 else 0.0
    lam_w = n * mdl.calls_per_window
    lam = lam_w / mdl.window_s
    ignition = max(0.0, 1.0 - lam_w / (q + 1)) * lam * at_edge if q > 0 else 0.0
    size = mdl.storm_size(n)  # type: ignore[arg-type]
    p = healthy["call"]
    rejected = ignition * size
    attempts = lam + ignition * size * m / (1 + m)
    share = min(1.0, rejected / attempts) if attempts > 0 else 0.0
    out = dict(healthy)
    out["attempt"] = max(healthy["attempt"], share)
    out["call"] = min(1.0, max(p, ignition * size / (1 + m) / lam))
    out["failed"] = out["call"]
    return out


def test_storms_skipped_where_they_cannot_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # No chain where no storm is ignited (the mean load fills the log) or every call is
    # turned away already: the shares are the healthy ones either way. Checked at every
    # share the ceiling searches ask for near the ceilings, and at the two skips.
    short = window.ClumpWindowModel._storms
    ran = []

    def both(self: window.ClumpWindowModel, n: float, healthy: dict[str, float],
             gate: bool = True) -> dict[str, float]:
        cells = len(self._storm_sizes)
        got = short(self, n, healthy, gate)
        ran.append(len(self._storm_sizes) > cells)
        assert got == _storms_long(self, n, healthy, gate)
        return got

    monkeypatch.setattr(window.ClumpWindowModel, "_storms", both)
    for inner, ns in _storm_models():
        for n in ns:
            inner.attempt_share(n)
        full = {"attempt": 1.0, "call": 1.0, "failed": 1.0, "exceed": 1.0, "retry_share": 0.0}
        healthy = {**full, "attempt": 0.5, "call": 0.5, "failed": 0.5}
        gate = inner.retry.max_retries > 0
        for h in (full, healthy):
            inner._storms(ns[0], h, gate)   # saturated: skipped; half: the chain runs
        # Just past the mean load of one allowance a window: no storm is ignited.
        q = math.floor(inner.q_lat + 1e-9)
        inner._storms(math.ceil((q + 1) / inner.calls_per_window), healthy, gate)
    assert any(ran) and not all(ran)


@pytest.mark.parametrize("target", [0.002, 0.01, 0.05])
def test_abort_storm_search_is_the_bisection(target: float) -> None:
    # Storms without retries: the search guesses from the storm-free shares and walks
    # the storm grid's cells from there (fewer chains) instead of bisecting [0, hi]; the
    # same answer and the same figures at it, at the think time's mean and at a short
    # fixed pause (the think-time sweep's), whatever the target.
    wl = Workload.from_profile(load_profile(ROOT / "tests/data/counted-sliding-abort-storms.yaml"))
    c = next(x for x in wl.constraints if x.dim == "rpm")
    pause = Distribution.fixed(wl.profile.session.pause.range()[0], "duration")
    for cyc in (amodel.cycle_time(wl), amodel.cycle_time(wl, pause)):
        short = clumped.clumped_window_model(wl, c, cyc.cycle_s)
        long = clumped.clumped_window_model(wl, c, cyc.cycle_s)
        hi = 2 * math.floor(amodel._mean_ceiling(wl, c, cyc.cycle_s)) + 1
        got = short.largest_meeting(target, hi)
        assert got == amodel._largest_meeting(long.stats, target, hi)
        assert got[0] > 0


def _asking(model: Any, asked: list[int]) -> Callable[[int], amodel.WindowStats]:
    """``model.stats``, each N it is asked appended to ``asked``."""
    inner = model.stats

    def stats(n: int) -> amodel.WindowStats:
        asked.append(n)
        got: amodel.WindowStats = inner(n)
        return got
    return stats


def _capped(name: str, enforcement: str
            ) -> list[tuple[Workload, Any, amodel.CycleTime, int]]:
    """(workload, constraint, cycle, the search's cap) of each constraint of
    tests/data/``name``.yaml enforced by ``enforcement`` that its turns charge."""
    wl = Workload.from_profile(load_profile(ROOT / f"tests/data/{name}.yaml"))
    cyc = amodel.cycle_time(wl)
    return [(wl, c, cyc, amodel._cap(amodel._mean_ceiling(wl, c, cyc.cycle_s)))
            for c in wl.constraints
            if c.enforcement == enforcement and wl.units_per_turn(c) > 0]


@pytest.mark.parametrize("name", ["bucket-chain-retries", "deep-bucket-herd",
                                  "bucket-told-counted", "bucket-fractional-depth"])
def test_bucket_search_from_a_guess_is_the_bisection(name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A token bucket's share at N does not depend on what was asked before (level
    # chains and Lundberg roots solved per rate, memoised by value): its search starts
    # from a guess — 85% of the cap, a poor one (a third of it), the think-time sweep's
    # (near the answer) — and finds the bisection's answer and the figures at it, bit
    # for bit; from a guess near the answer in fewer chain solves.
    asked: list[int] = []
    bisected: list[int] = []
    for wl, c, cyc, hi in _capped(name, "token_bucket"):
        for target in (0.002, 0.01, 0.05):
            plain = amodel.bucket_model(wl, c, cyc.cycle_s)
            truth = amodel._largest_meeting(_asking(plain, bisected), target, hi)
            for near in (None, max(1, hi // 3), max(1, round(1.05 * truth[0]))):
                guess = amodel.bucket_model(wl, c, cyc.cycle_s)
                mine: list[int] = []
                monkeypatch.setattr(guess, "stats", _asking(guess, mine))
                assert guess.largest_meeting(target, hi, near) == truth
            asked += mine  # the last: from near the answer
    assert 0 < len(asked) < len(bisected)


@pytest.mark.parametrize("name", ["fuzz-sliding-retry-cycle", "sliding-held-backoff"])
def test_retried_sliding_search_from_a_guess_is_the_bisection(name: str) -> None:
    # A retried sliding log without herds iterates its retry fixed point at n from the
    # first attempts' share at n (no warm start): its search from a guess finds the
    # bisection's answer and the figures at it, bit for bit.
    for wl, c, cyc, hi in _capped(name, "sliding_window"):
        for target in (0.002, 0.01, 0.05):
            plain = clumped.clumped_window_model(wl, c, cyc.cycle_s)
            truth = amodel._largest_meeting(plain.stats, target, hi)
            for near in (None, max(1, hi // 3)):
                guess = clumped.clumped_window_model(wl, c, cyc.cycle_s)
                assert guess.inner.retry.retries and not guess.inner.herds
                assert guess.largest_meeting(target, hi, near) == truth


@pytest.mark.parametrize("name", ["abort-shortens-cycle-populations",
                                  "counted-sliding-continue-populations",
                                  "population-split-never-fits"])
def test_population_search_from_a_guess_is_the_bisection(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each N blends a fresh model of the population mix: unless a part's carry starts
    # from the last N solved (fixed windows with retries: population-split-never-fits,
    # which keeps the bisection's path), its search starts from a guess and finds the
    # bisection's answer and figures, bit for bit.
    pv = populations.view(load_profile(ROOT / f"tests/data/{name}.yaml"))
    for c in (x for x in pv.constraints() if pv.touches(x)):
        hi = pv.whole_cap(c, math.floor(pv.mean_ceiling(c) + 1e-9))
        for target in (0.002, 0.01, 0.05):
            guess = populations.PopulationModel(pv, c)
            plain = populations.PopulationModel(pv, c)
            asked: list[int] = []
            monkeypatch.setattr(guess, "stats", _asking(guess, asked))
            got = guess.largest_meeting(target, hi)
            assert got == amodel._largest_meeting(plain.stats, target, hi)
            warm = any(getattr(m, "warm_started", False) for _, m in guess._parts)
            assert warm == (name == "population-split-never-fits")


def _growing_share(target: float, boundary: float, rate: float, zero: float, one: float
                   ) -> Callable[[int], float]:
    """A share that grows exponentially through ``target`` at ``boundary`` (0 below
    ``zero``, 1 above ``one``)."""
    def share(n: int) -> float:
        if n < zero:
            return 0.0
        if n > one:
            return 1.0
        return float(min(1.0, target * math.exp(min(rate * (n - boundary), 700.0))))
    return share


@pytest.mark.parametrize("seed", range(6))
def test_search_from_a_guess_is_the_bisection(seed: int) -> None:
    # boundary_near starts from a guess and follows the shares' logs: whatever the
    # guess, the shape of the share (steep, flat, zero below some N, 1 above some N),
    # the target and the range, the answer and the figures at it are the bisection's,
    # from a known bracket too; and it asks fewer N than the bisection from a near guess.
    rng = np.random.default_rng(seed)
    for _ in range(300):
        hi = int(rng.integers(1, 5000))
        boundary = float(rng.uniform(-0.2, 1.2)) * hi
        target = float(10.0 ** rng.uniform(-3, -0.5))
        share = _growing_share(target, boundary, float(10.0 ** rng.uniform(-3, 0.5)),
                               boundary - float(rng.uniform(0, 2)) * hi,
                               boundary + float(rng.uniform(0, 2)) * hi)

        def stats(n: int, share: Callable[[int], float] = share) -> amodel.WindowStats:
            return amodel.WindowStats(n, 0.0, 0.0, share(n), "test")

        near = max(1, int(boundary * rng.uniform(0.5, 1.5)))
        truth = amodel._largest_meeting(stats, target, hi)
        assert amodel._largest_meeting_near(stats, target, hi, near) == truth
        lo = int(rng.integers(0, truth[0] + 1))
        known = {lo: share(lo)} if lo > 0 else {}
        assert amodel.boundary_near(share, target, lo, hi + 1, None, known) == truth[0]
    asked: list[int] = []

    def counted(n: int) -> amodel.WindowStats:
        asked.append(n)
        return amodel.WindowStats(n, 0.0, 0.0, 0.01 * math.exp(0.05 * (n - 700.5)), "test")

    assert amodel._largest_meeting_near(counted, 0.01, 1000, 680)[0] == 700
    assert len(asked) <= 6  # the bisection: 10


def test_round_off_below_the_ceiling_is_not_a_slope_to_follow() -> None:
    # chat-assistant's RPM bucket: round-off shares in no order from the guess up to a
    # step at the ceiling (here drawn from 1e-16 to 4e-12). Lines through their logs
    # crept a session or two a look (38 looks); read as no slope, the search steps and
    # then bisects — the same answer.
    rng = np.random.default_rng(3)
    noise = 10.0 ** rng.uniform(-16, -11.4, 1100)
    asked: list[int] = []

    def stats(n: int) -> amodel.WindowStats:
        asked.append(n)
        s = float(noise[n]) if n < 1056 else 3.78e-3 * 3.6 ** (n - 1056)
        return amodel.WindowStats(n, 0.0, 0.0, s, "test")

    truth = amodel._largest_meeting(stats, 0.01, 1057)
    asked.clear()
    assert amodel._largest_meeting_near(stats, 0.01, 1057, 898) == truth
    assert truth[0] == 1056
    assert len(set(asked)) <= 11, asked   # the bisection from [0, 1057]: 11


def test_a_step_back_past_a_known_end_asks_the_middle() -> None:
    # Round-off up to 1,100 sessions, then steep: the steps from the guess (1,000, 1,050,
    # 1,150) leave one share with a log, and the step back from 1,150 falls below 1,050,
    # an end already asked: the search asks the middle, not 1,051 next to it.
    asked: list[int] = []

    def share(n: int) -> float:
        asked.append(n)
        return 1e-13 if n <= 1100 else min(0.38, 0.01 * 1.5 ** (n - 1120))

    got = amodel.boundary_near(share, 0.01, 0, 2001, 1000)
    assert got == 1120
    assert asked[:3] == [1000, 1050, 1150] and 1051 not in asked and asked[3] == 1100


def test_a_share_far_above_any_target_asks_one_session_next() -> None:
    # Calls past the allowance: ~83 % refused whatever N (hunt-1052). The guess and N = 1
    # answer it (the walk down from the guess asked 16, 15, 11, 1).
    asked: list[int] = []

    def flat(n: int) -> amodel.WindowStats:
        asked.append(n)
        return amodel.WindowStats(n, 0.0, 0.0, 0.829 - 1e-5 * n, "test")

    assert amodel._largest_meeting_near(flat, 0.01, 19, 16) == (0, None)
    assert asked == [16, 1]
    # Far above at the guess, met at 1: the two bracket the answer, the bisection's.
    for boundary in (1, 2, 7, 15):
        def steep(n: int, b: int = boundary) -> amodel.WindowStats:
            return amodel.WindowStats(n, 0.0, 0.0, min(1.0, 0.01 * 3.0 ** (n - b)), "t")

        assert (amodel._largest_meeting_near(steep, 0.01, 19, 16)
                == amodel._largest_meeting(steep, 0.01, 19))


def _poisson_law(load: float, q: float, L: int) -> np.ndarray:
    """A window count of mean ``load·q`` on ``L`` lattice points (round-off flushed)."""
    g = np.fft.irfft(np.exp(load * q * (np.exp(-2j * np.pi * np.fft.rfftfreq(L)) - 1)), L)
    return np.where(g > 1e-250, g, 0.0)


@pytest.mark.parametrize(("q", "retries", "load", "L"), [
    (83.0, 2, 0.6, 512), (83.0, 2, 0.97, 512), (40.4, 1, 0.9, 256), (256.0, 5, 0.99, 1024),
    (250.0, 2, 1.3, 1024), (250.0, 2, 2.0, 1024), (120.0, 2, 1.05, 256),
    (140.0, 2, 1.2, 256), (12.0, 0, 0.9, 128), (3.0, 3, 0.8, 20000), (61.3, 2, 0.95, 301)])
def test_compiled_carry_is_the_numpy_loop(q: float, retries: int, load: float,
                                          L: int) -> None:
    # Settling, running out of windows, outgrowing the lattice (load 2), a q past half
    # the lattice (the wrap check on a whole tail), no retries, a lattice past numpy's
    # 8,192-element blocks, an odd lattice (rfft_n_odd); from empty and from a smaller
    # load's carry: the compiled iteration (_kernels.c, numpy's FFT and product by their
    # inner loops) gives the numpy loop's numbers bit for bit.
    assert window._kernels is not None  # built with the package (setup.py)
    assert window._direct_conv(np.zeros(L // 2 + 1, dtype=complex), L) is not None
    init = window._carry_law(_poisson_law(0.9 * load, q, L), q, retries)[0]
    for start in (None, init):
        g = _poisson_law(load, q, L)
        got = window._carry_law(g, q, retries, start=start)
        rfft, irfft = window._real_fft(L)
        y = np.zeros(L)
        if start is None:
            y[0] = 1.0
        else:
            y[: start.size] = start
        want = window._carry_loop(y, q, retries, 96, 1e-5, rfft, irfft, rfft(g).copy())
        assert got[0].tobytes() == want[0].tobytes()
        assert got[1:] == want[1:]


@pytest.mark.parametrize("L", [16, 17, 64, 255, 512, 1000, 4096])
def test_direct_convolution_is_the_callbacks(L: int) -> None:
    # carry_loop's convolution by numpy's own inner loops (the rfft/irfft gufuncs and the
    # complex product, called from C) against the Python callback that calls the same
    # ufuncs: the same bytes, window by window (one window at a time from random laws).
    kern = window._kernels
    assert kern is not None
    rng = np.random.default_rng(L)
    for _ in range(20):
        q = float(rng.uniform(1.0, 0.45 * L))
        g = rng.random(L) * (rng.random(L) < 0.5)
        g[int(rng.integers(1, L)):] = 0.0
        g[0] += 0.01
        g /= g.sum()
        rfft, irfft = window._real_fft(L)
        gh = rfft(g).copy()
        conv = window._conv_callback(rfft, irfft, gh)
        y = rng.random(L) * (rng.random(L) < 0.3)
        y[0] += 0.01
        y /= y.sum()
        direct = window._direct_conv(gh, L)
        assert direct is not None
        for windows in (1, 3):
            got = kern.carry_loop(y, q, 2, windows, 0.0, direct)
            want = kern.carry_loop(y, q, 2, windows, 0.0, conv)
            assert got[0].tobytes() == want[0].tobytes()
            assert got[1:] == want[1:]
    with pytest.raises(ValueError):  # a transform of the wrong length
        kern.carry_loop(np.ones(L) / L, 1.0, 2, 1, 0.0, (np.zeros(L // 2 + 2, dtype=complex),
                                                        *direct[1:]))
    with pytest.raises(TypeError):  # not ufuncs
        kern.carry_loop(np.ones(L) / L, 1.0, 2, 1, 0.0, (direct[0], len, len, len))


@pytest.mark.parametrize("n", [*range(0, 140), 255, 256, 257, 1000, 8191, 8192, 8193, 20000])
def test_compiled_sums_are_numpys(n: int) -> None:
    # The kernel's sums are np.add.reduce's (pairwise, from 0): on values of every scale.
    assert window._kernels is not None
    rng = np.random.default_rng(n)
    a = rng.random(n) * 10.0 ** rng.integers(-8, 8, n)
    a[rng.random(n) < 0.1] *= -1.0
    assert window._kernels.pairwise_sum(a) == float(np.add.reduce(a))


def _plain_fft(n: int) -> tuple[object, object]:
    """np.fft's transforms of length ``n`` (the long way round _real_fft's buffers)."""
    return (lambda a: np.fft.rfft(a, n)), (lambda a: np.fft.irfft(a, n))


@pytest.mark.parametrize("m", [0, 1, 3])
def test_herd_spell_with_reused_buffers_is_np_fft(m: int, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    # The sliding log's herd spell (window._spell_uncached) with its loop's transforms in
    # _real_fft's buffers: the same four figures as with np.fft's own, bit for bit.
    rng = np.random.default_rng(m)
    cases = [(np.array([0.0, 0.2, 0.5, 0.3]), 0.8), (rng.random(10) / 5.0, 2.5),
             (np.eye(1, 7, 6).ravel(), 0.3)]
    fast = [window._spell_uncached(e / e.sum(), k, m) for e, k in cases]
    monkeypatch.setattr(window, "_real_fft", _plain_fft)
    slow = [window._spell_uncached(e / e.sum(), k, m) for e, k in cases]
    assert fast == slow


def test_lindley_with_reused_buffers_is_np_fft(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fleet's carried load (window._lindley, thinned or not) the same way.
    def thin(y: np.ndarray) -> np.ndarray:
        return np.asarray(y * 0.7 + np.roll(y, 1) * 0.1)

    cases = [(_poisson_law(load, q, L), q, th) for load, q, L in
             ((0.6, 83.0, 512), (0.98, 40.0, 256), (1.4, 20.0, 128)) for th in (None, thin)]
    fast = [window._lindley(g, q, thin=th) for g, q, th in cases]
    monkeypatch.setattr(window, "_real_fft", _plain_fft)
    slow = [window._lindley(g, q, thin=th) for g, q, th in cases]
    for (a, ma), (b, mb) in zip(fast, slow, strict=True):
        assert a.tobytes() == b.tobytes() and ma == mb


@pytest.mark.parametrize("think", [True, False])
def test_compiled_rate_mva_is_the_python_recursion(think: bool) -> None:
    # The rate pacer's MVA over N = 1..3000 (past the knee: the pacer saturated; the
    # cadence branch's knee wait held too) in C: Python's numbers, every N, bit for bit
    # (tool-agent behind a pacer: its cycle increases strictly in the wait, where the
    # compiled loop is used).
    from capacity.analytic import pacing

    assert pacing._kernels is not None
    prof = load_profile(ROOT / "tests/data/paced-think-time.yaml")
    turns = pacing.PacedTurns(Workload.from_profile(prof))
    v, s, grid, cyc_at = pacing._mva_setup(turns)
    assert bool(np.all(np.diff(cyc_at) > 0))
    for rate in (40 / 60.0, 140 / 60.0, 3000 / 60.0):
        got = pacing._kernels.rate_mva_loop(3000, v, s, 1.0 / rate, pacing.RATE_RESIDUAL,
                                            think, grid, cyc_at)
        want = pacing._rate_mva_loop(think, 3000, v, s, 1.0 / rate, pacing.RATE_RESIDUAL,
                                     grid, cyc_at, True)
        assert got[0].tobytes() == want[0].tobytes()
        assert got[1].tobytes() == want[1].tobytes()


def test_compiled_hold_law_is_numpys() -> None:
    # The pacer's hold law (pacing.hold_law) from the compiled row sorts and sums: the
    # numpy way's numbers, bit for bit — on a cap of 5's walks (tool-agent's loops, calls
    # not made: inf) and on synthetic walks with ties, fan-outs (equal arrivals) and
    # calls leaving as others arrive.
    from capacity.analytic import pacing

    assert pacing._kernels is not None
    prof = load_profile(ROOT / "tests/data/paced-concurrency.yaml")
    q = pacing.PacedQueue(Workload.from_profile(prof))
    walks = [q.turns.base, q.small.base, q.walked(3)[0], q.walked(9)[0]]
    rng = np.random.default_rng(5)
    for n, m in ((200, 1), (300, 7), (64, 40)):
        arrive = np.round(rng.random((n, m)) * 20.0, 1)
        arrive[:, 1:3] = arrive[:, :1]                       # a fan-out's copies
        leave = arrive + np.round(rng.exponential(3.0, (n, m)), 1)
        leave[:, -1] = arrive[:, 0]                          # leaves as another arrives
        off = rng.random((n, m)) < 0.2
        arrive[off] = leave[off] = np.inf
        walks.append(pacing._Walked(np.zeros(n), arrive, leave, np.zeros((n, m))))
    for w in walks:
        got = pacing._hold_sums(w.arrive, w.leave)
        want = pacing._hold_sums_numpy(w.arrive, w.leave)
        assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize(("size", "k"), [(5000, 3.0), (12, 300.0), (12, 300.4)])
def test_fleet_conv_power_by_fft_products_equals_the_copies_one_by_one(
        size: int, k: float) -> None:
    """A long law or many copies (a spill of 10^5 calls a window took minutes copy by
    copy) go by binary FFT powers: the same law to round-off."""
    from capacity.analytic import fleet

    rng = np.random.default_rng(7)
    p = rng.random(size) * np.exp(-np.arange(size) / (size / 4))
    p /= p.sum()
    got = fleet._conv_power(p, k)
    whole = int(k)
    want = np.ones(1)
    for _ in range(whole):
        want = fleet._trim(np.convolve(want, p))
    if k - whole > 1e-9:
        want = fleet._trim(np.convolve(want, fleet._thin(p, k - whole)))
    # The trim cuts the tail where the round-off dust differs: the same law up to it.
    n = min(got.size, want.size)
    assert np.abs(got[:n] - want[:n]).max() < 1e-12
    assert got[n:].sum() < 1e-12 and want[n:].sum() < 1e-12
    mean = float(np.dot(np.arange(size), p))
    assert float(np.dot(np.arange(got.size), got)) == pytest.approx(k * mean, rel=1e-9)

@pytest.mark.parametrize(("points", "coefs"), [(65537, 120), (1025, 4096), (3, 1), (300, 57)])
def test_compiled_horner_is_numpys_loop(points: int, coefs: int) -> None:
    """A fleet's short count pgf: the compiled Horner sum is numpy's in-place loop bit for
    bit (where numpy's complex product is the fused one the kernel computes; this
    machine's numpy is probed), and _pgf uses it."""
    from capacity.analytic import _kernels, fleet

    rng = np.random.default_rng(points)
    f = rng.random(900) * np.exp(-np.arange(900) / 90.0)
    z = np.fft.rfft(f / f.sum(), 2 * (points - 1)) if points > 3 else np.array(
        [0.5 + 0.25j, -0.3 + 0.9j, 1.0 + 0.0j])
    counts = rng.random(coefs)
    counts /= counts.sum()
    want = fleet._horner_numpy(counts, z)
    re, im = _kernels.pgf_horner(counts, np.ascontiguousarray(z.real),
                                 np.ascontiguousarray(z.imag))
    if fleet._horner_kernel() is None:
        pytest.skip("numpy's complex product here is not the fused one")
    assert re.tobytes() == want.real.tobytes() and im.tobytes() == want.imag.tobytes()
    assert fleet._pgf(counts, z).tobytes() == want.tobytes()


@pytest.mark.parametrize("share", [0.02, 0.3, 0.9])
def test_room_spill_rebins_the_sums_not_every_pair(share: float,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A sliding log's spill into a shorter window, (Y − (a − S)⁺)⁺: the law of every
    (S, Y) pair rebinned (an outer product: 16,384 × 8,192 points for hunt seed 145, 5 s a
    call) is the law of the sums S + Y shifted by the allowance, one rebin of their
    points — the same law to round-off."""
    from capacity.analytic import fleet

    rng = np.random.default_rng(3)
    g = rng.random(700) * np.exp(-((np.arange(700) - 400.0) / 90.0) ** 2)
    g /= g.sum()
    y = rng.random(300) * np.exp(-np.arange(300) / 40.0)
    y /= y.sum()
    sizes = []
    real = fleet._rebin

    def counted(values: np.ndarray, probs: np.ndarray) -> np.ndarray:
        sizes.append(values.size)
        return real(values, probs)

    monkeypatch.setattr(fleet, "_rebin", counted)
    got = fleet._room_spill(g, 2.0, 3.0, share, y)
    assert max(sizes) <= g.size + y.size
    # The pairs' law, with the allowance the function solved for (its mean is the
    # spill share of E[Y]).
    s = fleet._trim(real(np.arange(g.size) * (2.0 / 3.0), g))
    ky = np.arange(y.size, dtype=np.float64)
    want_mean = share * float(ky @ y)
    mean = float(np.arange(got.size) @ got)
    assert mean == pytest.approx(want_mean, rel=1e-9, abs=1e-12)
    lo, hi = 0.0, float(s.size + y.size)
    for _ in range(60):   # the allowance whose pair law has that mean
        a = 0.5 * (lo + hi)
        room = np.maximum(a - np.arange(s.size), 0.0)
        pairs = real(np.maximum(ky[None, :] - room[:, None], 0.0).ravel(),
                     (s[:, None] * y[None, :]).ravel())
        if float(np.arange(pairs.size) @ pairs) > want_mean:
            lo = a
        else:
            hi = a
    pairs = fleet._trim(pairs / pairs.sum())
    n = max(pairs.size, got.size)
    assert np.abs(np.pad(got, (0, n - got.size)) - np.pad(pairs, (0, n - pairs.size))
                  ).max() < 1e-9


@pytest.mark.parametrize(("a", "taps", "n"), [(2, 9, 5000), (3, 37, 19379), (4, 12, 7), (3, 8, 3)])
def test_storm_lattice_correlation_is_the_full_one(a: int, taps: int, n: int) -> None:
    """A storm chain's kernels are zero between multiples of a = 1 + m (each attempt
    logged a times): correlating each residue class with the kernel's multiples is the
    full correlation, its sums added in another order (hunt-67: 109-point kernels on a
    19,379-point count, 3 classes of 37 products instead of 109)."""
    rng = np.random.default_rng(n)
    x = rng.random(n) * np.exp(-np.arange(n) / max(n / 5.0, 1.0))
    v = np.zeros(a * (taps - 1) + 1)
    v[::a] = rng.random(taps)
    want = np.correlate(x, v, "full")
    got = window._correlate_lattice(x, v, a)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-14 * np.abs(want).max()


def test_every_declared_kernel_is_built() -> None:
    # Each compiled loop is looked up by name and falls back to numpy when missing (a
    # build from before it): the equality tests below would then compare numpy with
    # itself. The build under test must carry every function its stub declares.
    import re

    from capacity.analytic import _kernels

    stub = (ROOT / "capacity" / "analytic" / "_kernels.pyi").read_text()
    names = re.findall(r"^def (\w+)\(", stub, flags=re.M)
    assert len(names) >= 12
    assert [n for n in names if not callable(getattr(_kernels, n, None))] == []


@pytest.mark.parametrize("seed", range(6))
def test_compiled_storm_renewals_are_the_python_loops(seed: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The storms' renewal sums of the pauses (window._storm_arrivals: a fixed return
    # delay, and honoured retry-afters whose trips follow the logged content) in C: the
    # Python loops' starts, bit for bit — returns within a step, many steps later, past
    # the chain; no retries to three; a step short of every window.
    # The kernels are called directly: through the wrappers, a missing build (or an input
    # the kernel refuses) would compare the Python loops with themselves.
    kern = window._kernels
    assert kern is not None
    rng = np.random.default_rng(seed)
    for _ in range(12):
        steps = int(rng.integers(1, 1300))
        into = np.concatenate([rng.random(steps) * rng.random(), [0.0]])
        fz = rng.random(steps) * 10.0 ** -rng.integers(1, 4)
        starts, aborted, turned = rng.random(steps), rng.random(steps), rng.random(steps)
        back = float(rng.choice([0.0, 0.4, rng.random() * 60.0, steps + 2.5]))
        got = kern.storm_renewal(into, fz, starts, aborted, back, 0.7, 0.013)
        want = window._storm_renewal_numpy(into, fz, starts, aborted, back, 0.7, 0.013)
        assert got.tobytes() == want.tobytes()
        _assert_retried_is_the_python_loop(rng, monkeypatch, into, fz, starts, aborted,
                                           turned)


def _assert_retried_is_the_python_loop(rng: np.random.Generator,
                                       monkeypatch: pytest.MonkeyPatch,
                                       *laws: NDArray[np.float64]) -> None:
    """The compiled storm_retried on ``laws`` (into, fz, starts, aborted, turned) and
    random scalars is the Python loop's result bit for bit."""
    kern = window._kernels
    assert kern is not None
    args = (0.013, float(rng.random() * 60.0), int(rng.integers(0, 300)),
            float(rng.random()), int(rng.integers(0, 4)), int(rng.integers(1, 200)),
            float(rng.random() * 3.0), float(rng.random() * 4.0), 0.8)
    got = kern.storm_retried(*laws, *args)
    with monkeypatch.context() as mp:
        mp.setattr(window, "_kernels", None)
        want = window._storm_retried(*laws, *args)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", range(4))
def test_compiled_storm_renewals_over_sparse_pause_laws_are_the_python_loops(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The pause law is a bincount of sampled pauses (window._storm_arrivals), mostly zeros
    # over a long chain (hunt-76: 171-256 nonzero of 14,271 steps): the kernels sum the
    # renewal step over its nonzero taps alone, in numpy's pairwise tree. The Python loops'
    # starts bit for bit: taps spread, bunched, at a block's edges (multiples of 8 and
    # 128 steps), none; into holding zeros, and (the fixed delay's sums) an inf (inf·0 is
    # nan: the dense sums) or a nan.
    kern = window._kernels
    assert kern is not None
    rng = np.random.default_rng(100 + seed)
    cases = [(int(rng.integers(2, 3000)), int(rng.integers(0, 40))) for _ in range(5)]
    cases += [(4100, 60), (257, 8), (129, 3)]
    for steps, ntaps in cases:
        fz = np.zeros(steps)
        spots = rng.choice(np.arange(1, steps), size=min(ntaps, steps - 1), replace=False)
        edges = np.array([k for k in (7, 8, 9, 127, 128, 129, 1024, 2048) if k < steps])
        if rng.random() < 0.5:
            spots = np.concatenate([spots, edges]).astype(np.int64)
        fz[spots] = rng.random(spots.size) * 10.0 ** -rng.integers(0, 4)
        into = np.concatenate([rng.random(steps) * (rng.random(steps) < 0.3), [0.0]])
        starts, aborted, turned = rng.random(steps), rng.random(steps), rng.random(steps)
        for bad in (None, math.inf, math.nan):
            if bad is not None:
                into = into.copy()
                into[int(rng.integers(0, steps))] = bad
            back = float(rng.choice([0.0, 0.4, rng.random() * 60.0]))
            got = kern.storm_renewal(into, fz, starts, aborted, back, 0.7, 0.013)
            with np.errstate(invalid="ignore"):
                want = window._storm_renewal_numpy(into, fz, starts, aborted, back, 0.7,
                                                   0.013)
            if bad is math.nan:  # (a nan's sign bit is its summation order's)
                assert np.array_equal(got, want, equal_nan=True)
            else:
                assert got.tobytes() == want.tobytes()
            if bad is not None:
                continue  # (retried: a nan start sends its retries nowhere, ValueError)
            _assert_retried_is_the_python_loop(rng, monkeypatch, into, fz, starts, aborted,
                                               turned)


def test_fractional_sessions_law_with_the_remembered_exp_is_the_same() -> None:
    # A fractional N's extra session (ClumpWindowModel._power_parts) takes exp of the
    # session law's log transform from the model's cache, and multiplies the whole
    # sessions' transform by its factor instead of adding its log (a complex log is the
    # costly step): the pmf computed afresh in the log domain, to round-off, at a first
    # and a later guess.
    prof = load_profile(ROOT / "profiles/tool-agent.yaml")
    wl = Workload.from_profile(prof)
    c = wl.constraints[0]
    cyc = amodel.cycle_time(wl)
    inner = amodel.constraint_model(wl, c, cyc.cycle_s, cyc.min_cycle_s).inner
    assert inner.session_pmf is not None
    for n in (7.3, 7.9, 12.25):
        got = inner._pmf(n, 0.0)
        L = min(inner._length(n), window._MAX_FFT)
        k = math.floor(n + 1e-12)
        log_s = inner._transforms(L)[0]
        part = 1.0 - (n - k) + (n - k) * np.exp(log_s)
        log_g = k * log_s + np.log(np.where(np.abs(part) < 1e-300, 1e-300, part))
        with np.errstate(under="ignore"):
            g = np.fft.irfft(np.exp(log_g), L)
        want = np.where(g > 1e-250, g, 0.0)
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) < 1e-14 * float(want.max())
        assert abs(float(got.sum()) - 1.0) < 1e-9


def test_compiled_search_is_numpys_searchsorted() -> None:
    # The pacer's slot draws (pacing._SlotWait.draw) count the thresholds at or below
    # each normal draw in C: np.searchsorted(side="right")'s indices — with infinite
    # thresholds, ties, keys equal to thresholds, an empty list and no keys.
    from capacity.analytic import pacing

    assert pacing._kernels is not None
    rng = np.random.default_rng(11)
    for _ in range(400):
        n = int(rng.integers(0, 60))
        a = np.sort(rng.standard_normal(n))
        if n > 4:
            a[: int(rng.integers(0, 3))] = -math.inf
            a[n - int(rng.integers(0, 3)):] = math.inf
            a[2:4] = a[2]
        v = rng.standard_normal(int(rng.integers(0, 3000)))
        if v.size > 10 and n:
            v[:10] = a[rng.integers(0, n, 10)]
        got = pacing._search_right(a, v)
        want = np.searchsorted(a, v, side="right")
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_galloping_search_is_numpys_searchsorted() -> None:
    # The cross-turn lags' and a session's earlier launches' searches
    # (timing.searchsorted_near): np.searchsorted's indices on either side — keys in
    # order, in order with drops (a turn's padding), at random, equal to entries of a
    # (ties), beyond both ends; an empty a, no keys; an unsorted a: numpy's own answer.
    from capacity.analytic import timing

    kern = timing._kernels
    assert kern is not None
    rng = np.random.default_rng(12)
    for _ in range(600):
        n = int(rng.integers(0, 400))
        a = np.sort(np.round(rng.standard_normal(n) * 4.0, 1))
        m = int(rng.integers(0, 500))
        v = np.round(rng.standard_normal(m) * 5.0, 1)
        if rng.random() < 0.6:
            v = np.sort(v)
            v[rng.random(m) < 0.05] = -3.0  # drops
        if n and m:
            v[rng.random(m) < 0.2] = a[rng.integers(0, n)]
        for side in ("left", "right"):
            got = kern.search_sorted(a, v, side == "right")
            want = np.searchsorted(a, v, side=side)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
            assert timing.searchsorted_near(a, v, side).tobytes() == want.tobytes()
    a = np.array([3.0, 1.0, 2.0])
    with pytest.raises(ValueError):
        kern.search_sorted(a, np.ones(2), True)
    assert (timing.searchsorted_near(a, np.ones(2), "left").tobytes()
            == np.searchsorted(a, np.ones(2), side="left").tobytes())


@pytest.mark.parametrize("seed", range(4))
def test_compiled_gamma_draws_are_numpys(seed: int) -> None:
    # The pacer's slot waits (pacing._gamma) in C, numpy's cube and log1p loops called
    # from there: _gamma_numpy's bytes — counts below 1, of 1 (log1p), up to thousands
    # (the cube), normals large enough to clip at 0, lengths around the SIMD widths.
    from capacity.analytic import pacing

    kern = pacing._kernels
    assert kern is not None and pacing._gamma_compiled()  # the probe passed: in use
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n = int(rng.integers(0, 3000)) if rng.random() < 0.8 else int(rng.integers(0, 9))
        k = rng.integers(-2, int(rng.choice([3, 40, 5000])), n)
        u, g = rng.random(n), rng.standard_normal(n) * rng.uniform(0.1, 6.0)
        got = kern.gamma_wh(k, u, g, np.power, np.log1p)
        assert got.tobytes() == pacing._gamma_numpy(k, u, g).tobytes()
    with pytest.raises(ValueError):  # a nan normal draw: the numpy way instead
        kern.gamma_wh(np.full(3, 5), np.ones(3) / 2, np.array([0.0, math.nan, 0.0]),
                      np.power, np.log1p)
    with pytest.raises(ValueError):  # not int64 counts
        kern.gamma_wh(np.ones(3), np.ones(3) / 2, np.zeros(3), np.power, np.log1p)


def test_remembered_charge_laws_are_fresh_copies() -> None:
    # CallCost.pmf remembers its laws by value (metered makes a new CallCost each time):
    # an equal cost gets the same law as computing it, and a caller that changes its
    # copy changes nothing the next caller gets.
    from capacity.model import workload as wm

    inp = Distribution.parse({"uniform": [1000, 3000]}, "number")
    out = Distribution.parse({"uniform": [100, 900]}, "number")
    for h, top in ((7.0, math.inf), (13.5, 2500.0)):
        wm._COST_PMFS.clear()
        want = wm.CallCost("tokens", inp, 0.5, out, 800.0)._pmf(h, top)
        first = wm.CallCost("tokens", inp, 0.5, out, 800.0).pmf(h, top)
        first[:] = -1.0
        again = wm.CallCost("tokens", inp, 0.5, out, 800.0).pmf(h, top)
        assert again.tobytes() == want.tobytes() and len(wm._COST_PMFS) == 1
        other = wm.CallCost("tokens", inp, 0.5, out, 700.0).pmf(h, top)
        assert other.tobytes() != want.tobytes() and len(wm._COST_PMFS) == 2


def test_compiled_coarsen_is_numpys_add_at() -> None:
    # window._coarsen in C: np.add.at's sums in its order, bit for bit — factors just
    # above 1 (several points per cell), whole and fractional ones, one point, zeros,
    # a pmf summing to 1 and raw weights.
    assert window._kernels is not None
    rng = np.random.default_rng(17)
    for _ in range(3000):
        n = int(rng.integers(1, 300))
        p = rng.random(n) * (rng.random(n) < 0.8)
        if rng.random() < 0.5 and p.sum() > 0:
            p = p / p.sum()
        f = float(rng.choice([1.0 + 1e-9, 1.5, 2.0, 3.0, 1 / 0.7, 1 / 0.93,
                              rng.uniform(1.0, 40.0), 1 / rng.uniform(0.01, 1.0)]))
        got, want = window._coarsen(p, f), window._coarsen_numpy(p, f)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (n, f)
    # Not a contiguous float64 vector, or no points: numpy's way (and its error).
    p = rng.random(40)
    assert window._coarsen(p[::2], 1.7).tobytes() == window._coarsen_numpy(p[::2], 1.7).tobytes()
    with pytest.raises(ValueError):
        window._coarsen(np.zeros(0), 2.0)


@pytest.mark.parametrize("name", ["paced-concurrency.yaml", "counted-sliding-tool-loop.yaml",
                                  "backoff-fanout-tpm.yaml"])
def test_turn_timing_columns_as_the_column_stack(name: str) -> None:
    # turn_timing masks its launch columns stacked as rows, then transposes: the arrays
    # np.stack(axis=1) and the mask on (n, R) gave, bit for bit (a turn of sequential
    # calls whose launches need the stable sort, and a fan-out's sorted copies).
    from capacity.analytic import timing

    wl = Workload.from_profile(load_profile(ROOT / "tests/data" / name))
    got = timing.turn_timing(wl, 512)
    rng = np.random.default_rng(timing.TIMING_SEED)
    probs = np.array([t.probability for t in wl.turns])
    which = rng.choice(len(probs), size=512, p=probs / probs.sum())
    walker = timing._Walker(wl.profile, rng, 512)
    for i, turn in enumerate(wl.turns):
        if (which == i).any():
            walker.walk(turn.steps, np.zeros(512), which == i)
    act = np.stack(walker.active, axis=1)
    times = np.where(act, np.stack(walker.times, axis=1), math.inf)
    fields = {"calls": np.where(act, np.broadcast_to(np.asarray(walker.calls), times.shape), -1),
              "levels": np.where(act, np.stack(walker.levels, axis=1), -1),
              "ends": np.where(act, np.stack(walker.ends, axis=1), math.inf),
              "outs": np.where(act, np.stack(walker.outs, axis=1), 0.0)}
    width = max(1, int(np.isfinite(times).sum(axis=1).max()))
    order = np.argsort(times, axis=1, kind="stable")[:, :width]
    want = {k: np.take_along_axis(v, order, axis=1) for k, v in fields.items()}
    want["times"] = np.take_along_axis(times, order, axis=1)
    for k, v in want.items():
        a = getattr(got, k)
        assert a.dtype == v.dtype and a.tobytes() == np.ascontiguousarray(v).tobytes(), k


@pytest.mark.parametrize("name", ["paced-concurrency.yaml", "counted-sliding-tool-loop.yaml",
                                  "backoff-fanout-tpm.yaml"])
def test_compiled_run_signatures_are_numpys(name: str) -> None:
    # TurnTiming._runs_uncached's launch counts after each kept breakpoint, from one
    # compiled pass over the sorted breakpoints: numpy's spec-by-spec cumulative sums,
    # at windows shorter than a call, about a turn and longer than many.
    from capacity.analytic import timing

    assert timing._kernels is not None
    tt = timing.turn_timing(Workload.from_profile(load_profile(ROOT / "tests/data" / name)))
    gt, gc = tt.groups()
    for w in (0.3, 10.0, 60.0, 600.0):
        vals = np.concatenate([gt - w, gt], axis=1)
        order = np.argsort(vals, axis=1, kind="stable")
        sv = np.take_along_axis(vals, order, axis=1)
        with np.errstate(invalid="ignore"):
            length = sv[:, 1:] - sv[:, :-1]
        take = np.isfinite(length) & (length > 0)
        got = timing._run_signatures(order, gc, take)
        want = timing._run_signatures_numpy(order, gc, take)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        assert got.shape == (int(take.sum()), gc.shape[2])


@pytest.mark.parametrize("name", ["paced-concurrency.yaml", "counted-sliding-tool-loop.yaml",
                                  "backoff-fanout-tpm.yaml"])
def test_compiled_cross_moment_is_numpys(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two turns of a session in one window (TurnTiming._cross_uncached), each lag's range
    # sums compiled: the numpy loop's figure bit for bit, for request counts and for
    # uneven charges, windows from under a call to many turns long.
    from capacity.analytic import timing

    assert timing._kernels is not None
    tt = timing.turn_timing(Workload.from_profile(load_profile(ROOT / "tests/data" / name)))
    k = tt.groups()[1].shape[2]
    weights = [np.ones(k), np.linspace(0.5, 4000.0, k)]
    cases = [(w, x) for w in (0.3, 10.0, 60.0, 600.0) for x in weights]
    got = [tt._cross_uncached(w, x, 64) for w, x in cases]
    monkeypatch.setattr(timing, "_kernels", None)
    want = [tt._cross_uncached(w, x, 64) for w, x in cases]
    assert got == want


@pytest.mark.parametrize("seed", range(4))
def test_compiled_session_law_is_numpys(seed: int) -> None:
    # A session's window law from its timeline (window._session_law_uncached) compiled:
    # numpy's pmf bit for bit — launches at the same instants (ties between a window's
    # entries and exits), zero charges, windows shorter than a gap and longer than many,
    # a mean load above and below the sampled one.
    rng = np.random.default_rng(seed)
    assert window._kernels is not None
    for _ in range(40):
        n = int(rng.integers(1, 2000))
        t = np.sort(np.round(rng.random(n) * float(rng.choice([5.0, 50.0, 500.0])), 1))
        c = np.round(rng.random(n) * float(rng.choice([0.5, 3.0, 40.0])), 2)
        c[rng.random(n) < 0.2] = 0.0
        total = float(t[-1]) + float(rng.choice([0.1, 5.0]))
        w, mean_lat = float(rng.choice([0.1, 1.0, 10.0, 60.0])), float(rng.random() * 5.0)
        got = window._kernels.session_law(t, c, total, w, mean_lat)
        want = window._session_law_numpy(t, c, total, w, mean_lat)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("name", ["paced-concurrency.yaml", "counted-sliding-tool-loop.yaml",
                                  "backoff-fanout-tpm.yaml"])
def test_compiled_launch_groups_are_numpys(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # TurnTiming.groups' events (a fan-out's copies at one instant are one) numbered in
    # one compiled pass: the same event times, counts and event numbers as numpy's.
    from capacity.analytic import timing

    assert timing._kernels is not None
    wl = Workload.from_profile(load_profile(ROOT / "tests/data" / name))
    tt = timing.turn_timing(wl, 512)
    got = (*tt.groups(), tt._memo[("group-cells",)])
    monkeypatch.setattr(timing, "_kernels", None)
    tt = timing.turn_timing(wl, 512)
    want = (*tt.groups(), tt._memo[("group-cells",)])
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_compiled_loops_leave_inputs_outside_their_order_to_numpy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Found in review: two compiled loops assumed an order the numpy/Python code does not.
    # session_law merged the circle's wrapped copies as one sorted run, but a launch past
    # total + t[0] comes after them (numpy sorts it: a different pmf); storm_retried sent
    # a return before its own step (a negative latency) into a step the Python loop has
    # finished. Both now raise ValueError and their callers take numpy's/Python's way.
    assert window._kernels is not None
    t, c = np.array([0.0, 0.5, 2.9, 3.5]), np.array([1.0, 2.0, 1.0, 3.0])
    with pytest.raises(ValueError):
        window._kernels.session_law(t, c, 3.0, 1.0, 0.5)
    rng = np.random.default_rng(1)
    steps, dt = 50, 0.013
    into, fz = np.concatenate([rng.random(steps), [0.0]]), rng.random(steps) * 0.01
    starts, aborted = rng.random(steps), rng.random(steps) * 0.01
    turned = rng.random(steps) * 0.01
    for lat, m in [(-0.3, 1), (-0.3, 2), (-0.45, 1)]:
        args = (dt, 5.0, 100, lat * dt, m, 10, 0.0, 0.01, 0.8)
        with pytest.raises(ValueError):
            window._kernels.storm_retried(into, fz, starts, aborted, turned, *args)
        got = window._storm_retried(into, fz, starts, aborted, turned, *args)
        with monkeypatch.context() as mp:
            mp.setattr(window, "_kernels", None)
            want = window._storm_retried(into, fz, starts, aborted, turned, *args)
        assert got.tobytes() == want.tobytes()


def _storm_walk_args(a: int, kmax: int, size: int, per_w: int) -> tuple[Any, ...]:
    """A storm chain's steps as window._storm_size builds them, with a start law x:
    arrivals at multiples of a, the content from before expiring, the storm's own
    attempts leaving a window later (storm_walk's arguments but alive_min)."""
    rng = np.random.default_rng(size)
    steps = 3 * per_w
    arr = rng.random((steps, kmax + 1)) * rng.random(kmax + 1) / (kmax + 1)
    arr[:, 0] = 0.0
    tots = arr.sum(axis=1)
    ups = np.zeros((steps, a * kmax + 1))
    ups[:, a * np.arange(kmax + 1)] = arr
    steps_k = ups.copy()
    steps_k[:, 0] += 1.0 - tots
    gone = ups.copy()
    gone[:, 0] -= tots
    stay = rng.random(kmax + 1) * 0.3 / (kmax + 1)
    stay[-1] += 1.0 - stay.sum()
    x = rng.random(size) * np.exp(-np.arange(size) / max(size / 6.0, 1.0))
    x[size // 2:] = 0.0 if size > 1 else x[size // 2:]
    x /= x.sum()
    units = arr @ (a * np.arange(kmax + 1, dtype=np.float64)) + 0.01
    cum = np.concatenate([[0.0], np.cumsum(units)])
    return (x, steps_k, stay, gone, units, 1.0 - tots, 1.0 / np.maximum(tots, 1e-12), cum,
            float(rng.integers(1, 50)), per_w, 0.01, 0.5)


_STORM_SHAPES = [(3, 36, 3000, 40), (3, 1, 900, 300), (2, 9, 50, 7), (4, 2, 1, 3)]


@pytest.mark.parametrize(("a", "kmax", "size", "per_w"), _STORM_SHAPES)
def test_compiled_storm_walk_is_the_numpy_loop(a: int, kmax: int, size: int,
                                               per_w: int) -> None:
    # A storm chain's steps (window._storm_size) in C: each correlation summed tap by tap
    # over the count's nonzero span instead of numpy's dot a point — the same sums in
    # another order (as the residue-class correlation above), so equal to ~1e-12 of the
    # mass, and the same step ends the chain; a count of one point, a chain that dies out.
    x, *args = _storm_walk_args(a, kmax, size, per_w)
    ends = []
    for alive_min in (1e-4, 0.9, 2.0):   # (2: the chain ends at once)
        kern = window._kernels
        assert kern is not None
        gx, galive, grej, gbelow, gend = kern.storm_walk(x, *args, alive_min)
        wx, walive, wrej, wbelow, wend = window._storm_walk_numpy(x, *args, alive_min)
        assert gend == wend
        assert gx.shape == wx.shape and galive.shape == walive.shape
        assert np.abs(gx - wx).max() <= 1e-12
        assert np.abs(galive - walive).max() <= 1e-12
        assert abs(grej - wrej) <= 1e-12 * max(abs(wrej), 1.0)
        assert abs(gbelow - wbelow) <= 1e-12
        ends.append(wend)
    assert ends[-1] and galive[0] == walive[0] and np.all(galive[1:] == 1.0)
    # Stopped once the attempts turned away reach a floor: at the same step.
    x2, *rest = _storm_walk_args(a, kmax, size, per_w)
    whole = window._storm_walk_numpy(x2, *rest, 1e-4)[2]
    stop = args[-1] + 0.5 * (whole - args[-1])
    if stop > args[-1]:
        kern = window._kernels
        assert kern is not None
        grej = kern.storm_walk(x2, *rest, 1e-4, stop)[2]
        wrej = window._storm_walk_numpy(x2, *rest, 1e-4, stop)[2]
        assert stop <= wrej < whole and abs(grej - wrej) <= 1e-12 * max(abs(wrej), 1.0)


@pytest.mark.parametrize(("share", "k"), [(0.02, 1.0), (0.3, 2.5), (0.9, 1.0), (0.5, 0.5)])
def test_room_allowance_is_the_sixty_halvings(share: float, k: float) -> None:
    # fleet._room_allowance fills the room of every full log (S ≥ a) with its one term and
    # stops halving once no float lies between the ends: the 60 halvings of the whole
    # vector, bit for bit.
    from capacity.analytic import fleet

    rng = np.random.default_rng(int(share * 100))
    s = rng.random(900) * np.exp(-((np.arange(900) - 500.0) / 120.0) ** 2)
    s /= s.sum()
    y = rng.random(400) * np.exp(-np.arange(400) / 60.0)
    y /= y.sum()
    ky = np.arange(y.size, dtype=np.float64)
    t0 = np.concatenate([np.cumsum(y[::-1])[::-1], [0.0]])
    t1 = np.concatenate([np.cumsum((ky * y)[::-1])[::-1], [0.0]])
    extra = max(k - 1.0, 0.0)
    want = share * float(ky @ y)
    ks = np.arange(s.size, dtype=np.float64)
    lo, hi = 0.0, float(s.size + y.size)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        r = np.maximum(mid - ks, 0.0) + extra * mid
        j = np.minimum(np.floor(r).astype(np.int64) + 1, y.size)
        if float(np.dot(s, t1[j] - r * t0[j])) > want:
            lo = mid
        else:
            hi = mid
    got = fleet._room_allowance(s, t0, t1, extra, want)
    assert np.float64(got).tobytes() == np.float64(0.5 * (lo + hi)).tobytes()


def _pending_blocks(rng: np.random.Generator, n0: int, nc: int, u: int, J: int
                    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray,
                               np.ndarray]:
    """Random blocks of a pending chain (bucket.BucketChain._pending's shapes), each
    level's row over all its blocks summing to 1, the retries' moves down outweighing
    the launches' up (a chain that returns, as the bucket's does)."""
    t0 = [rng.random((n0, n0))] + [rng.random((n0, nc)) / (k + 1) ** 2 for k in range(u)]
    blk = [rng.random((J, nc, nc)) / (k + 1) ** 2 for k in range(u + 1)]
    last = 4.0 * rng.random((nc, n0))
    back, stay = 4.0 * rng.random((J, nc, nc)), rng.random((J, nc, nc))
    s0 = sum(x.sum(axis=1) for x in t0)
    t0 = [x / s0[:, None] for x in t0]
    sj = sum(b.sum(axis=2) for b in blk) + back.sum(axis=2) + stay.sum(axis=2)
    sj[0] += last.sum(axis=1) - back[0].sum(axis=1)
    blk = [b / sj[:, :, None] for b in blk]
    back, stay, last = back / sj[:, :, None], stay / sj[:, :, None], last / sj[0][:, None]
    return t0, blk, last, back, stay


@pytest.mark.parametrize(("n0", "nc", "u"), [(42, 7, 3), (84, 20, 3), (21, 10, 1),
                                             (41, 19, 16), (5, 5, 0), (120, 9, 2)])
def test_compiled_pending_chain_is_the_numpy_elimination(n0: int, nc: int, u: int) -> None:
    # The pending chain's censoring by pending count in C (bucket._pending_laws in plain
    # loops): not numpy's numbers bit for bit (BLAS and LAPACK sum in their own order),
    # the same laws to rounding. (120 levels: the GTH elimination's, past the dense solve.)
    from capacity.analytic import bucket

    assert bucket._kernels is not None
    rng = np.random.default_rng(n0 * 1000 + nc * 10 + u)
    J = bucket._PENDING
    t0, blk, last, back, stay = _pending_blocks(rng, n0, nc, u, J)
    want = bucket._pending_laws(t0, blk, last, back, stay, n0, nc)
    got = bucket._kernels.pending_chain(
        t0[0], np.array(t0[1:]).reshape(u, n0, nc), np.array(blk), last, back, stay)
    assert got.shape == (J + 1, n0)
    assert np.allclose(got[0, :n0], want[0], rtol=1e-10, atol=1e-14)
    for j in range(1, J + 1):
        assert np.allclose(got[j, :nc], want[j], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("shape", range(len(_STORM_SHAPES)))
def test_the_plain_and_avx2_builds_give_the_same_bytes(shape: int) -> None:
    # storm_walk and pending_chain are built twice on x86-64 (plain and AVX2, no FMA) and
    # run the AVX2 one where the CPU has it; other machines (aarch64, no AVX2) run only
    # the plain one, which must give the same numbers bit for bit.
    from capacity.analytic import bucket

    kern = bucket._kernels
    assert kern is not None and window._kernels is kern
    walk = _storm_walk_args(*_STORM_SHAPES[shape])
    n0, nc, u = [(42, 7, 3), (84, 20, 3), (41, 19, 16), (120, 9, 2)][shape]
    t0, blk, last, back, stay = _pending_blocks(np.random.default_rng(shape), n0, nc, u,
                                                bucket._PENDING)
    chain = (t0[0], np.array(t0[1:]).reshape(u, n0, nc), np.array(blk), last, back, stay)

    def run() -> list[bytes]:
        out = [np.asarray(v).tobytes() for v in kern.storm_walk(*walk, 1e-4)]
        return [*out, kern.pending_chain(*chain).tobytes()]

    best = run()
    was = kern.plain_builds(True)
    try:
        plain = run()
    finally:
        kern.plain_builds(was)
    assert was is False and plain == best


@pytest.mark.parametrize("path", ["tests/data/bucket-told-counted.yaml",
                                  "tests/data/bucket-fast-backoff.yaml"])
def test_compiled_pending_chain_keeps_the_answer(path: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole answer with the compiled pending chain and with the numpy one: the same
    # ceilings, the shares to rounding.
    from capacity.analytic import bucket

    prof = load_profile(ROOT / path)
    got = amodel.analyze(prof)
    with monkeypatch.context() as mp:
        mp.setattr(bucket, "_NUMPY_ONLY", True)
        want = amodel.analyze(prof)
    _same_to_rounding(got, want)


def _same_to_rounding(got: amodel.CeilingResult, want: amodel.CeilingResult) -> None:
    """The same ceilings, each binding share at its ceiling equal to rounding."""
    assert got.burst_ceiling == want.burst_ceiling
    for a, b in zip(got.constraints, want.constraints, strict=True):
        assert a.burst_ceiling == b.burst_ceiling
        assert a.at_burst_ceiling is not None and b.at_burst_ceiling is not None
        assert math.isclose(a.at_burst_ceiling.loss_fraction, b.at_burst_ceiling.loss_fraction,
                            rel_tol=1e-9)


@pytest.mark.parametrize("n", [1, 2, 5, 42, 84])
def test_compiled_refills_are_numpys(n: int) -> None:
    # The refill matrices (bucket._refills) and their products with blocks by the
    # matrices' geometric rows (a running sum from the top, _kernels.refill_combine)
    # against numpy's dense products: equal to rounding, rates from none to very many
    # events a refill step.
    from capacity.analytic import bucket

    assert bucket._kernels is not None
    rng = np.random.default_rng(n)
    lams = np.array([1e-300, 0.01, 0.5, 3.0, 40.0, 1e4])
    G = bucket._refills(lams, 2.5, 0.7, n - 1)
    assert np.allclose(bucket._kernels.refills(lams, 2.5, 0.7, n), G, rtol=0, atol=1e-15)
    x = [rng.random((n, 3)) for _ in range(4)]
    coef = rng.standard_normal((lams.size, 2, 4))
    got = bucket._kernels.refill_combine(lams, 2.5, 0.7, np.hstack(x), coef)
    want = np.einsum("bqp,bpij->qbij", coef, np.stack([G @ xp for xp in x], axis=1))
    assert got.shape == (2, lams.size, n, 3)
    assert np.allclose(got, want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("path", ["tests/data/bucket-chain-turns.yaml",
                                  "tests/data/closed-bucket-many-sessions.yaml"])
def test_compiled_follow_and_closed_chains_keep_the_answer(
        path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The follow and closed chains' blocks from the compiled refill products: the same
    # ceilings as numpy's dense products, the shares to rounding.
    from capacity.analytic import bucket

    prof = load_profile(ROOT / path)
    got = amodel.analyze(prof)
    with monkeypatch.context() as mp:
        mp.setattr(bucket, "_NUMPY_ONLY", True)
        mp.setattr(bucket, "_CHAIN_GRIDS", {})
        want = amodel.analyze(prof)
    _same_to_rounding(got, want)


def test_short_law_roots_with_the_remembered_law_are_the_fresh_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # lundberg_theta keeps a short law's lattice and its M_B(θ) − 1 / log M_B(θ) by θ
    # (model._BRENT_LAWS): the roots of one law at rate after rate, and of two laws in
    # turn, are the floats each gives alone on a fresh copy, with fewer passes over it.
    laws = [Distribution.parse({"lognormal": {"median": m, "p95": 3 * m}},
                               "tokens").lattice_pmf(1.0) for m in (30.0, 60.0)]
    assert all(np.count_nonzero(p) <= amodel._NEWTON_POINTS for p in laws)
    rate = 900.0
    asks = [(p, float(lam)) for lam in np.geomspace(0.05, 0.98, 9) for p in laws]
    asks = [(p, lam * rate / float(np.dot(np.arange(p.size), p))) for p, lam in asks]
    passes = {"n": 0}

    def counting(real: Any) -> Any:
        def counted(*a: Any, **k: Any) -> Any:
            passes["n"] += 1
            return real(*a, **k)
        return counted

    for name in ("exp", "expm1"):  # a pass over the law: M_B(θ) − 1 or log M_B(θ)
        monkeypatch.setattr(amodel.np, name, counting(getattr(np, name)))
    amodel._BRENT_LAWS.clear()
    kept = [amodel.lundberg_theta(lam, p, 1.0, rate) for p, lam in asks]
    with_memo = passes["n"]
    fresh = []
    for p, lam in asks:
        amodel._BRENT_LAWS.clear()
        fresh.append(amodel.lundberg_theta(lam, p.copy(), 1.0, rate))
    assert all(t > 0 for t in kept)
    assert kept == fresh
    assert with_memo < passes["n"] - with_memo


def test_stability_notes_ask_the_ceiling_searchs_storms_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # tool-agent on counted, retried sliding 60 s logs: each RPM log's note asks the storm
    # at the burst ceiling's cell, which the ceiling's search already ran (~50-120 ms a
    # chain at 5,000 calls a window). The note reads the searched model: the same notes
    # as on a model built afresh, and each storm chain runs once.
    data = yaml.safe_load((ROOT / "profiles" / "tool-agent.yaml").read_text())
    for q in data["quotas"].values():
        q["enforcement"] = {"type": "sliding_window", "window": "60s"}
    prof = profile_from_dict(data)
    chains: list[tuple[float, float, float]] = []
    size = window._storm_size

    def counted(mdl: window.ClumpWindowModel, n: float, enough: float = math.inf) -> float:
        chains.append((mdl.q_lat, mdl.h, n))
        return size(mdl, n, enough)

    monkeypatch.setattr(window, "_storm_size", counted)
    res = amodel.analyze(prof)
    assert any(note.startswith("Unstable above") for note in res.notes)
    assert chains and len(set(chains)) == len(chains)
    wl = Workload.from_profile(prof)
    cyc = amodel.cycle_time(wl)
    fresh = [note for c, r in zip((c for c in wl.constraints if wl.units_per_turn(c) > 0),
                                  res.constraints, strict=True)
             for note in clumped.stability_notes(
                 wl, c, cyc.cycle_s, math.floor(min(r.mean_ceiling, 1e6) + 1e-9),
                 r.burst_ceiling)]
    assert tuple(fresh) == res.notes


def test_remembered_bursty_share_is_the_computed_one() -> None:
    # The counted, retried log's share when every retry meets it full is remembered by N
    # in the memo the storm search's rough and scaled copies share: each copy reads the
    # number a fresh model computes (they differ in their storm fields only).
    data = yaml.safe_load((ROOT / "profiles" / "tool-agent.yaml").read_text())
    for q in data["quotas"].values():
        q["enforcement"] = {"type": "sliding_window", "window": "60s"}
    wl = Workload.from_profile(profile_from_dict(data))
    cyc = amodel.cycle_time(wl)
    c = next(c for c in wl.constraints if c.dim == "rpm")
    m = clumped.clumped_window_model(wl, c, cyc.cycle_s).inner
    rough = dataclasses.replace(m, storm_rough=True, storm_scale=2.0)
    for n in (900, 1900, 1936):
        fresh = clumped.clumped_window_model(wl, c, cyc.cycle_s).inner
        want = fresh._sliding_bursty_uncached(n)
        assert rough._sliding_bursty(n) == want
        assert m._sliding_bursty(n) == want == m._cascade_memo[("bursty", n, 2, m.q_lat)]
    assert m._retry_rejection(0.0) >= 1.0  # (the case the storm search takes)


@pytest.mark.parametrize("seed", range(6))
def test_bursty_share_summed_directly_is_the_convolution(seed: int) -> None:
    # The direct sum reads the tail of S + m·(S' − q)⁺ at the arrival law's levels; the
    # FFT convolves the whole laws (its round-off, ~1e-16 a point, is the difference).
    rng = np.random.default_rng(seed)
    q = int(rng.integers(3, 400))
    mean = q * rng.uniform(0.3, 1.4)
    g = np.exp(-0.5 * ((np.arange(int(3 * q) + 50) - mean) / (0.2 * mean + 2)) ** 2)
    g /= g.sum()
    extra = rng.dirichlet(np.ones(int(rng.integers(1, 12))))
    extra = np.concatenate([np.zeros(int(rng.integers(0, 3))), extra])
    for m in (1, 2, 5):
        got = window.ClumpWindowModel._sliding_bursty_direct(g, q, m, extra)
        want = window.ClumpWindowModel._sliding_bursty_fft(g, q, m, extra)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-13)


def test_remembered_truncated_law_is_the_computed_one() -> None:
    # A spilling log far over its allowance reads its occupancy from the tilted count
    # (window.ClumpWindowModel.truncated): remembered by N, read-only, the law computed.
    data = yaml.safe_load((ROOT / "profiles" / "ptu-spillover.yaml").read_text())
    data["quotas"]["ptu"]["enforcement"] = {"type": "sliding_window", "window": "60s"}
    wl = Workload.from_profile(profile_from_dict(data))
    cyc = amodel.cycle_time(wl)
    c = next(c for c in wl.constraints if c.quota == "ptu" and c.dim == "otpm")
    m = clumped.clumped_window_model(wl, c, cyc.cycle_s).inner
    q = math.floor(m.q_lat + 1e-9)
    for n in (20, 80):
        got = m.truncated(n)
        assert got is m.truncated(n) and not got.flags.writeable
        fresh = clumped.clumped_window_model(wl, c, cyc.cycle_s).inner._truncated(n, 0.0)
        assert np.array_equal(got, fresh)
    assert float(m.pmf(80)[: q + 1].sum()) < window._TILT_BELOW  # (the tilted path)


@pytest.mark.parametrize("name", ["tool-agent", "chat-assistant", "ptu-spillover"])
def test_exceedance_from_the_others_count_is_the_counts(name: str) -> None:
    # A sliding log's share at N has the others' count (N − 1 sessions) at hand; its
    # exceedance at N sums that law against one session's (session laws and the
    # clumped mixture alike), where it took the count at N by FFT.
    data = yaml.safe_load((ROOT / "profiles" / f"{name}.yaml").read_text())
    for q in data["quotas"].values():
        q["enforcement"] = {"type": "sliding_window", "window": "10s"}
    wl = Workload.from_profile(profile_from_dict(data))
    cyc = amodel.cycle_time(wl)
    for c in wl.constraints:
        if wl.units_per_turn(c) <= 0:
            continue
        m = clumped.clumped_window_model(wl, c, cyc.cycle_s).inner
        top = math.floor(m.q_lat + 1e-9) + 1
        # (Fractional N: populations' equivalent sessions, a count thinned by aborted
        # turns; without a session law a fractional power is no law, and reads its own.)
        for n in (1, 7, 60, 400, 1.5, 2.4, 7.4, 60.3):
            got = m.exceedance(n)  # type: ignore[arg-type]
            m.pmf(n)
            assert m.exceedance(n) == got  # (the same with the count at N at hand)
            want = max(0.0, 1.0 - float(m.pmf(n)[:top].sum()))
            assert got == pytest.approx(want, abs=1e-13), (c.name, n)
        assert (m.session_pmf is None) == (name == "ptu-spillover")
