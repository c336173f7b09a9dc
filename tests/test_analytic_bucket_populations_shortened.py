"""A refused launch brings its session back sooner in a mix of populations too (issue 13,
session 41): the blend of the populations' level chains reads each population's turns
(``BucketChain.mix_walks``) and speeds each population's launches up by its own refusals.

tests/data/bucket-populations-continue.yaml (hunt seed 3): an ITPM bucket 1 s deep, two
populations, no retries, ``on_exhausted: continue``. The engine (20 × 1 h, seed 1) runs
2.8 / 4.3 / 7.0 % more calls a second than the unthrottled cycles give at 100 / 106 / 114
sessions; the blend had no factor and refused 1.54 / 2.08 / 2.94 % of attempts where the
engine refuses 1.98 / 2.90 / 4.54 %.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.analytic.bucket import BucketChain
from capacity.analytic.model import analyze
from capacity.analytic.populations import PopulationModel, view
from capacity.profile.loader import load_profile
from capacity.sim.engine import simulate

from ._accuracy import Recorded, assert_accurate

MIX = Path(__file__).parent / "data" / "bucket-populations-continue.yaml"


def _itpm() -> PopulationModel:
    pv = view(load_profile(MIX))
    (c,) = [c for c in pv.constraints() if c.dim == "itpm"]
    return PopulationModel(pv, c)


def _blend(pm: PopulationModel, n: int) -> tuple[BucketChain, float]:
    """The mix's chain at N = ``n`` and its launches a second there."""
    b = pm.blended(n)
    assert isinstance(b.chain, BucketChain)
    return b.chain, sum(pm.pv.profile.split(n).values()) * b.rate_per_session


@pytest.mark.parametrize(("n", "share", "engine"),
                         [(100, 0.0198, 1.0283), (106, 0.0290, 1.0433),
                          (114, 0.0454, 1.0702)])
def test_the_mix_speeds_up_as_the_engine_does(n: int, share: float, engine: float) -> None:
    # At the engine's own refused share, the mix's call-rate factor against the engine's
    # fresh calls a second over the unthrottled cycles' (20 x 1 h, seed 1): the model
    # 1.0271 / 1.0402 / 1.0639. Every pattern at one share said 1.013 / 1.019 / 1.029:
    # the refused calls are the large ones, and the 'other' population's are the largest.
    chain, lam = _blend(_itpm(), n)
    assert len(chain.mix_walks) == 2
    assert abs(chain._load_factor(share, lam) - engine) < 0.01
    assert chain._load_factor(share) < engine - 0.01
    assert chain._load_factor(0.0, lam) == 1.0


def test_the_factor_is_measured_now() -> None:
    # The engine, briefly (4 x 1 h, seed 2), at 114 sessions: its calls a second over the
    # populations' unthrottled ones, against the factor at its own share.
    pm = _itpm()
    prof = pm.pv.profile
    counts = prof.split(114)
    unthrottled = sum(counts[p.name] * p.wl.calls_per_turn() / p.cycle.cycle_s
                      for p in pm.pv.parts)
    res = simulate(prof, 114, replications=4, seed=2, workers=1)
    calls = (res.metrics["turn_throughput_per_s"].mean * res.metrics["calls_per_turn"].mean
             / unthrottled)
    chain, lam = _blend(pm, 114)
    assert calls > 1.04
    assert abs(chain._load_factor(res.metrics["attempt_429_fraction"].mean, lam)
               - calls) < 0.015


@pytest.mark.parametrize(("n", "engine"), [(100, 0.0198), (106, 0.0290), (114, 0.0454)])
def test_the_refusal_share_follows_the_engine(n: int, engine: float) -> None:
    # Now 1.74 / 2.45 / 3.66 %; without the factor 1.54 / 2.08 / 2.94 % (-22 / -28 / -35 %).
    # What is left low is the pair family's (RESULTS: calls closer than the refill time).
    got = analyze(load_profile(MIX), sessions=n).binding.at_sessions
    assert got is not None
    assert 0.8 * engine <= got.attempt_429_fraction <= 1.05 * engine


def test_a_population_of_another_pace_keeps_its_rate() -> None:
    # A population on a cadence keeps its clock: its part of the factor is 1.
    chain, lam = _blend(_itpm(), 106)
    a, walk, _ = chain.mix_walks[1]
    whole = chain._load_factor(0.03, lam)
    chain.mix_walks = (chain.mix_walks[0], (a, walk, 0.0))
    assert 1.0 < chain._load_factor(0.03, lam) < whole


def test_the_ceiling_against_the_simulated_one() -> None:
    # capacity ceiling FILE --seed 1: 106 [106-106]. The model said 114 (+7.5 %) before.
    assert_accurate(analyze(load_profile(MIX)).burst_ceiling, Recorded(106, 106, 106),
                    "populations, continue")
