"""Backoff retries at a requests bucket that counts its refusals, held as a known miss
(session 62, tests/data/bucket-counted-backoff-storm.yaml): one call a turn, Exp(300 s)
think time, 500 RPM as a token bucket 5 s deep, four backoff retries. The model says
2,421; the simulation 2,220 [2,220-2,283] (``capacity ceiling
tests/data/bucket-counted-backoff-storm.yaml --seed 1``), 9 % optimistic.

Near the ceiling (92 % of the refill) the first time the bucket runs empty can start a
retry storm: each refused attempt takes what is left of its unit, so the retries that
come back 0.5-4 s later find it empty again and keep it so, and the storm can hold to the
hour's end (87 % of attempts refused). At 2,300 sessions two of four simulated hours
storm and two refuse nothing; at 2,220 none refuses a call
(``python benchmarks/session62_probes.py storm``). The deep bucket's level law follows no
storm. Not counting refusals, the same profile is 3.0 % optimistic (2,462 against 2,390
[2,367-2,408], ``--set quotas.q.rejected_count=false``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.model import analyze
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

PROFILE = Path(__file__).parent / "data" / "bucket-counted-backoff-storm.yaml"


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="retry storms at a counting bucket: 2,421 against 2,220 "
                   "[2,220-2,283]")
def test_within_the_target() -> None:
    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling,
                    Recorded(2220, 2220, 2283), "counted bucket, four backoff retries")

