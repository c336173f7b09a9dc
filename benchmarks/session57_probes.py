"""Session 57's probes (issue 13): the two rows of the accuracy table over 0.2 s of
compute, what each asks, and what the changes saved.

Run from the repository root::

    python benchmarks/session57_probes.py looks          # what each row asks
    python benchmarks/session57_probes.py cost [REV]     # this tree against REV's
    python benchmarks/session57_probes.py cadence        # a regular cadence at a bucket

``looks``: ptu-spillover beside chat and batch populations — each mix the population
fleet looks at (its N, the fleet's ceiling M* of that mix less the 10 held sessions,
and the M = N + held its binding slot's search asked: pay-as-you-go, fed by the PTU)
— tool-agent behind a cap of 5 calls in flight, each N whose p95 turn latency the
pacer's search walked, and chat-assistant's searches from a guess, each N asked and its
share (deterministic: no timing).

``cost``: the analytic answer's CPU time (best of 5, every store emptied, as
``analytic_accuracy.py`` times it) of those two rows, chat-assistant and web-research,
and what ``looks`` counts (the M each population look's search asks, the pacer's walks,
the N each of chat-assistant's searches asks), in this tree and in a checkout of
``REV`` (default eca1bb3, session 56's last commit; its kernels built in place),
alternated five times in one sitting, and the medians: this VM's speed moves by a third
between hours, so only figures taken side by side compare.

``cadence``: web-research on a 10 s token bucket without retries (the profile variants'
``bucket10``, 64 sessions) under four cadences of about the same mean: the model's share
of attempts refused and the engine's (20 × 1 h, seed 7). The model reads a cadence's
turn starts as Poisson launches; a regular cadence's starts are smoother than Poisson
over the tens of seconds a 25-request bucket takes to drain, and the engine refuses less.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _profiles() -> dict[str, Any]:
    from capacity.profile.loader import load_profile, profile_from_dict

    capped = load_profile(ROOT / "tests" / "data" / "paced-think-time.yaml").model_dump(
        mode="json", exclude_none=True)
    capped["name"] = "paced-think-time-concurrency"
    capped["pacing"] = {"concurrency": 5}
    return {"mix": load_profile([ROOT / "profiles" / "ptu-spillover.yaml",
                                 ROOT / "examples" / "chat-and-batch.yaml"]),
            "cap5": profile_from_dict(capped),
            "chat-assistant": load_profile(ROOT / "profiles" / "chat-assistant.yaml"),
            "web-research": load_profile(ROOT / "profiles" / "web-research.yaml")}


def _mix_looks(prof: Any) -> tuple[int, list[tuple[int, int, list[int]]]]:
    """(N*, each look of the population fleet: its N, the mix's ceiling less the held
    sessions, the M pay-as-you-go's search asked for the ceiling — not the result's)."""
    from capacity.analytic import fleet, populations
    from capacity.analytic.model import analyze

    held = prof.held_sessions
    visits: list[list[Any]] = []           # [N, the look, the M its binding slot asked]
    real_mixed, real_init = populations.mixed_profile, fleet.FleetAnalysis.__init__
    real_stats, real_complete = fleet.FeedModel.stats, fleet.FleetAnalysis._complete
    completing = False

    def complete(self: Any) -> Any:
        nonlocal completing
        completing = True
        return real_complete(self)

    def mixed(pv: Any, counts: dict[str, int]) -> Any:
        visits.append([sum(counts.values()) - held, None, []])
        return real_mixed(pv, counts)

    def init(self: Any, *a: Any, **k: Any) -> None:
        real_init(self, *a, **k)
        visits[-1][1] = self

    def stats(self: Any, n: int) -> Any:
        if n not in self._stats and not completing and any(
                e.c.name == "paygo.rpm" and e.model is self
                for e in visits[-1][1].fm.entries):
            visits[-1][2].append(n)
        return real_stats(self, n)

    populations.mixed_profile = mixed
    fleet.FleetAnalysis.__init__ = init  # type: ignore[method-assign]
    fleet.FeedModel.stats = stats  # type: ignore[method-assign]
    fleet.FleetAnalysis._complete = complete  # type: ignore[method-assign]
    try:
        res = analyze(prof)
    finally:
        fleet.FleetAnalysis._complete = real_complete  # type: ignore[method-assign]
        populations.mixed_profile = real_mixed
        fleet.FleetAnalysis.__init__ = real_init  # type: ignore[method-assign]
        fleet.FeedModel.stats = real_stats  # type: ignore[method-assign]
    return res.burst_ceiling, [(n, fa.burst_ceiling - held, asked) for n, fa, asked in visits]


def _walks(prof: Any) -> tuple[int, list[int]]:
    """(N*, each N whose p95 turn latency the pacer's search walked)."""
    from capacity.analytic import pacing
    from capacity.analytic.model import analyze

    walked: list[int] = []
    real_p95 = pacing.PacedQueue.p95

    def p95(self: Any, n: int) -> float:
        if n not in self._walked:
            walked.append(n)
        return real_p95(self, n)

    pacing.PacedQueue.p95 = p95  # type: ignore[method-assign]
    try:
        res = analyze(prof)
    finally:
        pacing.PacedQueue.p95 = real_p95  # type: ignore[method-assign]
    return res.burst_ceiling, walked


def _searches(prof: Any) -> tuple[int, list[list[tuple[int, float]]]]:
    """(N*, each search from a guess: the N it asked and the share there)."""
    from capacity.analytic import clumped
    from capacity.analytic import model as amodel

    searches: list[list[tuple[int, float]]] = []
    real_near = amodel.boundary_near

    def near(share: Any, *a: Any, **k: Any) -> int:
        mine: list[tuple[int, float]] = []
        searches.append(mine)

        def seen(n: int) -> float:
            got: float = share(n)
            mine.append((n, got))
            return got
        return real_near(seen, *a, **k)

    amodel.boundary_near = near  # type: ignore[assignment]
    clumped.boundary_near = near  # type: ignore[assignment]
    try:
        res = amodel.analyze(prof)
    finally:
        amodel.boundary_near = clumped.boundary_near = real_near
    return res.burst_ceiling, searches


def looks() -> None:
    profs = _profiles()
    best, visits = _mix_looks(profs["mix"])
    print(f"ptu-spillover beside chat and batch populations "
          f"({profs['mix'].held_sessions} held sessions): N* {best}, {len(visits)} looks")
    for n, carries, asked in visits:
        print(f"  N = {n}: the mix carries {carries}; pay-as-you-go's search asked "
              f"M = {', '.join(map(str, asked))}")
    best, walked = _walks(profs["cap5"])
    print(f"tool-agent behind a cap of 5 calls in flight: N* {best}; the p95 walked at "
          f"N = {walked} ({len(walked)} walks)")
    best, searches = _searches(profs["chat-assistant"])
    print(f"chat-assistant: N* {best}; its searches from a guess asked (N: share of "
          "attempts refused):")
    for one in searches:
        print("  " + ", ".join(f"{n}: {v:.1e}" for n, v in one))


def _time_here(tree: Path) -> None:
    """One line: each row's N* and best-of-5 CPU ms, with ``tree``'s code; then what the
    three rows' searches ask there (counts, from one more answer each)."""
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    import analytic_accuracy

    profs = _profiles()
    out = []
    for name, prof in profs.items():
        res, cpu = analytic_accuracy.analytic(prof, repeat=5)
        out.append(f"{name} {res.burst_ceiling} {1000 * cpu:.0f} ms")
    analytic_accuracy.empty_stores()
    mix = [len(asked) for _, _, asked in _mix_looks(profs["mix"])[1]]
    analytic_accuracy.empty_stores()
    walks = len(_walks(profs["cap5"])[1])
    analytic_accuracy.empty_stores()
    chat = [len(one) for one in _searches(profs["chat-assistant"])[1]]
    print("; ".join(out) + f"; asked: the mix's looks {mix} M, the cap of 5 {walks} walks, "
          f"chat-assistant's searches {chat} N", flush=True)


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A checkout of ``rev`` (a git worktree, its kernels built in place), removed after."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f",
                        str(tree), rev], check=True, capture_output=True)
        try:
            subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree,
                           check=True, capture_output=True)
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(tree)], check=False, capture_output=True)


def cost(rev: str, rounds: int = 5, script: str = __file__) -> None:
    """Each row's CPU time in ``REV``'s tree and this one, alternated ``rounds`` times,
    and the medians; ``script``'s ``_time TREE`` prints a line of ``name N* ms`` parts
    (and a last part the medians skip)."""
    import statistics

    got: dict[str, dict[str, list[float]]] = {}
    with checkout(rev) as tree:
        for _ in range(rounds):
            for label, where in ((rev, tree), ("this tree", ROOT)):
                line = subprocess.run([sys.executable, script, "_time", str(where)],
                                      check=True, capture_output=True, text=True
                                      ).stdout.strip()
                print(f"{label:>9}: {line}", flush=True)
                for part in line.split("; ")[:-1]:
                    name, _, ms, _ = part.split()
                    got.setdefault(label, {}).setdefault(name, []).append(float(ms))
    print(f"medians of {rounds} rounds:")
    for label, rows in got.items():
        print(f"{label:>9}: " + "; ".join(f"{name} {statistics.median(v):.0f} ms"
                                          for name, v in rows.items()))


def cadence() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import profile_variants

    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload
    from capacity.profile.loader import load_profile, profile_from_dict
    from capacity.sim.engine import simulate

    base = load_profile(ROOT / "profiles" / "web-research.yaml").model_dump(
        mode="json", exclude_none=True)
    n = 64
    print(f"web-research, 10 s token bucket (25 requests), no retries, {n} sessions:")
    for label, cad in (("U(2 min, 3 min), as shipped", {"uniform": ["2m", "3m"]}),
                       ("fixed 150 s", {"fixed": "150s"}),
                       ("U(1 min, 4 min)", {"uniform": ["1m", "4m"]}),
                       ("Exp(150 s)", {"exponential": "150s"})):
        data = profile_variants.variant(base, "bucket10", False)
        data["session"]["cadence"] = cad
        prof = profile_from_dict(data)
        wl = Workload.from_profile(prof)
        cyc = cycle_time(wl)
        model = constraint_model(wl, wl.constraints[0], cyc.cycle_s, cyc.min_cycle_s)
        est = simulate(prof, n, replications=20, seed=7,
                       horizon_s=3600.0).metrics["attempt_429_fraction"]
        print(f"  cadence {label}: cycle {cyc.cycle_s:.1f} s; model "
              f"{model.stats(n).loss_fraction:.3%}, engine {est.mean:.3%} "
              f"[{est.lo:.3%}–{est.hi:.3%}]", flush=True)


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "looks"
    if what == "looks":
        looks()
    elif what == "cost":
        cost(argv[1] if len(argv) > 1 else "eca1bb3")
    elif what == "cadence":
        cadence()
    elif what == "_time":
        _time_here(Path(argv[1]))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
