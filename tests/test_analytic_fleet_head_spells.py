"""A priority route's first deployment with a sliding request log: while the log is full
every call goes on to the rest of the fleet (:class:`capacity.analytic.fleet.HeadSpells`).

The two profiles are hunt records (benchmarks/hunt.py seeds 3088 and 166) whose simulated
N* the fleet model missed: 199 [198–201] against 223, and 146 [145–146] against 155 (20 ×
1 h searches, benchmarks/hunt/records.jsonl); ``benchmarks/session42_probes.py lock``
prints the engine's shares beside the model's.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from capacity.analytic import fleet
from capacity.analytic.model import analyze
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.sim.engine import simulate

DATA = Path(__file__).parent / "data"
HONOURED = DATA / "fleet-head-spells-honoured.yaml"
BACKOFF = DATA / "fleet-head-spells-backoff.yaml"


def _spells(path: Path) -> fleet.HeadSpells:
    prof = load_profile(path)
    wl = Workload.from_profile(prof)
    cyc = fleet.cycle_time(wl)
    spells = fleet.head_spells(prof, fleet.fleet_models(wl, cyc), cyc)
    assert spells is not None
    return spells


@pytest.mark.parametrize(("path", "simulated", "before"),
                         [(HONOURED, 199, 223), (BACKOFF, 146, 155)])
def test_the_heads_full_spells_bring_the_answer_to_the_simulated_one(
        path: Path, simulated: int, before: int, monkeypatch: pytest.MonkeyPatch) -> None:
    res = analyze(load_profile(path))
    assert abs(res.burst_ceiling - simulated) <= 0.031 * simulated   # 205, 143
    assert any("full spells hold the route" in n for n in res.notes)
    # Without them the fleet model read the head's overflow as a thinned stream: the rest
    # never takes the whole route, and the answer was the head's mean ceiling or past it.
    monkeypatch.setattr(fleet, "head_spells", lambda *_: None)
    assert analyze(load_profile(path)).burst_ceiling == before


def test_the_engine_agrees_either_side_of_the_answer() -> None:
    # 3 % above the answer the engine refuses far more than the target (storms that hold
    # the head full for minutes: 26-36 % of attempts); 3 % below, nothing.
    for path, n, over in ((HONOURED, 211, True), (BACKOFF, 148, True),
                          (BACKOFF, 139, False)):
        prof = load_profile(path)
        est = simulate(prof, n, replications=2, seed=1, workers=2).metrics[
            "attempt_429_fraction"]
        target = prof.targets.max_429_fraction
        assert (est.mean > 3 * target) if over else (est.mean <= target), (path.name, n)


def test_the_rest_is_the_fleet_without_the_head() -> None:
    spells = _spells(HONOURED)
    rest = spells.rest_profile
    assert spells.head == "a" and set(rest.deployments) == {"b"}
    assert set(rest.quotas) == {"q1"} and rest.routes["m"].targets() == [("b", 1.0)]
    # The rest alone carries ~117 sessions (its own analysis, as `capacity ceiling` gives
    # it for the profile with a taken out); the head's 15 s log and b's 5 s windows.
    assert analyze(rest).burst_ceiling == 117
    # One model behind a and b: the rest's cycle is the fleet's, not sampled again — the
    # same answer.
    assert spells.rest_cycle is not None and spells.rest.burst_ceiling == 117
    assert spells.window_s == 15.0 and spells.memory_s == 5.0
    # Past that the rest turns most attempts away carrying the route alone.
    assert spells.rest_share(204) > 0.5


def test_spell_factor() -> None:
    spells = _spells(HONOURED)
    # No memory: every spell counts; a log full half the time or more: τ = W.
    assert spells.spell_factor(0.01, 0.0) == 1.0
    assert spells.spell_factor(0.7, 15.0) == pytest.approx(2.0 * math.exp(-1.0))
    assert spells.spell_factor(0.0, 5.0) == 0.0
    # Rarer spells are shorter (τ = W·2/z²): less of them outlasts the rest's memory.
    f = [spells.spell_factor(p, 5.0) for p in (0.3, 0.03, 0.003, 3e-5)]
    assert f == sorted(f, reverse=True) and f[-1] < 0.3       # z = 4: τ = 1.9 s, F = 0.25
    # A 1 s log feeding a rest that remembers 15 s (hunt-3008): nothing binds.
    short = fleet.HeadSpells("m", "a", spells.rest_profile, None, spells.entries, 1.0, 15.0)
    assert short.spell_factor(0.03, 15.0) < 1e-5


def test_the_share_rises_with_load_and_the_ceiling_is_its_largest_within() -> None:
    spells = _spells(HONOURED)
    shares = [spells.share(n) for n in (190, 199, 205, 210, 223)]
    assert shares == sorted(shares) and shares[0] < 0.001 < 0.03 < shares[-1]
    cap = spells.ceiling(0.03, 223)
    assert cap == 205 and spells.share(cap) <= 0.03 < spells.share(cap + 1)
    assert spells.ceiling(0.03, cap) is None          # below it nothing binds


def test_not_applied_where_the_head_is_not_a_sliding_request_log_of_its_own() -> None:
    # ptu-spillover's head is a token bucket (its spill has a level law of its own).
    ptu = load_profile(Path(__file__).parents[1] / "profiles" / "ptu-spillover.yaml")
    wl = Workload.from_profile(ptu)
    cyc = fleet.cycle_time(wl)
    assert fleet.head_spells(ptu, fleet.fleet_models(wl, cyc), cyc) is None
    # A head sharing its quota with another deployment: dropping it would change the
    # rest's quota too.
    prof = load_profile(HONOURED)
    shared = prof.model_copy(update={"quotas": {
        **prof.quotas, "q0": prof.quotas["q0"].model_copy(update={"models": ["a", "b"]})}})
    wl = Workload.from_profile(shared)
    cyc = fleet.cycle_time(wl)
    assert fleet.head_spells(shared, fleet.fleet_models(wl, cyc), cyc) is None
