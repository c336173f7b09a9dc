"""The note beside an analytic answer at a requests bucket that counts its refusals
where retries back off without waiting for the retry-after (session 62): near the
ceiling an empty spell can grow into a retry storm that holds, which the level laws do
not follow (tests/data/bucket-counted-backoff-storm.yaml: 2,421 against a simulated
2,220 [2,220-2,283]; ``python benchmarks/session62_probes.py depths``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.model import BUCKET_STORM_CHECK, BUCKET_STORM_SIMULATED, analyze
from capacity.profile.loader import load_profile
from capacity.whatif.ceiling import SimSettings, ceiling

PROFILE = Path(__file__).parent / "data" / "bucket-counted-backoff-storm.yaml"
STORM = "grow into a retry storm"


def _storm_notes(sets: list[str] | None = None) -> list[str]:
    return [x for x in analyze(load_profile(PROFILE, sets or [])).notes if STORM in x]


def test_said_at_a_counting_requests_bucket_with_backoff_retries() -> None:
    (note,) = _storm_notes()
    assert note.startswith("On q.rpm a refused attempt is counted")
    assert note.endswith(BUCKET_STORM_CHECK)
    # The 1 -> 3 -> 1 turn at a bucket 10 s deep with the SDK's backoff (within the
    # target there, 246 against 240 [237-240]: the note says "can be").
    deep = analyze(load_profile(Path(__file__).parent / "data" /
                                "bucket-deep-backoff-131.yaml"))
    assert [x for x in deep.notes if STORM in x and x.startswith("On q.rpm")]


@pytest.mark.parametrize("sets", [
    ["retry.honour_retry_after=true"],               # told retries: _counted_share's holds
    ["quotas.q.rejected_count=false"],               # nothing taken from a refused call
    ["retry.max_retries=0"],                         # nothing comes back
    ["quotas.q.enforcement={type: sliding_window, window: 10s}"],  # the window's storms
    ["quotas.q.rpm=null", "quotas.q.tpm=2000000"],   # tokens: refusals never counted
    ["pacing={rpm: 400}"],                           # the pacer holds calls back
    ["quotas.q.tpm=300000"],                         # the tokens bind, far below it
    ["targets.p95_turn_latency=0.5s"],               # no N meets the latency target
], ids=["told", "uncounted", "no-retries", "sliding", "tokens", "paced", "not-binding",
        "latency-bound"])
def test_not_said_where_no_such_storm_forms(sets: list[str]) -> None:
    assert _storm_notes(sets) == []


def test_beside_the_simulation_the_note_points_at_it() -> None:
    """``capacity ceiling`` simulates by default: where its N* was also measured again
    two hours on, the note does not ask for the simulation printed above it; where it
    was not (storms that hold outlast the hour), the advice stands."""
    prof = load_profile(PROFILE)
    sim = SimSettings(seed=1, replications=4, horizon_s=600.0)
    res = ceiling(prof, "both", sim=sim)
    assert res.simulated is not None and res.simulated.settling is not None
    (note,) = [x for x in res.notes if STORM in x]
    assert note.endswith(BUCKET_STORM_SIMULATED) and BUCKET_STORM_CHECK not in note
    unsettled = ceiling(prof, "both", sim=sim, settle=False)
    (note,) = [x for x in unsettled.notes if STORM in x]
    assert note.endswith(BUCKET_STORM_CHECK)
