"""Client-side pacing in the analytic model (capacity/analytic/pacing.py): the pacer is a
queue in front of the provider, and its waits — not 429s — set N through the p95
turn-latency target. Pinned against the simulated search (seed 1, 20 replications), with
the accuracy table's rule: within 3 % or inside the CI, never more than 5 % optimistic.
Before the model the analytic answer ignored the pacer: 42 on both web-research
profiles (simulated 69 and 6), 20 on the tool-agent one (simulated 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from capacity.analytic.model import analyze
from capacity.analytic.pacing import PacedQueue, convolve_power, hold_law
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.search import find_saturation
from capacity.sim.engine import simulate

from ._accuracy import assert_accurate

DATA = Path(__file__).parent / "data"
RPM = DATA / "paced-rpm.yaml"
CONC = DATA / "paced-concurrency.yaml"
THINK = DATA / "paced-think-time.yaml"


@pytest.mark.parametrize("path", [RPM, CONC, THINK], ids=lambda p: p.stem)
def test_paced_ceiling_meets_accuracy_target(path: Path) -> None:
    prof = load_profile(path)
    r = analyze(prof)
    sat = find_saturation(prof, max(1, r.burst_ceiling - 3), r.burst_ceiling + 3, seed=1,
                          replications=20, max_sessions=80)
    assert_accurate(r.burst_ceiling, sat, path.stem)
    assert any("modelled as a queue" in n for n in r.notes)
    assert not any("--method simulate" in n for n in r.notes)


def test_rate_pacer_waits_match_simulated_waits() -> None:
    """The MVA's mean wait per call against the engine's measured pacing wait, on the
    think-time profile near its ceiling (closed-loop feedback: the cycle stretches)."""
    prof = load_profile(THINK)
    q = PacedQueue(Workload.from_profile(prof))
    for n in (10, 16):
        law = q.rate_law(n)
        assert law is not None
        model = law.p * law.mean
        sim = simulate(prof, n, replications=8, seed=1).metrics["pacing_wait_mean_s"].mean
        assert model == pytest.approx(sim, rel=0.15), (n, model, sim)


def test_hold_law_and_its_convolution() -> None:
    """A session holding one call half of its cycle: the law of 3 sessions is binomial."""
    prof = load_profile(CONC)
    q = PacedQueue(Workload.from_profile(prof))
    w = q.turns.base
    p = hold_law(w, q.turns.cycle(w.latency))
    assert p.sum() == pytest.approx(1.0)
    # A turn holds at most 3 calls at once (the fan-out); on average the session holds
    # its calls' summed latency per cycle.
    assert p.size == 4
    held = float(np.nansum(w.service)) / w.latency.size / q.turns.cycle(w.latency)
    assert float(np.dot(np.arange(4), p)) == pytest.approx(held, rel=1e-6)
    b = convolve_power(np.array([0.5, 0.5]), 3)
    assert b == pytest.approx([1 / 8, 3 / 8, 3 / 8, 1 / 8])


def _web(**extra: Any) -> Any:
    data = load_profile(RPM).model_dump(mode="json", exclude_none=True)
    data.pop("pacing")
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return profile_from_dict(data)


def test_without_a_latency_target_the_pacer_answers_the_search_bound() -> None:
    """No latency target and a pacer that keeps the quota within the 429 target: nothing
    bounds N, and the answer is the simulated search's own cap, said in the notes."""
    data = load_profile(CONC).model_dump(mode="json", exclude_none=True)
    data["targets"].pop("p95_turn_latency")
    r = analyze(profile_from_dict(data))
    cap = int(r.mean_ceiling / (1.0 - 0.01)) + 1
    assert r.burst_ceiling == cap
    assert any("Neither target binds" in n for n in r.notes)


def test_a_pacer_faster_than_the_quota_leaves_the_quota_answer() -> None:
    """400 calls/min against 150 RPM: the pacer never holds the quota's bursts back, so
    the quota's own (unpaced) ceiling stands, and the note says so."""
    plain = analyze(_web())
    r = analyze(_web(pacing={"rpm": 400, "burst": 1.0}))
    assert r.burst_ceiling == plain.burst_ceiling
    assert any("unpaced ceiling" in n for n in r.notes)


def test_the_answer_names_the_pacers_queue_not_the_quota() -> None:
    """The head line and summary say the p95 target (the pacer's waits) sets N, not the
    quota's bursts (which the pacer keeps within its 429 target)."""
    r = analyze(load_profile(CONC))
    assert r.latency_binds and not r.latency_bound
    assert "its waits set N" in r.summary() and "burst-aware model at" not in r.summary()
    out = subprocess.run([sys.executable, "-m", "capacity", "ceiling", str(CONC), "--method",
                          "analytic"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "the p95 turn-latency target binds first" in out.stdout
    assert "its waits set N" in out.stdout


@pytest.mark.parametrize("shape", ["convex", "concave", "linear", "steps", "cliff"])
def test_crossing_answers_the_bisection(shape: str) -> None:
    """The p95 search inside its bracket (``_crossing``): the bisection's answer — the
    largest n whose value is within the level — on non-decreasing curves of every shape,
    at every level between the ends, and on a convex curve (a p95 rising with N) in
    no more looks than halving."""
    from capacity.analytic.pacing import _crossing

    rng = np.random.default_rng(11)
    n = np.arange(200, dtype=float)
    curve = {"convex": 20.0 + 0.004 * n ** 2, "concave": 20.0 + 9.0 * np.sqrt(n),
             "linear": 20.0 + 0.5 * n, "steps": 20.0 + 10.0 * np.floor(n / 37.0),
             "cliff": np.where(n < 150, 20.0 + 0.01 * n, 500.0)}[shape]
    curve = curve + np.cumsum(rng.uniform(0.0, 1e-3, n.size))  # strictly rising
    for level in rng.uniform(curve[3], curve[-1], 40):
        good = int(np.searchsorted(curve, level, side="right")) - 1
        asked: list[int] = []

        def f(k: int, asked: list[int] = asked) -> float:
            asked.append(k)
            return float(curve[k])

        lo, hi = 1, n.size - 1
        assert _crossing(f, float(level), lo, hi) == max(good, lo)
        if shape == "convex":
            assert len(set(asked)) <= 2 + int(np.ceil(np.log2(hi - lo))), len(set(asked))
