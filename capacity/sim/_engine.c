/* capacity.sim._engine: the simulator's event loop, compiled when the package is built.
 *
 * Plain C with the CPython and numpy C APIs: the module is built by setuptools from this
 * one file and needs only numpy's headers, so an install compiles nothing at run time,
 * writes no cache and works from a read-only location. Why not numba (the engine before
 * this one): a JIT compile of ~20 s CPU on the first run, a cache that must be writable
 * and that misses edits in other files, 208 MB of numba + llvmlite, and reference-count
 * workarounds written as LLVM intrinsics. Why not Cython: measured on the same sampler
 * loops (benchmarks/bench_cython.py) it gives the same numbers at the same speed, but
 * adds a code generator to the build (1.1 MB of generated C for a 40-line .pyx) while the
 * loop itself touches no Python object; plain C keeps every floating-point operation in
 * view, which the twin proof needs.
 *
 * Every rule here is a twin of a plain-Python definition, transcribed operation for
 * operation so that floating-point results are bit-identical (the build passes
 * -ffp-contract=off: a fused multiply-add would round differently):
 *   - the array limiter (lim_wait, lim_charge, lim_attempt) of capacity.limits.Limiter;
 *   - the retry rule (EV_REJECT below) of capacity.model.retry.RetryPolicy;
 *   - the client pacer (dispatch below) of capacity.model.pacing.Pacer;
 *   - the router (rt_cands, rt_pick, rt_record, rt_usage and the outcome in the send
 *     loop) of capacity.model.routing.Router and CallPath, for profiles with routes.
 * tests/test_twins.py replays the engine's attempt trace through those definitions and
 * checks every deployment chosen, charge, decision, retry-after, next step and wait for
 * exact equality. The random
 * streams (SplitMix64, counter-based: session k's turn j is a hash of (seed, k, j)) and
 * the event order are those of the numba engine, whose results this one reproduces bit
 * for bit (benchmarks/bench_engine.py checks it).
 *
 * Layout constants (column indices, codes) are the ones of capacity/sim/kernels.py;
 * `layout()` returns this file's values so kernels.py refuses a stale build.
 *
 * Event queue: a calendar queue (Brown 1988): time-sorted bucket lists, threaded through
 * the owners' records (an owner has at most one pending event: a session its next turn,
 * a call its attempt / answer / retry, the pacer its wake-up), four buckets per pending
 * event, each record holding its successor, so a push or a pop touches only the records
 * it links (a push into the middle of a list, rare, the ones it walks). It is resized and
 * re-timed as it runs. Equal times leave in insertion order, which is exactly the
 * (time, sequence) order of a binary heap, so the choice of queue changes no result;
 * `queue=1` selects the binary heap (kept for the benchmark that compares them: the
 * calendar queue is 1.1-1.6x faster at 10 sessions and 2-3x at 10^5-10^6). The loop
 * compiled for the fast case below CQ_AHEAD_MIN sessions has its own copy of the calendar
 * queue (cq_plain: q_push_p, q_pop_p), the same buckets and order without the heap, the
 * look-ahead or the pacer.
 *
 * Session populations (optional): each session runs its population's pacing and turn
 * mix (a row of ptab; sessions in contiguous blocks), and per-population counters and
 * latencies are kept beside the totals. Without them every session is the profile's one
 * kind, with exactly the draws it had before populations existed.
 *
 * Per-session state is one 64-byte record (one cache line); the instance nodes of a turn
 * (one 64-byte line each; what only 429s, the pacer, traces and routes read is in side
 * arrays) live in a block taken from a pool when the turn starts and returned when it
 * ends, so memory grows with the turns in progress, not with N times the largest turn;
 * the pool's address space is reserved at once so it grows without moving. From
 * CQ_AHEAD_MIN sessions up, when every turn type has a template, a node is 32 bytes
 * (NodeC: two to a line; its links from the template, its draws made when it is sent).
 * There too the queue prefetches the records of the events about to be popped and
 * holds each push back until its bucket has been fetched (cq_ahead, q_push): there the
 * loop is bound by cache misses, and overlapping them changes no decision.
 * From 2^(CQ_EPOCH+2) buckets up, a push due beyond the next epoch (2^CQ_EPOCH buckets)
 * is appended to that epoch's buffer and linked when the pops near it (cq_drain), so the
 * calendar itself is a ring of a few epochs that stays in cache. In the loop compiled for
 * the fast case (q_push_b, q_pop_b) the queue is in sorted mode instead: the buffers hold
 * each push's time beside its id (QEnt), an epoch is sorted into an array when the pops
 * near it (arr_drain) and popped from there, so no record is linked or read by the queue
 * (arr_pop: the events' records are prefetched a few pops ahead, exactly).
 *
 * The GIL is released while a replication runs: threads run replications on separate
 * cores.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#ifndef NPY_NO_DEPRECATED_API
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#endif
#include <numpy/arrayobject.h>

#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#endif
#ifndef CQ_FRAC
#define CQ_FRAC 16 /* the gap is measured over the earliest 1/CQ_FRAC of the records */
#endif
#ifndef CQ_ROOM
#define CQ_ROOM 4 /* buckets per pending record (fewer records share a bucket: a push */
#endif              /* rarely walks a list, and every record walked is a cache miss) */
#ifndef CQ_WIDTH
#define CQ_WIDTH 0.25 /* bucket width in mean gaps between the earliest records */
#endif

#ifndef CQ_AHEAD_REC
#define CQ_AHEAD_REC 32 /* a pop prefetches the first record of the buckets this far ahead */
#endif
#ifndef CQ_AHEAD_SES
#define CQ_AHEAD_SES 12 /* ... and, this far ahead, the session of a call's record */
#endif
#ifndef CQ_DEFER
#define CQ_DEFER 8 /* pushes held back while their bucket is fetched (a power of two) */
#endif
#ifndef CQ_AHEAD_KIDS
#define CQ_AHEAD_KIDS 4 /* ... and the nodes after it in its turn's block */
#endif
#ifndef CQ_AHEAD_MIN
#define CQ_AHEAD_MIN 65536 /* sessions from which the queue prefetches (see cq_ahead) */
#endif
/* Epochs of 512 buckets (~130 records at 4 buckets per record; 8,192, then 2,048 before):
 * a record the drain reads waits about 80 pops for its pop instead of ~270, so it is still
 * in the 512 kB L2 more often (10^6 sessions, cachegrind with this machine's L2 as the
 * last level: the pop's second miss 0.31 -> 0.14 lines per attempt, independent workload;
 * 0.21 -> 0.10, web-research). Far pushes go to coarse spans (co_split), so more epochs
 * cost no more random buffer ends. Spans of 256 epochs (2^17 buckets, as 64 epochs of
 * 2,048 were): with 64 of 512 the spans' appends and co_split cost 0.12 lines per attempt
 * more than before the shorter epochs; at 256, 3.87 -> 3.75 lines and 600 -> 590
 * instructions per attempt (independent, 10^6 sessions, cachegrind as above), 3.24 -> 3.20
 * and 725 -> 722 (web-research). */
#ifndef CQ_EPOCH
#define CQ_EPOCH 9 /* log2 of the buckets per epoch (see cq_drain) */
#endif
#ifndef CQ_COARSE
#define CQ_COARSE 8 /* log2 of the epochs per coarse span (see co_split) */
#endif
#ifndef CQ_ARENA
#define CQ_ARENA 192 /* bytes of address space per session for the epochs' buffers */
#endif              /* (12-byte entries in sorted mode: at 64, malloc took over at 10^6) */
#ifndef CQ_DRAIN_PF
#define CQ_DRAIN_PF 16 /* a drain prefetches the record this many entries ahead */
#endif
#ifndef CQ_DRAIN_PARTNERS
#define CQ_DRAIN_PARTNERS 0 /* 1: a drain prefetches what each record's event reads */
#endif
#define CQ_MARGIN (2 * CQ_AHEAD_REC) /* an epoch is drained this many buckets before */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#define PREFETCHW(p) __builtin_prefetch(p, 1)
#else
#define PREFETCH(p) ((void)0)
#define PREFETCHW(p) ((void)0)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define ALWAYS_INLINE __forceinline
#else
#define ALWAYS_INLINE inline
#endif

/* OPAQUE(v): the compiler no longer knows v's value at this point (an empty asm that
 * "changes" it), so what is computed from v is computed here, not hoisted out of a loop. */
#if defined(__GNUC__) || defined(__clang__)
#define OPAQUE(v) __asm__ volatile("" : "+r"(v))
#else
#define OPAQUE(v) ((void)0)
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- layout (mirrors capacity/sim/kernels.py) ------------------------------------- */
enum { D_FIXED, D_UNIFORM, D_UNIFORM_INT, D_EXPONENTIAL, D_LOGNORMAL, D_CHOICE };
enum { S_CALL, S_SEQ, S_PAR, S_OPT, S_REP };
enum { I_CALL, I_SEQ, I_PAR };
/* A node's kind byte (Ev.nkind): its kind (I_*) and flags, so that the walk of a turn
 * reads neither its parent nor its session on the common path: the parent is a sequence
 * (fixed at expansion); it is the last step of the turn's root, a sequence (fixed: its
 * end ends the turn, and the walk does not read the root); its end never ends the turn
 * (fixed by the templates: the look-ahead does not fetch its session for it); the turn is
 * measured (set when the node starts). */
enum { NK_KIND = 0x03, NK_NOEND = 0x04, NK_REND = 0x08, NK_PSEQ = 0x10, NK_MEAS = 0x20 };
enum { DP_KIND, DP_P0, DP_P1, DP_OFF, DP_LEN, DP_NCOL };
enum { SITE_IN, SITE_OUT, SITE_TTFT, SITE_TPS };
enum { C_MODE, C_PAUSE, C_MAX_RETRIES, C_INIT_DELAY, C_MAX_DELAY, C_JITTER, C_HONOUR,
       C_MAX_RA, C_REJ_LAT, C_ABORT, C_PACE_RATE, C_PACE_DEPTH, C_PACE_CONC, C_START_P,
       C_TURN_LAW, C_NCFG };
enum { K_TURNS, K_TURNS_429, K_TURNS_FAILED, K_CALLS, K_CALLS_FAILED, K_ATTEMPTS,
       K_REJECTED, K_GOOD_WINDOW, K_TURNS_WINDOW, K_PACE_WAIT, K_ATTEMPTS_ALL, K_SENDS,
       K_SPILLS, K_FALLBACKS, K_UNAVAILABLE, N_STATS };
enum { KIND_FIXED, KIND_SLIDING, KIND_BUCKET };
enum { P_KIND, P_ALLOW, P_WINDOW, P_RATE, P_COUNTREJ, P_OFFSET, P_NCOL };
enum { S_WIN, S_COUNT, S_LEVEL, S_LAST, S_HEAD, S_SIZE, S_SUM, S_NCOL };
enum { T_T, T_SESSION, T_NODE, T_SITE, T_ATTEMPT, T_TIN, T_TCACHED, T_TOUT, T_ADMITTED,
       T_RETRY_AFTER, T_WAIT, T_JITTER, T_DEP, T_U, T_TURN_U, T_NEXT, T_LAT, T_UNITS };
/* Routing (see capacity.model.routing): policy codes, columns of the per-route table,
 * the cooldown vector, per-deployment counters and the next step after an outcome. */
enum { POL_WEIGHTED, POL_ROUND_ROBIN, POL_LEAST_BUSY, POL_USAGE_BASED, POL_PRIORITY };
enum { RL_POLICY, RL_SPILLS, RL_PER_TURN, RL_OFF, RL_LEN, RL_ROLL_ALL, RL_NCOL };
enum { RC_ON, RC_THRESHOLD, RC_MIN_CALLS, RC_WINDOW, RC_SECONDS, RC_NCOL };
enum { DS_SENT, DS_ADMITTED, DS_REJECTED, DS_SPILLED, DS_NCOL };
enum { NX_START = -1, NX_DONE, NX_SPILL, NX_RETRY, NX_FALLBACK, NX_FAIL };
/* Session populations: columns of the per-population table; per-population counters are
 * the first PS_NCOL replication statistics (K_TURNS .. K_TURNS_WINDOW). */
enum { PP_MODE, PP_PAUSE, PP_TURN_OFF, PP_TURN_LEN, PP_START_P, PP_TURN_LAW, PP_NCOL };
#define PS_NCOL K_PACE_WAIT
#define MAX_ROUTE 32 /* deployments per route (a call's tried set is a 32-bit mask) */
enum { EV_TURN, EV_ATTEMPT, EV_DONE, EV_REJECT, EV_PACE };
enum { W_NONE, W_START, W_COMPLETE }; /* the walk an event starts (replicate_impl) */
enum { F_429 = 1, F_FAILED = 2, F_ABORTED = 4, F_MEASURED = 8 };

#define MIN_WAIT 1e-9       /* twin of capacity.limits.meters.MIN_WAIT */
#define WAKE_EPSILON_S 1e-9 /* twin of capacity.model.pacing.WAKE_EPSILON_S */
#define WAIT_NONE (-1.0)
#define WAIT_GAVE_UP (-2.0)
#define SPREAD 64 /* charges a sliding window's log starts with */

/* Set by stop(True) (the driver's Ctrl-C handler): running replications return at once,
 * the GIL released as they run (a signal reaches Python only between bytecodes). */
static volatile sig_atomic_t g_stop = 0;

/* ---- counter-based random numbers (SplitMix64) ------------------------------------ */
#define GAMMA 0x9E3779B97F4A7C15ULL
#define DOM_START 0x5EED5EED5EED5EEDULL
#define DOM_CALL 0xCA11CA11CA11CA11ULL
#define DOM_ROUTE 0x2007E2007E2007E2ULL /* routing draws: u per choice, turn_u per turn */
#define DOM_LAT 0x1A7E1A7E1A7E1A7EULL   /* a routed call's latency on its deployment */
#define DOM_POP 0x9090909090909090ULL   /* session streams of populations after the first */

static ALWAYS_INLINE uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* Key of child i of stream key. */
static ALWAYS_INLINE uint64_t hash2(uint64_t key, uint64_t i) { return mix64(key ^ mix64(i * GAMMA + GAMMA)); }
/* Uniform [0, 1) number at position i of stream key. */
static inline double unit01(uint64_t key, uint64_t i) {
    return (double)(mix64(key + (i + 1) * GAMMA) >> 11) * 0x1p-53;
}
/* unit01(key, i) with g = (i + 1) * GAMMA made beforehand (a turn template's draws). */
static ALWAYS_INLINE double unit01g(uint64_t key, uint64_t g) {
    return (double)(mix64(key + g) >> 11) * 0x1p-53;
}
/* unit01g(key, g) * 2^53: the draw's 53-bit integer, as a double (exact). A template's
 * uniform draw p0 + unit01g(key, g) * span is made as p0 + mant53(key, g) * (span * 2^-53):
 * the same double whenever span * 2^-53 is exact and normal, or span is 0 (span53_ok), as
 * a power of two scales before or after a rounding alike (no underflow, no overflow) — one
 * multiplication fewer per draw. */
static ALWAYS_INLINE double mant53(uint64_t key, uint64_t g) { return (double)(mix64(key + g) >> 11); }
static inline int span53_ok(double span) {
    return span == 0.0 || (isfinite(span) && fabs(span) >= 0x1p-960);
}

/* floor(x), bit for bit, without a libm call (baseline x86-64 has no rounding
 * instruction, so the compiler calls floor() through the PLT: ~8 % of the loop). */
static inline double ffloor(double x) {
    /* positive (token counts, window numbers): truncation is the floor, +0.0 below 1 */
    if (__builtin_expect(x > 0.0 && x < 4503599627370496.0, 1)) return (double)(int64_t)x;
    if (!(fabs(x) < 4503599627370496.0)) return x; /* |x| >= 2^52, inf, NaN: integral */
    double r = (double)(int64_t)x;                  /* rounds toward zero */
    if (r > x) r -= 1.0;
    return r == 0.0 ? x * 0.0 : r; /* ffloor(-0.0) is -0.0, ffloor(0.3) is +0.0 */
}

/* Memory for the loop's big arrays (sessions, calendar buckets), aligned to a cache
 * line so that a 64-byte session record is one line; zeroed if asked. From 4 MB up it is
 * aligned to 2 MB and, on Linux, asked for transparent huge pages: at 10^5-10^6 sessions
 * nearly every record an event touches is on another 4 kB page. Released with free(). */
static void *big_alloc(size_t bytes, int zero) {
#if defined(_WIN32)
    return zero ? calloc(1, bytes ? bytes : 1) : malloc(bytes ? bytes : 1);
#else
    size_t align = bytes >= ((size_t)4 << 20) ? ((size_t)2 << 20) : 64;
    size_t sz = (bytes + align - 1) / align * align;
    void *p = NULL;
    if (posix_memalign(&p, align, sz ? sz : align) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align > 64) (void)madvise(p, sz, MADV_HUGEPAGE);
#endif
    if (zero) memset(p, 0, sz);
    return p;
#endif
}

/* Regions of 4 MB or more are kept when released, for the next replication in this
 * process to take (map_reserve): this VM hands memory freed to the kernel back to its host
 * (free page reporting), so a 10^6-session replication otherwise faults its ~0.3-0.5 GB
 * in afresh, each page cleared by the kernel (7-30 ns of system CPU per attempt). Their
 * lengths are rounded up to a power of two (address space only: pages are committed as
 * touched), so a replication of a similar size takes them too. At most MAP_KEEP regions
 * are kept, the oldest unmapped first; trim() unmaps them all. */
#define MAP_KEEP 16
#ifndef MAP_KEEP_MIN
#define MAP_KEEP_MIN ((size_t)4 << 20) /* (smaller in tests: every size then takes them) */
#endif
#if defined(__linux__) && defined(MAP_NORESERVE)
static struct {
    char *p;
    size_t len;
} g_kept[MAP_KEEP];
static int g_n_kept = 0;
static pthread_mutex_t g_kept_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t map_len(size_t bytes) {
    if (bytes < MAP_KEEP_MIN) return bytes;
    size_t len = MAP_KEEP_MIN;
    while (len < bytes) len *= 2;
    return len;
}

/* A kept region of exactly len bytes (NULL: none), taken out of the cache. */
static char *map_take(size_t len) {
    char *p = NULL;
    pthread_mutex_lock(&g_kept_mu);
    for (int i = g_n_kept - 1; i >= 0; i--) /* the latest first: its pages are warmest */
        if (g_kept[i].len == len) {
            p = g_kept[i].p;
            memmove(g_kept + i, g_kept + i + 1, sizeof(g_kept[0]) * (size_t)(g_n_kept - 1 - i));
            g_n_kept--;
            break;
        }
    pthread_mutex_unlock(&g_kept_mu);
#ifdef MAP_POISON /* tests: what the last user left must not matter */
    if (p) memset(p, 0xA5, len);
#endif
    return p;
}
#endif

/* Address space for n bytes of node blocks, reserved at once and committed as pages are
 * first touched (Linux), so the block pool grows without moving: growing by realloc
 * copied up to 0.5 GB at 10^6 sessions. From 4 MB up it starts on a 2 MB boundary and is
 * asked for transparent huge pages (a huge page covers only a whole aligned 2 MB), and
 * may be a kept region (see MAP_KEEP): its contents are then what the last user left, so
 * nothing may read what it did not write. *fresh (if given) is set when the region is new
 * (zero-filled). NULL where not available (then realloc). */
static void *map_reserve_f(size_t bytes, int *fresh) {
#if defined(__linux__) && defined(MAP_NORESERVE)
    const size_t huge = (size_t)2 << 20;
    const int big = bytes >= 2 * huge;
    const int keep = bytes >= MAP_KEEP_MIN;
    bytes = map_len(bytes);
    if (fresh) *fresh = 0;
    if (keep) {
        char *k = map_take(bytes);
        if (k) return k;
    }
    if (fresh) *fresh = 1;
    size_t len = big ? bytes + huge : bytes; /* room to start on a boundary */
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (big) { /* keep [a, a + bytes), a the first boundary; unmap the rest */
        char *a = (char *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
        if (a > p) munmap(p, (size_t)(a - p));
        if (p + len > a + bytes) munmap(a + bytes, (size_t)(p + len - (a + bytes)));
        p = a;
#if defined(MADV_HUGEPAGE)
        (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    }
    return p;
#else
    (void)bytes;
    (void)fresh;
    return NULL;
#endif
}
static void *map_reserve(size_t bytes) { return map_reserve_f(bytes, NULL); }

/* Give back what map_reserve(bytes) returned: kept (see MAP_KEEP) from 4 MB up. */
static void map_release(void *p, size_t bytes) {
#if defined(__linux__) && defined(MAP_NORESERVE)
    if (!p) return;
    size_t len = map_len(bytes);
    if (bytes >= MAP_KEEP_MIN) {
        char *old = NULL;
        size_t old_len = 0;
        pthread_mutex_lock(&g_kept_mu);
        if (g_n_kept == MAP_KEEP) { /* the oldest goes */
            old = g_kept[0].p;
            old_len = g_kept[0].len;
            memmove(g_kept, g_kept + 1, sizeof(g_kept[0]) * (MAP_KEEP - 1));
            g_n_kept--;
        }
        g_kept[g_n_kept].p = p;
        g_kept[g_n_kept++].len = len;
        pthread_mutex_unlock(&g_kept_mu);
        if (old) munmap(old, old_len);
        return;
    }
    munmap(p, len);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Unmap every kept region (see MAP_KEEP). */
static void map_trim(void) {
#if defined(__linux__) && defined(MAP_NORESERVE)
    pthread_mutex_lock(&g_kept_mu);
    for (int i = 0; i < g_n_kept; i++) munmap(g_kept[i].p, g_kept[i].len);
    g_n_kept = 0;
    pthread_mutex_unlock(&g_kept_mu);
#endif
}

static inline double dmin(double a, double b) { return b < a ? b : a; }
static inline double dmax(double a, double b) { return b > a ? b : a; }

typedef struct {
    const double *dpar; /* rows of DP_NCOL */
    const double *cval;
    const double *ccum;
} Dists;

static double draw_any(const Dists *D, int64_t d, uint64_t key, uint64_t pos) {
    const double *r = D->dpar + d * DP_NCOL;
    int k = (int)r[DP_KIND];
    double p0 = r[DP_P0];
    if (k == D_FIXED) return p0;
    double u = unit01(key, pos);
    double p1 = r[DP_P1];
    if (k == D_UNIFORM) return p0 + u * (p1 - p0);
    if (k == D_UNIFORM_INT) return dmin(p0 + ffloor(u * (p1 - p0 + 1.0)), p1);
    if (k == D_EXPONENTIAL) return -p0 * log1p(-u);
    if (k == D_LOGNORMAL) {
        double z = sqrt(-2.0 * log1p(-u)) * cos(2.0 * M_PI * unit01(key, pos + 1));
        return p0 * exp(p1 * z);
    }
    int64_t o = (int64_t)r[DP_OFF], n = (int64_t)r[DP_LEN];
    for (int64_t i = 0; i < n; i++)
        if (u < D->ccum[o + i]) return D->cval[o + i];
    return D->cval[o + n - 1];
}

/* A draw: a fixed value (most token counts and latencies) or a uniform one (the next
 * most common) without the call; the same operations as draw_any. */
static inline double draw(const Dists *D, int64_t d, uint64_t key, uint64_t pos) {
    const double *r = D->dpar + d * DP_NCOL;
    if (r[DP_KIND] == D_FIXED) return r[DP_P0];
    if (r[DP_KIND] == D_UNIFORM) {
        double p0 = r[DP_P0], p1 = r[DP_P1];
        return p0 + unit01(key, pos) * (p1 - p0);
    }
    return draw_any(D, d, key, pos);
}

/* Equilibrium residual of distribution d: U times a length-biased draw (positions 0..2). */
static double draw_residual(const Dists *D, int64_t d, uint64_t key) {
    const double *r = D->dpar + d * DP_NCOL;
    int k = (int)r[DP_KIND];
    double p0 = r[DP_P0], p1 = r[DP_P1];
    double u = unit01(key, 0), u1 = unit01(key, 1);
    if (k == D_FIXED) return u * p0;
    if (k == D_UNIFORM || k == D_UNIFORM_INT) return u * sqrt(p0 * p0 + u1 * (p1 * p1 - p0 * p0));
    if (k == D_EXPONENTIAL) return -p0 * log1p(-u);
    if (k == D_LOGNORMAL) {
        double z = sqrt(-2.0 * log1p(-u1)) * cos(2.0 * M_PI * unit01(key, 2));
        return u * p0 * exp(p1 * p1 + p1 * z);
    }
    int64_t o = (int64_t)r[DP_OFF], n = (int64_t)r[DP_LEN];
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double w = D->ccum[o + i] - (i > 0 ? D->ccum[o + i - 1] : 0.0);
        total += w * D->cval[o + i];
    }
    if (total <= 0.0) return 0.0;
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double w = D->ccum[o + i] - (i > 0 ? D->ccum[o + i - 1] : 0.0);
        acc += w * D->cval[o + i] / total;
        if (u1 < acc) return u * D->cval[o + i];
    }
    return u * D->cval[o + n - 1];
}

/* ---- the array limiter (twin of capacity.limits) ---------------------------------- */
typedef struct {
    const double *P; /* n x P_NCOL */
    double *st;      /* n x S_NCOL */
    double *log_t;   /* n x cap (sliding-window charge times) */
    double *log_u;   /* n x cap (their units) */
    int64_t n, cap;
    int owned_logs;  /* the logs are malloc'd here (and may grow) */
} Lim;

static inline double ceil_ms(double x) {
    if (!isfinite(x)) return INFINITY;
    return (ffloor(x * 1000.0) + 1.0) / 1000.0;
}

static inline void lim_expire(Lim *L, int64_t i, double t, double w) {
    double *s = L->st + i * S_NCOL;
    const double *lt = L->log_t + i * L->cap, *lu = L->log_u + i * L->cap;
    int64_t head = (int64_t)s[S_HEAD], size = (int64_t)s[S_SIZE];
    while (size > 0 && lt[head] + w <= t) {
        s[S_SUM] -= lu[head];
        head = (head + 1) % L->cap;
        size -= 1;
    }
    if (size == 0) s[S_SUM] = 0.0;
    s[S_HEAD] = (double)head;
    s[S_SIZE] = (double)size;
}

/* Twin of Meter.wait_time for slot i (its parameters: row i of PP, L->P or a copy). */
static ALWAYS_INLINE double lim_wait(Lim *L, const double *PP, int64_t i, double t,
                                     double units) {
    if (units <= 0.0) return 0.0;
    const double *p = PP + i * P_NCOL;
    double *s = L->st + i * S_NCOL;
    int kind = (int)p[P_KIND];
    double q = p[P_ALLOW];
    if (kind == KIND_FIXED) {
        double w = p[P_WINDOW], off = p[P_OFFSET];
        double k = ffloor((t + off) / w);
        if (k != s[S_WIN]) {
            s[S_WIN] = k;
            s[S_COUNT] = 0.0;
        }
        if (s[S_COUNT] + units <= q) return 0.0;
        if (units > q) return INFINITY;
        return dmax((k + 1) * w - off - t, MIN_WAIT);
    }
    if (kind == KIND_SLIDING) {
        double w = p[P_WINDOW];
        lim_expire(L, i, t, w);
        if (s[S_SUM] + units <= q) return 0.0;
        if (units > q) return INFINITY;
        const double *lt = L->log_t + i * L->cap, *lu = L->log_u + i * L->cap;
        double remaining = s[S_SUM];
        int64_t j = (int64_t)s[S_HEAD], size = (int64_t)s[S_SIZE];
        for (int64_t c = 0; c < size; c++) {
            remaining -= lu[j];
            if (remaining + units <= q) return dmax(lt[j] + w - t, MIN_WAIT);
            j = (j + 1) % L->cap;
        }
        return INFINITY;
    }
    if (t > s[S_LAST]) {
        s[S_LEVEL] = dmin(q, s[S_LEVEL] + (t - s[S_LAST]) * p[P_RATE]);
        s[S_LAST] = t;
    }
    if (units <= s[S_LEVEL]) return 0.0;
    if (units > q) return INFINITY;
    return dmax((units - s[S_LEVEL]) / p[P_RATE], MIN_WAIT);
}

/* Twin of Meter.charge (state already rolled to t by lim_wait). */
static ALWAYS_INLINE void lim_charge(Lim *L, const double *PP, int64_t i, double t, double units) {
    const double *p = PP + i * P_NCOL;
    double *s = L->st + i * S_NCOL;
    int kind = (int)p[P_KIND];
    if (kind == KIND_FIXED) {
        s[S_COUNT] += units;
    } else if (kind == KIND_SLIDING) {
        if (units > 0.0) {
            int64_t j = ((int64_t)s[S_HEAD] + (int64_t)s[S_SIZE]) % L->cap;
            L->log_t[i * L->cap + j] = t;
            L->log_u[i * L->cap + j] = units;
            s[S_SIZE] += 1.0;
            s[S_SUM] += units;
        }
    } else {
        s[S_LEVEL] -= units;
    }
}

static inline int lim_log_full(const Lim *L) {
    int64_t most = 0;
    for (int64_t i = 0; i < L->n; i++) {
        int64_t sz = (int64_t)L->st[i * S_NCOL + S_SIZE];
        if (sz > most) most = sz;
    }
    return most >= L->cap;
}

/* Double the logs' room, oldest entry first (owned logs only). 0 on success. */
static int lim_grow(Lim *L) {
    int64_t cap = L->cap, ncap = 2 * cap;
    double *nt = calloc((size_t)(L->n * ncap), sizeof(double));
    double *nu = calloc((size_t)(L->n * ncap), sizeof(double));
    if (!nt || !nu) {
        free(nt);
        free(nu);
        return -1;
    }
    for (int64_t i = 0; i < L->n; i++) {
        double *s = L->st + i * S_NCOL;
        int64_t head = (int64_t)s[S_HEAD], size = (int64_t)s[S_SIZE];
        for (int64_t k = 0; k < size; k++) {
            nt[i * ncap + k] = L->log_t[i * cap + (head + k) % cap];
            nu[i * ncap + k] = L->log_u[i * cap + (head + k) % cap];
        }
        s[S_HEAD] = 0.0;
    }
    free(L->log_t);
    free(L->log_u);
    L->log_t = nt;
    L->log_u = nu;
    L->cap = ncap;
    return 0;
}

/* Twin of Limiter.attempt: admitted (1/0); *retry_after rounded up to the next ms. The
 * slots' parameters are read from PP: L->P, or a copy the loop holds (the same values). */
static ALWAYS_INLINE int lim_attempt_n(Lim *L, const double *PP, const int64_t n, double t,
                                       const double *units, int8_t *rejected,
                                       double *retry_after) {
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double w = lim_wait(L, PP, i, t, units[i]);
        rejected[i] = w > 0.0 ? 1 : 0;
        if (w > worst) worst = w;
    }
    if (worst == 0.0) {
        for (int64_t i = 0; i < n; i++)
            if (units[i] > 0.0) lim_charge(L, PP, i, t, units[i]);
        *retry_after = 0.0;
        return 1;
    }
    for (int64_t i = 0; i < n; i++) {
        const double *p = PP + i * P_NCOL;
        if (p[P_COUNTREJ] > 0.0 && units[i] > 0.0) {
            if ((int)p[P_KIND] == KIND_BUCKET) {
                double *s = L->st + i * S_NCOL;
                s[S_LEVEL] = dmax(0.0, s[S_LEVEL] - 1.0);
            } else {
                lim_charge(L, PP, i, t, 1.0);
            }
        }
    }
    *retry_after = ceil_ms(worst);
    return 0;
}

/* lim_attempt_n with the slot count known only at run time (one copy of the code). */
static int lim_attempt(Lim *L, double t, const double *units, int8_t *rejected,
                       double *retry_after) {
    return lim_attempt_n(L, L->P, L->n, t, units, rejected, retry_after);
}

/* Limiter state at t = 0 of a system that has been running (see kernels.loaded_state). */
static int lim_load(Lim *L, const double *P, int64_t n, const double *deficit,
                    const double *used, int64_t spread) {
    int64_t cap = 16;
    while (cap < spread + 16) cap *= 2;
    L->P = P;
    L->n = n;
    L->cap = cap;
    L->owned_logs = 1;
    L->st = calloc((size_t)(n * S_NCOL) + 1, sizeof(double));
    L->log_t = calloc((size_t)(n * cap) + 1, sizeof(double));
    L->log_u = calloc((size_t)(n * cap) + 1, sizeof(double));
    if (!L->st || !L->log_t || !L->log_u) return -1;
    for (int64_t i = 0; i < n; i++) {
        const double *p = P + i * P_NCOL;
        double *s = L->st + i * S_NCOL;
        s[S_WIN] = NAN;
        s[S_LEVEL] = p[P_ALLOW];
        int kind = (int)p[P_KIND];
        double q = p[P_ALLOW];
        if (kind == KIND_BUCKET) {
            s[S_LEVEL] = q - dmin(dmax(deficit[i], 0.0), q);
            continue;
        }
        double u = dmin(dmax(used[i], 0.0), q);
        if (u <= 0.0) continue;
        double w = p[P_WINDOW];
        if (kind == KIND_FIXED) {
            s[S_WIN] = ffloor(p[P_OFFSET] / w);
            s[S_COUNT] = u;
        } else {
            for (int64_t j = 0; j < spread; j++) {
                L->log_t[i * cap + j] = -w + (j + 0.5) * w / spread;
                L->log_u[i * cap + j] = u / spread;
            }
            s[S_HEAD] = 0.0;
            s[S_SIZE] = (double)spread;
            s[S_SUM] = u;
        }
    }
    return 0;
}

static void lim_free(Lim *L) {
    free(L->st);
    if (L->owned_logs) {
        free(L->log_t);
        free(L->log_u);
    }
}

/* ---- event queue ------------------------------------------------------------------ */
/* A pending event, embedded in its owner's record (an owner has at most one). */
typedef struct {
    double t;
    int32_t next;  /* next record in its bucket (-1: last); in the pacer's FIFO, the next
                    * queued call (a queued call has no pending event) */
    int8_t kind;   /* EV_* */
    int8_t nkind;  /* the owner's bytes: a node's kind (I_*) ... */
    uint16_t site; /* ... and a call's site (py_replicate checks that it fits) */
} Ev;

/* A calendar bucket: its list's ends (8 bytes: at 10^6 sessions the calendar has ~4
 * buckets per pending record, and the pops sweep them in order). The ends' times are
 * their records' (a pop reads its record anyway, a push the tail it links after, and the
 * look-ahead prefetches both). */
typedef struct {
    int32_t head, tail;
} Bucket;

/* An epoch's pushes not yet linked (see cq_drain): owner ids in push order. 16 bytes
 * (ids are 32-bit, so a buffer holds fewer than 2^31; ep_grow refuses more): at 10^6
 * sessions a push appends to one of 2,000-4,000 buffers at random, and their heads were
 * 48-96 kB of a 512 kB L2 at 24 bytes. */
typedef struct {
    int32_t *ids;
    int32_t len, cap;
} EpBuf;

/* Sorted mode (see arr_pop): a pending event as the queue keeps it outside its owner's
 * record, 12 bytes (three of an EpBuf's ids). The linked calendar's drain read every
 * record to place it (~1.0 line per attempt from beyond the L2 at 10^6 sessions, waited
 * for ~80 pops before the record's own pop), then linked it through its record and the
 * bucket's last one; with the time in the buffers the drain reads only them, in order. */
typedef struct __attribute__((packed)) {
    double t;
    int32_t id;
} QEnt;
#ifndef CQ_ARR_REC
#define CQ_ARR_REC 8 /* sorted mode: a pop prefetches the record this many pops ahead */
#endif
#ifndef CQ_ARR_SES
#define CQ_ARR_SES 3 /* ... and what its event reads this many ahead (cq_partners) */
#endif
#ifndef CQ_ARR_LOW
#define CQ_ARR_LOW 32 /* the next epoch is sorted in when fewer are left */
#endif

typedef struct {
    Ev ev; /* its next turn */
    uint64_t key;
    int64_t turn;
    double start, pause;
    int32_t blk; /* its turn's node block, -1 between turns */
    int16_t flags;
    int16_t btt; /* the turn type its block was expanded for (-1: none; see free_tag) */
    int64_t pad_; /* one line */
} Session;

/* A call or group instance of a turn: one 64-byte cache line (the node arrays are
 * line-aligned) holding what every event, every walk of the turn's tree and every send
 * reads: the pending event (its spare bytes: the node's kind and call site), the session,
 * the tree links, the attempt count, the latency and the tokens. What only a 429, the
 * pacer, a trace or a route reads lives in side arrays indexed like the nodes (Run: nkey,
 * nra, ntrow, nrt), touched only on those paths: a turn's nodes were 128 bytes each, and
 * at 10^5-10^6 sessions every line a turn touches is a cache miss. */
typedef struct {
    int32_t first, last;
} Kids;
typedef struct {
    Ev ev;        /* its attempt, answer or retry; ev.nkind, ev.site: its kind and site */
    int32_t sess; /* its session (the queue's look-ahead prefetches it from here) */
    int32_t att;  /* a call: attempts sent; a group: children still running */
    uint64_t tkey; /* compact nodes (NodeC) only: its turn's key */
    int32_t parent, next;
    union {
        double lat; /* a call: its latency */
        Kids kids;  /* a group: its first and last child */
    } u;
    double tin, tout; /* a call: whole tokens in and out */
} Node;
/* A compact node (large populations whose turn types all have templates: see Link): a
 * node's first half, 32 bytes, so two share a line. Its tree links are its template's
 * (Link), its tokens and latency drawn from its turn's key when it is sent; ev.site holds
 * its turn type (its site is the template's). At 10^5-10^6 sessions every line a turn
 * touches is a cache miss: a turn of 7 nodes was 7 lines, now 4, and its start no longer
 * writes its calls' draws (web-research, cachegrind at 10^5 sessions: 3.69 -> 2.48 lines
 * per attempt from beyond a 2 MB cache; every templated workload: see replicate_c). */
typedef struct {
    Ev ev;
    int32_t sess, att;
    uint64_t tkey;
} NodeC;
/* A template node's links and what a compact node takes from its template (relative to
 * its block; INT32_MIN: none, so that block + link is negative without a branch):
 * indexed by turn type * block nodes + the node's place. */
typedef struct {
    int32_t parent, next, first; /* a group's first child */
    int32_t c;     /* a call: its ordinal (its lazy key; its plan in the template) */
    uint16_t site; /* a call's site */
    int8_t nkind;  /* the template's kind byte (flags but NK_MEAS) */
    int8_t drawn;  /* a call: 1 if a token count or its latency is drawn (cz_draws) */
    double lat0;   /* a call whose nothing is drawn: its latency (its tokens are fixed) */
} Link;
/* A compact call's draws made once per template (indexed like its Link), so that a send
 * finds them in one place instead of through its template's plan, node and position
 * tables, and makes only its non-fixed draws without a branch per field: v0 holds the
 * values of the fixed fields (whole tokens in and out, first-token time, speed: the
 * template node's, which call_draws made from the same values), and its n draws, all
 * uniform, overwrite their fields — the first ntok token counts (p0 + u span + 0.5,
 * truncated: tpl_ops' safe case), then the others (p0 + u span) — at positions g (unit01g;
 * span holds span * 2^-53, see mant53). n < 0: another law, a token count whose truncation
 * is not its floor, or a span not span53_ok (cz_draws). */
typedef struct {
    double v0[4];
    double maxtok;
    int8_t n, ntok;
    int8_t dst[4];  /* the field each draw sets (SITE_*) */
    uint64_t g[4];
    double p0[4], span[4];
} CzCall;
/* A routed call's CallPath (routed profiles only). */
typedef struct {
    uint32_t tried; /* route entries tried in this round (bit per declared position) */
    int32_t dep;    /* the deployment it is running on (admitted), else -1 */
    int32_t rnd;    /* retries made on the current logical model (CallPath.attempt) */
    int16_t lmp;    /* position of the current logical model in the site's chain */
    int8_t nx;      /* the next step decided at its last outcome (NX_*) */
    int8_t pad_;
} NodeRt;
_Static_assert(sizeof(Node) == 64, "a node is one cache line");
_Static_assert(sizeof(NodeC) == 32 && offsetof(Node, tkey) == offsetof(NodeC, tkey) &&
                   offsetof(Node, att) == offsetof(NodeC, att),
               "a compact node is a node's first half");
_Static_assert(sizeof(NodeRt) == 16, "a route state is 16 bytes");
_Static_assert(sizeof(Session) == 64, "a session is one cache line");

typedef struct {
    /* owners: sessions 0..n_sess-1, the pacer n_sess, node i at n_sess + 1 + i. The
     * pacer's event is in the session record after the last (sess[n_sess].ev), which
     * cq_plain (never run with the pacer) uses as its record due at -inf. */
    Session *sess;
    Node *nodes;
    int64_t n_sess;
    Bucket *bk;      /* head: first (earliest) record, -1 if empty; tail: last record */
    int64_t nb, mask, n, cur;
    int64_t n_grow;  /* more pending records than this: resize at the next pop */
    /* Owner id -> record address: the sessions' (with the pacer's after them) and the
     * nodes' records are both 64 bytes (compact nodes: 32) with the event first, so an
     * owner's event is at base + 64 * id (32 * id), base the sessions' or the nodes'
     * shifted by their first id (EVPs). */
    uintptr_t sbase, nbase;
    uintptr_t bt[2]; /* nbase, sbase: for a select by index (see EVPs) */
    int nsh;         /* log2 of a node's record: 6, or 5 with compact nodes (NodeC) */
    const Link *lk;  /* compact nodes: the templates' links (see Link), else NULL */
    int blk_log;     /* compact nodes: log2 of blk_nodes */
    double inv_w;
    /* self-tuning: cost of pops (empty buckets stepped) and pushes (records walked) */
    int64_t pops, steps, pushes, walks, check_at;
    /* q_pop_b's one test for its slow path: at most check_at, and INT64_MIN while epochs
     * are off or a buffer could not grow (the held-back pushes run only with epochs off),
     * so that its pops test pops >= check_b and n == 0 instead of five fields (cq_layout,
     * the pushes and ep_grow keep it) */
    int64_t check_b;
    int ahead;                    /* prefetch (large populations only: see cq_ahead) */
    int64_t blk_nodes;            /* nodes per turn block (see cq_ahead) */
    int32_t dq[CQ_DEFER];         /* pushes not yet linked, oldest at dh (see q_push) */
    int32_t dh, dn;
    double dmin;                  /* at most the earliest time among them */
    int64_t ahead_rec, ahead_ses; /* buckets up to which the pops have prefetched (compact
                                   * nodes: ahead_rec is the last look-ahead's cur) */
    /* Epochs (large populations: see cq_drain): 2^CQ_EPOCH consecutive buckets; those up
     * to ep_done are linked in the calendar, a push due in a later one waits in its
     * epoch's buffer (ring of ep_mask + 1, which spans the calendar's year). */
    int ep;                 /* on for this layout */
    EpBuf *eb;
    int64_t ep_cap;         /* buffers allocated */
    int64_t ep_mask, ep_done, drain_at, nbuf;
    /* Coarse spans of 2^CQ_COARSE epochs (see co_split): a push due in a span after co_done
     * waits in its span's buffer (cb: a ring of co_mask + 1, after the epochs' in eb) as
     * (id, epoch) pairs; co_done INT64_MAX: no coarse level (too few epochs). */
    EpBuf *cb;
    int64_t co_mask, co_done;
    int oom; /* a buffer could not grow: the next pop fails */
    /* Sorted mode (big fast loop with epochs: arr_ok set by the loop, arr by cq_layout):
     * buffers hold QEnt (time and id), the epochs up to ep_done are sa[sr..sw) sorted by
     * (time, push order); records are not linked (Ev.next unused) */
    int arr_ok, arr;
    QEnt *sa;
    int64_t sr, sw, scap;
    uint16_t *sk;
    QEnt *stmp;
    int64_t skcap;
    /* The buffers' memory (large populations, Linux): taken in order from one region of
     * transparent huge pages (see ep_grow), NULL elsewhere (then malloc). */
    char *ar;
    size_t ar_size, ar_used;
    void *ar_free[48]; /* buffers given back, by size (64 << k ids): a list through each */
    /* binary heap alternative (queue=1): owner ids ordered by (t, seq) */
    int heap;
    int32_t *h;
    int64_t *hseq;
    int64_t seq;
} Queue;

/* An owner's event: one select, no branch (a three-way branch on the owner's kind here
 * mispredicted about once per event: sessions and calls come in random order). Id n_sess
 * is the record after the sessions': the pacer's event, or in cq_plain (never with the
 * pacer) an empty bucket's tail due at -inf. */
static ALWAYS_INLINE Ev *EVPs(const Queue *Q, int32_t id, const int sh) {
    if (sh == 5) { /* two strides: the base and the shift by index (gcc made the two selects
                    * a branch, mispredicted ~0.7 times per attempt on web-research) */
        const unsigned s = (unsigned)(id <= Q->n_sess);
        return (Ev *)(Q->bt[s] + ((uintptr_t)(uint32_t)id << (5 + s)));
    }
    /* (compared as 32-bit: ids are, n_sess < 2^31; a 64-bit compare sign-extends id) */
    const int s = id <= (int32_t)Q->n_sess;
    uintptr_t b = s ? Q->sbase : Q->nbase;
    return (Ev *)(b + ((uintptr_t)(uint32_t)id << (s ? 6 : sh)));
}
/* sh: log2 of a node's record (6: 64 bytes; 5: the compact nodes, see NodeC) */
static inline Ev *EVP(const Queue *Q, int32_t id) { return EVPs(Q, id, 6); }
static inline Ev *EVAT(const Queue *Q, int32_t id) { return EVPs(Q, id, Q->nsh); }

/* A time's bucket number, at most 4e18 (+inf and NaN too). On x86-64 with gcc or clang
 * the clamp is one minsd (x < 4e18 ? x : 4e18, NaN included): gcc compiles the C select
 * to a compare and a branch around the conversion (two instructions more, on every push
 * and pop; the intrinsic _mm_min_sd adds a move). */
static inline int64_t vbucket(const Queue *Q, double t) {
    double x = t * Q->inv_w;
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    __asm__("minsd %1, %0" : "+x"(x) : "xm"(4.0e18));
    return (int64_t)x;
#else
    return x < 4.0e18 ? (int64_t)x : (int64_t)4.0e18;
#endif
}

static inline void cq_insert(Queue *Q, int32_t id) {
    Ev *e = EVAT(Q, id);
    double t = e->t;
    Bucket *B = Q->bk + (vbucket(Q, t) & Q->mask);
    e->next = -1;
    if (B->head < 0) {
        B->head = B->tail = id;
        return;
    }
    Ev *tl = EVAT(Q, B->tail);
    if (tl->t <= t) { /* after every record due at or before t */
        tl->next = id;
        B->tail = id;
        return;
    }
    Ev *h = EVAT(Q, B->head);
    if (t < h->t) {
        e->next = B->head;
        B->head = id;
        return;
    }
    for (;;) { /* stop before the first record due strictly after t (the tail is) */
        Q->walks++;
        Ev *nx = EVAT(Q, h->next);
        if (nx->t > t) {
            e->next = h->next;
            h->next = id;
            return;
        }
        h = nx;
    }
}

static ALWAYS_INLINE void cq_partners(Queue *Q, int32_t h, const int sh);

static inline int ep_in_arena(const Queue *Q, const int32_t *p) {
    return Q->ar && (const char *)p >= Q->ar && (const char *)p < Q->ar + Q->ar_size;
}

/* An epoch's buffer is full: double it (out of line: rare). Large populations take the
 * buffers from the arena, a region of transparent huge pages (a buffer given back is
 * kept for the next one of its size; malloc once the region is used up): at 10^6
 * sessions a push appends to one of ~2,000-4,000 buffers at random, each on its own
 * 4 kB page when malloc'd, so an append was often also a TLB miss. */
static __attribute__((noinline)) int ep_grow(Queue *Q, EpBuf *B) {
    int64_t c = B->cap ? 2 * (int64_t)B->cap : 64;
    if (c > INT32_MAX) {
        Q->oom = 1;
        Q->check_b = INT64_MIN;
        return -1;
    }
    int k = 0; /* c = 64 << k */
    while (((int64_t)64 << k) < c) k++;
    size_t bytes = sizeof(int32_t) * (size_t)c; /* a multiple of 256: lines stay aligned */
    int32_t *p = NULL, *old = B->ids;
    const int old_ar = ep_in_arena(Q, old);
    if (Q->ar && k < 48) {
        if (Q->ar_free[k]) {
            p = Q->ar_free[k];
            Q->ar_free[k] = *(void **)p;
        } else if (bytes <= Q->ar_size - Q->ar_used) {
            p = (int32_t *)(Q->ar + Q->ar_used);
            Q->ar_used += bytes;
        }
    }
    if (p || old_ar) {
        if (!p) p = malloc(bytes);
        if (p && B->len) memcpy(p, old, sizeof(int32_t) * (size_t)B->len);
        if (p && old_ar) { /* kept for the next buffer of its size (k - 1: half of c) */
            *(void **)old = Q->ar_free[k - 1];
            Q->ar_free[k - 1] = old;
        } else if (p) {
            free(old);
        }
    } else {
        p = realloc(old, bytes);
    }
    if (!p) {
        Q->oom = 1;
        Q->check_b = INT64_MIN;
        return -1;
    }
    B->ids = p;
    B->cap = (int32_t)c;
    return 0;
}

/* Append owner id to the buffer of epoch e (not counted in nbuf: see ep_append). */
static ALWAYS_INLINE int ep_put(Queue *Q, int64_t e, int32_t id) {
    EpBuf *B = Q->eb + (e & Q->ep_mask);
    if (__builtin_expect(B->len == B->cap, 0) && ep_grow(Q, B) < 0) return -1;
    B->ids[B->len++] = id;
    return 0;
}

/* A push due in an epoch not linked yet: to its epoch's buffer when its coarse span is
 * split (co_done), else (id, epoch) to its span's buffer. At 10^6 sessions a push due
 * seconds or a think time ahead lands in one of 2,000-4,000 epochs (of 2,048 buckets;
 * 8,000-16,000 of 512 now) at random, and the end of that epoch's buffer was a line from
 * beyond the 512 kB L2 (0.26 per attempt, cachegrind, independent workload), with its
 * head (0.13); the spans' buffer ends are 128-256 lines, in cache, and co_split appends
 * to 2^CQ_COARSE epochs' buffers at a time. An epoch outside [0, 2^31) (a time out of
 * any horizon) goes to its epoch's buffer. Inlined into every push at 10^5-10^6 sessions
 * (most pushes land here): as a call it cost ~4 % of the loop's time there (perf). */
static ALWAYS_INLINE int ep_append(Queue *Q, int64_t e, int32_t id) {
    Q->nbuf++;
    if ((e >> CQ_COARSE) <= Q->co_done || (uint64_t)e > INT32_MAX) return ep_put(Q, e, id);
    EpBuf *B = Q->cb + ((e >> CQ_COARSE) & Q->co_mask);
    if (__builtin_expect(B->len + 2 > B->cap, 0) && ep_grow(Q, B) < 0) return -1;
    B->ids[B->len] = id;
    B->ids[B->len + 1] = (int32_t)e;
    B->len += 2;
    return 0;
}

/* Sorted mode: ep_put and ep_append with the time beside the id (QEnt). */
static ALWAYS_INLINE int ep_put3(Queue *Q, EpBuf *B, int32_t id, double t) {
    if (__builtin_expect(B->len + 3 > B->cap, 0) && ep_grow(Q, B) < 0) return -1;
    QEnt *x = (QEnt *)(B->ids + B->len);
    x->t = t;
    x->id = id;
    B->len += 3;
    return 0;
}
static ALWAYS_INLINE int arr_append(Queue *Q, int64_t e, int32_t id, double t) {
    Q->nbuf++;
    if ((e >> CQ_COARSE) <= Q->co_done || (uint64_t)e > INT32_MAX)
        return ep_put3(Q, Q->eb + (e & Q->ep_mask), id, t);
    return ep_put3(Q, Q->cb + ((e >> CQ_COARSE) & Q->co_mask), id, t);
}
/* co_split in sorted mode: each entry's epoch from its time */
static __attribute__((noinline)) void co_split3(Queue *Q, int64_t c) {
    EpBuf *B = Q->cb + (c & Q->co_mask);
    int32_t *v = B->ids;
    int64_t n = B->len, k = 0;
    for (int64_t i = 0; i < n; i += 3) {
        const QEnt *x = (const QEnt *)(v + i);
        const double t = x->t;
        const int32_t id = x->id;
        const int64_t e = vbucket(Q, t) >> CQ_EPOCH;
        if ((e >> CQ_COARSE) == c) {
            if (ep_put3(Q, Q->eb + (e & Q->ep_mask), id, t) < 0) return;
        } else {
            QEnt *y = (QEnt *)(v + k);
            y->t = t;
            y->id = id;
            k += 3;
        }
    }
    B->len = (int32_t)k;
    Q->co_done = c;
}

/* Move coarse span c's pushes to their epochs' buffers, in push order (the drain of the
 * span's first epoch comes next; everything pushed for an epoch of the span before this
 * is in the span's buffer, everything after goes to the epoch's), keeping those of a
 * span a year (the ring) or more later. */
static __attribute__((noinline)) void co_split(Queue *Q, int64_t c) {
    EpBuf *B = Q->cb + (c & Q->co_mask);
    int32_t *v = B->ids;
    int64_t n = B->len, k = 0;
    for (int64_t i = 0; i < n; i += 2) {
        const int64_t e = v[i + 1];
        if ((e >> CQ_COARSE) == c) {
            if (ep_put(Q, e, v[i]) < 0) return; /* Q->oom: the next pop fails */
        } else {
            v[k++] = v[i];
            v[k++] = (int32_t)e;
        }
    }
    B->len = (int32_t)k;
    Q->co_done = c;
}

/* Link the next epoch's pushes into the calendar, in push order (so equal times keep
 * their insertion order: equal times share an epoch, and everything linked directly into
 * an epoch was pushed after it was drained). Large populations only: a push far ahead
 * otherwise touches a cold bucket and that bucket's last record (two cache misses at
 * 10^6 sessions) and writes both; here it appends to a buffer whose end is in cache,
 * and the drain walks an epoch's records with their reads overlapped, into buckets that
 * are consecutive. Entries of an epoch a year (the buffer ring) or more later stay.
 * (The loop compiled for the fast case runs sorted mode instead: arr_drain.) */
/* One entry of the drain below: linked if due in epoch e, else kept at ids[k] (k: the
 * entries kept so far, returned counted). */
static ALWAYS_INLINE int64_t cq_drain_one(Queue *Q, int32_t *ids, int64_t k, int32_t id,
                                          int64_t e, const int sh) {
    Ev *ev = EVPs(Q, id, sh);
    const int64_t vb = vbucket(Q, ev->t);
    if ((vb >> CQ_EPOCH) == e) {
        cq_insert(Q, id);
        if (CQ_DRAIN_PARTNERS) cq_partners(Q, id, sh); /* what its event reads next */
    } else {
        ids[k++] = id;
    }
    return k;
}
static void cq_drain(Queue *Q) {
    const int sh = Q->nsh;
    int64_t e = Q->ep_done + 1;
    while ((e >> CQ_COARSE) > Q->co_done) co_split(Q, Q->co_done + 1);
    EpBuf *B = Q->eb + (e & Q->ep_mask);
    int32_t *ids = B->ids;
    int64_t n = B->len, k = 0, i = 0;
    /* each record prefetched CQ_DRAIN_PF entries ahead; the last ones without (two loops,
     * not a test per entry) */
    for (; i < n - CQ_DRAIN_PF; i++) {
        PREFETCH(EVPs(Q, ids[i + CQ_DRAIN_PF], sh));
        k = cq_drain_one(Q, ids, k, ids[i], e, sh);
    }
    for (; i < n; i++) k = cq_drain_one(Q, ids, k, ids[i], e, sh);
    Q->nbuf -= n - k;
    B->len = (int32_t)k;
    Q->ep_done = e;
    Q->drain_at = ((e + 1) << CQ_EPOCH) - CQ_MARGIN;
}

/* The k-th smallest of a[0..n) (0-based; a is reordered): the value a full sort would put
 * at k, in O(n) (Hoare's selection; a sort of 10^6 times took ~0.1 s per layout). */
static double kth_smallest(double *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi]; /* median of three */
        double pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                double tmp = a[i];
                a[i] = a[j];
                a[j] = tmp;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

/* Lay out records order[0..m) afresh: room for them, and a bucket width of CQ_WIDTH mean
 * gaps between the earliest of them (Brown's rule, on the records themselves). Records
 * due at equal times must come in queue order: they are inserted in the order given. */
static int cq_layout(Queue *Q, const int32_t *order, int64_t m) {
    int64_t nb = 16;
    while (nb < CQ_ROOM * m) nb *= 2;
    double *ts = malloc(sizeof(double) * (size_t)(m + 1));
    if (!ts) return -1;
    double t_min = INFINITY;
    for (int64_t i = 0; i < m; i++) {
        ts[i] = EVAT(Q, order[i])->t;
        if (ts[i] < t_min) t_min = ts[i];
    }
    double width = 1.0;
    if (m >= 2) {
        int64_t k = m / CQ_FRAC > 64 ? m / CQ_FRAC : (m - 1 < 64 ? m - 1 : 64);
        double gap = (kth_smallest(ts, m, k) - t_min) / (double)k;
        if (gap > 0.0 && isfinite(gap)) width = CQ_WIDTH * gap;
    }
    free(ts);
    /* Epochs: with at least four per year (large populations only). The buffers are
     * empty here (cq_rebuild empties them). The calendar then holds the records of the
     * epochs linked only, less than 2^CQ_EPOCH + CQ_MARGIN buckets ahead of the current
     * one, so its buckets are a ring of a few epochs (nb stays the year the epochs'
     * buffers span): at 10^6 sessions 16 kB instead of 64-128 MB, swept in cache. */
    Q->ep = Q->ahead && !Q->heap && nb >= ((int64_t)4 << CQ_EPOCH) && nb >= 8 * CQ_MARGIN;
    Q->arr = Q->ep && Q->arr_ok;
    Q->sr = Q->sw = 0;
    int64_t nphys = nb;
    if (Q->ep) {
        while (nphys > 16 && nphys / 2 >= ((int64_t)2 << CQ_EPOCH) + 2 * CQ_MARGIN) nphys /= 2;
    }
    free(Q->bk);
    Q->bk = big_alloc(sizeof(Bucket) * (size_t)nphys, 0);
    if (!Q->bk) return -1;
    for (int64_t b = 0; b < nphys; b++) {
        Q->bk[b].head = -1;
        Q->bk[b].tail = (int32_t)Q->n_sess; /* cq_plain: an empty bucket's tail (q_push_p) */
    }
    Q->nb = nb;
    Q->mask = nphys - 1;
    Q->n_grow = 2 * nb / CQ_ROOM;
    Q->inv_w = 1.0 / width;
    Q->n = m;
    Q->cur = m ? vbucket(Q, t_min) : 0; /* vbucket is monotone: the earliest bucket */
    if (Q->ep) {
        int64_t ne = nb >> CQ_EPOCH;
        /* coarse spans: with at least four to the year */
        const int64_t nc = ne >= ((int64_t)4 << CQ_COARSE) ? ne >> CQ_COARSE : 0;
        if (ne + nc > Q->ep_cap) {
            EpBuf *eb = realloc(Q->eb, sizeof(EpBuf) * (size_t)(ne + nc));
            if (!eb) return -1;
            memset(eb + Q->ep_cap, 0, sizeof(EpBuf) * (size_t)(ne + nc - Q->ep_cap));
            Q->eb = eb;
            Q->ep_cap = ne + nc;
        }
        Q->ep_mask = ne - 1;
        /* sorted mode: every record buffered, the first epoch sorted in by the first pop */
        Q->ep_done = (Q->cur >> CQ_EPOCH) - (Q->arr ? 1 : 0);
        Q->drain_at = ((Q->ep_done + 1) << CQ_EPOCH) - CQ_MARGIN;
        Q->cb = Q->eb + ne;
        Q->co_mask = nc - 1;
        /* the next epoch's span is split (a push due in it goes to its epoch's buffer) */
        Q->co_done = nc ? (Q->ep_done + 1) >> CQ_COARSE : INT64_MAX;
    }
    for (int64_t i = 0; i < m; i++) {
        if (Q->arr) {
            const double t = EVAT(Q, order[i])->t;
            if (arr_append(Q, vbucket(Q, t) >> CQ_EPOCH, order[i], t) < 0) return -1;
            continue;
        }
        if (Q->ep) {
            int64_t e = vbucket(Q, EVAT(Q, order[i])->t) >> CQ_EPOCH;
            if (e > Q->ep_done) {
                if (ep_append(Q, e, order[i]) < 0) return -1;
                continue;
            }
        }
        cq_insert(Q, order[i]);
    }
    Q->pops = Q->steps = Q->pushes = Q->walks = 0;
    Q->ahead_rec = Q->ahead_ses = INT64_MIN;
    Q->check_at = m > 4096 ? m : 4096;
    Q->check_b = Q->ep && !Q->oom ? Q->check_at : INT64_MIN;
    return 0;
}

/* Re-lay the pending records (resized, re-timed). */
static int cq_rebuild(Queue *Q) {
    int64_t n = Q->n, m = 0;
    int32_t *order = malloc(sizeof(int32_t) * (size_t)(n + 1));
    if (!order) return -1;
    /* From the current bucket on: within a bucket records are in queue order, and equal
     * times share a bucket, so equal times keep their order. */
    if (Q->arr) {
        for (int64_t i = Q->sr; i < Q->sw; i++) order[m++] = Q->sa[i].id;
        Q->sr = Q->sw = 0;
    }
    for (int64_t s = 0; !Q->arr && s <= Q->mask && m < n - Q->nbuf; s++) {
        int64_t b = (Q->cur + s) & Q->mask;
        for (int32_t j = Q->bk[b].head; j >= 0; j = EVAT(Q, j)->next) order[m++] = j;
    }
    /* then the buffered ones, each buffer in push order (equal times share a buffer) */
    if (Q->ep) {
        const int st = Q->arr ? 3 : 1;
        for (int64_t b = 0; b <= Q->ep_mask; b++) {
            for (int64_t i = 0; i < Q->eb[b].len; i += st)
                order[m++] = Q->arr ? ((const QEnt *)(Q->eb[b].ids + i))->id : Q->eb[b].ids[i];
            Q->eb[b].len = 0;
        }
        /* (a span not split holds every push for its epochs: equal times stay in order) */
        for (int64_t b = 0; Q->co_done != INT64_MAX && b <= Q->co_mask; b++) {
            for (int64_t i = 0; i < Q->cb[b].len; i += st + (Q->arr ? 0 : 1))
                order[m++] = Q->arr ? ((const QEnt *)(Q->cb[b].ids + i))->id : Q->cb[b].ids[i];
            Q->cb[b].len = 0;
        }
    }
    Q->nbuf = 0;
    int rc = cq_layout(Q, order, m);
    free(order);
    return rc;
}

/* The re-timing rule, run by every calendar pop (q_pop, q_pop_b, q_pop_p) once check_at
 * pops have passed: re-lay the pending records when pops step over many empty buckets or
 * pushes walk long lists (the pending times drifted from the width chosen), or when their
 * count doubled or fell to a quarter; else start counting afresh. 0, or -1 when out of
 * memory. */
static ALWAYS_INLINE int cq_retime(Queue *Q) {
#ifdef CQ_TEST_REBUILD /* tests: sorted mode re-lays at every check */
    if (Q->arr) return cq_rebuild(Q);
#endif
    int64_t p = Q->pops ? Q->pops : 1, w = Q->pushes ? Q->pushes : 1;
    if (Q->steps > 6 * CQ_ROOM * p || Q->walks > 4 * w || CQ_ROOM * Q->n > 2 * Q->nb ||
        (Q->nb > 16 && 4 * CQ_ROOM * Q->n < Q->nb))
        return cq_rebuild(Q);
    Q->pops = Q->steps = Q->pushes = Q->walks = 0;
    return 0;
}

static inline int heap_less(Queue *Q, int32_t a, int64_t sa, int32_t b, int64_t sb) {
    double ta = EVAT(Q, a)->t, tb = EVAT(Q, b)->t;
    return ta < tb || (ta == tb && sa < sb);
}

/* Schedule owner id at time t (an owner has at most one pending event). */
static ALWAYS_INLINE void q_push(Queue *Q, int32_t id, double t, int kind) {
    Ev *e = EVAT(Q, id);
    e->t = t;
    e->kind = kind;
    if (Q->heap) {
        int64_t i = Q->n++, s = Q->seq++;
        while (i > 0) {
            int64_t par = (i - 1) >> 1;
            if (heap_less(Q, Q->h[par], Q->hseq[par], id, s)) break;
            Q->h[i] = Q->h[par];
            Q->hseq[i] = Q->hseq[par];
            i = par;
        }
        Q->h[i] = id;
        Q->hseq[i] = s;
        return;
    }
    Q->n++;
    Q->pushes++;
    if (Q->ep) {
        int64_t ep = vbucket(Q, t) >> CQ_EPOCH;
        if (ep > Q->ep_done) (void)ep_append(Q, ep, id); /* failure: the next pop fails */
        else cq_insert(Q, id);
    } else if (Q->ahead) {
        /* Large populations: link it CQ_DEFER pushes later (or before the pop it would
         * precede), its bucket and then that bucket's last record prefetched meanwhile:
         * a push otherwise waits for two cache misses in a row. Linking in push order
         * keeps equal times in insertion order. */
        const int K = CQ_DEFER;
        if (Q->dn == K) {
            int32_t old = Q->dq[Q->dh];
            Q->dh = (Q->dh + 1) & (K - 1);
            Q->dn--;
            cq_insert(Q, old);
        }
        Q->dq[(Q->dh + Q->dn) & (K - 1)] = id;
        Q->dn++;
        if (t < Q->dmin) Q->dmin = t;
        PREFETCH(Q->bk + (vbucket(Q, t) & Q->mask));
        if (Q->dn > K / 2) {
            int32_t m = Q->dq[(Q->dh + Q->dn - 1 - K / 2) & (K - 1)];
            int32_t tl = Q->bk[vbucket(Q, EVAT(Q, m)->t) & Q->mask].tail;
            if (tl >= 0) PREFETCH(EVAT(Q, tl));
        }
    } else {
        cq_insert(Q, id);
    }
    if (Q->n > Q->n_grow) Q->check_at = Q->check_b = 0; /* resize at the next pop */
}

/* Link every held-back push, oldest first. */
static inline void cq_flush(Queue *Q) {
    while (Q->dn > 0) {
        int32_t id = Q->dq[Q->dh];
        Q->dh = (Q->dh + 1) & (CQ_DEFER - 1);
        Q->dn--;
        cq_insert(Q, id);
    }
    Q->dmin = INFINITY;
}

/* Memory-level parallelism for the pops to come: at 10^5-10^6 sessions every record an
 * event touches is a cache miss, and the pops would take them one after the other. The
 * buckets ahead are read in order (cheap: consecutive); the first record of each is
 * prefetched CQ_AHEAD_REC buckets before it is due, and when it is CQ_AHEAD_SES buckets
 * away (its record has arrived by then) the session of a call's record, its parent and
 * the CQ_AHEAD_KIDS nodes after it in its block too (what the walk of its answer touches:
 * its next sibling or, when that is a group, the group's children). Only from CQ_AHEAD_MIN
 * sessions up: below, the records mostly stay in cache and this look-ahead and the
 * held-back pushes (q_push) cost more than they save (measured: +14-18 % per attempt at
 * 1,000 sessions, +27 % at 30,000 on the independent workload). Hints only:
 * nothing here changes the queue. */
static ALWAYS_INLINE void cq_ahead_s(Queue *Q, int32_t next, const int sh) {
    if (sh == 6) { /* 64-byte nodes (measured: the compact path's form below is no faster) */
        if (next >= 0) PREFETCH(EVPs(Q, next, sh));
        if (Q->ahead_rec < Q->cur) Q->ahead_rec = Q->cur;
        while (Q->ahead_rec < Q->cur + CQ_AHEAD_REC) {
            int32_t h = Q->bk[++Q->ahead_rec & Q->mask].head;
            if (h >= 0) PREFETCH(EVPs(Q, h, sh));
        }
        if (Q->ahead_ses < Q->cur) Q->ahead_ses = Q->cur;
        while (Q->ahead_ses < Q->cur + CQ_AHEAD_SES) {
            int32_t h = Q->bk[++Q->ahead_ses & Q->mask].head;
            if (!(CQ_DRAIN_PARTNERS && Q->ep)) cq_partners(Q, h, sh);
        }
        return;
    }
    /* Compact nodes: without a branch on whether a bucket is empty (the record due at -inf,
     * in cache, stands for none; each branch mispredicted 0.2-0.6 times per attempt, and a
     * mispredict here throws away loads in flight), the queue's fields in locals (the build
     * has no strict aliasing, so every store through Q reloads them). */
    const Bucket *bk = Q->bk;
    const int64_t mask = Q->mask, cur = Q->cur;
    const int32_t ns = (int32_t)Q->n_sess;
    int32_t m = next >> 31;
    PREFETCH(EVPs(Q, (ns & m) | (next & ~m), sh));
    /* One sweep for both distances: the buckets cur + CQ_AHEAD_REC and cur + CQ_AHEAD_SES
     * of each bucket passed since the last pop's (ahead_rec: its cur; most pops pass none
     * or one). Two sweeps, each with its own bound, load and store, cost 11-12
     * instructions per attempt more at 10^6 sessions (cachegrind). After a jump the first
     * CQ_AHEAD_REC - CQ_AHEAD_SES partners' buckets are behind cur, empty (their heads -1:
     * nothing prefetched). */
    int64_t a = Q->ahead_rec < cur - CQ_AHEAD_REC ? cur - CQ_AHEAD_REC : Q->ahead_rec;
    while (a < cur) {
        a++;
        int32_t h = bk[(a + CQ_AHEAD_REC) & mask].head;
        m = h >> 31;
        PREFETCH(EVPs(Q, (ns & m) | (h & ~m), sh));
        if (!(CQ_DRAIN_PARTNERS && Q->ep)) cq_partners(Q, bk[(a + CQ_AHEAD_SES) & mask].head, sh);
    }
    Q->ahead_rec = a;
}
static inline void cq_ahead(Queue *Q, int32_t next) { cq_ahead_s(Q, next, Q->nsh); }

/* Prefetch what the event of record h reads besides its record (see cq_ahead). */
static ALWAYS_INLINE void cq_partners(Queue *Q, int32_t h, const int sh) {
    if (sh == 5) { /* compact nodes: the same lines, the links from the template */
        if (h > Q->n_sess) {
            const int64_t i = h - Q->n_sess - 1, M = Q->blk_nodes, at = i & (M - 1);
            const NodeC *nc = (const NodeC *)Q->nodes, *nd = nc + i;
            const Link *l = Q->lk + ((int64_t)nd->ev.site << Q->blk_log) + at;
            const int nk = nd->ev.nkind, pseq = nk & NK_PSEQ, last = l->next < 0;
            if ((last && !(nk & NK_NOEND)) || nd->ev.kind != EV_DONE)
                PREFETCH(&Q->sess[nd->sess]);
            if (pseq && !last) {
                /* the nodes after it in its block: two to a line */
                int64_t e = (i | (M - 1)) + 1, j1 = i + 1 + CQ_AHEAD_KIDS;
                uintptr_t a = (uintptr_t)(nc + i + 1) & ~(uintptr_t)63;
                for (uintptr_t z = (uintptr_t)(nc + (j1 < e ? j1 : e)); a < z; a += 64)
                    PREFETCH((const void *)a);
            } else if (l->parent >= 0 && !(nk & NK_REND)) {
                PREFETCH(nc + (i - at) + l->parent);
                if (!pseq && last && at + 1 < M) PREFETCH(nc + i + 1);
            }
        }
        return;
    }
    {
        if (h > Q->n_sess) { /* a call: the lines its event reads (see the walk) */
            const Node *nd = Q->nodes + (h - Q->n_sess - 1);
            const int nk = nd->ev.nkind, pseq = nk & NK_PSEQ, last = nd->next < 0;
            /* its session: where the turn may end, and for a 429's retry or failure */
            if ((last && !(nk & NK_NOEND)) || nd->ev.kind != EV_DONE)
                PREFETCH(&Q->sess[nd->sess]);
            if (pseq && !last) {
                /* a sequence goes on: the nodes after it in its turn's block (every line
                 * of each): its next sibling and, when that is a group, the group's first
                 * children (expanded depth first, so contiguous) */
                int64_t i = h - Q->n_sess - 1, end = (i / Q->blk_nodes + 1) * Q->blk_nodes;
                for (int64_t j = i + 1; j < end && j <= i + CQ_AHEAD_KIDS; j++)
                    for (size_t b = 0; b < sizeof(Node); b += 64)
                        PREFETCH((const char *)&Q->nodes[j] + b);
            } else if (nd->parent >= 0 && !(nk & NK_REND)) {
                /* a group's pending count, or a sequence's end (not the root's: unread) */
                PREFETCH(&Q->nodes[nd->parent]);
                if (!pseq && last) {
                    /* a fan-out's last child in order: the node after it in its block, its
                     * group's next step when the children are calls (expanded depth first).
                     * Its copies are launched last first, so with equal latencies it ends
                     * first, and the step the group then starts was read cold. */
                    int64_t i = h - Q->n_sess - 1, end = (i / Q->blk_nodes + 1) * Q->blk_nodes;
                    if (i + 1 < end) PREFETCH(&Q->nodes[i + 1]);
                }
            }
        }
    }
}

/* Nothing due within a whole turn of the calendar: jump to the earliest. */
static void cq_jump(Queue *Q) {
    int64_t best = INT64_MAX;
    for (int64_t b = 0; b <= Q->mask; b++) {
        if (Q->bk[b].head >= 0) {
            int64_t vb = vbucket(Q, EVAT(Q, Q->bk[b].head)->t);
            if (vb < best) best = vb;
        }
    }
    if (Q->ep) { /* the calendar is empty (it holds less than a year): the buffers */
        for (int64_t b = 0; b <= Q->ep_mask; b++)
            for (int64_t i = 0; i < Q->eb[b].len; i++) {
                int64_t vb = vbucket(Q, EVAT(Q, Q->eb[b].ids[i])->t);
                if (vb < best) best = vb;
            }
        for (int64_t b = 0; Q->co_done != INT64_MAX && b <= Q->co_mask; b++)
            for (int64_t i = 0; i < Q->cb[b].len; i += 2) {
                int64_t vb = vbucket(Q, EVAT(Q, Q->cb[b].ids[i])->t);
                if (vb < best) best = vb;
            }
        Q->ep_done = (best >> CQ_EPOCH) - 1;
        Q->drain_at = ((Q->ep_done + 1) << CQ_EPOCH) - CQ_MARGIN;
        /* nothing is pending in the spans before best's: the drain splits from its span */
        if (Q->co_done != INT64_MAX && Q->co_done < ((Q->ep_done + 1) >> CQ_COARSE) - 1)
            Q->co_done = ((Q->ep_done + 1) >> CQ_COARSE) - 1;
    }
    Q->cur = best;
}

/* Pop the earliest event: its owner id (-1 if empty; -2 on out-of-memory). */
static ALWAYS_INLINE int32_t arr_pop(Queue *Q, Ev **pe, const int sh);

static ALWAYS_INLINE int32_t q_pop(Queue *Q) {
    if (Q->n == 0) return -1;
    if (Q->oom) return -2;
    if (Q->heap) {
        int32_t top = Q->h[0];
        int64_t n = --Q->n;
        if (n > 0) {
            int32_t x = Q->h[n];
            int64_t s = Q->hseq[n], i = 0;
            for (;;) {
                int64_t c = 2 * i + 1;
                if (c >= n) break;
                if (c + 1 < n && heap_less(Q, Q->h[c + 1], Q->hseq[c + 1], Q->h[c], Q->hseq[c])) c++;
                if (!heap_less(Q, Q->h[c], Q->hseq[c], x, s)) break;
                Q->h[i] = Q->h[c];
                Q->hseq[i] = Q->hseq[c];
                i = c;
            }
            Q->h[i] = x;
            Q->hseq[i] = s;
        }
        return top;
    }
    if (Q->dn > 0 && (Q->pops >= Q->check_at || Q->dn == Q->n)) cq_flush(Q);
    if (Q->pops >= Q->check_at && cq_retime(Q) < 0) return -2;
    Q->pops++;
    if (Q->arr) { /* the re-lay just turned epochs, and with them sorted mode, back on */
        Ev *pe_;
        return arr_pop(Q, &pe_, Q->nsh);
    }
    /* Held-back pushes are due at or after the last pop, which left cur at its bucket. */
    int64_t cur0 = Q->cur;
    for (;;) {
        for (int64_t s = 0; s < Q->nb;) {
            while (Q->ep && Q->cur >= Q->drain_at) cq_drain(Q);
            {
                /* Step over the empty buckets in a tight loop (about three per pop), up to
                 * the next drain or a whole year: the same steps, counted alike. */
                const Bucket *bk = Q->bk;
                const int64_t mask = Q->mask, c0 = Q->cur;
                int64_t c = c0, stop = c0 + (Q->nb - s);
                if (Q->ep && Q->drain_at < stop) stop = Q->drain_at;
                while (c < stop && bk[c & mask].head < 0) c++;
                Q->steps += c - c0;
                s += c - c0;
                Q->cur = c;
                if (c == stop) continue; /* a drain is due, or the year is stepped */
            }
            Bucket *B = Q->bk + (Q->cur & Q->mask);
            int32_t j = B->head;
            Ev *e = EVAT(Q, j);
            if (vbucket(Q, e->t) == Q->cur) {
                if (Q->dmin < e->t) { /* a held-back push may come first: link them */
                    cq_flush(Q);
                    Q->cur = cur0;
                    s = 0;
                    continue;
                }
                B->head = e->next;
                Q->n--;
                if (Q->ahead) cq_ahead(Q, e->next);
                return j;
            }
            Q->cur++;
            Q->steps++;
            s++;
        }
        cq_jump(Q);
    }
}

/* Sorted mode: sort epoch ep_done + 1's entries into sa after the ones left (all due
 * earlier): by bucket (a counting sort, stable), then by time within a bucket (an
 * insertion sort, stable), so equal times keep their push order. Its records are not read. */
static __attribute__((noinline)) int arr_drain(Queue *Q) {
    const int64_t e = Q->ep_done + 1;
    while ((e >> CQ_COARSE) > Q->co_done) co_split3(Q, Q->co_done + 1);
    if (Q->oom) return -1;
    EpBuf *B = Q->eb + (e & Q->ep_mask);
    int32_t *v = B->ids;
    const int64_t n = B->len, ne = n / 3, live = Q->sw - Q->sr;
    if (ne > Q->skcap) {
        int64_t c = Q->skcap ? 2 * Q->skcap : 1024;
        while (c < ne) c *= 2;
        uint16_t *sk = realloc(Q->sk, sizeof(uint16_t) * (size_t)c);
        if (sk) Q->sk = sk;
        QEnt *st = realloc(Q->stmp, sizeof(QEnt) * (size_t)c);
        if (st) Q->stmp = st;
        if (!sk || !st) goto oom;
        Q->skcap = c;
    }
    if (Q->sr > 0) {
        memmove(Q->sa, Q->sa + Q->sr, sizeof(QEnt) * (size_t)live);
        Q->sr = 0;
        Q->sw = live;
    }
    if (live + ne > Q->scap) {
        int64_t c = Q->scap ? 2 * Q->scap : 1024;
        while (c < live + ne) c *= 2;
        QEnt *sa = realloc(Q->sa, sizeof(QEnt) * (size_t)c);
        if (!sa) goto oom;
        Q->sa = sa;
        Q->scap = c;
    }
    uint32_t cnt[(1 << CQ_EPOCH) + 1];
    memset(cnt, 0, sizeof(cnt));
    uint16_t *sk = Q->sk;
    QEnt *tmp = Q->stmp;
    int64_t m = 0, k = 0;
    for (int64_t i = 0; i < n; i += 3) {
        const QEnt *x = (const QEnt *)(v + i);
        const double t = x->t;
        const int32_t id = x->id;
        const int64_t vb = vbucket(Q, t);
        if ((vb >> CQ_EPOCH) == e) {
            const unsigned key = (unsigned)(vb & ((1 << CQ_EPOCH) - 1));
            sk[m] = (uint16_t)key;
            tmp[m].t = t;
            tmp[m].id = id;
            m++;
            cnt[key + 1]++;
        } else {
            QEnt *y = (QEnt *)(v + k);
            y->t = t;
            y->id = id;
            k += 3;
        }
    }
    for (int b = 0; b < (1 << CQ_EPOCH); b++) cnt[b + 1] += cnt[b];
    QEnt *out = Q->sa + Q->sw;
    for (int64_t i = 0; i < m; i++) out[cnt[sk[i]]++] = tmp[i];
    for (int64_t i = 1; i < m; i++) {
        if (!(out[i].t < out[i - 1].t)) continue;
        const QEnt x = out[i];
        int64_t j = i;
        while (j > 0 && x.t < out[j - 1].t) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = x;
    }
    Q->sw += m;
    Q->nbuf -= m;
    B->len = (int32_t)k;
    Q->ep_done = e;
    return 0;
oom:
    Q->oom = 1;
    Q->check_b = INT64_MIN;
    return -1;
}

/* Sorted mode: nothing sorted in and a whole year of epochs empty: on from the earliest
 * buffered entry's epoch (as cq_jump). */
static void arr_jump(Queue *Q) {
    int64_t best = INT64_MAX;
    for (int64_t b = 0; b <= Q->ep_mask; b++)
        for (int64_t i = 0; i < Q->eb[b].len; i += 3) {
            int64_t vb = vbucket(Q, ((const QEnt *)(Q->eb[b].ids + i))->t);
            if (vb < best) best = vb;
        }
    for (int64_t b = 0; Q->co_done != INT64_MAX && b <= Q->co_mask; b++)
        for (int64_t i = 0; i < Q->cb[b].len; i += 3) {
            int64_t vb = vbucket(Q, ((const QEnt *)(Q->cb[b].ids + i))->t);
            if (vb < best) best = vb;
        }
    Q->ep_done = (best >> CQ_EPOCH) - 1;
    if (Q->co_done != INT64_MAX && Q->co_done < ((Q->ep_done + 1) >> CQ_COARSE) - 1)
        Q->co_done = ((Q->ep_done + 1) >> CQ_COARSE) - 1;
}

/* Sorted mode: fewer than CQ_ARR_LOW entries sorted in: the next epoch (and, while none
 * is, the ones after it). n > 0. */
static __attribute__((noinline)) int arr_fill(Queue *Q) {
    if (arr_drain(Q) < 0) return -1;
    int64_t empty = 0;
    while (Q->sw == Q->sr) {
#ifndef CQ_ARR_JUMP
#define CQ_ARR_JUMP (Q->ep_mask + 1) /* (tests: smaller) */
#endif
        if (++empty >= CQ_ARR_JUMP) {
            arr_jump(Q);
            empty = 0;
        }
        if (arr_drain(Q) < 0) return -1;
    }
    return 0;
}

/* Sorted mode: a push due in an epoch already sorted in, at its place (after every entry
 * due at or before t). Rare: such a push is due within about an epoch. */
static __attribute__((noinline)) int arr_insert(Queue *Q, int32_t id, double t) {
    if (Q->sw == Q->scap) {
        if (Q->sr > 0) {
            memmove(Q->sa, Q->sa + Q->sr, sizeof(QEnt) * (size_t)(Q->sw - Q->sr));
            Q->sw -= Q->sr;
            Q->sr = 0;
        } else {
            int64_t c = Q->scap ? 2 * Q->scap : 1024;
            QEnt *sa = realloc(Q->sa, sizeof(QEnt) * (size_t)c);
            if (!sa) {
                Q->oom = 1;
                Q->check_b = INT64_MIN;
                return -1;
            }
            Q->sa = sa;
            Q->scap = c;
        }
    }
    int64_t lo = Q->sr, hi = Q->sw;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (Q->sa[mid].t > t) hi = mid;
        else lo = mid + 1;
    }
    memmove(Q->sa + lo + 1, Q->sa + lo, sizeof(QEnt) * (size_t)(Q->sw - lo));
    Q->sa[lo].t = t;
    Q->sa[lo].id = id;
    Q->sw++;
    return 0;
}

static ALWAYS_INLINE int32_t arr_pop(Queue *Q, Ev **pe, const int sh) {
    if (__builtin_expect(Q->sw - Q->sr < CQ_ARR_LOW, 0) && arr_fill(Q) < 0) return -2;
    const int64_t r = Q->sr++;
    const QEnt *sa = Q->sa;
    const int32_t j = sa[r].id;
    Q->n--;
    if (r + CQ_ARR_REC < Q->sw) PREFETCH(EVPs(Q, sa[r + CQ_ARR_REC].id, sh));
    if (r + CQ_ARR_SES < Q->sw) cq_partners(Q, sa[r + CQ_ARR_SES].id, sh);
    *pe = EVPs(Q, j, sh);
    return j;
}

/* The large populations' fast case (big: from CQ_AHEAD_MIN sessions, without the heap,
 * in the loop compiled for the fast case): with epochs on the queue is in sorted mode
 * there (arr_ok is set by that loop, so cq_layout turns it on with the epochs), the same
 * order as q_push / q_pop's (time, then push order); the caller hands over the pushed
 * record's event, and a pop returns its record's event. Anything else (a re-timing check,
 * epochs off after a resize) goes through q_push / q_pop. */
static ALWAYS_INLINE void q_push_b(Queue *Q, int32_t id, Ev *e, double t, int kind) {
    if (__builtin_expect(!Q->ep, 0)) {
        q_push(Q, id, t, kind);
        return;
    }
    e->t = t;
    e->kind = kind;
    Q->n++;
    Q->pushes++;
    const int64_t ep = vbucket(Q, t) >> CQ_EPOCH;
    /* (a failure: the next pop fails) */
    if (__builtin_expect(ep > Q->ep_done, 1)) (void)arr_append(Q, ep, id, t);
    else (void)arr_insert(Q, id, t);
    if (Q->n > Q->n_grow) Q->check_at = Q->check_b = 0; /* resize at the next pop */
}

/* (sh: see EVPs) */
static ALWAYS_INLINE int32_t q_pop_b(Queue *Q, Ev **pe, const int sh) {
    if (__builtin_expect(Q->pops >= Q->check_b || Q->n == 0, 0)) {
        /* the re-timing rule */
        if (Q->ep && Q->dn == 0 && Q->n > 0 && !Q->oom && cq_retime(Q) < 0) return -2;
        if (!Q->ep || Q->dn > 0 || Q->n == 0 || Q->oom) { /* epochs off after a resize */
            int32_t j = q_pop(Q);
            if (j >= 0) *pe = EVAT(Q, j);
            return j;
        }
    }
    Q->pops++;
    return arr_pop(Q, pe, sh); /* epochs on: sorted mode */
}

/* The calendar queue without the heap, the look-ahead or the pacer (cq_plain: below
 * CQ_AHEAD_MIN sessions, in the loop compiled for the fast case). The same queue as
 * q_push / q_pop above (the same buckets, lists and re-timing rule, so the same order);
 * the caller hands over the pushed record's event, and a pop scans the empty buckets in
 * a tight loop and returns its record's event. */
static ALWAYS_INLINE void cq_insert_v(Queue *Q, int32_t id, Ev *e, double t, int64_t vb,
                                      const int sh) {
    Bucket *B = Q->bk + (vb & Q->mask); /* vb: t's bucket (vbucket) */
    e->next = -1;
    /* An empty bucket's tail is the record due at -inf (EVP): a push into it takes the
     * same path as one after the last record, without a branch on emptiness (about
     * half the pushes find their bucket empty, at random). */
    Ev *tl = EVPs(Q, B->tail, sh);
    if (tl->t <= t) { /* after every record due at or before t */
        int32_t h = B->head;
        tl->next = id;
        B->tail = id;
        B->head = h < 0 ? id : h;
        return;
    }
    Ev *h = EVPs(Q, B->head, sh);
    if (t < h->t) {
        e->next = B->head;
        B->head = id;
        return;
    }
    for (;;) { /* stop before the first record due strictly after t (the tail is) */
        Q->walks++;
        Ev *nx = EVPs(Q, h->next, sh);
        if (nx->t > t) {
            e->next = h->next;
            h->next = id;
            return;
        }
        h = nx;
    }
}
static ALWAYS_INLINE void cq_insert_i(Queue *Q, int32_t id, Ev *e, double t, const int sh) {
    cq_insert_v(Q, id, e, t, vbucket(Q, t), sh);
}
/* (out of line: inlined into the fast loop it measured 6 % slower at 1,000 sessions) */
static void cq_insert_p(Queue *Q, int32_t id, Ev *e, double t) { cq_insert_i(Q, id, e, t, 6); }

static ALWAYS_INLINE void q_push_p(Queue *Q, int32_t id, Ev *e, double t, int kind) {
    e->t = t;
    e->kind = kind;
    Q->pushes++;
    if (++Q->n > Q->n_grow) Q->check_at = 0; /* resize at the next pop */
    cq_insert_p(Q, id, e, t);
}

static ALWAYS_INLINE int32_t q_pop_p(Queue *Q, Ev **pe) {
    if (Q->n == 0) return -1;
    if (Q->pops >= Q->check_at && cq_retime(Q) < 0) return -2;
    Q->pops++;
    const Bucket *bk = Q->bk;
    const int64_t mask = Q->mask;
    int64_t cur = Q->cur, start = cur;
    for (;;) {
        /* the first record at or after cur whose bucket is cur's (n > 0: one exists) */
        while (bk[cur & mask].head < 0) cur++;
        int32_t j = bk[cur & mask].head;
        Ev *e = EVP(Q, j);
        if (vbucket(Q, e->t) == cur) {
            Q->steps += cur - start;
            Q->cur = cur;
            Bucket *B = Q->bk + (cur & mask);
            int32_t nx = e->next, tl = B->tail;
            B->head = nx;
            /* emptied: the -inf record (a mask, as q_pop_b: gcc made the select a branch,
             * taken at random, ~0.5 mispredicts per attempt in callgrind's model) */
            const int32_t em = nx >> 31;
            B->tail = ((int32_t)Q->n_sess & em) | (tl & ~em);
            Q->n--;
            *pe = e;
            return j;
        }
        if (++cur - start >= Q->nb) {
            /* Nothing due within a whole turn of the calendar: jump to the earliest. */
            Q->steps += cur - start;
            int64_t best = INT64_MAX;
            for (int64_t b = 0; b < Q->nb; b++) {
                if (bk[b].head >= 0) {
                    int64_t vb = vbucket(Q, EVP(Q, bk[b].head)->t);
                    if (vb < best) best = vb;
                }
            }
            cur = start = best;
        }
    }
}

static int q_init(Queue *Q, Session *sess, int64_t n_sess, int heap, int64_t cap) {
    memset(Q, 0, sizeof(*Q));
    Q->sess = sess;
    Q->sbase = Q->bt[1] = (uintptr_t)sess;
    Q->nsh = 6;
    Q->n_sess = n_sess;
    Q->heap = heap;
    Q->ahead = n_sess >= CQ_AHEAD_MIN;
    if (Q->ahead && !heap) {
        /* address space only (committed as touched): the buffers hold about one entry per
         * pending record (an id, 4 bytes; in sorted mode time and id, 12), so 192 bytes per
         * session leave room for the doublings left behind */
        Q->ar_size = (size_t)CQ_ARENA * (size_t)(n_sess + 1);
        Q->ar = map_reserve(Q->ar_size);
        if (!Q->ar) Q->ar_size = 0;
    }
    Q->dmin = INFINITY;
    if (heap) {
        Q->h = malloc(sizeof(int32_t) * (size_t)cap);
        Q->hseq = malloc(sizeof(int64_t) * (size_t)cap);
        return (Q->h && Q->hseq) ? 0 : -1;
    }
    Q->inv_w = 1.0;
    return cq_layout(Q, NULL, 0);
}

static int q_reserve(Queue *Q, Node *nodes, int64_t M, int64_t cap) {
    Q->nodes = nodes;
    Q->nbase = Q->bt[0] = (uintptr_t)nodes - ((uintptr_t)(Q->n_sess + 1) << Q->nsh);
    Q->blk_nodes = M;
    if (!Q->heap) return 0;
    int32_t *h = realloc(Q->h, sizeof(int32_t) * (size_t)cap);
    if (!h) return -1;
    Q->h = h;
    int64_t *hs = realloc(Q->hseq, sizeof(int64_t) * (size_t)cap);
    if (!hs) return -1;
    Q->hseq = hs;
    return 0;
}

static void q_free(Queue *Q) {
    for (int64_t b = 0; b < Q->ep_cap; b++)
        if (!ep_in_arena(Q, Q->eb[b].ids)) free(Q->eb[b].ids);
    free(Q->eb);
    free(Q->sa);
    free(Q->sk);
    free(Q->stmp);
    map_release(Q->ar, Q->ar_size);
    free(Q->bk);
    free(Q->h);
    free(Q->hseq);
}

/* ---- routing (twin of capacity.model.routing) ------------------------------------- */
/* A routed profile's fleet as arrays (built by engine._compile) and the router's state:
 * round-robin positions per logical model, calls in flight and cooldown counters per
 * deployment. Every rule is transcribed from capacity.model.routing (Router.candidates,
 * the policies' choose, Router.record, CallPath.outcome); tests/test_twins.py replays
 * the engine's routing decisions through it. */
typedef struct {
    int on;
    int64_t n_deps, n_lm, n_sites;
    const int64_t *rsite;  /* n_sites x 2: chain offset, chain length */
    const int64_t *rchain; /* logical model ids, each site's chain in fallback order */
    const int64_t *rlm;    /* n_lm x RL_NCOL */
    const int64_t *rdep;   /* route entries: deployment id */
    const double *rwt;     /* route entries: weight */
    const int64_t *sdep;   /* n_sites x n_deps: the (site, deployment) row, -1 if none */
    const int64_t *st_dist; /* rows x 2: ttft, tokens_per_second distributions */
    const double *st_maxtok, *st_coef; /* rows; rows x L x 5 */
    const int8_t *dslot;   /* n_deps x L: the slots usage_based reads for a deployment */
    double *dstats;        /* n_deps x DS_NCOL, caller-owned */
    int cd_on;
    double cd_thr, cd_min, cd_win, cd_sec;
    /* state */
    int64_t *rr, *infl, *h_calls, *h_failed;
    double *h_win, *h_until, *share;
} Rt;

/* math.fsum, transcribed from CPython (Shewchuk's exact partials, then the correctly
 * rounded sum); x holds n finite numbers. */
static double fsum_c(const double *x, int n) {
    double p[MAX_ROUTE + 2];
    int np_ = 0;
    for (int k = 0; k < n; k++) {
        double v = x[k];
        int i = 0;
        for (int j = 0; j < np_; j++) {
            double y = p[j];
            if (fabs(v) < fabs(y)) {
                double tmp = v;
                v = y;
                y = tmp;
            }
            double hi = v + y;
            double yr = hi - v;
            double lo = y - yr;
            if (lo != 0.0) p[i++] = lo;
            v = hi;
        }
        np_ = i;
        if (v != 0.0) p[np_++] = v;
    }
    double hi = 0.0, lo = 0.0;
    if (np_ > 0) {
        hi = p[--np_];
        while (np_ > 0) {
            double v = hi, y = p[--np_];
            hi = v + y;
            double yr = hi - v;
            lo = y - yr;
            if (lo != 0.0) break;
        }
        if (np_ > 0 && ((lo < 0.0 && p[np_ - 1] < 0.0) || (lo > 0.0 && p[np_ - 1] > 0.0))) {
            double y = lo * 2.0;
            double v = hi + y;
            double yr = v - hi;
            if (y == yr) hi = v;
        }
    }
    return hi;
}

/* Router.candidates: entries (declared positions) of logical model lm not tried in this
 * round, of positive weight, and not cooling down (the only deployment never cools). */
static inline int rt_cands(const Rt *T, int64_t lm, double now, uint32_t tried, int32_t *cand) {
    const int64_t *r = T->rlm + lm * RL_NCOL;
    int64_t off = r[RL_OFF], len = r[RL_LEN];
    int alone = len == 1, n = 0;
    for (int64_t e = 0; e < len; e++) {
        if (tried & (1u << e)) continue;
        if (!(T->rwt[off + e] > 0.0)) continue;
        if (!alone && now < T->h_until[T->rdep[off + e]]) continue;
        cand[n++] = (int32_t)e;
    }
    return n;
}

/* The policies' choose over n > 0 candidates: the chosen entry. */
static inline int32_t rt_pick(Rt *T, int64_t lm, const int32_t *cand, int n, double u,
                              double turn_u) {
    const int64_t *r = T->rlm + lm * RL_NCOL;
    int64_t off = r[RL_OFF], len = r[RL_LEN];
    int pol = (int)r[RL_POLICY];
    if (pol == POL_WEIGHTED) { /* pick_weighted: inverse CDF */
        double w[MAX_ROUTE];
        for (int j = 0; j < n; j++) w[j] = T->rwt[off + cand[j]];
        double total = fsum_c(w, n), uu = r[RL_PER_TURN] ? turn_u : u, acc = 0.0;
        for (int j = 0; j < n; j++) {
            acc += w[j];
            if (uu * total < acc) return cand[j];
        }
        return cand[n - 1];
    }
    if (pol == POL_ROUND_ROBIN) { /* from the position after the last choice */
        uint32_t in = 0;
        for (int j = 0; j < n; j++) in |= 1u << cand[j];
        for (int64_t k = 0; k < len; k++) {
            int64_t i = (T->rr[lm] + k) % len;
            if (in & (1u << i)) {
                T->rr[lm] = i + 1;
                return (int32_t)i;
            }
        }
        return cand[0]; /* unreachable: some candidate is in the route */
    }
    if (pol == POL_LEAST_BUSY || pol == POL_USAGE_BASED) { /* min; ties: declared order */
        const int64_t *infl = T->infl;
        const double *sh = T->share;
        int32_t best = cand[0];
        for (int j = 1; j < n; j++) {
            int64_t a = T->rdep[off + cand[j]], b = T->rdep[off + best];
            if (pol == POL_LEAST_BUSY ? infl[a] < infl[b] : sh[a] < sh[b]) best = cand[j];
        }
        return best;
    }
    return cand[0]; /* priority: the first available */
}

/* Router.record: count one outcome on deployment d at now (seconds). */
static inline void rt_record(Rt *T, int64_t d, double now, int failed) {
    if (!T->cd_on) return;
    double w = ffloor(now / T->cd_win);
    if (w != T->h_win[d]) {
        T->h_win[d] = w;
        T->h_calls[d] = 0;
        T->h_failed[d] = 0;
    }
    T->h_calls[d] += 1;
    T->h_failed[d] += failed ? 1 : 0;
    /* Checked when a call fails (LiteLLM evaluates its rule in the failure handler). */
    if (failed && (double)T->h_calls[d] >= T->cd_min &&
        (double)T->h_failed[d] > T->cd_thr * (double)T->h_calls[d])
        T->h_until[d] = dmax(T->h_until[d], now + T->cd_sec);
}

/* Twin of Meter.snapshot(t).remaining for slot i (rolls the slot to t, as it does). */
static inline double lim_remaining(Lim *L, int64_t i, double t) {
    const double *p = L->P + i * P_NCOL;
    double *s = L->st + i * S_NCOL;
    int kind = (int)p[P_KIND];
    double q = p[P_ALLOW];
    if (kind == KIND_FIXED) {
        double k = ffloor((t + p[P_OFFSET]) / p[P_WINDOW]);
        if (k != s[S_WIN]) {
            s[S_WIN] = k;
            s[S_COUNT] = 0.0;
        }
        return dmax(0.0, q - s[S_COUNT]);
    }
    if (kind == KIND_SLIDING) {
        lim_expire(L, i, t, p[P_WINDOW]);
        return dmax(0.0, q - s[S_SUM]);
    }
    if (t > s[S_LAST]) {
        s[S_LEVEL] = dmin(q, s[S_LEVEL] + (t - s[S_LAST]) * p[P_RATE]);
        s[S_LAST] = t;
    }
    return dmax(0.0, s[S_LEVEL]);
}

/* snapshots_for + usage_share for the deployments of logical model lm at t: the
 * snapshot of every slot when some deployment names quotas, else of each deployment's
 * model's slots (a snapshot rolls its slot to t, so the same slots roll as in Python). */
static void rt_usage(Rt *T, Lim *Lm, int64_t lm, double t) {
    const int64_t *r = T->rlm + lm * RL_NCOL;
    int64_t off = r[RL_OFF], len = r[RL_LEN], L = Lm->n;
    if (r[RL_ROLL_ALL])
        for (int64_t i = 0; i < L; i++) (void)lim_remaining(Lm, i, t);
    for (int64_t e = 0; e < len; e++) {
        int64_t d = T->rdep[off + e];
        double acc = 0.0;
        for (int64_t i = 0; i < L; i++) {
            if (!T->dslot[d * L + i]) continue;
            /* SlotSnapshot.remaining: whole units */
            double rem = ffloor(lim_remaining(Lm, i, t) + 1e-9);
            double q = Lm->P[i * P_NCOL + P_ALLOW];
            if (q > 0.0) {
                double sh = 1.0 - dmin(rem, q) / q;
                if (sh > acc) acc = sh;
            }
        }
        T->share[d] = acc;
    }
}

/* ---- one replication -------------------------------------------------------------- */
typedef struct {
    /* program and distributions */
    const double *turn_cum;
    int64_t n_turns;
    const int64_t *turn_root, *sprog, *schild, *site_dist;
    const double *sprob, *site_cached, *site_maxtok, *coef, *cfg;
    Dists D;
    int64_t L, n_sites;
} Prog;

/* The node pool: the nodes and their side arrays, indexed alike and grown together. */
#define N_POOL 5
static const size_t POOL_ELEM[N_POOL] = {sizeof(Node), sizeof(uint64_t), sizeof(double),
                                         sizeof(int32_t), sizeof(NodeRt)};

typedef struct {
    int64_t N, M;
    Session *s;
    Node *nodes;
    uint64_t *nkey; /* a call's stream key, or its ordinal (expand's lazy keys) */
    double *nra;    /* a call's last retry-after; while queued in the pacer, when it joined */
    int32_t *ntrow; /* trace mode: the trace row of a call's last attempt (-1: none) */
    NodeRt *nrt;    /* routed profiles: a call's CallPath */
    int32_t *free_blk;
    /* each free block's last template (-1: none), so that a block taken again for the
     * same turn type is only reset (see tpl_expand): on the free list's top, in cache,
     * where an array by block was a cache miss per turn at 10^6 sessions */
    int32_t *free_tag;
    int64_t n_blk, n_free;
    Queue Q;
    int32_t *now;
    int64_t now_cap;
    double *lat;
    int32_t *latp; /* populations: each latency's population (NULL without) */
    int64_t n_lat, lat_cap;
    int64_t map_nodes; /* nodes of reserved address space in the pool (0: realloc'd) */
    size_t s_map;      /* bytes of the sessions' region when map_reserve'd (0: big_alloc) */
} Run;

/* n session records, zeroed: from 4 MB up a region kept across replications (see
 * MAP_KEEP). Out of line, as sessions_free: the loop's function stays as it was. */
static __attribute__((noinline)) Session *sessions_alloc(Run *R, int64_t n) {
    size_t sb = sizeof(Session) * (size_t)n;
    int fresh = 0;
    Session *s = sb >= MAP_KEEP_MIN ? map_reserve_f(sb, &fresh) : NULL;
    if (!s) return big_alloc(sb, 1);
    R->s_map = sb;
    if (!fresh) memset(s, 0, sb);
    return s;
}

static __attribute__((noinline)) void sessions_free(Run *R) {
    if (R->s_map) map_release(R->s, R->s_map);
    else free(R->s);
    R->s = NULL;
}

static void pool_arrays(Run *R, void ***a) {
    a[0] = (void **)&R->nodes;
    a[1] = (void **)&R->nkey;
    a[2] = (void **)&R->nra;
    a[3] = (void **)&R->ntrow;
    a[4] = (void **)&R->nrt;
}

/* Reserve the pool's address space for n nodes at once (all arrays, or none). */
static void pool_reserve(Run *R, int64_t n) {
    void **a[N_POOL];
    pool_arrays(R, a);
    for (int i = 0; i < N_POOL; i++) {
        *a[i] = map_reserve(POOL_ELEM[i] * (size_t)n);
        if (!*a[i]) {
            for (int j = 0; j < i; j++) {
                map_release(*a[j], POOL_ELEM[j] * (size_t)n);
                *a[j] = NULL;
            }
            return;
        }
    }
    R->map_nodes = n;
}

static void pool_free(Run *R) {
    void **a[N_POOL];
    pool_arrays(R, a);
    for (int i = 0; i < N_POOL; i++) {
        if (R->map_nodes) map_release(*a[i], POOL_ELEM[i] * (size_t)R->map_nodes);
        else free(*a[i]);
        *a[i] = NULL;
    }
}

static int run_grow_blocks(Run *R) {
    int64_t nb = R->n_blk ? 2 * R->n_blk : 16;
    if (nb * R->M + R->N + 1 > INT32_MAX) return -1;
    if (R->map_nodes == 0) {
        void **a[N_POOL];
        pool_arrays(R, a);
        for (int i = 0; i < N_POOL; i++) {
            void *p = realloc(*a[i], POOL_ELEM[i] * (size_t)(nb * R->M));
            if (!p) return -1;
            *a[i] = p;
        }
    } else if (nb * R->M > R->map_nodes) {
        return -1; /* not reached: a session holds at most one block */
    }
    Node *nodes = R->nodes;
    int32_t *fr = realloc(R->free_blk, sizeof(int32_t) * (size_t)nb);
    if (!fr) return -1;
    R->free_blk = fr;
    int32_t *ft = realloc(R->free_tag, sizeof(int32_t) * (size_t)nb);
    if (!ft) return -1;
    R->free_tag = ft;
    if (q_reserve(&R->Q, nodes, R->M, R->N + 1 + nb * R->M) < 0) return -1;
    /* New blocks are handed out lowest first. */
    for (int64_t b = nb - 1; b >= R->n_blk; b--) {
        R->free_tag[R->n_free] = -1;
        R->free_blk[R->n_free++] = (int32_t)b;
    }
    R->n_blk = nb;
    return 0;
}

/* Whether session x's turn in progress is aborted (its bit in ab). Read where a sequence
 * goes on (web-research: 0.4 times per attempt); x is opaque there because gcc otherwise
 * computed the bit's word and mask at every walk's start (x is fixed within a walk): 20
 * instructions per attempt on web-research at 1,000 sessions, for 2 used. */
static ALWAYS_INLINE int turn_aborted(const uint64_t *ab, int32_t x) {
    OPAQUE(x);
    return (int)(ab[x >> 6] >> (x & 63) & 1);
}
/* The same, with a summary first (large populations, big): a bit per word of ab, set with
 * any of the word's bits and cleared when a session's bit, cleared as its aborted turn
 * ends, was the word's last. At 10^6 sessions ab is 125 kB read at random: a line from
 * beyond the 512 kB L2 0.28 times per attempt (cachegrind, independent workload); the
 * summary is 2 kB, and its bit is seldom set (an aborted turn lasts only until its calls
 * in flight end). */
static ALWAYS_INLINE int turn_aborted_s(const uint64_t *ab, const uint64_t *sum, int32_t x) {
    OPAQUE(x);
    if (!(sum[x >> 12] >> ((x >> 6) & 63) & 1)) return 0;
    return (int)(ab[x >> 6] >> (x & 63) & 1);
}

static inline int now_add(Run *R, int64_t *n_now, int32_t n) {
    if (*n_now == R->now_cap) {
        int64_t c = 2 * R->now_cap;
        int32_t *p = realloc(R->now, sizeof(int32_t) * (size_t)c);
        if (!p) return -1;
        R->now = p;
        R->now_cap = c;
    }
    R->now[(*n_now)++] = n;
    return 0;
}

/* A call's token counts and latency: draws at positions ctr .. ctr+7 of stream tkey. */
static inline void call_draws(const Prog *G, Node *nd, int64_t site, uint64_t tkey,
                              uint64_t ctr) {
    const int64_t *sd = G->site_dist + 4 * site;
    /* Whole tokens, as providers count them. */
    double tin = ffloor(draw(&G->D, sd[SITE_IN], tkey, ctr) + 0.5);
    double tout = ffloor(draw(&G->D, sd[SITE_OUT], tkey, ctr + 2) + 0.5);
    double ttft = draw(&G->D, sd[SITE_TTFT], tkey, ctr + 4);
    double tps = draw(&G->D, sd[SITE_TPS], tkey, ctr + 6);
    nd->tin = tin;
    nd->tout = tout;
    nd->u.lat = ttft + dmin(tout, G->site_maxtok[site]) / tps;
}

/* Expand one turn of static program root into the nodes from base (depth first; draws at
 * fixed positions of stream tkey, so the same key always yields the same turn). The
 * number of nodes made; with cpos, each call's draw position is written at its node's
 * offset from base (for the turn templates below). With lazy, a call's key holds its
 * ordinal and the key is made when needed (call_key). */
static int64_t expand(const Prog *G, Node *nodes, uint64_t *nkey, NodeRt *nrt, int64_t root,
                      int64_t base, uint64_t tkey, int64_t *stack, int32_t sess, int64_t *cpos,
                      int lazy) {
    int64_t pos = 0, ordinal = 0, sp = 1;
    uint64_t ctr = 4; /* positions 0..3 are the turn type and the pause */
    stack[0] = root;
    stack[1] = -1;
    while (sp > 0) {
        sp--;
        int64_t s = stack[2 * sp], par = stack[2 * sp + 1];
        int64_t k = G->sprog[3 * s];
        if (k == S_OPT) {
            double u = unit01(tkey, ctr);
            ctr += 2;
            if (u < G->sprob[s]) {
                stack[2 * sp] = G->sprog[3 * s + 1];
                stack[2 * sp + 1] = par;
                sp++;
            }
            continue;
        }
        int64_t idx = base + pos;
        pos++;
        Node *nd = nodes + idx;
        const int8_t pseq = par >= 0 && (nodes[par].ev.nkind & NK_KIND) == I_SEQ ? NK_PSEQ : 0;
        nd->parent = (int32_t)par;
        nd->sess = sess;
        nd->next = -1;
        nd->att = 0;
        if (par >= 0) { /* a group's children are expanded after it */
            Node *pn = nodes + par;
            if (pn->u.kids.first < 0) pn->u.kids.first = (int32_t)idx;
            else nodes[pn->u.kids.last].next = (int32_t)idx;
            pn->u.kids.last = (int32_t)idx;
            pn->att++;
        }
        if (k == S_CALL) {
            int64_t site = G->sprog[3 * s + 1];
            nd->ev.nkind = I_CALL | pseq;
            nd->ev.site = (uint16_t)site;
            if (nrt) {
                NodeRt *r = nrt + idx;
                r->tried = 0;
                r->dep = -1;
                r->rnd = 0;
                r->lmp = 0;
                r->nx = NX_START;
            }
            if (cpos) cpos[idx - base] = (int64_t)ctr;
            call_draws(G, nd, site, tkey, ctr);
            ctr += 8;
            nkey[idx] = lazy ? (uint64_t)ordinal : hash2(tkey ^ DOM_CALL, (uint64_t)ordinal);
            ordinal++;
        } else if (k == S_SEQ) {
            nd->u.kids.first = nd->u.kids.last = -1;
            nd->ev.nkind = I_SEQ | pseq;
            /* Push children last first so the first is expanded (and attached) first. */
            for (int64_t c = G->sprog[3 * s + 2] - 1; c >= 0; c--) {
                stack[2 * sp] = G->schild[G->sprog[3 * s + 1] + c];
                stack[2 * sp + 1] = idx;
                sp++;
            }
        } else { /* S_PAR or S_REP: count copies of the body */
            int64_t cnt = (int64_t)draw(&G->D, G->sprog[3 * s + 2], tkey, ctr);
            ctr += 2;
            nd->u.kids.first = nd->u.kids.last = -1;
            nd->ev.nkind = (k == S_PAR ? I_PAR : I_SEQ) | pseq;
            for (int64_t c = 0; c < cnt; c++) {
                stack[2 * sp] = G->sprog[3 * s + 1];
                stack[2 * sp + 1] = idx;
                sp++;
            }
        }
    }
    /* the last step of a sequence root: its end is the turn's (NK_REND) */
    if (pos > 0 && (nodes[base].ev.nkind & NK_KIND) == I_SEQ && nodes[base].u.kids.last >= 0) {
        Node *ln = nodes + nodes[base].u.kids.last;
        ln->ev.nkind = (int8_t)(ln->ev.nkind | NK_REND);
    }
    return pos;
}

/* Turn templates. A turn type without options and with fixed repeat counts has the same
 * shape every time, and the same draw position for each call: its expansion is made once
 * per replication (links relative to the block) and each turn copies it, shifts the
 * links, and makes only the draws that are not fixed and the calls' keys. The nodes are
 * exactly those expand makes (same values, same draws at the same positions). */
typedef struct {
    int8_t kind[4];  /* per distribution (SITE_*): PL_FIXED, PL_UNIFORM or PL_OTHER */
    int64_t dist[4]; /* the distributions */
    double p0[4];    /* fixed: the value; uniform: the low end */
    double span[4];  /* uniform: high - low (the same double draw_any computes) */
    double maxtok;   /* the site's max_tokens */
    int8_t lat;      /* 1: the latency is drawn (output, ttft or speed not fixed) */
} Plan;
enum { PL_FIXED, PL_UNIFORM, PL_OTHER };

/* A template's draws as flat lists (made once from the plans): a turn makes each
 * non-fixed draw of its calls by one entry, without the per-call, per-distribution
 * branches. g: (position + 1) * GAMMA (unit01g). A token count (floored) goes to its
 * node's field, a first-token time or a speed to the template's scratch (two per call:
 * fixed values stay there, drawn ones are overwritten each turn), then each call whose
 * latency is drawn gets it from its node's output tokens and the scratch. */
typedef struct {
    uint64_t g;
    double p0, span; /* uniform: low end, high - low (as plan_draw); in the first two lists
                      * span * 2^-53 (mant53) */
    int32_t off;     /* the double it sets: from the turn's first node, or in scr */
    int8_t to_scr;   /* 1: in scr (no floor); 0: a node's token count */
    int8_t safe;     /* token count: ffloor is the truncation for every u (see tpl_ops) */
    int8_t uni;      /* 1: uniform; 0: draw_any (dist, pos) */
    int64_t dist;
    uint64_t pos;
} DrawOp;
typedef struct {
    int32_t node, c; /* the call's node (from the turn's first) and its scr pair */
    double maxtok;
} LatOp;

typedef struct {
    int64_t n, nc;  /* nodes, calls; n == 0: no template (expand each turn) */
    int32_t first0; /* the root's first step when the root is a sequence, else -1 */
    int32_t w0;     /* where a turn's walk starts: first0 (not touching the root, whose
                     * structure is the template's; see NK_REND), else 0 (the root) */
    int64_t n_tok, n_scr, n_any, n_lat; /* draws: uniform token counts (floor by truncation),
                                         * uniform into scr, the others; latencies */
    DrawOp *ops;    /* n_tok, then n_scr, then n_any entries */
    LatOp *lats;
    double *scr;    /* 2 per call: first-token time, speed */
    Node *nodes;    /* n nodes as expand makes them at base 0 */
    uint64_t *keys; /* their lazy keys (a call's ordinal) */
    int32_t *cidx;  /* the calls' nodes, in expansion order (their ordinals) */
    int64_t *cpos;  /* each call's draw position */
    Plan *plan;     /* each call's draws */
} Tpl;

/* 1 if the turn of static program root has a fixed shape (no option, fixed counts) of at
 * most M nodes; stack has room for M + 1 entries. */
static int tpl_fixed(const Prog *G, int64_t root, int64_t M, int64_t *stack) {
    int64_t sp = 1, made = 0;
    stack[0] = root;
    while (sp > 0) {
        int64_t s = stack[--sp], k = G->sprog[3 * s];
        if (k == S_OPT || ++made > M) return 0;
        int64_t add = 0, body = -1;
        if (k == S_SEQ) {
            add = G->sprog[3 * s + 2];
        } else if (k != S_CALL) {
            const double *r = G->D.dpar + G->sprog[3 * s + 2] * DP_NCOL;
            if (r[DP_KIND] != D_FIXED) return 0;
            add = (int64_t)r[DP_P0];
            body = G->sprog[3 * s + 1];
        }
        if (add < 0) add = 0;
        if (sp + add > M + 1) return 0;
        for (int64_t c = 0; c < add; c++)
            stack[sp++] = body >= 0 ? body : G->schild[G->sprog[3 * s + 1] + c];
    }
    return 1;
}

static void tpl_free(Tpl *tp) {
    free(tp->nodes);
    free(tp->keys);
    free(tp->cidx);
    free(tp->cpos);
    free(tp->plan);
    free(tp->ops);
    free(tp->lats);
    free(tp->scr);
    memset(tp, 0, sizeof(*tp));
}

/* The flat draw lists of a template whose plans are made (see DrawOp). */
static int tpl_ops(Tpl *tp) {
    int64_t nc = tp->nc;
    tp->ops = calloc((size_t)(4 * nc + 1), sizeof(DrawOp));
    tp->lats = calloc((size_t)(nc + 1), sizeof(LatOp));
    tp->scr = calloc((size_t)(2 * nc + 1), sizeof(double));
    if (!tp->ops || !tp->lats || !tp->scr) return -1;
    const int32_t f_tin = (int32_t)(offsetof(Node, tin) / sizeof(double));
    const int32_t f_tout = (int32_t)(offsetof(Node, tout) / sizeof(double));
    int64_t k = 0;
    /* pass 0: uniform token counts whose floor is a truncation; 1: uniform into scr;
     * 2: every other non-fixed draw */
    for (int pass = 0; pass < 3; pass++) {
        for (int64_t c = 0; c < nc; c++) {
            const Plan *pl = tp->plan + c;
            int32_t i = tp->cidx[c];
            for (int j = 0; j < 4; j++) {
                if (pl->kind[j] == PL_FIXED) continue;
                if (j != SITE_IN && !pl->lat) continue;
                int tok = j == SITE_IN || j == SITE_OUT, uni = pl->kind[j] == PL_UNIFORM;
                /* x = p0 + u * span + 0.5 with u in [0, 1): x >= p0 + 0.5 > 0, and well
                 * below 2^52 (rounding is monotonic), so ffloor(x) is (double)(int64_t)x */
                int safe = tok && uni && pl->p0[j] >= 0.0 && pl->span[j] >= 0.0 &&
                           pl->p0[j] + pl->span[j] < 1.0e15;
                int want = !span53_ok(pl->span[j]) ? 2 : safe ? 0 : (!tok && uni) ? 1 : 2;
                if (want != pass) continue;
                DrawOp *op = tp->ops + k++;
                uint64_t pos = (uint64_t)tp->cpos[c] + 2u * (uint64_t)j;
                op->g = (pos + 1) * GAMMA;
                op->pos = pos;
                op->p0 = pl->p0[j];
                op->span = want < 2 ? pl->span[j] * 0x1p-53 : pl->span[j];
                op->dist = pl->dist[j];
                op->uni = (int8_t)uni;
                op->safe = (int8_t)safe;
                op->to_scr = (int8_t)!tok;
                op->off = tok ? (int32_t)(i * (int64_t)(sizeof(Node) / sizeof(double))) +
                                    (j == SITE_IN ? f_tin : f_tout)
                              : (int32_t)(2 * c + (j == SITE_TTFT ? 0 : 1));
            }
        }
        if (pass == 0) tp->n_tok = k;
        else if (pass == 1) tp->n_scr = k - tp->n_tok;
        else tp->n_any = k - tp->n_tok - tp->n_scr;
    }
    for (int64_t c = 0; c < nc; c++) {
        const Plan *pl = tp->plan + c;
        tp->scr[2 * c] = pl->p0[SITE_TTFT]; /* fixed values (drawn ones are overwritten) */
        tp->scr[2 * c + 1] = pl->p0[SITE_TPS];
        if (!pl->lat) continue;
        LatOp *lo = tp->lats + tp->n_lat++;
        lo->node = tp->cidx[c];
        lo->c = (int32_t)c;
        lo->maxtok = pl->maxtok;
    }
    return 0;
}

/* The template of the turn of static program root (tp->n = 0 if its shape varies). */
static int tpl_build(const Prog *G, int64_t root, int64_t M, int64_t *stack, const int8_t *sfix,
                     Tpl *tp) {
    memset(tp, 0, sizeof(*tp));
    if (!tpl_fixed(G, root, M, stack)) return 0;
    tp->nodes = calloc((size_t)M, sizeof(Node));
    tp->keys = calloc((size_t)M, sizeof(uint64_t));
    tp->cpos = malloc(sizeof(int64_t) * (size_t)M);
    tp->cidx = malloc(sizeof(int32_t) * (size_t)M);
    tp->plan = calloc((size_t)M, sizeof(Plan));
    if (!tp->nodes || !tp->keys || !tp->cpos || !tp->cidx || !tp->plan) {
        tpl_free(tp);
        return -1;
    }
    int64_t n = expand(G, tp->nodes, tp->keys, NULL, root, 0, 0, stack, 0, tp->cpos, 1), nc = 0;
    for (int64_t i = 0; i < n; i++) {
        if ((tp->nodes[i].ev.nkind & NK_KIND) != I_CALL) continue;
        const int64_t *sd = G->site_dist + 4 * tp->nodes[i].ev.site;
        Plan *pl = tp->plan + nc;
        for (int j = 0; j < 4; j++) {
            const double *r = G->D.dpar + sd[j] * DP_NCOL;
            pl->dist[j] = sd[j];
            pl->kind[j] = r[DP_KIND] == D_FIXED ? PL_FIXED
                          : r[DP_KIND] == D_UNIFORM ? PL_UNIFORM : PL_OTHER;
            pl->p0[j] = r[DP_P0];
            pl->span[j] = r[DP_P1] - r[DP_P0];
        }
        /* A site whose units are made once (sfix, the fast loop only) reads its input
         * tokens nowhere: they are not drawn (a draw is at a fixed position of the turn's
         * stream, so no other draw moves), and its nodes keep the template's count. */
        if (sfix && sfix[tp->nodes[i].ev.site]) pl->kind[SITE_IN] = PL_FIXED;
        pl->maxtok = G->site_maxtok[tp->nodes[i].ev.site];
        pl->lat = pl->kind[SITE_OUT] != PL_FIXED || pl->kind[SITE_TTFT] != PL_FIXED ||
                  pl->kind[SITE_TPS] != PL_FIXED;
        tp->cidx[nc] = (int32_t)i;
        tp->cpos[nc] = tp->cpos[i]; /* nc <= i: compacted in place */
        nc++;
    }
    tp->n = n;
    tp->nc = nc;
    /* Which ends may end the turn (parents come before their children): the root's; a
     * parallel group's child's if its group's may (any child may be the last to end); a
     * sequence's last step's if its sequence's may. The others are marked NK_NOEND, so
     * that the look-ahead does not fetch their session for them. */
    for (int64_t i = 1; i < n; i++) {
        Node *nd = tp->nodes + i;
        const Node *pn = tp->nodes + nd->parent;
        int pend = !(pn->ev.nkind & NK_NOEND);
        int end = (pn->ev.nkind & NK_KIND) == I_PAR ? pend : pend && nd->next < 0;
        if (!end) nd->ev.nkind = (int8_t)(nd->ev.nkind | NK_NOEND);
    }
    tp->first0 = n > 0 && (tp->nodes[0].ev.nkind & NK_KIND) == I_SEQ ? tp->nodes[0].u.kids.first
                                                                       : -1;
    tp->w0 = tp->first0 > 0 ? tp->first0 : 0;
    return tpl_ops(tp);
}

/* The key of call nd whose key field holds its ordinal (expand's lazy keys): the one
 * expand makes, from its session's current turn. */
static inline uint64_t call_key(const Session *ss, uint64_t ordinal) {
    return hash2(hash2(ss->key, (uint64_t)ss->turn) ^ DOM_CALL, ordinal);
}

/* 1 if the units a call of site si charges (call_units) are the same whatever its token
 * counts: every slot charges by request only (the input, cached and output coefficients
 * zero, the request's finite and nonzero), and the counts, the cached tokens and
 * min(output, max_tokens) are finite for every draw (token laws fixed, or uniform between
 * bounds below 1e300; a cached share in [0, 1]; max_tokens >= 0). Then each token term is
 * a zero, and c0 plus or minus a zero is c0 exactly (c0 != 0), so the units are
 * call_units' at any finite counts; the fast loop makes them once (sfix) and never draws
 * the input (tpl_build). A requests-per-minute quota charges so (web-research). */
static int units_token_free(const Prog *G, int64_t si, int64_t L) {
    for (int64_t li = 0; li < L; li++) {
        const double *c = G->coef + (si * L + li) * 5;
        if (!(isfinite(c[0]) && c[0] != 0.0 && c[1] == 0.0 && c[2] == 0.0 && c[3] == 0.0))
            return 0;
    }
    const double sc = G->site_cached[si]; /* a share: sc * tin is finite too */
    if (!(sc >= 0.0 && sc <= 1.0) || !(G->site_maxtok[si] >= 0.0)) return 0;
    for (int j = SITE_IN; j <= SITE_OUT; j++) {
        const double *r = G->D.dpar + G->site_dist[4 * si + j] * DP_NCOL;
        if (r[DP_KIND] == D_FIXED ? !isfinite(r[DP_P0])
            : r[DP_KIND] != D_UNIFORM || !(fabs(r[DP_P0]) < 1e300 && fabs(r[DP_P1]) < 1e300))
            return 0;
    }
    return 1;
}

/* The units a call charges on each of the L slots (coefficients cf, L x 5): whole
 * tokens in and out, the cached share of the input, max_tokens mt. */
static inline void call_units(const double *cf, int64_t L, double tin, double tcached,
                              double tout, double mt, double *units) {
    for (int64_t li = 0; li < L; li++) {
        const double *c = cf + li * 5;
        double u_ = c[0] + c[1] * tin;
        u_ -= c[2] * tcached;
        u_ += c[3] * dmin(tout, mt);
        if (c[4] > 0.0) u_ += c[4] * mt;
        units[li] = u_;
    }
}

static inline int32_t shift_link(int32_t v, int32_t base) { return v >= 0 ? v + base : v; }

/* Expand a templated turn into the nodes from base: what expand would make (with lazy,
 * the calls' keys left as their ordinals, as the template holds them). With reuse, the
 * block holds this template's last expansion, changed since only where the loop writes
 * without routes (fast): the pending event, retry-after and trace row (each written
 * before it is read), the session, the attempts, the pending children and the measured
 * flag (each set when the walk starts the node: a reused block's lines are cold, and a
 * node not started yet is not touched). */
static ALWAYS_INLINE void tpl_expand(const Prog *G, const Tpl *tp, Node *nodes, uint64_t *nkey,
                                     NodeRt *nrt, int64_t base, uint64_t tkey, int32_t sess,
                                     const int lazy, int reuse) {
    Node *dst = nodes + base;
    const int32_t b = (int32_t)base;
    if (!reuse) {
        for (int64_t i = 0; i < tp->n; i++) {
            Node *nd = dst + i;
            *nd = tp->nodes[i];
            nd->sess = sess;
            nd->parent = shift_link(nd->parent, b);
            nd->next = shift_link(nd->next, b);
            if ((nd->ev.nkind & NK_KIND) != I_CALL) {
                nd->u.kids.first = shift_link(nd->u.kids.first, b);
                nd->u.kids.last = shift_link(nd->u.kids.last, b);
            }
        }
        if (lazy)
            for (int64_t c = 0; c < tp->nc; c++) nkey[base + tp->cidx[c]] = (uint64_t)c;
    }
    if (nrt) {
        for (int64_t c = 0; c < tp->nc; c++) {
            NodeRt *r = nrt + base + tp->cidx[c];
            r->tried = 0;
            r->dep = -1;
            r->rnd = 0;
            r->lmp = 0;
            r->nx = NX_START;
        }
    }
    /* The draws that are not fixed (call_draws' values by the same operations). */
    double *fd = (double *)dst, *scr = tp->scr;
    const DrawOp *op = tp->ops, *end_tok = op + tp->n_tok, *end_scr = end_tok + tp->n_scr;
    for (; op < end_tok; op++) /* ffloor(x) of a positive x below 2^52: its truncation */
        fd[op->off] = (double)(int64_t)(op->p0 + mant53(tkey, op->g) * op->span + 0.5);
    for (; op < end_scr; op++) scr[op->off] = op->p0 + mant53(tkey, op->g) * op->span;
    for (const DrawOp *end = end_scr + tp->n_any; op < end; op++) {
        double x = op->uni ? op->p0 + unit01g(tkey, op->g) * op->span
                           : draw_any(&G->D, op->dist, tkey, op->pos);
        if (op->to_scr) scr[op->off] = x;
        else fd[op->off] = ffloor(x + 0.5);
    }
    for (int64_t k = 0; k < tp->n_lat; k++) {
        const LatOp *lo = tp->lats + k;
        Node *nd = dst + lo->node;
        nd->u.lat = scr[2 * lo->c] + dmin(nd->tout, lo->maxtok) / scr[2 * lo->c + 1];
    }
    if (!lazy) {
        const uint64_t ck = tkey ^ DOM_CALL;
        for (int64_t c = 0; c < tp->nc; c++) nkey[base + tp->cidx[c]] = hash2(ck, (uint64_t)c);
    }
}

typedef struct {
    double stats[N_STATS];
    double *util, *exceeded; /* L each, caller-owned */
    double *trace;           /* rows x (T_UNITS + L [+ deployments]), caller-owned */
    int64_t trace_rows, n_tr;
    /* populations (NULL/0 without): their table, session counts and counters */
    const int64_t *ptab, *pcount;
    double *pstats; /* n_pops x PS_NCOL, caller-owned */
    int64_t n_pops;
} Out;

/* Prefetch the lines of a free block that the next turn start takes (the free list's
 * top): a turn start writes its draws and starts its first nodes, and at 10^5-10^6
 * sessions those lines were last touched a whole turn ago. lines: a bit per node of the
 * block that a turn start may touch (pf_lines). Hints only. Issued when a turn ends and
 * frees its block (the new top), not when a turn start uncovers the next block: about
 * half the time a turn end buries that block again first, and at 10^6 sessions the
 * loop's time goes to lines in flight (perf: the prefetch instructions themselves stall
 * on full fill buffers), so a fetch that is not used soon is a cost. */
static ALWAYS_INLINE void pf_block(const Node *b, uint64_t lines) {
#if defined(__GNUC__) || defined(__clang__)
    while (lines) {
        PREFETCHW(b + __builtin_ctzll(lines));
        lines &= lines - 1;
    }
#else
    (void)b;
    (void)lines;
#endif
}

/* The nodes of a block (among its first 64) that a turn start may touch, a bit each: with
 * a template, the root's first step when the root is a sequence (the walk skips the
 * root), else the root and the node after it, and the calls whose draws it writes;
 * without one, the first 8. */
static uint64_t pf_lines(const Tpl *tpl, int64_t n_turns, int64_t M) {
    uint64_t m = 0;
    for (int64_t tt = 0; tt < n_turns; tt++) {
        const Tpl *tp = tpl + tt;
        if (tp->n == 0) {
            m |= M >= 8 ? 0xFFu : ((uint64_t)1 << M) - 1;
            continue;
        }
        /* the root's first step (the walk skips the root), or the root and its next */
        if (tp->first0 >= 0 && tp->first0 < 64) m |= (uint64_t)1 << tp->first0;
        else if (tp->first0 < 0) m |= M > 1 ? 3u : 1u;
        const int64_t per = (int64_t)(sizeof(Node) / sizeof(double));
        for (int64_t k = 0; k < tp->n_tok + tp->n_scr + tp->n_any; k++) {
            const DrawOp *op = tp->ops + k;
            if (!op->to_scr && op->off / per < 64) m |= (uint64_t)1 << (op->off / per);
        }
        for (int64_t k = 0; k < tp->n_lat; k++)
            if (tp->lats[k].node < 64) m |= (uint64_t)1 << tp->lats[k].node;
    }
    return m;
}

/* A push from the loop: with plain, the record's event is known (no EVAT). */
#define QPUSH(id_, ev_, t_, kind_)                                                          \
    do {                                                                                   \
        if (plain) q_push_p(&R->Q, (id_), (ev_), (t_), (kind_));                           \
        else if (big) q_push_b(&R->Q, (id_), (ev_), (t_), (kind_));                        \
        else q_push(&R->Q, (id_), (t_), (kind_));                                          \
    } while (0)

/* A compact node's tokens and latency (see NodeC): the values tpl_expand writes into call
 * c's node (call_draws' and tpl_ops' operations), drawn from its turn's key tkey when the
 * call is sent; a token count's floor of a positive value below 2^52 is the truncation
 * tpl_expand takes. */
static ALWAYS_INLINE void cz_draws(const Prog *G, const Tpl *tp, int32_t c, uint64_t tkey,
                                   double *tin, double *tout, double *lat) {
    const Plan *pl = tp->plan + c;
    const Node *tn = tp->nodes + tp->cidx[c];
    const uint64_t pos = (uint64_t)tp->cpos[c];
    double v[4];
    for (int j = 0; j < 4; j++) {
        if (pl->kind[j] == PL_FIXED) v[j] = pl->p0[j];
        else if (pl->kind[j] == PL_UNIFORM)
            v[j] = pl->p0[j] + unit01(tkey, pos + 2u * (uint64_t)j) * pl->span[j];
        else v[j] = draw_any(&G->D, pl->dist[j], tkey, pos + 2u * (uint64_t)j);
    }
    *tin = pl->kind[SITE_IN] == PL_FIXED ? tn->tin : ffloor(v[SITE_IN] + 0.5);
    *tout = pl->kind[SITE_OUT] == PL_FIXED ? tn->tout : ffloor(v[SITE_OUT] + 0.5);
    *lat = pl->lat ? v[SITE_TTFT] + dmin(*tout, pl->maxtok) / v[SITE_TPS] : tn->u.lat;
}

/* Simulate one replication. 0, or -1 when out of memory. Compiled once per case of
 * replicate_c below: with fast, no routes, populations, trace, pacer or sliding window
 * (their code drops out); with one, a single limit slot (its loops unrolled); with cz
 * (big only, every turn type templated), compact nodes (NodeC). */
static ALWAYS_INLINE int replicate_impl(const Prog *G, int64_t N, uint64_t rep_key, double t0,
                                        double t1, int64_t M, const double *P,
                                        const double *deficit, const double *used, int heap,
                                        Out *O, Run *R, Rt *T, const int fast, const int one,
                                        const int plain, const int big, const int cz) {
    const int routed = !fast && T->on;
    const int64_t trace_rows = fast ? 0 : O->trace_rows;
    /* A routed trace row ends with the calls in flight per deployment (what least_busy
     * reads). */
    const int64_t L = one ? 1 : G->L, ND = routed ? T->n_deps : 0, TW = T_UNITS + L + ND;
    const double *cfg = G->cfg;
    int mode = (int)cfg[C_MODE];
    int64_t pause_d = (int64_t)cfg[C_PAUSE];
    int64_t max_retries = (int64_t)cfg[C_MAX_RETRIES];
    double init_delay = cfg[C_INIT_DELAY], max_delay = cfg[C_MAX_DELAY];
    double jitter = cfg[C_JITTER];
    int honour = (int)cfg[C_HONOUR] & 1, give_up_beyond = (int)cfg[C_HONOUR] & 2;
    double max_ra = cfg[C_MAX_RA], rej_lat = cfg[C_REJ_LAT];
    int abort_turn = cfg[C_ABORT] > 0.0;
    double pace_rate = cfg[C_PACE_RATE], pace_depth = cfg[C_PACE_DEPTH];
    int64_t pace_conc = (int64_t)cfg[C_PACE_CONC];
    int pacing = !fast && (pace_rate > 0.0 || pace_conc > 0);
    int sliding = 0;
    for (int64_t li = 0; li < L; li++) sliding |= (int)P[li * P_NCOL + P_KIND] == KIND_SLIDING;
    if (fast) sliding = 0;
    /* Populations: each session's pacing and turn mix come from its population's row
     * (sessions in contiguous blocks, in table order). Without populations every session
     * is of one population: the profile's session, as the cfg vector describes it. */
    const int64_t one_pop[PP_NCOL] = {mode, pause_d, 0, G->n_turns, (int64_t)cfg[C_START_P],
                                      (int64_t)cfg[C_TURN_LAW]};
    const int64_t *ptab = !fast && O->n_pops > 0 ? O->ptab : one_pop;
    /* Without populations (fast), the pause's distribution as draw reads it. */
    const double *pz = G->D.dpar + pause_d * DP_NCOL;
    const int pz_kind = (int)pz[DP_KIND];
    const double pz_p0 = pz[DP_P0], pz_span = pz[DP_P1] - pz[DP_P0];
    double *pst = !fast && O->n_pops > 0 ? O->pstats : NULL;
    int32_t *spop = NULL;
    Tpl *tpl = NULL;
    Link *LK = NULL; /* compact nodes: the templates' links (turn type * MB + place) */
    int64_t MB = M;  /* nodes per block (compact nodes: a power of two) */
    CzCall *CZ = NULL; /* compact nodes: the calls' draws, indexed like LK */
    /* Without routes (fast), the units of the sites whose token counts are fixed. */
    int8_t *sfix = NULL;
    double *sunits = NULL;
    /* Sessions whose turn in progress is aborted, a bit each (the walk reads it where a
     * sequence goes on; the session's line stays cold between its turn's start and end) */
    uint64_t *abits = NULL, *asum = NULL; /* asum: its summary (big; see turn_aborted_s) */

    Lim lim;
    memset(&lim, 0, sizeof(lim));
    memset(R, 0, sizeof(*R));
    R->N = N;
    R->M = M;
    int64_t *stack = malloc(sizeof(int64_t) * (size_t)(2 * (M + 1)));
    int32_t *wnode = malloc(sizeof(int32_t) * (size_t)(2 * M + 2));
    double *units = calloc((size_t)L + 1, sizeof(double));
    int8_t *rej = calloc((size_t)L + 1, 1);
    double *last_exc = malloc(sizeof(double) * ((size_t)L + 1));
    /* one more: in the fast loop's queue, the record due at -inf (see EVP) */
    R->s = sessions_alloc(R, N + 1);
    abits = calloc((size_t)(N + 63) / 64 + (size_t)(N + 4095) / 4096 + 2, sizeof(uint64_t));
    if (abits) asum = abits + (N + 63) / 64 + 1;
    R->now_cap = M + 16;
    R->now = malloc(sizeof(int32_t) * (size_t)R->now_cap);
    R->lat_cap = 1024;
    R->lat = malloc(sizeof(double) * (size_t)R->lat_cap);
    if (pst) {
        spop = malloc(sizeof(int32_t) * (size_t)N);
        R->latp = malloc(sizeof(int32_t) * (size_t)R->lat_cap);
    }
    int rc = -1;
    if (!stack || !wnode || !units || !rej || !last_exc || !R->s || !abits || !R->now ||
        !R->lat || (pst && (!spop || !R->latp)))
        goto done;
    if (pst) {
        int64_t k = 0;
        for (int64_t p = 0; p < O->n_pops; p++)
            for (int64_t j = 0; j < O->pcount[p]; j++) spop[k++] = (int32_t)p;
    }
    if (fast) { /* (before the templates: a site made here draws no input tokens) */
        sfix = calloc((size_t)G->n_sites + 1, 1);
        sunits = calloc((size_t)(G->n_sites * L) + 1, sizeof(double));
        if (!sfix || !sunits) goto done;
        for (int64_t si = 0; si < G->n_sites; si++) {
            const int64_t *sd = G->site_dist + 4 * si;
            const double *ri = G->D.dpar + sd[SITE_IN] * DP_NCOL;
            const double *ro = G->D.dpar + sd[SITE_OUT] * DP_NCOL;
            double tin = 0.0, tout = 0.0; /* any finite counts (units_token_free) */
            if (ri[DP_KIND] == D_FIXED && ro[DP_KIND] == D_FIXED) {
                tin = ffloor(ri[DP_P0] + 0.5);
                tout = ffloor(ro[DP_P0] + 0.5);
            } else if (!units_token_free(G, si, L)) {
                continue;
            }
            double tc = ffloor(G->site_cached[si] * tin + 0.5);
            call_units(G->coef + si * L * 5, L, tin, tc, tout, G->site_maxtok[si],
                       sunits + si * L);
            sfix[si] = 1;
        }
    }
    tpl = calloc((size_t)G->n_turns, sizeof(Tpl));
    if (!tpl) goto done;
    for (int64_t tt = 0; tt < G->n_turns; tt++)
        if (tpl_build(G, G->turn_root[tt], M, stack, sfix, tpl + tt) < 0) goto done;
    uint64_t pfl = pf_lines(tpl, G->n_turns, M);
    if (cz) {
        int64_t mx = 1;
        for (int64_t tt = 0; tt < G->n_turns; tt++) mx = tpl[tt].n > mx ? tpl[tt].n : mx;
        for (MB = 1; MB < mx && MB < ((int64_t)1 << 30);) MB *= 2; /* mx <= M */
        LK = calloc((size_t)(G->n_turns > 0 ? G->n_turns : 1) * (size_t)MB, sizeof(Link));
        CZ = calloc((size_t)(G->n_turns > 0 ? G->n_turns : 1) * (size_t)MB, sizeof(CzCall));
        if (!LK || !CZ) goto done;
        pfl = 0;
        for (int64_t tt = 0; tt < G->n_turns; tt++) {
            const Tpl *tp = tpl + tt;
            for (int64_t i = 0; i < tp->n; i++) {
                const Node *tn = tp->nodes + i;
                Link *l = LK + tt * MB + i;
                const int call = (tn->ev.nkind & NK_KIND) == I_CALL;
                l->parent = tn->parent >= 0 ? tn->parent : INT32_MIN;
                l->next = tn->next >= 0 ? tn->next : INT32_MIN;
                l->first = !call && tn->u.kids.first >= 0 ? tn->u.kids.first : INT32_MIN;
                l->c = call ? (int32_t)tp->keys[i] : -1;
                l->site = call ? tn->ev.site : 0;
                l->nkind = (int8_t)(tn->ev.nkind & ~NK_MEAS);
                if (call) {
                    const Plan *pl = tp->plan + l->c;
                    l->drawn = (int8_t)(pl->lat || pl->kind[SITE_IN] != PL_FIXED);
                    l->lat0 = tn->u.lat;
                    CzCall *z = CZ + tt * MB + i;
                    const uint64_t pos = (uint64_t)tp->cpos[l->c];
                    z->v0[SITE_IN] = tn->tin;
                    z->v0[SITE_OUT] = tn->tout;
                    z->v0[SITE_TTFT] = pl->p0[SITE_TTFT];
                    z->v0[SITE_TPS] = pl->p0[SITE_TPS];
                    z->maxtok = pl->maxtok;
                    /* token counts first (the draws cz_draws makes, as tpl_ops orders them) */
                    for (int tok = 1; tok >= 0 && z->n >= 0; tok--)
                        for (int j = 0; j < 4; j++) {
                            if ((j == SITE_IN || j == SITE_OUT) != tok) continue;
                            if (pl->kind[j] == PL_FIXED || (j != SITE_IN && !pl->lat)) continue;
                            if (pl->kind[j] != PL_UNIFORM || !span53_ok(pl->span[j]) ||
                                (tok && !(pl->p0[j] >= 0.0 && pl->span[j] >= 0.0 &&
                                          pl->p0[j] + pl->span[j] < 1.0e15))) {
                                z->n = -1; /* cz_draws */
                                break;
                            }
                            z->dst[z->n] = (int8_t)j;
                            z->g[z->n] = (pos + 2u * (uint64_t)j + 1) * GAMMA;
                            z->p0[z->n] = pl->p0[j];
                            z->span[z->n] = pl->span[j] * 0x1p-53;
                            z->n++;
                            z->ntok = (int8_t)(z->ntok + tok);
                        }
                }
            }
            /* a turn start touches its first node only (nothing is copied or drawn) */
            if (tp->w0 * 32 / 64 < 64) pfl |= (uint64_t)1 << (tp->w0 * 32 / 64);
        }
        /* Every call's lists padded to the same counts (the most of any call), with draws
         * into a scratch field (4): a send's two loops then always run as many times, and
         * their ends are predicted (calls of different counts come in random order). */
        int8_t ntk = 0, nsc = 0;
        for (int64_t i = 0; i < G->n_turns * MB; i++)
            if (LK[i].drawn && CZ[i].n >= 0) {
                ntk = CZ[i].ntok > ntk ? CZ[i].ntok : ntk;
                nsc = (int8_t)(CZ[i].n - CZ[i].ntok) > nsc ? (int8_t)(CZ[i].n - CZ[i].ntok) : nsc;
            }
        for (int64_t i = 0; i < G->n_turns * MB; i++) {
            CzCall *z = CZ + i;
            if (!LK[i].drawn || z->n < 0) continue;
            CzCall w = *z;
            for (int k = 0; k < 4; k++) { /* scratch draws: nothing set, any position */
                w.dst[k] = 4;
                w.g[k] = GAMMA;
                w.p0[k] = w.span[k] = 0.0;
            }
            for (int k = 0; k < z->ntok; k++) {
                w.dst[k] = z->dst[k];
                w.g[k] = z->g[k];
                w.p0[k] = z->p0[k];
                w.span[k] = z->span[k];
            }
            for (int k = z->ntok; k < z->n; k++) {
                const int d = ntk + k - z->ntok;
                w.dst[d] = z->dst[k];
                w.g[d] = z->g[k];
                w.p0[d] = z->p0[k];
                w.span[d] = z->span[k];
            }
            w.ntok = ntk;
            w.n = (int8_t)(ntk + nsc);
            *z = w;
        }
        R->M = MB;
    }
    if (lim_load(&lim, P, L, deficit, used, SPREAD) < 0) goto done;
    /* One slot: its parameters in a local copy, which the loop keeps in registers (P is
     * memory the loop's stores might alias, as far as the compiler knows). */
    double P1[P_NCOL];
    for (int c = 0; c < P_NCOL; c++) P1[c] = one ? P[c] : 0.0;
    if (q_init(&R->Q, R->s, N, heap, N + 1) < 0) goto done;
    R->Q.arr_ok = big; /* sorted mode with epochs (q_pop_b, q_push_b) */
    int mbl = 0; /* log2(MB) */
    while (((int64_t)1 << mbl) < MB) mbl++;
    if (cz) {
        R->Q.nsh = 5;
        R->Q.lk = LK;
        R->Q.blk_log = mbl;
    }
    {
        /* A session holds at most one block, and the pool doubles from 16 blocks only when
         * every block is taken, so it never exceeds the power of two from 16 up that holds
         * N blocks. */
        int64_t most = 16;
        while (most < N) most *= 2;
        if (most * MB + N + 1 <= INT32_MAX) pool_reserve(R, most * MB);
    }
    int64_t grow_to = N < 64 ? N : 64;
    while (R->n_blk < grow_to)
        if (run_grow_blocks(R) < 0) goto done;
    for (int64_t li = 0; li < L; li++) last_exc[li] = -1.0e300;
    memset(O->stats, 0, sizeof(O->stats));
    double *stats = O->stats;
    /* Counts as integers (added to stats at the end: exact below 2^53, as the doubles
     * counted one by one were). */
    int64_t cnt[N_STATS];
    memset(cnt, 0, sizeof(cnt));

    /* Client pacer (fleet-wide): FIFO of waiting calls through Node.ev.next. */
    int32_t qfirst = -1, qlast = -1;
    int64_t qn = 0, inflight = 0;
    double p_level = pace_depth, p_last = 0.0;
    int wake_pending = 0;
    int64_t n_tr = 0, measured_open = 0;
    const int32_t PACER = (int32_t)N, NODE0 = (int32_t)N + 1;

    for (int64_t k = 0, p = 0, j = 0; k < N; k++, j++) {
        /* Session j of population p: its stream is the same whatever the other
         * populations' counts are (common random numbers across N); the first population
         * keeps the streams sessions had before populations existed. */
        while (pst && spop[k] != p) {
            p++;
            j = 0;
        }
        uint64_t sk = p == 0 ? hash2(rep_key, (uint64_t)k)
                             : hash2(hash2(rep_key ^ DOM_POP, (uint64_t)p), (uint64_t)j);
        R->s[k].key = sk;
        R->s[k].blk = -1;
        /* Steady-state start (THE rule: capacity.model.workload.steady_phase): mid-turn
         * with probability p_turn — what is left of the turn in progress (an equilibrium
         * residual of the turn's law), then a whole pause — else an equilibrium residual
         * of the pause. A cadence session has p_turn = 0. */
        const int64_t *pr0 = ptab + p * PP_NCOL;
        uint64_t k1 = hash2(sk ^ DOM_START, 1);
        double first = unit01(k1, 0) < G->D.dpar[pr0[PP_START_P] * DP_NCOL + DP_P0]
            ? draw_residual(&G->D, pr0[PP_TURN_LAW], hash2(sk ^ DOM_START, 2)) +
                  draw(&G->D, pr0[PP_PAUSE], k1, 2)
            : draw_residual(&G->D, pr0[PP_PAUSE], hash2(sk ^ DOM_START, 0));
        if (heap) {
            q_push(&R->Q, (int32_t)k, first, EV_TURN);
        } else { /* laid out at once below, in session order (= push order) */
            R->s[k].ev.t = first;
            R->s[k].ev.kind = EV_TURN;
        }
    }
    if (!heap) {
        int32_t *order = malloc(sizeof(int32_t) * (size_t)N);
        if (!order) goto done;
        for (int64_t k = 0; k < N; k++) order[k] = (int32_t)k;
        int lrc = cq_layout(&R->Q, order, N);
        free(order);
        if (lrc < 0) goto done;
    }

    R->s[N].ev.t = -INFINITY; /* cq_plain's record due at -inf (EVP) */
    uint32_t polls = 0;
    for (;;) {
        Ev *pe = NULL;
        int32_t id = plain ? q_pop_p(&R->Q, &pe)
                     : big ? q_pop_b(&R->Q, &pe, cz ? 5 : 6)
                           : q_pop(&R->Q);
        if (id == -2) goto done;
        /* Ctrl-C: every 4,096 events, a stop asked for (stop()) ends the replication. */
        if (__builtin_expect(!(++polls & 0xFFFu), 0) && g_stop) {
            rc = -3;
            goto done;
        }
        if (id < 0) break;
        if (!plain && !big) pe = EVAT(&R->Q, id);
        double t = pe->t;
        if (__builtin_expect(t >= t1, 0) && measured_open == 0) break;
        int ev = pe->kind;
        int64_t n_now = 0;
        int walk = W_NONE; /* the walk of the turn's tree this event starts, from wn */
        int32_t wn = -1;
        uint64_t wkey = 0; /* compact nodes: the walk's turn key and turn type */
        int32_t wtt = 0;
        int dispatch = 0;
        Node *nodes = R->nodes;
/* Node n (compact nodes: a NodeC, of which only the fields it has are read), and a compact
 * node's link f (see Link; the walk's turn type wtt, its block from wbase). */
#define ND(n_) (cz ? (Node *)((char *)nodes + (size_t)(n_) * sizeof(NodeC)) : nodes + (n_))
#define LN(f_, n_) (wl[(n_) - wbase].f_ + wbase) /* none: negative (see Link) */
        if (ev == EV_TURN) {
            int64_t x = id;
            Session *ss = R->s + x;
            uint64_t tkey = hash2(ss->key, (uint64_t)ss->turn);
            /* a turn type of its population's mix */
            const int64_t *pr = ptab + (pst ? (int64_t)spop[x] * PP_NCOL : 0);
            int64_t tt = pr[PP_TURN_OFF], t_last = tt + pr[PP_TURN_LEN] - 1;
            if (tt < t_last) {
                double u = unit01(tkey, 0);
                while (tt < t_last && u >= G->turn_cum[tt]) tt++;
            }
            if (fast && pz_kind == D_FIXED) ss->pause = pz_p0; /* draw's value, inline */
            else if (fast && pz_kind == D_UNIFORM) ss->pause = pz_p0 + unit01(tkey, 2) * pz_span;
            else ss->pause = draw(&G->D, pr[PP_PAUSE], tkey, 2);
            if (R->n_free == 0) {
                if (run_grow_blocks(R) < 0) goto done;
                nodes = R->nodes;
            }
            int32_t blk = R->free_blk[--R->n_free];
            ss->blk = blk;
            int64_t base = (int64_t)blk * MB;
            /* Without routes (fast), a block last expanded for this turn type's template is
             * only reset (see tpl_expand). */
            int reuse = fast && R->free_tag[R->n_free] == (int32_t)tt;
            ss->btt = (int16_t)(fast && tpl[tt].n > 0 && tt < INT16_MAX ? tt : -1);
            NodeRt *nrt = routed ? R->nrt : NULL;
            if (cz) { /* compact nodes: nothing to copy, each set when the walk starts it */
                wkey = tkey;
                wtt = (int32_t)tt;
            } else if (tpl[tt].n > 0)
                tpl_expand(G, tpl + tt, nodes, R->nkey, nrt, base, tkey, (int32_t)x, fast, reuse);
            else
                (void)expand(G, nodes, R->nkey, nrt, G->turn_root[tt], base, tkey, stack,
                             (int32_t)x, NULL, fast);
            ss->start = t;
            if (!big && (ss->flags & F_ABORTED)) abits[x >> 6] &= ~(1ull << (x & 63));
            ss->flags = 0;
            if (t0 <= t && t < t1) {
                ss->flags = F_MEASURED;
                measured_open++;
            }
            walk = W_START;
            wn = (int32_t)base + tpl[tt].w0; /* a sequence root: its first step */
        } else if (pacing && id == PACER) { /* (only the pacer pushes it) */
            wake_pending = 0;
            dispatch = 1;
        } else {
            int32_t n = id - NODE0;
            Node *nd = ND(n);
            if (ev == EV_DONE) { /* (the most frequent first) */
                if (t0 <= t && t < t1) {
                    cnt[K_GOOD_WINDOW]++;
                    if (pst) pst[(int64_t)spop[nd->sess] * PS_NCOL + K_GOOD_WINDOW] += 1;
                }
                if (routed) T->infl[R->nrt[n].dep]--;
                if (pacing) {
                    inflight--;
                    dispatch = 1;
                }
                walk = W_COMPLETE;
                wn = n;
            } else if (ev == EV_ATTEMPT) { /* a retry, after its backoff */
                R->now[0] = n;
                n_now = 1;
            } else if (routed && (R->nrt[n].nx == NX_SPILL || R->nrt[n].nx == NX_FALLBACK)) {
                /* the 429 (or "no deployment") reached the client: the next deployment or
                 * logical model is tried at once */
                R->now[0] = n;
                n_now = 1;
            } else { /* EV_REJECT: twin of RetryPolicy.wait */
                /* the next attempt would be retry number k; routed: CallPath.attempt */
                int64_t k = routed ? R->nrt[n].rnd : nd->att;
                int64_t row = trace_rows > 0 ? R->ntrow[n] : -1;
                if ((routed ? R->nrt[n].nx == NX_RETRY : k <= max_retries) &&
                    !(give_up_beyond && R->nra[n] > max_ra)) {
                    /* routed: the jitter of the round's end (nd->att counts every choice) */
                    uint64_t ck =
                        cz     ? hash2(nd->tkey ^ DOM_CALL,
                                       (uint64_t)LK[((int64_t)nd->ev.site << mbl) + (n & (MB - 1))].c)
                        : fast ? call_key(R->s + nd->sess, R->nkey[n])
                               : R->nkey[n];
                    double ju = unit01(ck, (uint64_t)nd->att);
                    double ra = R->nra[n], d;
                    if (honour && 0.0 < ra && ra <= max_ra) {
                        d = ra;
                    } else {
                        d = dmin(init_delay * ldexp(1.0, (int)(k - 1)), max_delay);
                        d *= 1.0 - jitter * ju;
                    }
                    if (row >= 0) {
                        O->trace[row * TW + T_WAIT] = d;
                        O->trace[row * TW + T_JITTER] = ju;
                    }
                    QPUSH(id, &nd->ev, t + d, EV_ATTEMPT);
                } else {
                    if (row >= 0) O->trace[row * TW + T_WAIT] = WAIT_GAVE_UP;
                    Session *ss = R->s + nd->sess;
                    ss->flags |= F_FAILED;
                    if (abort_turn) {
                        ss->flags |= F_ABORTED;
                        abits[nd->sess >> 6] |= 1ull << (nd->sess & 63);
                        if (big) asum[nd->sess >> 12] |= 1ull << ((nd->sess >> 6) & 63);
                    }
                    if (ss->flags & F_MEASURED) {
                        cnt[K_CALLS_FAILED]++;
                        if (pst) pst[(int64_t)spop[nd->sess] * PS_NCOL + K_CALLS_FAILED] += 1;
                    }
                    if (pacing) {
                        inflight--;
                        dispatch = 1;
                    }
                    walk = W_COMPLETE;
                    wn = n;
                }
            }
        }

        /* Walk the turn's tree from wn: START launches a node, COMPLETE propagates an end up;
         * a started group's children wait on a stack of starts, the last on top (so they
         * are launched last first). */
        if (walk != W_NONE) {
            int32_t n = wn;
            int64_t sp = 0;
            /* the walk's session, and whether its turn is measured (NK_MEAS or 0) */
            const int32_t x = walk == W_START ? id : ND(wn)->sess;
            const int8_t wmeas = walk == W_START ? (R->s[x].flags & F_MEASURED ? NK_MEAS : 0)
                                                 : (ND(wn)->ev.nkind & NK_MEAS);
            /* compact nodes: the walk stays in one block, of one turn */
            const int32_t wbase = cz ? (int32_t)(wn & ~(int32_t)(MB - 1)) : 0;
            if (cz && walk == W_COMPLETE) {
                wkey = ND(wn)->tkey;
                wtt = ND(wn)->ev.site;
            }
            /* compact nodes: node n's link is wl[n - wbase] (the turn type's links; the
             * pointer stays within LK, unlike LK - wbase) */
            const Link *wl = cz ? LK + ((int64_t)wtt << mbl) : NULL;
            if (walk == W_COMPLETE) goto w_complete;
        w_start: {
            Node *nd = ND(n);
            const int nk = (cz ? wl[n - wbase].nkind : nd->ev.nkind) & NK_KIND;
            nd->sess = x;
            if (cz) { /* a compact node is set here, whatever the block held */
                nd->ev.nkind = (int8_t)(wl[n - wbase].nkind | wmeas);
                nd->ev.site = (uint16_t)wtt;
                nd->tkey = wkey;
            } else {
                nd->ev.nkind = (int8_t)((nd->ev.nkind & ~NK_MEAS) | wmeas);
            }
            if (nk == I_CALL) {
                nd->att = 0;
                if (wmeas) {
                    cnt[K_CALLS]++;
                    if (pst) pst[(int64_t)spop[x] * PS_NCOL + K_CALLS] += 1;
                }
                if (pacing) {
                    nd->ev.next = -1;
                    if (qlast >= 0) nodes[qlast].ev.next = n;
                    else qfirst = n;
                    qlast = n;
                    qn++;
                    R->nra[n] = t; /* while queued: when it joined */
                    dispatch = 1;
                } else if (fast) { /* (room: a walk starts at most a turn's calls, < M + 16) */
                    R->now[n_now++] = n;
                } else if (now_add(R, &n_now, n) < 0) {
                    goto done;
                }
                goto w_next;
            }
            int32_t c = cz ? LN(first, n) : nd->u.kids.first;
            if (nk == I_SEQ) {
                if (c >= 0 && !(big ? turn_aborted_s(abits, asum, x) : turn_aborted(abits, x))) {
                    n = c;
                    goto w_start;
                }
                goto w_complete;
            }
            if (c < 0) goto w_complete; /* I_PAR: launch every copy at this instant */
            int32_t kids = 0;
            while (c >= 0) {
                wnode[sp++] = c;
                c = cz ? LN(next, c) : nodes[c].next;
                kids++;
            }
            nd->att = kids; /* children still running */
            goto w_next;
        }
        w_complete: {
            Node *nd = ND(n);
            /* the last step of a sequence root ends the turn (the root is not read) */
            int32_t p = nd->ev.nkind & NK_REND ? -1 : cz ? LN(parent, n) : nd->parent;
            if (p < 0) { /* the turn has ended */
                Session *ss = R->s + x;
                int fl = ss->flags;
                if (big && (fl & F_ABORTED)) { /* its bit, and the summary's if it was the last */
                    uint64_t *w = abits + (x >> 6);
                    *w &= ~(1ull << (x & 63));
                    if (!*w) asum[x >> 12] &= ~(1ull << ((x >> 6) & 63));
                }
                int64_t pp = pst ? spop[x] : 0;
                double *ps = pst ? pst + pp * PS_NCOL : NULL;
                if (fl & F_MEASURED) {
                    measured_open--;
                    cnt[K_TURNS]++;
                    if (fl & F_429) cnt[K_TURNS_429]++;
                    if (fl & F_FAILED) cnt[K_TURNS_FAILED]++;
                    if (ps) {
                        ps[K_TURNS] += 1;
                        if (fl & F_429) ps[K_TURNS_429] += 1;
                        if (fl & F_FAILED) ps[K_TURNS_FAILED] += 1;
                    }
                    if (R->n_lat == R->lat_cap) {
                        double *nl = realloc(R->lat, sizeof(double) * (size_t)(2 * R->lat_cap));
                        if (!nl) goto done;
                        R->lat = nl;
                        if (ps) {
                            int32_t *np_ = realloc(R->latp, sizeof(int32_t) *
                                                                (size_t)(2 * R->lat_cap));
                            if (!np_) goto done;
                            R->latp = np_;
                        }
                        R->lat_cap *= 2;
                    }
                    if (ps) R->latp[R->n_lat] = (int32_t)pp;
                    R->lat[R->n_lat++] = t - ss->start;
                }
                if (t0 <= t && t < t1) {
                    cnt[K_TURNS_WINDOW]++;
                    if (ps) ps[K_TURNS_WINDOW] += 1;
                }
                /* think time runs from the end; a cadence from the start (unless late) */
                double nxt = ptab[pp * PP_NCOL + PP_MODE] == 0 ? t + ss->pause
                                                               : dmax(ss->start + ss->pause, t);
                ss->turn++;
                R->free_tag[R->n_free] = ss->btt;
                R->free_blk[R->n_free++] = ss->blk;
                if (!plain && R->Q.ahead) pf_block(ND((int64_t)ss->blk * MB), pfl);
                ss->blk = -1;
                QPUSH(x, &ss->ev, nxt, EV_TURN);
                goto w_next;
            }
            if (nd->ev.nkind & NK_PSEQ) {
                int32_t nx = cz ? LN(next, n) : nd->next;
                if (nx >= 0 && !(big ? turn_aborted_s(abits, asum, x) : turn_aborted(abits, x))) {
                    n = nx;
                    goto w_start;
                }
                n = p;
                goto w_complete;
            }
            if (--ND(p)->att == 0) {
                n = p;
                goto w_complete;
            }
            /* Large populations: a child ended and others still run; the step its group
             * starts when the last ends (a hint: its line is cold, and the group's line,
             * read here, is in cache now). */
            if (big) {
                int32_t pn = cz ? LN(next, p) : nodes[p].next;
                if (pn >= 0) PREFETCH(ND(pn));
            }
        }
        w_next:
            if (sp > 0) {
                n = wnode[--sp];
                goto w_start;
            }
        }

        /* Release queued calls the pacer now allows, first come first served (twin of
         * capacity.model.pacing.Pacer). */
        if (dispatch && pacing) {
            while (qn > 0) {
                if (pace_conc > 0 && inflight >= pace_conc) break;
                if (pace_rate > 0.0) {
                    if (t > p_last) {
                        p_level = dmin(pace_depth, p_level + (t - p_last) * pace_rate);
                        p_last = t;
                    }
                    if (p_level < 1.0) {
                        if (!wake_pending) {
                            double wake = t + (1.0 - p_level) / pace_rate + WAKE_EPSILON_S;
                            q_push(&R->Q, PACER, wake, EV_PACE);
                            wake_pending = 1;
                        }
                        break;
                    }
                    p_level -= 1.0;
                }
                int32_t n = qfirst;
                qfirst = nodes[n].ev.next;
                if (qfirst < 0) qlast = -1;
                qn--;
                inflight++;
                if (nodes[n].ev.nkind & NK_MEAS)
                    stats[K_PACE_WAIT] += t - R->nra[n];
                if (now_add(R, &n_now, n) < 0) goto done;
            }
        }

        /* Send the attempts due now (launched calls, released calls, retries, spills,
         * fallbacks), in order. */
        for (int64_t ia = 0; ia < n_now; ia++) {
            int32_t n = R->now[ia];
            Node *nd = ND(n);
            int32_t x = nd->sess;
            int64_t site = nd->ev.site;
            /* compact nodes: the site is the template's, the tokens and latency drawn now */
            double ctin = 0.0, ctout = 0.0, clat = 0.0;
            if (cz) {
                const int64_t li_ = ((int64_t)nd->ev.site << mbl) + (n & (MB - 1));
                const Link *cl = LK + li_;
                const CzCall *z = CZ + li_;
                site = cl->site;
                if (!cl->drawn) {
                    clat = cl->lat0; /* and its tokens are fixed: sfix[site] */
                } else if (z->n >= 0) {
                    const uint64_t tk = nd->tkey;
                    double v[5] = {z->v0[0], z->v0[1], z->v0[2], z->v0[3], 0.0};
                    int k = 0;
                    for (; k < z->ntok; k++)
                        v[z->dst[k]] =
                            (double)(int64_t)(z->p0[k] + mant53(tk, z->g[k]) * z->span[k] + 0.5);
                    for (; k < z->n; k++) v[z->dst[k]] = z->p0[k] + mant53(tk, z->g[k]) * z->span[k];
                    ctin = v[SITE_IN];
                    ctout = v[SITE_OUT];
                    /* every field fixed but the input: the template's latency, the same doubles */
                    clat = v[SITE_TTFT] + dmin(ctout, z->maxtok) / v[SITE_TPS];
                } else {
                    cz_draws(G, tpl + nd->ev.site, cl->c, nd->tkey, &ctin, &ctout, &clat);
                }
            }
            int meas = (nd->ev.nkind & NK_MEAS) != 0; /* its turn's F_MEASURED */
            /* max_tokens and charging coefficients (routed: the chosen deployment's); read
             * where used (a site whose units are made once reads neither) */
            double mt = 0.0;
            const double *cf = NULL;
            /* Routed: choose the deployment (CallPath.choose), as Router.route does. */
            int64_t lm = -1, dep = -1, chain_len = 0;
            int32_t e = -1;
            double ru = 0.0, tu = 0.0;
            const int64_t *rl = NULL;
            NodeRt *rt = routed ? R->nrt + n : NULL;
            if (routed) {
                const int64_t *rs = T->rsite + 2 * site;
                chain_len = rs[1];
                lm = T->rchain[rs[0] + rt->lmp];
                rl = T->rlm + lm * RL_NCOL;
                if (rt->nx != NX_SPILL) { /* a new round: one client attempt */
                    R->nra[n] = 0.0;
                    if (meas) {
                        cnt[K_ATTEMPTS]++;
                        if (pst) pst[(int64_t)spop[x] * PS_NCOL + K_ATTEMPTS] += 1;
                    }
                }
                if (rl[RL_POLICY] == POL_USAGE_BASED) rt_usage(T, &lim, lm, t);
                int32_t cand[MAX_ROUTE];
                int nc = rt_cands(T, lm, t, rt->tried, cand);
                ru = unit01(R->nkey[n] ^ DOM_ROUTE, (uint64_t)nd->att);
                tu = unit01(hash2(R->s[x].key, (uint64_t)R->s[x].turn) ^ DOM_ROUTE, 0);
                if (nc > 0) {
                    e = rt_pick(T, lm, cand, nc, ru, tu);
                    dep = T->rdep[rl[RL_OFF] + e];
                    int64_t str = T->sdep[site * T->n_deps + dep];
                    mt = T->st_maxtok[str];
                    cf = T->st_coef + str * L * 5;
                }
            }
            /* Cached share of the input, whole tokens (recomputed: the node stays small). */
            double tcached = 0.0;
            double ra = 0.0;
            int admitted = 0;
            nd->att++;
            if (!routed || dep >= 0) {
                if (fast && sfix[site]) { /* the site's units, made once (call_units) */
                    for (int64_t li = 0; li < L; li++) units[li] = sunits[site * L + li];
                } else {
                    /* no cached share: ffloor(0 * tin + 0.5) is +0.0 for any finite tin */
                    double sc = G->site_cached[site];
                    const double tin = cz ? ctin : nd->tin, tout = cz ? ctout : nd->tout;
                    tcached = fast && sc == 0.0 && isfinite(tin) ? 0.0 : ffloor(sc * tin + 0.5);
                    if (!routed) {
                        cf = G->coef + site * L * 5;
                        mt = G->site_maxtok[site];
                    }
                    call_units(cf, L, tin, tcached, tout, mt, units);
                }
                if (sliding && lim_log_full(&lim) && lim_grow(&lim) < 0) goto done;
                admitted = lim_attempt_n(&lim, one ? P1 : P, L, t, units, rej, &ra);
                cnt[K_ATTEMPTS_ALL]++;
            } else { /* no deployment available: nothing is sent */
                tcached = ffloor(G->site_cached[site] * nd->tin + 0.5);
                for (int64_t li = 0; li < L; li++) {
                    units[li] = 0.0;
                    rej[li] = 0;
                }
            }
            /* Routed: the outcome (CallPath.outcome) decides the next step now. */
            int nx = admitted ? NX_DONE : NX_RETRY;
            if (routed) {
                if (dep >= 0) {
                    if (meas) {
                        cnt[K_SENDS]++;
                        T->dstats[dep * DS_NCOL + DS_SENT] += 1;
                    }
                    rt_record(T, dep, t, !admitted);
                } else if (meas) {
                    cnt[K_UNAVAILABLE]++;
                }
                if (!admitted) {
                    int32_t cand[MAX_ROUTE];
                    if (dep >= 0) rt->tried |= 1u << e;
                    if (dep >= 0 && rl[RL_SPILLS] && rt_cands(T, lm, t, rt->tried, cand) > 0) {
                        nx = NX_SPILL;
                    } else {
                        rt->tried = 0;
                        if (rt->rnd < max_retries) {
                            rt->rnd++;
                            nx = NX_RETRY;
                        } else if (rt->lmp + 1 < chain_len) {
                            rt->lmp++;
                            rt->rnd = 0;
                            nx = NX_FALLBACK;
                        } else {
                            nx = NX_FAIL;
                        }
                    }
                }
                rt->nx = (int8_t)nx;
                if (admitted) {
                    /* its latency on this deployment (one draw per call and deployment) */
                    const int64_t *sd = T->st_dist + 2 * T->sdep[site * T->n_deps + dep];
                    uint64_t lk = R->nkey[n] ^ DOM_LAT;
                    double ttft = draw(&G->D, sd[0], lk, 0), tps = draw(&G->D, sd[1], lk, 2);
                    nd->u.lat = ttft + dmin(nd->tout, mt) / tps;
                    rt->dep = (int32_t)dep;
                    T->infl[dep]++;
                    if (meas) T->dstats[dep * DS_NCOL + DS_ADMITTED] += 1;
                } else if (dep >= 0 && meas) {
                    T->dstats[dep * DS_NCOL + DS_REJECTED] += 1;
                    if (nx == NX_SPILL) {
                        T->dstats[dep * DS_NCOL + DS_SPILLED] += 1;
                        cnt[K_SPILLS]++;
                    }
                }
                if (nx == NX_FALLBACK && meas) cnt[K_FALLBACKS]++;
            }
            if (trace_rows > 0) R->ntrow[n] = -1;
            if (n_tr < trace_rows) { /* trace mode: record the attempt */
                double *row = O->trace + n_tr * TW;
                R->ntrow[n] = (int32_t)n_tr;
                row[T_T] = t;
                row[T_SESSION] = (double)x;
                row[T_NODE] = (double)n;
                row[T_SITE] = (double)site;
                row[T_ATTEMPT] = (double)nd->att;
                row[T_TIN] = nd->tin;
                row[T_TCACHED] = tcached;
                row[T_TOUT] = nd->tout;
                row[T_ADMITTED] = admitted ? 1.0 : 0.0;
                row[T_RETRY_AFTER] = ra;
                row[T_WAIT] = WAIT_NONE;
                row[T_JITTER] = 0.0;
                row[T_DEP] = (double)dep;
                row[T_U] = ru;
                row[T_TURN_U] = tu;
                row[T_NEXT] = routed ? (double)nx : -1.0;
                row[T_LAT] = admitted ? nd->u.lat : 0.0;
                for (int64_t li = 0; li < L; li++) row[T_UNITS + li] = units[li];
                /* in flight as the policy read them (before this admission) */
                for (int64_t j = 0; j < ND; j++)
                    row[T_UNITS + L + j] = (double)(T->infl[j] - (j == dep && admitted));
                n_tr++;
            } else if (trace_rows > 0) {
                n_tr = trace_rows + 1; /* full: the caller sees the overflow */
            }
            int inwin = t0 <= t && t < t1;
            if (!routed && meas) {
                cnt[K_ATTEMPTS]++;
                if (pst) pst[(int64_t)spop[x] * PS_NCOL + K_ATTEMPTS] += 1;
            }
            if (admitted) {
                if (inwin)
                    for (int64_t li = 0; li < L; li++) O->util[li] += units[li];
                QPUSH(NODE0 + n, &nd->ev, t + (cz ? clat : nd->u.lat), EV_DONE);
            } else {
                /* the client sees a 429 unless the call spills (counted once per round) */
                if (nx != NX_SPILL) {
                    R->s[x].flags |= F_429;
                    if (meas) {
                        cnt[K_REJECTED]++;
                        if (pst) pst[(int64_t)spop[x] * PS_NCOL + K_REJECTED] += 1;
                    }
                }
                for (int64_t li = 0; li < L; li++) {
                    const double *p = P + li * P_NCOL;
                    if (rej[li] != 0 && (int)p[P_KIND] == KIND_FIXED) {
                        double w = p[P_WINDOW], off = p[P_OFFSET];
                        double kw = ffloor((t + off) / w);
                        double start = kw * w - off;
                        if (start >= t0 && start + w <= t1 && last_exc[li] != kw) {
                            O->exceeded[li] += 1;
                            last_exc[li] = kw;
                        }
                    }
                }
                /* the retry-after of the round's last 429 (none: no deployment was tried,
                 * and that answer is immediate) */
                if (dep >= 0 || !routed) R->nra[n] = ra;
                QPUSH(NODE0 + n, &nd->ev, t + (dep >= 0 || !routed ? rej_lat : 0.0), EV_REJECT);
            }
        }
    }
    for (int k = 0; k < N_STATS; k++)
        if (k != K_PACE_WAIT) stats[k] += (double)cnt[k];
    O->n_tr = n_tr;
    rc = 0;
done:
    if (tpl)
        for (int64_t tt = 0; tt < G->n_turns; tt++) tpl_free(tpl + tt);
    free(tpl);
    free(LK);
    free(CZ);
    free(sfix);
    free(sunits);
    free(abits);
    free(stack);
    free(wnode);
    free(units);
    free(rej);
    free(last_exc);
    lim_free(&lim);
    q_free(&R->Q);
    sessions_free(R);
    pool_free(R);
    free(R->free_blk);
    free(R->free_tag);
    free(R->now);
    free(spop);
    if (rc < 0) {
        free(R->lat);
        free(R->latp);
        R->lat = NULL;
        R->latp = NULL;
    }
    return rc;
#undef ND
#undef LN
}

/* One replication (see replicate_impl): the common cases get code of their own. */
static int replicate_c(const Prog *G, int64_t N, uint64_t rep_key, double t0, double t1,
                       int64_t M, const double *P, const double *deficit, const double *used,
                       int heap, Out *O, Run *R, Rt *T) {
    const double *cfg = G->cfg;
    int fast = !T->on && O->n_pops == 0 && O->trace_rows == 0 && !(cfg[C_PACE_RATE] > 0.0) &&
               !((int64_t)cfg[C_PACE_CONC] > 0);
    for (int64_t li = 0; li < G->L; li++) fast &= (int)P[li * P_NCOL + P_KIND] != KIND_SLIDING;
    /* plain: the calendar queue without the look-ahead (below CQ_AHEAD_MIN sessions) */
    int plain = fast && !heap && N < CQ_AHEAD_MIN;
    /* big: the calendar queue with epochs (from CQ_AHEAD_MIN sessions: q_push_b, q_pop_b) */
    int big = fast && !heap && !plain;
    /* cz: compact nodes (NodeC), when every turn type has a template (see tpl_fixed),
     * whether or not a call draws. On the Intel VM (2 MB L2) a workload without draws lost
     * as much to the compact path's instructions as it saved in lines, and kept 64-byte
     * nodes; with a 512 kB L2 the lines weigh more: independent workload at 10^6 sessions,
     * cachegrind (L2 as last level) 3.75 -> 2.87 lines and 590 -> 697 instructions per
     * attempt, interleaved A/B 165.8 -> 141.1 ns per attempt (medians, load 12). */
    int cz = big && G->n_turns < 65536;
    if (cz) {
        int64_t *stack = malloc(sizeof(int64_t) * (size_t)(2 * (M + 1)));
        if (!stack) return -1;
        for (int64_t tt = 0; tt < G->n_turns && cz; tt++)
            cz = tpl_fixed(G, G->turn_root[tt], M, stack);
        free(stack);
    }
#define REPLICATE(fast_, one_, plain_, big_, cz_)                                              \
    replicate_impl(G, N, rep_key, t0, t1, M, P, deficit, used, heap, O, R, T, fast_, one_,   \
                   plain_, big_, cz_)
    if (plain && G->L == 1) return REPLICATE(1, 1, 1, 0, 0);
    if (plain) return REPLICATE(1, 0, 1, 0, 0);
    if (cz && G->L == 1) return REPLICATE(1, 1, 0, 1, 1);
    if (cz) return REPLICATE(1, 0, 0, 1, 1);
    if (big && G->L == 1) return REPLICATE(1, 1, 0, 1, 0);
    if (big) return REPLICATE(1, 0, 0, 1, 0);
    if (fast && G->L == 1) return REPLICATE(1, 1, 0, 0, 0);
    if (fast) return REPLICATE(1, 0, 0, 0, 0);
    return REPLICATE(0, 0, 0, 0, 0);
#undef REPLICATE
}

/* ---- Python wrappers -------------------------------------------------------------- */

/* A C-contiguous, aligned array of exactly this dtype and dimension (no copy). */
static PyArrayObject *arr(PyObject *o, int typenum, int ndim, int writeable, const char *name) {
    if (!PyArray_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy array", name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)o;
    int flags = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | (writeable ? NPY_ARRAY_WRITEABLE : 0);
    if (PyArray_TYPE(a) != typenum || PyArray_NDIM(a) != ndim || !PyArray_CHKFLAGS(a, flags)) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a C-contiguous%s %d-d array of %s", name,
                     writeable ? " writeable" : "", ndim,
                     typenum == NPY_FLOAT64 ? "float64" : typenum == NPY_INT64 ? "int64" : "int8");
        return NULL;
    }
    return a;
}

#define F64(a) ((double *)PyArray_DATA(a))
#define I64(a) ((int64_t *)PyArray_DATA(a))
#define DIM(a, i) ((int64_t)PyArray_DIM(a, i))

static int get_dists(PyObject *dpar, PyObject *cval, PyObject *ccum, Dists *D, int64_t *n_d) {
    PyArrayObject *a = arr(dpar, NPY_FLOAT64, 2, 0, "dpar");
    PyArrayObject *b = arr(cval, NPY_FLOAT64, 1, 0, "cval");
    PyArrayObject *c = arr(ccum, NPY_FLOAT64, 1, 0, "ccum");
    if (!a || !b || !c) return -1;
    if (DIM(a, 1) != DP_NCOL || DIM(b, 0) != DIM(c, 0)) {
        PyErr_SetString(PyExc_ValueError, "distribution tables have the wrong shape");
        return -1;
    }
    D->dpar = F64(a);
    D->cval = F64(b);
    D->ccum = F64(c);
    *n_d = DIM(a, 0);
    return 0;
}

static void rt_free(Rt *T) {
    free(T->rr);
    free(T->infl);
    free(T->h_calls);
    free(T->h_failed);
    free(T->h_win);
    free(T->h_until);
    free(T->share);
    T->rr = T->infl = T->h_calls = T->h_failed = NULL;
    T->h_win = T->h_until = T->share = NULL;
}

/* The router's state, fresh: no round-robin turn taken, nothing in flight, no cooldown. */
static int rt_alloc(Rt *T) {
    size_t nd = (size_t)T->n_deps + 1, nl = (size_t)T->n_lm + 1;
    T->rr = calloc(nl, sizeof(int64_t));
    T->infl = calloc(nd, sizeof(int64_t));
    T->h_calls = calloc(nd, sizeof(int64_t));
    T->h_failed = calloc(nd, sizeof(int64_t));
    T->h_win = malloc(nd * sizeof(double));
    T->h_until = malloc(nd * sizeof(double));
    T->share = calloc(nd, sizeof(double));
    if (!T->rr || !T->infl || !T->h_calls || !T->h_failed || !T->h_win || !T->h_until ||
        !T->share) {
        rt_free(T);
        return -1;
    }
    for (size_t i = 0; i < nd; i++) {
        T->h_win[i] = -1.0;
        T->h_until[i] = -INFINITY;
    }
    return 0;
}

/* Read and check the fleet's arrays (the loop then trusts every index in them). */
static int get_route(PyObject *route, int64_t n_sites, int64_t L, int64_t n_d, Rt *T) {
    PyObject *o[12];
    if (!PyTuple_Check(route) || PyTuple_GET_SIZE(route) != 12) {
        PyErr_SetString(PyExc_TypeError, "route must be None or a tuple of 12 arrays");
        return -1;
    }
    for (int i = 0; i < 12; i++) o[i] = PyTuple_GET_ITEM(route, i);
    PyArrayObject *rsite = arr(o[0], NPY_INT64, 2, 0, "rsite");
    PyArrayObject *rchain = arr(o[1], NPY_INT64, 1, 0, "rchain");
    PyArrayObject *rlm = arr(o[2], NPY_INT64, 2, 0, "rlm");
    PyArrayObject *rdep = arr(o[3], NPY_INT64, 1, 0, "rdep");
    PyArrayObject *rwt = arr(o[4], NPY_FLOAT64, 1, 0, "rwt");
    PyArrayObject *sdep = arr(o[5], NPY_INT64, 2, 0, "sdep");
    PyArrayObject *st_dist = arr(o[6], NPY_INT64, 2, 0, "st_dist");
    PyArrayObject *st_maxtok = arr(o[7], NPY_FLOAT64, 1, 0, "st_maxtok");
    PyArrayObject *st_coef = arr(o[8], NPY_FLOAT64, 3, 0, "st_coef");
    PyArrayObject *dslot = arr(o[9], NPY_INT8, 2, 0, "dslot");
    PyArrayObject *rcfg = arr(o[10], NPY_FLOAT64, 1, 0, "rcfg");
    PyArrayObject *dstats = arr(o[11], NPY_FLOAT64, 2, 1, "dstats");
    if (!rsite || !rchain || !rlm || !rdep || !rwt || !sdep || !st_dist || !st_maxtok ||
        !st_coef || !dslot || !rcfg || !dstats)
        return -1;
    int64_t n_lm = DIM(rlm, 0), n_ent = DIM(rdep, 0), n_deps = DIM(sdep, 1);
    int64_t n_st = DIM(st_dist, 0), n_ch = DIM(rchain, 0);
    int ok = DIM(rsite, 0) == n_sites && DIM(rsite, 1) == 2 && DIM(rlm, 1) == RL_NCOL &&
             DIM(rwt, 0) == n_ent && DIM(sdep, 0) == n_sites && DIM(st_dist, 1) == 2 &&
             DIM(st_maxtok, 0) == n_st && DIM(st_coef, 0) == n_st && DIM(st_coef, 1) == L &&
             DIM(st_coef, 2) == 5 && DIM(dslot, 0) == n_deps && DIM(dslot, 1) == L &&
             DIM(rcfg, 0) == RC_NCOL && DIM(dstats, 0) == n_deps && DIM(dstats, 1) == DS_NCOL &&
             n_deps >= 1;
    const int64_t *rs = I64(rsite), *rc = I64(rchain), *rl = I64(rlm), *rd = I64(rdep);
    const int64_t *sd = I64(sdep), *dd = I64(st_dist);
    for (int64_t i = 0; ok && i < n_lm; i++) {
        const int64_t *r = rl + i * RL_NCOL;
        ok = r[RL_POLICY] >= POL_WEIGHTED && r[RL_POLICY] <= POL_PRIORITY && r[RL_LEN] >= 1 &&
             r[RL_LEN] <= MAX_ROUTE && r[RL_OFF] >= 0 && r[RL_OFF] + r[RL_LEN] <= n_ent;
    }
    for (int64_t i = 0; ok && i < n_ent; i++) ok = rd[i] >= 0 && rd[i] < n_deps;
    for (int64_t i = 0; ok && i < n_ch; i++) ok = rc[i] >= 0 && rc[i] < n_lm;
    for (int64_t i = 0; ok && i < n_st; i++)
        ok = dd[2 * i] >= 0 && dd[2 * i] < n_d && dd[2 * i + 1] >= 0 && dd[2 * i + 1] < n_d;
    for (int64_t i = 0; ok && i < n_sites; i++) {
        ok = rs[2 * i] >= 0 && rs[2 * i + 1] >= 1 && rs[2 * i + 1] <= INT16_MAX &&
             rs[2 * i] + rs[2 * i + 1] <= n_ch;
        /* every deployment a site's chain may choose has its (site, deployment) row */
        for (int64_t c = 0; ok && c < rs[2 * i + 1]; c++) {
            const int64_t *r = rl + rc[rs[2 * i] + c] * RL_NCOL;
            for (int64_t e = 0; ok && e < r[RL_LEN]; e++) {
                int64_t row = sd[i * n_deps + rd[r[RL_OFF] + e]];
                ok = row >= 0 && row < n_st;
            }
        }
    }
    const double *cfg = F64(rcfg);
    if (ok && cfg[RC_ON] > 0.0) ok = cfg[RC_WINDOW] > 0.0;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "replicate: routing arrays of inconsistent shapes");
        return -1;
    }
    T->on = 1;
    T->n_deps = n_deps;
    T->n_lm = n_lm;
    T->n_sites = n_sites;
    T->rsite = rs;
    T->rchain = rc;
    T->rlm = rl;
    T->rdep = rd;
    T->rwt = F64(rwt);
    T->sdep = sd;
    T->st_dist = dd;
    T->st_maxtok = F64(st_maxtok);
    T->st_coef = F64(st_coef);
    T->dslot = (const int8_t *)PyArray_DATA(dslot);
    T->dstats = F64(dstats);
    T->cd_on = cfg[RC_ON] > 0.0;
    T->cd_thr = cfg[RC_THRESHOLD];
    T->cd_min = cfg[RC_MIN_CALLS];
    T->cd_win = cfg[RC_WINDOW];
    T->cd_sec = cfg[RC_SECONDS];
    return 0;
}

/* Read and check the populations' arrays (ptab, counts, pstats). */
static int get_pops(PyObject *pops, int64_t N, int64_t n_turns, int64_t n_d, Out *O) {
    if (!PyTuple_Check(pops) || PyTuple_GET_SIZE(pops) != 3) {
        PyErr_SetString(PyExc_TypeError, "pops must be None or a tuple of 3 arrays");
        return -1;
    }
    PyArrayObject *ptab = arr(PyTuple_GET_ITEM(pops, 0), NPY_INT64, 2, 0, "ptab");
    PyArrayObject *pcount = arr(PyTuple_GET_ITEM(pops, 1), NPY_INT64, 1, 0, "counts");
    PyArrayObject *pstats = arr(PyTuple_GET_ITEM(pops, 2), NPY_FLOAT64, 2, 1, "pstats");
    if (!ptab || !pcount || !pstats) return -1;
    int64_t n = DIM(ptab, 0), total = 0;
    int ok = n >= 1 && n <= INT32_MAX && DIM(ptab, 1) == PP_NCOL && DIM(pcount, 0) == n &&
             DIM(pstats, 0) == n && DIM(pstats, 1) == PS_NCOL;
    const int64_t *pt = I64(ptab), *pc = I64(pcount);
    for (int64_t p = 0; ok && p < n; p++) {
        const int64_t *r = pt + p * PP_NCOL;
        ok = (r[PP_MODE] == 0 || r[PP_MODE] == 1) && r[PP_PAUSE] >= 0 && r[PP_PAUSE] < n_d &&
             r[PP_START_P] >= 0 && r[PP_START_P] < n_d && r[PP_TURN_LAW] >= 0 &&
             r[PP_TURN_LAW] < n_d && r[PP_TURN_OFF] >= 0 && r[PP_TURN_LEN] >= 1 &&
             r[PP_TURN_OFF] + r[PP_TURN_LEN] <= n_turns && pc[p] >= 0 && pc[p] <= N;
        total += ok ? pc[p] : 0;
    }
    if (!ok || total != N) {
        PyErr_SetString(PyExc_ValueError, "replicate: population arrays of inconsistent "
                                          "shapes (or counts not adding up to n_sessions)");
        return -1;
    }
    O->ptab = pt;
    O->pcount = pc;
    O->pstats = F64(pstats);
    O->n_pops = n;
    return 0;
}

static const char replicate_doc[] =
    "replicate(n_sessions, rep_key, t0, t1, max_nodes, turn_cum, turn_root, sprog, sprob,\n"
    "          schild, dpar, cval, ccum, site_dist, site_cached, site_maxtok, coef, P, cfg,\n"
    "          bucket_deficit, window_used, trace, queue=0, route=None, pops=None)\n"
    "--\n\n"
    "Simulate one replication; returns (stats, turn latencies, utilisation units, exceeded\n"
    "windows per slot, attempts traced). queue: 0 calendar queue, 1 binary heap. route:\n"
    "None (every call on its own model) or the fleet's arrays (rsite, rchain, rlm, rdep,\n"
    "rwt, sdep, st_dist, st_maxtok, st_coef, dslot, rcfg, dstats); dstats (deployments x\n"
    "4) is written. pops: None (every session runs cfg's pacing and the whole turn mix) or\n"
    "(ptab, counts, pstats): per population (mode, pause distribution, first turn type,\n"
    "turn types) and its sessions (contiguous blocks, adding up to n_sessions); pstats\n"
    "(populations x 9: the first 9 statistics) is written and a sixth value is returned,\n"
    "each turn latency's population.";

static PyObject *py_replicate(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *kwlist[] = {"n_sessions", "rep_key", "t0", "t1", "max_nodes", "turn_cum",
                             "turn_root", "sprog", "sprob", "schild", "dpar", "cval", "ccum",
                             "site_dist", "site_cached", "site_maxtok", "coef", "P", "cfg",
                             "bucket_deficit", "window_used", "trace", "queue", "route",
                             "pops", NULL};
    long long N, M;
    unsigned long long rep_key;
    double t0, t1;
    int queue = 0;
    PyObject *o[17], *route = Py_None, *pops = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "LKddLOOOOOOOOOOOOOOOOO|iOO", kwlist, &N,
                                     &rep_key, &t0, &t1, &M, &o[0], &o[1], &o[2], &o[3], &o[4],
                                     &o[5], &o[6], &o[7], &o[8], &o[9], &o[10], &o[11], &o[12],
                                     &o[13], &o[14], &o[15], &o[16], &queue, &route, &pops))
        return NULL;
    if (N < 1 || M < 1 || N > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "n_sessions and max_nodes must be in range");
        return NULL;
    }
    PyArrayObject *turn_cum = arr(o[0], NPY_FLOAT64, 1, 0, "turn_cum");
    PyArrayObject *turn_root = arr(o[1], NPY_INT64, 1, 0, "turn_root");
    PyArrayObject *sprog = arr(o[2], NPY_INT64, 2, 0, "sprog");
    PyArrayObject *sprob = arr(o[3], NPY_FLOAT64, 1, 0, "sprob");
    PyArrayObject *schild = arr(o[4], NPY_INT64, 1, 0, "schild");
    PyArrayObject *site_dist = arr(o[8], NPY_INT64, 2, 0, "site_dist");
    PyArrayObject *site_cached = arr(o[9], NPY_FLOAT64, 1, 0, "site_cached");
    PyArrayObject *site_maxtok = arr(o[10], NPY_FLOAT64, 1, 0, "site_maxtok");
    PyArrayObject *coef = arr(o[11], NPY_FLOAT64, 3, 0, "coef");
    PyArrayObject *P = arr(o[12], NPY_FLOAT64, 2, 0, "P");
    PyArrayObject *cfg = arr(o[13], NPY_FLOAT64, 1, 0, "cfg");
    PyArrayObject *deficit = arr(o[14], NPY_FLOAT64, 1, 0, "bucket_deficit");
    PyArrayObject *used = arr(o[15], NPY_FLOAT64, 1, 0, "window_used");
    PyArrayObject *trace = arr(o[16], NPY_FLOAT64, 2, 1, "trace");
    Prog G;
    int64_t n_d;
    if (!turn_cum || !turn_root || !sprog || !sprob || !schild || !site_dist || !site_cached ||
        !site_maxtok || !coef || !P || !cfg || !deficit || !used || !trace ||
        get_dists(o[5], o[6], o[7], &G.D, &n_d) < 0)
        return NULL;
    int64_t L = DIM(P, 0), n_sites = DIM(site_dist, 0);
    Rt T;
    memset(&T, 0, sizeof(T));
    if (route != Py_None && get_route(route, n_sites, L, n_d, &T) < 0) return NULL;
    int64_t ND = T.on ? T.n_deps : 0;
    if (DIM(P, 1) != P_NCOL || DIM(cfg, 0) < C_NCFG || DIM(sprog, 1) != 3 ||
        DIM(site_dist, 1) != 4 || DIM(coef, 0) != n_sites || DIM(coef, 1) != L ||
        DIM(coef, 2) != 5 || DIM(site_cached, 0) != n_sites || DIM(site_maxtok, 0) != n_sites ||
        DIM(deficit, 0) != L || DIM(used, 0) != L || DIM(turn_cum, 0) != DIM(turn_root, 0) ||
        DIM(turn_cum, 0) < 1 || DIM(sprob, 0) != DIM(sprog, 0) ||
        (DIM(trace, 0) > 0 && DIM(trace, 1) != T_UNITS + L + ND) ||
        DIM(trace, 0) > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "replicate: arrays of inconsistent shapes");
        return NULL;
    }
    if (n_sites > UINT16_MAX + 1) { /* a node keeps its call site in 16 bits */
        PyErr_SetString(PyExc_ValueError, "replicate: more than 65536 call sites");
        return NULL;
    }
    {
        const double *c = F64(cfg);
        if (!(c[C_PAUSE] >= 0 && c[C_PAUSE] < n_d && c[C_START_P] >= 0 && c[C_START_P] < n_d &&
              c[C_TURN_LAW] >= 0 && c[C_TURN_LAW] < n_d)) {
            PyErr_SetString(PyExc_ValueError, "replicate: cfg names no such distribution");
            return NULL;
        }
    }
    G.turn_cum = F64(turn_cum);
    G.n_turns = DIM(turn_cum, 0);
    G.turn_root = I64(turn_root);
    G.sprog = I64(sprog);
    G.sprob = F64(sprob);
    G.schild = I64(schild);
    G.site_dist = I64(site_dist);
    G.site_cached = F64(site_cached);
    G.site_maxtok = F64(site_maxtok);
    G.coef = F64(coef);
    G.cfg = F64(cfg);
    G.L = L;
    G.n_sites = n_sites;
    npy_intp dl = (npy_intp)L, ds = N_STATS;
    PyArrayObject *util = (PyArrayObject *)PyArray_ZEROS(1, &dl, NPY_FLOAT64, 0);
    PyArrayObject *exc = (PyArrayObject *)PyArray_ZEROS(1, &dl, NPY_FLOAT64, 0);
    PyArrayObject *stats = (PyArrayObject *)PyArray_ZEROS(1, &ds, NPY_FLOAT64, 0);
    if (!util || !exc || !stats) {
        Py_XDECREF(util);
        Py_XDECREF(exc);
        Py_XDECREF(stats);
        return NULL;
    }
    Out O;
    memset(&O, 0, sizeof(O));
    if (pops != Py_None && get_pops(pops, N, G.n_turns, n_d, &O) < 0) {
        Py_DECREF(util);
        Py_DECREF(exc);
        Py_DECREF(stats);
        return NULL;
    }
    O.util = F64(util);
    O.exceeded = F64(exc);
    O.trace = F64(trace);
    O.trace_rows = DIM(trace, 0);
    Run R;
    int rc = rt_alloc(&T);
    if (rc == 0) {
        Py_BEGIN_ALLOW_THREADS
        rc = replicate_c(&G, N, (uint64_t)rep_key, t0, t1, M, F64(P), F64(deficit), F64(used),
                         queue == 1, &O, &R, &T);
        Py_END_ALLOW_THREADS
    } else {
        memset(&R, 0, sizeof(R));
    }
    rt_free(&T);
    if (rc < 0) {
        Py_DECREF(util);
        Py_DECREF(exc);
        Py_DECREF(stats);
        if (rc == -3) {
            PyErr_SetString(PyExc_KeyboardInterrupt, "replication stopped");
            return NULL;
        }
        return PyErr_NoMemory();
    }
    memcpy(F64(stats), O.stats, sizeof(O.stats));
    npy_intp nl = (npy_intp)R.n_lat;
    PyArrayObject *lat = (PyArrayObject *)PyArray_SimpleNew(1, &nl, NPY_FLOAT64);
    if (lat) memcpy(F64(lat), R.lat, sizeof(double) * (size_t)R.n_lat);
    PyArrayObject *latp = NULL;
    if (lat && O.n_pops > 0) {
        latp = (PyArrayObject *)PyArray_SimpleNew(1, &nl, NPY_INT64);
        if (latp)
            for (int64_t i = 0; i < R.n_lat; i++) I64(latp)[i] = R.latp[i];
    }
    free(R.lat);
    free(R.latp);
    if (!lat || (O.n_pops > 0 && !latp)) {
        Py_XDECREF(lat);
        Py_DECREF(util);
        Py_DECREF(exc);
        Py_DECREF(stats);
        return NULL;
    }
    if (latp)
        return Py_BuildValue("NNNNLN", stats, lat, util, exc, (long long)O.n_tr, latp);
    return Py_BuildValue("NNNNL", stats, lat, util, exc, (long long)O.n_tr);
}

static PyObject *py_sample_many(PyObject *self, PyObject *args) {
    (void)self;
    long long d, n;
    unsigned long long key;
    PyObject *a, *b, *c;
    if (!PyArg_ParseTuple(args, "LKLOOO", &d, &key, &n, &a, &b, &c)) return NULL;
    Dists D;
    int64_t n_d;
    if (get_dists(a, b, c, &D, &n_d) < 0) return NULL;
    if (d < 0 || d >= n_d || n < 0) {
        PyErr_SetString(PyExc_ValueError, "sample_many: no such distribution");
        return NULL;
    }
    npy_intp dn = (npy_intp)n;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &dn, NPY_FLOAT64);
    if (!out) return NULL;
    double *x = F64(out);
    for (int64_t i = 0; i < n; i++) x[i] = draw(&D, d, (uint64_t)key, (uint64_t)(2 * i));
    return (PyObject *)out;
}

static PyObject *py_residual_many(PyObject *self, PyObject *args) {
    (void)self;
    long long d, n;
    unsigned long long key;
    PyObject *a, *b, *c;
    if (!PyArg_ParseTuple(args, "LKLOOO", &d, &key, &n, &a, &b, &c)) return NULL;
    Dists D;
    int64_t n_d;
    if (get_dists(a, b, c, &D, &n_d) < 0) return NULL;
    if (d < 0 || d >= n_d || n < 0) {
        PyErr_SetString(PyExc_ValueError, "residual_many: no such distribution");
        return NULL;
    }
    npy_intp dn = (npy_intp)n;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, &dn, NPY_FLOAT64);
    if (!out) return NULL;
    double *x = F64(out);
    for (int64_t i = 0; i < n; i++) x[i] = draw_residual(&D, d, hash2((uint64_t)key, (uint64_t)i));
    return (PyObject *)out;
}

/* limiter_attempt(P, st, log_t, log_u, t, units, rejected) -> (admitted, retry_after_s) */
static PyObject *py_limiter_attempt(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o[6];
    double t;
    if (!PyArg_ParseTuple(args, "OOOOdOO", &o[0], &o[1], &o[2], &o[3], &t, &o[4], &o[5]))
        return NULL;
    PyArrayObject *P = arr(o[0], NPY_FLOAT64, 2, 0, "P");
    PyArrayObject *st = arr(o[1], NPY_FLOAT64, 2, 1, "st");
    PyArrayObject *lt = arr(o[2], NPY_FLOAT64, 2, 1, "log_t");
    PyArrayObject *lu = arr(o[3], NPY_FLOAT64, 2, 1, "log_u");
    PyArrayObject *un = arr(o[4], NPY_FLOAT64, 1, 0, "units");
    PyArrayObject *rj = arr(o[5], NPY_INT8, 1, 1, "rejected");
    if (!P || !st || !lt || !lu || !un || !rj) return NULL;
    int64_t n = DIM(P, 0);
    if (DIM(P, 1) != P_NCOL || DIM(st, 0) != n || DIM(st, 1) != S_NCOL || DIM(lt, 0) != n ||
        DIM(lu, 0) != n || DIM(lt, 1) != DIM(lu, 1) || DIM(un, 0) != n || DIM(rj, 0) != n) {
        PyErr_SetString(PyExc_ValueError, "limiter_attempt: arrays of inconsistent shapes");
        return NULL;
    }
    Lim L = {F64(P), F64(st), F64(lt), F64(lu), n, DIM(lt, 1), 0};
    if (lim_log_full(&L)) {
        PyErr_SetString(PyExc_ValueError, "limiter_attempt: a sliding-window log is full "
                                          "(grow it with ensure_log_capacity first)");
        return NULL;
    }
    double ra;
    int a = lim_attempt(&L, t, F64(un), (int8_t *)PyArray_DATA(rj), &ra);
    return Py_BuildValue("Nd", PyBool_FromLong(a), ra);
}

/* run_attempts(P, times, units) -> (admitted, retry_after_s, rejected_by) */
static PyObject *py_run_attempts(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *o[3];
    if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2])) return NULL;
    PyArrayObject *P = arr(o[0], NPY_FLOAT64, 2, 0, "P");
    PyArrayObject *tm = arr(o[1], NPY_FLOAT64, 1, 0, "times");
    PyArrayObject *un = arr(o[2], NPY_FLOAT64, 2, 0, "units");
    if (!P || !tm || !un) return NULL;
    int64_t n = DIM(P, 0), m = DIM(tm, 0);
    if (DIM(P, 1) != P_NCOL || DIM(un, 0) != m || DIM(un, 1) != n) {
        PyErr_SetString(PyExc_ValueError, "run_attempts: arrays of inconsistent shapes");
        return NULL;
    }
    npy_intp dm = (npy_intp)m, d2[2] = {(npy_intp)m, (npy_intp)n};
    PyArrayObject *adm = (PyArrayObject *)PyArray_ZEROS(1, &dm, NPY_BOOL, 0);
    PyArrayObject *ra = (PyArrayObject *)PyArray_ZEROS(1, &dm, NPY_FLOAT64, 0);
    PyArrayObject *rj = (PyArrayObject *)PyArray_ZEROS(2, d2, NPY_INT8, 0);
    double *zeros = calloc((size_t)n + 1, sizeof(double));
    Lim L;
    memset(&L, 0, sizeof(L));
    int ok = adm && ra && rj && zeros && lim_load(&L, F64(P), n, zeros, zeros, 0) == 0;
    for (int64_t k = 0; ok && k < m; k++) {
        if (lim_log_full(&L) && lim_grow(&L) < 0) ok = 0;
        else
            ((npy_bool *)PyArray_DATA(adm))[k] = (npy_bool)lim_attempt(
                &L, F64(tm)[k], F64(un) + k * n, (int8_t *)PyArray_DATA(rj) + k * n, F64(ra) + k);
    }
    lim_free(&L);
    free(zeros);
    if (!ok) {
        Py_XDECREF(adm);
        Py_XDECREF(ra);
        Py_XDECREF(rj);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    return Py_BuildValue("NNN", adm, ra, rj);
}

static PyObject *py_layout(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,"
        "s:d,s:d,s:d,s:d}",
        "T_LAT", T_LAT, "PP_NCOL", PP_NCOL, "PS_NCOL", PS_NCOL, "POL_PRIORITY", POL_PRIORITY,
        "RL_NCOL", RL_NCOL, "RC_NCOL", RC_NCOL,
        "DS_NCOL", DS_NCOL, "NX_FAIL", NX_FAIL, "K_UNAVAILABLE", K_UNAVAILABLE,
        "D_CHOICE", D_CHOICE, "S_REP", S_REP, "DP_LEN", DP_LEN, "SITE_TPS", SITE_TPS,
        "C_TURN_LAW", C_TURN_LAW, "N_STATS", N_STATS, "KIND_BUCKET", KIND_BUCKET,
        "P_OFFSET", P_OFFSET, "S_SUM", S_SUM, "T_JITTER", T_JITTER, "T_UNITS", T_UNITS,
        "F_MEASURED", F_MEASURED, "MIN_WAIT", MIN_WAIT, "WAKE_EPSILON_S", WAKE_EPSILON_S,
        "WAIT_NONE", WAIT_NONE, "WAIT_GAVE_UP", WAIT_GAVE_UP);
}

static PyObject *py_stop(PyObject *self, PyObject *arg) {
    (void)self;
    int on = PyObject_IsTrue(arg);
    if (on < 0) return NULL;
    g_stop = on ? 1 : 0;
    Py_RETURN_NONE;
}

static PyObject *py_trim(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    map_trim();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"stop", py_stop, METH_O,
     "stop(flag)\n--\n\nTrue: every running replication stops within ~4,096 events and "
     "raises KeyboardInterrupt; False: replications run again."},
    {"replicate", (PyCFunction)(void (*)(void))py_replicate, METH_VARARGS | METH_KEYWORDS,
     replicate_doc},
    {"sample_many", py_sample_many, METH_VARARGS,
     "sample_many(d, key, n, dpar, cval, ccum)\n--\n\nn draws of distribution d."},
    {"residual_many", py_residual_many, METH_VARARGS,
     "residual_many(d, key, n, dpar, cval, ccum)\n--\n\n"
     "n equilibrium residuals of distribution d (child streams 0..n-1 of key)."},
    {"limiter_attempt", py_limiter_attempt, METH_VARARGS,
     "limiter_attempt(P, st, log_t, log_u, t, units, rejected)\n--\n\n"
     "One attempt through the array limiter: (admitted, retry_after_s)."},
    {"run_attempts", py_run_attempts, METH_VARARGS,
     "run_attempts(P, times, units)\n--\n\n"
     "A fresh limiter fed an arrival sequence: (admitted, retry_after_s, rejected_by)."},
    {"trim", py_trim, METH_NOARGS,
     "trim()\n--\n\nUnmap the big regions kept from finished replications for the next "
     "ones (sessions, node pool, epoch buffers: from 4 MB each, at most 16)."},
    {"layout", py_layout, METH_NOARGS,
     "layout()\n--\n\nThe layout constants compiled into this module."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_engine",
                                    "The simulator's compiled event loop (see _engine.c).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__engine(void) {
    import_array();
    return PyModule_Create(&moddef);
}
