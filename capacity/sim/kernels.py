"""The simulator's compiled kernels, as Python sees them: layout constants and wrappers.

The event loop, the samplers and the array limiter are C (``_engine.c``, built into
``capacity.sim._engine`` when the package is installed — nothing is compiled at run time
and nothing is cached). This module holds the array layout both sides agree on (column
indices and codes: :func:`_check_layout` refuses a compiled module built from another
layout, e.g. a stale build in an editable install) and the small non-hot helpers
(:class:`LimiterArrays`, :func:`initial_state`, :func:`loaded_state`,
:func:`ensure_log_capacity`) in numpy.

The compiled rules are twins of the plain-Python ones: the array limiter of
:class:`capacity.limits.Limiter` (fixed / sliding windows, token buckets, counted
rejections), the client retry rule of :class:`capacity.model.retry.RetryPolicy`, the
pacer of :class:`capacity.model.pacing.Pacer` and the router of
:class:`capacity.model.routing.Router` / ``CallPath``. ``tests/test_twins.py`` replays the
engine's attempt trace through the plain-Python rules and checks every decision and wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from capacity.model.quota import LimitSlot
from capacity.sim._engine import (
    layout,
    limiter_attempt,
    replicate,
    residual_many,
    run_attempts,
    sample_many,
    stop,
)

__all__ = ["LimiterArrays", "ensure_log_capacity", "initial_state", "limiter_attempt",
           "loaded_state", "replicate", "residual_many", "run_attempts", "sample_many",
           "stop"]

# Twin of capacity.limits.meters.MIN_WAIT, also compiled into _engine.c;
# tests/test_twins.py checks the two are equal.
MIN_WAIT = 1e-9
# Twin of capacity.model.pacing.WAKE_EPSILON_S (the pacer wakes a hair after a token is due).
WAKE_EPSILON_S = 1e-9

# Distribution kinds in the array form.
D_FIXED, D_UNIFORM, D_UNIFORM_INT, D_EXPONENTIAL, D_LOGNORMAL, D_CHOICE = range(6)

# Static (profile) node kinds and instance (expanded turn) node kinds.
S_CALL, S_SEQ, S_PAR, S_OPT, S_REP = range(5)
I_CALL, I_SEQ, I_PAR = range(3)

# Columns of the distribution parameter table.
DP_KIND, DP_P0, DP_P1, DP_OFF, DP_LEN = range(5)

# Columns of the per-site distribution table.
SITE_IN, SITE_OUT, SITE_TTFT, SITE_TPS = range(4)

# cfg vector entries.
(C_MODE, C_PAUSE, C_MAX_RETRIES, C_INIT_DELAY, C_MAX_DELAY, C_JITTER, C_HONOUR, C_MAX_RA,
 C_REJ_LAT, C_ABORT, C_PACE_RATE, C_PACE_DEPTH, C_PACE_CONC, C_START_P, C_TURN_LAW) = range(15)

# Replication statistics vector entries.
# K_ATTEMPTS counts rounds (a client attempt: the first send plus its spills), K_REJECTED
# the rounds whose client saw a 429; K_SENDS, K_SPILLS, K_FALLBACKS, K_UNAVAILABLE (rounds
# that found no deployment available) are counted for routed profiles only.
(K_TURNS, K_TURNS_429, K_TURNS_FAILED, K_CALLS, K_CALLS_FAILED, K_ATTEMPTS, K_REJECTED,
 K_GOOD_WINDOW, K_TURNS_WINDOW, K_PACE_WAIT, K_ATTEMPTS_ALL, K_SENDS, K_SPILLS, K_FALLBACKS,
 K_UNAVAILABLE) = range(15)
N_STATS = K_UNAVAILABLE + 1


# Numeric codes of the enforcement types in the array form.
KIND_FIXED, KIND_SLIDING, KIND_BUCKET = 0, 1, 2
_KIND_CODE = {"fixed_window": KIND_FIXED, "sliding_window": KIND_SLIDING,
              "token_bucket": KIND_BUCKET}

# Columns of the parameter matrix P[slot, :].
P_KIND, P_ALLOW, P_WINDOW, P_RATE, P_COUNTREJ, P_OFFSET = range(6)
# Columns of the state matrix S[slot, :].
S_WIN, S_COUNT, S_LEVEL, S_LAST, S_HEAD, S_SIZE, S_SUM = range(7)


EV_TURN, EV_ATTEMPT, EV_DONE, EV_REJECT, EV_PACE = range(5)
# Charges a long sliding window's log starts with (its steady-state content, spread out).
_SPREAD = 64
F_429, F_FAILED, F_ABORTED, F_MEASURED = 1, 2, 4, 8
# Columns of an attempt-trace row (trace mode), then one column per slot: its charge,
# then (routed profiles) one per deployment: its calls in flight when the row's choice was
# made. T_DEP: the deployment chosen (-1: none available, or an unrouted profile); T_U,
# T_TURN_U: the call's and the turn's routing draws; T_NEXT: the step its outcome decided
# (NX_*; -1 unrouted); T_LAT: an admitted attempt's latency (s).
(T_T, T_SESSION, T_NODE, T_SITE, T_ATTEMPT, T_TIN, T_TCACHED, T_TOUT, T_ADMITTED,
 T_RETRY_AFTER, T_WAIT, T_JITTER, T_DEP, T_U, T_TURN_U, T_NEXT, T_LAT) = range(17)
T_UNITS = 17
# T_WAIT of an admitted attempt; of a rejected one whose call gave up.
WAIT_NONE, WAIT_GAVE_UP = -1.0, -2.0

# Routing: policy codes (capacity.model.routing.POLICIES), columns of the per-logical-model
# table, the cooldown vector, per-deployment counters, and the next step of a call after
# an outcome (capacity.model.routing.Next).
POL_WEIGHTED, POL_ROUND_ROBIN, POL_LEAST_BUSY, POL_USAGE_BASED, POL_PRIORITY = range(5)
POLICY_CODE = {"weighted": POL_WEIGHTED, "round_robin": POL_ROUND_ROBIN,
               "least_busy": POL_LEAST_BUSY, "usage_based": POL_USAGE_BASED,
               "priority": POL_PRIORITY}
RL_POLICY, RL_SPILLS, RL_PER_TURN, RL_OFF, RL_LEN, RL_ROLL_ALL = range(6)
RL_NCOL = 6
RC_ON, RC_THRESHOLD, RC_MIN_CALLS, RC_WINDOW, RC_SECONDS = range(5)
RC_NCOL = 5
DS_SENT, DS_ADMITTED, DS_REJECTED, DS_SPILLED = range(4)
DS_NCOL = 4
NX_DONE, NX_SPILL, NX_RETRY, NX_FALLBACK, NX_FAIL = range(5)
# Deployments per route (a call's tried set is a 32-bit mask in the engine).
MAX_ROUTE = 32
# Session populations: columns of the per-population table (``replicate(..., pops=)``);
# the per-population counters are the first PS_NCOL statistics (K_TURNS .. K_TURNS_WINDOW).
# PP_START_P / PP_TURN_LAW (and C_START_P / C_TURN_LAW): the steady-state start's p_turn (a
# fixed distribution) and turn-latency law (capacity.model.workload.steady_phase).
PP_MODE, PP_PAUSE, PP_TURN_OFF, PP_TURN_LEN, PP_START_P, PP_TURN_LAW = range(6)
PP_NCOL = 6
PS_NCOL = K_PACE_WAIT



def _check_layout() -> None:
    """The compiled module must have been built from this layout (else: rebuild)."""
    here = {k: v for k, v in globals().items() if k.isupper() and isinstance(v, int | float)}
    built = layout()
    wrong = sorted(k for k, v in built.items() if here.get(k) != v)
    if wrong:
        raise ImportError(
            "capacity.sim._engine was built from another version of the source "
            f"({', '.join(wrong)} differ); rebuild it: pip install -e . (or build_ext "
            "--inplace)")


_check_layout()


@dataclass(frozen=True)
class LimiterArrays:
    """Slots as a parameter matrix ``P`` (one row per slot) for :func:`limiter_attempt`."""

    params: NDArray[np.float64]

    @classmethod
    def from_slots(cls, slots: tuple[LimitSlot, ...],
                   clock_offset_s: float = 0.0) -> LimiterArrays:
        """Parameter rows for ``slots`` with fixed windows shifted by ``clock_offset_s``."""
        p = np.zeros((len(slots), 6))
        for i, s in enumerate(slots):
            p[i, P_KIND] = _KIND_CODE[s.kind]
            p[i, P_ALLOW] = s.allowance
            p[i, P_WINDOW] = s.window_s
            p[i, P_RATE] = s.rate
            p[i, P_COUNTREJ] = 1.0 if s.counts_rejected else 0.0
            p[i, P_OFFSET] = clock_offset_s % s.window_s
        return cls(p)

    def initial_state(self, log_capacity: int = 64) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]
    ]:
        """Fresh state ``(S, log_t, log_u)``: buckets full, windows and logs empty."""
        return initial_state(self.params, log_capacity)


State = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def initial_state(params: NDArray[np.float64], log_capacity: int = 64) -> State:
    """Fresh limiter state ``(S, log_t, log_u)`` for parameter matrix ``params``."""
    n = params.shape[0]
    st = np.zeros((n, 7))
    st[:, S_WIN] = np.nan
    st[:, S_LEVEL] = params[:, P_ALLOW]
    return st, np.zeros((n, log_capacity)), np.zeros((n, log_capacity))


def loaded_state(params: NDArray[np.float64], bucket_deficit: NDArray[np.float64],
                 window_used: NDArray[np.float64], spread: int = 64) -> State:
    """Limiter state ``(S, log_t, log_u)`` at t = 0 of a system that has been running.

    ``bucket_deficit[i]`` units are missing from token bucket ``i`` (level = depth −
    deficit, clipped to [0, depth]). ``window_used[i]`` units (capped at the allowance)
    have already been charged to window slot ``i``: for a fixed window, in its current
    window ``[k·w − offset, 0]``; for a sliding window, spread evenly over ``(−w, 0]`` as
    ``spread`` equal charges (so they expire steadily over the first ``w`` seconds).
    Entries of the other kind are ignored. Zeros give :func:`initial_state`'s fresh state.
    The engine starts each replication the same way (``lim_load`` in ``_engine.c``).
    """
    cap = 16
    while cap < spread + 16:
        cap *= 2
    st, log_t, log_u = initial_state(params, cap)
    for i in range(params.shape[0]):
        kind = int(params[i, P_KIND])
        q = float(params[i, P_ALLOW])
        if kind == KIND_BUCKET:
            st[i, S_LEVEL] = q - min(max(float(bucket_deficit[i]), 0.0), q)
            continue
        used = min(max(float(window_used[i]), 0.0), q)
        if used <= 0.0:
            continue
        w = float(params[i, P_WINDOW])
        if kind == KIND_FIXED:
            st[i, S_WIN] = math.floor(params[i, P_OFFSET] / w)
            st[i, S_COUNT] = used
        else:
            for j in range(spread):
                log_t[i, j] = -w + (j + 0.5) * w / spread
                log_u[i, j] = used / spread
            st[i, S_HEAD] = 0.0
            st[i, S_SIZE] = spread
            st[i, S_SUM] = used
    return st, log_t, log_u


def ensure_log_capacity(st: NDArray[np.float64], log_t: NDArray[np.float64],
                        log_u: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                             NDArray[np.float64]]:
    """The logs, grown (oldest entry first) if some slot has no room for one more entry.

    Call before :func:`limiter_attempt`, which refuses a full log.
    """
    cap = log_t.shape[1]
    if int(st[:, S_SIZE].max(initial=0.0)) < cap:
        return log_t, log_u
    n = log_t.shape[0]
    new_t, new_u = np.zeros((n, 2 * cap)), np.zeros((n, 2 * cap))
    for i in range(n):
        idx = (int(st[i, S_HEAD]) + np.arange(int(st[i, S_SIZE]))) % cap
        new_t[i, :idx.size] = log_t[i, idx]
        new_u[i, :idx.size] = log_u[i, idx]
        st[i, S_HEAD] = 0.0
    return new_t, new_u
