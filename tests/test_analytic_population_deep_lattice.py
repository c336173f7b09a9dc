"""Populations at a token bucket too deep for the level chain: each population's level
law is on its own lattice (a 64th of its mean call at least), and the blend
(:func:`capacity.analytic.populations.blend_deep`) puts them on one — the finest — before
mixing them (tests/data/deep-bucket-populations-lattices.yaml: 16-token and 188-token
steps; read on the first, the large calls were charged 1/12 of their tokens)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capacity.profile.loader import load_profile

PROFILE = Path(__file__).resolve().parent / "data" / "deep-bucket-populations-lattices.yaml"


def test_the_blend_carries_every_population_s_tokens() -> None:
    """At N = 40 the blended level law launches the populations' tokens a second: the
    kinds' calls per launch times one call's mean charge, at the blend's launch rate."""
    from capacity.analytic.bucket import DeepBucket
    from capacity.analytic.populations import view

    p = load_profile(PROFILE)
    pv = view(p)
    c = pv.constraints()[0]
    model = pv.model(c)
    steps = {name: part.chain.h for name, part in model._parts}
    assert all(isinstance(part.chain, DeepBucket) for _, part in model._parts)
    assert steps["large"] > 10 * steps["session"]          # two lattices
    blended = model.blended(40)
    deep = blended.chain
    assert isinstance(deep, DeepBucket)
    per_launch = sum(w * float(np.dot(np.arange(k.size), k))
                     * float(np.dot(np.arange(ch.size), ch)) * deep.h
                     for w, k, ch in deep.kinds)
    counts = p.split(40)
    load = sum(counts[part.name] * part.wl.units_per_turn(c) / part.cycle.cycle_s
               for part in pv.parts)                     # input tokens a second
    assert 40 * blended.rate_per_session * deep.scale * per_launch == pytest.approx(
        load, rel=0.01)


def test_the_blend_refuses_near_the_refill() -> None:
    """At 43 sessions (98 % of the refill is ~42.8) the engine refuses about 4e-4 of
    calls (10 × 1 h, seed 1: 4.0e-4 [0.3e-4–7.7e-4]); the level law of the populations'
    tokens says 3.0e-4, where the large calls read on the small ones' lattice made a
    bucket that never empties (2e-16)."""
    from capacity.analytic.model import analyze

    p = load_profile(PROFILE)
    share = analyze(p, sessions=43).constraints[0].at_sessions
    assert share is not None
    assert 1e-4 < share.loss_fraction < 1e-3
