"""The accuracy table's rule, asserted in one place (benchmarks/analytic_accuracy.py prints
the same rule for every row of the table).

An analytic N* passes against the simulated N* when it is within 3 % of it or inside its
95 % CI, and it is never more than 5 % above it (an optimistic answer overloads the quota;
a conservative one only leaves sessions unused).
"""

from __future__ import annotations

import math
from typing import Protocol

WITHIN = 0.03      # |analytic − simulated| / simulated, or else inside the CI ...
OPTIMISTIC = 0.05  # ... and never more than this above the simulated N*


class Simulated(Protocol):
    """A simulated N* with its CI (``find_saturation``'s result, ``CeilingResult.simulated``)."""

    @property
    def n_star(self) -> int: ...

    @property
    def n_lo(self) -> int: ...

    @property
    def n_hi(self) -> int: ...


def accuracy_error(analytic: int, simulated: int) -> float:
    """(analytic − simulated) / simulated: positive when the analytic answer is optimistic."""
    if simulated == 0:
        return 0.0 if analytic == 0 else math.inf
    return (analytic - simulated) / simulated


def assert_accurate(analytic: int, sim: Simulated, what: object = "") -> None:
    """Assert the accuracy table's rule for ``analytic`` against ``sim``; a failure names
    both figures, the CI and the error (``what``: the workload, for parametrised tests)."""
    n_s, lo, hi = sim.n_star, sim.n_lo, sim.n_hi
    err = accuracy_error(analytic, n_s)
    inside = lo <= analytic <= hi
    close = abs(err) <= WITHIN or inside
    if close and err <= OPTIMISTIC:
        return
    why = (f"more than {OPTIMISTIC:.0%} above the simulated N* (optimistic)" if close
           else f"neither within {WITHIN:.0%} of the simulated N* nor inside its CI")
    label = f"{what}: " if what else ""
    raise AssertionError(f"{label}analytic N* {analytic} vs simulated {n_s} [{lo}–{hi}], "
                         f"error {err:+.1%}: {why}")
