"""Type stub of the analytic model's compiled retry-carry iteration (``_carry.c``)."""

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

_F = NDArray[np.float64]

def carry_loop(y: _F, q: float, retries: int, windows: int, rtol: float,
               conv: Callable[[_F], _F]) -> tuple[_F, float, float, bool]: ...
def pairwise_sum(a: _F) -> float: ...
