"""A spilling token bucket whose route sends calls that never fit it (prompts whose every
charge is past its depth): its finite dam reads the loss without their units, and the
units-to-calls size bias κ without their charges; they are counted apart. A call only
sometimes past the depth stays in both.

ptu-spillover beside chat and batch populations with 50 batch workers held (3,000-token
prompts every ~14 s) and the first call larger than the PTU's 50,000-token ITPM bucket
(`tests/data/ptu-oversized-first-call.yaml`): at N = 12 the bucket is offered three
times its refill, 15,297 tokens a second of which 11,697 by calls that can fit, the rest
in 60,000-token prompts that never do. Left in, they made the dam's overload look worse
and the calls it turns away look large (κ 0.62): 42.7 % of the calls spilled where the
engine spills 55.2 %, and N* 23 against the simulated 12 [12–13] (`python
benchmarks/session59_probes.py spill`, `sims`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.profile.loader import load_profile
from capacity.profile.schema import Profile

from ._accuracy import Recorded, assert_accurate

ROOT = Path(__file__).resolve().parents[1]


def _held(batch: int) -> Profile:
    return load_profile([ROOT / "profiles" / "ptu-spillover.yaml",
                         ROOT / "tests" / "data" / "ptu-oversized-first-call.yaml",
                         ROOT / "examples" / "chat-and-batch.yaml"],
                        [f"populations.batch.sessions={batch}"])


def test_the_ptus_spill_is_the_engines() -> None:
    """The PTU's ITPM bucket at N = 12 spills the engine's share of the calls (one
    replication, 30 min, seed 7: 55.2 %) to 3 points (the model: 53.8 %)."""
    from capacity.analytic.fleet import fleet_models
    from capacity.analytic.model import cycle_time
    from capacity.analytic.populations import mixed_profile, view
    from capacity.model.workload import Workload
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_DEP

    prof = _held(50)
    n = 12
    mp = mixed_profile(view(prof), prof.split(n))
    wl = Workload.from_profile(mp)
    sessions = sum(prof.split(n).values())
    spill = next(e.model.stats(sessions).loss_fraction
                 for e in fleet_models(wl, cycle_time(wl)).entries if e.c.name == "ptu.itpm")
    tr = trace_attempts(prof, n, horizon_s=1800.0, seed=7)
    on = tr.rows[:, T_DEP] == list(tr.deployments).index("ptu")
    engine = 1.0 - float((tr.rows[on, T_ADMITTED] > 0).mean())
    assert engine == pytest.approx(0.552, abs=0.005)
    assert spill == pytest.approx(engine, abs=0.03)


def test_25_held_batch_workers_against_the_simulator() -> None:
    """61 against a simulated 60 [59–61] (77 when the never-fitting prompts were read
    in the dam and in κ)."""
    from capacity.analytic.model import analyze

    assert_accurate(analyze(_held(25)).burst_ceiling, Recorded(60, 59, 61),
                    "25 held batch workers, the first call past the PTU's bucket")


@pytest.mark.xfail(strict=True, reason="conservative: 9 against a simulated 12 [12-13], "
                   "with the PTU's spill right (pay-as-you-go's share of it not taken "
                   "apart; it was 23, optimistic, while the spill was 43 % of 55 %)")
def test_50_held_batch_workers_against_the_simulator() -> None:
    from capacity.analytic.model import analyze

    assert_accurate(analyze(_held(50)).burst_ceiling, Recorded(12, 12, 13),
                    "50 held batch workers, the first call past the PTU's bucket")


def test_a_call_only_sometimes_past_the_depth_stays_in_the_dam() -> None:
    """Three-way fan-outs of U(30,000, 70,000)-token prompts at the 50,000-token bucket:
    half their draws never fit (counted in ``never``), but the calls stay in the dam and
    in κ (taken out, a review found the answer optimistic: the draws that fit are large
    too). A fixed 60,000-token prompt is out; the rest of its route is not."""
    from capacity.analytic.fleet import BucketSpill, fleet_models
    from capacity.analytic.model import cycle_time, outside_depth
    from capacity.model.workload import Workload

    prof = load_profile(
        [ROOT / "profiles" / "ptu-spillover.yaml"],
        ["session.turns.research.steps.1.parallel.call.input_tokens="
         "{uniform: [30000, 70000]}"])
    wl = Workload.from_profile(prof)
    m = next(e.model for e in fleet_models(wl, cycle_time(wl)).entries
             if e.c.name == "ptu.itpm")
    assert isinstance(m, BucketSpill)
    assert m.never == pytest.approx(0.3, abs=0.01)     # 3 of 5 calls, half their draws
    assert m.fitting is None
    c = next(x for x in Workload.from_profile(_held(10)).constraints
             if x.name == "ptu.itpm")
    out = [v is not None and outside_depth(v, c.depth) for v in c.costs.values()]
    assert out.count(True) == 1 and len(out) > 1
