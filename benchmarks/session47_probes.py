"""Session 47's probes (issue 13).

    python benchmarks/session47_probes.py clog      # complex logs: numpy's against log|z| + i·arg z
    python benchmarks/session47_probes.py spill     # hunt-3027's spilled calls, model and engine
    python benchmarks/session47_probes.py floor     # a sliding loss log's floor, in units
    python benchmarks/session47_probes.py trains    # ... and near its allowance, in calls

``clog``: one run, interleaved, best of 7 repeats: ``np.log`` of a complex transform
against :func:`capacity.analytic.window.complex_log` at 2^13 … 2^18 lattice points (their
largest difference); then a fractional session count's window law (``_pmf`` at 7.3, 7.9
and 12.25 sessions of tool-agent's RPM constraint, and at the N − 1 of hunt-1052's ITPM
log): the log-domain formula it replaced (the factor's log added before one exp) against
the product it takes now (the factor multiplied after the exp), and their largest
difference; then hunt-1052's whole analytic answer (seconds of CPU, best of 3); then
tests/data/fleet-spill-past-rpm-only.yaml's receiver share at 316, 346 and 358 sessions
with numpy's complex log and with ``complex_log`` (an ill-conditioned fleet path).

``spill``: hunt-3027 (a 10 s sliding TPM log spilling into a 10 s fixed one) at 347
sessions (its simulated N*): the spilled calls as the receiver's model has them (calls a
window, a call's charge, whole launches' charge and calls) against the engine's (one
replication of 1 h, seed 1: attempts at the receiver, grouped into launches by session
and instant), the receiver's window law against the engine's window totals, and the
429 share, the model's and the engine's (10 × 1 h). Why the record is optimistic: see
benchmarks/RESULTS.md (session 47).

``floor``: tests/data/sliding-loss-two-sizes.yaml (a 10 s sliding TPM log, one call a
turn of ~950 or ~7,900 tokens, no retries) at 400, 600 and 800 sessions: the log's own
law and the fixed windows' model (calls turned away), the units each turns away (the
log's Palm rule by charge; the fixed windows' ``E[(S − q)⁺]/E[S]``), the answer, and the
engine on the log and on fixed windows of its length (4 × 1 h, seed 1).

``trains``: tests/data/sliding-loss-trains.yaml (hunt-3001) with the loop's final call
500–24,000 or 500–40,000 input tokens, and tests/data/sliding-loss-trains-two-finals.yaml
(500 or 30,000, 3:1): the analytic N* with the floor in calls within 1.1 times the
allowance (as shipped) and with the units gate alone (``clumped._FLOOR_IN_CALLS`` 0, the
first version), the engine's share at the N each says and at one between (4 × 1 h,
seed 1; the target 3 %); and on the two finals the share at the last N within 1.1 times
the allowance and the next N's by the switch alone (no holding to the one before).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from capacity.cli.entry import one_blas_thread  # noqa: E402

one_blas_thread()

import hunt  # noqa: E402
import numpy as np  # noqa: E402

from capacity.analytic import model as amodel  # noqa: E402
from capacity.analytic import window  # noqa: E402
from capacity.analytic.model import analyze  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import load_profile, profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402


def _hunt_profile(seed: int) -> Profile:
    _, data = hunt.draw(seed)
    hunt._scale(data, random.Random(seed + 7_000_000))
    return profile_from_dict(data)


def _best(fn: Any, repeat: int = 7) -> float:
    out = math.inf
    for _ in range(repeat):
        t = time.process_time()
        fn()
        out = min(out, time.process_time() - t)
    return out


def _old_pmf(inner: Any, n: float) -> np.ndarray:
    """The window law of ``n`` sessions as computed before: the fractional session's
    factor added to the log, one exp (``ClumpWindowModel._pmf`` without retries)."""
    L = min(inner._length(n), window._MAX_FFT)
    k = math.floor(n + 1e-12)
    log_s = inner._transforms(L)[0]
    part = 1.0 - (n - k) + (n - k) * np.exp(log_s)
    log_g = k * log_s + np.log(np.where(np.abs(part) < 1e-300, 1e-300, part))
    with np.errstate(under="ignore"):
        g = np.fft.irfft(np.exp(log_g), L)
    return np.where(g > 1e-250, g, 0.0)


def _inner(prof: Profile, which: int = 0) -> Any:
    wl = Workload.from_profile(prof)
    cyc = amodel.cycle_time(wl)
    return amodel.constraint_model(wl, wl.constraints[which], cyc.cycle_s,  # type: ignore[union-attr]
                                   cyc.min_cycle_s).inner


def clog() -> None:
    rng = np.random.default_rng(5)
    print("complex log of L/2 + 1 points (ms, best of 7): numpy | log|z| + i·arg z")
    for e in range(13, 19):
        L = 1 << e
        z = np.exp(rng.normal(0.0, 0.3, L // 2 + 1) + 1j * rng.uniform(-3.0, 3.0, L // 2 + 1))
        a = _best(lambda z=z: np.log(z))
        b = _best(lambda z=z: window.complex_log(z))
        diff = float(np.abs(np.log(z) - window.complex_log(z)).max())
        print(f"  2^{e}: {1e3 * a:7.3f} | {1e3 * b:7.3f}  ({a / b:.1f}×; largest difference "
              f"{diff:.1e})")
    cases = [("tool-agent", _inner(load_profile(ROOT / "profiles/tool-agent.yaml")),
              (7.3, 7.9, 12.25))]
    p1052 = _hunt_profile(1052)
    cases.append(("hunt-1052", _inner(p1052), (3.5, 10.25, 40.75)))
    print("a fractional session count's window law (ms, best of 7): log-domain | product")
    for name, inner, ns in cases:
        if inner.session_pmf is None:
            print(f"  {name}: no session law (nothing fractional to compare)")
            continue
        for n in ns:
            old = _old_pmf(inner, n)
            new = inner._pmf(n, 0.0)
            a = _best(lambda inner=inner, n=n: _old_pmf(inner, n))
            b = _best(lambda inner=inner, n=n: inner._pmf(n, 0.0))
            diff = float(np.abs(old - new).max()) / float(old.max())
            print(f"  {name} at {n}: {1e3 * a:6.2f} | {1e3 * b:6.2f} ({old.size} points; "
                  f"largest difference {diff:.1e} of the peak)")
    best = math.inf
    for _ in range(3):
        prof = _hunt_profile(1052)     # a fresh profile: nothing cached
        t = time.process_time()
        res = analyze(prof)
        best = min(best, time.process_time() - t)
    print(f"hunt-1052's analytic answer: N* {res.burst_ceiling}, {best:.3f} s CPU (best of 3)")
    # An ill-conditioned fleet share: tests/data/fleet-spill-past-rpm-only.yaml's receiver
    # with numpy's complex log swapped back in (the two differ by ~5e-16).
    path = ROOT / "tests/data/fleet-spill-past-rpm-only.yaml"
    ours = window.complex_log

    def numpy_log(z: Any, floor: float = 1e-300) -> Any:
        return np.log(np.where(np.abs(z) < floor, floor, np.asarray(z, np.complex128)))

    for n in (316, 346, 358):
        got = []
        for fn in (numpy_log, ours):
            window.complex_log = fn
            try:
                r = analyze(load_profile(path), sessions=n)   # (a fresh profile each time)
            finally:
                window.complex_log = ours
            got.append(next(c.at_sessions.attempt_429_fraction for c in r.constraints
                            if c.quota == "q1" and c.dimension == "rpm"
                            and c.at_sessions is not None))
        print(f"fleet-spill-past-rpm-only q1.rpm at {n}: numpy's log {100 * got[0]:.2f} %, "
              f"complex_log {100 * got[1]:.2f} %")


def spill() -> None:
    from session46_probes import receiver_at

    from capacity.sim.engine import simulate, trace_attempts
    from capacity.sim.kernels import T_ADMITTED, T_DEP, T_SESSION, T_T, T_UNITS

    prof = _hunt_profile(3027)
    n = 347
    m, res = receiver_at(prof, n)
    src = m.sources[0]
    counts = src.calls(n)
    calls = float(np.dot(np.arange(counts.size), counts)) * (src.block(n) if src.block else 1)
    charge, launch = src.charges(n)

    def mean(law: np.ndarray) -> float:
        return float(np.dot(np.arange(law.size) * m.h, law)) / float(law.sum())

    assert launch is not None
    law, per = launch
    print(f"model: {calls:.1f} spilled calls a window of {mean(charge):,.0f} tokens "
          f"({calls * mean(charge):,.0f} tokens); as {calls / per:.2f} launches of "
          f"{mean(law):,.0f} tokens and {per:.2f} calls ({calls / per * mean(law):,.0f} "
          "tokens)")
    tr = trace_attempts(prof, n, horizon_s=3600.0, seed=1, replication=0,
                        max_attempts=5_000_000)
    rows = tr.rows
    slot = next(i for i, s in enumerate(tr.slots) if s.quota == "q1")
    sl = tr.slots[slot]
    w = sl.window_s
    q = sl.limit / sl.period_s * w
    sp = rows[rows[:, T_DEP] == 1]
    span = float(rows[:, T_T].max() - rows[:, T_T].min())
    ch = sp[:, T_UNITS + slot]
    keys = np.round(sp[:, T_T], 6) * 1e4 + sp[:, T_SESSION]
    _, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
    print(f"engine: {len(sp) / span * w:.1f} spilled attempts a window of {ch.mean():,.0f} "
          f"tokens ({ch.sum() / span * w:,.0f} tokens); {cnt.size / span * w:.2f} launches "
          f"of {np.bincount(inv, weights=ch).mean():,.0f} tokens and {cnt.mean():.2f} calls; "
          f"{100 * float((sp[:, T_ADMITTED] == 0).mean()):.2f} % of them refused there")
    g, _ = m.window_law(n)
    units = np.arange(g.size) * m.h
    win = np.floor((sp[:, T_T] + tr.clock_offset_s) / w).astype(np.int64)
    win -= win.min()
    tot = np.bincount(win, weights=ch)[1:-1]
    print(f"receiver window ({q:,.0f} tokens): mean model {float(np.dot(units, g)):,.0f}, "
          f"engine {tot.mean():,.0f}")
    for x in (0.8, 1.0, 1.25):
        print(f"  P(S > {x}·q): model {float(g[units > x * q].sum()):.4f}, "
              f"engine {float((tot > x * q).mean()):.4f}")
    share = sum(c.at_sessions.attempt_429_fraction for c in res.constraints
                if c.at_sessions is not None and c.quota == "q1")
    sim = simulate(prof, n, replications=10, seed=1, workers=2)
    e = sim.metrics["attempt_429_fraction"]
    print(f"429 share at {n}: model {100 * share:.2f} %, engine {100 * e.mean:.2f} % "
          f"[{100 * e.lo:.2f}–{100 * e.hi:.2f}]")


def floor() -> None:
    import copy

    import yaml

    from capacity.analytic.clumped import ClumpedWindow
    from capacity.sim.engine import simulate

    path = ROOT / "tests/data/sliding-loss-two-sizes.yaml"
    data = yaml.safe_load(path.read_text())
    prof = load_profile(path)
    wl = Workload.from_profile(prof)
    cyc = amodel.cycle_time(wl)
    m = amodel.constraint_model(wl, wl.constraints[0], cyc.cycle_s, cyc.min_cycle_s)
    assert isinstance(m, ClumpedWindow) and m.fixed_twin is not None
    fixed = copy.deepcopy(data)
    fixed["quotas"]["q0"]["enforcement"]["type"] = "fixed_window"
    fixed_prof = profile_from_dict(fixed)
    print("sessions | calls refused: own law, fixed windows' model, answer | units refused: "
          "own law, fixed windows' E[(S-q)+]/E[S] | engine: log, fixed windows")
    for n in (400, 600, 800):
        own = m.inner.attempt_share(n)["attempt"]
        twin = m.fixed_twin.attempt_share(n)["attempt"]
        ans = m.stats(n).loss_fraction
        ou, fu = m.inner.loss_units_share(n), m.fixed_twin.stop_loss_units_share(n)
        e_log, e_fix = (simulate(p, n, replications=4, seed=1, workers=1)
                        .metrics["attempt_429_fraction"].mean for p in (prof, fixed_prof))
        print(f"{n} | {100 * own:.1f} %, {100 * twin:.1f} %, {100 * ans:.1f} % | "
              f"{100 * ou:.1f} %, {100 * fu:.1f} % | {100 * e_log:.1f} %, {100 * e_fix:.1f} %",
              flush=True)


def trains() -> None:
    import copy

    import yaml

    from capacity.analytic import clumped
    from capacity.sim.engine import simulate

    base = yaml.safe_load((ROOT / "tests/data/sliding-loss-trains.yaml").read_text())
    cases: list[tuple[str, dict[str, Any], int]] = []
    for lo, hi, mid in ((500, 24000, 327), (500, 40000, 233)):
        d = copy.deepcopy(base)
        d["session"]["turns"]["t0-loop"]["steps"][-1]["call"]["input_tokens"] = {
            "uniform": [lo, hi]}
        cases.append((f"final call {lo}-{hi}", d, mid))
    two_path = ROOT / "tests/data/sliding-loss-trains-two-finals.yaml"
    cases.append(("final call 500 or 30,000 (3:1)", yaml.safe_load(two_path.read_text()),
                  438))
    for name, data, mid in cases:
        # (A fresh profile each time: the analytic answer is remembered by the profile.)
        shipped = analyze(profile_from_dict(data)).burst_ceiling
        keep = clumped._FLOOR_IN_CALLS
        clumped._FLOOR_IN_CALLS = 0.0
        try:
            units = analyze(profile_from_dict(data)).burst_ceiling
        finally:
            clumped._FLOOR_IN_CALLS = keep
        shares = []
        for n in sorted({shipped, mid, units}):
            e = simulate(profile_from_dict(data), n, replications=4, seed=1,
                         workers=1).metrics["attempt_429_fraction"]
            shares.append(f"{n}: {100 * e.mean:.2f} % [{100 * e.lo:.2f}–{100 * e.hi:.2f}]")
        print(f"{name}: N* {shipped} (calls within 1.1x), {units} (units gate alone); "
              f"engine {', '.join(shares)}", flush=True)
    two = load_profile(two_path)
    wl = Workload.from_profile(two)
    cyc = amodel.cycle_time(wl)
    m = amodel.constraint_model(wl, wl.constraints[0], cyc.cycle_s, cyc.min_cycle_s)
    inner, twin = m.inner, m.fixed_twin  # type: ignore[union-attr]
    assert twin is not None
    last = math.floor(clumped._FLOOR_IN_CALLS * inner.q_lat * inner.h / inner.mean_units
                      + 1e-9)
    own = inner.attempt_share(last + 1)["attempt"]
    alone = (max(own, twin.attempt_share(last + 1)["attempt"])
             if twin.stop_loss_units_share(last + 1) > inner.loss_units_share(last + 1)
             else own)
    print(f"two finals: {100 * m.stats(last).loss_fraction:.2f} % at {last} sessions (the "
          f"last within 1.1x); at {last + 1} {100 * alone:.2f} % by the switch alone, "
          f"{100 * m.stats(last + 1).loss_fraction:.2f} % as shipped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("probe", choices=["clog", "spill", "floor", "trains"])
    args = ap.parse_args()
    {"clog": clog, "spill": spill, "floor": floor, "trains": trains}[args.probe]()


if __name__ == "__main__":
    main()
