"""A priority route's first deployment with a sliding request log: while the log is full
every call goes on to the rest of the fleet (:class:`capacity.analytic.fleet.HeadSpells`).

The two profiles are hunt records (benchmarks/hunt.py seeds 3088 and 166) whose simulated
N* the fleet model missed: 199 [198–201] against 223, and 146 [145–146] against 155 (20 ×
1 h searches, benchmarks/hunt/records.jsonl); ``benchmarks/session42_probes.py lock``
prints the engine's shares beside the model's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from capacity.analytic import fleet
from capacity.analytic.model import analyze
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
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
    # 3 % above the analytic answer the engine refuses far more than the target (storms
    # that hold the head full for minutes: 26-36 % of attempts); 3 % below hunt-166's,
    # nothing (hunt-3088's 199 is its simulated N* itself).
    for path, side in ((HONOURED, +1), (BACKOFF, +1), (BACKOFF, -1)):
        prof = load_profile(path)
        n = analyze(prof).burst_ceiling
        n = math.ceil(1.03 * n) if side > 0 else math.floor(0.97 * n)
        est = simulate(prof, n, replications=2, seed=1, workers=2).metrics[
            "attempt_429_fraction"]
        target = prof.targets.max_429_fraction
        assert (est.mean > 3 * target) if side > 0 else (est.mean <= target), (path.name, n)


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
    assert shares == sorted(shares) and shares[0] < 0.001 and shares[-1] > 0.4
    cap = spells.ceiling(0.03, 223)
    assert cap == 205 and spells.share(cap) <= 0.03 < spells.share(cap + 1)
    # Any search range past the answer finds it; one at or below it finds no cap.
    assert spells.ceiling(0.03, 206) == spells.ceiling(0.03, 400) == 205
    assert spells.ceiling(0.03, 205) is None and spells.ceiling(0.03, 0) is None


def test_spell_factor_at_the_edges() -> None:
    spells = _spells(HONOURED)
    # A share too small for 1 − P_h to hold (z ~ 8.5), none, or not a number.
    assert 0.0 < spells.spell_factor(1e-17, 5.0) < 1e-4     # τ = 0.42 s: F = 7.8e-5
    assert spells.spell_factor(1e-300, 0.0) == 1.0
    assert spells.spell_factor(math.nan, 5.0) == 0.0
    assert spells.spell_factor(1.0, 5.0) == pytest.approx((1 + 5 / 15) * math.exp(-5 / 15))


def _variant(change: Callable[[dict[str, Any]], None]) -> Profile:
    data = yaml.safe_load(HONOURED.read_text())
    change(data)
    return profile_from_dict(data)


def _answer(prof: Profile) -> tuple[int, fleet.HeadSpells | None]:
    wl = Workload.from_profile(prof)
    cyc = fleet.cycle_time(wl)
    return analyze(prof).burst_ceiling, fleet.head_spells(prof, fleet.fleet_models(wl, cyc),
                                                          cyc)


def _shared(d: dict[str, Any]) -> None:
    d["quotas"]["q0"]["models"] = ["a", "b"]
    d["deployments"]["b"]["quotas"] = ["q0", "q1"]


def _uncounted(d: dict[str, Any]) -> None:
    d["quotas"]["q0"]["rejected_count"] = False


def _head_named(d: dict[str, Any]) -> None:
    d["session"]["turns"]["t0-loop"]["steps"][-1]["call"]["model"] = "a"


def _daily(d: dict[str, Any]) -> None:
    d["quotas"]["q1"]["rpd"] = 10_000_000


def test_not_applied_where_the_head_is_not_a_counted_sliding_log_of_its_own() -> None:
    # ptu-spillover's head is a token bucket (its spill has a level law of its own).
    ptu = load_profile(Path(__file__).parents[1] / "profiles" / "ptu-spillover.yaml")
    assert _answer(ptu)[1] is None
    # A head whose quota b is charged on too (dropping a would change b's quotas); a log
    # that does not count its rejections (not every try is logged); a call naming the
    # head itself (the rest's profile would dangle): no cap, and no note of one.
    for change in (_shared, _uncounted, _head_named):
        prof = _variant(change)
        assert _answer(prof)[1] is None, change.__name__
        assert not any("full spells" in n for n in analyze(prof).notes)


def test_a_daily_limit_is_not_the_rests_memory() -> None:
    # b's own 5 s windows are what it takes to fill; a day-long limit that never binds
    # leaves the answer where it was.
    n, spells = _answer(_variant(_daily))
    assert spells is not None and spells.memory_s == 5.0 and n == 205


def test_sessions_mode_reports_the_same_ceiling_and_note() -> None:
    res = analyze(load_profile(HONOURED), sessions=150)
    assert res.burst_ceiling == 205
    assert any("full spells hold the route to 205" in n for n in res.notes)


def test_the_sweep_and_the_pause_range_read_the_spells_as_the_answer_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from capacity.whatif.sweep import sweep

    prof = load_profile(HONOURED)
    rows = sweep(prof, [204, 205, 206, 215], method="analytic").rows
    # Its model column is the spells' share where they bind; the grid's last N meeting the
    # target is the ceiling's 205 (it was 220: 0.51 % of attempts there).
    assert [r.meets_targets for r in rows] == [True, True, False, False]
    assert rows[-1].analytic_429_fraction == pytest.approx(_spells(HONOURED).share(215))
    sens = analyze(prof).sensitivity
    assert sens is not None
    monkeypatch.setattr(fleet, "head_spells", lambda *_: None)
    plain = analyze(load_profile(HONOURED)).sensitivity
    assert plain is not None
    # At both ends of the think time's range the same cap holds (99–480 → 89–430).
    assert sens.burst_ceiling_high < plain.burst_ceiling_high
    assert sens.burst_ceiling_low <= plain.burst_ceiling_low


def test_the_answer_says_what_holds_it_and_names_the_rests_binding() -> None:
    res = analyze(load_profile(HONOURED), sessions=215)
    sp = res.spells
    assert sp is not None and sp["sessions"] == 205 and sp["log"] == "q0.rpm"
    # The figures are the spells' own at the cap, and their product within the target.
    spells = _spells(HONOURED)
    assert sp["full_share"] == pytest.approx(spells.full_share(205))
    assert sp["share"] == pytest.approx(spells.share(205))
    assert sp["share"] <= 0.03 < spells.share(206)
    # The client's 429s come from the rest while the head is full: its worst constraint
    # binds, and the summary names the head's log, never "q1.tpm carries 205".
    assert res.binding.name == sp["rest_binding"] == "q1.tpm"
    assert "q0.rpm log" in res.summary() and "cuts that to" not in res.summary()
    assert res.to_dict()["spells"]["at_sessions"]["sessions"] == 215
    assert res.to_dict()["spells"]["at_sessions"]["share"] > 0.03


def test_the_report_gives_the_spells_figures_not_the_binding_rows_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from capacity.render.report import ceiling_renderable

    def text(res: Any) -> str:
        console = Console(width=200, record=True)
        console.print(ceiling_renderable(res))
        return console.export_text()

    out = text(analyze(load_profile(HONOURED), sessions=215))
    # The binding row's own figure at its 223 is not the fleet's: the line is left out.
    assert "At 223 sessions on" not in out and "turn away about 2.4% of attempts" in out
    assert "At 215 sessions:" in out and "full spells (its q0.rpm log found full by" in out
    monkeypatch.setattr(fleet, "head_spells", lambda *_: None)
    assert "At 223 sessions on q1.tpm" in text(analyze(load_profile(HONOURED)))


@pytest.mark.parametrize(("path", "n", "raised"),
                         [(HONOURED, 215, {"q1.rpm", "q1.tpm"}), (BACKOFF, 155, {"q1.rpm"})])
def test_size_raises_the_rest_for_the_spells_and_the_ceiling_carries_it(
        path: Path, n: int, raised: set[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from capacity.whatif.ceiling import size

    res = size(load_profile(path), n, method="analytic")
    assert {f"{d.quota}.{d.dimension}" for d in res.to_raise} == raised
    assert any("found full by" in note and "raised for it" in note for note in res.notes)
    # The raised rows say what they were sized for (their figures are the rest's alone).
    assert {f"{d.quota}.{d.dimension}" for d in res.dimensions
            if d.sized_for == "spells"} == raised
    assert all(d.to_dict().get("sized_for") == "spells" for d in res.to_raise)
    # The ceiling with the asked limits carries N — the same rule, read the other way
    # (the engine: 41.6 % → 3.5 % and 51.6 % → 0.4 % of attempts refused at N,
    # benchmarks/session43_probes.py size).
    after = analyze(load_profile(path, [d.set_path for d in res.to_raise]))
    assert n <= after.burst_ceiling <= n + 2
    # Within the ceiling nothing is asked; without the spells nothing was asked at N.
    assert not size(load_profile(path), analyze(load_profile(path)).burst_ceiling,
                    method="analytic").to_raise
    monkeypatch.setattr(fleet, "head_spells", lambda *_: None)
    assert not size(load_profile(path), n, method="analytic").to_raise


def test_size_by_simulation_raises_every_refusing_dimension_when_one_is_not_enough(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from capacity.whatif.ceiling import SimSettings, size

    # Without the spells the analytic size asks nothing, the engine disagrees (41.6 % of
    # attempts refused at 215), and b's rpm and tpm both refuse: 64× of the one under
    # most pressure is not enough, and the search raised no other ("no quota up to 64×
    # the analytic size carries 215 sessions"). It now raises them both.
    monkeypatch.setattr(fleet, "head_spells", lambda *_: None)
    res = size(load_profile(HONOURED), 215, method="simulate",
               sim=SimSettings(seed=1, replications=4, horizon_s=1800.0))
    assert {f"{d.quota}.{d.dimension}" for d in res.to_raise} == {"q1.rpm", "q1.tpm"}
    assert res.simulated is not None
    assert res.simulated.metrics["attempt_429_fraction"].hi <= 0.03


def test_held_populations_count_n_beside_them_in_the_spells_figures() -> None:
    # The honoured fleet with 10 held sessions beside N: the spells' words count N, the
    # saturation point's, and their figures are the mix's at N + 10.
    data = yaml.safe_load(HONOURED.read_text())
    data["populations"] = {"other": {"think_time": data["session"]["think_time"],
                                     "turns": data["session"]["turns"], "sessions": 10}}
    prof = profile_from_dict(data)
    res = analyze(prof, sessions=205)
    sp = res.spells
    assert sp is not None and sp["held"] == 10
    assert sp["sessions"] == res.burst_ceiling + 10
    assert f"holding the fleet to N = {res.burst_ceiling:,}" in res.summary()
    assert sp["at_sessions"]["sessions"] == 215 and sp["at_sessions"]["share"] > 0.03
    from capacity.whatif.ceiling import size

    note = " ".join(size(prof, 205, method="analytic").notes)
    assert "at N = 205 (215 sessions with the held ones)" in note


def test_the_html_report_says_what_holds_the_fleet() -> None:
    from capacity.render.html import report_page
    from capacity.whatif.sweep import sweep

    prof = load_profile(HONOURED)
    page = report_page(ceiling=analyze(prof), sweep=sweep(prof, [200, 205, 210],
                                                          method="analytic"),
                       compare=None, inputs=[], command="capacity report")
    assert 'data-key="spells"' in page and "q0.rpm log (sliding 15s)" in page
