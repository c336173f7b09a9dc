"""What the analytic answer does not model is said beside it, never silently wrong (the
hunt: web-research with a 95 s p95 turn-latency target — below its unthrottled p95 of
98.5 s — was analysed at 42 sessions while the simulated search found 0; a paced profile
was analysed as if unpaced)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from capacity.analytic.model import _analyze, analyze
from capacity.profile.loader import load_profile, profile_from_dict

WEB = Path(__file__).resolve().parents[1] / "profiles" / "web-research.yaml"


def _web(**extra: Any) -> Any:
    data = load_profile(WEB).model_dump(mode="json", exclude_none=True)
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return profile_from_dict(data)


def test_latency_target_the_turn_alone_misses_gives_zero() -> None:
    r = analyze(_web(targets={"p95_turn_latency": 95.0}))
    assert r.cycle.turn_latency_p95_s > 95.0
    assert r.burst_ceiling == 0 and r.saturation_point == 0 and r.latency_bound
    assert r.mean_ceiling == pytest.approx(analyze(_web()).mean_ceiling)  # the napkin stays
    assert any("p95 turn-latency target of 95s" in n for n in r.notes)
    assert r.to_dict()["latency_bound"] is True


def test_reachable_latency_target_leaves_the_quota_answer() -> None:
    r = analyze(_web(targets={"p95_turn_latency": 99.0}))
    plain = analyze(_web())
    assert r.burst_ceiling == plain.burst_ceiling > 0 and not r.latency_bound
    assert r.notes == plain.notes


def test_pacing_is_said_outside_the_model() -> None:
    # Modelled as a queue without populations or routes (tests/test_analytic_pacing.py);
    # with populations it is said outside the model.
    r = analyze(_web(pacing={"concurrency": 10}))
    assert any("pacing" in n and "modelled as a queue" in n for n in r.notes)
    assert not any("pacing" in n for n in analyze(_web()).notes)
    data = _web(pacing={"concurrency": 10}).model_dump(mode="json", exclude_none=True)
    data["populations"] = {"chat": {**data["session"], "share": 0.25}}
    r = analyze(profile_from_dict(data))
    assert any("pacing" in n and "--method simulate" in n for n in r.notes)


def test_cli_check_gate_fails_on_an_unreachable_latency_target() -> None:
    args = [sys.executable, "-m", "capacity", "check", str(WEB), "--sessions", "1",
            "--set", "targets.p95_turn_latency=95s", "--json"]
    res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert b"Traceback" not in res.stderr.encode()
    out = subprocess.run([sys.executable, "-m", "capacity", "ceiling", str(WEB), "--method",
                          "analytic", "--set", "targets.p95_turn_latency=95s", "--json"],
                         capture_output=True, text=True, timeout=120)
    data = json.loads(out.stdout)
    assert data["saturation_point"] == 0 and data["latency_bound"] is True


def test_simulated_head_names_the_latency_target_when_it_alone_binds() -> None:
    """20% slower generation: the simulated search stops at 0 on the latency target alone,
    and the head line says so rather than naming the quota."""
    out = subprocess.run([sys.executable, "-m", "capacity", "ceiling", str(WEB), "--seed", "1",
                          "--replications", "4", "--horizon", "30m", "-q", "--set",
                          "models.gpt-4o.tokens_per_second=28"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "0 sessions (simulated; the p95 turn-latency target binds first)" in text


def test_every_command_names_the_latency_target_as_the_binding() -> None:
    # The table of `ceiling` said the target binds; check ("binding deployment.rpm"),
    # compare's binds column, ceiling --json's binding_constraint and summary ("cuts
    # that to 0"), sweep's header and size (no note) named the quota.
    from capacity.whatif.ceiling import CompareResult, check, size
    from capacity.whatif.sweep import sweep

    prof = _web(targets={"p95_turn_latency": 1.0})
    r = analyze(prof)
    assert r.binding_name == "targets.p95_turn_latency"
    latency = {"quota": None, "dimension": "p95_turn_latency"}
    assert r.to_dict()["binding_constraint"] == latency
    assert "cuts" not in r.summary() and "no number of sessions meets it" in r.summary()
    c = check(r, 5, "analytic")
    assert c.binding == "targets.p95_turn_latency" and c.to_dict()["binding_constraint"] == latency
    assert check(r, 5, "mean").binding == "deployment.rpm"  # the napkin ignores latency
    rows = CompareResult(("web", "lat"), (analyze(_web()), r)).rows()
    assert [x["binding_constraint"] for x in rows] == [
        {"quota": "deployment", "dimension": "rpm"}, latency]
    sw = sweep(prof, [5, 10], method="analytic")
    assert sw.binding == "targets.p95_turn_latency" and sw.saturation_point is None
    assert sw.to_dict()["binding_constraint"] == latency
    assert "no quota meets it" in size(prof, 10, method="analytic").summary()
    plain = analyze(_web())
    assert plain.binding_name == "deployment.rpm" and check(plain, 5, "analytic").binding == (
        "deployment.rpm")


def test_the_sweep_reads_a_quota_share_of_all_attempts_as_the_ceiling_does() -> None:
    """The binding quota sees the turns' later calls only (the first is on an unlimited
    model): its 429s are a share of all attempts in the target, the ceiling and the
    simulator. The sweep's model column gave them as a share of the quota's own attempts
    (5.9 % at 22 sessions where `capacity ceiling --sessions 22` said 5.0 %, the ceiling 22
    at a 5 % target but the sweep's grid 20)."""
    from capacity.whatif.sweep import sweep

    prof = load_profile(Path(__file__).resolve().parent / "data"
                        / "cadence-restart-elsewhere.yaml")
    grid = [20, 22, 24]
    rows = sweep(prof, grid, method="analytic").rows
    for n, row in zip(grid, rows, strict=True):
        at = analyze(prof, sessions=n)
        (binding,) = [c for c in at.constraints if c.at_sessions is not None
                      and c.at_sessions.loss_fraction > 0]
        assert binding.at_sessions is not None
        assert abs(row.analytic_429_fraction - binding.at_sessions.loss_fraction) < 1e-12, n


def _web_think(think: Any, **retry: Any) -> Any:
    data = load_profile(WEB).model_dump(mode="json", exclude_none=True)
    data["session"].pop("cadence")
    data["session"]["think_time"] = think
    data["retry"] = {**data.get("retry", {}), "max_retries": 0, **retry}
    return profile_from_dict(data)


def _locks(r: Any) -> bool:
    return any("nearly constant" in n and "--method simulate" in n for n in r.notes)


def test_a_nearly_constant_think_time_is_said_to_lock_phases() -> None:
    # A failed turn ends early; with a constant think time its session keeps the head
    # start, so refused sessions can return together (docs/models.md, "A fixed think time"); the
    # note is a caveat, said wherever the cycle barely varies.
    fixed = analyze(_web_think("150s"))
    assert _locks(fixed)
    assert _locks(analyze(_web_think({"uniform": ["145s", "155s"]})))
    # The note says, it does not move the answer.
    assert fixed.burst_ceiling == _analyze(_web_think("150s"), None, None).burst_ceiling
    # A spread think time scatters the phases again; a cadence keeps its own clock.
    assert not _locks(analyze(_web_think({"exponential": "150s"})))
    assert not _locks(analyze(_web_think({"uniform": ["30s", "270s"]})))
    assert not _locks(analyze(_web()))
    # Retried, sessions refused together wait out their retries together and come back
    # together (hunt-2012; in the hunt, fixed think times with retries are the pace most
    # often more than 5 % optimistic): said too, with what a refusal does there.
    retried = analyze(_web_think("150s", max_retries=2))
    assert _locks(retried)
    assert any("refused calls are retried" in n for n in retried.notes)
    assert not any("not retried" in n for n in retried.notes)
    assert not _locks(analyze(_web_think({"exponential": "150s"}, max_retries=2)))
    # Not retried, a refusal that takes as long as a turn saves the session nothing.
    assert not _locks(analyze(_web_think("150s", rejection_latency="200s")))
    assert _locks(analyze(_web_think("150s", rejection_latency="200s", max_retries=2)))
    # Nothing is refused behind a pacer (its queue waits instead), and a latency target
    # that already sets the ceiling to 0 leaves nothing to be optimistic about.
    assert not _locks(analyze(_web_think("150s").model_copy(
        update={"pacing": _web(pacing={"concurrency": 10}).pacing})))
    data = _web_think("150s").model_dump(mode="json", exclude_none=True)
    data["targets"] = {**data.get("targets", {}), "p95_turn_latency": 95.0}
    bound = analyze(profile_from_dict(data))
    assert bound.latency_bound and not _locks(bound)


def test_the_phase_lock_note_names_the_population_whose_think_time_is_constant() -> None:
    data = _web_think({"exponential": "150s"}).model_dump(mode="json", exclude_none=True)
    data["populations"] = {"steady": {**data["session"], "think_time": "150s",
                                      "share": 0.5}}
    notes = [n for n in analyze(profile_from_dict(data)).notes if "nearly constant" in n]
    assert len(notes) == 1 and "population 'steady'" in notes[0]


def test_check_and_compare_carry_the_ceilings_notes(tmp_path: Path) -> None:
    # A CI gate that passes on an answer the model calls optimistic must say so: `check`
    # printed the notes only when a simulation was skipped, and neither its JSON nor
    # `compare` had them.
    import yaml

    prof = tmp_path / "locked.yaml"
    prof.write_text(yaml.safe_dump(_web_think("150s").model_dump(mode="json",
                                                                 exclude_none=True)))
    cli = [sys.executable, "-m", "capacity"]
    res = subprocess.run([*cli, "check", str(prof), "--sessions", "1", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    notes = json.loads(res.stdout)["notes"]
    assert any("nearly constant" in n for n in notes)
    assert [ln for ln in res.stderr.splitlines() if "nearly constant" in ln]
    # Text: stdout stays the gate's one line, the notes go to stderr.
    res = subprocess.run([*cli, "check", str(prof), "--sessions", "1"],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.startswith("PASS") and "nearly constant" not in res.stdout
    assert res.stderr.startswith("note: Think time 2.5m is nearly constant")
    # The napkin is not the model: its gate carries none of the model's notes.
    res = subprocess.run([*cli, "check", str(prof), "--sessions", "1", "--method", "mean",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(res.stdout)["notes"] == [] and "note:" not in res.stderr
    # compare: per variant in JSON; in the table each note once, named by its variants.
    args = [*cli, "compare", str(prof), "--scenario",
            "spread:session.think_time={exponential: 150s}"]
    rows = json.loads(subprocess.run([*args, "--json"], capture_output=True, text=True,
                                     timeout=120).stdout)["variants"]
    assert [any("nearly constant" in n for n in r["notes"]) for r in rows] == [True, False]
    text = " ".join(subprocess.run(args, capture_output=True, text=True,
                                   timeout=120).stdout.split())
    assert f"{rows[0]['name']}: Think time 2.5m is nearly constant" in text


def test_the_phase_lock_note_says_what_is_steady_and_what_a_refusal_does() -> None:
    # An exponential think time after long, steady turns leaves the cycle steady: the note
    # says the cycle is, not the think time; and a turn that goes on when refused does
    # not end early (tests/data/bucket-continue-loop.yaml: 74 s turns, Exp(11 s) think).
    data = Path(__file__).parent / "data" / "bucket-continue-loop.yaml"
    notes = [n for n in analyze(load_profile(data)).notes if "nearly constant" in n]
    assert len(notes) == 1
    assert notes[0].startswith("The cycle (think time exponential")
    assert "goes on without the refused call's time" in notes[0]
    assert "ends early" not in notes[0]
