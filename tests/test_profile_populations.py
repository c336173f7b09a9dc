"""Session populations in profiles: the split of N, and bad input for every key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity import Profile, ProfileError, load_profile

from .conftest import ROOT

BASE = ROOT / "profiles" / "web-research.yaml"
OVERLAY = ROOT / "tests" / "data" / "populations-overlay.yaml"


def _load(*sets: str) -> Profile:
    return load_profile([BASE, OVERLAY], list(sets))


def test_split_holds_fixed_counts_and_shares_n() -> None:
    p = _load()
    assert p.held_sessions == 40
    assert p.session_share() == pytest.approx(0.75)
    assert p.split(0) == {"session": 0, "batch": 40, "chat": 0}
    assert p.split(10) == {"session": 8, "batch": 40, "chat": 2}   # 7.5/2.5: tie → session
    assert p.split(13) == {"session": 10, "batch": 40, "chat": 3}  # 9.75/3.25
    assert [pop for pop, _, _ in p.all_turns()] == ["session", "batch", "chat"]


MORE = ("think_time: 1s, turns: {x: {steps: [{call: {model: gpt-4o, input_tokens: 10, "
        "output_tokens: 5}}]}}")


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 100_000), st.floats(0.01, 0.49), st.floats(0.01, 0.49))
def test_split_adds_up(n: int, a: float, b: float) -> None:
    """The varying populations always add up to N, each within one of its exact share."""
    p = _load(f"populations.chat.share={a!r}", "populations.more={share: " + repr(b) + ", "
              + MORE + "}")
    counts = p.split(n)
    assert counts["session"] + counts["chat"] + counts["more"] == n
    assert abs(counts["chat"] - n * a) < 1 and abs(counts["more"] - n * b) < 1
    assert counts["batch"] == 40


BAD = [
    ("populations.batch.share=0.1", "populations.batch",
     "give exactly one of 'sessions' (a fixed count, held) or 'share'"),
    ("populations.batch.sessions=-1", "populations.batch.sessions", "greater than or equal to 0"),
    ("populations.batch.sessions=1.5", "populations.batch.sessions", "integer"),
    ("populations.chat.share=1", "populations.chat.share", "less than 1"),
    ("populations.chat.share=0", "populations.chat.share", "greater than 0"),
    ("populations.chat.share=0.9", None, None),  # valid alone (0.1 left for session)
    ("populations.batch.cadence=1m", "populations.batch",
     "give exactly one of 'think_time' (closed loop) or 'cadence'"),
    ("populations.batch.turns.summarise.steps.0.call.model=gpt4",
     "populations.batch.turns.summarise.steps[0].call.model",
     "unknown model 'gpt4' (did you mean 'gpt-4o'?)"),
    ("populations.batch.size=3", "populations.batch.size", "unknown key 'size'"),
    ("populations.session={sessions: 1, think_time: 1s, turns: {a: {steps: [{call: "
     "{model: gpt-4o, input_tokens: 1, output_tokens: 1}}]}}}", "populations.session",
     "'session' names the main population"),
    ("populations.batch.think_time=0", None, None),  # valid: its calls take time
]


@pytest.mark.parametrize(("setting", "where", "words"), BAD, ids=[b[0][:60] for b in BAD])
def test_bad_population_keys(setting: str, where: str | None, words: str | None) -> None:
    if where is None:
        _load(setting)
        return
    with pytest.raises(ProfileError) as err:
        _load(setting)
    msg = str(err.value)
    assert "\n" not in msg and f": {where}: " in msg, msg
    if words:
        assert words in msg, msg


def test_shares_must_leave_room_for_session() -> None:
    with pytest.raises(ProfileError) as err:
        _load("populations.chat.share=0.6", "populations.more={share: 0.5, " + MORE + "}")
    msg = str(err.value)
    assert ": populations.more.share: the populations' shares add up to 1.1 of N" in msg


def test_every_layer_models_populations() -> None:
    """The analytic model, the simulator, the load generator and the mock all take a
    profile with populations (the guards that refused it are gone)."""
    from capacity.analytic.model import analyze
    from capacity.loadgen.plan import TurnSampler
    from capacity.serve.app import MockProvider
    from capacity.sim.engine import simulate

    p = _load("populations.batch.sessions=2")
    assert analyze(p).populations is not None
    assert simulate(p, 4, seed=1, replications=2, horizon_s=120).populations["batch"].sessions == 2
    TurnSampler(p)
    MockProvider(p)
