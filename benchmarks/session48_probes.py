"""Session 48's probes (issue 13): a sliding log that logs every attempt spills by the
route's rate over a longer receiver's window.

Run from the repository root::

    python benchmarks/session48_probes.py local      # hunt-3008's spill, engine and model
    python benchmarks/session48_probes.py exp        # ... an exponential think time, shares

``local``: tests/data/counted-log-spill-long-receiver.yaml (hunt-3008: a 1 s RPM log
that logs every attempt, spilling into a 15 s fixed window) at 383 sessions with its
retries removed and the receiver's limits ten times over (so nothing it does feeds back):
the engine's calls per 15 s window at the log (``Y``) and spilled (``S``), one
replication of 1 h, seed 1 — the share spilled where ``Y`` is near its 10th, 50th and
90th percentiles, the slope of ``S`` on ``Y``, the spread of ``S`` and ``P(S > 51)``
(51: the receiver's real allowance), ``P(S > 70)``; beside them the log's model's own share
at the session counts whose mean count is those ``Y`` (``n·Y/E[Y]``), and the spilled
calls' law as the room law had it (``(Y − R)⁺``, ``fleet._LOCAL_RATE_SPAN`` infinite), and
by the local rate thinned at 4 and at 32 kept fractions (``fleet._LOCAL_STEPS``). Then the
record's analytic N* by the room law and by the local rate.

``exp``: the same profile with an exponential think time of the same mean (its sdk
retries kept): the receiver's largest share of attempts answered 429 by the room law and
by the local rate, and the engine's share of attempts (4 × 1 h, seed 1), at 370, 400 and
430 sessions (the target 3 %); the analytic N* by each and the simulated search's.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.analytic import fleet  # noqa: E402
from capacity.analytic.fleet import FeedModel, fleet_models  # noqa: E402
from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.search import find_saturation  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_DEP, T_T  # noqa: E402

PROFILE = ROOT / "tests" / "data" / "counted-log-spill-long-receiver.yaml"
SESSIONS = 383
WINDOW_S = 15.0


def variant(*, retries: bool = False, receiver_times: float = 10.0,
            exponential_think: bool = False) -> Profile:
    """The profile without retries (unless ``retries``), the receiver's limits times
    ``receiver_times``, the think time exponential of the same mean if asked."""
    data = yaml.safe_load(PROFILE.read_text())
    if not retries:
        data["retry"] = {"max_retries": 0}
    for dim in ("rpm", "tpm"):
        data["quotas"]["q1"][dim] *= receiver_times
    if exponential_think:
        data["session"]["think_time"] = {"exponential": {"mean": data["session"]["think_time"]}}
    return profile_from_dict(data)


def engine_counts(prof: Profile, n: int, hours: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(calls at the log, calls it spilled) per 15 s window of the receiver's clock, one
    replication (seed 1); the first and last windows, partly traced, dropped."""
    tr = trace_attempts(prof, n, horizon_s=3600.0 * hours, seed=1, max_attempts=5_000_000)
    r = tr.rows
    t = r[:, T_T] + tr.clock_offset_s
    win = np.floor(t / WINDOW_S).astype(np.int64)
    win -= win.min()

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(win[mask], minlength=int(win.max()) + 1)[1:-1].astype(float)

    return count(r[:, T_DEP] == 0), count(r[:, T_DEP] == 1)


def fed(prof: Profile, dim: str = "rpm") -> FeedModel:
    """The receiver's (q1) model of ``dim``: a :class:`FeedModel`."""
    wl = Workload.from_profile(prof)
    fm = fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.quota == "q1" and e.c.dim == dim]
    assert isinstance(e.model, FeedModel)
    return e.model


def head(prof: Profile, dim: str = "rpm") -> Any:
    """The log's (q0) model of ``dim``."""
    wl = Workload.from_profile(prof)
    fm = fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.quota == "q0" and e.c.dim == dim]
    return e.model


@contextmanager
def spill_rule(local: bool) -> Iterator[None]:
    """The room law (``local`` False) or the local rate."""
    span = fleet._LOCAL_RATE_SPAN
    fleet._LOCAL_RATE_SPAN = span if local else math.inf
    try:
        yield
    finally:
        fleet._LOCAL_RATE_SPAN = span


def law_figures(pmf: np.ndarray, at: tuple[float, ...] = (51.0, 70.0)
                ) -> tuple[float, float, list[float]]:
    """(mean, sd, P(S > x) for x in ``at``) of a law of calls."""
    p = pmf / pmf.sum()
    k = np.arange(p.size, dtype=np.float64)
    mu = float(np.dot(k, p))
    return (mu, math.sqrt(max(float(np.dot(k * k, p)) - mu * mu, 0.0)),
            [float(p[k > x].sum()) for x in at])


def local() -> None:
    prof = variant()
    n = SESSIONS
    y, s = engine_counts(prof, n)
    slope = float(np.polyfit(y, s, 1)[0])
    print(f"engine, {n} sessions, no retries, the receiver never refusing (1 h, seed 1): "
          f"{y.mean():.1f} ± {y.std():.1f} calls a 15 s window at the log, "
          f"{s.mean():.1f} ± {s.std():.1f} spilled; slope {slope:.2f}")
    log = head(prof)
    for quant in (0.1, 0.5, 0.9):
        at = float(np.quantile(y, quant))
        near = np.abs(y - at) < 3.0
        m = max(1, round(n * at / y.mean()))
        print(f"  Y near {at:.0f}: the engine spills {s[near].sum() / y[near].sum():.1%}; "
              f"the log's model at {m} sessions {log.stats(m).loss_fraction:.1%}")
    mu, sd = float(s.mean()), float(s.std())
    tail = [float((s > x).mean()) for x in (51.0, 70.0)]
    print(f"  spilled: engine mean {mu:.1f}, sd {sd:.1f}, P(S > 51) {tail[0]:.3f}, "
          f"P(S > 70) {tail[1]:.3f}")
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on):
            mu, sd, tail = law_figures(fed(prof).sources[0].calls(n))
        print(f"  spilled: {name:<10} mean {mu:.1f}, sd {sd:.1f}, P(S > 51) {tail[0]:.3f}, "
              f"P(S > 70) {tail[1]:.3f}")
    real = profile_from_dict(yaml.safe_load(PROFILE.read_text()))
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on):
            print(f"hunt-3008's analytic N* by the {name}: {analyze(real).burst_ceiling} "
                  "(simulated 383 [378-387])")


def exp() -> None:
    prof = variant(retries=True, receiver_times=1.0, exponential_think=True)
    for n in (370, 400, 430):
        row = []
        for name, on in (("room law", False), ("local rate", True)):
            with spill_rule(on):
                res = analyze(prof, sessions=n)
            share = max(c.at_sessions.attempt_429_fraction for c in res.constraints
                        if c.quota == "q1" and c.at_sessions is not None)
            row.append(f"{name} {share:.2%}")
        e = simulate(prof, n, replications=4, seed=1, workers=2).metrics[
            "attempt_429_fraction"]
        print(f"{n}: {', '.join(row)}; engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}]")
    for name, on in (("room law", False), ("local rate", True)):
        with spill_rule(on):
            print(f"analytic N* by the {name}: {analyze(prof).burst_ceiling}")
    sat = find_saturation(prof, 340, 420, seed=1, replications=20, max_sessions=1200)
    print(f"simulated N* {sat.n_star} [{sat.n_lo}-{sat.n_hi}] (20 × 1 h, seed 1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("local", "exp"))
    {"local": local, "exp": exp}[ap.parse_args().what]()


if __name__ == "__main__":
    main()
