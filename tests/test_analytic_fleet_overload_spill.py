"""A sliding loss log far over its allowance spilling into a longer sliding log
(tests/data/sliding-overload-spill.yaml, hunt-3015): the calls it turns away are its
large ones, by the room its held units leave (fleet._loss_log_room, room_refused), and
its spill over the receiver's window is the route's count past the room it holds, not
past its offered count's swings (fleet._sliding_spill). Checked against the engine's own
attempts and the simulated saturation search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from benchmarks.session32_probes import fed_itpm, overload_engine
from capacity.analytic.fleet import FeedModel, fleet_models
from capacity.analytic.model import analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.search import find_saturation

PROFILE = Path(__file__).resolve().parent / "data" / "sliding-overload-spill.yaml"
SESSIONS = 504


def test_spilled_sizes_and_spread_against_the_engine() -> None:
    """504 sessions: the engine's ITPM log turns away calls of 3,300 input tokens on
    average (the route's: 1,240), and b gets 38.5 ± 16.2 attempts a 15 s window. The
    model: 3,132 tokens a spilled call and 31.5 ± 16.0 calls (first attempts; the
    engine's count has the retries spilled again) — where the equilibrium-residual law
    said 1,704 tokens and the offered count's swings ± 25.0."""
    got = overload_engine(load_profile(PROFILE), SESSIONS)
    size, spread = got["size"], got["count_sd"]
    model = fed_itpm(load_profile(PROFILE))
    assert isinstance(model, FeedModel)
    (src,) = model.sources
    charge, _ = src.charges(SESSIONS)
    mean = float(np.dot(np.arange(charge.size) * model.h, charge) / charge.sum())
    assert abs(mean / size - 1.0) <= 0.10, (mean, size)
    calls = src.calls(SESSIONS)
    k = np.arange(calls.size, dtype=np.float64)
    mu = float(np.dot(k, calls))
    sd = float(np.sqrt(np.dot(k * k, calls) - mu * mu))
    assert abs(sd / spread - 1.0) <= 0.15, (sd, spread)


def test_the_ceiling_against_the_simulated_search() -> None:
    """Analytic N* 526 against the simulated 506 [503–508] (+4 %, inside the 5 % that
    keeps an answer from overloading the quota; not within 3 %: the model's spill leaves
    out the retries b refuses that a spills again); it said 602 (+19 %)."""
    n_a = analyze(load_profile(PROFILE)).burst_ceiling
    sat = find_saturation(load_profile(PROFILE), n_a - 40, n_a + 10, seed=1,
                          replications=20, max_sessions=1200)
    assert abs(n_a / sat.n_star - 1.0) <= 0.05, (n_a, sat.n_star, sat.n_lo, sat.n_hi)


def test_a_shorter_receiver_keeps_the_residual_law() -> None:
    """b's window 5 s, half the log's: the spill's count there is read from the log's
    offered count (the log full through a short window), so the sizes stay the residual
    law's; the larger ones with it said 346 against a simulated 441 [438–443] (the review
    of 1c78b8f); now 429."""
    data = yaml.safe_load(PROFILE.read_text())
    data["quotas"]["q1"]["enforcement"]["window"] = "5s"
    profile = profile_from_dict(data)
    wl = Workload.from_profile(profile)
    fm = fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.quota == "q1" and e.c.dim == "itpm"]
    assert isinstance(e.model, FeedModel)
    charge, _ = e.model.sources[0].charges(SESSIONS)
    mean = float(np.dot(np.arange(charge.size) * e.model.h, charge) / charge.sum())
    assert mean < 2000.0, mean
    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, n_a - 20, n_a + 30, seed=1, replications=20,
                          max_sessions=1200)
    assert abs(n_a / sat.n_star - 1.0) <= 0.05, (n_a, sat.n_star, sat.n_lo, sat.n_hi)
