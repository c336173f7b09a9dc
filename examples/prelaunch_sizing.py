"""Pre-launch quota sizing: what must we request to carry the launch target?

Run: python examples/prelaunch_sizing.py [SESSIONS]
"""

from __future__ import annotations

import sys
from pathlib import Path

from capacity import load_profile
from capacity.analytic.model import analyze
from capacity.whatif.ceiling import size

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def main(sessions: int = 500) -> None:
    """Size every shipped profile for ``sessions`` and confirm the answer round-trips."""
    for path in sorted(PROFILES.glob("*.yaml")):
        profile = load_profile(path)
        result = size(profile, sessions)
        print(f"== {profile.title}: {result.summary()}")
        for d in result.dimensions:
            print(f"   {d.quota}.{d.dimension:<5} now {d.current_limit:>12,.0f}   "
                  f"napkin {d.mean_value_limit:>12,.0f}   needed {d.required_limit:>12,.0f}")
        # Feed the answer back: the new quota must carry the target.
        check = analyze(load_profile(path, [d.set_path for d in result.to_raise]))
        print(f"   with those limits the burst-aware ceiling is {check.saturation_point:,}")
        assert check.saturation_point >= sessions


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
