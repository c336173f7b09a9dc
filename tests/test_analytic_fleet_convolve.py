"""A fed slot's window law convolves its direct traffic with each source's units by FFT
past ``_DIRECT_WORK`` products (``window.lattice_convolve``, fleet's ``_convolve``; a deep
bucket's launch sums too): the same law as the direct product to round-off, and the same
answers."""

from __future__ import annotations

import numpy as np

from capacity.analytic import fleet, window


def test_fft_product_is_the_direct_one() -> None:
    """Two long pmfs (past the threshold) by FFT and directly: equal to 1e-15, never
    negative, the mass kept."""
    rng = np.random.default_rng(7)
    a = rng.gamma(2.0, size=9_000)
    b = rng.gamma(0.5, size=12_000)
    a, b = a / a.sum(), b / b.sum()
    assert fleet._convolve is window.lattice_convolve
    assert a.size * b.size > window._DIRECT_WORK
    fast, slow = fleet._convolve(a, b), np.convolve(a, b)
    assert fast.shape == slow.shape
    assert float(np.abs(fast - slow).max()) < 1e-15
    assert float(fast.min()) >= 0.0 and abs(float(fast.sum()) - 1.0) < 1e-12


def test_short_product_is_bit_for_bit() -> None:
    """Below the threshold it is np.convolve itself (answers kept bit for bit)."""
    a, b = np.array([0.2, 0.5, 0.3]), np.array([0.6, 0.4])
    assert np.array_equal(fleet._convolve(a, b), np.convolve(a, b))
