"""The accuracy table's rule as the tests assert it (tests/_accuracy.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ._accuracy import assert_accurate


@dataclass(frozen=True)
class Sim:
    n_star: int
    n_lo: int
    n_hi: int


@pytest.mark.parametrize(("analytic", "sim"), [
    (103, Sim(100, 99, 101)),   # +3.0 %: within 3 %, outside the CI
    (97, Sim(100, 99, 101)),    # −3.0 %
    (90, Sim(100, 85, 104)),    # −10 %, inside a wide CI
    (105, Sim(100, 95, 106)),   # +5.0 % inside the CI: at the optimism cap
    (0, Sim(0, 0, 1)),
])
def test_passing_answers(analytic: int, sim: Sim) -> None:
    assert_accurate(analytic, sim)


@pytest.mark.parametrize(("analytic", "sim", "message"), [
    (96, Sim(100, 98, 102), "error -4.0%: neither within 3% of the simulated N* nor inside"),
    (104, Sim(100, 98, 102), "error +4.0%: neither within 3%"),
    (106, Sim(100, 90, 110), "error +6.0%: more than 5% above the simulated N* (optimistic)"),
    (1, Sim(0, 0, 0), "error +inf%"),
])
def test_failing_answers_say_why(analytic: int, sim: Sim, message: str) -> None:
    with pytest.raises(AssertionError) as e:
        assert_accurate(analytic, sim, "the row")
    text = str(e.value)
    assert text.startswith(f"the row: analytic N* {analytic} vs simulated {sim.n_star} "
                           f"[{sim.n_lo}–{sim.n_hi}], ")
    assert message in text
