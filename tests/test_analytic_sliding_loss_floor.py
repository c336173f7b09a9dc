"""A sliding log that keeps only what it admitted (no retries, refusals not logged) turns
away at least what fixed windows of its length do — each of those windows is one of the
log's (issue 13, session 41).

tests/data/sliding-loss-trains.yaml (hunt seed 3001): a 30 s TPM log reserving max_tokens,
tool loops of a call, 0-5 repeats ~2 s apart and a final call, no retries. The log's own
law (a loss system's occupancy: the free count truncated at the allowance) said 2.06 % at
528 sessions, fixed 30 s windows 2.33 %; the engine refuses 2.95 % on the log and 2.30 %
on fixed windows (20 × 1 h, seed 1). Since session 49 a turn's calls in one window are
admitted in part (the log fills closer to its allowance): its own law says 2.87 %, above
the fixed windows', and stands; the floor is tested on the log read as before.

The floor is a bound in units (session 47): each fixed window is one of the log's, so
the log turns away at least ``E[(S − q)⁺]`` of a window's offered units — but it may
turn away fewer *calls* than fixed windows do, letting small calls into the room large
ones cannot use (tests/data/sliding-loss-two-sizes.yaml far over its allowance: 31 % of
the calls against fixed windows' 46 %, which the calls' floor had said of the log). The
fixed windows' share stands in only where their units say more than the log's own law.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from capacity.analytic.clumped import ClumpedWindow
from capacity.analytic.model import analyze, constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.sim.engine import simulate

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"
TRAINS = DATA / "sliding-loss-trains.yaml"


def _model(path: Path) -> ClumpedWindow:
    wl = Workload.from_profile(load_profile(path))
    assert wl.constraints[0].dim in ("tpm", "itpm")
    m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    assert isinstance(m, ClumpedWindow)
    return m


def _fixed(data: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(data)
    for q in d["quotas"].values():
        q["enforcement"] = {"type": "fixed_window", "window": q["enforcement"]["window"]}
    return d


def test_the_log_refuses_at_least_its_fixed_windows() -> None:
    m = _model(TRAINS)
    assert m.fixed_twin is not None and not m.fixed_twin.sliding
    # The log read as a knapsack, its turns admitted whole (its law before session 49).
    m = dataclasses.replace(m, inner=dataclasses.replace(
        m.inner, trains_in_part=False, _cascade_memo={}))
    assert m.fixed_twin is not None
    own = m.inner.attempt_share(528)["attempt"]
    st = m.stats(528)
    assert own < 0.022                                   # its own law: 2.06 %
    assert st.loss_fraction == m.fixed_twin.attempt_share(528)["attempt"]
    assert "fixed windows" in st.method
    # The fixed windows' model is the fixed-window profile's: 2.33 % against the engine's
    # 2.30 % there; on the log the engine refuses 2.95 %.
    fixed = _fixed(yaml.safe_load(TRAINS.read_text()))
    wl = Workload.from_profile(profile_from_dict(fixed))
    alone = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).stats(528)
    assert abs(st.loss_fraction - alone.loss_fraction) < 1e-12
    assert 0.75 * 0.0295 <= st.loss_fraction <= 1.05 * 0.0295


def test_a_turns_calls_admitted_in_part_fill_the_log() -> None:
    # A turn's calls in one window are a clump admitted in part (session 49,
    # tests/test_analytic_sequential_trains.py): the log's own law is then above its
    # fixed windows' and stands, 2.87 % against the engine's 2.95 % on the log.
    m = _model(TRAINS)
    assert m.fixed_twin is not None
    own = m.inner.attempt_share(528)["attempt"]
    assert own > m.fixed_twin.attempt_share(528)["attempt"]
    assert m.stats(528).loss_fraction == own
    assert 0.95 * 0.0295 <= own <= 1.15 * 0.0295


def test_the_engine_orders_them_too() -> None:
    # Measured now, briefly (4 x 1 h, seed 2): the log refuses more than fixed windows.
    data = yaml.safe_load(TRAINS.read_text())
    log, fixed = (simulate(profile_from_dict(d), 528, replications=4, seed=2, workers=1)
                  .metrics["attempt_429_fraction"].mean for d in (data, _fixed(data)))
    assert log > 1.1 * fixed > 0.01


def test_where_the_log_says_more_its_own_law_stands() -> None:
    # One call a turn at 30 s ITPM and OTPM logs (hunt seed 176): the loss system's law is
    # above the fixed windows' (159 against 173 with fixed windows; simulated 158).
    m = _model(DATA / "sliding-loss-single.yaml")
    assert m.fixed_twin is not None
    for n in (140, 159, 170):
        own = m.inner.attempt_share(n)["attempt"]
        assert m.fixed_twin.attempt_share(n)["attempt"] < own
        assert m.stats(n).loss_fraction == own
    assert "fixed windows'" not in m.stats(159).method


def test_retries_or_a_counted_log_have_no_twin() -> None:
    data = yaml.safe_load(TRAINS.read_text())
    d = {**copy.deepcopy(data), "retry": {"max_retries": 2}}
    wl = Workload.from_profile(profile_from_dict(d))
    m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    assert isinstance(m, ClumpedWindow) and m.fixed_twin is None
    # A requests log counts its refusals (rejected_count, on by default): not a loss log.
    d = copy.deepcopy(data)
    del d["quotas"]["q0"]["tpm"], d["quotas"]["q0"]["charge_max_tokens"]
    d["quotas"]["q0"]["rpm"] = 2000
    wl = Workload.from_profile(profile_from_dict(d))
    m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    assert isinstance(m, ClumpedWindow) and m.fixed_twin is None


def test_the_ceiling_against_the_simulated_one() -> None:
    # capacity ceiling FILE --seed 1: 528 [525-529]. The model said 556 (+5.3 %) before.
    assert_accurate(analyze(load_profile(TRAINS)).burst_ceiling, Recorded(528, 525, 529),
                    "sliding loss log, trains")


TWO_SIZES = DATA / "sliding-loss-two-sizes.yaml"


def _knapsack_replay(rate: float, q: float, seed: int = 3, horizon: float = 2500.0
                     ) -> float:
    """Share of calls a 10 s sliding log of allowance ``q`` turns away: Poisson calls at
    ``rate`` a second, half of 722 + U(114, 343) tokens, half of U(3850, 11550) + 200,
    each admitted if it fits the units the log admitted in the last 10 s (an independent
    replay: no model, no engine)."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * horizon)
    t = np.sort(rng.uniform(0.0, horizon, n))
    large = rng.random(n) < 0.5
    c = np.round(np.where(large, rng.uniform(3850, 11550, n) + 200,
                          722 + rng.uniform(114, 343, n)))
    log: collections.deque[tuple[float, float]] = collections.deque()
    held, refused, counted = 0.0, 0, 0
    for ti, ci in zip(t.tolist(), c.tolist(), strict=True):
        while log and log[0][0] <= ti - 10.0:
            held -= log.popleft()[1]
        fits = held + ci <= q
        if fits:
            log.append((ti, ci))
            held += ci
        if ti > 100.0:            # past the first windows (an empty log at t = 0)
            counted += 1
            refused += not fits
    return refused / counted


def test_far_over_its_allowance_the_log_refuses_fewer_calls_than_fixed_windows() -> None:
    m = _model(TWO_SIZES)
    assert m.fixed_twin is not None
    n = 800
    own = m.inner.attempt_share(n)["attempt"]
    st = m.stats(n)
    twin = m.fixed_twin.attempt_share(n)["attempt"]
    # Fixed windows turn away half again as many calls (46 % against 31 %) ...
    assert twin > 1.3 * own
    # ... but not more units than the log's own law: the bound does not bind.
    assert m.fixed_twin.stop_loss_units_share(n) < m.inner.loss_units_share(n)
    assert st.loss_fraction == own
    assert "fixed windows'" not in st.method
    # The stochastic knapsack replayed at the profile's call rate, and the engine.
    wl = Workload.from_profile(load_profile(TWO_SIZES))
    rate = n / cycle_time(wl).cycle_s
    replay = _knapsack_replay(rate, m.inner.q_lat * m.inner.h)
    assert abs(own - replay) < 0.08 * replay                 # 31.7 % against ~30.6 %
    sim = simulate(load_profile(TWO_SIZES), n, replications=2, seed=1, workers=1)
    engine = sim.metrics["attempt_429_fraction"].mean
    assert abs(own - engine) < 0.08 * engine                 # the engine: 31.1 %
    assert twin > 1.3 * engine


TWO_FINALS = DATA / "sliding-loss-trains-two-finals.yaml"
WIDE_FINAL = DATA / "sliding-loss-trains-wide-final.yaml"


def test_near_the_allowance_the_fixed_windows_calls_still_floor_the_log() -> None:
    # Trains whose final call is 500-24,000 tokens: the own law's units (the large
    # calls) stay above the fixed windows' units bound while its calls miss the trains'
    # refusals. Within 1.1 times the allowance the fixed windows' calls share stands.
    m = _model(WIDE_FINAL)
    assert m.fixed_twin is not None
    n = 340
    assert m.fixed_twin.stop_loss_units_share(n) < m.inner.loss_units_share(n)
    assert m.stats(n).loss_fraction == m.fixed_twin.attempt_share(n)["attempt"]
    assert m.stats(n).loss_fraction > m.inner.attempt_share(n)["attempt"]
    ceiling = analyze(load_profile(WIDE_FINAL)).burst_ceiling
    assert ceiling <= 335                    # 331; the units gate alone said 344
    # The engine at 344 refuses more than the 3 % target (3.85 % in 4 x 1 h, seed 1).
    sim = simulate(load_profile(WIDE_FINAL), 344, replications=2, seed=1, workers=1)
    assert sim.metrics["attempt_429_fraction"].mean > 0.03


def test_the_share_does_not_fall_where_the_floor_changes_rule() -> None:
    # Past 1.1 times the allowance the floor is in units; the share never falls below
    # the one at the last N within it (a switch that dropped it, 6.19 % to 3.08 % on the
    # two finals, would let a ceiling search past it).
    for path in (TWO_FINALS, TRAINS, TWO_SIZES):
        m = _model(path)
        last = int(1.1 * m.inner.q_lat * m.inner.h / m.inner.mean_units)
        shares = [m.stats(k).loss_fraction for k in range(max(1, last - 20), last + 60)]
        assert all(b >= a - 1e-12 for a, b in itertools.pairwise(shares)), path
