"""Chains at a token bucket (capacity/analytic/bucket.py, ``follow_share``): a turn's
calls follow one another, so a session launches again soon only while it is in a turn —
the chain of (sessions waiting for a later launch, level), not Poisson launches."""

from __future__ import annotations

from pathlib import Path

from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

DATA = Path(__file__).resolve().parent / "data"


def test_chain_turns_at_a_bucket_against_the_simulator() -> None:
    """Reduced from hunt.py seed 53: Poisson launches said 65 against the simulated
    59 [57–60] (seed 1, 20 × 1 h)."""
    assert_profile_accurate(load_profile(DATA / "bucket-chain-turns.yaml"), span=5)


def test_chain_turns_keep_poisson_launches_with_a_cadence(tmp_path: Path) -> None:
    """The chain is the closed loop of think-time sessions, with retries too (there it
    moves the retry model's fresh refusals): with a cadence (far more regular than its
    exponential pause), the bucket's launches stay Poisson."""
    from capacity.analytic.model import bucket_model, cycle_time
    from capacity.model.workload import Workload

    text = (DATA / "bucket-chain-turns.yaml").read_text()
    base = load_profile(DATA / "bucket-chain-turns.yaml")
    retried = base.model_copy(update={"retry": base.retry.model_copy(
        update={"max_retries": 2})})
    cadence = tmp_path / "cadence.yaml"
    cadence.write_text(text.replace("think_time: {uniform: [0s, 212.8s]}",
                                    "cadence: {uniform: [60s, 240s]}"))
    for p, follows in ((base, True), (retried, True), (load_profile(cadence), False)):
        wl = Workload.from_profile(p)
        c = wl.constraints[0]
        chain = bucket_model(wl, c, cycle_time(wl).cycle_s).chain
        assert (getattr(chain, "follow", None) is not None) is follows, p.session.mode
