"""Aborted turns of cadence-paced sessions (issue 13, the hunt's hunt-057).

A cadence session starts its next turn at ``max(start + cadence, end)``: a turn that
outlasts its cadence is followed at once, so when a refusal aborts it (no retries,
``abort_turn``) the next turn comes sooner — at once if the refusal is past the cadence,
its first call a rejection latency after the refusal, into the log that has just turned
a call away. The model took a cadence session's cycle as unchanged by aborts (only
think-time sessions came back sooner) and the next turn's first call as any call:
hunt-057 34 against a simulated 32 [31–32] (+6.2 %), its tool loop alone 18 against
17 [16–17].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capacity.analytic.clumped import clumped_window_model
from capacity.analytic.model import analyze, cycle_time
from capacity.analytic.window import ClumpWindowModel
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"
ABORT = DATA / "cadence-abort.yaml"
RESTART = DATA / "cadence-restart.yaml"
ELSEWHERE = DATA / "cadence-restart-elsewhere.yaml"
COUNTED = DATA / "cadence-restart-counted.yaml"


@pytest.mark.xfail(strict=True, reason=(
    "session 49: 30 against 32 [31-32], 6 % conservative. A call's own units ahead and "
    "its charge read jointly (the Palm law, exact for one log alone: "
    "tests/test_analytic_sliding_dims_apart.py) take it 31 -> 30: at 31 sessions the "
    "model refuses 5.14 % of calls (4.79 % before), the engine 4.69 % (8 x 1 h); paced "
    "60-90 s the joint law says 73 against 72 [71-73]: the restarts' share, fitted with "
    "the laws apart, is left"))
def test_cadence_aborts_against_the_simulator() -> None:
    """hunt-057 (loop and single turns, cadence U(20, 36) s): 34 before, 33 with the
    shorter cycle alone, 31 with the restarts; simulated (seed 1, 20 × 1 h)."""
    assert_accurate(analyze(load_profile(ABORT)).burst_ceiling, Recorded(32, 31, 32),
                    ABORT.name)


def test_cadence_restarts_against_the_simulator() -> None:
    """Its tool loop alone (~44 s a turn): 18 before (the shorter cycle alone keeps 18),
    16 with the restarts; simulated (seed 1, 20 × 1 h)."""
    assert_accurate(analyze(load_profile(RESTART)).burst_ceiling, Recorded(17, 16, 17),
                    RESTART.name)


def test_a_restart_whose_first_call_is_elsewhere_meets_a_fresh_log() -> None:
    """The loop with a first call on an unlimited model (~6.3 s, past the 5 s window):
    the restarted turn's first call on the quota comes after the log that refused has
    turned over, so no restart is refused for it (the first launch, with no call on the
    quota, was taken as the restart's: every restart refused, 18). The cycle stays
    shorter: 22 against a simulated 21 [21–21] (seed 1, 20 × 1 h; +4.8 %, inside the
    issue's 5 % but not its 3 %: the refusals' bursts outlast a window, which the model
    does not carry to the restart); 21 since session 49 (a call's own units ahead and
    its charge read together, a loop's calls in one window admitted in part)."""
    assert _model(ELSEWHERE).restart_weight.size == 0
    n = analyze(load_profile(ELSEWHERE)).burst_ceiling
    assert 21 <= n <= 22, n


def _model(path: Path, sets: list[str] | None = None) -> ClumpWindowModel:
    wl = Workload.from_profile(load_profile(path, sets or []))
    c = wl.constraints[0]
    return clumped_window_model(wl, c, cycle_time(wl).cycle_s).inner


def test_restarts_per_call_as_the_engine_makes_them() -> None:
    """At 16 sessions the engine (seed 1, one replication × 1 h, attempt trace) makes
    0.0204 restarts per attempt — a session's attempt within 0.1 s of its own refusal —
    and turns away 65 % of them (the model: 0.83, the room that refused a 4,600-token
    reservation being taken as no larger than the size law says). The model's restart
    count within a tenth of the engine's; the share of restarts it refuses (the extra
    share over the restarts, plus the random instant's ``p``) between the engine's 0.65
    and 0.85: conservative by up to a fifth, as the restart's charge law allows."""
    m = _model(RESTART)
    seen: list[tuple[float, float, float]] = []
    rule = m._sliding_restart

    def spy(n: int, p: float) -> float:
        extra = rule(n, p)
        seen.append((n, p, extra))
        return extra

    m._sliding_restart = spy  # type: ignore[method-assign]
    m.attempt_share(16)
    n, p, extra = seen[-1]   # at the abort fixed point's thinned load
    assert 15.0 < n < 16.0
    made = m.made_fraction(p)
    per_turn = m.calls_per_window / m.turns_per_window
    restarts = float(np.dot(m.restart_weight, m._all_made(p, m.saving_before)
                            - m._all_made(p, m.saving_through))) / (per_turn * made)
    assert abs(restarts - 0.0204) <= 0.1 * 0.0204
    refused = extra / restarts + p
    assert 0.65 <= refused <= 0.85, refused


def test_a_cadence_longer_than_every_turn_neither_shortens_nor_restarts() -> None:
    """With a cadence of U(75, 91) s no turn of the loop outlasts it: an aborted turn
    saves nothing (its session waits for the cadence) and restarts nothing."""
    m = _model(RESTART, ["session.cadence.uniform=[75s, 91s]"])
    assert m.restart_weight.size == 0
    assert m.load_factor(0.05) == m.made_fraction(0.05)


def test_the_cadence_range_ends_are_the_profile_at_each_end() -> None:
    """The sensitivity's ends are the answers for the profile with its cadence fixed at
    each end (the turn sample's cadences too, not only the cycle): 26 and 37 (with the
    drawn cadences kept, 27 and 35; simulated at a fixed 36 s: 37 [36–38])."""
    sens = analyze(load_profile(ABORT)).sensitivity
    assert sens is not None
    ends = [analyze(load_profile(ABORT, [f"session.cadence={v:g}s"])).burst_ceiling
            for v in (sens.low_s, sens.high_s)]
    assert [sens.burst_ceiling_low, sens.burst_ceiling_high] == ends


def test_the_shared_sample_is_the_fixed_profiles_own() -> None:
    """The range's ends reuse the profile's turn sample with the cadence fixed: the same
    launches, gaps and cadences as drawing the fixed profile's sample afresh."""
    from capacity.analytic.clumped import timing_of
    from capacity.analytic.model import _with_fixed_pause
    from capacity.analytic.timing import turn_timing

    base = Workload.from_profile(load_profile(ABORT))
    timing_of(base)
    fixed = _with_fixed_pause(base, 36.0)
    shared, fresh = timing_of(fixed), turn_timing(fixed)
    assert shared is not timing_of(base)
    for name in ("times", "calls", "latency", "gap", "cadence", "ends"):
        assert np.array_equal(getattr(shared, name), getattr(fresh, name)), name


def test_a_counted_logs_restarts_lengthen_its_full_spells() -> None:
    """The loop before a 10 s log of 200 RPM that counts its refusals: a refusal past
    the cadence restarts the session, and the restarted turn's first call comes a
    rejection latency later into the log the refusal has filled — refused and logged
    too, so each restart holds the spell open for one more expiry (the engine at 18
    sessions, one replication x 1 h: 504 refusals, 184 of them restarts, in 48 spells
    of 10.5; uncounted, 239 and 85 in 95 spells of 2.5). The storm chain that sizes a
    counted spell met each refused launch alone: 20 against a simulated 16 [16-17]
    (seed 1, 20 x 1 h; +25 %); with the restarts in it 18 (+12.5 %: a spell starts where
    the sessions' fast loop calls crowd the log, more arrivals than the steady rate the
    chain meets — not modelled). Think-time sessions restart nothing."""
    m = _model(COUNTED)
    assert m._counted_loss and m.storm_restart.size == m.storm_sizes.size
    assert m.storm_restart.any()
    assert _model(COUNTED, ["session.cadence=null", "session.think_time=20s"]
                  ).storm_restart.size == 0
    n = analyze(load_profile(COUNTED)).burst_ceiling
    assert 16 <= n <= 18, n


COUNTED_SINGLE = DATA / "cadence-counted-single.yaml"


def test_a_counted_log_of_cadence_sessions_holds_the_free_launches() -> None:
    """hunt-63: one call a turn, cadence-paced, a counted 30 s log, no retries. A refusal
    brings no launch sooner, so the log holds every launch and refuses the free count's
    share: 29 before (the spells' chain, 20.6 % refused at 31 sessions), 31 against a
    simulated 31 [31–31]."""
    assert_accurate(analyze(load_profile(COUNTED_SINGLE)).burst_ceiling,
                    Recorded(31, 31, 31), COUNTED_SINGLE.name)


def test_the_free_count_bounds_a_cadence_counted_log_and_no_other() -> None:
    """The bound is the cadence's: a think-time session whose turn a refusal aborts
    comes back sooner (counted-sliding-tool-loop keeps its spells), and a cadence
    session refused past its cadence restarts at once (cadence-restart-counted)."""
    from capacity.sim.engine import simulate

    m = _model(COUNTED_SINGLE)
    assert m._thinned_free
    for n in (29, 31, 32):
        assert m._sliding(n, exceed=False)["call"] == pytest.approx(m._sliding_h(n, 0.0))
    # The engine at 31 sessions (seed 1, 8 × 1 h): 4.2 %; the model 4.4 %.
    sim = simulate(load_profile(COUNTED_SINGLE), 31, replications=8, seed=1, workers=1)
    share = m._sliding(31, exceed=False)["attempt"]
    assert abs(share - sim.metrics["attempt_429_fraction"].mean) < 0.01, share
    assert not _model(DATA / "counted-sliding-tool-loop.yaml")._thinned_free
    assert not _model(COUNTED)._thinned_free
    # A turn that outlasts its cadence, aborted, ends sooner and brings its session's
    # next turn with it: no restart, but the cycle shortens (a review's counterexample).
    outlasting = _model(OUTLASTING)
    assert outlasting.saving_weight.size and not outlasting.restart_weight.size
    assert not outlasting._thinned_free


OUTLASTING = DATA / "cadence-counted-outlasting.yaml"


@pytest.mark.xfail(strict=True, reason=(
    "session 52: 31 against 26 [26-28] (+19 %, as before session 52's bound, which does "
    "not apply here). The sessions' aborted turns end before their cadence would have "
    "started the next: in a storm they come back every ~10 s instead of every ~30 s, "
    "and the counted log, once it turns calls away, never recovers (the engine at 32 "
    "sessions refuses 99.9 %). The storms' chain brings no cadence session back sooner "
    "(storm_rebounds: think-time sessions only)"))
def test_a_counted_log_whose_aborted_cadence_turns_come_back_sooner() -> None:
    assert_accurate(analyze(load_profile(OUTLASTING)).burst_ceiling, Recorded(26, 26, 28),
                    OUTLASTING.name)
