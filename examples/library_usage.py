"""Use capacity as a library: load a profile, override a value, read the ceilings.

Run: python examples/library_usage.py
"""

from __future__ import annotations

from pathlib import Path

from capacity import load_profile
from capacity.analytic import analyze

PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "web-research.yaml"


def main() -> None:
    """Print the ceilings of the founding profile under three enforcement windows."""
    for window in ("60s", "10s", "1s"):
        profile = load_profile(PROFILE, [f"quotas.deployment.enforcement.window={window}"])
        result = analyze(profile)
        print(f"{window:>4} windows: mean-value {result.mean_ceiling:5.1f}, "
              f"burst-aware {result.burst_ceiling:3d} sessions "
              f"(binding {result.binding.name})")


if __name__ == "__main__":
    main()
