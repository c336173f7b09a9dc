"""A refused stage's cascade in a fixed token window (``on_exhausted: continue``, no
retries): a stage j on is refused with its turn's earlier ones only when the least of
their charges exceeds the room (tests/data/continue-token-cascade.yaml): the analytic
N* against the simulator's recorded in the profile's header (seed 1, 20 x 1 h)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

PROFILE = Path(__file__).resolve().parent / "data" / "continue-token-cascade.yaml"


def test_least_charges_fall_with_the_stages() -> None:
    """The least of j + 1 charges is smaller the more stages: its law's mean falls with
    j, and the weights are the stages' shares of the cascaded calls."""
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload

    wl = Workload.from_profile(load_profile(PROFILE))
    m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    step, q, L, r = m._cascade_lattice()
    least = m._least_charges(L, step, r)
    assert least.weights.size >= 2 and abs(float(least.weights.sum()) - 1.0) < 1e-9
    laws = np.fft.irfft(least.fts[:, 0, :], L)[:, : q + 1] / r ** np.arange(q + 1)
    means = (laws * np.arange(q + 1)).sum(axis=1) / laws.sum(axis=1)
    assert np.all(np.diff(means) < 0)


def test_continue_token_cascade_against_the_simulator() -> None:
    from capacity.analytic.model import analyze

    assert_accurate(analyze(load_profile(PROFILE)).burst_ceiling, Recorded(12, 12, 13),
                    "continue-token-cascade")


def test_a_window_of_requests_cascades_as_one_charge() -> None:
    """Every call charges one request, so the least of j + 1 charges is one: a single
    stage law. Asked of the call law before coarsening (600 requests a 60 s window is
    coarsened by 3, which splits the one charge between two lattice points and made the
    requests cascade as mixed sizes)."""
    from capacity.analytic.model import constraint_model, cycle_time
    from capacity.model.workload import Workload

    p = load_profile(PROFILE, overrides=[
        "quotas.q.itpm=null", "quotas.q.rpm=600", "quotas.q.enforcement.window=60s"])
    wl = Workload.from_profile(p)
    m = constraint_model(wl, wl.constraints[0], cycle_time(wl).cycle_s).inner
    step, _q, L, r = m._cascade_lattice()
    assert step > 1 and m.cascade is not None and np.count_nonzero(m.call_pmf) == 1
    assert m._least_charges(L, step, r).weights.size == 1
