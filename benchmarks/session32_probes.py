"""The engine's and the analytic model's figures behind RESULTS.md's and docs/models.md's
paragraphs of session 32 (issue 13, 2026-12-04): a sliding log far over its allowance, backoff
retries at a bucket still short, and the simulated N* measured again later.

Run from the repository root::

    python benchmarks/session32_probes.py overload-spill   # hunt-3015 at 504 sessions
    python benchmarks/session32_probes.py backoff-again    # hunt-3099 at 147 sessions
    python benchmarks/session32_probes.py lock             # hunt-82's phases, 4 h
    python benchmarks/session32_probes.py warmup           # hunt records, 0 / 3 h warm-up
    python benchmarks/session32_probes.py web-research     # 0 / 3 / 6 h, and the settle check
    python benchmarks/session32_probes.py cost             # the check's share of the work

The model's figures are the code's as it is; "before" figures in the docs are the same
probe at the commit before the change (``git checkout 1c78b8f^`` / ``9daaaa9^``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.analytic.bucket import BucketChain  # noqa: E402
from capacity.analytic.fleet import FeedModel, fleet_models  # noqa: E402
from capacity.analytic.model import bucket_model, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.search import SETTLE_S, find_saturation, settle  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_ATTEMPT, T_DEP, T_T, T_UNITS  # noqa: E402
from capacity.whatif.ceiling import SimSettings, ceiling  # noqa: E402

DATA = ROOT / "tests" / "data"


def _mean_sd(pmf: np.ndarray, step: float = 1.0) -> tuple[float, float]:
    p = pmf / pmf.sum()
    x = np.arange(p.size) * step
    m = float(np.dot(x, p))
    return m, float(np.sqrt(max(float(np.dot(x * x, p)) - m * m, 0.0)))


def overload_engine(prof: Profile, n: int, reps: int = 2) -> dict[str, float]:
    """hunt-3015's engine figures at ``n`` sessions (``reps`` × 30 min past the first
    300 s): a's ITPM log rebuilt from its admitted attempts (it decides every refusal) —
    the share of a's attempts it refuses and their mean input tokens — and b's attempts
    (mean, sd) and input tokens (mean) per 15 s window."""
    wl = Workload.from_profile(prof)
    (allow,) = [c.allowance for c in wl.constraints if c.quota == "q0" and c.dim == "itpm"]
    sizes, counts, units, shares = [], [], [], []
    for rep in range(reps):
        tr = trace_attempts(prof, n, horizon_s=1800.0, seed=1, replication=rep)
        r = tr.rows
        (si,) = [i for i, s in enumerate(tr.slots) if s.quota == "q0" and s.dimension == "itpm"]
        (bi,) = [i for i, s in enumerate(tr.slots) if s.quota == "q1" and s.dimension == "itpm"]
        a = r[r[:, T_DEP] == list(tr.deployments).index("a")]
        t, u = a[:, T_T], a[:, T_UNITS + si]
        held = np.concatenate([[0.0], np.cumsum(u * a[:, T_ADMITTED])])
        before = held[np.arange(t.size)] - held[np.searchsorted(t, t - 10.0, side="right")]
        late = t > 300.0
        over = (before + u > allow) & late
        shares.append(over.sum() / max(late.sum(), 1))
        sizes.append(u[over])
        b = r[r[:, T_DEP] == list(tr.deployments).index("b")]
        b = b[b[:, T_T] > 300.0]
        tb = b[:, T_T]
        grid = np.arange(tb[0] + 15.0, tb[-1], 0.5)
        counts.append(np.searchsorted(tb, grid) - np.searchsorted(tb, grid - 15.0))
        cs = np.concatenate([[0.0], np.cumsum(b[:, T_UNITS + bi])])
        units.append(cs[np.searchsorted(tb, grid)] - cs[np.searchsorted(tb, grid - 15.0)])
    c = np.concatenate(counts)
    return {"share": float(np.mean(shares)), "size": float(np.concatenate(sizes).mean()),
            "count": float(c.mean()), "count_sd": float(c.std()),
            "units": float(np.concatenate(units).mean())}


def fed_itpm(prof: Profile, quota: str = "q1") -> FeedModel | Any:
    """The model of ``quota``'s ITPM slot in hunt-3015's fleet (b's: a :class:`FeedModel`)."""
    wl = Workload.from_profile(prof)
    fm = fleet_models(wl, cycle_time(wl))
    (e,) = [e for e in fm.entries if e.c.quota == quota and e.c.dim == "itpm"]
    return e.model


def overload_spill() -> None:
    """hunt-3015 at 504 sessions: the engine's figures beside the model's."""
    prof = load_profile(DATA / "sliding-overload-spill.yaml")
    n = 504
    got = overload_engine(prof, n)
    m = fed_itpm(prof)
    assert isinstance(m, FeedModel)
    (src,) = m.sources
    charge, _ = src.charges(n)
    g, _ = m.window_law(n)
    mc, sc = _mean_sd(src.calls(n))
    print(f"hunt-3015 at {n}: engine / model")
    print(f"  share of a's attempts its ITPM log refuses {got['share']:6.1%}"
          f"  {fed_itpm(prof, 'q0').stats(n).loss_fraction:6.1%}")
    print(f"  mean input tokens of a's ITPM refusals      {got['size']:4.0f}"
          f"      {_mean_sd(charge, m.h)[0]:4.0f}")
    print(f"  attempts at b a 15 s window             {got['count']:4.1f} ± "
          f"{got['count_sd']:4.1f}   {mc:4.1f} ± {sc:4.1f}")
    print(f"  b's input tokens a window (time avg)     {got['units']:6.0f}"
          f"     {_mean_sd(g, m.h)[0]:6.0f}")


def refused_by_attempt(prof: Profile, n: int, reps: int = 3) -> list[float]:
    """The engine's refused share of first attempts, first retries and second retries at
    ``n`` sessions (``reps`` × 1 h)."""
    rows = np.concatenate([trace_attempts(prof, n, horizon_s=3600.0, seed=1,
                                          replication=r).rows for r in range(reps)])
    return [1.0 - float(rows[rows[:, T_ATTEMPT] == k, T_ADMITTED].mean()) for k in (1, 2, 3)]


def bucket_chain_at(prof: Profile, n: int) -> tuple[BucketChain, float, Any]:
    """(hunt-3099's level chain, its launches a second at ``n`` sessions, the bucket
    model)."""
    wl = Workload.from_profile(prof)
    (c,) = [c for c in wl.constraints if wl.units_per_turn(c) > 0]
    model = bucket_model(wl, c, cycle_time(wl).cycle_s)
    chain = model.chain
    assert isinstance(chain, BucketChain)
    return chain, n * model.rate_per_session, model


def backoff_again() -> None:
    """Refused share by attempt (3 × 1 h), with and without the retries; the model's."""
    prof = load_profile(DATA / "bucket-backoff-again.yaml")
    n = 147
    by = refused_by_attempt(prof, n)
    chain, lam, model = bucket_chain_at(prof, n)
    ch = chain._retry_refusals(lam)
    print(f"hunt-3099 at {n}: refused, first attempts / retry 1 / retry 2 (given 1)")
    print(f"  engine {by[0]:.2%} / {by[1]:.1%} / {by[2]:.1%}")
    print(f"  model  {chain.poisson_share(lam):.2%} (the average level) / {ch[0]:.1%} / "
          f"{ch[1] / ch[0]:.1%}")
    sim = simulate(prof, n, seed=1, replications=10)
    print(f"  attempts answered 429: engine {sim.metrics['attempt_429_fraction'].mean:.2%}, "
          f"model {model.stats(n).loss_fraction:.2%}")
    data = yaml.safe_load((DATA / "bucket-backoff-again.yaml").read_text())
    data["retry"]["max_retries"] = 0
    plain = profile_from_dict(data)
    mp = bucket_chain_at(plain, 147)[2]
    for k in (147, 174):
        e = simulate(plain, k, seed=1, replications=10).metrics["attempt_429_fraction"].mean
        print(f"  no retries, {k} sessions: engine {e:.2%}, model {mp.stats(k).loss_fraction:.2%}")


def lock() -> None:
    """One 4 h trace at 165 sessions, 20-minute blocks: the share of attempts in the
    first sixth of the 30 s window, and the share refused."""
    prof = load_profile(DATA / "fixed-think-locks.yaml")
    tr = trace_attempts(prof, 165, horizon_s=4 * 3600.0, seed=1, max_attempts=5_000_000)
    t = tr.rows[:, T_T]
    first = ((t + tr.clock_offset_s) % 30.0) < 5.0
    refused = tr.rows[:, T_ADMITTED] == 0
    for b0 in np.arange(0.0, t.max(), 1200.0):
        m = (t >= b0) & (t < b0 + 1200.0)
        if m.any():
            print(f"  {b0 / 3600:4.2f} h: first sixth {first[m].mean():5.1%}, "
                  f"refused {refused[m].mean():6.2%}")


def warmup() -> None:
    """The 429 share at each record's simulated N* (6 × 1 h) after the default warm-up
    and after 3 h; then three saturation searches again after 3 h (20 × 1 h)."""
    import hunt

    recs = {x["seed"]: x for x in hunt.load(ROOT / "benchmarks" / "hunt" / "records.jsonl")}
    for s in (82, 1061, 1094, 2091, 3036, 3067, 3008, 191):
        x = recs[s]
        prof = hunt.build(s)[2]
        a, b = (simulate(prof, x["simulated"], seed=1, replications=6, warmup_s=w)
                .metrics["attempt_429_fraction"].mean for w in (None, 3 * 3600.0))
        print(f"  seed {s}: N* {x['simulated']}, target {prof.targets.max_429_fraction:.0%}: "
              f"{a:.2%} after the default warm-up, {b:.2%} after 3 h")
    for s, lo in ((82, 100), (1061, 100), (3067, 20)):
        prof, res = hunt.build(s)[2:4]
        sat = find_saturation(prof, lo, res.burst_ceiling + 5, seed=1, max_sessions=2000,
                              warmup_s=3 * 3600.0)
        print(f"  seed {s}: searched after 3 h {sat.n_star} [{sat.n_lo}–{sat.n_hi}]")


def web_research() -> None:
    """20 replications at N* 42 (seed 2) after 0, 3 and 6 h; the settle check at the
    search's N* (seed 1)."""
    prof = load_profile(ROOT / "profiles" / "web-research.yaml")
    for w in (None, 3 * 3600.0, 6 * 3600.0):
        m = simulate(prof, 42, seed=2, replications=20, warmup_s=w).metrics[
            "attempt_429_fraction"]
        print(f"  warm-up {'default' if w is None else f'{w / 3600:g} h'}: {m.mean:.2%} "
              f"[{m.lo:.2%}–{m.hi:.2%}]")
    sat = find_saturation(prof, 38, 46, seed=1)
    s = settle(prof, sat)
    assert s is not None
    print(f"  N* {sat.n_star}: {s.measured.mean:.2%} [{s.measured.lo:.2%}–{s.measured.hi:.2%}]"
          f"; 2 h on {s.later.mean:.2%} [{s.later.lo:.2%}–{s.later.hi:.2%}]; drifts {s.drifts}")


def cost() -> None:
    """Simulated replication-hours of a simulated ceiling (seed 1), the search's and the
    settle check's: each replication runs its warm-up and horizon (the check's warm-up
    two hours longer), at sessions near N* either way."""
    for name in ("web-research", "tool-agent", "chat-assistant", "ptu-spillover"):
        r = ceiling(load_profile(ROOT / "profiles" / f"{name}.yaml"), "simulate",
                    sim=SimSettings(seed=1))
        sat = r.simulated
        assert sat is not None and sat.settling is not None
        search = sat.replications_simulated * (sat.warmup_s + sat.horizon_s) / 3600.0
        check = sat.settling.replications * (sat.warmup_s + SETTLE_S + sat.horizon_s) / 3600.0
        print(f"  {name}: search {search:.0f} h, check {check:.1f} h (+{check / search:.0%}), "
              f"drifts {sat.settling.drifts}")


PROBES = {"overload-spill": overload_spill, "backoff-again": backoff_again, "lock": lock,
          "warmup": warmup, "web-research": web_research, "cost": cost}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=tuple(PROBES))
    PROBES[ap.parse_args(argv).probe]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
