"""Session 43's probes (issue 13).

    python benchmarks/session43_probes.py size   # the spells' sizing, in the engine

``size``: ``capacity size`` of the two head-spells fleets (tests/data/fleet-head-spells-
{honoured,backoff}.yaml) at N past their ceiling: the limits it asks for, the analytic
ceiling with them set, and the engine's attempts refused at N with them (4 × 1 h, seed 1)
— beside the engine at N with the quotas as they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.cli.entry import one_blas_thread  # noqa: E402

one_blas_thread()

from capacity.analytic.model import analyze  # noqa: E402
from capacity.profile.loader import load_profile  # noqa: E402
from capacity.sim.engine import simulate  # noqa: E402
from capacity.whatif.ceiling import size  # noqa: E402


def _engine(path: Path, n: int, sets: list[str]) -> str:
    est = simulate(load_profile(path, sets), n, replications=4, seed=1,
                   workers=2).metrics["attempt_429_fraction"]
    return f"{est.mean:.2%} [{est.lo:.2%}-{est.hi:.2%}]"


def size_probe() -> None:
    for name, n in (("honoured", 215), ("backoff", 155)):
        path = ROOT / "tests" / "data" / f"fleet-head-spells-{name}.yaml"
        prof = load_profile(path)
        res = size(prof, n, method="analytic")
        sets = [d.set_path for d in res.to_raise]
        after = analyze(load_profile(path, sets)).burst_ceiling
        print(f"{name} at {n} (ceiling {analyze(prof).burst_ceiling}, target "
              f"{prof.targets.max_429_fraction:.0%}): asks {' '.join(sets) or 'nothing'}; "
              f"ceiling with them {after}", flush=True)
        print(f"  engine at {n}: as they are {_engine(path, n, [])}, with them "
              f"{_engine(path, n, sets)}", flush=True)


if __name__ == "__main__":
    {"size": size_probe}[sys.argv[1]]()
