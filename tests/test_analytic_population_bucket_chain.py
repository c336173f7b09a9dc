"""Share populations at a token bucket shallow enough for the level chain: the chain of
the populations' superposed launches, not the Lundberg bound
(tests/data/population-shallow-bucket.yaml): the analytic N* against the simulator's
recorded in the profile's header (seed 1, 20 x 1 h)."""

from __future__ import annotations

from pathlib import Path

from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

PROFILE = Path(__file__).resolve().parent / "data" / "population-shallow-bucket.yaml"


def test_the_blend_is_the_chain_of_the_superposed_launches() -> None:
    """At N = 50 the blended chain launches at the populations' summed rates, its calls
    per launch mixed by their launches (``session``'s one call a launch, as
    ``lookup``'s) and one call's mean charge by their calls."""
    from capacity.analytic.bucket import BucketChain
    from capacity.analytic.populations import view

    p = load_profile(PROFILE)
    pv = view(p)
    c = pv.constraints()[0]
    model = pv.model(c)
    blended = model.blended(50)
    assert isinstance(blended.chain, BucketChain)
    assert abs(blended.chain.mean_calls - 1.0) < 1e-9
    counts = p.split(50)
    charged = {part.name: counts[part.name] * part.wl.calls_per_turn() / part.cycle.cycle_s
               for part in pv.parts}
    mean = (charged["session"] * 3000.0 + charged["lookup"] * 4000.0) / sum(charged.values())
    assert abs(blended.chain.mean_charge - mean) < 0.01 * mean
    assert model.stats(50).method.startswith("token bucket, exact level chain")


def test_population_shallow_bucket_against_the_simulator() -> None:
    from capacity.analytic.model import analyze

    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling, Recorded(101, 100, 101),
                    "population-shallow-bucket")
