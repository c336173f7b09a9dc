"""Session 62's probes (issue 13): backoff retries at a requests bucket too deep for the
level chain (``DeepBucket``) that counts its refusals.

Run from the repository root::

    python benchmarks/session62_probes.py counted      # ~5 s
    python benchmarks/session62_probes.py storm        # ~5 s
    python benchmarks/session62_probes.py depths       # ~25 s
    python benchmarks/session62_probes.py grid         # ~1 min
    python benchmarks/session62_probes.py noted        # ~4 min

``counted``: tests/data/bucket-deep-backoff-131.yaml (the 1 → 3 → 1 turn, 500 RPM as a
token bucket 10 s deep, two backoff retries that do not wait for the retry-after) and
variants of its turn — the three stages as three independent one-launch turns, the five
calls as one launch, the analysis answering in ~1 s (5 tokens) or ~12 s (450) — each with
the bucket counting its refusals (the default) and not: the analytic N* against the
simulated N* [95 % CI] (seed 1, 20 replications).

``storm``: tests/data/bucket-counted-backoff-storm.yaml (one call a turn, Exp(300 s)
think time, a 500 RPM bucket 5 s deep counting its refusals, four backoff retries): the
analytic N* against the simulated one (seed 1, 20 replications), with 2 and 4 retries,
counted and not; then at 2,220, 2,300 and 2,350 sessions each replication's share of
attempts refused and its storms (runs of seconds in which more than half the attempts
were refused, two seconds apart or less joined; from–to, seconds after the warm-up) over
1 h after the warm-up (seed 2, 4 replications).

``depths``: the same profile at buckets 1 s, 2 s, 5 s and 10 s deep with 2 and 4
retries: backoff ones at the bucket counting its refusals, backoff ones not counting,
and told ones (the retry-after waited for) counting — the analytic N* against the
simulated one (``capacity ceiling --seed 1``'s search, 20 replications) and the accuracy
table's rule.

``grid``: session 61's grid of plain variants (``session61_probes.py grid``: fixed 60 s /
10 s / 1 s windows, sliding 60 s / 10 s logs, buckets 10 s / 60 s deep; 500 RPM, 1.5M TPM
or 2.5M TPM reserving max_tokens; the SDK's retries, backoff ones or none) on two other
turns, each with an Exp(30 s) think time: a chat turn of one call, and a tool loop (a
plan call, 0–3 tool calls one after another, an answer) — each analytic N* against the
simulated one (seed 1, 20 replications) and the accuracy table's rule.

``noted``: every hunt record (``benchmarks/hunt/records.jsonl``, each profile drawn again
from its seed) whose analytic answer carries the bucket-storm note: its analytic N* now
against the simulated N* [95 % CI] the record holds, and the accuracy table's rule.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _sim(prof: Any, n: int, reps: int = 20) -> Any:
    from capacity.search import find_saturation

    return find_saturation(prof, max(1, int(n * 0.85)), int(n * 1.1) + 1, seed=1,
                           replications=reps, max_sessions=int(n * 1.5) + 1)


def _turns(data: dict[str, Any], kind: str) -> dict[str, Any]:
    d = copy.deepcopy(data)
    steps = d["session"]["turns"]["research"]["steps"]
    if kind == "three independent turns":
        d["session"]["turns"] = {f"t{i}": {"weight": 1, "steps": [s]}
                                 for i, s in enumerate(steps)}
    elif kind == "one launch of 5":
        d["session"]["turns"]["research"]["steps"] = [
            {"parallel": {"count": 5, "call": steps[1]["parallel"]["call"]}}]
    elif kind == "analysis in ~1 s":
        steps[0]["call"]["output_tokens"] = 5
    elif kind == "analysis in ~12 s":
        steps[0]["call"]["output_tokens"] = 450
    return d


def counted() -> None:
    import yaml

    from capacity.analytic.model import analyze
    from capacity.profile.loader import profile_from_dict

    data = yaml.safe_load((ROOT / "tests" / "data" / "bucket-deep-backoff-131.yaml")
                          .read_text())
    from analytic_accuracy import meets_target

    print("| turn | bucket counts refusals | analytic N* | simulated N* [95% CI] | error "
          "| rule |")
    print("|---|---|---|---|---|---|")
    for kind in ("1 → 3 → 1 as in the file", "three independent turns", "one launch of 5",
                 "analysis in ~1 s", "analysis in ~12 s"):
        for count in (True, False):
            d = _turns(data, kind)
            d["quotas"]["q"]["rejected_count"] = count
            prof = profile_from_dict(d)
            n = analyze(prof).burst_ceiling
            sat = _sim(prof, n)
            ok = meets_target(n, sat.n_star, sat.n_lo, sat.n_hi)
            print(f"| {kind} | {'yes' if count else 'no'} | {n} | "
                  f"{sat.n_star} [{sat.n_lo}–{sat.n_hi}] | "
                  f"{100.0 * (n / sat.n_star - 1.0):+.1f}% | "
                  f"{'meets' if ok else 'OUTSIDE'} |", flush=True)


def storm() -> None:
    import numpy as np
    import yaml

    from capacity.analytic.model import analyze
    from capacity.profile.loader import profile_from_dict
    from capacity.sim.engine import default_warmup, trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_T

    data = yaml.safe_load((ROOT / "tests" / "data" / "bucket-counted-backoff-storm.yaml")
                          .read_text())
    print("| retries | bucket counts refusals | analytic N* | simulated N* [95% CI] |")
    print("|---|---|---|---|")
    for m in (4, 2):
        for count in (True, False):
            d = copy.deepcopy(data)
            d["retry"]["max_retries"] = m
            d["quotas"]["q"]["rejected_count"] = count
            prof = profile_from_dict(d)
            n = analyze(prof).burst_ceiling
            sat = _sim(prof, n)
            print(f"| {m} | {'yes' if count else 'no'} | {n} | "
                  f"{sat.n_star} [{sat.n_lo}–{sat.n_hi}] |", flush=True)
    prof = profile_from_dict(data)
    warm = default_warmup(prof)
    print()
    print("| sessions | replication | attempts refused | storms (s after the warm-up) |")
    print("|---|---|---|---|")
    for n in (2220, 2300, 2350):
        for rep in range(4):
            r = trace_attempts(prof, n, horizon_s=3600.0, seed=2, replication=rep).rows
            r = r[r[:, T_T] >= warm]
            refused = r[:, T_ADMITTED] == 0
            sec = np.floor(r[:, T_T] - warm).astype(np.int64)
            hot = (np.bincount(sec, refused) / np.maximum(np.bincount(sec), 1)) > 0.5
            edges = np.diff(np.concatenate([[0], hot.astype(np.int64), [0]]))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            # (Runs a second or two apart are one storm: a second with few attempts.)
            spans: list[list[int]] = []
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
                if spans and a - spans[-1][1] <= 2:
                    spans[-1][1] = b
                else:
                    spans.append([a, b])
            said = ", ".join(f"{a}–{b}" for a, b in spans) or "none"
            print(f"| {n:,} | {rep} | {100.0 * refused.mean():.3f} % | {said} |",
                  flush=True)


def depths() -> None:
    from analytic_accuracy import meets_target

    from capacity.analytic.model import analyze
    from capacity.profile.loader import load_profile
    from capacity.whatif.ceiling import SimSettings, ceiling

    path = ROOT / "tests" / "data" / "bucket-counted-backoff-storm.yaml"
    print("| depth | retries | kind | analytic N* | simulated N* [95% CI] | error | rule |")
    print("|---|---|---|---|---|---|---|")
    kinds = {"backoff, counted": [], "backoff, not counted": ["quotas.q.rejected_count=false"],
             "told, counted": ["retry.honour_retry_after=true"]}
    for depth in ("1s", "2s", "5s", "10s"):
        for m in (2, 4):
            for kind, extra in kinds.items():
                prof = load_profile(path, [f"quotas.q.enforcement.burst={depth}",
                                           f"retry.max_retries={m}", *extra])
                n = analyze(prof).burst_ceiling
                sat = ceiling(prof, sim=SimSettings(seed=1), settle=False).simulated
                assert sat is not None
                ok = meets_target(n, sat.n_star, sat.n_lo, sat.n_hi)
                print(f"| {depth} | {m} | {kind} | {n:,} | {sat.n_star:,} "
                      f"[{sat.n_lo:,}–{sat.n_hi:,}] | {100.0 * (n / sat.n_star - 1.0):+.1f}% "
                      f"| {'meets' if ok else 'OUTSIDE'} |", flush=True)


def grid() -> None:
    import itertools

    from analytic_accuracy import _CALLS
    from session61_probes import GRID_ENFORCEMENTS, GRID_LIMITS, GRID_RETRIES, grid_row

    tool = {"model": "m", "input_tokens": {"uniform": [4000, 9000]},
            "output_tokens": {"uniform": [60, 200]}, "max_tokens": 1024}
    turns: dict[str, list[dict[str, Any]]] = {
        "chat": [{"call": {"name": "answer", **_CALLS["synthesis"]}}],
        "loop": [{"call": {"name": "plan", **_CALLS["analysis"]}},
                 {"repeat": {"count": {"choice": {"values": [0, 1, 2, 3]}},
                             "call": {"name": "tool", **tool}}},
                 {"call": {"name": "answer", **_CALLS["synthesis"]}}]}
    outside = 0
    for (sn, steps), (en, e), (dn, d), (rn, r) in itertools.product(
            turns.items(), GRID_ENFORCEMENTS.items(), GRID_LIMITS.items(),
            GRID_RETRIES.items()):
        outside += not grid_row(f"{sn}-{en}-{dn}-{rn}", {**d, "enforcement": e}, r,
                                {"exponential": "30s"}, {"t": {"steps": steps}})
    print(f"outside the target: {outside}")


def noted() -> None:
    import json

    from analytic_accuracy import meets_target
    from hunt import build

    print("| record | analytic N* | simulated N* [95% CI] | error | rule |")
    print("|---|---|---|---|---|")
    for line in (ROOT / "benchmarks" / "hunt" / "records.jsonl").read_text().splitlines():
        x = json.loads(line)
        res = build(x["seed"])[3]
        if not any("grow into a retry storm" in note for note in res.notes):
            continue
        n, sim = res.burst_ceiling, x.get("simulated")
        if sim is None:
            print(f"| hunt-{x['seed']} | {n:,} | not simulated | | |")
            continue
        lo, hi = x["ci"]
        ok = meets_target(n, sim, lo, hi)
        print(f"| hunt-{x['seed']} | {n:,} | {sim:,} [{lo:,}–{hi:,}] | "
              f"{100.0 * (n / sim - 1.0):+.1f}% | {'meets' if ok else 'OUTSIDE'} |",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("probe", choices=["counted", "storm", "depths", "grid", "noted"])
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    {"counted": counted, "storm": storm, "depths": depths, "grid": grid,
     "noted": noted}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
