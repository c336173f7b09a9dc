"""Issue 15's acceptance round trip, on every shipped profile:

profile -> request log of an unthrottled agent (capacity.fit.synth, seeded) -> capacity fit
(with --quota-from the original) -> ceiling: the mean-value ceiling within 3% of the
original's and the simulated N* within 5%.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capacity import load_profile
from capacity.fit.fitter import fit_read
from capacity.fit.jsonl import RequestLogWriter
from capacity.fit.readers import read_traces
from capacity.fit.synth import synth_log
from capacity.fit.writer import write_profile
from capacity.whatif.ceiling import SimSettings, ceiling

from .conftest import PROFILES, ROOT

# Enough turns that sampling error in the fitted means (≈0.5% of the cycle) is far inside
# the 3% tolerance: 150 sessions x 80 turns.
SESSIONS, TURNS = 150, 80


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_round_trip_keeps_the_ceilings(path: Path, tmp_path: Path) -> None:
    original = load_profile(path)
    log = tmp_path / "calls.jsonl"
    with RequestLogWriter(log) as w:
        for rec in synth_log(original, SESSIONS, TURNS, np.random.default_rng(2026)):
            w.write(rec)
    res = fit_read(read_traces([log]))
    assert res.turns == SESSIONS * TURNS
    assert res.pacing.mode == original.session.mode
    assert len(res.types) == len(original.session.turns)
    out = tmp_path / "fitted.yaml"
    write_profile(res, out, quota_from=path)
    fitted = load_profile(out)
    sim = SimSettings(seed=1)
    a, b = ceiling(original, "both", sim=sim), ceiling(fitted, "both", sim=sim)
    assert b.mean_ceiling == pytest.approx(a.mean_ceiling, rel=0.03)
    assert a.simulated is not None and b.simulated is not None
    assert b.simulated.n_star == pytest.approx(a.simulated.n_star, rel=0.05)


def test_quota_from_a_fleet_keeps_its_routes(tmp_path: Path) -> None:
    """--quota-from a fleet profile copies the deployments, routes (fallbacks included)
    and the untraced models they run: the fitted calls still spill and fall back."""
    fleet = ROOT / "profiles" / "ptu-spillover.yaml"
    original = load_profile(fleet)
    log = tmp_path / "calls.jsonl"
    with RequestLogWriter(log) as w:
        for rec in synth_log(original, 10, 5, np.random.default_rng(7)):
            w.write(rec)
    out = tmp_path / "fitted.yaml"
    write_profile(fit_read(read_traces([log])), out, quota_from=fleet)
    fitted = load_profile(out)
    assert fitted.routes == original.routes
    assert fitted.deployments == original.deployments
    assert fitted.models["gpt-4o-mini"] == original.models["gpt-4o-mini"]  # never traced
    assert set(fitted.quotas) == {"ptu", "paygo", "mini"}
