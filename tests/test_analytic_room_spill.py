"""Spills from sliding logs that hold only what they admitted (rejections not counted):
a loss system, whose admitted units are the offered law truncated at the allowance
(Erlang's multi-rate loss formula), so a call of charge ``b`` is refused with chance
``P(S > q − b | S ≤ q)`` (capacity/analytic/fleet.py::room_refused): the large calls of a
mix are refused, the small slip in, call by call."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from capacity.analytic import fleet
from capacity.analytic.fleet import RoomGate, refused_share, room_refused, room_share
from capacity.analytic.model import analyze, cycle_time
from capacity.model.workload import Workload
from capacity.profile.loader import load_profile

from ._accuracy import Recorded, assert_accurate

DATA = Path(__file__).resolve().parent / "data"
CHAIN = DATA / "sliding-loss-spill-chain.yaml"
SHORT_A = DATA / "loss-chain-short-a.yaml"


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
    assert_accurate(analyze(load_profile(CHAIN)).burst_ceiling, Recorded(19, 18, 19),
                    "sliding-loss-spill-chain")


def test_a_window_law_shorter_than_the_allowance() -> None:
    """A log that gets little (its law ends below the allowance): a call refused only when
    the room is short of it, ``P(S > q − b)``; past the law's end never (it raised an
    IndexError when the law was shorter than the allowance)."""
    g, q = np.array([0.5, 0.3, 0.2]), 10.0
    charge = np.full(14, 1.0 / 14)
    refused = room_refused(charge, g, q, 1.0, weights=True)
    want = [float(g[int(q - b) + 1:].sum()) if b <= q else 1.0 for b in range(14)]
    assert np.allclose(refused, want, atol=1e-12)
    assert refused[:9].max() == 0.0 and abs(refused[9] - 0.2) < 1e-12 and refused[10] == 0.5
    law = room_refused(np.full(24, 1.0 / 24), g, q, 2.0)  # twice as fine: index 17 is b = 8.5
    assert law[:17].sum() == 0.0 and law[17] > 0.0 and abs(float(law.sum()) - 1.0) < 1e-12


def test_a_log_never_with_room_refuses_every_call() -> None:
    """All of the offered law past the allowance: every call refused (it read 0.5 as the
    charge law's Σp²)."""
    refused = room_refused(np.array([0.0, 0.5, 0.5]), np.array([0.0, 0.0, 0.0, 1.0]), 1.0, 1.0,
                           weights=True)
    assert np.array_equal(refused, np.ones(3))
    assert refused_share(np.array([0.0, 0.5, 0.5]), np.array([0.0, 0.0, 0.0, 1.0]), 1.0) == 1.0


def test_a_short_first_window_answers() -> None:
    """q0's window 10 s (tests/data/loss-chain-short-a.yaml): a's law at some loads ends
    below b's allowance (it crashed, IndexError in room_refused, under --method analytic
    and simulate). It answers 5, below the simulated 6 [6–7] (seed 1, 20 × 1 h; it said
    17 while the large calls a can never admit were not spilled, see
    test_calls_past_the_allowance_spill)."""
    out = subprocess.run([sys.executable, "-m", "capacity", "ceiling", str(CHAIN),
                          str(SHORT_A), "--method", "analytic", "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert json.loads(out.stdout)["burst_ceiling"] == 5


def test_calls_past_the_allowance_spill() -> None:
    """A 10 s log of 16,667 tokens never admits a 20,200-token call: the window model
    holds it at charge 0 (``never_fit``, 10 % of the calls), and the room law must still
    refuse it, so a spills at least that share at every load (it spilled none of them:
    b and c all but empty, N* 17 against 6 [6–7] simulated)."""
    wl = Workload.from_profile(load_profile([CHAIN, SHORT_A]))
    inner = next(e for e in fleet.fleet_models(wl, cycle_time(wl)).entries
                 if e.c.name == "q0.tpm").model.inner
    assert abs(inner.never_fit - 0.1) < 1e-9
    for n in (2, 6, 17):
        share = room_share(inner, n, True)
        assert share is not None and inner.never_fit <= share < inner.never_fit + 0.01


@pytest.mark.xfail(strict=True, reason="a 10 s loss log spilling into 60 s ones: the "
                   "analytic 5 against 6 [6-7] simulated (conservative): the receivers' "
                   "honoured retries read as a herd refused again (FeedModel: calls "
                   "failed 0.93 % of them at 6 sessions, the engine 0.10 %)")
def test_short_first_window_against_the_simulator() -> None:
    assert_accurate(analyze(load_profile([CHAIN, SHORT_A])).burst_ceiling, Recorded(6, 6, 7),
                    "loss-chain-short-a")


@pytest.mark.parametrize("overlay", ["loss-chain-counted-rpm", "loss-chain-counted-b"])
def test_a_limit_beside_the_loss_log_that_turns_away_less(overlay: str) -> None:
    """A slot that is no loss log beside one that is (a counted 500 RPM log in a's quota;
    b's 12 RPM log counted): the calls the level spills are the loss log's while it turns
    away the most (RoomGate). Simulated 19 [18–19] both (seed 1, 20 × 1 h); the analytic
    N* was 30 while any slot of a level before closed the gate."""
    p = load_profile([CHAIN, DATA / f"{overlay}.yaml"])
    assert_accurate(analyze(p).burst_ceiling, Recorded(19, 18, 19), overlay)


def test_a_second_loss_log_beside_against_the_simulator() -> None:
    """An uncounted 60 RPM log beside a's TPM log (tests/data/loss-chain-uncounted-rpm.yaml)
    turns away more calls than it from ~21 sessions: read from it alone, a's spill was the
    route's calls thinned, without the large calls the TPM log refuses (30). Simulated
    19 [18–19] (seed 1, 20 × 1 h)."""
    p = load_profile([CHAIN, DATA / "loss-chain-uncounted-rpm.yaml"])
    assert_accurate(analyze(p).burst_ceiling, Recorded(19, 18, 19), "loss-chain-uncounted-rpm")


def test_a_level_spills_the_calls_any_of_its_slots_refuses() -> None:
    """At 24 sessions a's 60 RPM log turns away the most (22 % of the calls, its TPM log
    6 %, 7 % by the room law): a call spills when either refuses it, ``1 − (1 − r)(1 − r')``
    of them, and b gets the TPM log's large calls (10 % of the route's) among the RPM
    log's: more than twice their share, not the route's mix."""
    wl = Workload.from_profile(load_profile([CHAIN, DATA / "loss-chain-uncounted-rpm.yaml"]))
    es = {e.c.name: e.model for e in fleet.fleet_models(wl, cycle_time(wl)).entries}
    n, rpm, tpm = 24, es["q0.rpm"], es["q0.tpm"]
    assert rpm.stats(n).loss_fraction > 2 * tpm.stats(n).loss_fraction
    r, r2 = room_share(rpm.inner, n, True), room_share(tpm.inner, n, True)
    assert r is not None and r2 is not None and r2 > 0.05
    assert fleet._level_share([rpm, tpm], n) == pytest.approx(1 - (1 - r) * (1 - r2), abs=1e-12)
    got = es["q1.tpm"].sources[0].spilled(n)
    assert got is not None
    law = got[0] / got[0].sum()
    large = float(law[int(20_000 / es["q1.tpm"].h):].sum())   # the 20,200-token calls
    assert large > 0.2


@dataclasses.dataclass
class _Refusing:
    """A slot's model reduced to its share of refused calls at every load."""

    share: float

    def stats(self, n: int) -> SimpleNamespace:
        return SimpleNamespace(loss_fraction=self.share)


def test_the_gate_asks_the_slot_turning_away_the_most() -> None:
    """At each level before, the slot the model reads the spill from (the one turning away
    the most) decides; a level of loss logs only, or of none, decides alone."""
    loss, other = _Refusing(0.05), _Refusing(0.01)
    assert RoomGate(True).then([(loss, True), (other, False)])(10)
    assert not RoomGate(True).then([(_Refusing(0.01), True), (_Refusing(0.05), False)])(10)
    assert not RoomGate(False).then([(loss, True)])(10)
    assert not RoomGate(True).then([(loss, True)]).then([(other, False)])(10)
    assert RoomGate(True).then([(loss, True)]).then([(other, True)])(10)


def test_fixed_window_before_loss_logs_against_the_simulator() -> None:
    """q0 a fixed window: its overflow reaches b in bursts (FeedModel's held sources), which
    the time-average room law read as b nearly empty (30); the room law is for chains of
    loss logs alone. Simulated 22 [21–22] (seed 1, 20 × 1 h)."""
    p = load_profile(CHAIN, overrides=["quotas.q0.enforcement.type=fixed_window"])
    assert_accurate(analyze(p).burst_ceiling, Recorded(22, 21, 22), "loss-chain-fixed-a")


def test_backoff_retries_keep_the_room_law_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries on backoff come back inside the window while the charges that refused them
    are still logged: not the fresh calls the room law reads (it said 20 against 16
    [16–17] simulated, seed 1, 10 × 1 h). The answer is the one without the room law."""
    p = load_profile(CHAIN, overrides=["retry.honour_retry_after=false"])
    gated = analyze(p).burst_ceiling
    monkeypatch.setattr(fleet, "lone_calls", lambda *_: False)
    assert gated == analyze(p).burst_ceiling
