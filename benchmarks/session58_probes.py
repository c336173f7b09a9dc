"""Session 58's probes (issue 13): a fixed think time with retries, and what the storm
searches of sliding logs cost.

Run from the repository root::

    python benchmarks/session58_probes.py lockin     # hunt-2012 run by run
    python benchmarks/session58_probes.py storms     # the chains a storm search runs

``lockin``: hunt-2012 (a 5 s RPM bucket and a 2 s sliding TPM log, four chained calls,
retries honouring the retry-after, a fixed 69.4 s think time; analytic N* 342, simulated
309 [305–327] and again 320 [312–326]) — the engine's share of attempts refused in eight
runs of 2 × 1 h each (seeds 0–7) at 300, 315 and 330 sessions, and at 330 with the think
time spread U(59.4 s, 79.4 s) and exponential of the same mean; and the model's share at
each. A run that settles high is one whose sessions fell into step: refused together,
they wait out their retries together and come back together a think time later.

``storms``: each storm chain (:func:`capacity.analytic.window._storm_size`) the analytic
answer of tool-agent with every limit a sliding 10 s or 60 s log runs — its N and the
storm's size in attempts — and each N whose share the search asked, by constraint
(deterministic: no timing).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hunt

from capacity.analytic.model import analyze
from capacity.profile.loader import profile_from_dict
from capacity.sim.engine import simulate

ROOT = Path(__file__).resolve().parent.parent


def _hunt_2012(think: Any = None) -> Any:
    _, data = hunt.draw(2012)
    hunt._scale(data, random.Random(2012 + 7_000_000))
    if think is not None:
        data["session"]["think_time"] = think
    return profile_from_dict(data)


def lockin() -> None:
    rows = [("fixed 69.4 s", None, (300, 315, 330)),
            ("U(59.4 s, 79.4 s)", {"uniform": ["59.4s", "79.4s"]}, (330,)),
            ("exponential 69.4 s", {"exponential": "69.4s"}, (330,))]
    for label, think, grid in rows:
        prof = _hunt_2012(think)
        res = analyze(prof)
        print(f"hunt-2012, think time {label}: analytic N* {res.burst_ceiling}", flush=True)
        for n in grid:
            model = analyze(prof, sessions=n)
            share = sum(c.at_sessions.loss_fraction for c in model.constraints
                        if c.at_sessions is not None)
            runs = [simulate(prof, n, replications=2, seed=s, horizon_s=3600.0, workers=1)
                    .metrics["attempt_429_fraction"].mean for s in range(8)]
            print(f"  {n} sessions: the model {100 * share:.2f} % (its constraints' shares "
                  f"added), the engine's eight runs "
                  + ", ".join(f"{100 * v:.1f}" for v in runs) + " %", flush=True)


def storms() -> None:
    from profile_variants import variant

    from capacity.analytic import clumped, window
    from capacity.analytic import model as amodel

    chains: list[str] = []
    asked: list[int] = []
    size, stats = window._storm_size, clumped.ClumpedWindow._stats
    ceiling = amodel.constraint_ceiling

    def chain(mdl: Any, n: float, enough: float = float("inf")) -> float:
        got = size(mdl, n, enough)
        chains.append(f"{n:,.0f}: {got:,.0f}")
        return got

    def share(self: Any, n: int) -> Any:
        asked.append(n)
        return stats(self, n)

    def searched(wl: Any, c: Any, *a: Any, **k: Any) -> Any:
        chains.clear()
        asked.clear()
        got = ceiling(wl, c, *a, **k)
        print(f"  {c.quota}.{c.dim}: burst ceiling {got.burst_ceiling:,}; chains at N "
              f"(attempts): {', '.join(chains) or 'none'}; {len(asked)} shares asked: "
              f"{asked}")
        chains.clear()
        return got

    data = yaml.safe_load((ROOT / "profiles" / "tool-agent.yaml").read_text())
    window._storm_size = chain
    clumped.ClumpedWindow._stats = share
    amodel.constraint_ceiling = searched
    try:
        for length in (10, 60):
            print(f"tool-agent, every limit a sliding {length} s log:")
            res = analyze(profile_from_dict(variant(data, f"sliding{length}")))
            print(f"  N* {res.burst_ceiling}; chains the notes ran: {len(chains)}")
    finally:
        window._storm_size, clumped.ClumpedWindow._stats = size, stats
        amodel.constraint_ceiling = ceiling


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["lockin", "storms"])
    args = ap.parse_args(argv)
    {"lockin": lockin, "storms": storms}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
