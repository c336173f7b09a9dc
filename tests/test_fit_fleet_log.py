"""capacity fit --quota-from a fleet profile on the request log of the mock serving it.

The mock logs the DEPLOYMENT that answered each call (ptu, paygo after a spill, mini
after a fallback); the fitted profile names the logical model (the route) at each call
site, fits one latency per model entry (ptu and paygo run the same model: pooled), copies
the fleet unchanged, and carries the original's analytic ceiling. The mock is a real
server on 127.0.0.1, port 0, always stopped; the load is a short client-routed loadtest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from capacity import load_profile
from capacity.analytic.model import analyze
from capacity.cli.app import app
from capacity.fit.jsonl import RequestLogWriter
from capacity.loadgen import LoadtestConfig, run_loadtest
from capacity.profile.schema import CallSpec, CallStep
from capacity.serve import ServeOptions, ServerThread

from .conftest import ROOT

PTU = ROOT / "profiles" / "ptu-spillover.yaml"
K = 25.0  # model seconds per wall second: 600 model seconds of load in ~24 s


def _fit(log: Path, out: Path, *extra: str) -> str:
    res = CliRunner().invoke(app, ["fit", str(log), "--quota-from", str(PTU), "-o", str(out),
                                   *extra])
    assert res.exit_code == 0, res.output
    return out.read_text(encoding="utf-8")


def _call(step: Any) -> CallSpec:
    """The call of a fitted step (a call, or the body of a parallel/optional/repeat)."""
    if isinstance(step, CallStep):
        return step.call
    block = getattr(step, type(step).__name__.removesuffix("Step").lower())
    assert block.call is not None, step
    return block.call  # type: ignore[no-any-return]


def test_spills_without_call_names_are_one_call_site(tmp_path: Path) -> None:
    """No call names in the log: calls are labelled by model, so a fan-out whose calls
    went to ptu and (spilled) to paygo was two labels — two steps of two deployments.
    Named by their route, they are one parallel step of gpt-4o."""
    lines = []
    for s in range(6):
        for t in range(5):
            t0 = 1.0e9 + s * 11.0 + t * 150.0
            deps = ["ptu", "ptu", "paygo"] if (s + t) % 2 else ["ptu", "ptu", "ptu"]
            calls = [("ptu", 1200, 150, 400, 0.0, 4.0)]
            calls += [(d, 6000 + 300 * k, 2000, 4000, 4.5, 60.0 + k) for k, d in enumerate(deps)]
            for dep, inp, out, mt, a, b in calls:
                lines.append(json.dumps({
                    "session": f"s{s}", "turn": t, "start": t0 + a, "end": t0 + b,
                    "model": dep, "input_tokens": inp, "output_tokens": out,
                    "max_tokens": mt, "ttft": 0.5}))
    log = tmp_path / "mock.jsonl"
    log.write_text("\n".join(lines) + "\n")
    text = _fit(log, tmp_path / "fitted.yaml")
    fitted = load_profile(tmp_path / "fitted.yaml")
    calls = [(_call(b).model, type(b).__name__) for t in fitted.session.turns.values()
             for b in t.steps]
    assert calls == [("gpt-4o", "CallStep"), ("gpt-4o", "ParallelStep")], calls
    assert set(fitted.models) == {"gpt-4o", "gpt-4o-mini"}  # no model named ptu or paygo
    assert "pooled calls of deployments paygo, ptu" in text
    assert fitted.routes == load_profile(PTU).routes


@pytest.fixture(name="logged_mock")
def _logged_mock(tmp_path: Path) -> Iterator[tuple[ServerThread, Path]]:
    log = tmp_path / "mock.jsonl"
    writer = RequestLogWriter(log)
    srv = ServerThread(load_profile(PTU), ServeOptions(time_scale=K, seed=5, log=writer))
    srv.start()
    try:
        yield srv, log
    finally:
        srv.close()
        writer.close()


def _complete_turns(log: Path, out: Path) -> int:
    """The log without each session's last turn: the run stops its sessions mid-turn, so
    that turn may be cut short (a partial turn would read as skipped steps)."""
    rows = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
    last: dict[str, tuple[float, str]] = {}
    for r in rows:
        last[r["session"]] = max(last.get(r["session"], (-1.0, "")), (r["start"], r["turn"]))
    kept = [r for r in rows if r["turn"] != last[r["session"]][1]]
    out.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    return len(rows) - len(kept)


def test_round_trip_through_the_mocks_log(logged_mock: tuple[ServerThread, Path],
                                          tmp_path: Path) -> None:
    srv, log = logged_mock
    original = load_profile(PTU)
    cfg = LoadtestConfig(target=srv.url, time_scale=K, warmup_s=0.0, duration_s=600.0,
                         drain_s=0.0, seed=11, route="client")
    point = run_loadtest(original, cfg, [30], predicted=False, ceiling=False,
                         check_lag=False).points[0]
    rows = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    served = {r["model"] for r in rows}
    assert {"ptu", "paygo"} <= served, served  # the log names deployments; some spilled
    clean = tmp_path / "complete.jsonl"
    dropped = _complete_turns(log, clean)
    text = _fit(clean, tmp_path / "fitted.yaml", "--time-scale", str(K))
    fitted = load_profile(tmp_path / "fitted.yaml")
    assert fitted.routes == original.routes
    assert fitted.deployments == original.deployments
    assert fitted.quotas == original.quotas
    assert set(fitted.models) == {"gpt-4o", "gpt-4o-mini"}
    models = {_call(b).model for t in fitted.session.turns.values() for b in t.steps}
    assert models == {"gpt-4o"}
    a, b = analyze(original), analyze(fitted)
    print(f"\nN=30 for 600 model s at K={K:g}: {len(rows)} logged calls "
          f"({sum(r['model'] == 'paygo' for r in rows)} on paygo, "
          f"{sum(r['model'] == 'mini' for r in rows)} on mini), {dropped} in last turns "
          f"dropped; counts {point.counts}\n"
          f"mean ceiling {a.mean_ceiling:.1f} -> {b.mean_ceiling:.1f}, burst "
          f"{a.burst_ceiling} -> {b.burst_ceiling} ({b.binding.quota})")
    assert "pooled calls of deployments paygo, ptu" in text
    assert b.mean_ceiling == pytest.approx(a.mean_ceiling, rel=0.10)
    assert b.burst_ceiling == pytest.approx(a.burst_ceiling, rel=0.10)


def test_a_deployment_two_routes_serve_keeps_its_name() -> None:
    """ptu served by gpt-4o and by a second route: which logical name a ptu call used is
    not in the log, so it stays the call's model (a valid target); paygo still maps."""
    from capacity.fit.writer import fleet_names

    prof = load_profile([PTU], overrides=["routes.direct.deployments=[ptu]"])
    fleet = fleet_names(prof, {"ptu", "paygo", "gpt-4o-mini", "unknown"})
    assert fleet is not None
    assert fleet.call == {"ptu": "ptu", "paygo": "gpt-4o"}
    assert fleet.model == {"ptu": "gpt-4o", "paygo": "gpt-4o"}
    assert fleet_names(load_profile(PTU), {"gpt-4o", "gpt-4o-mini"}) is None
