"""Long count laws in a fleet's compound charge: cut sums, bounded error, bounded work;
continuous lattices made once.

The fuzzer's fleet profiles (fz119, fz141, fz208, fz226, fz291) sent count laws of 10^4 to
3·10^5 points through ``fleet._compound``, whose Horner loop over the count's pgf cost a
Python step per point and a product per transform point (minutes a profile). Long laws
now take ``_pgf_long``: tails below ``_COUNT_TAIL`` cut, each transform point's power sum
stopped below ``_PGF_EPS`` (compiled, with a numpy twin). Work is counted, never timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from capacity.analytic import _kernels, fleet
from capacity.analytic.model import analyze
from capacity.model import dist
from capacity.model.dist import Distribution
from capacity.profile.loader import load_profile

DATA = Path(__file__).resolve().parent / "data"


def _horner(counts: np.ndarray, fh: np.ndarray) -> np.ndarray:
    acc = np.zeros(fh.size, dtype=np.complex128)
    for coef in counts[::-1]:
        acc = acc * fh + coef
    return acc


def _dusty_count(rng: np.random.Generator, size: int, mean: float, sd: float) -> np.ndarray:
    """A count law as an FFT leaves it: a bell of real mass plus ~1e-16 dust everywhere."""
    k = np.arange(size, dtype=np.float64)
    law = np.exp(-0.5 * ((k - mean) / sd) ** 2)
    law += 1e-16 * rng.random(size) * law.max()
    return np.asarray(law / law.sum(), dtype=np.float64)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pgf_kernel_is_the_numpy_sums_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.random(700) ** 6
    counts /= counts.sum()
    charge = rng.random(40) ** 3
    charge /= charge.sum()
    fh = np.fft.rfft(charge, 1 << 11)
    fre, fim = fh.real.copy(), fh.imag.copy()
    got = _kernels.pgf_truncated(counts, fre, fim, fleet._PGF_EPS)
    want = fleet._pgf_truncated_numpy(counts, fre, fim, fleet._PGF_EPS)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    # Most points stop early (the test is of the cut, not of the full sums) ...
    assert np.count_nonzero(np.abs(fh) ** 700 < fleet._PGF_EPS) > fh.size // 2
    # ... and the cut sums are Horner's up to round-off.
    assert np.abs(got[0] + 1j * got[1] - _horner(counts, fh)).max() < 1e-13


def test_long_count_compound_is_horners_within_the_stated_bound() -> None:
    rng = np.random.default_rng(7)
    counts = _dusty_count(rng, 40_000, 21_000.0, 350.0)
    charge = np.array([0.994, 0.006, 3e-7])
    charge /= charge.sum()
    assert counts.size > fleet._HORNER_POINTS
    L = 512
    new = fleet._compound(counts, charge, L)
    old = np.clip(np.fft.irfft(_horner(counts, np.fft.rfft(charge, L)), L), 0.0, None)
    # Cutting tails of at most _COUNT_TAIL each moves the law by at most twice that in
    # total variation (plus the transforms' round-off).
    assert np.abs(new - old).sum() <= 2 * fleet._COUNT_TAIL + 1e-12
    # ... and keeps the mass (a cut that dropped the tails' mass would still pass above).
    assert abs(new.sum() - old.sum()) < 1e-12
    lo, hi = fleet._cut_tails(counts, fleet._COUNT_TAIL)
    assert hi - lo < 6_000       # the dust's 34,000 points are not summed


def test_cut_tails_keeps_the_mass_and_at_least_one_point() -> None:
    p = np.array([1e-13, 2e-13, 0.5, 0.5 - 3e-13 - 4e-12, 4e-12])
    assert fleet._cut_tails(p, 1e-11) == (2, 4)
    assert fleet._cut_tails(np.array([1e-12, 3e-12]), 1e-11) == (1, 2)


def test_fuzz_fleet_long_count_answer_and_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # d0's bucket (lone calls, ~80M ITPM 30 s deep) spills by its level law by level
    # crossing (fleet.bucket_levels): the calls it refuses, point by point.
    assert analyze(load_profile(DATA / "fuzz-fleet-long-count.yaml")).burst_ceiling == 49093
    # Read as the bound's spill of its launches (as a bucket fed fan-outs still is), the
    # long count law reaches fleet._compound: the work asserted here.
    monkeypatch.setattr(fleet, "bucket_levels", lambda *args: None)
    summed: list[int] = []
    real = fleet._pgf_truncated

    def counted(counts: np.ndarray, fh: np.ndarray) -> Any:
        summed.append(counts.size)
        return real(counts, fh)

    monkeypatch.setattr(fleet, "_pgf_truncated", counted)
    r = analyze(load_profile(DATA / "fuzz-fleet-long-count.yaml"))
    # 49,188 before the spilled calls kept their size law down the chain (SpillStream: the
    # prompts d0's ITPM and d1's TPM turn away are the large ones, charged so by d2's ITPM);
    # 49,102 before the calls that never fit d1's 538-token log spilled at any load.
    assert r.burst_ceiling == 49093
    # The 8,926-point count law is summed over its 573 points of mass.
    assert summed and max(summed) <= 600


def test_continuous_lattice_made_once_and_handed_out_as_copies(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "_LATTICES", {})
    calls = {"n": 0}
    real = dist._ndtr

    def counted(z: Any) -> np.ndarray:
        calls["n"] += np.size(z) > 1000     # (the passes over the lattice)
        return real(z)

    monkeypatch.setattr(dist, "_ndtr", counted)
    d = Distribution.parse({"lognormal": {"median": 600, "p95": 1800}}, "tokens")
    first = d.lattice_pmf(1.0)
    made = calls["n"]
    assert first.size >= dist._LATTICE_CACHE_FROM and made == 4  # cdf, partial mean, 2 tails
    first[:] = 0.0                                       # a caller's own copy
    again = d.lattice_pmf(1.0)
    assert calls["n"] == made and again.sum() == pytest.approx(1.0)
    monkeypatch.setattr(dist, "_LATTICES", {})
    assert np.array_equal(again, d.lattice_pmf(1.0))     # the same law, bit for bit
    assert calls["n"] == 2 * made


def test_fuzz_repeated_lognormal_lattice_answer_and_work(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dist, "_LATTICES", {})
    built: list[tuple[Any, ...]] = []
    real = Distribution._lattice_continuous

    def counted(self: Distribution, *a: Any) -> np.ndarray:
        out = real(self, *a)
        if out.size > 500_000:
            built.append((self, *a))
        return out

    monkeypatch.setattr(Distribution, "_lattice_continuous", counted)
    r = analyze(load_profile(DATA / "fuzz-repeated-lognormal-lattice.yaml"))
    assert r.burst_ceiling == 0 and r.mean_ceiling == pytest.approx(0.0395, abs=1e-4)
    # Two lattices of over 10^6 points (steps 1 and 1/25.6), each made once (the first
    # five times before: once a constraint and a cycle of the search).
    assert len(built) == len(set(built)) == 2
