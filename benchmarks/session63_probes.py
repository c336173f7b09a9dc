"""Session 63's probes (issue 13): told retries carried into a fixed window whose count
follows the full one's.

Run from the repository root::

    python benchmarks/session63_probes.py pairs        # ~15 s
    python benchmarks/session63_probes.py shares       # ~5 s
    python benchmarks/session63_probes.py steps        # ~10 s

``pairs``: tests/data/fixed-1s-window-pairs.yaml (hunt-4091's second deployment alone:
a mix of one-call turns, tool loops and chains whose calls come ~1 s apart, Exp(173.6 s)
think time) in fixed windows of 1, 2, 5 and 10 s at 430 and 1,290 RPM, with the SDK's
retries (honouring the retry-after) and without: one session's lag-1 correlation of
its window counts (the chain takes it from 0.2 on, for allowances of at most 64
requests), the analytic N* with the pair chain (``_pair_carry_law``) and with
independent windows (``window._PAIR_CARRY = False``, the model before), against the
simulated N* [95 % CI] (seed 1, 20 replications) and the accuracy table's rule.

``shares``: the share of fresh calls refused at 140 and 160 sessions (1 s windows) and 170
and 186 (2 s), 430 RPM, the SDK's retries: the pair chain's, the independent windows',
and the engine's (8 replications × 1 h after the warm-up, seed 1); and how full the
windows after a full one are in the engine (the fresh calls a window sees, overall and
after a window over its allowance).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "tests" / "data" / "fixed-1s-window-pairs.yaml"


def _variant(window: str, rpm: int, retried: bool) -> Any:
    import yaml

    from capacity.profile.loader import profile_from_dict

    data = yaml.safe_load(PAIRS.read_text())
    data = copy.deepcopy(data)
    data["quotas"]["q"]["enforcement"]["window"] = window
    data["quotas"]["q"]["rpm"] = rpm
    if not retried:
        data["retry"] = {"max_retries": 0}
    return profile_from_dict(data)


def _answer(prof: Any, paired: bool) -> Any:
    """The analytic result with the pair chain or without (every store emptied: a
    fresh process's answer)."""
    from analytic_accuracy import empty_stores

    from capacity.analytic import window
    from capacity.analytic.model import analyze

    empty_stores()
    window._PAIR_CARRY = paired
    try:
        return analyze(prof.model_copy(deep=True))
    finally:
        window._PAIR_CARRY = True


def _correlation(prof: Any) -> float | None:
    """One session's lag-1 correlation of its window counts, whether or not the model
    takes the pair chain there (its gates lifted for a fresh copy of the profile; None:
    no pair law at all, e.g. no retries)."""
    from capacity.analytic import window
    from capacity.analytic.clumped import ClumpedWindow
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload

    gates = window._PAIR_MIN_RHO, window._PAIR_POINTS
    window._PAIR_MIN_RHO, window._PAIR_POINTS = -2.0, 10**9
    try:
        wl = Workload.from_profile(prof.model_copy(deep=True))
        (c,) = wl.constraints
        model = constraint_model(wl, c, cycle_time(wl).cycle_s)
    finally:
        window._PAIR_MIN_RHO, window._PAIR_POINTS = gates
    if not isinstance(model, ClumpedWindow) or model.inner.pair_law is None:
        return None
    a, b, w = model.inner.pair_law
    ea, eb = float((a * w).sum()), float((b * w).sum())
    return (float((a * b * w).sum()) - ea * eb) / (float((a * a * w).sum()) - ea * ea)


def pairs() -> None:
    from analytic_accuracy import meets_target

    from capacity.search import find_saturation

    print("| window | RPM | retries | correlation | analytic N* (pair chain) | "
          "independent windows | simulated N* [95% CI] | rule |")
    print("|---|---|---|---|---|---|---|---|")
    for window in ("1s", "2s", "5s", "10s"):
        for rpm in (430, 1290):
            for retried in (True, False):
                prof = _variant(window, rpm, retried)
                res = _answer(prof, True)
                alone = _answer(prof, False).burst_ceiling
                n = res.burst_ceiling
                sat = find_saturation(prof, max(1, int(min(n, alone) * 0.8)),
                                      int(max(n, alone) * 1.1) + 1, seed=1, replications=20,
                                      max_sessions=int(res.mean_ceiling * 1.1) + 1)
                rho = _correlation(prof)
                ok = meets_target(n, sat.n_star, sat.n_lo, sat.n_hi)
                print(f"| {window} | {rpm:,} | {'SDK' if retried else 'none'} | "
                      f"{'–' if rho is None else f'{rho:.2f}'} | {n} | {alone} | "
                      f"{sat.n_star} [{sat.n_lo}–{sat.n_hi}] | "
                      f"{n / sat.n_star - 1.0:+.1%} {'meets' if ok else 'OUT'} |",
                      flush=True)


def shares() -> None:
    import math

    import numpy as np

    from capacity.analytic import window as win
    from capacity.analytic.clumped import ClumpedWindow
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.sim.engine import default_warmup, trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_T

    print("| window | sessions | pair chain | independent windows | engine | engine: fresh "
          "calls a window, overall / after a full one |")
    print("|---|---|---|---|---|---|")
    for window, n in (("1s", 140), ("1s", 160), ("2s", 170), ("2s", 186)):
        prof = _variant(window, 430, True)
        model_shares = []
        for paired in (True, False):
            win._PAIR_CARRY = paired
            try:
                wl = Workload.from_profile(prof.model_copy(deep=True))
                (c,) = wl.constraints
                model = constraint_model(wl, c, cycle_time(wl).cycle_s)
                assert isinstance(model, ClumpedWindow)
                model_shares.append(float(model.stats(n).call_429_fraction or 0.0))
            finally:
                win._PAIR_CARRY = True
        w = float(window[:-1])
        q = math.floor(430 / 60.0 * w)
        made = refused = 0
        counts, after = [], []
        for rep in range(8):
            tr = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=rep)
            rows = tr.rows[tr.rows[:, T_T] >= default_warmup(prof)]
            fresh = rows[:, T_ATTEMPT] == 1
            made += int(fresh.sum())
            refused += int((fresh & (rows[:, T_ADMITTED] == 0)).sum())
            # The provider's windows: its clock at t is t + clock_offset_s.
            idx = np.floor((rows[:, T_T] + tr.clock_offset_s) / w).astype(np.int64)
            idx -= idx.min()
            s = np.bincount(idx, weights=fresh.astype(np.float64))[1:-1]
            counts.append(s)
            after.append(s[1:][s[:-1] > q])
        print(f"| {window} | {n} | {100 * model_shares[0]:.2f} % | "
              f"{100 * model_shares[1]:.2f} % | {100 * refused / made:.2f} % | "
              f"{np.concatenate(counts).mean():.2f} / {np.concatenate(after).mean():.2f} |",
              flush=True)


def steps() -> None:
    import yaml

    from capacity.analytic.model import analyze
    from capacity.profile.loader import profile_from_dict
    from capacity.search import find_saturation

    base = yaml.safe_load((ROOT / "benchmarks" / "hunt" / "profiles"
                           / "hunt-178.yaml").read_text())
    think = base["session"]["think_time"]
    print("| hunt-178 | analytic N* | simulated N* [95% CI] | error | note said |")
    print("|---|---|---|---|---|")
    for label, pause, retry in (("as drawn (fixed think time, backoff retries)", think, None),
                                ("exponential think time", {"exponential": think}, None),
                                ("fixed, no retries", think, {"max_retries": 0}),
                                ("fixed, the SDK's retries", think, {})):
        data = copy.deepcopy(base)
        data["session"]["think_time"] = pause
        if retry is not None:
            data["retry"] = retry
        prof = profile_from_dict(data)
        res = analyze(prof)
        n = res.burst_ceiling
        sat = find_saturation(prof, max(1, int(n * 0.7)), int(max(n * 1.6, n + 5)), seed=1,
                              replications=20, max_sessions=int(res.mean_ceiling * 1.1) + 1)
        said = any("fall into step" in x for x in res.notes)
        print(f"| {label} | {n} | {sat.n_star} [{sat.n_lo}–{sat.n_hi}] | "
              f"{n / sat.n_star - 1.0:+.1%} | {'yes' if said else 'no'} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("probe", choices=["pairs", "shares", "steps"])
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    {"pairs": pairs, "shares": shares, "steps": steps}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
