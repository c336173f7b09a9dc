"""A counted deep bucket's busy period under one unit (bucket.DeepBucket's told-retry
share) is astronomical where the calls a second times a hold is in the hundreds: capped,
so the share is 1 without an overflow (a hypothesis case of tests/test_cli_hostile.py:
chat-assistant with 1,000,000 RPM, `internal error` under warnings as errors)."""

from __future__ import annotations

from pathlib import Path

import yaml

from capacity.analytic.model import analyze
from capacity.profile.loader import profile_from_dict

ROOT = Path(__file__).resolve().parents[1]


def test_a_huge_requests_limit_answers_without_overflow() -> None:
    data = yaml.safe_load((ROOT / "profiles" / "chat-assistant.yaml").read_text())
    data["quotas"]["org"]["rpm"] = 1_000_000
    # (pytest's filterwarnings turns the overflow's RuntimeWarning into an error.)
    res = analyze(profile_from_dict(data))
    assert res.burst_ceiling == 208, res.burst_ceiling
