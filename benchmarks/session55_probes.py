"""Session 55's probes (issue 13): retry storms below the storm threshold.

Run from the repository root::

    python benchmarks/session55_probes.py substorms   # the spells, the engine, the model
    python benchmarks/session55_probes.py deferred    # fixed windows: a turn's later calls

``substorms``: tests/data/sliding-counted-backoff-substorms.yaml (from hunt-3093: a 2 s
sliding RPM log of 13 counting refusals, one backoff retry ~0.27 s later, the storm
threshold at 185 sessions) at 140, 154 and 162 sessions. The engine's 429 share of
attempts (400 replications × 1 h, seed 7) against the model's: the healthy share (the
storms gated off below the threshold, as before session 55), with the spells whose
retries are logged with their refusal, and with the retries logged when they come (the
answer now). Then the spells themselves: in the engine (6 × 1 h traces) a spell is the
attempts turned away from a refusal until a fresh call is let in; in the model, the
ignition rate (:meth:`ClumpWindowModel._storms`) and the chain's size.

``deferred``: tests/data/fixed-window-chain-deferred.yaml (from hunt-3041: two short calls
~0.5 s apart, 60 s fixed windows of 76 requests, the SDK's retries) at 50-56 sessions, and
the same turns with their second call left out (the think time halved: the same calls a
second): the engine's 429 share of attempts (300 × 1 h, seed 7), the model's with every
call past a window's crossing refused (as before session 55) and with a refused turn's
later calls deferred past the window (now; :meth:`ClumpWindowModel._deferred_thinning`,
whose share of the overflow refused is printed). One call a turn has nothing to defer.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))

from analytic_accuracy import empty_stores  # noqa: E402

from capacity.analytic import window  # noqa: E402
from capacity.analytic.model import constraint_model, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_T  # noqa: E402

PROFILE = ROOT / "tests" / "data" / "sliding-counted-backoff-substorms.yaml"
SESSIONS = (140, 154, 162)


def _log(sub: bool, delay: bool) -> window.ClumpWindowModel:
    window._SUB_STORMS, window._STORM_RETRY_DELAY = sub, delay
    empty_stores()
    wl = Workload.from_profile(load_profile(PROFILE))
    model = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
    inner = getattr(model, "inner", model)
    assert isinstance(inner, window.ClumpWindowModel)
    return inner


def _spells(n: int, hours: int = 6) -> tuple[float, float]:
    """(spells an hour, attempts a spell) in the engine's traces."""
    p = load_profile(PROFILE)
    runs: list[int] = []
    for rep in range(hours):
        r = trace_attempts(p, n, horizon_s=3600.0, seed=rep + 11).rows
        r = r[np.argsort(r[:, T_T], kind="stable")]
        fresh, refused = r[:, T_ATTEMPT] == 1, r[:, T_ADMITTED] == 0
        cur = 0
        for f, x in zip(fresh.tolist(), refused.tolist(), strict=True):
            if x:
                cur += 1
            elif f and cur:
                runs.append(cur)
                cur = 0
    return len(runs) / hours, float(np.mean(runs)) if runs else 0.0


def _ignition(log: window.ClumpWindowModel, n: int) -> float:
    """Storms started an hour (``_storms``' declumped ignition rate)."""
    g = log.pmf(n - 1)
    palm = np.convolve(g, log.own_pmf)
    q = math.floor(log.q_lat + 1e-9)
    tail = np.concatenate([np.cumsum(palm[::-1])[::-1], [0.0]])
    b = np.arange(log.call_pmf.size)
    over = tail[np.clip(q + 1 - b, 0, tail.size - 1)] - tail[min(q + 1, tail.size - 1)]
    lam_w = n * log.calls_per_window
    return (max(0.0, 1.0 - lam_w / (q + 1)) * lam_w / log.window_s
            * float(log.call_pmf @ over) * 3600.0)


def substorms() -> None:
    p = load_profile(PROFILE)
    print(f"storm threshold {_log(True, True).storm_threshold():.1f} sessions\n")
    print("| sessions | engine [95 % CI] | healthy | spells, retries logged at once "
          "| spells, retries logged when they come |")
    print("|---|---|---|---|---|")
    for n in SESSIONS:
        e = simulate(p, n, replications=400, seed=7, horizon_s=3600.0)
        a = e.metrics["attempt_429_fraction"]
        shares = [_log(s, d).attempt_share(n)["attempt"]
                  for s, d in ((False, False), (True, False), (True, True))]
        print(f"| {n} | {a.mean:.3%} [{a.lo:.3%}–{a.hi:.3%}] | "
              + " | ".join(f"{x:.3%}" for x in shares) + " |")
    print("\n| sessions | engine spells/h | engine attempts a spell | model ignitions/h "
          "| model spell, retries at once | model spell, when they come |")
    print("|---|---|---|---|---|---|")
    for n in SESSIONS:
        rate, size = _spells(n)
        at_once = _log(True, False).storm_size(n)
        now = _log(True, True)
        print(f"| {n} | {rate:.1f} | {size:.2f} | {_ignition(now, n):.1f} | "
              f"{at_once:.2f} | {now.storm_size(n):.2f} |")
    window._SUB_STORMS, window._STORM_RETRY_DELAY = True, True


def deferred() -> None:
    import yaml

    from capacity.profile.loader import profile_from_dict

    chain = PROFILE.parent / "fixed-window-chain-deferred.yaml"
    data = yaml.safe_load(chain.read_text())
    single = dict(data, name="fixed-window-single")
    single["session"] = {"think_time": {"uniform": ["0s", "96.6s"]}, "turns": {
        "one": {"steps": data["session"]["turns"]["chain"]["steps"][:1]}}}
    print("| turns | sessions | engine [95 % CI] | every call past the crossing refused "
          "| later calls deferred (now) | share of the overflow refused |")
    print("|---|---|---|---|---|---|")
    for what, d in (("two calls", data), ("one call", single)):
        p = profile_from_dict(d)
        for n in (50, 52, 54, 56):
            a = simulate(p, n, replications=300, seed=7, horizon_s=3600.0).metrics[
                "attempt_429_fraction"]
            shares, thin = [], 1.0
            for on in (False, True):
                window._DEFERRED_STAGES = on
                empty_stores()             # (the turn sample's laws are kept by profile)
                wl = Workload.from_profile(p)
                m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
                log = getattr(m, "inner", m)
                assert isinstance(log, window.ClumpWindowModel)
                shares.append(log.attempt_share(n)["attempt"])
                if on:
                    thin = log._deferred_thinning(n)
            print(f"| {what} | {n} | {a.mean:.3%} [{a.lo:.3%}–{a.hi:.3%}] | {shares[0]:.3%} "
                  f"| {shares[1]:.3%} | {thin:.2f} |")
    window._DEFERRED_STAGES = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["substorms", "deferred"])
    args = ap.parse_args()
    {"substorms": substorms, "deferred": deferred}[args.probe]()


if __name__ == "__main__":
    main()
