"""A token window's turns refused after it fills make no more calls there (issue 13).

Fixed windows turn away every call that no longer fits once they fill, and the model
counts them from the stop-loss of the window's offered units, ``E[(S − q)⁺]``. But a
refused call ends its turn (``abort_turn``) or, its retry-after honoured, holds it to the
window's end, so the turn makes none of its later calls in that window. tool-agent with
every limit over fixed 60 s windows (``tests/data/token-window-abort.yaml``) refuses
1.30 % of calls at 36 sessions without retries where the engine refuses 0.82 %, and with
its retries answers 34 sessions against a simulated 36 [35–36] (``python
benchmarks/session50_probes.py tokens``): strict xfails below.

Session 50 built the thinning (``ClumpWindowModel.offered_after``: of the units offered
over the window's last ℓ seconds only each turn's first instant there is made), which
puts both right, but left it off (``window._ABORT_TOKENS``): a review found it also
thins the later calls of turns whose earlier call still fit the room the full window
left (first-fit admits small calls), optimistic where charges are mixed. Its law and
its blend over populations are tested here with it on."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from capacity.analytic import window
from capacity.analytic.clumped import clumped_window_model
from capacity.analytic.model import analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile, profile_from_dict
from capacity.profile.schema import Profile
from capacity.sim.engine import simulate

from ._accuracy import assert_profile_accurate

PROFILE = Path(__file__).parent / "data" / "token-window-abort.yaml"


def _without_retries() -> Profile:
    data = yaml.safe_load(PROFILE.read_text())
    data["retry"] = {**data.get("retry", {}), "max_retries": 0}
    return profile_from_dict(data)


@pytest.mark.xfail(strict=True, reason="a token window's refused turns' later calls are "
                   "counted as offered (the thinning is off, issue 13)")
def test_refused_share_without_retries_is_the_engines() -> None:
    prof = _without_retries()
    model = sum(float(c.at_sessions.loss_fraction)
                for c in analyze(prof, sessions=36).constraints if c.at_sessions is not None)
    engine = simulate(prof, 36, replications=20, seed=1, workers=1).metrics[
        "attempt_429_fraction"]
    # 1.30 % against 0.82 % [0.67–0.98] (with the thinning on, 0.89 %).
    assert abs(model - engine.mean) < 0.15 * engine.mean, (model, engine)


@pytest.mark.xfail(strict=True, reason="34 against 36 [35-36]: the refused turns' later "
                   "calls are counted (the thinning is off, issue 13)")
def test_with_retries_meets_the_simulated_ceiling() -> None:
    assert_profile_accurate(load_profile(PROFILE))


@pytest.fixture
def thinning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(window, "_ABORT_TOKENS", True)


@pytest.mark.usefixtures("thinning")
def test_offered_after_runs_from_all_to_the_first_instants() -> None:
    prof = _without_retries()
    wl = Workload.from_profile(prof)
    tpm = next(c for c in wl.constraints if c.name == "project.tpm")
    inner = clumped_window_model(wl, tpm, cycle_time(wl).cycle_s).inner
    spans = np.array([1e-6, 1.0, 5.0, 20.0, 60.0, 1e9])
    kept = np.array([inner.offered_after(float(s)) for s in spans])
    assert abs(kept[0] - 1.0) < 1e-6
    assert np.all(np.diff(kept) <= 1e-12)
    # Over a span longer than any turn only the turns' first charged instants are made:
    # the plan call, 3,250 + 1,024 tokens, against the tool steps' 1.2 × (6,500 + 1,024)
    # and the answer's 8,000 + 4,096 (prompt + max_tokens).
    first = 4274.0 / (4274.0 + 1.2 * 7524.0 + 12096.0)
    assert abs(kept[-1] - first) < 0.02 * first, (kept[-1], first)


@pytest.mark.usefixtures("thinning")
def test_populations_alike_answer_as_one() -> None:
    # A second population just like the session, half the sessions: the blend thins its
    # turns' later calls as each population does (0.8953 % against 0.8948 % at 36
    # sessions; unthinned, as before the blend had the rule, 1.30 %).
    data = yaml.safe_load(PROFILE.read_text())
    data["retry"] = {**data.get("retry", {}), "max_retries": 0}
    two = copy.deepcopy(data)
    two["populations"] = {"other": {**copy.deepcopy(data["session"]), "share": 0.5}}
    one_at, two_at = (analyze(profile_from_dict(d), sessions=36) for d in (data, two))
    assert one_at.burst_ceiling == two_at.burst_ceiling
    a, b = (sum(float(c.at_sessions.loss_fraction) for c in r.constraints
                if c.at_sessions is not None) for r in (one_at, two_at))
    assert abs(a - b) < 2e-3 * a, (a, b)
