"""Session 41's probes (issue 13).

    python benchmarks/session41_probes.py mix       # hunt-3: a mix of populations' factor
    python benchmarks/session41_probes.py horizon   # hunt-82 / 1061: lock-in takes hours
    python benchmarks/session41_probes.py lock      # hunt-82: a mean-field phase density
    python benchmarks/session41_probes.py floor     # hunt-3001: a loss log, its trains

``mix``: tests/data/bucket-populations-continue.yaml (hunt-3) at 100 / 106 / 114 sessions —
the engine's attempts refused and its calls a second over the populations' unthrottled
ones (20 × 1 h, seed 1), against the mix's load factor at the engine's own share (each
launch pattern by its charge, and at one share) and the model's share.

``horizon``: a fixed think time, fixed windows, no retries (hunt-82: a 30 s TPM window,
tool loops, 54.3 s think; hunt-1061: a 10 s RPM window, fan-outs, 38.2 s think) — the
engine's attempts refused (20 replications, seed 1) measured over one hour after the
default warm-up (two cycles), after one hour and after three.

``lock``: a deterministic mean-field model of the same sessions' phases: the density of
turn starts over ``m`` windows (``m`` = the cycle over the window, rounded), each cycle's
window counts from the density (mean and variance of the turns' charges by their launch
offsets, a gamma tail), each turn refused at its first launch past the room (``abort``),
admitted turns moved by their cycle and refused ones by the part they ran, less ``m``
windows. Started from a 2 % or 30 % surplus in one window's class, or all sessions in it;
it prints the share refused over the last 50 of 300 cycles. Not the product's model: it
shows that the locked state exists (bistable) well below where the engine locks.

``floor``: hunt-3001 (a 30 s TPM sliding log reserving max_tokens, tool loops, no
retries) and variants of its turn — the engine's attempts refused (20 × 1 h, seed 1)
against the log's own law (``ClumpedWindow.inner``) and the model's share with the fixed
windows' floor, at 528 sessions (the simulated N*) or, for a variant, at the model's N*.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import gamma

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import hunt  # noqa: E402

from capacity.analytic.bucket import BucketChain  # noqa: E402
from capacity.analytic.clumped import timing_of, window_step  # noqa: E402
from capacity.analytic.model import analyze  # noqa: E402
from capacity.analytic.populations import PopulationModel, view  # noqa: E402
from capacity.model.workload import Constraint, Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.sim.engine import simulate  # noqa: E402


def mix() -> None:
    prof = load_profile(ROOT / "tests" / "data" / "bucket-populations-continue.yaml")
    pv = view(prof)
    (c,) = [c for c in pv.constraints() if c.dim == "itpm"]
    pm = PopulationModel(pv, c)
    for n in (100, 106, 114):
        counts = prof.split(n)
        unthrottled = sum(counts[p.name] * p.wl.calls_per_turn() / p.cycle.cycle_s
                          for p in pv.parts)
        m = simulate(prof, n, replications=20, seed=1, workers=2).metrics
        calls = m["turn_throughput_per_s"].mean * m["calls_per_turn"].mean / unthrottled
        share = m["attempt_429_fraction"].mean
        b = pm.blended(n)
        assert isinstance(b.chain, BucketChain)
        lam = sum(counts.values()) * b.rate_per_session
        at = analyze(prof, sessions=n).binding.at_sessions
        assert at is not None
        print(f"{n} sessions: engine {share:.2%} refused, calls a second x{calls:.4f}; "
              f"factor at its share x{b.chain._load_factor(share, lam):.4f} "
              f"(one share x{b.chain._load_factor(share):.4f}); "
              f"model {at.attempt_429_fraction:.2%} refused", flush=True)


def horizon() -> None:
    for seed, ns in ((82, (140, 150, 160, 183)), (1061, (130, 140, 152))):
        _, data, _, _, _ = hunt.build(seed)
        prof = profile_from_dict(data)
        print(f"hunt-{seed} (fixed {data['session']['think_time']} think time): "
              "refused over 1 h after the default warm-up / 1 h / 3 h")
        for n in ns:
            cells = []
            for warm in (None, 3600.0, 10800.0):
                est = simulate(prof, n, replications=20, seed=1, workers=2,
                               warmup_s=warm).metrics["attempt_429_fraction"]
                cells.append(f"{est.mean:.2%} [{est.lo:.2%}-{est.hi:.2%}]")
            print(f"  {n}: " + " / ".join(cells), flush=True)
        d = copy.deepcopy(data)
        d["session"]["think_time"] = {"exponential": data["session"]["think_time"]}
        est = simulate(profile_from_dict(d), ns[-1], replications=20, seed=1, workers=2,
                       warmup_s=10800.0).metrics["attempt_429_fraction"]
        print(f"  {ns[-1]} with an exponential think time of that mean, after 3 h: "
              f"{est.mean:.2%}", flush=True)


def _mean_field(wl: Workload, c: Constraint, n: int, start: str, cycles: int = 300,
                cells: int = 240, turns: int = 32) -> float:
    tm = timing_of(wl)
    h = window_step(c)
    mean = np.zeros(len(tm.specs))
    var = np.zeros(len(tm.specs))
    for k, spec in enumerate(tm.specs):
        cost = c.costs.get(id(spec))
        if cost is not None:
            p = cost.pmf(h)
            x = np.arange(p.size) * h
            mean[k] = float(p @ x)
            var[k] = float(p @ (x * x)) - mean[k] ** 2
    t, calls = tm.times[:turns], tm.calls[:turns]
    ok = np.isfinite(t) & (calls >= 0)
    t = np.where(ok, t, 0.0)
    c1 = np.where(ok, mean[np.maximum(calls, 0)], 0.0)
    c2 = np.where(ok, var[np.maximum(calls, 0)], 0.0)
    gap, pause = tm.gap[:turns], tm.gap[:turns] - tm.latency[:turns]
    w, room = c.window_s, float(c.allowance)
    m = max(1, round(float(tm.gap.mean()) / w))
    dx = m * w / cells
    b = np.floor(t / dx).astype(int)
    # A turn's own calls in one window add: E[S^2] by prefix sums of its charges.
    k2 = c1 * (2.0 * (np.cumsum(c1, axis=1) - c1) + c1) + c2
    f1 = np.fft.rfft(np.bincount((b % cells).ravel(), (c1 * ok).ravel(), cells) / turns)
    f2 = np.fft.rfft(np.bincount((b % cells).ravel(), (k2 * ok).ravel(), cells) / turns)
    idx = (np.arange(cells)[:, None, None] + b[None]) % cells
    rej = wl.profile.retry.rejection_latency

    def targets(shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = np.arange(cells).reshape((cells,) + (1,) * shift.ndim) + shift[None] / dx
        i0 = np.floor(y).astype(int)
        return i0 % cells, (i0 + 1) % cells, y - i0

    ta = targets(gap)
    tr = targets(np.where(ok, t + rej + pause[:, None], 0.0))
    cls = (np.arange(cells) * dx // w).astype(int)
    if start == "all":
        f = np.where(cls == 0, 1.0, 0.0)
    else:
        extra = float(start)
        f = 1.0 + extra * np.where(cls == 0, 1.0, -1.0 / max(m - 1, 1))
    f = f * (n / f.sum())
    edges = [round(j * w / dx) for j in range(m + 1)]
    cbar = float((c1 * ok).sum() / ok.sum())
    shares = []
    for _ in range(cycles):
        ff = np.fft.rfft(f)
        lam1, lam2 = np.fft.irfft(ff * f1, cells), np.fft.irfft(ff * f2, cells)
        mu, m2 = np.empty(cells), np.empty(cells)
        for j in range(m):
            s = slice(edges[j], edges[j + 1])
            mu[s] = np.cumsum(lam1[s]) - 0.5 * lam1[s]
            m2[s] = np.cumsum(lam2[s]) - 0.5 * lam2[s]
        v = np.maximum(m2 - mu**2 / n, 1e-9)
        mu = np.maximum(mu, 1e-9)
        r = gamma.sf(room - cbar, mu**2 / v, scale=v / mu)[idx] * ok[None]
        by = np.maximum.accumulate(r, axis=2)
        before = np.concatenate([np.zeros((cells, turns, 1)), by[:, :, :-1]], axis=2)
        made = (1.0 - before) * ok[None]
        shares.append(float((f * (made * r).sum(axis=2).mean(axis=1)).sum()
                            / (f * made.sum(axis=2).mean(axis=1)).sum()))
        wa = f[:, None] * (1.0 - by[:, :, -1]) / turns
        wr = f[:, None, None] * (by - before) / turns
        f = (np.bincount(ta[0].ravel(), (wa * (1 - ta[2])).ravel(), cells)
             + np.bincount(ta[1].ravel(), (wa * ta[2]).ravel(), cells)
             + np.bincount(tr[0].ravel(), (wr * (1 - tr[2])).ravel(), cells)
             + np.bincount(tr[1].ravel(), (wr * tr[2]).ravel(), cells))
    return float(np.mean(shares[-50:]))


def lock() -> None:
    _, _, prof, _, _ = hunt.build(82)
    wl = Workload.from_profile(prof)
    (c,) = wl.constraints
    print("hunt-82, mean-field phases: refused over the last 50 of 300 cycles, starting "
          "from a 2 % / 30 % surplus in one window's class / all sessions in it")
    for n in (140, 150, 160, 183):
        got: list[Any] = [_mean_field(wl, c, n, s) for s in ("0.02", "0.3", "all")]
        print(f"  {n}: " + " / ".join(f"{x:.2%}" for x in got), flush=True)


def floor() -> None:
    from capacity.analytic.clumped import ClumpedWindow
    from capacity.analytic.model import constraint_model, cycle_time

    _, data, _, _, _ = hunt.build(3001)
    steps = data["session"]["turns"]["t0-loop"]["steps"]

    def turn(new: list[dict[str, Any]]) -> dict[str, Any]:
        d = copy.deepcopy(data)
        d["session"]["turns"]["t0-loop"]["steps"] = copy.deepcopy(new)
        return d

    fixed = copy.deepcopy(data)
    fixed["quotas"]["q0"]["enforcement"] = {"type": "fixed_window", "window": "30s"}
    repeats = copy.deepcopy(steps[1])
    repeats["repeat"]["count"] = 4
    rows = [("the log", data, 528), ("fixed 30 s windows", fixed, 528),
            ("the repeats alone, four a turn", turn([repeats]), None),
            ("the final call alone", turn([steps[2]]), None),
            ("the first and the final call", turn([steps[0], steps[2]]), None)]
    for name, d, at in rows:
        prof = profile_from_dict(d)
        n = at if at is not None else analyze(prof).burst_ceiling
        wl = Workload.from_profile(prof)
        m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)
        assert isinstance(m, ClumpedWindow)
        own = m.inner.attempt_share(n)["attempt"]
        est = simulate(prof, n, replications=20, seed=1, workers=2).metrics[
            "attempt_429_fraction"]
        print(f"{name}, {n} sessions: engine {est.mean:.2%}, own law {own:.2%}, "
              f"model {m.stats(n).loss_fraction:.2%}", flush=True)


if __name__ == "__main__":
    {"mix": mix, "horizon": horizon, "lock": lock, "floor": floor}[sys.argv[1]]()
