"""The shipped profiles under other enforcements: analytic N* against simulated (issue 13).

Each shipped profile is answered again with every limit of every quota enforced one
way — a token bucket 1, 5, 10 or 60 s deep, a sliding log of 10 or 60 s, fixed windows
of 1 or 60 s — the rest of the profile (retries, rejections counted, pacing) as shipped.
These are the profiles a planner writes first ("our agent, on Anthropic's bucket"), so
a miss here is a miss users meet. For each it prints the analytic N*, the simulated N*
with its 95 % CI (the saturation search, as ``benchmarks/hunt.py`` runs it: 20
replications × 1 simulated hour, one thread), the error and whether the row meets the
target (within 3 % or inside the CI, never more than 5 % optimistic) — a row that does
not is searched again with another seed and twice the replications, as
``benchmarks/hunt.py`` confirms its records — and the analytic answer's CPU time (one
BLAS thread, as the CLI).

Run from the repository root::

    python benchmarks/profile_variants.py                     # every profile and variant
    python benchmarks/profile_variants.py --profiles tool-agent --variants bucket10
    python benchmarks/profile_variants.py --no-retries        # the same, max_retries 0
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from analytic_accuracy import analytic, error, meets_target  # noqa: E402
from hunt import search_again, simulate  # noqa: E402

from capacity.profile.loader import profile_from_dict  # noqa: E402

VARIANTS: dict[str, dict[str, str]] = {
    "bucket1": {"type": "token_bucket", "burst": "1s"},
    "bucket5": {"type": "token_bucket", "burst": "5s"},
    "bucket10": {"type": "token_bucket", "burst": "10s"},
    "bucket60": {"type": "token_bucket", "burst": "60s"},
    "sliding10": {"type": "sliding_window", "window": "10s"},
    "sliding60": {"type": "sliding_window", "window": "60s"},
    "fixed1": {"type": "fixed_window", "window": "1s"},
    "fixed60": {"type": "fixed_window", "window": "60s"},
}
PROFILES = ("web-research", "tool-agent", "chat-assistant", "ptu-spillover")
DIMENSIONS = ("rpm", "tpm", "itpm", "otpm", "rpd", "tpd")


def variant(data: dict[str, Any], name: str, retries: bool = True) -> dict[str, Any]:
    """``data`` (a profile's YAML) with every limit of every quota enforced as ``name``;
    without ``retries``, ``max_retries: 0``."""
    out = copy.deepcopy(data)
    for q in out["quotas"].values():
        q["enforcement"] = dict(VARIANTS[name])
        for dim in DIMENSIONS:
            if isinstance(q.get(dim), dict) and "enforcement" in q[dim]:
                q[dim]["enforcement"] = dict(VARIANTS[name])
    if not retries:
        out["retry"] = {**out.get("retry", {}), "max_retries": 0}
    return out


def row(profile: str, name: str, retries: bool, seed: int, reps: int
        ) -> tuple[str, bool | None, bool | None]:
    """One table row (the variant's analytic and simulated N*), whether it meets the
    target, and for a row that does not, whether a second search (another seed, twice
    the replications, as ``hunt.py`` confirms) misses it too (None: not searched)."""
    data = yaml.safe_load((ROOT / "profiles" / f"{profile}.yaml").read_text())
    prof = profile_from_dict(variant(data, name, retries))
    res, cpu = analytic(prof, repeat=2)
    sim = simulate(prof, res, seed, reps)
    head = f"| {profile} | {name} | {res.burst_ceiling} |"
    if sim is None:
        return f"{head} (over the simulation budget) | | | | {1000 * cpu:.0f} ms |", None, None
    e = error(res.burst_ceiling, sim["n_star"])
    ok = meets_target(res.burst_ceiling, sim["n_star"], sim["lo"], sim["hi"])
    again, confirmed = "", None
    if not ok:
        # A simulated N* is a search over noisy shares: a row just outside may be the
        # first search's draw (tool-agent on fixed 60 s windows: 36 [35–36], searched
        # again 35 [35–35]).
        two = search_again(prof, res, seed, reps)
        confirmed = not meets_target(res.burst_ceiling, two["n_star"], two["lo"], two["hi"])
        again = (f"{two['n_star']} [{two['lo']}–{two['hi']}], "
                 f"{100 * error(res.burst_ceiling, two['n_star']):+.1f}%"
                 f"{'' if confirmed else ', meets it'}")
    return (f"{head} {sim['n_star']} [{sim['lo']}–{sim['hi']}] | {100 * e:+.1f}% | "
            f"{'yes' if ok else '**no**'} | {again} | {1000 * cpu:.0f} ms |", ok, confirmed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--no-retries", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replications", type=int, default=20)
    args = ap.parse_args(argv)
    print("| profile | enforcement | analytic N* | simulated N* [95% CI] | error | "
          "meets target | searched again | analytic compute |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for p in args.profiles.split(","):
        for v in args.variants.split(","):
            line, ok, confirmed = row(p, v, not args.no_retries, args.seed,
                                      args.replications)
            rows.append((ok, confirmed))
            print(line, flush=True)
    done = [r for r in rows if r[0] is not None]
    print(f"\nmeets the target on {sum(bool(ok) for ok, _ in done)} of {len(done)} rows; "
          f"of the rest, {sum(bool(c) for _, c in done)} miss it in a second search too "
          "(another seed, twice the replications)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
