"""The level carried over a backoff gap (``bucket._uniformised``): the Poisson mixture of a
move's powers, by squaring where that is the less work (the series in blocks,
Paterson–Stockmeyer), equals the mixture summed term by term (the way it was computed
before session 41)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capacity.analytic.bucket import (
    _poisson_weights,
    _power_series,
    _series_products,
    _uniformised,
)


def _series(v: np.ndarray, P: np.ndarray, mu: float) -> np.ndarray:
    wts = _poisson_weights(mu)
    acc: np.ndarray = wts[0] * v
    x = v
    for w in wts[1:]:
        x = x @ P
        acc = acc + w * x
    return acc


@pytest.mark.parametrize("mu", [0.0, 0.3, 1.0, 2.5, 17.0, 64.0, 300.0, 1500.0])
def test_squaring_is_the_series(mu: float) -> None:
    rng = np.random.default_rng(7)
    n = 60
    P = rng.random((n, n)) * (rng.random((n, n)) < 0.2)
    P[np.arange(n - 1), np.arange(1, n)] += 1.0       # a refill step, as the chain's
    P /= P.sum(axis=1, keepdims=True)
    v = rng.random((n + 1, n))
    got, want = _uniformised(v, P, mu), _series(v, P, mu)
    assert np.allclose(got, want, rtol=1e-11, atol=1e-14 * float(np.abs(want).max()))
    # Mass is kept: each row's total is carried (P is stochastic).
    assert np.allclose(got.sum(axis=1), v.sum(axis=1), rtol=1e-11)


def test_one_row_over_a_short_gap_is_summed_term_by_term() -> None:
    # One row carried, below one event on average: the series is the less work (a row
    # times P a term, against P's own products): the same numbers.
    rng = np.random.default_rng(3)
    P = rng.random((8, 8))
    P /= P.sum(axis=1, keepdims=True)
    v = rng.random((1, 8))
    assert np.array_equal(_uniformised(v, P, 0.4), _series(v, P, 0.4))


@pytest.mark.parametrize("terms", [1, 2, 3, 4, 5, 8, 9, 10, 17, 22, 37])
def test_the_power_series_in_blocks_is_the_sum_of_powers(terms: int) -> None:
    rng = np.random.default_rng(terms)
    n = 12
    P = rng.random((n, n))
    P /= P.sum(axis=1, keepdims=True)
    c = rng.random(terms)
    want = np.zeros((n, n))
    x = np.eye(n)
    for k in range(terms):
        want += c[k] * x
        x = x @ P
    counted = P.view(_Counting)
    _Counting.products = 0
    np.testing.assert_allclose(_power_series(counted, c), want, rtol=1e-13)
    # The products it takes are the ones the path choice counts: about 2·sqrt(K),
    # never more than the series' K - 1.
    assert _Counting.products == _series_products(terms)
    assert _series_products(terms) <= max(terms - 1, 0)
    assert _series_products(terms) <= 2 * math.isqrt(terms)


class _Counting(np.ndarray):
    """A matrix that counts the products it takes part in (their results count too)."""

    products = 0

    def __matmul__(self, other: np.ndarray) -> np.ndarray:  # type: ignore[override]
        _Counting.products += 1
        out: np.ndarray = (np.asarray(self) @ np.asarray(other)).view(_Counting)
        return out

    def __rmatmul__(self, other: np.ndarray) -> np.ndarray:  # type: ignore[override]
        _Counting.products += 1
        out: np.ndarray = (np.asarray(other) @ np.asarray(self)).view(_Counting)
        return out
