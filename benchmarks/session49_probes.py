"""Session 49's probes (issue 13): a turn's sequential calls into a sliding loss log.

Run from the repository root::

    python benchmarks/session49_probes.py trains    # hunt-2002 and variants, three ways
    python benchmarks/session49_probes.py shares    # the refused share, engine and model
    python benchmarks/session49_probes.py spread    # own units ahead + charge: the laws
    python benchmarks/session49_probes.py content   # the log's content, engine and law
    python benchmarks/session49_probes.py restarts  # hunt-57: engine and model at 31
    python benchmarks/session49_probes.py mix       # a population mix: search, engine
    python benchmarks/session49_probes.py fleets    # the two changes taken into fleets

``trains``: tests/data/sequential-calls-tpm-log.yaml (hunt-2002: a short call, then in
86 % of turns a long one about a second later, into a 15 s sliding TPM log reserving
max_tokens, no retries), variants of it and of hunt-57's tool loop: the analytic N* as
before session 49 (a call's own units ahead and its charge independent, the log a
knapsack of whole turns), with the joint law alone, with a turn's calls in one window
admitted in part too, in full and weighed by the age of a call's own units ahead
(shipped), beside the simulated search (20 × 1 h, seed 1).

``shares``: at 380 and 398 sessions the engine's share of calls refused (4 × 1 h, seed 1)
and by call site (a 3 h trace, seed 1), against the model's share as shipped and as a
knapsack of whole turns.

``spread``: at 60 sessions (nothing refused) what an arriving call adds to the log — its
session's units in the trailing 15 s and its own charge — mean and sd (tokens): the
engine's (4 h trace, seed 1), the joint law's and the two laws' taken apart.

``content``: hunt-2002 at 398 sessions, the log's content over its trailing 15 s at
400,000 instants of a 3 h trace (seed 1) against the others' free count truncated at the
allowance (the knapsack's occupancy).

``restarts``: tests/data/cadence-abort.yaml (hunt-57) at 31 sessions, the engine's share
of calls refused (8 × 1 h, seed 1) and the model's before session 49, with the joint law
alone and as shipped.

``mix``: tests/data/sequential-calls-population-mix.yaml, the analytic N*, the simulated
search (20 × 1 h, seed 1) and the engine at 648 and 654 sessions (40 × 1 h, seed 1).

``fleets``: hunt-3030, -3052 and -1082 (fleets of sliding loss logs) as shipped, with the
joint law kept in fleets, and with every fleet's turns in part (retries or not).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capacity.analytic import window  # noqa: E402
from capacity.analytic.clumped import clumped_window_model  # noqa: E402
from capacity.analytic.model import analyze, cycle_time  # noqa: E402
from capacity.model.workload import Workload  # noqa: E402
from capacity.profile.loader import profile_from_dict  # noqa: E402
from capacity.profile.schema import Profile  # noqa: E402
from capacity.search import find_saturation  # noqa: E402
from capacity.sim.engine import simulate, trace_attempts  # noqa: E402
from capacity.sim.kernels import T_ADMITTED, T_SESSION, T_SITE, T_T, T_UNITS  # noqa: E402

PROFILE = ROOT / "tests" / "data" / "sequential-calls-tpm-log.yaml"


@contextmanager
def model_as(joint: bool, in_part: bool, weighed: bool = True) -> Iterator[None]:
    """Every window model built inside reads a call's own units ahead and its charge
    jointly (or apart) and a loss log's turns in part (or whole), weighed by the age of
    a call's own units ahead (or in full)."""
    build = window.build

    def wrapped(*args: Any, **kwargs: Any) -> window.ClumpWindowModel:
        m = build(*args, **kwargs)
        if not joint:
            m.arrival_pmf = m.arrival_units = None
        m.trains_in_part = m.trains_in_part and in_part
        if not weighed:
            m.train_gap = 0.0
        return m

    with mock.patch.object(window, "build", wrapped):
        yield


def _data() -> dict[str, Any]:
    out: dict[str, Any] = yaml.safe_load(PROFILE.read_text())
    return out


def _steps(d: dict[str, Any]) -> list[Any]:
    out: list[Any] = d["session"]["turns"]["t0-single"]["steps"]
    return out


def variants() -> dict[str, Profile]:
    out: dict[str, Profile] = {"as shipped": profile_from_dict(_data())}
    exp = copy.deepcopy(_data())
    exp["session"]["think_time"] = {"exponential": "281s"}
    out["an exponential think time (its mean)"] = profile_from_dict(exp)
    always = copy.deepcopy(_data())
    _steps(always)[1]["optional"]["probability"] = 1.0
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "always a second call": lambda d: None,
        "the first call tiny": lambda d: _steps(d)[0]["call"].update(
            input_tokens=1, max_tokens=1, output_tokens=1),
        "the second call the first's": lambda d: _steps(d)[1]["optional"]["call"].update(
            input_tokens=246, max_tokens=2048, output_tokens=46),
        "the second call ~8.7 s later": lambda d: _steps(d)[0]["call"].update(
            output_tokens=1200),
        "a 60 s log": lambda d: d["quotas"]["q0"]["enforcement"].update(window="60s"),
    }
    for name, edit in edits.items():
        d = copy.deepcopy(always)
        edit(d)
        out[name] = profile_from_dict(d)
    return out


def loop_variants() -> dict[str, Profile]:
    """tests/data/cadence-abort.yaml (hunt-57: a tool loop's calls ~1.4 s apart in a 5 s
    TPM log, a cadence U(20, 36) s, no retries), paced 60–90 s, and with an Exp(20 s)
    think time instead."""
    data = yaml.safe_load((ROOT / "tests" / "data" / "cadence-abort.yaml").read_text())
    slow = copy.deepcopy(data)
    slow["session"]["cadence"] = {"uniform": ["60s", "90s"]}
    think = copy.deepcopy(data)
    think["session"].pop("cadence")
    think["session"]["think_time"] = {"exponential": "20s"}
    return {"hunt-57": profile_from_dict(data), "hunt-57 paced 60-90 s": profile_from_dict(slow),
            "hunt-57, Exp(20 s) think time": profile_from_dict(think)}


def trains() -> None:
    for name, prof in {**variants(), **loop_variants()}.items():
        got = []
        for how in ((False, False), (True, False), (True, True, False), (True, True)):
            with model_as(*how):
                got.append(analyze(prof).burst_ceiling)
        sat = find_saturation(prof, int(0.8 * min(got)), max(got) + 10, seed=1,
                              replications=20, max_sessions=20000)
        print(f"{name}: analytic {got[0]} before, {got[1]} joint, {got[2]} joint and in "
              f"part in full, {got[3]} weighed by age (shipped; age/w "
              f"{_log(prof).inner.train_gap:.2f}); simulated {sat.n_star} "
              f"[{sat.n_lo}-{sat.n_hi}]")


def _log(prof: Profile) -> Any:
    wl = Workload.from_profile(prof)
    return clumped_window_model(wl, wl.constraints[0], cycle_time(wl).cycle_s)


def shares() -> None:
    prof = profile_from_dict(_data())
    for n in (380, 398):
        e = simulate(prof, n, replications=4, seed=1, workers=1).metrics[
            "attempt_429_fraction"]
        shipped = _log(prof).stats(n).loss_fraction
        with model_as(True, False):
            whole = _log(prof).stats(n).loss_fraction
        print(f"{n} sessions: engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}], model "
              f"{shipped:.2%} (a knapsack of whole turns {whole:.2%})")
    tr = trace_attempts(prof, 398, horizon_s=3 * 3600.0, seed=1, max_attempts=5_000_000)
    r = tr.rows[tr.rows[:, T_T] > 600.0]
    for site, name in ((0, "short first call"), (1, "long second call")):
        at = r[:, T_SITE] == site
        print(f"  398 sessions, the engine's {name}: {1 - r[at, T_ADMITTED].mean():.2%} "
              f"refused, mean charge {r[at, T_UNITS].mean():.0f} tokens")


def spread() -> None:
    prof = profile_from_dict(_data())
    inner = _log(prof).inner
    tr = trace_attempts(prof, 60, horizon_s=4 * 3600.0, seed=1, max_attempts=2_000_000)
    rows = tr.rows[np.lexsort((tr.rows[:, T_T], tr.rows[:, T_SESSION]))]
    adds = []
    for s in np.unique(rows[:, T_SESSION]):
        mine = rows[rows[:, T_SESSION] == s]
        t, units = mine[:, T_T], mine[:, T_UNITS] * mine[:, T_ADMITTED]
        cum = np.concatenate([[0.0], np.cumsum(units)])
        ahead = cum[np.arange(t.size)] - cum[np.searchsorted(t, t - 15.0, "right")]
        adds.append(ahead + mine[:, T_UNITS])
    x = np.concatenate(adds)

    def moments(pmf: np.ndarray) -> str:
        k = np.arange(pmf.size) * inner.h
        mean = float(np.dot(k, pmf))
        return f"mean {mean:.0f}, sd {float(np.dot(k * k, pmf) - mean**2) ** 0.5:.0f}"

    print(f"60 sessions, refused {1 - rows[:, T_ADMITTED].mean():.2%}: the engine mean "
          f"{x.mean():.0f}, sd {x.std():.0f}; the joint law {moments(inner.arrival_pmf)}; "
          f"apart {moments(np.convolve(inner.own_pmf, inner.call_pmf))}")


def content() -> None:
    prof = profile_from_dict(_data())
    tr = trace_attempts(prof, 398, horizon_s=3 * 3600.0, seed=1, max_attempts=5_000_000)
    r = tr.rows[(tr.rows[:, T_T] > 600.0) & (tr.rows[:, T_ADMITTED] > 0)]
    order = np.argsort(r[:, T_T])
    t, u = r[order, T_T], r[order, T_UNITS]
    cum = np.concatenate([[0.0], np.cumsum(u)])
    at = np.linspace(t.min() + 20.0, t.max() - 1.0, 400_000)
    held = cum[np.searchsorted(t, at, "right")] - cum[np.searchsorted(t, at - 15.0, "right")]
    inner = _log(prof).inner
    low = inner.truncated(398)
    k = np.arange(low.size) * inner.h
    for x in (170e3, 185e3, 190e3):
        print(f"398 sessions, P(log content > {x / 1e3:.0f}k tokens): engine "
              f"{(held > x).mean():.3f}, the truncated free count "
              f"{low[k > x].sum() / low.sum():.3f}")


def restarts() -> None:
    prof = profile_from_dict(yaml.safe_load(
        (ROOT / "tests" / "data" / "cadence-abort.yaml").read_text()))
    e = simulate(prof, 31, replications=8, seed=1, workers=1).metrics["attempt_429_fraction"]
    got = []
    for how in ((False, False), (True, False), (True, True)):
        with model_as(*how):
            got.append(_log(prof).stats(31).loss_fraction)
    print(f"hunt-57 at 31 sessions: engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}] (8 x 1 h); "
          f"the model {got[0]:.2%} before, {got[1]:.2%} joint, {got[2]:.2%} shipped")


def mix() -> None:
    prof = profile_from_dict(yaml.safe_load(
        (ROOT / "tests" / "data" / "sequential-calls-population-mix.yaml").read_text()))
    n_a = analyze(prof).burst_ceiling
    sat = find_saturation(prof, n_a - 12, n_a + 12, seed=1, replications=20,
                          max_sessions=3000)
    print(f"population mix: analytic {n_a}, simulated {sat.n_star} [{sat.n_lo}-{sat.n_hi}]")
    for n in (648, 654):
        e = simulate(prof, n, replications=40, seed=1, workers=1).metrics[
            "attempt_429_fraction"]
        print(f"  {n} sessions: engine {e.mean:.2%} [{e.lo:.2%}-{e.hi:.2%}] (40 x 1 h)")


@contextmanager
def fleets_as(joint: bool, in_part: bool) -> Iterator[None]:
    """Fleets' window models keep the joint law and their turns in part (or not) where
    ``fleet.thin_calls`` would take them away."""
    from capacity.analytic import fleet

    thin = fleet.thin_calls

    def wrapped(inner: Any, wl: Any, c: Any) -> Any:
        kept = (inner.arrival_pmf, inner.arrival_units, inner.trains_in_part)
        out = thin(inner, wl, c)
        if joint:
            out.arrival_pmf, out.arrival_units = kept[0], kept[1]
        if in_part:
            out.trains_in_part = kept[2]
        return out

    with mock.patch.object(fleet, "thin_calls", wrapped):
        yield


def fleets() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from session48_probes import _hunt

    for seed in (3030, 3052, 1082):
        prof = profile_from_dict(_hunt(seed))
        got = [analyze(prof).burst_ceiling]
        for how in ((True, False), (False, True)):
            with fleets_as(*how):
                got.append(analyze(profile_from_dict(_hunt(seed))).burst_ceiling)
        print(f"hunt-{seed}: analytic {got[0]} shipped, {got[1]} with the joint law in "
              f"fleets, {got[2]} with every fleet's turns in part")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    probes = {"trains": trains, "shares": shares, "spread": spread, "content": content,
              "restarts": restarts, "mix": mix, "fleets": fleets}
    ap.add_argument("probe", choices=list(probes))
    probes[ap.parse_args().probe]()


if __name__ == "__main__":
    main()
