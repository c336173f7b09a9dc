"""Type stub of the compiled simulator (``_engine.c``)."""

from typing import overload

import numpy as np
from numpy.typing import NDArray

_F = NDArray[np.float64]
_I = NDArray[np.int64]

@overload
def replicate(
    n_sessions: int, rep_key: int, t0: float, t1: float, max_nodes: int, turn_cum: _F,
    turn_root: _I, sprog: _I, sprob: _F, schild: _I, dpar: _F, cval: _F, ccum: _F,
    site_dist: _I, site_cached: _F, site_maxtok: _F, coef: _F, P: _F, cfg: _F,
    bucket_deficit: _F, window_used: _F, trace: _F, queue: int = 0,
    route: tuple[NDArray[np.generic], ...] | None = None, pops: None = None,
) -> tuple[_F, _F, _F, _F, int]: ...
@overload
def replicate(
    n_sessions: int, rep_key: int, t0: float, t1: float, max_nodes: int, turn_cum: _F,
    turn_root: _I, sprog: _I, sprob: _F, schild: _I, dpar: _F, cval: _F, ccum: _F,
    site_dist: _I, site_cached: _F, site_maxtok: _F, coef: _F, P: _F, cfg: _F,
    bucket_deficit: _F, window_used: _F, trace: _F, queue: int = 0,
    route: tuple[NDArray[np.generic], ...] | None = None, *,
    pops: tuple[_I, _I, _F],
) -> tuple[_F, _F, _F, _F, int, _I]: ...
def sample_many(d: int, key: int, n: int, dpar: _F, cval: _F, ccum: _F) -> _F: ...
def residual_many(d: int, key: int, n: int, dpar: _F, cval: _F, ccum: _F) -> _F: ...
def limiter_attempt(P: _F, st: _F, log_t: _F, log_u: _F, t: float, units: _F,
                    rejected: NDArray[np.int8]) -> tuple[bool, float]: ...
def run_attempts(P: _F, times: _F, units: _F) -> tuple[NDArray[np.bool_], _F,
                                                       NDArray[np.int8]]: ...
def layout() -> dict[str, int | float]: ...
def stop(flag: bool) -> None: ...
