"""Spills from sliding logs that hold only what they admitted (rejections not counted):
a loss system, whose admitted units are the offered law truncated at the allowance
(Erlang's multi-rate loss formula), so a call of charge ``b`` is refused with chance
``P(S > q − b | S ≤ q)`` (capacity/analytic/fleet.py::room_refused): the large calls of a
mix are refused, the small slip in, call by call."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from capacity.analytic.fleet import room_refused
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).resolve().parent / "data"


def _compound_poisson(rates: dict[int, float], size: int) -> np.ndarray:
    """The law of Σ b·N_b, N_b ~ Poisson(rates[b]) independent, on 0..size-1."""
    out = np.zeros(size)
    out[0] = 1.0
    for b, a in rates.items():
        pois = np.array([math.exp(-a) * a**k / math.factorial(k) for k in range(size // b + 1)])
        part = np.zeros(size)
        part[:: b][: pois.size] = pois[: part[:: b].size]
        out = np.convolve(out, part)[:size]
    return out


def test_one_size_is_erlangs_loss_formula() -> None:
    """Calls of one unit, 5 servers, 3.0 Erlang offered: refused with Erlang B(5, 3)."""
    a, c = 3.0, 5
    g = _compound_poisson({1: a}, 60)
    refused = room_refused(np.array([0.0, 1.0]), g, float(c), 1.0, weights=True)
    erlang_b = (a**c / math.factorial(c)) / sum(a**k / math.factorial(k) for k in range(c + 1))
    assert abs(float(refused[1]) - erlang_b) < 1e-12


def test_two_sizes_are_kaufman_roberts() -> None:
    """Calls of 1 and 6 units (2.0 and 0.5 Erlang) in 12 units: each size refused as the
    Kaufman–Roberts recursion's occupancy says, the large ones far more often."""
    rates, q = {1: 2.0, 6: 0.5}, 12
    occ = np.zeros(q + 1)
    occ[0] = 1.0
    for j in range(1, q + 1):
        occ[j] = sum(a * b * occ[j - b] for b, a in rates.items() if j >= b) / j
    occ /= occ.sum()
    charge = np.zeros(7)
    charge[1], charge[6] = 0.8, 0.2
    refused = room_refused(charge, _compound_poisson(rates, 80), float(q), 1.0, weights=True)
    for b in (1, 6):
        assert abs(float(refused[b]) - float(occ[q - b + 1:].sum())) < 1e-12
    assert refused[6] > 5 * refused[1]


def test_loss_logs_spilling_large_calls_against_the_simulator() -> None:
    """tests/data/sliding-loss-spill-chain.yaml: a → b → c, each a loss log; the analytic
    N* against the simulated 19 [18–19] (it said 30)."""
    from capacity.analytic.model import analyze

    assert_accurate(analyze(load_profile(DATA / "sliding-loss-spill-chain.yaml")).burst_ceiling,
                    Recorded(19, 18, 19), "sliding-loss-spill-chain")
