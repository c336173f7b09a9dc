"""Storms below the storm threshold (session 55): a counted sliding log whose backoff
retries meet it full again turns calls away in spells that end by themselves, which the
healthy share leaves out. ``tests/data/sliding-counted-backoff-substorms.yaml`` (from
hunt-3093): a 2 s log of 13 requests, one retry ~0.27 s later, the threshold at 185
sessions; the engine turns away 0.90 % of attempts at 154 sessions (200 × 1 h), the
healthy share 0.62 %."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmarks.analytic_accuracy import empty_stores
from capacity.analytic import window
from capacity.analytic.model import constraint_model, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.sim.engine import simulate
from tests._accuracy import assert_profile_accurate

DATA = Path(__file__).parent / "data"
PROFILE = DATA / "sliding-counted-backoff-substorms.yaml"


@pytest.fixture(autouse=True)
def _fresh_stores() -> Iterator[None]:
    """Models built with a switch flipped stay out of the stores other tests read."""
    yield
    empty_stores()


def _log(profile: object = None) -> window.ClumpWindowModel:
    p = load_profile(PROFILE) if profile is None else profile
    wl = Workload.from_profile(p)  # type: ignore[arg-type]
    model = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    inner = getattr(model, "inner", model)
    assert isinstance(inner, window.ClumpWindowModel)
    return inner


def test_spells_below_the_threshold_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 154 sessions (below the threshold) the share with the spells is the engine's
    to within a fifth; the healthy share alone is at least a quarter under it."""
    p = load_profile(PROFILE)
    eng = simulate(p, 154, replications=200, seed=2, horizon_s=3600.0)
    measured = eng.metrics["attempt_429_fraction"].mean
    log = _log(p)
    assert log.storm_threshold() > 154
    assert log.storms_below_threshold
    share = log.attempt_share(154)["attempt"]
    assert share == pytest.approx(measured, rel=0.2)
    monkeypatch.setattr(window, "_SUB_STORMS", False)
    healthy = _log(p).attempt_share(154)["attempt"]
    assert healthy < 0.75 * measured < share


def test_the_ceiling_meets_the_target() -> None:
    """162 against the simulated 154 [151-158] without the spells."""
    assert_profile_accurate(load_profile(PROFILE), max_sessions=200)


def test_backoff_retries_logged_when_they_come_shorten_the_spells() -> None:
    """Logged with their refusal the spell at 154 sessions is ~10 attempts; logged when
    they come, ~8 (the engine's spells: 6.4, python benchmarks/session55_probes.py
    substorms)."""
    log = _log()
    pre = window.storm_launches(log, 154.0)

    def arrivals(dt: float, steps: int, q: int, o: float) -> np.ndarray:
        return np.broadcast_to(pre, (steps, pre.size)).copy()

    at_once = window.storm_chain(log, pre, arrivals)
    delayed = window.storm_chain(log, pre, arrivals, delayed=True)
    assert 0.6 * at_once < delayed < 0.9 * at_once


@pytest.mark.parametrize("where", [1.0, 1.004, 1.2])
def test_at_and_above_the_threshold_retries_are_logged_at_once(
        where: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the threshold a first admission does not end a storm (its retries still to
    come fill the log again): the chain logs them at once, as it did — also in the
    storm-grid cell across the threshold (its grid point below it, some of its N above:
    a review found 185-187 sessions read with the delayed chain) — and below it where
    the cell lies wholly below."""
    n_u = _log().storm_threshold()
    n = round(where * n_u)
    cell = window._STORM_GRID ** window.storm_cell(n)
    assert (cell * np.sqrt(window._STORM_GRID) > n_u) == (where >= 1.0)
    now = _log().storm_size(n)
    monkeypatch.setattr(window, "_SUB_STORMS", False)
    before = _log().storm_size(n)
    assert now == before
    low = round(0.8 * n_u)
    monkeypatch.setattr(window, "_SUB_STORMS", True)
    delayed = _log().storm_size(low)
    monkeypatch.setattr(window, "_SUB_STORMS", False)
    assert delayed < _log().storm_size(low)


def test_retries_due_in_one_step_come_one_a_step() -> None:
    """Backoffs shorter than a step (a 0.05 s initial delay on a 30 s window's steps)
    would put several retries on one step, where a kernel row holds one first launch's
    retry: each retry comes a step after the one before, and every row is a law."""
    retry = window.RetryModel(max_retries=3, honour_retry_after=False,
                              counts_rejected=True, backoff_s=(0.06, 0.12, 0.2))
    delays = window._retry_delays(retry, 0.25)
    assert delays == [1, 2, 3]
    rng = np.random.default_rng(3)
    arr = rng.uniform(0.0, 0.8, (40, 3))
    o_law = np.array([0.6, 0.4])
    ups, tots, _ = window._delayed_kernels(arr, 0.25, delays, o_law, 5 * 2 + 1)
    rows = ups.copy()
    rows[:, 0] += 1.0 - tots
    assert rows.sum(axis=1) == pytest.approx(np.ones(40), abs=1e-12)
    assert (rows >= -1e-15).all()


def test_delayed_kernels_are_the_streams_convolved() -> None:
    """Each step's law is the fresh launches' and each retry stream's (the launches of
    ``d`` steps before) convolved; the first launch's retry comes for certain at ``d``."""
    rng = np.random.default_rng(5)
    steps, k1, d = 12, 4, 3
    arr = rng.uniform(0.0, 2.0, (steps, k1))
    arr[:, 0] = 0.0
    dt = 0.05
    o_law = np.array([0.5, 0.3, 0.2])
    ups, tots, units = window._delayed_kernels(arr, dt, [d], o_law, 3 * (k1 - 1) + 1)
    for i in range(steps):
        fresh = np.concatenate([[1.0 - arr[i].sum() * dt], arr[i, 1:] * dt])
        late = (np.concatenate([[1.0 - arr[i - d].sum() * dt], arr[i - d, 1:] * dt])
                if i >= d else np.array([1.0]))
        law = np.convolve(fresh, late)
        if i == d:
            law = np.convolve(law, np.concatenate([[0.0], o_law]))
        got = ups[i].copy()
        got[0] += 1.0 - tots[i]
        assert got[: law.size] == pytest.approx(law[: got.size], abs=1e-15)
        assert got.sum() == pytest.approx(1.0, abs=1e-12)
        ks = np.arange(k1)
        want = arr[i] @ ks + (arr[i - d] @ ks if i >= d else 0.0)
        want += (o_law @ np.arange(1, 4) / dt) if i == d else 0.0
        assert units[i] == pytest.approx(want, rel=1e-12)


def test_compiled_walk_is_the_numpy_walk_on_delayed_fanouts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Fan-outs of 9-12 calls, two backoff retries: the delayed kernels' offsets are not
    multiples of 1 + m (the numpy walk's lattice shortcut must not take them)."""
    call = {"model": "m", "input_tokens": 500, "output_tokens": 100}
    p = profile_from_dict({
        "name": "fanout-substorms",
        "models": {"m": {"ttft": "0.5s", "tokens_per_second": 50}},
        "quotas": {"q": {"models": ["m"], "rpm": 2400,
                         "enforcement": {"type": "sliding_window", "window": "5s"}}},
        "session": {"think_time": {"exponential": "60s"}, "turns": {"t": {"steps": [
            {"call": call}, {"parallel": {"count": {"uniform": [9, 12]}, "call": call}}]}}},
        "retry": {"max_retries": 2, "honour_retry_after": False},
        "targets": {"max_429_fraction": 0.02}})
    log = _log(p)
    n = 0.8 * log.storm_threshold()
    assert log.storms_below_threshold
    compiled = window._storm_size(log, n)
    monkeypatch.setattr(window, "_kernels", object())
    assert window._storm_size(log, n) == pytest.approx(compiled, rel=1e-9)
    assert compiled > 0.0
