"""Two sliding logs of one quota over different lengths (RPM per 5 s, TPM per 10 s) on
the same calls (issue 13, hunt-116): the joint ceiling splits their 429s with the nested
windows' correlation (:func:`capacity.analytic.model._nested`) instead of adding them."""

from __future__ import annotations

import math
from pathlib import Path

from capacity.analytic.model import WindowStats, _nested, _shared_429s, analyze
from capacity.profile.loader import load_profile

from ._accuracy import assert_profile_accurate

PROFILE = Path(__file__).parent / "data" / "nested-sliding-rpm-tpm.yaml"


def test_nested_correlation_shrinks_with_the_length_ratio() -> None:
    top = WindowStats(200, 0.0, 0.004, 0.006, "a")
    other = WindowStats(200, 0.0, 0.003, 0.005, "b")
    assert _nested(0.95, 10.0, 10.0, top, other) == 1.0         # one log's bursts
    assert _nested(0.95, 5.0, None, top, other) == 1.0
    half = _nested(0.95, 5.0, 10.0, top, other)
    assert half == _shared_429s(0.95 * math.sqrt(0.5), 0.004, 0.003)
    assert half == _nested(0.95, 10.0, 5.0, top, other)         # either order
    assert 0.0 < _nested(0.95, 1.0, 60.0, top, other) < half < 1.0


def test_nested_logs_share_their_429s() -> None:
    profile = load_profile(PROFILE)
    joint = analyze(profile).burst_ceiling
    alone = [analyze(load_profile(PROFILE, overrides=[f"quotas.q1.{d}.limit=1e9"]))
             .burst_ceiling for d in ("rpm", "tpm")]
    # Below either alone (their 429s add in part), above adding them whole (214).
    assert joint < min(alone)
    assert joint >= 217


def test_nested_sliding_within_target() -> None:
    # Adding the two logs' shares answers 214 (simulated 223 [219–230], -4.0%).
    assert_profile_accurate(load_profile(PROFILE), span=20, max_sessions=300)
