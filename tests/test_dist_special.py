"""The normal cdf every continuous lattice law asks (``capacity.model.dist._ndtr``): the
compiled loop (``capacity.model._special``) gives the fallback's numbers bit for bit, and
both are Φ (scipy.stats.norm) to the last few bits."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from capacity.model import dist
from capacity.model.dist import Distribution


def _points() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate([
        rng.normal(0.0, 3.0, 200_000), rng.uniform(-40.0, 40.0, 20_000),
        np.linspace(-38.6, 8.3, 5_001),
        [0.0, -0.0, 1e-300, -1e-300, 5e-324, 37.5, -37.5, -38.5, 1e308, -1e308,
         math.inf, -math.inf, math.nan]])


def test_compiled_ndtr_is_built() -> None:
    # Built with the package (setup.py); without it every lattice law costs ~6x more.
    assert dist._compiled_ndtr() is not None


def test_compiled_ndtr_equals_the_fallback_bit_for_bit() -> None:
    z = _points()
    fast, slow = dist._ndtr(z), dist._ndtr_python(z)
    assert fast.dtype == np.float64 and fast.shape == z.shape
    assert np.array_equal(fast, slow, equal_nan=True)
    assert np.array_equal(np.signbit(fast), np.signbit(slow))


@pytest.mark.parametrize("z", [1.5, -0.25, [[0.0, 1.0], [2.0, -3.0]], np.arange(6.0)[::2],
                               np.array([1, 2, 3], dtype=np.int64), np.float32(0.7)])
def test_compiled_ndtr_takes_what_the_fallback_takes(z: object) -> None:
    # Scalars, nested lists, strided views, integer and float32 arrays: the same shape
    # and numbers as the fallback's (float64 of the input).
    fast, slow = dist._ndtr(z), dist._ndtr_python(z)
    assert fast.shape == slow.shape and np.array_equal(fast, slow)


def test_ndtr_is_the_normal_cdf() -> None:
    z = _points()
    z = z[np.isfinite(z)]
    want = stats.norm.cdf(z)
    got = dist._ndtr(z)
    # Relative accuracy where Φ is not denormal; the lower tail is where it matters (the
    # upper tails are asked as Φ(−z), never 1 − Φ(z)). Far out both lose bits to
    # exp(−z²/2)'s conditioning (~z² ulps: 2.4e-13 at z = −37, 2.9e-15 at −3).
    normal = want > 1e-300
    assert np.allclose(got[normal], want[normal], rtol=1e-12, atol=0.0)
    near = np.abs(z) < 3.0
    assert np.allclose(got[near], want[near], rtol=4e-15, atol=0.0)
    assert np.array_equal(got[~normal] == 0.0, want[~normal] == 0.0) or np.all(
        got[~normal] < 1e-300)


def test_lattice_law_is_the_same_without_the_compiled_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    d = Distribution.parse({"lognormal": {"median": 600, "p95": 1800}}, "tokens")
    monkeypatch.setattr(dist, "_LATTICES", {})
    fast = d.lattice_pmf(3.0)
    monkeypatch.setattr(dist, "_LATTICES", {})
    monkeypatch.setattr(dist, "_compiled_ndtr", lambda: None)
    assert np.array_equal(fast, d.lattice_pmf(3.0))


def test_importing_dist_does_not_import_numpy() -> None:
    # The compiled loop imports numpy; it is loaded when first asked, not with the
    # profile layer (the CLI's start and `capacity --help` stay numpy-free).
    code = ("import sys, capacity.model.dist as d; assert 'numpy' not in sys.modules; "
            "import numpy as np; d._ndtr(np.zeros(3)); "
            "assert 'capacity.model._special' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
