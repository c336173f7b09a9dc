"""A fleet's backoff retries back into the fixed windows that turned their call away
(issue 13, the hunt's hunt-3036 and hunt-222).

A call the first deployment's fixed window turns away spills to the next deployment; if
that one turns it away too, the client's retry — a backoff later — starts again at the
first. A fixed window's count only grows until it ends, so a retry back before then is
turned away again, and again at the next fixed window; and a window's refusals sit late
in it, once its count has grown. The model gave such a retry the first window's share of
calls (a time average) and took each refused call's one retry as admitted.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from capacity.analytic.fleet import FleetAnalysis, _retry_delays
from capacity.analytic.model import analyze
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import RetrySpec

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).parent / "data"
SAME_WINDOWS = DATA / "fleet-fixed-backoff-same-windows.yaml"
CONTINUE = DATA / "fleet-fixed-backoff-continue.yaml"


def _entries(data: dict[str, Any]) -> tuple[Any, Any]:
    prof = profile_from_dict(copy.deepcopy(data))
    fa = FleetAnalysis(prof, Workload.from_profile(prof))
    feed = next(e.model for e in fa.fm.entries if e.role == "receive")
    head = next(e.model for e in fa.fm.entries if e.role == "spill")
    return feed, head


def test_backoff_retries_back_into_the_full_fixed_windows() -> None:
    """hunt-222 46 before, now 43 against a simulated 44 [43-45]."""
    assert_accurate(analyze(load_profile(CONTINUE)).burst_ceiling, Recorded(44, 43, 45),
                    CONTINUE.name)


@pytest.mark.xfail(strict=True, reason=(
    "session 53: 38 against 40 [40-40], 5 % conservative (45 before, optimistic): the "
    "model's first window turns a retry away again 0.961, 0.890, 0.760, 0.528 for "
    "retries 1-4, the engine 0.922, 0.868, 0.670, 0.242 of those still coming — the "
    "calls the receiver also refused sit later in the first window than its refusals at "
    "large (python benchmarks/session53_probes.py backoff)"))
def test_backoff_retries_into_fixed_windows_of_a_quarter_length() -> None:
    assert_accurate(analyze(load_profile(SAME_WINDOWS)).burst_ceiling,
                    Recorded(40, 40, 40), SAME_WINDOWS.name)


def test_a_retry_is_refused_where_both_windows_are_still_full() -> None:
    """hunt-3036 at 45 and 40 sessions: each retry's chance of being turned away by
    a's window again falls with its delay, b (a fixed window on the same clock) still
    turns it away, and the receiver's share of attempts refused counts every retry so
    refused: at 40 (the simulated N*) 7.24 % against the engine's 7.05 % (6 × 30 min,
    seed 1), where the rule before (each refused call's one retry admitted) read 1.94 %
    (``python benchmarks/session53_probes.py backoff``)."""
    from capacity.sim.engine import simulate

    data = yaml.safe_load(SAME_WINDOWS.read_text())
    feed, head = _entries(data)
    assert feed.later is not None
    chain = feed.later(45)
    assert len(chain) == 4
    a = [x for x, _ in chain]
    assert all(x > y for x, y in itertools.pairwise(a)), a
    assert a[0] > 0.9 > head.stats(45).loss_fraction
    assert feed.upstream(45) == pytest.approx(a[0])
    assert feed.retry_chain(45) == pytest.approx(a)
    sim = simulate(profile_from_dict(data), 40, replications=6, seed=1, workers=1,
                   horizon_s=1800.0)
    engine = sim.metrics["attempt_429_fraction"].mean
    st = feed.stats(40)
    assert abs(st.loss_fraction - engine) < 0.3 * engine, (st.loss_fraction, engine)
    call = st.call_429_fraction
    assert call / (1.0 + call) < 0.35 * engine
    # Told retries keep the rule before: no chain.
    told = copy.deepcopy(data)
    told["retry"] = {"max_retries": 2}
    assert _entries(told)[0].later is None


def test_refused_later_reads_the_delay_against_the_time_left() -> None:
    """No delay: refused again for sure; the chance falls as the delay grows, and past
    the window's end the retry is a call launched at its place in the next window."""
    _, head = _entries(yaml.safe_load(SAME_WINDOWS.read_text()))
    inner = head.inner

    def fixed(d: float) -> Any:
        return lambda u, w: (np.full((u.size, 1), d), np.ones(1))

    assert inner.refused_later(45, [fixed(0.0)]) == pytest.approx([1.0])
    alone = [inner.refused_later(45, [fixed(d)])[0] for d in (0.5, 2.0, 5.0, 10.0, 30.0)]
    assert all(a > b for a, b in itertools.pairwise(alone)), alone
    assert alone[-1] < 0.1
    # Nearly a window later, most retries land late in the next window, where it
    # refuses more: alone, the chance rises again...
    late = inner.refused_later(45, [fixed(59.5)])[0]
    assert late > alone[-1]
    # ... but after a retry 30 s later, refused only where that one was, place by place.
    both = inner.refused_later(45, [fixed(30.0), fixed(59.5)])
    assert both[0] == pytest.approx(alone[-1])
    assert both[1] <= both[0] < late


def test_retry_delays() -> None:
    """Retry k's delay: the 429's return trips and the mean backoffs before it, its own
    backoff's jitter uniform; none past the client's retries."""
    r = RetrySpec(max_retries=3, honour_retry_after=False, rejection_latency=0.5)
    lat = float(r.rejection_latency)
    u = np.array([0.1, 0.5, 0.95])
    # Two deployments: a's 429 reaches the client (which spills the call to b), b's
    # reaches it, then the backoff: a refused at 0, b at 0.5, the retry at 1 + backoff.
    got = _retry_delays(r, 1, 2)
    assert got is not None
    fn, mean = got
    tau, w = fn(u, 5.0)
    assert tau.shape == (3, 16) and w.sum() == pytest.approx(1.0)
    assert tau.min() >= 2 * lat + r.initial_delay * (1 - r.jitter)
    assert tau.max() <= 2 * lat + r.initial_delay
    assert mean == pytest.approx(2 * lat + r.initial_delay * (1 - 0.5 * r.jitter))
    second = _retry_delays(r, 2, 2)
    assert second is not None
    assert second[1] == pytest.approx(
        mean + 2 * lat + 2 * r.initial_delay * (1 - 0.5 * r.jitter))
    assert _retry_delays(r, 4, 2) is None


def test_retry_after_only_the_chains_last_deployment_with_backoffs() -> None:
    """A fixed window past the client's cap on the retry-after still tells most of its
    refusals a shorter one (the time left in it), so the rule needs the retry-after
    ignored; and a middle deployment's refusals spill on to the next, not back."""
    data = yaml.safe_load(SAME_WINDOWS.read_text())
    told = copy.deepcopy(data)
    told["retry"] = {"max_retries": 4, "max_retry_after": "10s"}
    assert _entries(told)[0].later is None
    chain = copy.deepcopy(data)
    chain["quotas"]["q2"] = {"models": ["c"], "tpm": 200000,
                             "enforcement": {"type": "fixed_window", "window": "30s"}}
    chain["deployments"]["c"] = {"model": "m", "quotas": ["q2"]}
    chain["routes"]["m"]["deployments"] = ["a", "b", "c"]
    prof = profile_from_dict(chain)
    fa = FleetAnalysis(prof, Workload.from_profile(prof))
    middle = next(e.model for e in fa.fm.entries if e.c.quota == "q1")
    assert middle.later is None


def test_the_joint_chances_never_rise() -> None:
    """``t_j``, the chance retries 1…j are all refused: back within the first window,
    refused as every retry before it was; past it, refused in a later window only if
    every retry before it was — so it falls with j even where a late retry's place in a
    later window refuses more than an earlier one's (a 15 s window, seven retries, the
    last ones 30-60 s later)."""
    data = yaml.safe_load(SAME_WINDOWS.read_text())
    data["quotas"]["q0"]["enforcement"] = {"type": "fixed_window", "window": "15s"}
    data["retry"]["max_retries"] = 7
    feed, head = _entries(data)
    assert feed.later is not None
    n = 50
    # Each retry alone: a late one can land later in another window than an earlier.
    waits = [_retry_delays(RetrySpec.model_validate(data["retry"]), j, 2)
             for j in range(1, 8)]
    raw = [head.inner.refused_later(n, [w[0]])[0] for w in waits if w is not None]
    assert any(y > x for x, y in itertools.pairwise(raw)), raw
    joint = feed.retry_chain(n)
    assert all(x >= y for x, y in itertools.pairwise(joint)), joint
    assert joint[-1] < raw[-1]
    st = feed.stats(n)
    call = st.call_429_fraction
    assert st.call_failure_fraction == pytest.approx(call * joint[-1], rel=1e-9)
    refused = call * (1.0 + sum(joint))
    assert st.loss_fraction == pytest.approx(
        refused / (1.0 + call * (1.0 + sum(joint[:-1]))), rel=1e-9)


@pytest.mark.parametrize(("enforcement", "memory"), [
    ({"type": "fixed_window", "window": "15s"}, None),
    ({"type": "token_bucket", "burst": "15s"}, 15.0),
    ({"type": "sliding_window", "window": "15s"}, 15.0)])
def test_the_receiver_still_short(enforcement: dict[str, str], memory: float | None
                                  ) -> None:
    """The receiver refused the call in the spell that filled the first window: a
    fixed window on the same clock is still full while that window is (the engine
    0.90-0.98 of the retries the first turns away again, hunt-3036); a token bucket or a
    sliding log has renewed the delay's share of its memory, and renewed refuses the
    retry as it refuses the calls spilled to it."""
    data = yaml.safe_load(SAME_WINDOWS.read_text())
    data["quotas"]["q1"]["enforcement"] = enforcement
    feed, _ = _entries(data)
    for blocked in (0.0, 0.3):
        for delay in (0.5, 3.0, 7.0, 20.0):
            rho = 1.0 if memory is None else max(0.0, 1.0 - delay / memory)
            want = rho + (1.0 - rho) * blocked
            assert feed._still_short(delay, blocked) == pytest.approx(want)


def test_a_bucket_or_a_log_receiving_against_the_simulator() -> None:
    """A review's profiles (``python benchmarks/session53_probes.py receivers``): the
    receiver a 15 s sliding log 37 against 38 [37-39]; the third of three deployments
    a 15 s bucket 33 against 33 [32-34]; hunt-3036's receiver a 15 s bucket 49 against
    48 [45-49]. (The orbit rule there, the share of calls, read the retries as
    admitted: each more than 5 % optimistic.)"""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from session53_probes import receiver_variants

    got = {label: analyze(profile_from_dict(d)).burst_ceiling
           for label, d in receiver_variants()}
    assert_accurate(got["hunt-3036, b a 15 s sliding log"], Recorded(38, 37, 39))
    assert_accurate(got["three deployments, c a 15 s bucket"], Recorded(33, 32, 34))
    assert_accurate(got["hunt-3036, b a 15 s bucket"], Recorded(48, 45, 49))


CHAIN = DATA / "fleet-fixed-chain-three.yaml"


def test_three_fixed_deployments_refuse_a_retry_all_again() -> None:
    """Three deployments of fixed windows: the chain's last one reads a retry as refused
    by all three again while the first window has not ended (the later ones, on the
    same clock, still full); the engine refuses 0.787 of first retries again, the model
    0.880 (``python benchmarks/session53_probes.py chain``). The middle one has no chain
    (its refusals spill on)."""
    prof = load_profile(CHAIN)
    fa = FleetAnalysis(prof, Workload.from_profile(prof))
    by = {e.c.quota: e.model for e in fa.fm.entries}
    assert by["q1"].later is None and by["q2"].later is not None
    joint = by["q2"].retry_chain(33)
    assert 0.7 < joint[0] < 0.9, joint
    assert all(x >= y for x, y in itertools.pairwise(joint))
    assert analyze(prof).burst_ceiling <= 38


@pytest.mark.xfail(strict=True, reason=(
    "session 53: 36 against 33 [32-34] (41 before the retry chain): without retries c "
    "turns away 0.73 % of the route's calls at 33 sessions where the engine turns away "
    "1.19 % — a fixed window fed by a fixed window's overflow, fed again (python "
    "benchmarks/session53_probes.py chain)"))
def test_three_fixed_deployments_against_the_simulator() -> None:
    assert_accurate(analyze(load_profile(CHAIN)).burst_ceiling, Recorded(33, 32, 34),
                    CHAIN.name)
