"""The told retries' interference on a deep bucket's climb (``bucket._interfered``) is
built a span of levels at a time; this holds it to the plain level-by-level recursion
its docstring states, on random launch matrices, retry-afters and launch chances."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capacity.analytic import bucket
from capacity.analytic.bucket import _interfered


def _level_by_level(move: np.ndarray, pl: float, x: float) -> np.ndarray:
    """``q[ℓ, s]`` with one step matrix a level, from the top down (the reference)."""
    n = move.shape[0]
    top = n - 1
    x0 = math.floor(x)
    fx = x - x0
    cn = min(x0 + 3, top + 3)
    gone = cn - 1
    s_all = np.arange(n + 1)
    land = np.minimum(s_all + x0, top)
    room = land - np.minimum(s_all, top)
    end = np.where(np.arange(cn)[:, None] <= room[None, :], 0.0, 1.0)
    cum = np.cumsum(move, axis=1)
    pf = -math.expm1(math.log1p(-min(pl, 1.0 - 1e-16)) * fx)
    whole = (land == s_all + x0) & (s_all >= 1) & (s_all <= top)
    for taken in range(min(x0 + 1, cn - 1)):
        for col in np.flatnonzero(whole):
            at_lvl = land[col] - taken
            if at_lvl >= 0:
                end[taken, col] = pf * cum[at_lvl, col - 1]
    q = np.zeros((n, n + 1))
    v = np.zeros((cn, n + 1))
    for y in range(top, -1, -1):
        T = np.zeros((cn, cn))
        T[gone, gone] = 1.0
        for c in range(min(gone, y + 1)):
            for k in range(c, gone):
                if y - k >= 0:
                    T[c, k] = pl * move[y - c, y - k]
            if y - gone >= 0:
                T[c, gone] = pl * cum[y - c, y - gone]
            T[c, c] += 1.0 - pl
        v = T @ v
        at = land == y
        v[:, at] = end[:, at]
        q[y] = v[0]
    return np.where(np.arange(n)[:, None] < s_all[None, :], q, 0.0)


@pytest.mark.parametrize("seed", range(40))
def test_the_spans_of_levels_give_the_level_by_level_recursion(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 70))
    move = rng.random((n, n))
    if seed % 2:
        move = np.tril(move)  # a launch only lowers the level
    move /= move.sum(axis=1, keepdims=True)
    pl = float(rng.uniform(0.0, 1.0))
    x = float((0.9, 2.5, 17.3, 3.0)[seed % 4] * rng.uniform(0.5, 1.5))
    got = _interfered(move, pl, x)
    want = _level_by_level(move, pl, x)
    assert got.shape == want.shape == (n, n + 1)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # A chance, everywhere.
    assert np.all(got >= -1e-15) and np.all(got <= 1.0 + 1e-12)


@pytest.mark.parametrize("block", [1, 50, 200, 49 * 7])
def test_spans_smaller_than_the_levels_change_nothing(monkeypatch: pytest.MonkeyPatch,
                                                      block: int) -> None:
    # x = 4.6: 7 × 7 entries a level, 40 levels: one in one span with the default block;
    # blocks of 1, 50, 200 and 343 entries make spans of 1, 1, 4 and 7 levels, the last
    # span partial (40 is no multiple of 4 or 7).
    rng = np.random.default_rng(7)
    move = rng.random((40, 40))
    move /= move.sum(axis=1, keepdims=True)
    whole = _interfered(move, 0.3, 4.6)
    np.testing.assert_allclose(whole, _level_by_level(move, 0.3, 4.6), rtol=1e-12,
                               atol=1e-15)
    monkeypatch.setattr(bucket, "_INTERFERED_BLOCK", block)
    np.testing.assert_array_equal(_interfered(move, 0.3, 4.6), whole)
