"""The accuracy table's rule, asserted in one place: the rule itself is
benchmarks/analytic_accuracy.py's ``meets_target`` (the table prints it for every row).

An analytic N* passes against the simulated N* when it is within 3 % of it or inside its
95 % CI, and it is never more than 5 % above it (an optimistic answer overloads the quota;
a conservative one only leaves sessions unused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from benchmarks.analytic_accuracy import OPTIMISTIC, WITHIN, error, meets_target

if TYPE_CHECKING:
    from capacity.profile.schema import Profile


class Simulated(Protocol):
    """A simulated N* with its CI (``find_saturation``'s result, ``CeilingResult.simulated``)."""

    @property
    def n_star(self) -> int: ...

    @property
    def n_lo(self) -> int: ...

    @property
    def n_hi(self) -> int: ...


@dataclass(frozen=True)
class Recorded:
    """A simulated N* recorded with ``capacity ceiling FILE --seed 1 --format json`` (20
    replications × 1 h), the CI its search brackets."""

    n_star: int
    n_lo: int
    n_hi: int


def assert_accurate(analytic: int, sim: Simulated, what: object = "") -> None:
    """Assert the accuracy table's rule for ``analytic`` against ``sim``; a failure names
    both figures, the CI and the error (``what``: the workload, for parametrised tests)."""
    n_s, lo, hi = sim.n_star, sim.n_lo, sim.n_hi
    if meets_target(analytic, n_s, lo, hi):
        return
    err = error(analytic, n_s)
    close = abs(err) <= WITHIN or lo <= analytic <= hi
    why = (f"more than {OPTIMISTIC:.0%} above the simulated N* (optimistic)" if close
           else f"neither within {WITHIN:.0%} of the simulated N* nor inside its CI")
    label = f"{what}: " if what else ""
    raise AssertionError(f"{label}analytic N* {analytic} vs simulated {n_s} [{lo}–{hi}], "
                         f"error {err:+.1%}: {why}")


def assert_profile_accurate(profile: Profile, span: int = 6, max_sessions: int = 100) -> None:
    """The rule for ``profile``'s analytic N* against its simulated N* (the saturation
    search seed 1, 20 replications × 1 h, over the analytic answer ± ``span`` sessions)."""
    from capacity.analytic.model import analyze
    from capacity.search import find_saturation

    n_a = analyze(profile).burst_ceiling
    sat = find_saturation(profile, max(1, n_a - span), n_a + span, seed=1, replications=20,
                          max_sessions=max_sessions)
    assert_accurate(n_a, sat, profile.name)


def searched(profile: Profile) -> tuple[int, Any]:
    """(analytic N*, the simulated search) as benchmarks/profile_variants.py runs it: seed
    1, 20 replications × 1 h, one thread, bracketed from 80 % of the analytic answer to the
    mean ceiling."""
    from capacity.analytic.model import analyze
    from capacity.search import find_saturation

    res = analyze(profile)
    n_a = res.burst_ceiling
    lo, hi = max(1, int(n_a * 0.8)), int(res.mean_ceiling + 1e-9) + 1
    cap = max(hi, int(res.mean_ceiling / (1.0 - profile.targets.max_429_fraction)) + 1)
    sim = find_saturation(profile, lo, max(lo + 1, hi), seed=1, replications=20,
                          horizon_s=3600.0, max_sessions=cap, workers=1)
    return n_a, sim
