"""Type stub of the analytic model's compiled loops (``_kernels.c``)."""

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

_F = NDArray[np.float64]

def carry_loop(y: _F, q: float, retries: int, windows: int, rtol: float,
               conv: Callable[[_F], _F]) -> tuple[_F, float, float, bool]: ...
def pairwise_sum(a: _F) -> float: ...
def rate_mva_loop(n_max: int, v: float, s: float, d: float, residual: float, think: bool,
                  grid: _F, cyc_at: _F) -> tuple[_F, _F]: ...
def hold_law_sums(arrive: _F, leave: _F) -> _F: ...
def storm_renewal(into: _F, fz: _F, starts: _F, aborted: _F, back: float, launching: float,
                  dt: float) -> _F: ...
def storm_retried(into: _F, fz: _F, starts: _F, aborted: _F, turned: _F, dt: float,
                  w: float, q: int, lat: float, m: int, per_w: int, overflow: float,
                  first_units: float, launching: float) -> _F: ...
