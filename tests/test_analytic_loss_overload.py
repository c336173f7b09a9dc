"""A loss log far above its allowance (capacity/analytic/window.py,
``ClumpWindowModel.truncated``): a sliding log that neither retries nor counts its
refusals holds the others' count truncated at q, and the share it turns away reads that
law at and below q. At 1.5× the allowance ``P(S ≤ q)`` is ~1e-20, under the FFT's
round-off: read directly the share fell to 0.6 % at 900 sessions of a 600-call log and
0.08 % at 1,000 (hunt-69's priority deployment: 28 %, 64 %, 3e-16, 100 % at 600-660
sessions). The tilted count gives the truncated law to float precision; it is checked
here against the count's exact law, summed in logs."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import special

from capacity.analytic import clumped
from capacity.analytic import window as window_mod
from capacity.analytic.model import analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict

DATA = Path(__file__).resolve().parent / "data"


def _loss_log() -> Any:
    """One call a turn, 600 RPM in a sliding 60 s log that does not count refusals, no
    retries, Exp(60 s) think time: its window model."""
    p = profile_from_dict({
        "name": "loss-log-overload",
        "models": {"m": {"tokens_per_second": 100, "ttft": "0.5s"}},
        "quotas": {"q": {"models": ["m"], "rpm": 600, "rejected_count": False,
                         "enforcement": {"type": "sliding_window", "window": "60s"}}},
        "session": {"think_time": {"exponential": "60s"}, "turns": {"t": {"steps": [
            {"call": {"model": "m", "input_tokens": 100, "output_tokens": 10}}]}}},
        "retry": {"max_retries": 0}})
    wl = Workload.from_profile(p)
    m = clumped.clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    assert m.loses and m.single_launches and m.session_pmf is not None
    return m


def _log_conv(a: Any, b: Any, top: int) -> Any:
    """log of the convolution of two laws given in logs, at 0..top (exact there: the
    entries above top do not reach it)."""
    a, b = (np.concatenate([v[: top + 1], np.full(max(top + 1 - v.size, 0), -np.inf)])
            for v in (a, b))
    return np.array([special.logsumexp(a[: k + 1] + b[k::-1]) for k in range(top + 1)])


def _exact_log_pmf(m: Any, x: int, top: int) -> Any:
    """log P(S = k), k = 0..top, of ``x`` sessions' count (the session law's x-fold
    convolution, by squaring), every sum taken in logs."""
    with np.errstate(divide="ignore"):
        base = np.log(np.asarray(m.session_pmf, dtype=np.float64))[: top + 1]
    out = np.array([0.0])                              # log of the point mass at 0
    while x:
        if x & 1:
            out = _log_conv(out, base, top)
        x >>= 1
        if x:
            base = _log_conv(base, base, top)
    return out


@pytest.mark.parametrize("n", [800, 900, 1000])
def test_truncated_count_is_exact_far_above_the_allowance(n: int) -> None:
    m = _loss_log()
    q = math.floor(m.q_lat + 1e-9)
    exact = _exact_log_pmf(m, n - 1, q)
    assert special.logsumexp(exact) < math.log(1e-12)   # the direct read is round-off
    want = np.exp(exact - special.logsumexp(exact))
    got = m.truncated(n - 1)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) < 1e-9
    # The share turned away: the arriving call's session's earlier units E with the
    # others' truncated count, 1 − P(O + E + 1 ≤ q)/P(O + E ≤ q).
    cdf = np.cumsum(want)
    prior = m.prior_pmf
    e = np.arange(prior.size)
    room = float(np.dot(prior, cdf[q - e]))
    fits = float(np.dot(prior, np.where(q - e - 1 >= 0, cdf[np.maximum(q - e - 1, 0)], 0.0)))
    share = m.attempt_share(n)["call"]
    assert share == pytest.approx(1.0 - fits / room, rel=1e-6)
    # Erlang's overload limit, 1 − q/(offered calls a window), within a few points.
    offered = n * m.calls_per_window
    assert abs(share - (1.0 - q / offered)) < 0.03


def test_tilted_and_direct_reads_agree_where_both_are_accurate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At 700 sessions (P(S ≤ q) ~ 2e-4) the direct read is accurate: forcing the tilted
    one there gives the same share to 1e-8."""
    m = _loss_log()
    direct = m.attempt_share(700)["call"]
    monkeypatch.setattr(window_mod, "_TILT_BELOW", 2.0)
    m._pmfs.clear()
    m._cascade_memo.clear()  # (the truncated law is remembered there)
    tilted: list[float] = []
    read = m._tilted_pmf

    def counted(n: float, retry_calls: float, t: float) -> Any:
        tilted.append(n)
        return read(n, retry_calls, t)

    monkeypatch.setattr(m, "_tilted_pmf", counted)
    assert m.attempt_share(700)["call"] == pytest.approx(direct, rel=1e-8)
    assert tilted  # the tilted read answered
    assert 0.1 < direct < 0.2


def test_overloaded_loss_log_share_rises_with_n() -> None:
    """The share a loss log turns away rises with N through deep overload (the direct
    read fell back toward 0 there)."""
    m = _loss_log()
    shares = [m.attempt_share(n)["call"] for n in range(600, 1401, 50)]
    assert all(b > a for a, b in itertools.pairwise(shares))
    assert 0.5 < shares[-1] < 0.6        # 1 − 600/(1,400 × 0.99) = 0.567


def test_priority_deployment_spill_rises_with_n() -> None:
    """hunt-69: a sliding 60 s log charging max_tokens, spilling to a token bucket. Its
    spill and the bucket's 429 share rise with N through 1.3-1.7× the log's load
    (they jumped between 0 and 1 before); the burst-aware N* is below the fluid 784
    (simulated 682 [676-687]; the bucket's read of this smooth spill is left
    conservative: 613)."""
    p = load_profile(DATA / "fleet-sliding-spill-fluid.yaml")
    spill, refused = [], []
    for n in range(560, 721, 40):
        by = {c.quota: c for c in analyze(p, n).constraints}
        first, fed = by["q0"].at_sessions, by["q1"].at_sessions
        assert first is not None and fed is not None
        spill.append(first.loss_fraction)
        refused.append(fed.loss_fraction)
    assert all(b > a for a, b in itertools.pairwise(spill))
    assert all(b > a for a, b in itertools.pairwise(refused))
    # The log turns away most of its excess units, 1 − 422.2/N (its mean ceiling), as
    # a smaller share of calls: the large ones go first.
    for n, s in zip(range(560, 721, 40), spill, strict=True):
        excess = 1.0 - 422.2 / n
        assert 0.75 * excess < s < excess
    assert 560 < analyze(p).burst_ceiling < 700


def test_a_count_that_never_reaches_the_allowance_is_a_full_log() -> None:
    """hunt-96: turns of six calls every 20-36 s (a cadence) against a sliding minute of
    4,216 requests. Every session charges at least six units a window, so past ~703
    sessions the count can never be as low as q: the loss log is always full. The share
    fell to round-off there (0.0 at 750 sessions, 1.9 % at 862); it now rises with N
    through three times the ceiling."""
    turn = {"model": "m", "input_tokens": 500, "output_tokens": 100}
    p = profile_from_dict({
        "name": "never-below-q",
        "models": {"m": {"tokens_per_second": 80, "ttft": {"uniform": ["0.31s", "1.42s"]}}},
        "quotas": {"q0": {"models": ["m"], "rpm": 4216, "rejected_count": False,
                          "enforcement": {"type": "sliding_window", "window": "60s"}}},
        "session": {"cadence": {"uniform": ["20s", "36s"]}, "turns": {"t": {"steps": [
            {"call": turn}, {"repeat": {"count": 4, "call": turn}}, {"call": turn}]}}},
        "targets": {"max_429_fraction": 0.01}})
    res = analyze(p)
    ns = [res.burst_ceiling, *range(400, 1101, 50)]
    shares = []
    for n in ns:
        at = analyze(p, n).constraints[0].at_sessions
        assert at is not None
        shares.append(at.loss_fraction)
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(shares))
    assert shares[-1] > 0.5


def test_fixed_window_carry_does_not_depend_on_the_n_solved_before() -> None:
    """hunt-1060: a fixed TPM window with SDK retries. The carried retries' chain starts
    from the stationary carry of the largest N solved before; above the allowance that
    law could reach the end of the lattice and stop the chain at once (234 sessions: an
    attempt share of 39 % after a search, 62 % from empty). Each N now gives one answer
    whatever was asked before, and the shares rise with N."""
    p = load_profile(DATA / "fixed-carry-overload.yaml")
    wl = Workload.from_profile(p)

    def model() -> Any:
        return clumped.clumped_window_model(wl, wl.constraints[0],
                                            cycle_time(wl).cycle_s).inner

    fresh = model().attempt_share(234)["attempt"]
    searched = model()
    for n in (150, 156, 157, 160, 203):     # what the ceiling's search asks first
        searched.attempt_share(n)
    assert searched.attempt_share(234)["attempt"] == pytest.approx(fresh, rel=1e-6)
    shares = [analyze(p, n).constraints[0].at_sessions.loss_fraction  # type: ignore[union-attr]
              for n in (179, 203, 234, 273, 312)]
    assert all(b > a for a, b in itertools.pairwise(shares))


def test_fixed_window_share_rises_into_the_overloaded_branch() -> None:
    """hunt-2089: a fixed TPM window, retry-after honoured, four retries. Past the
    allowance the carry's chain stops short of its stationary law; its attempt share fell
    from 68 % at 1.3× the allowance to 51 % at 2×, then jumped to 90 % in the overloaded
    (fluid) branch. The fluid share is now its floor: the shares rise with N and meet
    that branch."""
    p = load_profile(DATA / "fixed-honoured-overload.yaml")
    ns = (282, 309, 350, 404, 471, 538, 672, 800)
    shares = [analyze(p, n).constraints[0].at_sessions.loss_fraction  # type: ignore[union-attr]
              for n in ns]
    assert all(b > a for a, b in itertools.pairwise(shares))
    assert shares[-2] > 0.85


def test_fluid_floor_leaves_aborted_turns_alone() -> None:
    """web-research at 100 sessions (a third above its 25-call fixed window): a call that
    fails after its retries ends its turn, so the later stages are never made (the
    simulator's 4.35 calls a turn of 5). The fluid floor counts every stage as fresh
    and read 63 % where the simulator measures 60.8 % (seed 1, 6 × 30 min); the carry's
    chain, left alone, reads 61 %."""
    p = load_profile(Path(__file__).resolve().parents[1] / "profiles" / "web-research.yaml")
    share = analyze(p, 100).constraints[0].at_sessions.loss_fraction  # type: ignore[union-attr]
    assert share == pytest.approx(0.608, abs=0.012)
