"""A fixed request window with retries defers a refused turn's later calls (session 55):
the window is full from its crossing to its end, so a turn whose call it refuses makes
its next call in a later window — its calls past the crossing are not all refused.
``tests/data/fixed-window-chain-deferred.yaml`` (from hunt-3041): two short calls 0.5 s
apart, 60 s windows of 76 requests, the SDK's retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.analytic_accuracy import empty_stores
from capacity.analytic import window
from capacity.analytic.model import analyze, constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.search import find_saturation
from capacity.sim.engine import simulate

DATA = Path(__file__).parent / "data"
PROFILE = DATA / "fixed-window-chain-deferred.yaml"


@pytest.fixture(autouse=True)
def _fresh_stores() -> Iterator[None]:
    """Models built with a switch flipped stay out of the stores other tests read."""
    yield
    empty_stores()


def _log(p: Profile) -> window.ClumpWindowModel:
    empty_stores()
    wl = Workload.from_profile(p)
    model = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    inner = getattr(model, "inner", model)
    assert isinstance(inner, window.ClumpWindowModel)
    return inner


def _variant(**retry: Any) -> Profile:
    data = yaml.safe_load(PROFILE.read_text())
    data["retry"] = retry
    return profile_from_dict(data)


def test_later_calls_past_the_crossing_are_deferred(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 52 sessions the engine refuses 0.46 % of attempts (300 × 1 h); every call
    past the crossing refused said 0.92 %, the turns' first ones there 0.55 %."""
    p = load_profile(PROFILE)
    measured = simulate(p, 52, replications=300, seed=7, horizon_s=3600.0).metrics[
        "attempt_429_fraction"].mean
    now = _log(p).attempt_share(52)["attempt"]
    monkeypatch.setattr(window, "_DEFERRED_STAGES", False)
    before = _log(p).attempt_share(52)["attempt"]
    assert now == pytest.approx(measured, rel=0.25)
    assert before > 1.6 * measured


@pytest.mark.parametrize("retry", [
    {},                                                     # the SDK's: told, abort
    {"honour_retry_after": False},                          # backing off, abort
    {"on_exhausted": "continue"},                           # told, then goes on
])
def test_one_call_a_turn_has_nothing_to_defer(retry: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    data = yaml.safe_load(PROFILE.read_text())
    data["session"]["turns"]["chain"]["steps"] = data["session"]["turns"]["chain"][
        "steps"][:1]
    data["retry"] = retry
    p = profile_from_dict(data)
    now = _log(p).attempt_share(52)
    monkeypatch.setattr(window, "_DEFERRED_STAGES", False)
    assert _log(p).attempt_share(52) == now


def test_a_turn_going_on_after_its_backoffs_is_not_deferred(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``on_exhausted: continue`` with retries that back off into the full window: the
    turn's next call comes once they are spent, in the same window — refused there."""
    p = _variant(honour_retry_after=False, on_exhausted="continue")
    now = _log(p).attempt_share(52)
    monkeypatch.setattr(window, "_DEFERRED_STAGES", False)
    assert _log(p).attempt_share(52) == now
    told = _variant(on_exhausted="continue")                 # told: the next window
    before = _log(told).attempt_share(52)["attempt"]
    monkeypatch.setattr(window, "_DEFERRED_STAGES", True)
    assert before > 1.3 * _log(told).attempt_share(52)["attempt"]


def test_the_ceiling_moves_towards_the_simulated_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """52 -> 53 against the simulated 55 [54-55] (seed 1, 20 × 1 h): closer, and never
    above it (the rest of the gap is the one-call turns' own: 0.080 % against the
    engine's 0.069 % at 52 sessions, python benchmarks/session55_probes.py deferred)."""
    p = load_profile(PROFILE)
    empty_stores()
    now = analyze(p).burst_ceiling
    monkeypatch.setattr(window, "_DEFERRED_STAGES", False)
    empty_stores()
    before = analyze(load_profile(PROFILE)).burst_ceiling
    sat = find_saturation(p, now - 4, now + 6, seed=1, replications=20)
    assert before < now <= sat.n_star
