"""Session 60's probe (issue 13): why web-research on a 10 s token bucket — the README's
and the profile's own suggested what-if — is conservative (57 against a simulated 59
[58–61], again 61 [60–62]).

Run from the repository root::

    python benchmarks/session60_probes.py bucket10      # ~2 min

``bucket10``: web-research with its 150 RPM enforced as a token bucket 10 s deep (25
requests; the profile counts refusals, retries honour the retry-after). At 57, 60 and 63
sessions, without retries (a refused call ends its turn) and with the profile's two:
the bucket chain's fresh-call refusal share with Poisson launches (``poisson``: no
retries; ``pending``: the counting bucket's pending chain with retries), with each
turn's later launches walked from the level its earlier ones left (``walked``, and the
answer, which with retries moves the pending chain's share by walked − poisson), and
the engine's (4 replications × 1 simulated hour, seed 1): fresh calls refused, attempts
refused, first and second retries refused again. The same engine figures with an
Exp(65.1 s) think time in place of the cadence (the same mean cycle) say how much the
cadence's regularity moves them.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _engine(prof: Any, n: int, reps: int = 4) -> tuple[float, float, float, float]:
    """(fresh refused, attempts refused, retry 1 refused, retry 2 refused), shares."""
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT

    got = {a: [0, 0] for a in (1, 2, 3)}
    for rep in range(reps):
        rows = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=rep).rows
        for a, g in got.items():
            at = rows[rows[:, T_ATTEMPT] == a]
            g[0] += at.shape[0]
            g[1] += int((at[:, T_ADMITTED] == 0).sum())
    att = sum(g[1] for g in got.values()) / max(sum(g[0] for g in got.values()), 1)
    return (got[1][1] / max(got[1][0], 1), att, got[2][1] / max(got[2][0], 1),
            got[3][1] / max(got[3][0], 1))


def bucket10() -> None:
    from profile_variants import variant

    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.profile.loader import profile_from_dict

    base = variant(yaml.safe_load((ROOT / "profiles" / "web-research.yaml").read_text()),
                   "bucket10")
    for retries in (0, 2):
        data = copy.deepcopy(base)
        data["retry"]["max_retries"] = retries
        think = copy.deepcopy(data)
        think["session"].pop("cadence")
        think["session"]["think_time"] = {"exponential": "65.1s"}
        prof = profile_from_dict(data)
        wl = Workload.from_profile(prof)
        (c,) = wl.constraints
        model = constraint_model(wl, c, cycle_time(wl).cycle_s)
        chain = model.chain
        print(f"web-research, 10 s bucket, {retries} retries:")
        for n in (57, 60, 63):
            lam = n * model.rate_per_session
            poisson, walked = chain.poisson_share(lam), chain._walk_share(lam)
            answer = chain.shares(lam, n)
            pending = chain._poisson_shares(lam, n)["call"] if retries else None
            fresh, att, r1, r2 = _engine(prof, n)
            fresh_t, att_t, _, _ = _engine(profile_from_dict(think), n)
            extra = f"pending {pending:.3%}, " if pending is not None else ""
            again = f"; retries refused again {r1:.2f}, {r2:.2f}" if retries else ""
            print(f"  {n} sessions: model fresh poisson {poisson:.3%}, walked {walked:.3%}, "
                  f"{extra}answer {answer['call']:.3%} (attempts {answer['attempt']:.3%}); "
                  f"engine fresh {fresh:.3%} (attempts {att:.3%}{again}); "
                  f"Exp think engine fresh {fresh_t:.3%} (attempts {att_t:.3%})",
                  flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["bucket10"])
    ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    bucket10()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
