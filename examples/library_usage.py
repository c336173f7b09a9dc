"""Use capacity as a library: load a profile, override values, read the ceilings,
simulate, and search for the saturation point — no CLI involved.

Run: python examples/library_usage.py
"""

from __future__ import annotations

from pathlib import Path

from capacity import load_profile
from capacity.analytic.model import analyze
from capacity.search import find_saturation
from capacity.sim.engine import simulate

PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "web-research.yaml"


def main() -> None:
    """Ceilings under three enforcement windows, then a simulation and a search."""
    for window in ("60s", "10s", "1s"):
        profile = load_profile(PROFILE, [f"quotas.deployment.enforcement.window={window}"])
        result = analyze(profile)
        print(f"{window:>4} windows: mean-value {result.mean_ceiling:5.1f}, "
              f"burst-aware {result.burst_ceiling:3d} sessions "
              f"(binding {result.binding.name})")

    profile = load_profile(PROFILE)
    run = simulate(profile, 40, replications=10, horizon_s=1800, seed=2026)
    share = run.metrics["attempt_429_fraction"]
    p95 = run.metrics["turn_latency_p95_s"]
    print(f"40 sessions, simulated: {share.mean:.2%} of attempts answered 429 "
          f"(95% CI {share.lo:.2%}–{share.hi:.2%}), p95 turn latency {p95.mean:.1f}s")

    analytic = analyze(profile)
    sat = find_saturation(profile, analytic.burst_ceiling, int(analytic.mean_ceiling),
                          replications=10, horizon_s=1800, seed=2026)
    print(f"simulated saturation point: {sat.n_star} sessions "
          f"(95% CI {sat.n_lo}–{sat.n_hi}; seed {sat.seed})")


if __name__ == "__main__":
    main()
