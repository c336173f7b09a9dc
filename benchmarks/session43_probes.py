"""Session 43's probes (issue 13).

    python benchmarks/session43_probes.py size   # the spells' sizing, in the engine
    python benchmarks/session43_probes.py spill  # a bucket head's spill by its chain
    python benchmarks/session43_probes.py handover  # the chain and the dam at its last N
    python benchmarks/session43_probes.py retries   # hunt-3002 with the client's retries
    python benchmarks/session43_probes.py cost      # the chain's compute

``size``: ``capacity size`` of the two head-spells fleets (tests/data/fleet-head-spells-
{honoured,backoff}.yaml) at N past their ceiling: the limits it asks for, the analytic
ceiling with them set, and the engine's attempts refused at N with them (4 × 1 h, seed 1)
— beside the engine at N with the quotas as they are.

``spill``: hunt-3002 (tests/data/fleet-bucket-head-turns.yaml) without client retries: the
share of the route's calls the head's token buckets spill at 3, 5 and 8 sessions, by the
fleet model (the level chain of the turns' calls) and by the finite dam's bound it
replaced, beside the engine's head (the share of the calls sent to it that it turns
away, 8 × 1 h, seed 1); then ptu-spillover with every limit a 5 s or 10 s bucket: the
analytic answer and the engine's attempts refused around it (8 × 1 h, seed 1).

``handover``: each head bucket with a spill chain (hunt-3002, ptu-spillover): its last N
(``BucketSpill.chain_until``), the chain's share there, the finite dam's alone there and
one past, and the share the model answers one past (the dam held to the chain's).

``retries``: hunt-3002 as it is (SDK retries): the engine's attempts refused at 3, 5 and
8 sessions (8 × 1 h, seed 1) beside the fleet model's largest visible share there.

``cost``: the analytic compute (``analytic_accuracy.analytic_timed``, best of 3, one BLAS
thread) of ptu-spillover, hunt-3002 and ptu-spillover beside chat and batch populations,
with the spill chain and with it patched out.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.cli.entry import one_blas_thread  # noqa: E402

one_blas_thread()

import yaml  # noqa: E402

from capacity.analytic import fleet  # noqa: E402
from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
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


def spill_probe() -> None:
    from profile_variants import variant

    data = yaml.safe_load((ROOT / "tests" / "data" / "fleet-bucket-head-turns.yaml")
                          .read_text())
    data["retry"] = {"max_retries": 0}
    prof = profile_from_dict(data)
    wl = Workload.from_profile(prof)
    fm = fleet.fleet_models(wl, cycle_time(wl))
    heads = [e.model for e in fm.entries if e.c.quota == "q0"]
    bound = [dataclasses.replace(m, spill_chain=None) for m in heads]
    for n in (3, 5, 8):
        a = simulate(prof, n, replications=8, seed=1, workers=2).deployments["a"]
        e = a.reject_fraction
        print(f"hunt-3002, no retries, {n} sessions: model {fm.spill['m'](n):.2%} (the "
              f"bound {max(float(m.stats(n).loss_fraction) for m in bound):.2%} on the "
              f"larger bucket), engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}]", flush=True)
    ptu = yaml.safe_load((ROOT / "profiles" / "ptu-spillover.yaml").read_text())
    for v, retries, ns in (("bucket5", True, (72, 75, 77)), ("bucket5", False, (91, 92, 95)),
                           ("bucket10", False, (123, 124, 127))):
        p = profile_from_dict(variant(ptu, v, retries))
        print(f"ptu-spillover {v}, {'SDK retries' if retries else 'no retries'}: analytic "
              f"{analyze(p).burst_ceiling} (target {p.targets.max_429_fraction:.0%})",
              flush=True)
        for n in ns:
            e = simulate(p, n, replications=8, seed=1, workers=2).metrics[
                "attempt_429_fraction"]
            print(f"  {n}: engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}]", flush=True)


def handover() -> None:
    for path in (ROOT / "tests" / "data" / "fleet-bucket-head-turns.yaml",
                 ROOT / "profiles" / "ptu-spillover.yaml"):
        prof = load_profile(path)
        wl = Workload.from_profile(prof)
        fm = fleet.fleet_models(wl, cycle_time(wl))
        for e in fm.entries:
            m = e.model
            if not isinstance(m, fleet.BucketSpill) or m.spill_chain is None:
                continue
            last = m.chain_until()
            dam = dataclasses.replace(m, spill_chain=None)
            print(f"{prof.name} {e.c.name}: chain to N = {last}: {m.stats(last).loss_fraction:.1%}"
                  f"; the dam {dam.stats(last).loss_fraction:.1%} there, "
                  f"{dam.stats(last + 1).loss_fraction:.1%} at {last + 1}; answered at "
                  f"{last + 1}: {m.stats(last + 1).loss_fraction:.1%}", flush=True)


def retries() -> None:
    prof = load_profile(ROOT / "tests" / "data" / "fleet-bucket-head-turns.yaml")
    for n in (3, 5, 8):
        e = simulate(prof, n, replications=8, seed=1, workers=2).metrics[
            "attempt_429_fraction"]
        model = max(float(c.at_sessions.loss_fraction)
                    for c in analyze(prof, sessions=n).constraints
                    if c.spill_to is None and c.at_sessions is not None)
        print(f"hunt-3002 at {n} sessions: engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}], "
              f"model {model:.2%}", flush=True)


def cost() -> None:
    from analytic_accuracy import analytic_timed

    paths: list[list[Path]] = [
        [ROOT / "profiles" / "ptu-spillover.yaml"],
        [ROOT / "tests" / "data" / "fleet-bucket-head-turns.yaml"],
        [ROOT / "profiles" / "ptu-spillover.yaml", ROOT / "examples" / "chat-and-batch.yaml"]]
    real = fleet.spill_chain
    for label, chain in (("with the chain", real), ("without", lambda *_: None)):
        fleet.spill_chain = chain  # type: ignore[assignment]
        for p in paths:
            res, cpu, _ = analytic_timed(load_profile(p), 3)
            print(f"{label}: {' + '.join(x.name for x in p)}: N {res.burst_ceiling}, "
                  f"{1000 * cpu:.0f} ms", flush=True)
    fleet.spill_chain = real


if __name__ == "__main__":
    {"size": size_probe, "spill": spill_probe, "handover": handover, "retries": retries,
     "cost": cost}[sys.argv[1]]()
