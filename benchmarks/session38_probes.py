"""The figures behind RESULTS.md's session-38 section (issue 13): backoff retries of an
uncounted sliding log.

Run from the repository root::

    python benchmarks/session38_probes.py held     # retries 1..k all refused: model, engine
    python benchmarks/session38_probes.py cost     # fresh calls a readmitted retry costs
    python benchmarks/session38_probes.py storms   # RPM storms lit by TPM spells, backoff

``held``: at each hunt record's simulated N*, the chance retries 1…k are all refused:
retry k's own chance (``held_after``, the rule before), the joint chain
(``_held_backoff``) and the engine (seed 1, 30 × 1 h traces: attempts k + 1 refused over
the fresh calls refused).

``cost``: the fresh calls' refused share in the engine (seed 1, 8 × 1 h traces) with the
profile's retries and with ``max_retries: 0``, the model's share without retries (the
profile with ``max_retries: 0``), its loss-log share and its share with the retries
(``p_loss/(1 − ν)``), the free count's (the rule before), and ν: the model's
(``_retry_cost``) against the engine's, ``1 − p_loss/p``.

``storms``: tests/data/tpm-spells-start-rpm-storms.yaml with ``honour_retry_after:
false``: the engine's attempt share (seed 1, 20 × 1 h) with both limits and with each
alone, and the simulated N* of each alone, against the analytic answers.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import hunt  # noqa: E402

from capacity.analytic.model import analyze, constraint_model, cycle_time  # noqa: E402
from capacity.analytic.window import ClumpWindowModel  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.search import find_saturation  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT  # noqa: E402

# Hunt records whose binding limit is an uncounted sliding log with backoff retries, and
# their simulated N* (benchmarks/hunt/records.jsonl).
SEEDS = {126: 68, 35: 274, 122: 240, 1015: 77, 1028: 69, 1055: 71, 2080: 511, 21: 454,
         111: 234}


def _log(profile: Profile) -> ClumpWindowModel:
    wl = Workload.from_profile(profile)
    m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    assert isinstance(m, ClumpWindowModel)
    return m


def _rows(profile: Profile, n: int, reps: int) -> np.ndarray:
    return np.concatenate([trace_attempts(profile, n, horizon_s=3600.0, seed=1,
                                          replication=r, max_attempts=5_000_000).rows
                           for r in range(reps)])


def held() -> None:
    print("seed, N: retries 1..k all refused — retry k alone | joint chain | engine")
    for seed in (126, 35, 122, 1015, 1028):
        n = SEEDS[seed]
        prof = hunt.build(seed)[2]
        m = _log(prof)
        joint = m._held_backoff(n)
        assert joint is not None
        alone = m.held_after(n, m.retry.backoff_s, arrivals=True)
        rows = _rows(prof, n, 30)
        first = np.sum((rows[:, T_ATTEMPT] == 1) & (rows[:, T_ADMITTED] == 0))
        engine = [float(np.sum((rows[:, T_ATTEMPT] == k + 2) & (rows[:, T_ADMITTED] == 0))
                        / max(first, 1)) for k in range(len(joint))]

        def cells(xs: Any) -> str:
            return " / ".join(f"{x:.3f}" for x in xs)
        print(f"{seed} {n}: {cells(alone)} | {cells(joint)} | {cells(engine)}")


def cost() -> None:
    print("seed, N: engine fresh share with retries / without | model without retries, "
          "loss share, with the retries, free count | nu model / engine")
    for seed, n in SEEDS.items():
        fam, data, prof, *_ = hunt.build(seed)
        bare = copy.deepcopy(data)
        bare.setdefault("retry", {})["max_retries"] = 0
        shares = []
        bare_p = profile_from_dict(bare)
        for p in (prof, bare_p):
            rows = _rows(p, n, 8)
            fresh = rows[:, T_ATTEMPT] == 1
            shares.append(float(np.mean(rows[fresh, T_ADMITTED] == 0)))
        m = _log(prof)
        loss = m._sliding_h(n, 0.0, truncate=True)
        free = m._sliding_h(n, 0.0)
        nu = m._retry_cost(n)
        alone = _log(bare_p).attempt_share(n)["call"]
        print(f"{seed} {n} ({fam['family']}, {fam['pace']}): {shares[0]:.4%} / "
              f"{shares[1]:.4%} | {alone:.4%}, {loss:.4%}, "
              f"{min(free, loss / (1 - nu)):.4%}, "
              f"{free:.4%} | {nu:.2f} / {1 - loss / shares[0]:.2f}")


def storms() -> None:
    base = yaml.safe_load((ROOT / "tests/data/tpm-spells-start-rpm-storms.yaml").read_text())
    base["retry"]["honour_retry_after"] = False
    for label, mod in (("both", {}), ("RPM alone", {"tpm": 36_000_000}),
                       ("TPM alone", {"rpm": 14_500})):
        d = copy.deepcopy(base)
        d["quotas"]["q0"].update(mod)
        p = profile_from_dict(d)
        a = analyze(p).burst_ceiling
        at = []
        for n in (86, 93):
            r = simulate(p, n, replications=20, seed=1)
            at.append(f"{n}: {r.metrics['attempt_429_fraction'].mean:.2%}")
        sat = find_saturation(p, max(1, a - 12), a + 12, seed=1, replications=20,
                              max_sessions=400)
        print(f"{label}: analytic {a}, simulated {sat.n_star} [{sat.n_lo}–{sat.n_hi}]; "
              f"engine at {', '.join(at)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("held", "cost", "storms"))
    {"held": held, "cost": cost, "storms": storms}[ap.parse_args().what]()


if __name__ == "__main__":
    main()
