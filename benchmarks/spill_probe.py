"""What the analytic model and the engine put into each deployment a priority route spills
into (issue 13): the figures behind RESULTS.md's fleet paragraphs of 2026-12-03.

Run from the repository root::

    python benchmarks/spill_probe.py tests/data/never-fit-spill.yaml --sessions 300 \\
        --drop-populations
    python benchmarks/spill_probe.py benchmarks/hunt/profiles/hunt-1022.yaml \\
        --sessions 160 --drop-populations --set quotas.q0.itpm=1e9 --set quotas.q1.itpm=1e9

For every receiving slot of the fleet model at N: the mean units a window of its law
holds (the burst model), the fluid units a window (`Entry.units_per_s`, the `mean`
column's load) and its 429 share of the route's calls; then, from one simulated hour
(`trace_attempts`, seed 1), the units the engine offers that slot a window (every attempt
reaching the deployment, refused ones at their charge), their standard deviation over
fixed windows, and the share of those attempts it refuses. ``--drop-populations`` keeps
the main session only; ``--set`` overrides as the CLI's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capacity.analytic.fleet import FeedModel, fleet_models
from capacity.analytic.model import cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.sim.engine import trace_attempts
from capacity.sim.kernels import T_ADMITTED, T_DEP, T_T, T_UNITS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--drop-populations", action="store_true")
    ap.add_argument("--horizon", type=float, default=3600.0, help="simulated seconds")
    args = ap.parse_args(argv)
    p = load_profile(args.profile, args.overrides)
    if args.drop_populations:
        data = p.model_dump(mode="json", exclude_none=True)
        data.pop("populations", None)
        p = profile_from_dict(data)
    n = args.sessions
    wl = Workload.from_profile(p)
    tr = trace_attempts(p, n, horizon_s=args.horizon, seed=1)
    deps = list(p.deployments)
    print(f"{p.title} at {n} sessions (engine: seed 1, {args.horizon:g} s)")
    for e in fleet_models(wl, cycle_time(wl)).entries:
        m = e.model
        if not isinstance(m, FeedModel):
            continue
        g, _ = m.window_law(n)
        law = float(np.arange(g.size) @ g) * m.h
        w = m.window_s
        dep = next(d for d in deps if e.c.quota in p.quotas_for(d))
        j = next(i for i, s in enumerate(tr.slots)
                 if s.quota == e.c.quota and s.dimension == e.c.dim)
        at = tr.rows[:, T_DEP] == deps.index(dep)
        per = np.bincount(np.floor(tr.rows[at, T_T] / w).astype(np.int64),
                          weights=tr.rows[at, T_UNITS + j],
                          minlength=int(args.horizon / w))
        refused = float((tr.rows[at, T_ADMITTED] == 0).mean()) if at.any() else 0.0
        print(f"  {e.c.name} ({dep}, {w:g} s): model law {law:,.0f} units a window, "
              f"fluid {e.units_per_s(n) * w:,.0f}, 429 share of the route's calls "
              f"{100 * float(m.stats(n).call_429_fraction or 0.0):.2f} % | engine "
              f"{per.mean():,.0f} (sd {per.std():,.0f}), refuses {100 * refused:.1f} % "
              f"of what reaches {dep}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
