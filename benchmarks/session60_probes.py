"""Session 60's probe (issue 13): why web-research on a 10 s token bucket — the README's
and the profile's own suggested what-if — is conservative (57 against a simulated 59
[58–61], again 61 [60–62]).

Run from the repository root::

    python benchmarks/session60_probes.py bucket10      # ~2 min
    python benchmarks/session60_probes.py poisson       # ~3 min
    python benchmarks/session60_probes.py follow        # ~2 min
    python benchmarks/session60_probes.py counted       # ~1 min
    python benchmarks/session60_probes.py review        # ~1 min

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

``poisson``: the same bucket, no retries, with Poisson turn starts (an Exp(3,000 s)
think time, the sessions scaled to about 2 calls a second: the engine's last simulated
hour of 4 replications, seed 1) for four turns: the analysis call alone, the three
synthesis passes alone, the analysis call then the passes ~5 s later (``pair``), and
the whole turn; the passes as one launch of four calls beside them. Against each: the
bucket chain's share with independent Poisson launches, the answer (the follow chain's
at any count of sessions since this session; before, the turn walk's beyond 1,000
sessions: 0.403 % for the pair, 0.201 % for the whole turn), and the follow chain's share
(:func:`capacity.analytic.bucket.follow_share`, its session cap lifted).

``follow``: tests/data/bucket-follow-many.yaml (three calls ~2.2 s apart, no retries, a
110-request bucket 10 s deep) with an Exp(3,000 s) think time at 1,400–1,600 sessions
and an Exp(300 s) one at 150 and 160: the answer's share of calls refused (the follow
chain at any count of sessions since this session; the turn walk beyond 1,000 before),
the turn walk's, independent launches', and the engine's (last simulated hour of 4
replications, seed 1).

``counted``: web-research's analysis call alone at its 10 s bucket (150 RPM, 25 requests
deep), no retries, Poisson turn starts (Exp(3,000 s) think time) at about 2.3 and 2.4
calls a second — the deep bucket's level law (:class:`capacity.analytic.bucket.DeepBucket`)
with the refusals counted (each takes what is there of one request, as the profile's
``rejected_count`` says) and not, against the engine's (last simulated hour of 4
replications, seed 1) with ``rejected_count`` true and false.

``review``: a second review's two cases. tests/data/bucket-follow-many.yaml with backoff
retries (two, the retry-after not honoured) at 1,404–1,420 sessions, the share of
attempts refused with the retry model's figures per refused call scaled by the ratio of
the fresh shares (as before: ``bucket._RATIO_READ`` infinite) and read where it refuses
as much (now). Three ~5 s calls a turn at a 150 RPM bucket 10 s deep, Exp(3,000 s) think
time, no retries, 2,261 and 2,362 sessions: the model's share with refusals counted and
not (one figure: the bunched launches' laws do not count them), and the engine's (last
simulated hour of 4 replications, seed 1).
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


def _last_hour(prof: Any, n: int, reps: int = 4) -> tuple[float, float]:
    """(share of attempts refused, attempts a second) over the last simulated hour of
    ``reps`` replications (seed 1): a long think time's warm-up is past by then."""
    from capacity.sim.engine import trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_T

    made = refused = 0
    for rep in range(reps):
        rows = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=rep,
                              max_attempts=3_000_000).rows
        rows = rows[rows[:, T_T] >= rows[:, T_T].max() - 3600.0]
        made += rows.shape[0]
        refused += int((rows[:, T_ADMITTED] == 0).sum())
    return refused / max(made, 1), made / reps / 3600.0


def _web_bucket10() -> dict[str, Any]:
    """web-research's YAML with every limit a token bucket 10 s deep."""
    from profile_variants import variant

    return variant(yaml.safe_load((ROOT / "profiles" / "web-research.yaml").read_text()),
                   "bucket10")


def _model(data: dict[str, Any]) -> tuple[Any, Any]:
    """(profile, the burst-aware model of its one constraint) of the YAML ``data``."""
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.profile.loader import profile_from_dict

    prof = profile_from_dict(data)
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    return prof, constraint_model(wl, c, cycle_time(wl).cycle_s)


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


def poisson() -> None:
    from capacity.analytic import bucket

    base = _web_bucket10()
    steps = base["session"]["turns"]["research"]["steps"]
    four = copy.deepcopy(steps[1])
    four["parallel"]["count"] = 4
    turns = {"analysis alone": ([steps[0]], 1), "passes alone": ([steps[1]], 3),
             "pair": ([steps[0], steps[1]], 4), "one launch of 4": ([four], 4),
             "whole turn": (steps, 5)}
    print("web-research's calls at its 10 s bucket, no retries, Poisson turn starts "
          "(Exp(3,000 s) think time), ~2 calls a second:")
    for label, (turn, calls) in turns.items():
        data = copy.deepcopy(base)
        data["retry"]["max_retries"] = 0
        data["session"]["turns"]["research"]["steps"] = turn
        data["session"].pop("cadence")
        data["session"]["think_time"] = {"exponential": "3000s"}
        n = round(2.0 * 3000.0 / calls)
        prof, model = _model(data)
        chain = model.chain
        lam = n * model.rate_per_session
        follow = "-"
        if getattr(chain, "follow", None) is not None:
            cap, bucket.CLOSED_MAX_SESSIONS = bucket.CLOSED_MAX_SESSIONS, 10**9
            try:
                follow = f"{chain._follow_share(chain.follow, n, lam):.3%}"
            finally:
                bucket.CLOSED_MAX_SESSIONS = cap
        share, per_s = _last_hour(prof, n)
        print(f"  {label} ({n} sessions): independent launches "
              f"{chain.poisson_share(lam):.3%}, answer {chain.shares(lam, n)['call']:.3%}, "
              f"follow chain {follow}; engine {share:.3%} ({per_s:.2f} calls a second)",
              flush=True)


def follow() -> None:
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.profile.loader import profile_from_dict

    base = yaml.safe_load((ROOT / "tests" / "data" / "bucket-follow-many.yaml").read_text())
    for think, grid in (("3000s", (1400, 1500, 1600)), ("300s", (150, 160))):
        data = copy.deepcopy(base)
        data["session"]["think_time"] = {"exponential": think}
        prof = profile_from_dict(data)
        wl = Workload.from_profile(prof)
        (c,) = wl.constraints
        model = constraint_model(wl, c, cycle_time(wl).cycle_s)
        chain = model.chain
        for n in grid:
            lam = n * model.rate_per_session
            print(f"Exp({think}) think time, {n} sessions: answer "
                  f"{chain.shares(lam, n)['call']:.3%}, turn walk "
                  f"{chain._walk_share(lam):.3%}, independent launches "
                  f"{chain.poisson_share(lam):.3%}; engine {_last_hour(prof, n)[0]:.3%}",
                  flush=True)


def counted() -> None:
    base = _web_bucket10()
    base["retry"]["max_retries"] = 0
    base["session"]["turns"]["research"]["steps"] = base["session"]["turns"]["research"][
        "steps"][:1]
    base["session"].pop("cadence")
    base["session"]["think_time"] = {"exponential": "3000s"}
    print("web-research's analysis call alone at its 10 s bucket, no retries, Poisson "
          "turn starts:")
    for n in (6900, 7200):
        row = []
        for count in (True, False):
            data = copy.deepcopy(base)
            data["quotas"]["deployment"]["rejected_count"] = count
            prof, model = _model(data)
            lam = n * model.rate_per_session
            share, per_s = _last_hour(prof, n)
            row.append(f"{'counted' if count else 'not counted'}: model "
                       f"{model.stats(n).loss_fraction:.3%}, engine {share:.3%} "
                       f"({per_s:.2f} calls a second)")
        print(f"  {n} sessions ({lam:.2f} launches a second): " + "; ".join(row),
              flush=True)


def review() -> None:
    import math

    from capacity.analytic import bucket

    data = yaml.safe_load((ROOT / "tests" / "data" / "bucket-follow-many.yaml").read_text())
    data["retry"] = {"max_retries": 2, "honour_retry_after": False}
    grid = (1404, 1408, 1412, 1416, 1420)
    for label, read in (("scaled by the ratio (before)", math.inf),
                        ("read where the retry model refuses as much (now)", 4.0)):
        keep, bucket._RATIO_READ = bucket._RATIO_READ, read
        try:
            _, model = _model(copy.deepcopy(data))
            shares = ", ".join(f"{n}: {model.stats(n).loss_fraction:.2%}" for n in grid)
        finally:
            bucket._RATIO_READ = keep
        print(f"follow-many, backoff retries, {label}: {shares}", flush=True)
    call = {"model": "m", "input_tokens": 1200, "output_tokens": {"uniform": [80, 250]}}
    for n in (2261, 2362):
        row = []
        for count in (True, False):
            chain3 = {"name": "chain3", "models": {"m": {
                "tokens_per_second": 35, "ttft": {"uniform": ["0.4s", "1.2s"]}}},
                "quotas": {"q": {"models": ["m"], "rpm": 150, "rejected_count": count,
                                 "enforcement": {"type": "token_bucket", "burst": "10s"}}},
                "retry": {"max_retries": 0},
                "session": {"think_time": {"exponential": "3000s"},
                            "turns": {"t": {"steps": [{"call": call}] * 3}}}}
            prof, model = _model(chain3)
            share, _ = _last_hour(prof, n)
            row.append(f"{'counted' if count else 'not counted'}: model "
                       f"{model.stats(n).loss_fraction:.3%}, engine {share:.3%}")
        print(f"three calls a turn, {n} sessions: " + "; ".join(row), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["bucket10", "poisson", "follow", "counted", "review"])
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    {"bucket10": bucket10, "poisson": poisson, "follow": follow, "counted": counted,
     "review": review}[args.probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
