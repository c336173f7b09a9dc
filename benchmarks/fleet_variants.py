"""Off-table probes of the fleet model: ptu-spillover's variants with one setting moved,
analytic N* against the simulated N* (seed 1, 20 replications × 1 simulated hour, the
search and bracket of benchmarks/analytic_accuracy.py), to see whether the fleet rows'
agreement carries over to neighbouring workloads.

Run from the repository root::

    python benchmarks/fleet_variants.py [TEXT ...]   # only the cases whose name holds TEXT
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.analytic.model import analyze  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.search import find_saturation  # noqa: E402

PTU = ROOT / "profiles" / "ptu-spillover.yaml"
DATA = ROOT / "tests" / "data"
CASES: list[tuple[str, list[Path], list[str]]] = [
    ("ptu-spillover, PTU 5 s deep", [PTU], ["quotas.ptu.enforcement.burst=5s"]),
    ("ptu-spillover, PTU 30 s deep", [PTU], ["quotas.ptu.enforcement.burst=30s"]),
    ("ptu-spillover, PTU 150k ITPM / 50k OTPM", [PTU],
     ["quotas.ptu.itpm=150000", "quotas.ptu.otpm=50000"]),
    ("ptu-spillover, no retries", [PTU], ["retry.max_retries=0"]),
    ("first call larger than the bucket, PTU 30 s deep (the call fits)",
     [PTU, DATA / "ptu-oversized-first-call.yaml"], ["quotas.ptu.enforcement.burst=30s"]),
    ("first call larger than the bucket, paygo 300 RPM",
     [PTU, DATA / "ptu-oversized-first-call.yaml"], ["quotas.paygo.rpm=300"]),
    ("pay-as-you-go first, paygo 300 RPM", [PTU, DATA / "ptu-paygo-first.yaml"],
     ["quotas.paygo.rpm=300"]),
    ("pay-as-you-go first, PTU 30 s deep", [PTU, DATA / "ptu-paygo-first.yaml"],
     ["quotas.ptu.enforcement.burst=30s"]),
    ("PTU a counted 120 RPM bucket", [PTU, DATA / "ptu-requests-bucket.yaml"],
     ["quotas.ptu.rpm=120"]),
    ("beside chat and 20 held batch sessions", [PTU, ROOT / "examples" / "chat-and-batch.yaml"],
     ["populations.batch.sessions=20"]),
]


def main(argv: list[str]) -> int:
    """Print one markdown row per case."""
    print("| variant | analytic N* | simulated N* [95% CI] | error |")
    print("|---|---|---|---|")
    for name, files, sets in CASES:
        if argv and not any(a in name for a in argv):
            continue
        p = load_profile(files, sets)
        res = analyze(p)
        n_a = res.burst_ceiling
        lo, hi = max(1, int(n_a * 0.8)), int(res.mean_ceiling + 1e-9) + 1
        cap = max(hi, int(res.mean_ceiling / (1.0 - p.targets.max_429_fraction)) + 1)
        sim = find_saturation(p, lo, max(lo + 1, hi), seed=1, replications=20,
                              horizon_s=3600.0, max_sessions=cap)
        err = (n_a - sim.n_star) / sim.n_star
        ok = (abs(err) <= 0.03 or sim.n_lo <= n_a <= sim.n_hi) and err <= 0.05
        print(f"| {name} | {n_a} | {sim.n_star} [{sim.n_lo}–{sim.n_hi}] | {err:+.1%}"
              f"{'' if ok else ' ✗'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
