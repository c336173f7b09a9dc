"""A call charged more than a limit can ever hold (a token bucket's depth, a window's
allowance) is refused on every attempt: the limiter's retry-after is infinite, which the
client's one retry rule (capacity/model/retry.py) does not honour — it backs off
``max_retries`` times, or gives up at once with ``beyond_max_retry_after: give_up``.

The bucket's level chain had such a call refused once and then served by the herd its
told retry joined (the out-of-sample hunt's seed 1079, tests/data/bucket-never-fit-
retried.yaml: 0.92 % of attempts refused at one session against 3.8 % simulated, 5
sessions against a simulated 0 [0-0] — no N meets the target)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from capacity.analytic.model import analyze, bucket_model, cycle_time
from capacity.model.retry import RetryPolicy
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile
from capacity.search import find_saturation

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"
NAME = "bucket-never-fit-retried.yaml"


def test_a_never_fitting_call_makes_the_attempts_the_retry_rule_allows() -> None:
    assert RetryPolicy(max_retries=3).attempts_refused(math.inf) == 4
    assert RetryPolicy(max_retries=3, honour_retry_after=False).attempts_refused(
        math.inf) == 4
    assert RetryPolicy(max_retries=3, give_up_beyond=True).attempts_refused(math.inf) == 1
    assert RetryPolicy(max_retries=0).attempts_refused(math.inf) == 1
    # A finite retry-after within the cap is waited, every retry made.
    assert RetryPolicy(max_retries=2, give_up_beyond=True).attempts_refused(3.0) == 3


def _tpm(path: Path, sessions: int) -> tuple[float, float]:
    """(the tpm bucket's 429 share of attempts at ``sessions``, its never-fit share)."""
    wl = Workload.from_profile(load_profile(path))
    c = next(c for c in wl.constraints if c.dim == "tpm")
    model = bucket_model(wl, c, cycle_time(wl).cycle_s)
    assert model.chain is not None
    return model.stats(sessions).loss_fraction, model.chain.never_fit


def test_never_fitting_calls_are_refused_on_every_attempt(tmp_path: Path) -> None:
    # The third call of the chain (36 % of turns, 4.76 calls a turn) exceeds the 19,326
    # tokens with P(prompt + output > 19,326) = 8.7 %: 1.13 % of the calls.
    share, f = _tpm(DATA / NAME, 1)
    assert f == pytest.approx(0.36 / 0.58 * 0.087 / 4.76, rel=0.05)
    # Four attempts each, all refused (the simulator: 3.8 % of attempts at one session,
    # failed calls 0.97 %; a 200,000 s trace: 1.11 % of calls never fit, 4 attempts each).
    assert share >= 4 * f / (1 + 3 * f)
    assert share < 1.15 * 4 * f / (1 + 3 * f)
    # Giving up beyond the cap: one attempt each (the simulator: 0.97 % at one session).
    text = (DATA / NAME).read_text().replace(
        "  honour_retry_after: true\n",
        "  honour_retry_after: true\n  beyond_max_retry_after: give_up\n")
    assert "give_up" in text
    path = tmp_path / "give-up.yaml"
    path.write_text(text)
    once, f1 = _tpm(path, 1)
    assert f1 == f
    assert f <= once < 1.15 * f


def test_no_session_meets_the_target_where_the_simulator_says_none_does() -> None:
    p = load_profile(DATA / NAME)
    n_a = analyze(p).burst_ceiling
    assert n_a == 0
    assert_accurate(n_a, Recorded(0, 0, 0), NAME)   # seed 1, 20 x 1 h: 0 [0-0]
    # One session misses the 2 % target in the simulator too.
    sat = find_saturation(p, 1, 4, seed=1, replications=20, max_sessions=8)
    assert (sat.n_star, sat.n_lo, sat.n_hi) == (0, 0, 0)
