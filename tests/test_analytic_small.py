"""Small N (issue 13, the hunt's conservative small-N family): where a few sessions
saturate the quota, two assumptions of the window count were far off.

- A call charged more than the whole allowance is refused on every attempt and never
  charged (the limiter's retry-after is infinite): it is not window load carried from
  window to window (tests/data/otpm-never-fits.yaml, the hunt's hunt-063: 8 against a
  simulated 12 [12-12]).
- One session's window count is bounded by the turns it holds: laid end to end, its
  turns give the exact per-session law, and N independent sessions its N-fold
  convolution, where the binomial-Poisson mixture gave a window holding several turns a
  Poisson tail (tests/data/cadence-three-turns-per-window.yaml, hunt-093: 21 against
  24 [24-25]).
- With ``abort_turn`` and no retries a refused call ends its turn: in a fixed window of
  requests, full from some point on, a turn makes only its first instant after it
  (tests/data/abort-tool-loop-fixed.yaml, hunt-rpm-207: 15 against 19 [18-19]).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from capacity.analytic import clumped
from capacity.analytic.model import CeilingResult, WindowStats, analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

DATA = Path(__file__).parent / "data"


def _within_target(name: str) -> None:
    assert_profile_accurate(load_profile(DATA / name))


def _one_session(tmp_path: Path, name: str, text: str) -> tuple[CeilingResult, WindowStats]:
    """The analytic result of a profile written to ``tmp_path`` at one session, and the
    binding constraint's figures there."""
    path = tmp_path / name
    path.write_text(text)
    res = analyze(load_profile(path), sessions=1)
    at = res.binding.at_sessions
    assert at is not None
    return res, at


def test_calls_larger_than_the_allowance_never_charge() -> None:
    wl = Workload.from_profile(load_profile(DATA / "otpm-never-fits.yaml"))
    c = wl.constraints[0]
    model = clumped.clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner
    # The plan call (1 of 4 calls per turn on average) exceeds 7,560 output tokens with
    # P(Z > ln(7560/800)/σ), σ = ln 4/1.645 (median 800, p95 3,200): 0.385%.
    sigma = math.log(4.0) / 1.645
    p_plan = 0.5 * math.erfc(math.log(7560 / 800) / sigma / math.sqrt(2.0))
    assert abs(model.never_fit - 0.25 * p_plan) < 0.1 * 0.25 * p_plan
    # The window count carries only the calls that fit: less than the workload's mean.
    g = model.pmf(10)
    mean = float(np.dot(np.arange(g.size), g)) * model.h
    assert mean < 10 * wl.units_per_turn(c) * c.window_s / cycle_time(wl).cycle_s
    # Every attempt of a never-fitting call is refused: 4 of them (3 retries) per call.
    share = model.attempt_share(1)
    assert share["failed"] >= model.never_fit
    assert share["attempt"] >= 3.9 * model.never_fit


def test_never_fitting_calls_meet_the_simulated_ceiling() -> None:
    _within_target("otpm-never-fits.yaml")


def test_session_law_is_one_session_of_turns_end_to_end() -> None:
    wl = Workload.from_profile(load_profile(DATA / "cadence-three-turns-per-window.yaml"))
    cyc = cycle_time(wl).cycle_s
    c = next(c for c in wl.constraints if c.dim == "rpm")
    model = clumped.clumped_window_model(wl, c, cyc).inner
    law = model.session_pmf
    assert law is not None
    k = np.arange(law.size)
    # Its mean is the exact load; a 20 s cadence puts three turns in every 60 s window,
    # so one session's count is nearly fixed: far less variable than the mixture's.
    assert abs(float(np.dot(k, law)) * model.h - model.mean_units) < 1e-6 * model.mean_units
    var = float(np.dot(k * k, law)) - float(np.dot(k, law)) ** 2
    f = model.clump_pmf
    m1, m2 = float(np.dot(np.arange(f.size), f)), float(np.dot(np.arange(f.size) ** 2, f))
    pb, ps = model.p_binomial, model.p_single
    mixture_var = ps * m2 - pb * pb * m1 * m1
    assert var < 0.5 * mixture_var


def test_session_law_meets_the_simulated_ceiling() -> None:
    _within_target("cadence-three-turns-per-window.yaml")


def test_aborted_turns_make_no_more_calls_in_the_full_window() -> None:
    wl = Workload.from_profile(load_profile(DATA / "abort-tool-loop-fixed.yaml"))
    c = wl.constraints[0]
    model = clumped.clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner
    assert model.aborted is not None and model.prefix_pmfs is not None
    g = model.pmf(19)
    k = np.arange(g.size)
    stop_loss = float(np.dot(np.maximum(k - model.q_lat, 0.0), g)) / float(np.dot(k, g))
    # The simulated share at 19 sessions is 1.0% (0.25% at 15); the stop-loss ~3%, and
    # the first refused instant of each turn about a third of it.
    share = model.attempt_share(19)["attempt"]
    assert 0.2 * stop_loss < share < 0.5 * stop_loss, (share, stop_loss)


def test_aborted_turns_meet_the_simulated_ceiling() -> None:
    _within_target("abort-tool-loop-fixed.yaml")


def test_aborted_turns_of_a_session_that_overfills_the_window_alone(tmp_path: Path) -> None:
    """One session, a turn every ~3.3 s against 1 request per 30 s window, no retries:
    it alone launches ~9 calls a window, so at least 1 − 1/9 of them are refused.
    The aborted-turn share counted the other sessions and the turn's own earlier calls,
    not the session's earlier turns: it said 0% 429s at N = 1 (and a ceiling of 1
    where the simulated one is 0; the fuzzer's case)."""
    res, at = _one_session(tmp_path, "alone.yaml",
        "models: {m: {tokens_per_second: 10, ttft: 0.3s}}\n"
        "quotas: {q: {models: [m], rpm: 2, enforcement: {type: fixed_window, window: 30s}}}\n"
        "session: {think_time: 1s, turns: {t: {steps: "
        "[{call: {model: m, input_tokens: 100, output_tokens: 20}}]}}}\n"
        "retry: {max_retries: 0}\n"
        "targets: {max_429_fraction: 0.05}\n")
    assert at.mean_per_window > 5
    assert at.call_429_fraction >= 1.0 - 1.0 / at.mean_per_window - 1e-9
    assert res.burst_ceiling == 0


def test_every_call_larger_than_the_allowance_is_refused(tmp_path: Path) -> None:
    """Every call charges ~1,050 tokens against 166 per 2 s window: none is ever admitted.
    The window model saw no load (never-fitting calls count 0 in the window) and gave
    0% 429s and a ceiling of 1 (the fuzzer's case); every attempt is refused, N* = 0."""
    res, at = _one_session(tmp_path, "never.yaml",
        "models: {m: {tokens_per_second: 10, ttft: 0}}\n"
        "quotas: {q: {models: [m], tpm: 5000, enforcement: {type: fixed_window, window: 2s}}}\n"
        "session: {think_time: 30s, turns: {t: {steps: "
        "[{call: {model: m, input_tokens: 1000, output_tokens: 50}}]}}}\n"
        "retry: {max_retries: 0}\n"
        "targets: {max_429_fraction: 0.05}\n")
    assert at.call_429_fraction == 1.0 and at.loss_fraction == 1.0
    assert res.burst_ceiling == 0 and res.binding.one_event_exceeds
