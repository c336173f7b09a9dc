"""The issue's 1 -> 3 -> 1 turn at a token bucket 10 s deep with backoff retries that do
not wait for the retry-after (session 61, tests/data/bucket-deep-backoff-131.yaml): 248
against a simulated 240 [237-240] (``capacity ceiling
tests/data/bucket-deep-backoff-131.yaml --seed 1``; 236 [235-239] with seed 2 and 40
replications). Near the ceiling the bucket's empty spells outlast the 0.5 s and 1 s
backoffs: the engine refuses three retries in four again and five times as many fresh
calls as without retries, where the deep bucket's retry chain
(``DeepBucket._backoff_share``) refuses about one retry in four and pushes the fresh
calls by ~1.2 (``python benchmarks/session61_probes.py deepback``). At 5 s deep the
same turn meets the target (the accuracy table's row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

PROFILE = Path(__file__).parent / "data" / "bucket-deep-backoff-131.yaml"


@pytest.mark.xfail(strict=True, reason="backoff retries at a deep bucket near its "
                   "ceiling: 248 against 240 [237-240]")
def test_within_the_target() -> None:
    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling, Recorded(240, 237, 240),
                    "1 -> 3 -> 1, token bucket 10 s deep, backoff retries")


def test_without_retries_it_meets_the_target() -> None:
    """The same bucket without retries: ``capacity ceiling ... --set
    retry.max_retries=0 --seed 1`` simulates 252 [252-253]; the model says 253."""
    prof = load_profile(PROFILE, ["retry.max_retries=0"])
    assert_accurate(analyze(prof).burst_ceiling, Recorded(252, 252, 253),
                    "the same, no retries")
