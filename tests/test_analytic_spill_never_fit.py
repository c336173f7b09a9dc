"""What reaches the next deployment of a priority route, and calls that never fit
(issue 13, hunt seeds 2047, 1022 and 1077): a fixed window's spilled calls counted
first-fit, the calls it can never admit sent on too, a bucket's spilled calls at their
own sizes and met in spells, and a population's never-fitting calls in the mix.
Simulated figures: ``capacity ceiling FILE --seed 1 --format json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"


def test_first_fit_count_of_a_fixed_windows_spill() -> None:
    """Two 2,000-token calls fit the first window (4,481 tokens), so A calls spill A − 2:
    the analytic N* 491 before (the spill read as (S − q)/2,000 = A − 2.24 calls)."""
    p = load_profile(DATA / "fixed-spill-first-fit.yaml")
    assert_accurate(analyze(p).burst_ceiling, Recorded(466, 462, 470), "first-fit spill")


def test_first_fit_count_is_the_engines() -> None:
    """The share of a's calls its window spills at 466 sessions is the engine's (51.7 %
    of the attempts at a, seed 1, 1 h; (S − q)/2,000 counted 46 %)."""
    from capacity.analytic import fleet
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_DEP

    p = load_profile(DATA / "fixed-spill-first-fit.yaml")
    wl = Workload.from_profile(p)
    first = fleet.fleet_models(wl, cycle_time(wl)).entries[0].model
    inner = first.inner
    g = inner.pmf(466)
    law = fleet._overflow_in_calls(g / g.sum(), inner.q_lat, inner.h, inner.size_bias,
                                   2000.0, fixed=True, count=fleet._spill_count(inner))
    calls = float(np.arange(g.size) @ g) / g.sum() * inner.h / 2000.0  # a window
    model = float(np.arange(law.size) @ law) / calls
    tr = trace_attempts(p, 466, horizon_s=3600.0, seed=1)
    at_a = tr.rows[:, T_DEP] == 0
    measured = float((at_a & (tr.rows[:, T_ADMITTED] == 0)).sum()) / float(at_a.sum())
    assert abs(model - measured) < 0.03 * measured, (model, measured)


def test_calls_that_never_fit_the_first_window_reach_the_next() -> None:
    """Hunt seed 2047: most calls can never fit a's 1 s window of 524 output tokens; the
    10 s window after it gets every one of them. The N* is the engine's (510 before
    against 288 [284–293]), and at 300 sessions of the main population alone b's window
    law holds the output tokens the engine offers b a window, and 18 % more (the engine
    2,808, seed 1, warm-up and 1 h; the model 3,321; 783 before)."""
    from capacity.analytic.fleet import FeedModel, fleet_models
    from capacity.analytic.model import cycle_time
    from capacity.model.workload import Workload
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_DEP, T_T, T_UNITS

    p = load_profile(DATA / "never-fit-spill.yaml")
    assert_accurate(analyze(p).burst_ceiling, Recorded(288, 284, 293), "hunt-2047")
    from capacity.profile.loader import profile_from_dict

    data = p.model_dump(mode="json", exclude_none=True)
    data.pop("populations")  # one session's workload: the fleet model on its own
    wl = Workload.from_profile(profile_from_dict(data))
    entry = next(e for e in fleet_models(wl, cycle_time(wl)).entries
                 if e.c.name == "q1.otpm")
    assert isinstance(entry.model, FeedModel)
    g, _ = entry.model.window_law(300)
    mean = float(np.arange(g.size) @ g) * entry.model.h
    tr = trace_attempts(profile_from_dict(data), 300, horizon_s=3600.0, seed=1)
    j = next(i for i, s in enumerate(tr.slots) if s.quota == "q1" and s.dimension == "otpm")
    # Per 10 s window over the whole trace (warm-up and hour: sessions start in steady
    # state), as benchmarks/spill_probe.py reads it.
    at_b = tr.rows[:, T_DEP] == 1
    windows = np.bincount(np.floor(tr.rows[at_b, T_T] / 10.0).astype(np.int64),
                          weights=tr.rows[at_b, T_UNITS + j])
    measured = float(windows.mean())
    # The model holds them all and some more (the overflow's calls are charged at the
    # route's law, never-fitting sizes in it: RESULTS, "A review of the day's fleet
    # changes"); before, 28 % of the engine's.
    assert 0.9 * measured <= mean <= 1.25 * measured, (mean, measured)


def test_a_buckets_spilled_calls_are_its_large_ones() -> None:
    """A 60 s deep OTPM bucket spilling into a 2 s log: the calls it turns away are
    charged by the share of each it refuses (the large first calls of a tool loop), not
    at the route's mean call (183 before against 139 [138–139]; 139 with that alone),
    and each finds the others of its spell in the log (132 with that: 5 % conservative,
    outside the 3 % target — the law of the calls spilled a window is a little wider than
    the engine's, sd 1,142 against 1,071 output tokens at 139 sessions without retries,
    and the Palm view widens what a call finds with it)."""
    p = load_profile(DATA / "bucket-spill-large-calls.yaml")
    n = analyze(p).burst_ceiling
    assert 0.95 * 138 <= n <= 139, n  # (the CI's lower end, less 5 %)


def test_a_buckets_spilled_fan_outs_meet_a_full_log() -> None:
    """Hunt seed 1022's second population: a near-empty bucket spills a fan-out's
    remainder at once, so the calls reaching b's 2 s log come in spells. b's window law
    matches the engine's (600 and 593 output tokens a window at 450 sessions without
    retries, sd 1,069 and 1,083), but the time average it was read at said 0.4 % of b's
    calls refused where the engine refuses 12 %: 478 against 403 [401–406] simulated, 421
    with each spilled call meeting the others of its window (+4.5 %: within 5 %, outside
    3 %)."""
    import yaml

    from capacity.profile.loader import profile_from_dict

    raw = yaml.safe_load((DATA / "bucket-spill-large-calls.yaml").read_text())
    raw["session"] = {
        "think_time": {"lognormal": {"median": "102.7s", "p95": "410.7s"}},
        "turns": {"p0": {"steps": [
            {"call": {"model": "m", "input_tokens": 1380, "output_tokens": 13,
                      "max_tokens": 2048}},
            {"parallel": {"count": {"choice": {"values": [3, 6, 7, 8],
                                               "weights": [0.406, 0.367, 0.691, 0.328]}},
                          "call": {"model": "m", "input_tokens": {"uniform": [397, 1191]},
                                   "output_tokens": 123, "max_tokens": 184}}},
            {"call": {"model": "m",
                      "input_tokens": {"lognormal": {"median": 4274, "p95": 8548}},
                      "output_tokens": 28}}]}}}
    n = analyze(profile_from_dict(raw)).burst_ceiling
    assert 0.97 * 403 <= n <= 1.05 * 403, n


def test_a_populations_calls_that_never_fit_count_in_the_mix() -> None:
    """Hunt seed 1077: every call of the second population is past the window's
    allowance. With one session of each (N = 2) the engine refuses 84 % of attempts (seed
    1, 8 × 1 h); the blended model, which left those calls out, said 0.44 %."""
    from capacity.whatif.sweep import sweep

    p = load_profile(DATA / "population-never-fits.yaml")
    (row,) = sweep(p, [2], method="analytic").rows
    assert 0.6 <= row.analytic_429_fraction <= 0.9, row.analytic_429_fraction
    # At N = 1 (the main population alone: its prompts past the ITPM window fail 7 % of
    # its calls) the 5 % target is missed already: N* 0, as simulated (it said 4, then 1
    # while the search took the shares as rising from N = 1).
    assert_accurate(analyze(p).burst_ceiling, Recorded(0, 0, 0), "hunt-1077")
