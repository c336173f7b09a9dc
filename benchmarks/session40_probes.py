"""Session 40's probes (issue 13): two optimistic families of the hunt, diagnosed.

    python benchmarks/session40_probes.py pair    # hunt-3 reduced: a call pair < 1 s apart
    python benchmarks/session40_probes.py step    # hunt-82: a fixed think time vs Exp
    python benchmarks/session40_probes.py rate    # refused turns come back sooner

``pair``: hunt-3 (analytic 114 against a simulated 106) without its second population,
its OTPM and its tool-loop turn — an ITPM bucket 1 s deep, turns of a call, a fan-out and
a call — and variants that isolate what the model misses: the engine's attempts refused
(20 × 1 h, seed 1) against the model's (``constraint_model(...).stats(n)``) at 110 / 123 /
133 sessions. ``step``: hunt-82 (a fixed 30 s TPM window, tool loops, a fixed 54.3 s
think time, no retries) and hunt-2012 (an RPM bucket and a 2 s TPM sliding log, chains,
retries told the retry-after, a fixed think time) against the same with an exponential
think time of that mean. ``rate``: the engine's fresh calls a second over the unthrottled
cycle's (20 × 1 h, seed 1) against ``BucketChain._load_factor`` at the engine's own refused
share, each call refused by its charge and (as before session 40) at one share, on
tests/data/bucket-pair-aborts.yaml, bucket-deep-fanout-continue.yaml (a deep bucket,
which had no factor), bucket-continue-loop.yaml and the accuracy
table's 1-3-1 bucket 5 s deep without retries.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import hunt  # noqa: E402

from capacity.analytic.model import constraint_model, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.sim.engine import simulate  # noqa: E402


def engine(profile: Profile, n: int) -> tuple[float, float, float]:
    """The engine's attempts refused (mean and 95 % interval), 20 × 1 h, seed 1."""
    est = simulate(profile, n, replications=20, seed=1, workers=2).metrics[
        "attempt_429_fraction"]
    return est.mean, est.lo, est.hi


def model(profile: Profile, n: int) -> float:
    """The model's attempts refused at ``n`` (its binding constraint's)."""
    wl = Workload.from_profile(profile)
    cyc = cycle_time(wl).cycle_s
    return max(float(constraint_model(wl, c, cyc).stats(n).loss_fraction)
               for c in wl.constraints)


def row(name: str, data: dict[str, Any], ns: tuple[int, ...], sim: bool = True) -> None:
    prof = profile_from_dict(data)
    cells = []
    for n in ns:
        got = f"model {model(prof, n) * 100:.2f} %"
        if sim:
            m, lo, hi = engine(prof, n)
            got = f"engine {m * 100:.2f} % [{lo * 100:.2f}-{hi * 100:.2f}], " + got
        cells.append(f"{n}: {got}")
    print(f"{name}\n    " + "\n    ".join(cells), flush=True)


def pair() -> None:
    _, data, _, _, _ = hunt.build(3)
    base = copy.deepcopy(data)
    del base["populations"], base["quotas"]["q0"]["otpm"], base["session"]["turns"]["t1-loop"]

    def steps(d: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = d["session"]["turns"]["t0-fanout"]["steps"]
        return out

    def variant(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        d = copy.deepcopy(base)
        edit(d)
        return d

    def fixed_first(d: dict[str, Any]) -> None:
        steps(d)[0]["call"]["input_tokens"] = 4650          # the lognormal's mean

    def no_fanout(d: dict[str, Any]) -> None:
        del steps(d)[1]

    def one_call(d: dict[str, Any]) -> None:
        fixed_first(d)
        steps(d)[1] = {"call": {"model": "m", "input_tokens": 2304, "output_tokens": 10}}
        d["retry"] = {"max_retries": 0}

    def long_gap(d: dict[str, Any]) -> None:
        one_call(d)
        steps(d)[1]["call"]["output_tokens"] = 300          # ~5.7 s instead of ~0.85 s

    ns = (110, 123, 133)
    row("hunt-3 reduced (ITPM bucket 1 s deep; call, fan-out of 2-8 x 384, call; "
        "continue)", base, ns)
    row("  its first call fixed at 4,650 tokens", variant(fixed_first), ns)
    row("  without the fan-out (the pair's calls 13 s apart)", variant(no_fanout), ns)
    row("  the fan-out as one 2,304-token call ~0.85 s before the last, abort_turn",
        variant(one_call), ns)
    row("  the same, that call ~5.7 s long", variant(long_gap), ns)


def step() -> None:
    for seed, ns in ((82, (140, 160, 183)), (2012, (310, 341))):
        _, data, _, _, _ = hunt.build(seed)
        think = data["session"]["think_time"]
        row(f"hunt-{seed}, fixed {think} think time", data, ns)
        d = copy.deepcopy(data)
        d["session"]["think_time"] = {"exponential": think}
        row(f"hunt-{seed}, Exp({think}) think time", d, ns)


def rate() -> None:
    from analytic_accuracy import NO_RETRIES, dag_profile

    from capacity.analytic.bucket import BucketChain, DeepBucket
    from capacity.profile.loader import load_profile

    data = ROOT / "tests" / "data"
    cases = [("bucket-pair-aborts", load_profile(data / "bucket-pair-aborts.yaml"),
              (100, 120)),
             ("bucket-deep-fanout-continue",
              load_profile(data / "bucket-deep-fanout-continue.yaml"), (110, 123, 133)),
             ("bucket-continue-loop", load_profile(data / "bucket-continue-loop.yaml"),
              (73, 80)),
             ("1-3-1 bucket 5 s deep, no retries", dag_profile("dag-bucket5-0", {
                 "rpm": 500, "enforcement": {"type": "token_bucket", "burst": "5s"}},
                 NO_RETRIES), (241, 244))]
    for name, prof, ns in cases:
        wl = Workload.from_profile(prof)
        cyc = cycle_time(wl).cycle_s
        m = constraint_model(wl, wl.constraints[0], cyc)
        chain = getattr(m, "chain", None)
        assert isinstance(chain, BucketChain | DeepBucket)
        rate_s: float = getattr(m, "rate_per_session")  # noqa: B009
        for n in ns:
            res = simulate(prof, n, replications=20, seed=1, workers=2)
            # Fresh calls a second over the unthrottled cycle's: the factor's launches
            # (an aborted turn's later calls are not made).
            calls = (res.metrics["turn_throughput_per_s"].mean
                     * res.metrics["calls_per_turn"].mean
                     / (n / cyc * wl.calls_per_turn_on(wl.constraints[0])))
            share = res.metrics["attempt_429_fraction"].mean
            if isinstance(chain, DeepBucket):
                by, one = chain.load_factor(share, n * rate_s), "(none)"
            else:
                by, one = chain._load_factor(share, n * rate_s), \
                    f"x{chain._load_factor(share):.4f}"
            print(f"{name} at {n}: engine {share * 100:.2f} % refused, calls x{calls:.4f}; "
                  f"model x{by:.4f} by charge, {one} at one share; model share "
                  f"{model(prof, n) * 100:.2f} %", flush=True)


if __name__ == "__main__":
    {"pair": pair, "step": step, "rate": rate}[sys.argv[1]]()
