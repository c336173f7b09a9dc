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


def test_the_blend_keeps_the_calls_that_never_fit() -> None:
    """Each population's chain holds its calls past the depth as charged 0 and their
    share apart (``never_fit``: their attempts are added by the retry rule); the blend
    keeps that share, by the calls (0 when it was left out: no attempt of theirs)."""
    import numpy as np

    from capacity.analytic.bucket import BucketChain
    from capacity.analytic.populations import blend_chain
    from capacity.analytic.window import RetryModel

    retry = RetryModel(3, False, backoff_s=(0.5, 1.5, 3.5))
    one = np.array([0.0, 1.0])
    law = np.zeros(31)
    law[10:31] = 1.0 / 21                                # 1,000-3,000 units, step 100
    a = BucketChain(one, law, 100.0, 2_000.0, 10_000.0, retry, never_fit=0.2)
    two = np.array([0.0, 0.0, 1.0])                      # two calls a launch
    b = BucketChain(two, law, 100.0, 2_000.0, 10_000.0, retry, never_fit=0.05)
    got = blend_chain([(1.0, a), (1.0, b)])
    assert got is not None
    # Half the launches each: a third of the calls are a's.
    assert abs(got.never_fit - (0.2 + 2 * 0.05) / 3) < 1e-3
