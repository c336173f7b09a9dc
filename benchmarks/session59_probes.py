"""Session 59's probes (issue 13): the population fleet's iteration over mixes — the one
row of the accuracy table over 0.2 s of compute — with and without the held-share fit.

Run from the repository root::

    python benchmarks/session59_probes.py looks          # each mix looked at, N*
    python benchmarks/session59_probes.py cost [REV]     # this tree against REV's

``looks``: ptu-spillover beside chat and batch populations and ten neighbours (held
batch sessions 1 to 40, the first call larger than the PTU's bucket, pay-as-you-go
first, chat a 60 % share, batch workers thinking 60 s): the analytic N* and each N the
iteration looks at (a fleet model of the mix at N and its ceiling), with the held-share
fit (``populations._held_share_fit``) and without it (the plain step, N = M* − held).
Deterministic: no timing.

``cost``: the populations row's analytic CPU time (best of 5, every store emptied, as
``analytic_accuracy.py`` times it) and its looks, in this tree and in a checkout of
``REV`` (default eb1384e, session 58's last commit; its kernels built in place),
alternated five times in one sitting, and the medians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

NEIGHBOURS: list[tuple[str, list[str], list[str]]] = [
    ("ptu-spillover beside chat and batch populations", [], []),
    *((f"batch held at {h}", [], [f"populations.batch.sessions={h}"])
      for h in (1, 3, 5, 20, 40)),
    ("first call larger than the PTU bucket", ["ptu-oversized-first-call.yaml"], []),
    ("pay-as-you-go first", ["ptu-paygo-first.yaml"], []),
    ("chat a 60 % share", [], ["populations.chat.share=0.6"]),
    ("batch workers think 60 s", [], ["populations.batch.think_time=60s"]),
]


def _profile(extra: list[str], sets: list[str]) -> Any:
    from capacity.profile.loader import load_profile

    data = ROOT / "tests" / "data"
    return load_profile([ROOT / "profiles" / "ptu-spillover.yaml",
                         *(data / e for e in extra),
                         ROOT / "examples" / "chat-and-batch.yaml"], sets)


def _looked(prof: Any) -> tuple[int, list[int]]:
    """(analytic N*, each N the population fleet looked at), every store emptied."""
    import analytic_accuracy

    from capacity.analytic import populations
    from capacity.analytic.model import analyze

    looked: list[int] = []
    real = populations.mixed_profile

    def mix(pv: Any, counts: dict[str, int]) -> Any:
        looked.append(sum(counts.values()) - prof.held_sessions)
        return real(pv, counts)

    analytic_accuracy.empty_stores()
    populations.mixed_profile = mix  # type: ignore[assignment]
    try:
        n_star = analyze(prof.model_copy(deep=True)).burst_ceiling
    finally:
        populations.mixed_profile = real  # type: ignore[assignment]
    return n_star, looked


def looks() -> None:
    from capacity.analytic import populations

    print("| profile | N* with the fit | looks | N* without | looks |")
    print("|---|---|---|---|---|")
    fit = populations._held_share_fit
    total = [0, 0]
    for name, extra, sets in NEIGHBOURS:
        prof = _profile(extra, sets)
        with_fit = _looked(prof)
        populations._held_share_fit = lambda *a: 0  # type: ignore[assignment]
        try:
            plain = _looked(prof)
        finally:
            populations._held_share_fit = fit  # type: ignore[assignment]
        total[0] += len(with_fit[1])
        total[1] += len(plain[1])
        print(f"| {name} | {with_fit[0]} | {', '.join(map(str, with_fit[1]))} "
              f"| {plain[0]} | {', '.join(map(str, plain[1]))} |", flush=True)
    print(f"mixes looked at: {total[0]} with the fit, {total[1]} without")


def _time_here(tree: Path) -> None:
    """One line: the row's N* and best-of-5 CPU ms with ``tree``'s code; then its looks."""
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    import analytic_accuracy

    prof = _profile([], [])
    res, cpu = analytic_accuracy.analytic(prof, repeat=5)
    print(f"mix {res.burst_ceiling} {1000 * cpu:.0f} ms; looks {_looked(prof)[1]}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("probe", choices=["looks", "cost", "_time"])
    ap.add_argument("arg", nargs="?", help="cost: the revision (default eb1384e); "
                    "_time: the tree")
    args = ap.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    if args.probe == "cost":
        import session57_probes

        session57_probes.cost(args.arg or "eb1384e", script=__file__)
    elif args.probe == "_time":
        _time_here(Path(args.arg))
    else:
        looks()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
