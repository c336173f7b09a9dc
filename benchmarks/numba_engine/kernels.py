"""Every compiled (numba) function of the simulator, in one module.

numba's on-disk cache (``cache=True``) is keyed to the source file of each function, so a
kernel that inlines a function from another file could load stale machine code after that
file alone was edited. Keeping every kernel here makes the cache key cover all of them.

These are twins of the plain-Python rules: the array limiter of
:class:`capacity.limits.Limiter` (fixed / sliding windows, token buckets, counted
rejections), the client retry rule of :class:`capacity.model.retry.RetryPolicy` and the
pacer of :class:`capacity.model.pacing.Pacer`. ``tests/test_twins.py`` replays the engine's
attempt trace through the plain-Python rules and checks every decision and wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from llvmlite import ir as llvmir
from numba import njit
from numba.core import cgutils
from numba.core import types as nbtypes
from numba.extending import intrinsic
from numpy.typing import NDArray

from capacity.model.quota import LimitSlot

# Twin of capacity.limits.meters.MIN_WAIT, defined here (not imported) because numba
# freezes globals into its cached machine code and keys that cache to this file only;
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
(K_TURNS, K_TURNS_429, K_TURNS_FAILED, K_CALLS, K_CALLS_FAILED, K_ATTEMPTS, K_REJECTED,
 K_GOOD_WINDOW, K_TURNS_WINDOW, K_PACE_WAIT, K_ATTEMPTS_ALL) = range(11)
N_STATS = K_ATTEMPTS_ALL + 1


# ---------------------------------------------------------------------------------------
# Array form (numba): the same rules over flat arrays, for the simulator
# ---------------------------------------------------------------------------------------

# Numeric codes of the enforcement types in the array form.
KIND_FIXED, KIND_SLIDING, KIND_BUCKET = 0, 1, 2
_KIND_CODE = {"fixed_window": KIND_FIXED, "sliding_window": KIND_SLIDING,
              "token_bucket": KIND_BUCKET}

# Columns of the parameter matrix P[slot, :].
P_KIND, P_ALLOW, P_WINDOW, P_RATE, P_COUNTREJ, P_OFFSET = range(6)
# Columns of the state matrix S[slot, :].
S_WIN, S_COUNT, S_LEVEL, S_LAST, S_HEAD, S_SIZE, S_SUM = range(7)


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


@njit(cache=True, nogil=True)
def initial_state(params, log_capacity=64):  # type: ignore[no-untyped-def]
    """Fresh limiter state ``(S, log_t, log_u)`` for parameter matrix ``params``."""
    n = params.shape[0]
    st = np.zeros((n, 7))
    st[:, S_WIN] = np.nan
    st[:, S_LEVEL] = params[:, P_ALLOW]
    return st, np.zeros((n, log_capacity)), np.zeros((n, log_capacity))


@njit(cache=True, nogil=True)
def loaded_state(params, bucket_deficit, window_used, spread=64):  # type: ignore[no-untyped-def]
    """Limiter state ``(S, log_t, log_u)`` at t = 0 of a system that has been running.

    ``bucket_deficit[i]`` units are missing from token bucket ``i`` (level = depth −
    deficit, clipped to [0, depth]). ``window_used[i]`` units (capped at the allowance)
    have already been charged to window slot ``i``: for a fixed window, in its current
    window ``[k·w − offset, 0]``; for a sliding window, spread evenly over ``(−w, 0]`` as
    ``spread`` equal charges (so they expire steadily over the first ``w`` seconds).
    Entries of the other kind are ignored. Zeros give :func:`initial_state`'s fresh state.
    """
    n = params.shape[0]
    cap = 16
    while cap < spread + 16:
        cap *= 2
    st, log_t, log_u = initial_state(params, cap)
    for i in range(n):
        kind = int(params[i, P_KIND])
        q = params[i, P_ALLOW]
        if kind == KIND_BUCKET:
            st[i, S_LEVEL] = q - min(max(bucket_deficit[i], 0.0), q)
            continue
        used = min(max(window_used[i], 0.0), q)
        if used <= 0.0:
            continue
        w = params[i, P_WINDOW]
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


@njit(cache=True, nogil=True, inline="always")
def _ceil_ms(x: float) -> float:
    if not math.isfinite(x):
        return math.inf
    return (math.floor(x * 1000.0) + 1.0) / 1000.0


@njit(cache=True, nogil=True, inline="always")
def _expire(st, log_t, log_u, i, t, w):  # type: ignore[no-untyped-def]
    cap = log_t.shape[1]
    head = int(st[i, S_HEAD])
    size = int(st[i, S_SIZE])
    while size > 0 and log_t[i, head] + w <= t:
        st[i, S_SUM] -= log_u[i, head]
        head = (head + 1) % cap
        size -= 1
    if size == 0:
        st[i, S_SUM] = 0.0
    st[i, S_HEAD] = head
    st[i, S_SIZE] = size


@njit(cache=True, nogil=True, inline="always")
def _wait(P, st, log_t, log_u, i, t, units):  # type: ignore[no-untyped-def]
    """Array twin of :meth:`Meter.wait_time` for slot ``i``."""
    if units <= 0.0:
        return 0.0
    kind = int(P[i, P_KIND])
    q = P[i, P_ALLOW]
    if kind == KIND_FIXED:
        w = P[i, P_WINDOW]
        off = P[i, P_OFFSET]
        k = math.floor((t + off) / w)
        if k != st[i, S_WIN]:
            st[i, S_WIN] = k
            st[i, S_COUNT] = 0.0
        if st[i, S_COUNT] + units <= q:
            return 0.0
        if units > q:
            return math.inf
        return max((k + 1) * w - off - t, MIN_WAIT)
    if kind == KIND_SLIDING:
        w = P[i, P_WINDOW]
        _expire(st, log_t, log_u, i, t, w)
        if st[i, S_SUM] + units <= q:
            return 0.0
        if units > q:
            return math.inf
        cap = log_t.shape[1]
        remaining = st[i, S_SUM]
        j = int(st[i, S_HEAD])
        for _ in range(int(st[i, S_SIZE])):
            remaining -= log_u[i, j]
            if remaining + units <= q:
                return max(log_t[i, j] + w - t, MIN_WAIT)
            j = (j + 1) % cap
        return math.inf
    # token bucket
    if t > st[i, S_LAST]:
        st[i, S_LEVEL] = min(q, st[i, S_LEVEL] + (t - st[i, S_LAST]) * P[i, P_RATE])
        st[i, S_LAST] = t
    if units <= st[i, S_LEVEL]:
        return 0.0
    if units > q:
        return math.inf
    return max((units - st[i, S_LEVEL]) / P[i, P_RATE], MIN_WAIT)


@njit(cache=True, nogil=True, inline="always")
def _charge(P, st, log_t, log_u, i, t, units):  # type: ignore[no-untyped-def]
    """Array twin of :meth:`Meter.charge` (state already rolled to ``t`` by ``_wait``)."""
    kind = int(P[i, P_KIND])
    if kind == KIND_FIXED:
        st[i, S_COUNT] += units
    elif kind == KIND_SLIDING:
        if units > 0.0:
            cap = log_t.shape[1]
            j = (int(st[i, S_HEAD]) + int(st[i, S_SIZE])) % cap
            log_t[i, j] = t
            log_u[i, j] = units
            st[i, S_SIZE] += 1
            st[i, S_SUM] += units
    else:
        st[i, S_LEVEL] -= units


@njit(cache=True, nogil=True, inline="always")
def log_full(st, capacity):  # type: ignore[no-untyped-def]
    """True when some sliding-window log has no room for one more entry."""
    most = 0
    for i in range(st.shape[0]):
        most = max(most, int(st[i, S_SIZE]))
    return most >= capacity


@njit(cache=True, nogil=True)
def grow_logs(st, log_t, log_u):  # type: ignore[no-untyped-def]
    """Copies of the sliding-window logs with twice the room (oldest entry first)."""
    n, cap = log_t.shape
    new_t = np.zeros((n, 2 * cap))
    new_u = np.zeros((n, 2 * cap))
    for i in range(n):
        head = int(st[i, S_HEAD])
        for k in range(int(st[i, S_SIZE])):
            new_t[i, k] = log_t[i, (head + k) % cap]
            new_u[i, k] = log_u[i, (head + k) % cap]
        st[i, S_HEAD] = 0.0
    return new_t, new_u


@njit(cache=True, nogil=True)
def ensure_log_capacity(st, log_t, log_u):  # type: ignore[no-untyped-def]
    """The logs, grown if needed so every slot has room for one more entry.

    Call before :func:`limiter_attempt`. (Hot loops should test :func:`log_full` and
    rebind the arrays only when it is true: rebinding costs reference-count updates.)
    """
    if log_full(st, log_t.shape[1]):
        return grow_logs(st, log_t, log_u)
    return log_t, log_u


@njit(cache=True, nogil=True, inline="always")
def limiter_attempt(P, st, log_t, log_u, t, units, rejected):  # type: ignore[no-untyped-def]
    """Array twin of :meth:`ProviderLimiter.attempt`.

    Parameters
    ----------
    P : parameter matrix (:class:`LimiterArrays`).
    st, log_t, log_u : state (updated in place); the logs need room for one more entry
        per slot (:func:`ensure_log_capacity`).
    t : attempt time (seconds).
    units : charge per slot (0 = untouched).
    rejected : output, set to 1 for every slot that had no room, else 0.

    Returns
    -------
    (admitted, retry_after_s) : retry-after rounded up to the next millisecond, 0 when
    admitted.
    """
    n = P.shape[0]
    worst = 0.0
    for i in range(n):
        w = _wait(P, st, log_t, log_u, i, t, units[i])
        rejected[i] = 1 if w > 0.0 else 0
        if w > worst:
            worst = w
    if worst == 0.0:
        for i in range(n):
            if units[i] > 0.0:
                _charge(P, st, log_t, log_u, i, t, units[i])
        return True, 0.0
    for i in range(n):
        if P[i, P_COUNTREJ] > 0.0 and units[i] > 0.0:
            if int(P[i, P_KIND]) == KIND_BUCKET:
                st[i, S_LEVEL] = max(0.0, st[i, S_LEVEL] - 1.0)
            else:
                _charge(P, st, log_t, log_u, i, t, 1.0)
    return False, _ceil_ms(worst)


@njit(cache=True, nogil=True)
def run_attempts(P, times, units):  # type: ignore[no-untyped-def]
    """Feed a whole arrival sequence to a fresh array-form limiter.

    ``units[k, slot]`` is attempt ``k``'s charge. Returns ``(admitted, retry_after_s,
    rejected_by)`` arrays (one row per attempt). Used by tests and the benchmark.
    """
    n = P.shape[0]
    m = times.shape[0]
    st, log_t, log_u = initial_state(P, 4)
    admitted = np.zeros(m, dtype=np.bool_)
    retry = np.zeros(m)
    rej = np.zeros((m, n), dtype=np.int8)
    for k in range(m):
        log_t, log_u = ensure_log_capacity(st, log_t, log_u)
        a, r = limiter_attempt(P, st, log_t, log_u, times[k], units[k], rej[k])
        admitted[k] = a
        retry[k] = r
    return admitted, retry, rej


# ---------------------------------------------------------------------------------------
# Counter-based random numbers (SplitMix64)
# ---------------------------------------------------------------------------------------

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_TO_UNIT = 2.0 ** -53
# Domain separators, so that session / first-turn / call streams never coincide.
_DOM_START = np.uint64(0x5EED5EED5EED5EED)
_DOM_CALL = np.uint64(0xCA11CA11CA11CA11)


@njit(cache=True, nogil=True, inline="always")
def _mix(z):  # type: ignore[no-untyped-def]
    """SplitMix64 finaliser (Stafford's variant 13): a bijective 64-bit hash."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def _hash2(key, i):  # type: ignore[no-untyped-def]
    """Key of child ``i`` of stream ``key``."""
    return _mix(key ^ _mix(np.uint64(i) * _GAMMA + _GAMMA))


@njit(cache=True, nogil=True, inline="always")
def _unit(key, i):  # type: ignore[no-untyped-def]
    """Uniform [0, 1) number at position ``i`` of stream ``key``."""
    return float(_mix(key + (np.uint64(i) + _ONE) * _GAMMA) >> _S11) * _TO_UNIT


@njit(cache=True, nogil=True, inline="always")
def _draw(d, key, pos, dpar, cval, ccum):  # type: ignore[no-untyped-def]
    """Sample distribution ``d`` from positions ``pos``, ``pos + 1`` of stream ``key``."""
    k = int(dpar[d, DP_KIND])
    p0 = dpar[d, DP_P0]
    if k == D_FIXED:
        return p0
    u = _unit(key, pos)
    p1 = dpar[d, DP_P1]
    if k == D_UNIFORM:
        return p0 + u * (p1 - p0)
    if k == D_UNIFORM_INT:
        return min(p0 + math.floor(u * (p1 - p0 + 1.0)), p1)
    if k == D_EXPONENTIAL:
        return -p0 * math.log1p(-u)
    if k == D_LOGNORMAL:
        z = math.sqrt(-2.0 * math.log1p(-u)) * math.cos(2.0 * math.pi * _unit(key, pos + 1))
        return p0 * math.exp(p1 * z)
    o = int(dpar[d, DP_OFF])
    n = int(dpar[d, DP_LEN])
    for i in range(n):
        if u < ccum[o + i]:
            return cval[o + i]
    return cval[o + n - 1]


@njit(cache=True, nogil=True, inline="always")
def _draw_residual(d, key, dpar, cval, ccum):  # type: ignore[no-untyped-def]
    """Equilibrium residual of distribution ``d``: ``U · X_lb`` with ``X_lb`` length-biased.

    The time to the next renewal seen from a random instant (exact steady-state start
    for cadences and for exponential think times). Uses positions 0..2 of ``key``.
    """
    k = int(dpar[d, DP_KIND])
    p0 = dpar[d, DP_P0]
    p1 = dpar[d, DP_P1]
    u = _unit(key, 0)
    u1 = _unit(key, 1)
    if k == D_FIXED:
        return u * p0
    if k in (D_UNIFORM, D_UNIFORM_INT):
        return u * math.sqrt(p0 * p0 + u1 * (p1 * p1 - p0 * p0))
    if k == D_EXPONENTIAL:
        return -p0 * math.log1p(-u)  # memoryless: the residual is the same exponential
    if k == D_LOGNORMAL:
        # Length-biasing a lognormal shifts its log-mean by sigma^2.
        z = math.sqrt(-2.0 * math.log1p(-u1)) * math.cos(2.0 * math.pi * _unit(key, 2))
        return u * p0 * math.exp(p1 * p1 + p1 * z)
    o = int(dpar[d, DP_OFF])
    n = int(dpar[d, DP_LEN])
    total = 0.0
    for i in range(n):
        w = ccum[o + i] - (ccum[o + i - 1] if i > 0 else 0.0)
        total += w * cval[o + i]
    if total <= 0.0:
        return 0.0
    acc = 0.0
    for i in range(n):
        w = ccum[o + i] - (ccum[o + i - 1] if i > 0 else 0.0)
        acc += w * cval[o + i] / total
        if u1 < acc:
            return u * cval[o + i]
    return u * cval[o + n - 1]


@njit(cache=True, nogil=True)
def sample_many(d, key, n, dpar, cval, ccum):  # type: ignore[no-untyped-def]
    """``n`` draws of distribution ``d`` (for tests of the sampler)."""
    out = np.empty(n)
    for i in range(n):
        out[i] = _draw(d, key, 2 * i, dpar, cval, ccum)
    return out


# ---------------------------------------------------------------------------------------
# The event engine
# ---------------------------------------------------------------------------------------

EV_TURN, EV_ATTEMPT, EV_DONE, EV_REJECT, EV_PACE = range(5)
# Charges a long sliding window's log starts with (its steady-state content, spread out).
_SPREAD = 64
F_429, F_FAILED, F_ABORTED, F_MEASURED = 1, 2, 4, 8
# Columns of the instance-node tables: integers (inode) and floats (ifl).
N_KIND, N_PARENT, N_FIRST, N_LAST, N_NEXT, N_PEND, N_SITE, N_ATT = range(8)
X_TIN, X_TCACHED, X_TOUT, X_LAT, X_RA, X_ENQ, X_TROW = range(7)
# Columns of an attempt-trace row (trace mode), then one column per slot: its charge.
(T_T, T_SESSION, T_NODE, T_SITE, T_ATTEMPT, T_TIN, T_TCACHED, T_TOUT, T_ADMITTED,
 T_RETRY_AFTER, T_WAIT, T_JITTER) = range(12)
T_UNITS = 12
# T_WAIT of an admitted attempt; of a rejected one whose call gave up.
WAIT_NONE, WAIT_GAVE_UP = -1.0, -2.0


@intrinsic
def _borrow(typingctx, arr):  # type: ignore[no-untyped-def]
    """A view of ``arr`` without a reference count (no meminfo, no parent object).

    Numba updates an array's reference count atomically whenever a function (inlined or
    not) receives it; in the event loop those updates cost more than the simulation.
    The view shares ``arr``'s data, so the caller must keep ``arr`` itself alive while
    the view is in use (a function argument is kept alive by the caller; see
    :func:`_keep_alive` for arrays allocated in the kernel).
    """
    if not isinstance(arr, nbtypes.Array):
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        return _borrow_codegen(context, builder, sig.args[0], args[0])

    return arr(arr), codegen


def _borrow_codegen(context, builder, arrty, value):  # type: ignore[no-untyped-def]
    src = context.make_array(arrty)(context, builder, value=value)
    dst = context.make_array(arrty)(context, builder)
    for name in ("nitems", "itemsize", "data", "shape", "strides"):
        setattr(dst, name, getattr(src, name))
    dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
    dst.parent = cgutils.get_null_value(dst.parent.type)
    return dst._getvalue()


@intrinsic
def _detach(typingctx, arr):  # type: ignore[no-untyped-def]
    """``(view, owner)``: a :func:`_borrow` view of ``arr`` and the address of its
    meminfo, which now holds one extra reference. Pass ``owner`` to :func:`_release`
    once the view is no longer used. For arrays the kernel replaces as they grow:
    rebinding a reference-counted variable in the event loop would cost reference-count
    updates on every pass, rebinding a view costs none.
    """
    if not isinstance(arr, nbtypes.Array):
        return None
    sig = nbtypes.Tuple((arr, nbtypes.uintp))(arr)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        context.nrt.incref(builder, arr, args[0])
        src = context.make_array(arr)(context, builder, value=args[0])
        view = _borrow_codegen(context, builder, arr, args[0])
        addr = builder.ptrtoint(src.meminfo, context.get_value_type(nbtypes.uintp))
        return context.make_tuple(builder, sig.return_type, (view, addr))

    return sig, codegen


@intrinsic
def _release(typingctx, owner):  # type: ignore[no-untyped-def]
    """Drop the reference :func:`_detach` took (``owner`` is its meminfo address)."""
    if not isinstance(owner, nbtypes.Integer):
        return None

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        fnty = llvmir.FunctionType(llvmir.VoidType(), [cgutils.voidptr_t])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "NRT_decref")
        builder.call(fn, [builder.inttoptr(args[0], cgutils.voidptr_t)])
        return context.get_dummy_value()

    return nbtypes.none(owner), codegen


@njit(cache=True, nogil=True)
def _keep_alive(arrays):  # type: ignore[no-untyped-def]
    """Nothing; passing arrays here keeps them (and views borrowed from them) alive."""
    return len(arrays)


@njit(cache=True, nogil=True, inline="always")
def _hpush(ht, hs, hp, n, t, seq, payload):  # type: ignore[no-untyped-def]
    """Push onto the binary min-heap ordered by (time, sequence number); returns the size.

    The arrays are allocated for the most events that can be pending at once, so they
    never grow (rebinding arrays in the hot loop would cost reference-count updates).
    """
    i = n
    while i > 0:
        par = (i - 1) >> 1
        if ht[par] < t or (ht[par] == t and hs[par] < seq):
            break
        ht[i] = ht[par]
        hs[i] = hs[par]
        hp[i] = hp[par]
        i = par
    ht[i] = t
    hs[i] = seq
    hp[i] = payload
    return n + 1


@njit(cache=True, nogil=True, inline="always")
def _hpop(ht, hs, hp, n):  # type: ignore[no-untyped-def]
    """Pop the earliest event: returns (time, payload, new size)."""
    t0 = ht[0]
    p0 = hp[0]
    n -= 1
    if n > 0:
        t = ht[n]
        s = hs[n]
        p = hp[n]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            if c + 1 < n and (ht[c + 1] < ht[c] or (ht[c + 1] == ht[c] and hs[c + 1] < hs[c])):
                c += 1
            if ht[c] > t or (ht[c] == t and hs[c] > s):
                break
            ht[i] = ht[c]
            hs[i] = hs[c]
            hp[i] = hp[c]
            i = c
        ht[i] = t
        hs[i] = s
        hp[i] = p
    return t0, p0, n


@njit(cache=True, nogil=True, inline="always")
def _expand(root, base, tkey, sprog, sprob, schild, dpar, cval, ccum,  # type: ignore
            site_dist, site_cached, site_maxtok, inode, ifl, ikey, stack):
    """Expand one turn of static program ``root`` into instance nodes from ``base``.

    Draws counts, branches, tokens and latencies at fixed positions of stream ``tkey``
    (depth-first order, so the same key always yields the same turn).
    """
    pos = 0
    ctr = 4  # positions 0..3 are the turn type and the pause
    ordinal = 0
    sp = 1
    stack[0, 0] = root
    stack[0, 1] = -1
    while sp > 0:
        sp -= 1
        s = stack[sp, 0]
        par = stack[sp, 1]
        k = sprog[s, 0]
        if k == S_OPT:
            u = _unit(tkey, ctr)
            ctr += 2
            if u < sprob[s]:
                stack[sp, 0] = sprog[s, 1]
                stack[sp, 1] = par
                sp += 1
            continue
        idx = base + pos
        pos += 1
        inode[idx, N_PARENT] = par
        inode[idx, N_FIRST] = -1
        inode[idx, N_LAST] = -1
        inode[idx, N_NEXT] = -1
        inode[idx, N_PEND] = 0
        if par >= 0:
            if inode[par, N_FIRST] < 0:
                inode[par, N_FIRST] = idx
            else:
                inode[inode[par, N_LAST], N_NEXT] = idx
            inode[par, N_LAST] = idx
            inode[par, N_PEND] += 1
        if k == S_CALL:
            site = sprog[s, 1]
            inode[idx, N_KIND] = I_CALL
            inode[idx, N_SITE] = site
            inode[idx, N_ATT] = 0
            # Whole tokens, as providers count them.
            tin = math.floor(_draw(site_dist[site, SITE_IN], tkey, ctr, dpar, cval, ccum) + 0.5)
            tout = math.floor(_draw(site_dist[site, SITE_OUT], tkey, ctr + 2, dpar, cval, ccum)
                              + 0.5)
            ttft = _draw(site_dist[site, SITE_TTFT], tkey, ctr + 4, dpar, cval, ccum)
            tps = _draw(site_dist[site, SITE_TPS], tkey, ctr + 6, dpar, cval, ccum)
            ctr += 8
            ifl[idx, X_TIN] = tin
            ifl[idx, X_TCACHED] = math.floor(site_cached[site] * tin + 0.5)
            ifl[idx, X_TOUT] = tout
            ifl[idx, X_LAT] = ttft + min(tout, site_maxtok[site]) / tps
            ikey[idx] = _hash2(tkey ^ _DOM_CALL, ordinal)
            ordinal += 1
        elif k == S_SEQ:
            inode[idx, N_KIND] = I_SEQ
            # Push children last-first so the first is expanded (and attached) first.
            for c in range(sprog[s, 2] - 1, -1, -1):
                stack[sp, 0] = schild[sprog[s, 1] + c]
                stack[sp, 1] = idx
                sp += 1
        else:  # S_PAR or S_REP: count copies of the body
            cnt = int(_draw(sprog[s, 2], tkey, ctr, dpar, cval, ccum))
            ctr += 2
            inode[idx, N_KIND] = I_PAR if k == S_PAR else I_SEQ
            for _ in range(cnt):
                stack[sp, 0] = sprog[s, 1]
                stack[sp, 1] = idx
                sp += 1
    return pos


@njit(cache=True, nogil=True)
def replicate(n_sessions, rep_key, t0, t1, max_nodes,  # type: ignore[no-untyped-def]
               turn_cum, turn_root, sprog, sprob, schild, dpar, cval, ccum,
               site_dist, site_cached, site_maxtok, coef, P, cfg, bucket_deficit,
               window_used, trace):
    """Simulate one replication; returns (stats, turn latencies, utilisation units,
    exceeded windows per slot)."""
    # Numba reference-counts arrays: every helper that takes one (inlined or not) costs
    # an atomic increment and decrement, which dominated the event loop. The loop works
    # on borrowed views without a reference count; the owners outlive it (the caller
    # holds the arguments, _keep_alive holds the arrays allocated here).
    turn_cum = _borrow(turn_cum)
    turn_root = _borrow(turn_root)
    sprog = _borrow(sprog)
    sprob = _borrow(sprob)
    schild = _borrow(schild)
    dpar = _borrow(dpar)
    cval = _borrow(cval)
    ccum = _borrow(ccum)
    site_dist = _borrow(site_dist)
    site_cached = _borrow(site_cached)
    site_maxtok = _borrow(site_maxtok)
    coef = _borrow(coef)
    P = _borrow(P)
    trace = _borrow(trace)
    N = n_sessions
    M = max_nodes
    L = P.shape[0]
    pool = N * M
    mode = int(cfg[C_MODE])
    pause_d = int(cfg[C_PAUSE])
    # The steady-state start's p_turn (a fixed distribution) and turn law (see below).
    start_p = dpar[int(cfg[C_START_P]), DP_P0]
    turn_d = int(cfg[C_TURN_LAW])
    max_retries = int(cfg[C_MAX_RETRIES])
    init_delay = cfg[C_INIT_DELAY]
    max_delay = cfg[C_MAX_DELAY]
    jitter = cfg[C_JITTER]
    honour = cfg[C_HONOUR] > 0.0
    max_ra = cfg[C_MAX_RA]
    rej_lat = cfg[C_REJ_LAT]
    abort = cfg[C_ABORT] > 0.0
    pace_rate = cfg[C_PACE_RATE]
    pace_depth = cfg[C_PACE_DEPTH]
    pace_conc = int(cfg[C_PACE_CONC])
    pacing = pace_rate > 0.0 or pace_conc > 0
    sliding = False
    for li in range(L):
        sliding = sliding or int(P[li, P_KIND]) == KIND_SLIDING

    # Instance nodes: session k owns rows [k*M, (k+1)*M) for its current turn.
    inode_o = np.zeros((pool, 8), dtype=np.int64)
    ifl_o = np.zeros((pool, 7))
    ikey_o = np.zeros(pool, dtype=np.uint64)
    stack_o = np.zeros((M + 1, 2), dtype=np.int64)
    wop_o = np.zeros(2 * M + 2, dtype=np.int8)
    wnode_o = np.zeros(2 * M + 2, dtype=np.int64)
    # Calls to attempt at the current instant: one turn's launches, or the pacer's releases.
    now_o = np.zeros(max(M, pool if pacing else 1) + 1, dtype=np.int64)

    s_key_o = np.zeros(N, dtype=np.uint64)
    s_turn_o = np.zeros(N, dtype=np.int64)
    s_start_o = np.zeros(N)
    s_pause_o = np.zeros(N)
    s_flags_o = np.zeros(N, dtype=np.int64)

    st_o, log_t0, log_u0 = loaded_state(P, bucket_deficit, window_used, _SPREAD)
    # Arrays that can grow: held as views plus an owned reference released on growth.
    log_t, log_t_mi = _detach(log_t0)
    log_u, log_u_mi = _detach(log_u0)
    units_o = np.zeros(L)
    rej_o = np.zeros(L, dtype=np.int8)
    util_o = np.zeros(L)
    exceeded_o = np.zeros(L)
    last_exc_o = np.full(L, -1.0e300)

    # Client pacer (fleet-wide): FIFO ring of waiting calls, bucket level, calls in flight.
    qbuf_o = np.zeros(pool if pacing else 1, dtype=np.int64)
    qhead = 0
    qn = 0
    p_level = pace_depth
    p_last = 0.0
    inflight = 0
    wake_pending = False

    stats_o = np.zeros(N_STATS)
    lat, lat_mi = _detach(np.zeros(1024))
    n_lat = 0

    # Pending events: at most one per session (its next turn) or per call (its attempt,
    # answer or retry), plus the pacer's wake-up.
    hcap = N * M + N + 2
    ht_o = np.empty(hcap)
    hs_o = np.empty(hcap, dtype=np.int64)
    hp_o = np.empty(hcap, dtype=np.int64)
    inode = _borrow(inode_o)
    ifl = _borrow(ifl_o)
    ikey = _borrow(ikey_o)
    stack = _borrow(stack_o)
    wop = _borrow(wop_o)
    wnode = _borrow(wnode_o)
    now = _borrow(now_o)
    s_key = _borrow(s_key_o)
    s_turn = _borrow(s_turn_o)
    s_start = _borrow(s_start_o)
    s_pause = _borrow(s_pause_o)
    s_flags = _borrow(s_flags_o)
    st = _borrow(st_o)
    units = _borrow(units_o)
    rej = _borrow(rej_o)
    util = _borrow(util_o)
    exceeded = _borrow(exceeded_o)
    last_exc = _borrow(last_exc_o)
    qbuf = _borrow(qbuf_o)
    stats = _borrow(stats_o)
    ht = _borrow(ht_o)
    hs = _borrow(hs_o)
    hp = _borrow(hp_o)
    hn = 0
    seq = 0
    n_tr = 0
    for k in range(N):
        sk = _hash2(rep_key, k)
        s_key[k] = sk
        # Steady-state start (the C engine's rule, capacity.model.workload.steady_phase,
        # ported when it changed so the two engines still compare bit for bit): mid-turn
        # with probability p_turn (what is left of the turn in progress, an equilibrium
        # residual of the turn's law, then a whole pause), else an equilibrium residual of
        # the pause.
        k1 = _hash2(sk ^ _DOM_START, 1)
        if _unit(k1, 0) < start_p:
            first = (_draw_residual(turn_d, _hash2(sk ^ _DOM_START, 2), dpar, cval, ccum)
                     + _draw(pause_d, k1, 2, dpar, cval, ccum))
        else:
            first = _draw_residual(pause_d, _hash2(sk ^ _DOM_START, 0), dpar, cval, ccum)
        hn = _hpush(ht, hs, hp, hn, first, seq, k * 8 + EV_TURN)
        seq += 1

    measured_open = 0
    while hn > 0:
        t, payload, hn = _hpop(ht, hs, hp, hn)
        if t >= t1 and measured_open == 0:
            break
        ev = payload & 7
        x = payload >> 3
        sp = 0
        n_now = 0
        dispatch = False
        if ev == EV_TURN:
            tkey = _hash2(s_key[x], s_turn[x])
            u = _unit(tkey, 0)
            tt = 0
            while tt < turn_cum.shape[0] - 1 and u >= turn_cum[tt]:
                tt += 1
            s_pause[x] = _draw(pause_d, tkey, 2, dpar, cval, ccum)
            base = x * M
            _expand(turn_root[tt], base, tkey, sprog, sprob, schild, dpar, cval, ccum,
                    site_dist, site_cached, site_maxtok, inode, ifl, ikey, stack)
            s_start[x] = t
            s_flags[x] = 0
            if t0 <= t < t1:
                s_flags[x] = F_MEASURED
                measured_open += 1
            wop[0] = 0
            wnode[0] = base
            sp = 1
        elif ev == EV_ATTEMPT:  # a retry, after its backoff
            now[0] = x
            n_now = 1
        elif ev == EV_DONE:
            n = x
            if t0 <= t < t1:
                stats[K_GOOD_WINDOW] += 1
            if pacing:
                inflight -= 1
                dispatch = True
            wop[0] = 1
            wnode[0] = n
            sp = 1
        elif ev == EV_REJECT:
            n = x
            k = inode[n, N_ATT]  # the next attempt would be retry number k
            row = int(ifl[n, X_TROW])
            if k <= max_retries:
                ra = ifl[n, X_RA]
                if honour and 0.0 < ra <= max_ra:
                    d = ra
                else:
                    d = min(init_delay * 2.0 ** (k - 1), max_delay)
                    d *= 1.0 - jitter * _unit(ikey[n], k)
                if row >= 0:
                    trace[row, T_WAIT] = d
                    trace[row, T_JITTER] = _unit(ikey[n], k)
                hn = _hpush(ht, hs, hp, hn, t + d, seq, n * 8 + EV_ATTEMPT)
                seq += 1
            else:
                if row >= 0:
                    trace[row, T_WAIT] = WAIT_GAVE_UP
                s = n // M
                s_flags[s] |= F_FAILED
                if abort:
                    s_flags[s] |= F_ABORTED
                if (s_flags[s] & F_MEASURED) != 0:
                    stats[K_CALLS_FAILED] += 1
                if pacing:
                    inflight -= 1
                    dispatch = True
                wop[0] = 1
                wnode[0] = n
                sp = 1
        else:  # EV_PACE
            wake_pending = False
            dispatch = True

        # Walk the turn's tree: START launches a node, COMPLETE propagates an end upwards.
        while sp > 0:
            sp -= 1
            n = wnode[sp]
            s = n // M
            if wop[sp] == 0:
                kd = inode[n, N_KIND]
                if kd == I_CALL:
                    if (s_flags[s] & F_MEASURED) != 0:
                        stats[K_CALLS] += 1
                    if pacing:
                        qbuf[(qhead + qn) % qbuf.shape[0]] = n
                        qn += 1
                        ifl[n, X_ENQ] = t
                        dispatch = True
                    else:
                        now[n_now] = n
                        n_now += 1
                elif kd == I_SEQ:
                    c = inode[n, N_FIRST]
                    if c >= 0 and (s_flags[s] & F_ABORTED) == 0:
                        wop[sp] = 0
                        wnode[sp] = c
                    else:
                        wop[sp] = 1
                        wnode[sp] = n
                    sp += 1
                else:  # I_PAR: launch every copy at this instant
                    c = inode[n, N_FIRST]
                    if c < 0:
                        wop[sp] = 1
                        wnode[sp] = n
                        sp += 1
                    while c >= 0:
                        wop[sp] = 0
                        wnode[sp] = c
                        sp += 1
                        c = inode[c, N_NEXT]
            else:
                p = inode[n, N_PARENT]
                if p < 0:  # the turn has ended
                    fl = s_flags[s]
                    if (fl & F_MEASURED) != 0:
                        measured_open -= 1
                        stats[K_TURNS] += 1
                        if (fl & F_429) != 0:
                            stats[K_TURNS_429] += 1
                        if (fl & F_FAILED) != 0:
                            stats[K_TURNS_FAILED] += 1
                        if n_lat == lat.shape[0]:
                            nl, nl_mi = _detach(np.empty(2 * n_lat))
                            nl[:n_lat] = lat
                            _release(lat_mi)
                            lat, lat_mi = nl, nl_mi
                        lat[n_lat] = t - s_start[s]
                        n_lat += 1
                    if t0 <= t < t1:
                        stats[K_TURNS_WINDOW] += 1
                    # think time runs from the end; a cadence from the start (unless late)
                    nxt = t + s_pause[s] if mode == 0 else max(s_start[s] + s_pause[s], t)
                    s_turn[s] += 1
                    hn = _hpush(ht, hs, hp, hn, nxt, seq, s * 8 + EV_TURN)
                    seq += 1
                elif inode[p, N_KIND] == I_SEQ:
                    nx = inode[n, N_NEXT]
                    if nx >= 0 and (s_flags[s] & F_ABORTED) == 0:
                        wop[sp] = 0
                        wnode[sp] = nx
                    else:
                        wop[sp] = 1
                        wnode[sp] = p
                    sp += 1
                else:
                    inode[p, N_PEND] -= 1
                    if inode[p, N_PEND] == 0:
                        wop[sp] = 1
                        wnode[sp] = p
                        sp += 1

        # Release queued calls the pacer now allows, first come first served.
        if dispatch and pacing:
            while qn > 0:
                if pace_conc > 0 and inflight >= pace_conc:
                    break
                if pace_rate > 0.0:
                    if t > p_last:
                        p_level = min(pace_depth, p_level + (t - p_last) * pace_rate)
                        p_last = t
                    if p_level < 1.0:
                        if not wake_pending:
                            wake = t + (1.0 - p_level) / pace_rate + WAKE_EPSILON_S
                            hn = _hpush(ht, hs, hp, hn, wake, seq, EV_PACE)
                            seq += 1
                            wake_pending = True
                        break
                    p_level -= 1.0
                n = qbuf[qhead]
                qhead = (qhead + 1) % qbuf.shape[0]
                qn -= 1
                inflight += 1
                if (s_flags[n // M] & F_MEASURED) != 0:
                    stats[K_PACE_WAIT] += t - ifl[n, X_ENQ]
                now[n_now] = n
                n_now += 1

        # Send the attempts due now (launched calls, released calls, retries), in order.
        for ia in range(n_now):
            n = now[ia]
            s = n // M
            site = inode[n, N_SITE]
            mt = site_maxtok[site]
            for li in range(L):
                u_ = coef[site, li, 0] + coef[site, li, 1] * ifl[n, X_TIN]
                u_ -= coef[site, li, 2] * ifl[n, X_TCACHED]
                u_ += coef[site, li, 3] * min(ifl[n, X_TOUT], mt)
                if coef[site, li, 4] > 0.0:
                    u_ += coef[site, li, 4] * mt
                units[li] = u_
            if sliding and log_full(st, log_t.shape[1]):
                new_t, new_u = grow_logs(st, log_t, log_u)
                _release(log_t_mi)
                _release(log_u_mi)
                log_t, log_t_mi = _detach(new_t)
                log_u, log_u_mi = _detach(new_u)
            admitted, ra = limiter_attempt(P, st, log_t, log_u, t, units, rej)
            inode[n, N_ATT] += 1
            stats[K_ATTEMPTS_ALL] += 1
            ifl[n, X_TROW] = -1.0
            if n_tr < trace.shape[0]:  # trace mode: record the attempt
                ifl[n, X_TROW] = n_tr
                trace[n_tr, T_T] = t
                trace[n_tr, T_SESSION] = s
                trace[n_tr, T_NODE] = n
                trace[n_tr, T_SITE] = site
                trace[n_tr, T_ATTEMPT] = inode[n, N_ATT]
                trace[n_tr, T_TIN] = ifl[n, X_TIN]
                trace[n_tr, T_TCACHED] = ifl[n, X_TCACHED]
                trace[n_tr, T_TOUT] = ifl[n, X_TOUT]
                trace[n_tr, T_ADMITTED] = 1.0 if admitted else 0.0
                trace[n_tr, T_RETRY_AFTER] = ra
                trace[n_tr, T_WAIT] = WAIT_NONE
                for li in range(L):
                    trace[n_tr, T_UNITS + li] = units[li]
                n_tr += 1
            elif trace.shape[0] > 0:
                n_tr = trace.shape[0] + 1  # full: the caller sees the overflow
            meas = (s_flags[s] & F_MEASURED) != 0
            inwin = t0 <= t < t1
            if meas:
                stats[K_ATTEMPTS] += 1
            if admitted:
                if inwin:
                    for li in range(L):
                        util[li] += units[li]
                hn = _hpush(ht, hs, hp, hn, t + ifl[n, X_LAT], seq, n * 8 + EV_DONE)
                seq += 1
            else:
                s_flags[s] |= F_429
                if meas:
                    stats[K_REJECTED] += 1
                for li in range(L):
                    if rej[li] != 0 and int(P[li, P_KIND]) == KIND_FIXED:
                        w = P[li, P_WINDOW]
                        off = P[li, P_OFFSET]
                        kw = math.floor((t + off) / w)
                        start = kw * w - off
                        if start >= t0 and start + w <= t1 and last_exc[li] != kw:
                            exceeded[li] += 1
                            last_exc[li] = kw
                ifl[n, X_RA] = ra
                hn = _hpush(ht, hs, hp, hn, t + rej_lat, seq, n * 8 + EV_REJECT)
                seq += 1
    # The owners of the borrowed views stay alive up to here.
    _keep_alive((inode_o, ifl_o, ikey_o, stack_o, wop_o, wnode_o, now_o, s_key_o, s_turn_o,
                 s_start_o, s_pause_o, s_flags_o, st_o, units_o, rej_o, util_o, exceeded_o,
                 last_exc_o, qbuf_o, stats_o, ht_o, hs_o, hp_o))
    latencies = lat[:n_lat].copy()
    _release(lat_mi)
    _release(log_t_mi)
    _release(log_u_mi)
    return stats_o, latencies, util_o, exceeded_o, n_tr
