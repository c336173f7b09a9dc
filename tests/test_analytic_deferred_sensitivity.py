"""The pause sensitivity (the ceilings at the think time's or cadence's two ends) is
computed when it is first read, once, and is the same as computing it at once: the
answer (N*) and the commands that read only N* do not pay for its two extra searches."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import capacity.analytic.fleet as fleet
import capacity.analytic.model as amodel
import capacity.analytic.populations as pops
from capacity.analytic.model import analyze
from capacity.cli.app import app
from capacity.model.dist import Distribution
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

ROOT = Path(__file__).resolve().parent.parent
# (profile, the module whose function computes its sensitivity, that function's name):
# a single deployment, a fleet behind routes, populations.
CASES = [
    (ROOT / "profiles" / "tool-agent.yaml", amodel, "_sensitivity"),
    (ROOT / "profiles" / "ptu-spillover.yaml", fleet, "_fleet_sensitivity"),
    ((ROOT / "profiles" / "web-research.yaml", ROOT / "examples" / "chat-and-batch.yaml"),
     pops, "pause_sensitivity"),
]


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Patch ``module.name`` to count its calls (the count in the returned list)."""
    calls = [0]
    real: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize(("path", "module", "name"), CASES,
                         ids=["single", "fleet", "populations"])
def test_computed_on_first_read_once(monkeypatch: pytest.MonkeyPatch,
                                     path: Path | tuple[Path, ...],
                                     module: Any, name: str) -> None:
    """``analyze`` leaves it; the first read computes it, later reads and copies made
    with ``replaced`` reuse it; a copy made before the read computes it for itself."""
    calls = _counting(monkeypatch, module, name)
    res = analyze(load_profile(path))
    assert calls[0] == 0
    copy = res.replaced(notes=(*res.notes, "a note"))
    assert calls[0] == 0
    first = res.sensitivity
    assert first is not None and calls[0] == 1
    assert res.sensitivity is first and calls[0] == 1
    assert copy.sensitivity == first and calls[0] == 2
    # dataclasses.replace reads every field: it computes it (the same value) at once.
    other = dataclasses.replace(analyze(load_profile(path)), method="analytic")
    assert calls[0] == 3 and other.sensitivity == first


def test_same_as_computed_at_once() -> None:
    """The deferred value is the eager computation's, to the last digit, after other
    analyses have run in between (the caches it reads are pure)."""
    path = ROOT / "profiles" / "tool-agent.yaml"
    res = analyze(load_profile(path))
    analyze(load_profile(ROOT / "profiles" / "web-research.yaml"))
    profile = load_profile(path)
    wl = Workload.from_profile(profile)
    eager = amodel._sensitivity(wl, profile.targets.max_429_fraction)
    assert eager is not None and res.sensitivity == eager
    assert res.to_dict()["sensitivity"] == eager.to_dict()


def test_check_does_not_compute_it_and_ceiling_prints_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``check`` reads N* only; ``ceiling --json`` carries the sensitivity."""
    calls = _counting(monkeypatch, amodel, "_sensitivity")
    path = str(ROOT / "profiles" / "tool-agent.yaml")
    out = CliRunner().invoke(app, ["check", path, "--sessions", "5", "--json"])
    assert out.exit_code == 0, out.output
    assert calls[0] == 0
    out = CliRunner().invoke(app, ["ceiling", path, "--method", "analytic", "--json"])
    assert out.exit_code == 0, out.output
    assert calls[0] == 1
    sens = json.loads(out.stdout)["sensitivity"]
    assert sens["burst_ceiling_low"] <= sens["burst_ceiling_high"]


def test_fixed_pause_has_none() -> None:
    """A fixed think time has no range: the deferred value is None."""
    profile = load_profile(ROOT / "profiles" / "tool-agent.yaml")
    fixed = profile.model_copy(update={"session": profile.session.model_copy(
        update={"think_time": Distribution.fixed(45.0, "duration")})})
    assert analyze(fixed).sensitivity is None


def test_an_error_computing_it_is_the_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ceiling`` computes it inside the command's error edge (CeilingResult.resolved):
    a user error raised there is one line and exit 2, not a traceback from the renderer."""
    from capacity.errors import CapacityError

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise CapacityError("no sensitivity here")
    monkeypatch.setattr(amodel, "_sensitivity", refuse)
    path = str(ROOT / "profiles" / "tool-agent.yaml")
    for extra in ([], ["--json"]):
        out = CliRunner().invoke(app, ["ceiling", path, "--method", "analytic", *extra],
                                 catch_exceptions=False)
        assert out.exit_code == 2, out.output
        assert "no sensitivity here" in out.output
