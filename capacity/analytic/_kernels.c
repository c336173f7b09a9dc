/* The analytic model's scalar-bound loops, compiled: numpy's and Python's numbers.
 *
 * carry_loop: the retry carry's iteration (capacity.analytic.window._carry_law).
 * The analytic model's slowest loop is a Lindley-type recursion on a short lattice
 * (tens of windows, ~500 points): each step is two FFTs and some twenty small numpy
 * operations, whose per-call overhead was most of the cost. This file runs the loop's
 * element-wise work in C and calls back into Python once a step for the convolution
 * (numpy's own FFT and complex product), so the numbers are numpy's bit for bit:
 *
 *  - element-wise +, -, *, floor are IEEE operations (setup.py turns contraction into
 *    fused multiply-adds off);
 *  - every sum is numpy's pairwise summation of a contiguous float64 array (0.0 plus
 *    the pairwise sum: 8 accumulators up to 128 elements, halves above), as
 *    ``np.add.reduce`` computes it;
 *  - the two bincounts of the remap accumulate in index order into zeroed arrays,
 *    then add, as numpy's bincount and ``+=`` do;
 *  - Python's ``min``/``max``/``**`` on floats are mirrored (``pow`` from libm).
 *
 * rate_mva_loop: the rate pacer's mean-value recursion over N = 1..n_max
 * (capacity.analytic.pacing.rate_mva): scalar float arithmetic in the order Python
 * evaluates it, its min/max, and np.interp's arithmetic (pacing._interp).
 *
 * hold_law_sums: the pacer's time-average law of the calls a session holds
 * (capacity.analytic.pacing.hold_law): its row sorts, levels and weighted bincount.
 *
 * storm_renewal, storm_retried: the retry storms' renewal sums of the pauses
 * (capacity.analytic.window._storm_arrivals), Python's scalar order, numpy's pairwise sums.
 *
 * search_right: np.searchsorted(side="right") of random keys (the pacer's slot draws).
 *
 * search_sorted: np.searchsorted of keys nearly in order (the turn sample's cross-turn lags
 * and a session's earlier launches), galloping from the last answer.
 *
 * gamma_wh: the pacer's slot waits, Gamma(k, 1) by Wilson-Hilferty (pacing._gamma), with
 * numpy's own cube and log1p loops.
 *
 * run_signatures, cross_lag, launch_groups: the turn sample's window runs, cross moment
 * and launch events (capacity.analytic.timing.TurnTiming): integer counts, numpy's
 * sequential prefix sums and pairwise sums in the numpy code's order.
 *
 * session_law: a session's window law from its timeline (window._session_law_uncached).
 *
 * masked_columns: the turn sample's launch columns copied into their (n, R) arrays
 * (timing.turn_timing): values copied, never computed.
 *
 * coarsen: a lattice pmf on a coarser lattice (window._coarsen): np.add.at's sums, in its
 * order.
 *
 * pgf_truncated: a fleet spill count's pgf at a charge's transform, each point's power sum
 * cut once its power is below eps (fleet._compound on long count laws): IEEE element-wise
 * operations in the numpy fallback's order.
 *
 * pgf_horner: a fleet's short count pgf at a charge's transform by Horner's rule
 * (fleet._pgf): numpy's complex product as its AVX2/AVX-512 loops compute it (each part one
 * fused multiply-add), used only where a probe finds numpy's products the same.
 *
 * pairwise_sum: numpy's pairwise summation of a float64 vector (the tests' check of the
 * sums every loop above uses).
 *
 * tests/test_analytic_speed.py checks each against the Python/numpy code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>

/* numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src), started from 0. */
static double pairwise(const double *a, npy_intp n) {
    if (n < 8) {
        double res = 0.0;
        for (npy_intp i = 0; i < n; i++) res += a[i];
        return res;
    } else if (n <= 128) {
        double r[8];
        npy_intp i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8) {
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        }
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    } else {
        npy_intp n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise(a, n2) + pairwise(a + n2, n - n2);
    }
}

static double total(const double *a, npy_intp n) { return 0.0 + pairwise(a, n); }

/* pairwise(a, n) of a vector zero outside [lo, hi): the same tree, each block wholly
 * outside the span taken as its sum, +0.0, without reading it (a block of +0.0 sums to
 * +0.0 and x + 0.0 is x: the same number as the whole vector's sum, bit for bit). A storm
 * chain's count spans ~150 of its ~3,700 points at a step. */
static double pairwise_span(const double *a, npy_intp n, npy_intp lo, npy_intp hi) {
    if (hi <= 0 || lo >= n) return 0.0;
    if (n <= 128) return pairwise(a, n);
    npy_intp n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_span(a, n2, lo, hi) + pairwise_span(a + n2, n - n2, lo - n2, hi - n2);
}

/* name_plain and, on x86-64 with GCC or Clang, name_avx2: core (an always-inline
 * int core(T *)) built twice, the second in AVX2's 4-wide registers (no FMA: each product
 * and sum rounds as the plain build's, element by element); BEST_BUILD(name, p) calls
 * the one this CPU runs. */
/* Set by plain_builds(True): every BEST_BUILD calls the plain build, so a test compares
 * the two builds byte for byte on a CPU that has AVX2 (elsewhere only the plain one runs). */
static int g_plain_only = 0;
#if defined(__GNUC__) && defined(__x86_64__)
#define TWO_BUILDS(name, T, core) \
    static int name##_plain(T *p) { return core(p); } \
    __attribute__((target("avx2"))) static int name##_avx2(T *p) { return core(p); }
#define BEST_BUILD(name, p) \
    (!g_plain_only && __builtin_cpu_supports("avx2") ? name##_avx2(p) : name##_plain(p))
#else
#define TWO_BUILDS(name, T, core) static int name##_plain(T *p) { return core(p); }
#define BEST_BUILD(name, p) name##_plain(p)
#endif

/* carry_loop(y, q, retries, windows, rtol, conv) -> (y, mean, dropped, settled)
 *
 * y: the starting law (float64, length L, C-contiguous; not modified);
 * conv(back) -> the circular convolution of back with the window count (float64,
 * length L; read before the next call); or conv = (gh, rfft, irfft, multiply): the window
 * count's transform (complex128, L/2 + 1) and the ufuncs the callback would call
 * (numpy.fft._pocketfft_umath's rfft_n_even or rfft_n_odd and irfft, np.multiply), whose
 * own inner loops then run here without a call back into Python (struct direct_conv). */
/* A float64 array this machine can read in place: native byte order and aligned (a
 * big-endian '>f8' has the same type number and would be read as garbage). */
#define F64(a) (PyArray_TYPE(a) == NPY_FLOAT64 && PyArray_ISNOTSWAPPED(a) && \
                PyArray_ISALIGNED(a))

/* A ufunc's own inner loop for one type signature: the function numpy's ufunc machinery
 * runs for it (the same code, so the same numbers), called without the machinery's few
 * microseconds per call (argument parsing, type resolution, output allocation, the
 * floating-point error checks: a loop over probability laws raises none it would report). */
struct loop {
    PyUFuncGenericFunction fn;
    void *data;
};

static int find_loop(PyObject *uf, const char *types, struct loop *out) {
    if (!PyObject_TypeCheck(uf, &PyUFunc_Type)) {
        PyErr_SetString(PyExc_TypeError, "not a ufunc");
        return -1;
    }
    PyUFuncObject *u = (PyUFuncObject *)uf;
    for (int i = 0; i < u->ntypes; i++) {
        if (memcmp(u->types + (size_t)i * (size_t)u->nargs, types, (size_t)u->nargs) == 0 &&
            u->functions[i] != NULL) {
            out->fn = u->functions[i];
            out->data = u->data == NULL ? NULL : u->data[i];
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "%s: no loop for these types", u->name);
    return -1;
}

/* The carry's convolution as _carry_law's callback computes it — irfft(rfft(back) · gh)
 * with np.fft's transforms (_real_fft: the pocketfft gufuncs, one row, factor 1 forward
 * and 1/L backward) and numpy's in-place complex product — by the same inner loops. */
struct direct_conv {
    struct loop fwd, mul, inv;
    npy_intp L, m;       /* lattice points; spectrum points, L/2 + 1 */
    const double *gh;    /* the window count's transform (m complex) */
    double *spec;        /* scratch: the transform of back (m complex) */
    double *real;        /* the convolution (L) */
    double one, scale;   /* the transforms' factors: 1 forward, 1/L backward */
};

static int direct_init(struct direct_conv *dc, PyObject *spec_tuple, npy_intp L) {
    PyObject *gh_obj, *fwd, *inv, *mul;
    if (!PyArg_ParseTuple(spec_tuple, "O!OOO", &PyArray_Type, &gh_obj, &fwd, &inv, &mul))
        return -1;
    PyArrayObject *gh = (PyArrayObject *)gh_obj;
    dc->L = L;
    dc->m = L / 2 + 1;
    if (PyArray_TYPE(gh) != NPY_COMPLEX128 || !PyArray_ISNOTSWAPPED(gh) ||
        !PyArray_ISALIGNED(gh) || PyArray_NDIM(gh) != 1 || !PyArray_IS_C_CONTIGUOUS(gh) ||
        PyArray_DIM(gh, 0) != dc->m) {
        PyErr_SetString(PyExc_ValueError, "gh must be a contiguous complex128 of L/2 + 1");
        return -1;
    }
    const char real_fwd[3] = {NPY_DOUBLE, NPY_DOUBLE, NPY_CDOUBLE};
    const char product[3] = {NPY_CDOUBLE, NPY_CDOUBLE, NPY_CDOUBLE};
    const char real_inv[3] = {NPY_CDOUBLE, NPY_DOUBLE, NPY_DOUBLE};
    if (find_loop(fwd, real_fwd, &dc->fwd) < 0 || find_loop(mul, product, &dc->mul) < 0 ||
        find_loop(inv, real_inv, &dc->inv) < 0)
        return -1;
    dc->gh = (const double *)PyArray_DATA(gh);
    dc->spec = (double *)malloc(sizeof(double) * 2 * (size_t)dc->m);
    dc->real = (double *)malloc(sizeof(double) * (size_t)L);
    if (!dc->spec || !dc->real) {
        PyErr_NoMemory();
        return -1;
    }
    dc->one = 1.0;
    dc->scale = 1.0 / (double)L;  /* np.reciprocal(L, dtype=float64) */
    return 0;
}

static void direct_free(struct direct_conv *dc) {
    free(dc->spec);
    free(dc->real);
    dc->spec = dc->real = NULL;
}

/* The convolution of back (L) into dc->real; -1 with an exception set on failure. */
static int direct_run(struct direct_conv *dc, const double *back) {
    const npy_intp cs = 2 * (npy_intp)sizeof(double), rs = (npy_intp)sizeof(double);
    /* gufunc "(n),()->(m)": one outer row; core sizes and strides after the outer ones */
    char *fa[3] = {(char *)back, (char *)&dc->one, (char *)dc->spec};
    npy_intp fd[3] = {1, dc->L, dc->m}, fs[5] = {0, 0, 0, rs, cs};
    dc->fwd.fn(fa, fd, fs, dc->fwd.data);
    if (PyErr_Occurred()) return -1;
    char *ma[3] = {(char *)dc->spec, (char *)dc->gh, (char *)dc->spec};  /* spec *= gh */
    npy_intp md[1] = {dc->m}, ms[3] = {cs, cs, cs};
    dc->mul.fn(ma, md, ms, dc->mul.data);
    char *ia[3] = {(char *)dc->spec, (char *)&dc->scale, (char *)dc->real};
    npy_intp id[3] = {1, dc->m, dc->L}, is[5] = {0, 0, 0, cs, rs};
    dc->inv.fn(ia, id, is, dc->inv.data);
    if (PyErr_Occurred()) return -1;
    return 0;
}

static PyObject *carry_loop(PyObject *self, PyObject *args) {
    PyObject *y_obj, *conv;
    double q, rtol;
    int retries, windows;
    if (!PyArg_ParseTuple(args, "O!diidO", &PyArray_Type, &y_obj, &q, &retries, &windows,
                          &rtol, &conv))
        return NULL;
    PyArrayObject *y_in = (PyArrayObject *)y_obj;
    if (!F64(y_in) || PyArray_NDIM(y_in) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(y_in)) {
        PyErr_SetString(PyExc_ValueError, "y must be a contiguous float64 vector");
        return NULL;
    }
    npy_intp L = PyArray_DIM(y_in, 0);
    if (!(q >= 0.0 && q < (double)L)) {  /* before any cast: nan, inf, huge q */
        PyErr_SetString(PyExc_ValueError, "q outside the lattice");
        return NULL;
    }
    npy_intp qi = (npy_intp)floor(q + 0.5);
    npy_intp up = (npy_intp)floor(q) + 1;
    npy_intp limit = qi + 1 > L - qi - 1 ? qi + 1 : L - qi - 1;
    npy_intp head = L - qi;
    if (L < 1 || head < 1 || up < 1 || up > L) {
        PyErr_SetString(PyExc_ValueError, "q outside the lattice");
        return NULL;
    }
    struct direct_conv dc = {0};
    const int direct = PyTuple_Check(conv);
    if (direct && direct_init(&dc, conv, L) < 0) {
        direct_free(&dc);
        return NULL;
    }
    npy_intp dims[1] = {L};
    /* Two laws in turn (y, the next), the remap's two bincounts, a scratch of products. */
    PyArrayObject *ya = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    PyArrayObject *yb = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    PyArrayObject *back = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    double *lo_sum = (double *)malloc(sizeof(double) * (size_t)L);
    double *buf = (double *)malloc(sizeof(double) * (size_t)L);
    PyObject *res = NULL, *z_obj = NULL;
    if (!ya || !yb || !back || !lo_sum || !buf) {
        PyErr_NoMemory();
        goto done;
    }
    double *y = (double *)PyArray_DATA(ya), *nxt = (double *)PyArray_DATA(yb);
    double *bk = (double *)PyArray_DATA(back);
    memcpy(y, PyArray_DATA(y_in), sizeof(double) * (size_t)L);
    for (npy_intp k = 0; k < L; k++) buf[k] = (double)k * y[k];
    double mean = total(buf, L);
    double dropped = 0.0;
    int settled = 0;
    for (int it = 0; it < windows; it++) {
        for (npy_intp k = up; k < L; k++) buf[k] = ((double)k - q) * y[k];
        double over_q = total(buf + up, L - up);
        dropped = 0.0;
        if (over_q > 0.0 && retries >= 1) {
            double m = 1e-300 > mean ? 1e-300 : mean;           /* max(mean, 1e-300) */
            double ratio = over_q / m;
            double rho = ratio < 1.0 ? ratio : 1.0;               /* min(1.0, ratio) */
            double phi = pow(rho, (double)(retries - 1));
            dropped = phi * over_q;
            /* _remap(ar[up:] − phi·(ar[up:] − q), y[up:], L), then back[:up] += y[:up] */
            memset(lo_sum, 0, sizeof(double) * (size_t)L);
            memset(bk, 0, sizeof(double) * (size_t)L);
            for (npy_intp k = up; k < L; k++) {
                double v = (double)k - phi * ((double)k - q);
                double f = floor(v);
                npy_intp lo = (npy_intp)f;
                double frac = v - f;
                if (lo < 0 || lo >= L) {
                    PyErr_SetString(PyExc_ValueError, "remap outside the lattice");
                    goto done;
                }
                lo_sum[lo] += y[k] * (1.0 - frac);
            }
            for (npy_intp k = up; k < L; k++) {
                double v = (double)k - phi * ((double)k - q);
                double f = floor(v);
                npy_intp hi = (npy_intp)f + 1;
                if (hi > L - 1) hi = L - 1;
                bk[hi] += y[k] * (v - f);
            }
            for (npy_intp i = 0; i < L; i++) bk[i] = lo_sum[i] + bk[i];
            for (npy_intp i = 0; i < up; i++) bk[i] += y[i];
        } else {
            memcpy(bk, y, sizeof(double) * (size_t)L);
        }
        PyArrayObject *za = NULL;
        const double *z;
        if (direct) {
            if (direct_run(&dc, bk) < 0) goto done;
            z = dc.real + qi;
        } else {
            z_obj = PyObject_CallOneArg(conv, (PyObject *)back);
            if (z_obj == NULL) goto done;
            za = (PyArrayObject *)PyArray_FROM_OTF(z_obj, NPY_FLOAT64, NPY_ARRAY_IN_ARRAY);
            if (za == NULL) goto done;
            if (PyArray_SIZE(za) != L) {
                Py_DECREF(za);
                PyErr_SetString(PyExc_ValueError, "conv must return L values");
                goto done;
            }
            z = (const double *)PyArray_DATA(za) + qi;
        }
        memset(nxt, 0, sizeof(double) * (size_t)L);
        for (npy_intp i = 0; i < head; i++)
            if (z[i] > 1e-250) nxt[i] = z[i];                     /* round-off flushed */
        Py_XDECREF(za);
        Py_CLEAR(z_obj);
        double rest = 1.0 - total(nxt, head);
        nxt[0] += rest > 0.0 ? rest : 0.0;                        /* max(0.0, rest) */
        if ((limit < L ? total(nxt + limit, L - limit) : 0.0) > 1e-9)
            break;  /* the carry outgrows the lattice: keep the last law that fitted */
        double *t = y; y = nxt; nxt = t;
        PyArrayObject *ta = ya; ya = yb; yb = ta;
        for (npy_intp k = 0; k < L; k++) buf[k] = (double)k * y[k];
        double now = total(buf, L);
        if (fabs(now - mean) <= rtol * now) {
            mean = now;
            settled = 1;
            break;
        }
        mean = now;
    }
    res = Py_BuildValue("(OddO)", (PyObject *)ya, mean, dropped,
                        settled ? Py_True : Py_False);
done:
    Py_XDECREF(z_obj);
    Py_XDECREF(ya);
    Py_XDECREF(yb);
    Py_XDECREF(back);
    free(lo_sum);
    free(buf);
    direct_free(&dc);
    return res;
}

static PyObject *pairwise_sum(PyObject *self, PyObject *args) {
    PyObject *a_obj;
    if (!PyArg_ParseTuple(args, "O!", &PyArray_Type, &a_obj)) return NULL;
    PyArrayObject *a = (PyArrayObject *)a_obj;
    if (!F64(a) || PyArray_NDIM(a) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(a)) {
        PyErr_SetString(PyExc_ValueError, "a must be a contiguous float64 vector");
        return NULL;
    }
    return PyFloat_FromDouble(total((const double *)PyArray_DATA(a), PyArray_DIM(a, 0)));
}


/* pacing._interp: np.interp(x, xp, fp) at one point of a strictly increasing xp. */
static double interp1(double x, const double *xp, const double *fp, npy_intp n) {
    if (x != x) return x;
    if (x < xp[0]) return fp[0];
    if (x >= xp[n - 1]) return fp[n - 1];
    npy_intp lo = 0, hi = n;  /* bisect_right(xp, x) */
    while (lo < hi) {
        npy_intp mid = lo + (hi - lo) / 2;
        if (x < xp[mid]) hi = mid; else lo = mid + 1;
    }
    npy_intp j = lo - 1;
    if (j >= n - 1) return fp[n - 1];  /* a nan last point: never read past the end */
    if (xp[j] == x) return fp[j];
    double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    double out = slope * (x - xp[j]) + fp[j];
    if (out != out) {
        out = slope * (x - xp[j + 1]) + fp[j + 1];
        if (out != out && fp[j] == fp[j + 1]) out = fp[j];
    }
    return out;
}

/* Python's max(a, b) and min(a, b) on floats (the first unless the second is beyond). */
static double pymax(double a, double b) { return b > a ? b : a; }
static double pymin(double a, double b) { return b < a ? b : a; }

/* rate_mva_loop(n_max, v, s, d, residual, think, grid, cyc_at) -> (waits, util)
 * cyc_at strictly increasing (the caller checks). */
static PyObject *rate_mva_loop(PyObject *self, PyObject *args) {
    Py_ssize_t n_max;
    double v, s, d, residual;
    int think;
    PyObject *g_obj, *c_obj;
    if (!PyArg_ParseTuple(args, "nddddpO!O!", &n_max, &v, &s, &d, &residual, &think,
                          &PyArray_Type, &g_obj, &PyArray_Type, &c_obj))
        return NULL;
    PyArrayObject *ga = (PyArrayObject *)g_obj, *ca = (PyArrayObject *)c_obj;
    if (!F64(ga) || !F64(ca) ||
        PyArray_NDIM(ga) != 1 || PyArray_NDIM(ca) != 1 || !PyArray_IS_C_CONTIGUOUS(ga) ||
        !PyArray_IS_C_CONTIGUOUS(ca) || PyArray_DIM(ga, 0) != PyArray_DIM(ca, 0) ||
        PyArray_DIM(ga, 0) < 1 || n_max < 0) {
        PyErr_SetString(PyExc_ValueError, "grid and cyc_at: two float64 vectors alike");
        return NULL;
    }
    const double *grid = (const double *)PyArray_DATA(ga);
    const double *cyc_at = (const double *)PyArray_DATA(ca);
    npy_intp m = PyArray_DIM(ga, 0);
    npy_intp dims[1] = {(npy_intp)n_max + 1};
    PyArrayObject *wa = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    PyArrayObject *ua = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (!wa || !ua) {
        Py_XDECREF(wa);
        Py_XDECREF(ua);
        return PyErr_NoMemory();
    }
    double *waits = (double *)PyArray_DATA(wa), *util = (double *)PyArray_DATA(ua);
    double cyc0 = cyc_at[0];
    double q = 0.0, u = 0.0, knee_wq = -1.0;
    for (Py_ssize_t i = 1; i <= n_max; i++) {
        double fi = (double)i;
        double wq = d * pymax(q - u, 0.0) + u * d * residual;
        double need = interp1(fi * v * d, cyc_at, grid, m);
        if (!think && fi * v * d > cyc0) {
            if (knee_wq < 0.0) knee_wq = waits[i - 1];
            wq = knee_wq;
        }
        wq = pymax(wq, need / s);
        double cyc = interp1(s * wq, grid, cyc_at, m);
        double x = fi / cyc;
        u = pymin(1.0, x * v * d);
        q = x * v * (wq + d);
        waits[i] = wq;
        util[i] = u;
    }
    return Py_BuildValue("(NN)", (PyObject *)wa, (PyObject *)ua);
}

/* An event of a row of hold_law: its time and column (the stable order's tie-break). */
typedef struct { double t; npy_intp k; } event_t;

static int event_cmp(const void *pa, const void *pb) {
    const event_t *a = (const event_t *)pa, *b = (const event_t *)pb;
    if (a->t < b->t) return -1;
    if (a->t > b->t) return 1;
    return (a->k > b->k) - (a->k < b->k);
}

/* hold_law_sums(arrive, leave) -> (bincount of the held spans by level, as
 * pacing.hold_law's np.bincount(held, weights=dur[ok], minlength=top + 1)):
 * per row the 2m events in numpy's stable order (by time, then column), the level
 * (+1 at an arrival, −1 at a departure) after each, the spans to the next event of
 * positive length at a positive level summed by level in row-major order. No nan. */
static PyObject *hold_law_sums(PyObject *self, PyObject *args) {
    PyObject *a_obj, *l_obj;
    if (!PyArg_ParseTuple(args, "O!O!", &PyArray_Type, &a_obj, &PyArray_Type, &l_obj))
        return NULL;
    PyArrayObject *aa = (PyArrayObject *)a_obj, *la = (PyArrayObject *)l_obj;
    if (!F64(aa) || !F64(la) ||
        PyArray_NDIM(aa) != 2 || PyArray_NDIM(la) != 2 || !PyArray_IS_C_CONTIGUOUS(aa) ||
        !PyArray_IS_C_CONTIGUOUS(la) || PyArray_DIM(aa, 0) != PyArray_DIM(la, 0) ||
        PyArray_DIM(aa, 1) != PyArray_DIM(la, 1)) {
        PyErr_SetString(PyExc_ValueError, "arrive and leave: two float64 matrices alike");
        return NULL;
    }
    npy_intp n = PyArray_DIM(aa, 0), m = PyArray_DIM(aa, 1), e = 2 * m;
    const double *A = (const double *)PyArray_DATA(aa), *V = (const double *)PyArray_DATA(la);
    event_t *ev = (event_t *)malloc(sizeof(event_t) * (size_t)(e > 0 ? e : 1));
    double *sums = (double *)calloc((size_t)(m + 1), sizeof(double));
    if (!ev || !sums) {
        free(ev);
        free(sums);
        return PyErr_NoMemory();
    }
    npy_intp top = 0;
    for (npy_intp r = 0; r < n; r++) {
        for (npy_intp k = 0; k < m; k++) {
            double x = A[r * m + k], y = V[r * m + k];
            if (x != x || y != y) {
                free(ev);
                free(sums);
                PyErr_SetString(PyExc_ValueError, "nan in the walk");
                return NULL;
            }
            ev[k].t = x;
            ev[k].k = k;
            ev[m + k].t = y;
            ev[m + k].k = m + k;
        }
        if (e <= 64) {
            /* A row's events are few and mostly in order (arrivals in call order): an
             * insertion sort; the order is total (ties by column), so any sort gives it. */
            for (npy_intp j = 1; j < e; j++) {
                event_t x = ev[j];
                npy_intp i = j;
                while (i > 0 && event_cmp(&ev[i - 1], &x) > 0) {
                    ev[i] = ev[i - 1];
                    i--;
                }
                ev[i] = x;
            }
        } else {
            qsort(ev, (size_t)e, sizeof(event_t), event_cmp);
        }
        double level = 0.0;
        for (npy_intp j = 0; j + 1 < e; j++) {
            level += ev[j].k < m ? 1.0 : -1.0;
            double dur = ev[j + 1].t - ev[j].t;
            if (dur > 0 && level > 0) {
                npy_intp h = (npy_intp)level;
                if (h > m) h = m;  /* (at most m calls of a row are held) */
                sums[h] += dur;
                if (h > top) top = h;
            }
        }
    }
    free(ev);
    npy_intp dims[1] = {top + 1};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (out == NULL) {
        free(sums);
        return NULL;
    }
    memcpy(PyArray_DATA(out), sums, sizeof(double) * (size_t)(top + 1));
    free(sums);
    return (PyObject *)out;
}

/* A contiguous float64 vector of at least n elements, or NULL with ValueError set. */
static const double *f64_vec(PyObject *o, npy_intp n, const char *name) {
    PyArrayObject *a = (PyArrayObject *)o;
    if (!PyArray_Check(o) || !F64(a) || PyArray_NDIM(a) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(a) || PyArray_DIM(a, 0) < n) {
        PyErr_Format(PyExc_ValueError, "%s must be a contiguous float64 vector of %zd",
                     name, (Py_ssize_t)n);
        return NULL;
    }
    return (const double *)PyArray_DATA(a);
}

/* The renewal sums' step (storm_renewal, storm_retried): numpy's pairwise sum of
 * into[i-1-k]·fz[1+k] over k < i. fz, a bincount of sampled pauses, is mostly zeros
 * (hunt-76: 171-256 nonzero of 14,271 steps), and a zero product adds nothing to its
 * accumulator: renew_sum computes the same tree (pairwise's blocks, its 8 accumulators a
 * leaf, each fed in index order, its tail after them) over the nonzero taps alone, the
 * same number bit for bit (a block without taps sums to 0, and x + 0.0 is x; a zero's
 * sign never reaches the result, 0.0 + the sum). Dense (the products of every k) while
 * fz or into holds an inf or a nan: inf·0 is nan there. */
struct renew {
    const double *fz;
    npy_intp *taps;   /* k with fz[1+k] != 0, ascending */
    npy_intp ntaps;
    double *vals;     /* the step's products at the taps (taps below i) */
    double *buf;      /* the dense products */
    int dense;
};

static double renew_tree(const double *v, const npy_intp *pos, npy_intp lo, npy_intp hi,
                         npy_intp off, npy_intp n) {
    if (lo == hi) return 0.0;
    if (n < 8) {
        double res = 0.0;
        for (npy_intp t = lo; t < hi; t++) res += v[t];
        return res;
    }
    if (n <= 128) {
        double r[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        npy_intp end = off + n - n % 8, t = lo;
        for (; t < hi && pos[t] < end; t++) r[(pos[t] - off) % 8] += v[t];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; t < hi; t++) res += v[t];
        return res;
    }
    npy_intp n2 = n / 2;
    n2 -= n2 % 8;
    npy_intp mid = lo, top = hi;     /* the first tap at or past off + n2 */
    while (mid < top) {
        npy_intp h = mid + (top - mid) / 2;
        if (pos[h] < off + n2) mid = h + 1; else top = h;
    }
    return renew_tree(v, pos, lo, mid, off, n2) + renew_tree(v, pos, mid, hi, off + n2, n - n2);
}

/* Set up rw for fz (steps values) and into (steps + 1); 0 on a failed allocation. */
static int renew_init(struct renew *rw, const double *fz, const double *into, npy_intp steps) {
    rw->fz = fz;
    rw->dense = 0;
    rw->ntaps = 0;
    rw->taps = (npy_intp *)malloc(sizeof(npy_intp) * (size_t)(steps + 1));
    rw->vals = (double *)malloc(sizeof(double) * (size_t)(steps + 1));
    rw->buf = (double *)malloc(sizeof(double) * (size_t)(steps + 1));
    if (!rw->taps || !rw->vals || !rw->buf) return 0;
    for (npy_intp k = 0; k + 1 < steps; k++) {
        if (!isfinite(fz[1 + k])) rw->dense = 1;
        if (fz[1 + k] != 0.0) rw->taps[rw->ntaps++] = k;
    }
    for (npy_intp k = 0; k <= steps; k++)
        if (!isfinite(into[k])) rw->dense = 1;
    return 1;
}

static void renew_free(struct renew *rw) {
    free(rw->taps);
    free(rw->vals);
    free(rw->buf);
}

/* into[j] has just changed: the sums turn dense for good if it is no longer finite. */
static inline void renew_check(struct renew *rw, double x) {
    if (!isfinite(x)) rw->dense = 1;
}

/* The step-i sum (i >= 1), 0.0 + numpy's pairwise sum of the products. */
static double renew_sum(struct renew *rw, const double *into, npy_intp i) {
    const double *fz = rw->fz;
    if (rw->dense) {
        double *buf = rw->buf;
        for (npy_intp k = 0; k < i; k++) buf[k] = into[i - 1 - k] * fz[1 + k];
        return total(buf, i);
    }
    npy_intp c = 0;
    const npy_intp *taps = rw->taps;
    double *vals = rw->vals;
    for (; c < rw->ntaps && taps[c] < i; c++) vals[c] = into[i - 1 - taps[c]] * fz[1 + taps[c]];
    return 0.0 + renew_tree(vals, taps, 0, c, 0, i);
}

/* storm_renewal(into, fz, starts, aborted, back, launching, dt) -> starts
 * (window._storm_arrivals' renewal sum, a session's pause starting a fixed ``back`` steps
 * after its turn is aborted). into: steps + 1 values (the pauses starting per step), fz:
 * steps, starts and aborted: steps (the arrays the Python loop holds as lists). The
 * step's new starts are numpy's pairwise sum of into[i-1..0]·fz[1..i]; into[k] is final
 * once step k is done, so one array holds both of the loop's copies. */
static PyObject *storm_renewal(PyObject *self, PyObject *args) {
    PyObject *i_obj, *f_obj, *s_obj, *a_obj;
    double back, launching, dt;
    if (!PyArg_ParseTuple(args, "OOOOddd", &i_obj, &f_obj, &s_obj, &a_obj, &back,
                          &launching, &dt))
        return NULL;
    if (!PyArray_Check(s_obj) || PyArray_NDIM((PyArrayObject *)s_obj) != 1) {
        PyErr_SetString(PyExc_ValueError, "starts must be a float64 vector");
        return NULL;
    }
    npy_intp steps = PyArray_DIM((PyArrayObject *)s_obj, 0);
    const double *into0 = f64_vec(i_obj, steps + 1, "into");
    const double *fz = into0 ? f64_vec(f_obj, steps, "fz") : NULL;
    const double *st0 = fz ? f64_vec(s_obj, steps, "starts") : NULL;
    const double *ab0 = st0 ? f64_vec(a_obj, steps, "aborted") : NULL;
    if (!ab0) return NULL;
    if (!(back >= 0.0 && back < 1e15)) {  /* the Python loop's int(pos): finite, >= 0 */
        PyErr_SetString(PyExc_ValueError, "back outside [0, 1e15)");
        return NULL;
    }
    npy_intp dims[1] = {steps};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    double *into = (double *)malloc(sizeof(double) * (size_t)(steps + 2));
    double *aborted = (double *)malloc(sizeof(double) * (size_t)(steps + 1));
    struct renew rw = {0};
    if (!out || !into || !aborted || !renew_init(&rw, fz, into0, steps)) {
        Py_XDECREF(out);
        free(into);
        free(aborted);
        renew_free(&rw);
        return PyErr_NoMemory();
    }
    double *starts = (double *)PyArray_DATA(out);
    memcpy(into, into0, sizeof(double) * (size_t)(steps + 1));
    into[steps + 1] = 0.0;
    memcpy(starts, st0, sizeof(double) * (size_t)steps);
    memcpy(aborted, ab0, sizeof(double) * (size_t)steps);
    for (npy_intp i = 0; i < steps; i++) {
        if (i) {
            double st = renew_sum(&rw, into, i);
            starts[i] += st;
            aborted[i] += st * launching * dt;
        }
        double pos = (double)i + back;
        if (pos < (double)steps) {  /* int(pos) < steps, pos >= 0 */
            npy_intp j = (npy_intp)pos;
            double ab = aborted[i];
            into[j] += ab * ((double)(j + 1) - pos);
            into[j + 1] += ab * (pos - (double)j);
            renew_check(&rw, into[j]);
            renew_check(&rw, into[j + 1]);
        }
    }
    free(into);
    free(aborted);
    renew_free(&rw);
    return (PyObject *)out;
}

/* storm_retried(into, fz, starts, aborted, turned, dt, w, q, lat, m, per_w, overflow,
 *               first_units, launching) -> starts
 * (window._retried_returns: honoured retry-afters delay the pauses; the same arrays as
 * storm_renewal, turned: steps values). Scalar arithmetic in Python's order. */
static PyObject *storm_retried(PyObject *self, PyObject *args) {
    PyObject *i_obj, *f_obj, *s_obj, *a_obj, *t_obj;
    double dt, w, lat, overflow, first_units, launching;
    Py_ssize_t q, m, per_w;
    if (!PyArg_ParseTuple(args, "OOOOOddndnnddd", &i_obj, &f_obj, &s_obj, &a_obj, &t_obj,
                          &dt, &w, &q, &lat, &m, &per_w, &overflow, &first_units,
                          &launching))
        return NULL;
    if (!PyArray_Check(s_obj) || PyArray_NDIM((PyArrayObject *)s_obj) != 1) {
        PyErr_SetString(PyExc_ValueError, "starts must be a float64 vector");
        return NULL;
    }
    npy_intp steps = PyArray_DIM((PyArrayObject *)s_obj, 0);
    const double *into0 = f64_vec(i_obj, steps + 1, "into");
    const double *fz = into0 ? f64_vec(f_obj, steps, "fz") : NULL;
    const double *st0 = fz ? f64_vec(s_obj, steps, "starts") : NULL;
    const double *ab0 = st0 ? f64_vec(a_obj, steps, "aborted") : NULL;
    const double *tu0 = ab0 ? f64_vec(t_obj, steps, "turned") : NULL;
    if (!tu0) return NULL;
    if (per_w < 1 || m < 0 || q < 0 || q > ((Py_ssize_t)1 << 52)) {
        PyErr_SetString(PyExc_ValueError, "per_w >= 1, m >= 0, 0 <= q < 2**52");
        return NULL;
    }
    npy_intp dims[1] = {steps};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    double *into = (double *)malloc(sizeof(double) * (size_t)(steps + 2));
    double *aborted = (double *)malloc(sizeof(double) * (size_t)(steps + 1));
    double *turned_l = (double *)malloc(sizeof(double) * (size_t)(steps + 1));
    double *logged = (double *)calloc((size_t)(steps + 2), sizeof(double));
    struct renew rw = {0};
    PyObject *res = NULL;
    if (!out || !into || !aborted || !turned_l || !logged ||
        !renew_init(&rw, fz, into0, steps)) {
        PyErr_NoMemory();
        goto done;
    }
    double *starts = (double *)PyArray_DATA(out);
    memcpy(into, into0, sizeof(double) * (size_t)(steps + 1));
    into[steps + 1] = 0.0;
    memcpy(starts, st0, sizeof(double) * (size_t)steps);
    memcpy(aborted, ab0, sizeof(double) * (size_t)steps);
    memcpy(turned_l, tu0, sizeof(double) * (size_t)steps);
    double earlier = 0.0, qd = (double)q;
    for (npy_intp i = 0; i < steps; i++) {
        if (i) {
            double st = renew_sum(&rw, into, i);
            starts[i] += st;
            turned_l[i] += st * first_units * dt;
            aborted[i] += st * launching * dt;
        }
        double turned = turned_l[i] + (i == 0 ? overflow : 0.0);
        logged[i] += turned;
        double content = qd * pymax(0.0, 1.0 - (double)i / (double)per_w) + earlier
                         + logged[i];
        double trip = (lat + w * pymax(content - qd + 1.0, 0.0) / pymax(content, 1.0)) / dt;
        for (Py_ssize_t k = 1; k <= m; k++) {
            double pos = (double)i + (double)k * trip;
            if (!(pos >= 0.0 && pos < 1e15)) {  /* Python's int(pos) of a huge or nan */
                PyErr_SetString(PyExc_ValueError, "a retry beyond the chain");
                goto done;
            }
            if (pos < (double)(steps + 1)) {  /* int(pos) <= steps */
                npy_intp j = (npy_intp)pos;
                logged[j] += turned * ((double)(j + 1) - pos);
                logged[j + 1] += turned * (pos - (double)j);
            }
        }
        earlier += logged[i] - (i >= per_w - 1 ? logged[i - per_w + 1] : 0.0);
        double pos = (double)i + ((double)m * trip + lat / dt);
        /* (before step i: the Python loop's into[j] is final then, only its list moves) */
        if (!(pos >= (double)i && pos < 1e15)) {
            PyErr_SetString(PyExc_ValueError, "a return before its step or beyond the chain");
            goto done;
        }
        if (pos < (double)steps) {
            npy_intp j = (npy_intp)pos;
            into[j] += aborted[i] * ((double)(j + 1) - pos);
            into[j + 1] += aborted[i] * (pos - (double)j);
            renew_check(&rw, into[j]);
            renew_check(&rw, into[j + 1]);
        }
    }
    res = (PyObject *)out;
    out = NULL;
done:
    Py_XDECREF(out);
    free(into);
    free(aborted);
    free(turned_l);
    free(logged);
    renew_free(&rw);
    return res;
}

/* conv_span: out[t] = sum_d a[t - d]·v[d] for t in [lo, end), end = min(hi + vlen - 1,
 * cap), a zero outside [lo, hi): zeroed there first, then one contiguous pass a nonzero
 * tap (a storm's kernels are zero between multiples of 1 + m). Returns end. */
static inline __attribute__((always_inline))
npy_intp conv_span(const double *restrict a, npy_intp lo, npy_intp hi,
                          const double *v, npy_intp vlen, double *restrict out, npy_intp cap) {
    npy_intp end = hi + vlen - 1;
    if (end > cap) end = cap;
    if (lo >= end) return lo;
    memset(out + lo, 0, sizeof(double) * (size_t)(end - lo));
    for (npy_intp d = 0; d < vlen; d++) {
        double c = v[d];
        if (c == 0.0) continue;
        npy_intp top = hi < end - d ? hi : end - d;
        double *restrict o = out + d;
        for (npy_intp t = lo; t < top; t++) o[t] += a[t] * c;
    }
    return end;
}

/* The count's ends below 1e-300 set to 0: the span then stops widening by kk a step into
 * subnormal numbers (each product ~100 times slower; hunt-76: ~150 of its ~3,700 points,
 * 14,271 steps a chain). Those points hold under 1e-296 of the mass. */
#define WALK_TRIM                                                                       \
    while (xh > xl && fabs(x[xh - 1]) < 1e-300) x[--xh] = 0.0;                         \
    while (xl < xh && fabs(x[xl]) < 1e-300) x[xl++] = 0.0;

struct walk {
    const double *sk, *gk, *stay, *units_dt, *keep, *inv_gone, *cum;
    double *x, *alive, *u, *o;
    npy_intp size, steps, K, kk, kmax, per_w, xl, xh;
    double q, below, rejected, alive_min, stop_at;
};

/* storm_walk's steps (below); 1 if the chain ended. */
static inline __attribute__((always_inline)) int walk_core(struct walk *wk) {
    const double *sk = wk->sk, *gk = wk->gk, *stay = wk->stay, *units_dt = wk->units_dt;
    const double *keep = wk->keep, *inv_gone = wk->inv_gone, *cum = wk->cum;
    double *x = wk->x, *alive = wk->alive, *u = wk->u, *o = wk->o;
    npy_intp size = wk->size, steps = wk->steps, K = wk->K, kk = wk->kk, kmax = wk->kmax;
    npy_intp per_w = wk->per_w, xl = wk->xl, xh = wk->xh;
    double q = wk->q, below = wk->below, rejected = wk->rejected, alive_min = wk->alive_min;
    double stop_at = wk->stop_at;
    int ended = 0;
    for (npy_intp i = 0; i < steps; i++) {
        double live = 0.0 + pairwise_span(x, size, xl, xh);  /* x is 0 outside [xl, xh) */
        double left = live + below;
        alive[i] = left;
        if (left < alive_min) {
            ended = 1;
            break;
        }
        rejected += live * units_dt[i];
        if (rejected >= stop_at) break;  /* enough turned away: the caller's floor */
        below *= keep[i];
        const double *row = sk + i * K;
        if (i < per_w) {
            /* u = x * steps_k[i], then o = u * stay: x = o[kmax:kmax + size],
             * below += o[:kmax] (the content from before the storm expiring). */
            npy_intp cap = size + kmax;
            npy_intp uh = conv_span(x, xl, xh, row, K, u, cap);
            npy_intp oh = conv_span(u, xl, uh, stay, kmax + 1, o, cap);
            npy_intp ol = xl;
            if (ol < kmax) below += 0.0 + pairwise(o + ol, (oh < kmax ? oh : kmax) - ol);
            memset(x + xl, 0, sizeof(double) * (size_t)(xh - xl));
            xl = ol > kmax ? ol - kmax : 0;
            xh = oh > kmax ? oh - kmax : 0;
            if (xh < xl) xh = xl;
            if (xh > xl) memcpy(x + xl, o + kmax + xl, sizeof(double) * (size_t)(xh - xl));
            WALK_TRIM
            continue;
        }
        /* y = (x * steps_k[i])[:size]; ys = min((q + s)/(cum_i − cum_j), inv_gone[j])·y;
         * y[s] += Σ_n ys[s + n]·gone[j][n] (s < 0: below). */
        npy_intp j = i - per_w;
        npy_intp yh = conv_span(x, xl, xh, row, K, u, size);
        npy_intp yl = xl < yh ? xl : yh;
        double span = cum[i] - cum[j];
        double c = 1.0 / (span > 1e-12 ? span : 1e-12), ig = inv_gone[j];
        /* o[p + kk] holds the sum for level p (p from yl − kk): the downward shifts */
        npy_intp olo = yl, ohi = yh + kk;
        if (ohi > olo) memset(o + olo, 0, sizeof(double) * (size_t)(ohi - olo));
        const double *grow = gk + j * K;
        for (npy_intp s = yl; s < yh; s++) {
            double v = ((double)s + q) * c;
            x[s] = (v < ig ? v : ig) * u[s];     /* (x is free: ys kept in its place) */
        }
        for (npy_intp n = 0; n < K; n++) {
            double g = grow[n];
            if (g == 0.0) continue;
            double *restrict dst = o + (kk - n);
            const double *restrict src = x;
            for (npy_intp p = yl; p < yh; p++) dst[p] += src[p] * g;
        }
        npy_intp nl = yl > kk ? yl - kk : 0;
        if (olo < kk) below += 0.0 + pairwise(o + olo, (ohi < kk ? ohi : kk) - olo);
        memset(x + xl, 0, sizeof(double) * (size_t)(xh - xl));
        for (npy_intp s = nl; s < yh; s++) x[s] = (s >= yl ? u[s] : 0.0) + o[s + kk];
        xl = nl;
        xh = yh;
        WALK_TRIM
    }
    wk->below = below;
    wk->rejected = rejected;
    return ended;
}

TWO_BUILDS(walk, struct walk, walk_core)

/* storm_walk(x, steps_k, stay, gone, units_dt, keep, inv_gone, cum, q, per_w, below,
 * rejected, alive_min[, stop_at]) -> (x, alive, rejected, below, ended):
 * window._storm_walk_numpy's steps of a storm chain (stopped once ``rejected`` reaches
 * ``stop_at``: a floor of the size is all its caller needs). numpy correlates each output point with a BLAS dot over the
 * whole kernel; here each nonzero tap is one pass over the count's nonzero span (the same
 * sums in another order: ~1e-16 apart a step), and the count's ends under 1e-300 are
 * dropped (WALK_TRIM). The mass alive and fallen below are numpy's pairwise sums of the
 * whole vectors. */
static PyObject *storm_walk(PyObject *self, PyObject *args) {
    PyObject *x_obj, *s_obj, *st_obj, *g_obj, *u_obj, *k_obj, *ig_obj, *c_obj;
    double q, below, rejected, alive_min, stop_at = Py_HUGE_VAL;
    Py_ssize_t per_w;
    if (!PyArg_ParseTuple(args, "OOOOOOOOdnddd|d", &x_obj, &s_obj, &st_obj, &g_obj, &u_obj,
                          &k_obj, &ig_obj, &c_obj, &q, &per_w, &below, &rejected,
                          &alive_min, &stop_at))
        return NULL;
    PyArrayObject *sa = (PyArrayObject *)s_obj, *ga = (PyArrayObject *)g_obj;
    if (!PyArray_Check(x_obj) || PyArray_NDIM((PyArrayObject *)x_obj) != 1 ||
        !PyArray_Check(st_obj) || PyArray_NDIM((PyArrayObject *)st_obj) != 1 ||
        !PyArray_Check(s_obj) || !PyArray_Check(g_obj) || PyArray_NDIM(sa) != 2 ||
        PyArray_NDIM(ga) != 2 || !F64(sa) || !F64(ga) || !PyArray_IS_C_CONTIGUOUS(sa) ||
        !PyArray_IS_C_CONTIGUOUS(ga) || PyArray_DIM(sa, 0) != PyArray_DIM(ga, 0) ||
        PyArray_DIM(sa, 1) != PyArray_DIM(ga, 1) || PyArray_DIM(sa, 1) < 1) {
        PyErr_SetString(PyExc_ValueError,
                        "x, stay: float64 vectors; steps_k, gone: contiguous float64 "
                        "(steps, K) arrays");
        return NULL;
    }
    npy_intp size = PyArray_DIM((PyArrayObject *)x_obj, 0);
    npy_intp steps = PyArray_DIM(sa, 0), K = PyArray_DIM(sa, 1), kk = K - 1;
    npy_intp kmax = PyArray_DIM((PyArrayObject *)st_obj, 0) - 1;
    const double *x0 = f64_vec(x_obj, size, "x");
    const double *stay = x0 ? f64_vec(st_obj, kmax + 1, "stay") : NULL;
    const double *units_dt = stay ? f64_vec(u_obj, steps, "units_dt") : NULL;
    const double *keep = units_dt ? f64_vec(k_obj, steps, "keep") : NULL;
    const double *inv_gone = keep ? f64_vec(ig_obj, steps, "inv_gone") : NULL;
    const double *cum = inv_gone ? f64_vec(c_obj, steps + 1, "cum") : NULL;
    if (!cum) return NULL;
    if (per_w < 1 || kmax < 0 || size < 1) {
        PyErr_SetString(PyExc_ValueError, "per_w >= 1, a nonempty x and stay");
        return NULL;
    }
    const double *sk = (const double *)PyArray_DATA(sa), *gk = (const double *)PyArray_DATA(ga);
    npy_intp dims[1] = {steps}, xdims[1] = {size};
    PyArrayObject *alive_a = (PyArrayObject *)PyArray_EMPTY(1, dims, NPY_FLOAT64, 0);
    PyArrayObject *x_a = (PyArrayObject *)PyArray_ZEROS(1, xdims, NPY_FLOAT64, 0);
    size_t room = (size_t)(size + kk + kmax + 2);
    double *u = (double *)malloc(sizeof(double) * room);
    double *o = (double *)malloc(sizeof(double) * room);
    PyObject *res = NULL;
    if (!alive_a || !x_a || !u || !o) {
        PyErr_NoMemory();
        goto done;
    }
    double *alive = (double *)PyArray_DATA(alive_a), *x = (double *)PyArray_DATA(x_a);
    for (npy_intp i = 0; i < steps; i++) alive[i] = 1.0;
    memcpy(x, x0, sizeof(double) * (size_t)size);
    npy_intp xl = 0, xh = size;          /* x is zero outside [xl, xh) */
    while (xh > 0 && x[xh - 1] == 0.0) xh--;
    while (xl < xh && x[xl] == 0.0) xl++;
    struct walk wk = {sk, gk, stay, units_dt, keep, inv_gone, cum, x, alive, u, o,
                      size, steps, K, kk, kmax, per_w, xl, xh, q, below, rejected,
                      alive_min, stop_at};
    int ended;
    Py_BEGIN_ALLOW_THREADS
    ended = BEST_BUILD(walk, &wk);
    Py_END_ALLOW_THREADS
    res = Py_BuildValue("NNddO", (PyObject *)x_a, (PyObject *)alive_a, wk.rejected, wk.below,
                        ended ? Py_True : Py_False);
    x_a = NULL;
    alive_a = NULL;
done:
    Py_XDECREF(x_a);
    Py_XDECREF(alive_a);
    free(u);
    free(o);
    return res;
}

/* The searches' inputs: a sorted float64 vector a without nan and float64 keys v (their
 * lengths in n, m), and a zeroed int64 output of m; NULL with ValueError otherwise. */
static PyArrayObject *search_setup(PyObject *a_obj, PyObject *v_obj, const double **a,
                                   const double **v, npy_intp *n, npy_intp *m) {
    if (!PyArray_Check(a_obj) || !PyArray_Check(v_obj)) {
        PyErr_SetString(PyExc_ValueError, "a and v must be float64 vectors");
        return NULL;
    }
    PyArrayObject *aa = (PyArrayObject *)a_obj, *va = (PyArrayObject *)v_obj;
    *n = PyArray_NDIM(aa) == 1 ? PyArray_DIM(aa, 0) : -1;
    *m = PyArray_NDIM(va) == 1 ? PyArray_DIM(va, 0) : -1;
    *a = f64_vec(a_obj, *n, "a");
    *v = *a ? f64_vec(v_obj, *m, "v") : NULL;
    if (!*v) return NULL;
    for (npy_intp i = 0; i < *n; i++) {
        if ((*a)[i] != (*a)[i] || (i && !((*a)[i - 1] <= (*a)[i]))) {
            PyErr_SetString(PyExc_ValueError, "a must be sorted, without nan");
            return NULL;
        }
    }
    npy_intp dims[1] = {*m};
    return (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_INT64, 0);
}

/* search_right(a, v) -> np.searchsorted(a, v, side="right") (int64) for a sorted a with
 * no nan and any v without nan: the count of a's values <= each v, by a binary search
 * (numpy's generic search restarts for unsorted keys; the pacer's draws are random). */
static PyObject *search_right(PyObject *self, PyObject *args) {
    PyObject *a_obj, *v_obj;
    if (!PyArg_ParseTuple(args, "OO", &a_obj, &v_obj)) return NULL;
    const double *a, *v;
    npy_intp n, m;
    PyArrayObject *out = search_setup(a_obj, v_obj, &a, &v, &n, &m);
    if (!out) return NULL;
    npy_int64 *o = (npy_int64 *)PyArray_DATA(out);
    for (npy_intp k = 0; k < m; k++) {
        double x = v[k];
        if (x != x) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_ValueError, "v must hold no nan");
            return NULL;
        }
        /* The first index whose value is > x: a search without branches on the data
         * (the keys are random: a branch per level is mispredicted half the time). */
        npy_intp lo = 0, len = n;
        if (len == 0) {
            o[k] = 0;
            continue;
        }
        while (len > 1) {
            npy_intp half = len / 2;
            lo += (a[lo + half - 1] <= x) ? half : 0;
            len -= half;
        }
        o[k] = (npy_int64)(lo + (a[lo] <= x));
    }
    return (PyObject *)out;
}

/* run_signatures(order, gc, take) -> sig (TurnTiming._runs_uncached): per turn r, its
 * 2G window breakpoints in ``order`` (an index e < G: launch group e enters, +gc[r, e];
 * e >= G: group e - G leaves, -gc[r, e - G]), the launches caught after each breakpoint
 * p (the running sum over the breakpoints up to p), one row of k counts per p where
 * take[r, p], in row-major order (np.nonzero's). Integer sums: exact in any order. */
static PyObject *run_signatures(PyObject *self, PyObject *args) {
    PyObject *o_obj, *g_obj, *t_obj;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyArray_Type, &o_obj, &PyArray_Type, &g_obj,
                          &PyArray_Type, &t_obj))
        return NULL;
    PyArrayObject *oa = (PyArrayObject *)o_obj, *ga = (PyArrayObject *)g_obj,
                  *ta = (PyArrayObject *)t_obj;
    if (PyArray_TYPE(oa) != NPY_INTP || PyArray_TYPE(ga) != NPY_INT64 ||
        PyArray_TYPE(ta) != NPY_BOOL || !PyArray_ISNOTSWAPPED(oa) ||
        !PyArray_ISNOTSWAPPED(ga) || !PyArray_ISALIGNED(oa) || !PyArray_ISALIGNED(ga) ||
        PyArray_NDIM(oa) != 2 || PyArray_NDIM(ga) != 3 || PyArray_NDIM(ta) != 2 ||
        !PyArray_IS_C_CONTIGUOUS(oa) || !PyArray_IS_C_CONTIGUOUS(ga) ||
        !PyArray_IS_C_CONTIGUOUS(ta)) {
        PyErr_SetString(PyExc_ValueError, "order (intp), gc (int64), take (bool): contiguous");
        return NULL;
    }
    npy_intp n = PyArray_DIM(ga, 0), g = PyArray_DIM(ga, 1), k = PyArray_DIM(ga, 2);
    npy_intp e = 2 * g;
    if (PyArray_DIM(oa, 0) != n || PyArray_DIM(oa, 1) != e || PyArray_DIM(ta, 0) != n ||
        PyArray_DIM(ta, 1) != (e > 0 ? e - 1 : 0) || e < 1) {
        PyErr_SetString(PyExc_ValueError, "order (n, 2G), gc (n, G, k), take (n, 2G - 1)");
        return NULL;
    }
    const npy_intp *order = (const npy_intp *)PyArray_DATA(oa);
    const npy_int64 *gc = (const npy_int64 *)PyArray_DATA(ga);
    const npy_bool *take = (const npy_bool *)PyArray_DATA(ta);
    npy_intp m = 0;
    for (npy_intp i = 0; i < n * (e - 1); i++) m += take[i] != 0;
    for (npy_intp i = 0; i < n * e; i++) {
        if (order[i] < 0 || order[i] >= e) {
            PyErr_SetString(PyExc_ValueError, "order outside [0, 2G)");
            return NULL;
        }
    }
    npy_intp dims[2] = {m, k};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT64, 0);
    npy_int64 *cum = (npy_int64 *)calloc((size_t)(k > 0 ? k : 1), sizeof(npy_int64));
    if (!out || !cum) {
        Py_XDECREF(out);
        free(cum);
        return PyErr_NoMemory();
    }
    npy_int64 *sig = (npy_int64 *)PyArray_DATA(out);
    npy_intp row = 0;
    for (npy_intp r = 0; r < n; r++) {
        for (npy_intp j = 0; j < k; j++) cum[j] = 0;
        for (npy_intp p = 0; p + 1 < e; p++) {
            npy_intp ev = order[r * e + p];
            const npy_int64 *c = gc + (r * g + (ev < g ? ev : ev - g)) * k;
            if (ev < g) {
                for (npy_intp j = 0; j < k; j++) cum[j] += c[j];
            } else {
                for (npy_intp j = 0; j < k; j++) cum[j] -= c[j];
            }
            if (take[r * (e - 1) + p]) {
                for (npy_intp j = 0; j < k; j++) sig[row * k + j] = cum[j];
                row++;
            }
        }
    }
    free(cum);
    return (PyObject *)out;
}

/* An intp vector of at least n elements, each in [0, top], or NULL with ValueError. */
static const npy_intp *idx_vec(PyObject *o, npy_intp n, npy_intp top, const char *name) {
    PyArrayObject *a = (PyArrayObject *)o;
    if (!PyArray_Check(o) || PyArray_TYPE(a) != NPY_INTP || !PyArray_ISNOTSWAPPED(a) ||
        !PyArray_ISALIGNED(a) || PyArray_NDIM(a) != 1 || !PyArray_IS_C_CONTIGUOUS(a) ||
        PyArray_DIM(a, 0) < n) {
        PyErr_Format(PyExc_ValueError, "%s must be a contiguous intp vector of %zd", name,
                     (Py_ssize_t)n);
        return NULL;
    }
    const npy_intp *v = (const npy_intp *)PyArray_DATA(a);
    for (npy_intp i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] > top) {
            PyErr_Format(PyExc_ValueError, "%s outside [0, %zd]", name, (Py_ssize_t)top);
            return NULL;
        }
    }
    return v;
}

/* cross_lag(xa, other, t_a, t_b, lo, mid, hi, w) -> float (TurnTiming._cross_uncached,
 * one lag): xa (n, G) the events' charges (0 at pads), x_b = xa[other] row by row, its
 * prefix sums and those of x_b·t_b (numpy's cumsum: sequential, a 0 in front), the
 * range sums below and above each launch a, and numpy's pairwise sum of
 * x_a·(below + above) — the operations of the numpy loop in its order. */
static PyObject *cross_lag(PyObject *self, PyObject *args) {
    PyObject *x_obj, *o_obj, *ta_obj, *tb_obj, *lo_obj, *mid_obj, *hi_obj;
    double w;
    if (!PyArg_ParseTuple(args, "OOOOOOOd", &x_obj, &o_obj, &ta_obj, &tb_obj, &lo_obj,
                          &mid_obj, &hi_obj, &w))
        return NULL;
    PyArrayObject *xa_arr = (PyArrayObject *)x_obj;
    if (!PyArray_Check(x_obj) || !F64(xa_arr) || PyArray_NDIM(xa_arr) != 2 ||
        !PyArray_IS_C_CONTIGUOUS(xa_arr)) {
        PyErr_SetString(PyExc_ValueError, "xa must be a contiguous float64 matrix");
        return NULL;
    }
    npy_intp n = PyArray_DIM(xa_arr, 0), g = PyArray_DIM(xa_arr, 1), ng = n * g;
    const double *xa = (const double *)PyArray_DATA(xa_arr);
    const npy_intp *other = idx_vec(o_obj, n, n - 1, "other");
    const double *t_a = other ? f64_vec(ta_obj, ng, "t_a") : NULL;
    const double *t_b = t_a ? f64_vec(tb_obj, ng, "t_b") : NULL;
    const npy_intp *lo = t_b ? idx_vec(lo_obj, ng, ng, "lo") : NULL;
    const npy_intp *mid = lo ? idx_vec(mid_obj, ng, ng, "mid") : NULL;
    const npy_intp *hi = mid ? idx_vec(hi_obj, ng, ng, "hi") : NULL;
    if (!hi) return NULL;
    double *cx = (double *)malloc(sizeof(double) * (size_t)(ng + 1));
    double *cxt = (double *)malloc(sizeof(double) * (size_t)(ng + 1));
    double *buf = (double *)malloc(sizeof(double) * (size_t)(ng > 0 ? ng : 1));
    if (!cx || !cxt || !buf) {
        free(cx);
        free(cxt);
        free(buf);
        return PyErr_NoMemory();
    }
    cx[0] = cxt[0] = 0.0;
    for (npy_intp r = 0; r < n; r++) {
        const double *xb = xa + other[r] * g;
        for (npy_intp j = 0; j < g; j++) {
            npy_intp i = r * g + j;
            double v = xb[j], vt = xb[j] * t_b[i];
            cx[i + 1] = i ? cx[i] + v : v;      /* cumsum's first value is the first x */
            cxt[i + 1] = i ? cxt[i] + vt : vt;
        }
    }
    for (npy_intp i = 0; i < ng; i++) {
        double below = (w - t_a[i]) * (cx[mid[i]] - cx[lo[i]]) + (cxt[mid[i]] - cxt[lo[i]]);
        double above = (w + t_a[i]) * (cx[hi[i]] - cx[mid[i]]) - (cxt[hi[i]] - cxt[mid[i]]);
        buf[i] = xa[i] * (below + above);
    }
    double out = total(buf, ng);
    free(cx);
    free(cxt);
    free(buf);
    return PyFloat_FromDouble(out);
}

/* session_law(t, c, total, w, mean_lat) -> pmf or None (window._session_law_uncached
 * after its timeline): the circle of launches (sorted offsets t, units c) wrapped by w,
 * the window's contents between its breakpoints (the stable merge of t - w and t,
 * numpy's stable argsort of the two sorted runs), the sequential running sum of the
 * units entering and leaving, the kept runs' pairwise sums, the two bincounts that split
 * each content between its lattice points, in the numpy code's order of operations. */
static double np_clip(double x, double lo, double hi) {
    double m = (x != x) ? x : (x > lo ? x : lo);
    return (m != m) ? m : (m < hi ? m : hi);
}

static PyObject *session_law(PyObject *self, PyObject *args) {
    PyObject *t_obj, *c_obj;
    double tot, w, mean_lat;
    if (!PyArg_ParseTuple(args, "OOddd", &t_obj, &c_obj, &tot, &w, &mean_lat))
        return NULL;
    if (!PyArray_Check(t_obj) || PyArray_NDIM((PyArrayObject *)t_obj) != 1) {
        PyErr_SetString(PyExc_ValueError, "t must be a float64 vector");
        return NULL;
    }
    npy_intp n = PyArray_DIM((PyArrayObject *)t_obj, 0);
    const double *t = f64_vec(t_obj, n, "t");
    const double *c = t ? f64_vec(c_obj, n, "c") : NULL;
    if (!c) return NULL;
    if (!(tot > 0.0) || tot != tot || w != w || !(tot < 1e300) || !(w < 1e300)) {
        PyErr_SetString(PyExc_ValueError, "total and w: finite, total > 0");
        return NULL;
    }
    for (npy_intp i = 0; i < n; i++) {
        if (t[i] != t[i] || c[i] != c[i] || (i && !(t[i - 1] <= t[i])) ||
            !(t[i] < 1e300 && t[i] > -1e300)) {
            PyErr_SetString(PyExc_ValueError, "t sorted and finite, c without nan");
            return NULL;
        }
    }
    npy_intp wrap = 0;  /* np.searchsorted(t, w, side="right") */
    while (wrap < n && t[wrap] <= w) wrap++;
    /* The merge below needs the wrapped copies after the last launch (numpy sorts
     * whatever it gets): a launch past total + t[0] is left to numpy. */
    if (wrap > 0 && !(t[n - 1] <= t[0] + tot)) {
        PyErr_SetString(PyExc_ValueError, "a launch past the circle's wrap");
        return NULL;
    }
    npy_intp m = n + wrap, e = 2 * m;
    double *t2 = (double *)malloc(sizeof(double) * (size_t)(m > 0 ? m : 1));
    double *c2 = (double *)malloc(sizeof(double) * (size_t)(m > 0 ? m : 1));
    double *units = (double *)malloc(sizeof(double) * (size_t)(e > 0 ? e : 1));
    double *len = (double *)malloc(sizeof(double) * (size_t)(e > 0 ? e : 1));
    double *buf = (double *)malloc(sizeof(double) * (size_t)(e > 0 ? e : 1));
    npy_int64 *idx = (npy_int64 *)malloc(sizeof(npy_int64) * (size_t)(e > 0 ? e : 1));
    double *sv = (double *)malloc(sizeof(double) * (size_t)(e > 0 ? e : 1));
    double *sc = (double *)malloc(sizeof(double) * (size_t)(e > 0 ? e : 1));
    double *out1 = NULL, *out2 = NULL;
    PyObject *res = NULL;
    if (!t2 || !c2 || !units || !len || !buf || !idx || !sv || !sc) {
        PyErr_NoMemory();
        goto done;
    }
    for (npy_intp i = 0; i < n; i++) {
        t2[i] = t[i];
        c2[i] = c[i];
    }
    for (npy_intp i = 0; i < wrap; i++) {
        t2[n + i] = t[i] + tot;
        c2[n + i] = c[i];
    }
    /* The stable merge of (t2 - w) (first, +c2) and t2 (second, -c2). */
    {
        npy_intp i = 0, j = 0, k = 0;
        while (i < m || j < m) {
            if (j >= m || (i < m && t2[i] - w <= t2[j])) {
                sv[k] = t2[i] - w;
                sc[k] = c2[i];
                i++;
            } else {
                sv[k] = t2[j];
                sc[k] = -c2[j];
                j++;
            }
            k++;
        }
    }
    /* units: max(cumsum, 0.0) (numpy's maximum); lengths between the clipped points. */
    npy_intp kept = 0;
    double run = 0.0;
    for (npy_intp k = 0; k < e; k++) {
        run = k ? run + sc[k] : sc[k];
        double u = (run >= 0.0 || run != run) ? run : 0.0;
        double lo = np_clip(sv[k], 0.0, tot);
        double hi = np_clip(k + 1 < e ? sv[k + 1] : tot, 0.0, tot);
        double l = hi - lo;
        if (l > 0 && u > 1e-9) {
            units[kept] = u;
            len[kept] = l / tot;
            kept++;
        }
    }
    for (npy_intp k = 0; k < kept; k++) buf[k] = units[k] * len[k];
    double sampled = total(buf, kept);
    if (!(sampled > 0)) {
        res = Py_None;
        Py_INCREF(res);
        goto done;
    }
    double lsum = total(len, kept);
    double a = mean_lat / sampled, b = 1.0 / lsum;
    double scale = b < a ? b : a;  /* Python's min(a, b) */
    npy_int64 top = 0;
    for (npy_intp k = 0; k < kept; k++) {
        len[k] = len[k] * scale;
        if (a > b) units[k] = units[k] * (a / b);  /* the contents keep the exact load */
        double base = floor(units[k]);
        units[k] = units[k] - base;  /* frac */
        if (!(base >= 0.0 && base < 9.0e15)) {
            PyErr_SetString(PyExc_ValueError, "a content off the lattice");
            goto done;
        }
        idx[k] = (npy_int64)base;
        if (idx[k] > top) top = idx[k];
    }
    npy_intp size = (npy_intp)top + 2;
    out1 = (double *)calloc((size_t)size, sizeof(double));
    out2 = (double *)calloc((size_t)size, sizeof(double));
    if (!out1 || !out2) {
        PyErr_NoMemory();
        goto done;
    }
    for (npy_intp k = 0; k < kept; k++) out1[idx[k]] += len[k] * (1.0 - units[k]);
    for (npy_intp k = 0; k < kept; k++) out2[idx[k] + 1] += len[k] * units[k];
    for (npy_intp k = 0; k < size; k++) out1[k] += out2[k];
    double left = 1.0 - total(len, kept);
    out1[0] += left > 0.0 ? left : 0.0;  /* Python's max(0.0, left) */
    double norm = total(out1, size);
    npy_intp dims[1] = {size};
    PyArrayObject *arr = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (!arr) goto done;
    double *o = (double *)PyArray_DATA(arr);
    for (npy_intp k = 0; k < size; k++) o[k] = out1[k] / norm;
    res = (PyObject *)arr;
done:
    free(t2);
    free(c2);
    free(units);
    free(len);
    free(buf);
    free(idx);
    free(sv);
    free(sc);
    free(out1);
    free(out2);
    return res;
}

/* launch_groups(times, calls) -> (cells, width) (TurnTiming.groups): per row, a new
 * group at every launch (calls >= 0) whose offset differs from the column before it
 * (np.cumsum of those starts, less 1, at every column, valid or not), and the most
 * groups of a row; cells hold row * width + group. Integers: exact. */
static PyObject *launch_groups(PyObject *self, PyObject *args) {
    PyObject *t_obj, *c_obj;
    if (!PyArg_ParseTuple(args, "O!O!", &PyArray_Type, &t_obj, &PyArray_Type, &c_obj))
        return NULL;
    PyArrayObject *ta = (PyArrayObject *)t_obj, *ca = (PyArrayObject *)c_obj;
    if (!F64(ta) || PyArray_TYPE(ca) != NPY_INT64 || !PyArray_ISNOTSWAPPED(ca) ||
        !PyArray_ISALIGNED(ca) || PyArray_NDIM(ta) != 2 || PyArray_NDIM(ca) != 2 ||
        !PyArray_IS_C_CONTIGUOUS(ta) || !PyArray_IS_C_CONTIGUOUS(ca) ||
        PyArray_DIM(ta, 0) != PyArray_DIM(ca, 0) || PyArray_DIM(ta, 1) != PyArray_DIM(ca, 1)) {
        PyErr_SetString(PyExc_ValueError, "times (float64) and calls (int64): alike");
        return NULL;
    }
    npy_intp n = PyArray_DIM(ta, 0), r = PyArray_DIM(ta, 1);
    const double *t = (const double *)PyArray_DATA(ta);
    const npy_int64 *c = (const npy_int64 *)PyArray_DATA(ca);
    npy_intp dims[2] = {n, r};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_INT64, 0);
    if (!out) return NULL;
    npy_int64 *cell = (npy_int64 *)PyArray_DATA(out);
    npy_int64 top = 0;
    int any = 0, started = 0;
    for (npy_intp i = 0; i < n; i++) {
        npy_int64 run = 0;
        for (npy_intp j = 0; j < r; j++) {
            npy_intp x = i * r + j;
            int valid = c[x] >= 0;
            int is_new = valid && (j == 0 || t[x] != t[x - 1]);
            run += is_new;
            cell[x] = run - 1;
            if (!started || run - 1 > top) top = run - 1;
            started = 1;
            any |= valid;
        }
    }
    npy_int64 width = any ? (top + 1 > 1 ? top + 1 : 1) : 1;
    for (npy_intp i = 0; i < n; i++)
        for (npy_intp j = 0; j < r; j++) cell[i * r + j] += (npy_int64)i * width;
    return Py_BuildValue("(NL)", (PyObject *)out, (long long)width);
}

/* masked_columns(xs, act, r, fill) -> (n, r) array (timing.turn_timing): column j is
 * xs[j] where act[j] else fill, for j < r — np.where(act[:r], np.stack(xs[:r]), fill).T
 * made contiguous, in one pass. xs: vectors of n float64 (fill a float) or int64 (fill
 * an int); act: (>= r, n) bool. Values are copied, never computed. */
static PyObject *masked_columns(PyObject *self, PyObject *args) {
    PyObject *xs, *a_obj, *fill_obj;
    Py_ssize_t r;
    if (!PyArg_ParseTuple(args, "O!O!nO", &PyList_Type, &xs, &PyArray_Type, &a_obj, &r,
                          &fill_obj))
        return NULL;
    PyArrayObject *aa = (PyArrayObject *)a_obj;
    if (PyArray_TYPE(aa) != NPY_BOOL || PyArray_NDIM(aa) != 2 ||
        !PyArray_IS_C_CONTIGUOUS(aa) || r < 1 || PyArray_DIM(aa, 0) < r ||
        PyList_GET_SIZE(xs) < r) {
        PyErr_SetString(PyExc_ValueError, "act (R, n) bool contiguous, 1 <= r <= R");
        return NULL;
    }
    npy_intp n = PyArray_DIM(aa, 1);
    const npy_bool *act = (const npy_bool *)PyArray_DATA(aa);
    PyArrayObject *first = (PyArrayObject *)PyList_GET_ITEM(xs, 0);
    if (!PyArray_Check((PyObject *)first)) {
        PyErr_SetString(PyExc_ValueError, "xs: numpy vectors");
        return NULL;
    }
    int type = PyArray_TYPE(first);
    if (type != NPY_FLOAT64 && type != NPY_INT64) {
        PyErr_SetString(PyExc_ValueError, "xs: float64 or int64 vectors");
        return NULL;
    }
    double fd = 0.0;
    npy_int64 fi = 0;
    if (type == NPY_FLOAT64) {
        if (!PyFloat_CheckExact(fill_obj)) {
            PyErr_SetString(PyExc_ValueError, "a float fill for float64 columns");
            return NULL;
        }
        fd = PyFloat_AS_DOUBLE(fill_obj);
    } else {
        if (!PyLong_CheckExact(fill_obj)) {
            PyErr_SetString(PyExc_ValueError, "an int fill for int64 columns");
            return NULL;
        }
        fi = (npy_int64)PyLong_AsLongLong(fill_obj);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "an int64 fill");
            return NULL;
        }
    }
    for (Py_ssize_t j = 0; j < r; j++) {
        PyObject *o = PyList_GET_ITEM(xs, j);
        PyArrayObject *x = (PyArrayObject *)o;
        if (!PyArray_Check(o) || PyArray_TYPE(x) != type || !PyArray_ISNOTSWAPPED(x) ||
            !PyArray_ISALIGNED(x) || PyArray_NDIM(x) != 1 || PyArray_DIM(x, 0) != n ||
            !PyArray_IS_C_CONTIGUOUS(x)) {
            PyErr_SetString(PyExc_ValueError, "xs: contiguous vectors of one type, n each");
            return NULL;
        }
    }
    npy_intp dims[2] = {n, (npy_intp)r};
    PyArrayObject *out = (PyArrayObject *)PyArray_EMPTY(2, dims, type, 0);
    if (!out) return NULL;
    /* In blocks of rows, so that the columns' reads and the rows' writes stay cached. */
    const npy_intp B = 64;
    for (npy_intp i0 = 0; i0 < n; i0 += B) {
        npy_intp i1 = i0 + B < n ? i0 + B : n;
        for (Py_ssize_t j = 0; j < r; j++) {
            const npy_bool *aj = act + (npy_intp)j * n;
            PyArrayObject *x = (PyArrayObject *)PyList_GET_ITEM(xs, j);
            if (type == NPY_FLOAT64) {
                const double *xj = (const double *)PyArray_DATA(x);
                double *o = (double *)PyArray_DATA(out);
                for (npy_intp i = i0; i < i1; i++) o[i * r + j] = aj[i] ? xj[i] : fd;
            } else {
                const npy_int64 *xj = (const npy_int64 *)PyArray_DATA(x);
                npy_int64 *o = (npy_int64 *)PyArray_DATA(out);
                for (npy_intp i = i0; i < i1; i++) o[i * r + j] = aj[i] ? xj[i] : fi;
            }
        }
    }
    return (PyObject *)out;
}

/* coarsen(pmf, factor) -> out (window._coarsen, factor > 1 and finite): the point i goes
 * to i / factor, split between its two nearest points of the coarser lattice — the
 * numpy code's operations in its order: x = i / factor, lo = floor(x), frac = x - lo,
 * out[lo] += pmf·(1 − frac) for every i in order, then out[lo + 1] += pmf·frac (the two
 * np.add.at calls, each adding one term at a time from 0). */
static PyObject *coarsen(PyObject *self, PyObject *args) {
    PyObject *p_obj;
    double factor;
    if (!PyArg_ParseTuple(args, "Od", &p_obj, &factor)) return NULL;
    if (!PyArray_Check(p_obj) || PyArray_NDIM((PyArrayObject *)p_obj) != 1 ||
        PyArray_DIM((PyArrayObject *)p_obj, 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "pmf must be a non-empty float64 vector");
        return NULL;
    }
    npy_intp n = PyArray_DIM((PyArrayObject *)p_obj, 0);
    const double *p = f64_vec(p_obj, n, "pmf");
    if (!p) return NULL;
    if (!(factor > 1.0) || !(factor < 1e300)) {
        PyErr_SetString(PyExc_ValueError, "factor: finite, above 1");
        return NULL;
    }
    /* floor(i / factor) never decreases with i: the last is the largest. */
    npy_intp size = (npy_intp)floor((double)(n - 1) / factor) + 2;
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(1, &size, NPY_FLOAT64, 0);
    if (!out) return NULL;
    double *o = (double *)PyArray_DATA(out);
    for (npy_intp i = 0; i < n; i++) {
        double x = (double)i / factor, lo = floor(x);
        o[(npy_intp)lo] += p[i] * (1.0 - (x - lo));
    }
    for (npy_intp i = 0; i < n; i++) {
        double x = (double)i / factor, lo = floor(x);
        o[(npy_intp)lo + 1] += p[i] * (x - lo);
    }
    return (PyObject *)out;
}

/* A pgf kernel's arguments (counts; the transform's real and imaginary parts; with "OOOd"
 * also eps) and its two zeroed outputs; -1 with the error set. */
struct pgf_io {
    const double *cnt, *fre, *fim;
    npy_intp kn, mn;
    PyArrayObject *ore, *oim;
};

static int pgf_inputs(PyObject *args, const char *fmt, double *eps, struct pgf_io *io) {
    PyObject *c_obj, *r_obj, *i_obj;
    if (!PyArg_ParseTuple(args, fmt, &c_obj, &r_obj, &i_obj, eps)) return -1;
    if (!PyArray_Check(c_obj) || PyArray_NDIM((PyArrayObject *)c_obj) != 1 ||
        !PyArray_Check(r_obj) || PyArray_NDIM((PyArrayObject *)r_obj) != 1) {
        PyErr_SetString(PyExc_ValueError, "counts and fre must be float64 vectors");
        return -1;
    }
    io->kn = PyArray_DIM((PyArrayObject *)c_obj, 0);
    io->mn = PyArray_DIM((PyArrayObject *)r_obj, 0);
    io->cnt = f64_vec(c_obj, io->kn, "counts");
    io->fre = io->cnt ? f64_vec(r_obj, io->mn, "fre") : NULL;
    io->fim = io->fre ? f64_vec(i_obj, io->mn, "fim") : NULL;
    if (!io->fim) return -1;
    npy_intp dims[1] = {io->mn};
    io->ore = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    io->oim = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (!io->ore || !io->oim) {
        Py_XDECREF(io->ore);
        Py_XDECREF(io->oim);
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* pgf_truncated(counts, fre, fim, eps) -> (re, im)
 * (fleet._compound: a count's pgf G(z) = sum_k counts[k] z^k at each point z = fre + i fim
 * of a charge's transform, |z| <= 1). The powers z^k by repeated products, the sum in k's
 * order; a point stops once |z^k| < eps: every term left is below eps times the count's
 * mass left. Element-wise IEEE operations only (contraction off), as
 * fleet._pgf_truncated_numpy computes them. */
#define PGF_LANES 8

static PyObject *pgf_truncated(PyObject *self, PyObject *args) {
    double eps;
    struct pgf_io io;
    if (pgf_inputs(args, "OOOd", &eps, &io) < 0) return NULL;
    const double *cnt = io.cnt, *fre = io.fre, *fim = io.fim;
    const npy_intp kn = io.kn, mn = io.mn;
    PyArrayObject *ore = io.ore, *oim = io.oim;
    double *are = (double *)PyArray_DATA(ore), *aim = (double *)PyArray_DATA(oim);
    const double eps2 = eps * eps;
    Py_BEGIN_ALLOW_THREADS
    /* PGF_LANES points at a time: each point's sum is a chain of dependent complex
     * products (latency-bound), so independent chains interleaved keep the multipliers
     * busy (hunt-69: 0.79 -> 0.60 s with 4 lanes, 0.56 s with 8). Each lane does the same
     * operations in the same order as the one-point loop below (and -ffp-contract=off):
     * the sums are bit for bit the same. */
    npy_intp j0 = 0;
    for (; j0 + PGF_LANES <= mn; j0 += PGF_LANES) {
        double zr[PGF_LANES], zi[PGF_LANES], pr[PGF_LANES], pi[PGF_LANES];
        double sr[PGF_LANES], si[PGF_LANES];
        int live[PGF_LANES], left = PGF_LANES;
        for (int l = 0; l < PGF_LANES; l++) {
            zr[l] = fre[j0 + l];
            zi[l] = fim[j0 + l];
            pr[l] = 1.0;
            pi[l] = 0.0;
            sr[l] = 0.0;
            si[l] = 0.0;
            live[l] = 1;
        }
        for (npy_intp k = 0; k < kn && left > 0; k++) {
            const double c = cnt[k];
            for (int l = 0; l < PGF_LANES; l++) {
                if (!live[l]) continue;
                sr[l] = sr[l] + c * pr[l];
                si[l] = si[l] + c * pi[l];
                const double nr = pr[l] * zr[l] - pi[l] * zi[l];
                const double ni = pr[l] * zi[l] + pi[l] * zr[l];
                pr[l] = nr;
                pi[l] = ni;
                if (nr * nr + ni * ni < eps2) {
                    live[l] = 0;
                    left--;
                }
            }
        }
        for (int l = 0; l < PGF_LANES; l++) {
            are[j0 + l] = sr[l];
            aim[j0 + l] = si[l];
        }
    }
    for (npy_intp j = j0; j < mn; j++) {
        const double zr = fre[j], zi = fim[j];
        double pr = 1.0, pi = 0.0, sr = 0.0, si = 0.0;
        for (npy_intp k = 0; k < kn; k++) {
            const double c = cnt[k];
            sr = sr + c * pr;
            si = si + c * pi;
            const double nr = pr * zr - pi * zi;
            const double ni = pr * zi + pi * zr;
            pr = nr;
            pi = ni;
            if (pr * pr + pi * pi < eps2) break;
        }
        are[j] = sr;
        aim[j] = si;
    }
    Py_END_ALLOW_THREADS
    return Py_BuildValue("NN", ore, oim);
}

/* pgf_horner(counts, fre, fim) -> (re, im)
 * (fleet._pgf: Σ_k counts[k] z^k at each point z = fre + i fim by Horner's rule): per point,
 * from the last coefficient down, acc = acc·z + c as numpy's in-place `acc *= z;
 * acc += c` computes it — numpy's SIMD complex product (x86-64 AVX2 / AVX-512) is
 * re = fma(ar, zr, −ai·zi), im = fma(ar, zi, ai·zr), and a real c is added as c + 0i.
 * numpy makes ~2 passes over 2^17 complex points a coefficient; here a block of points stays
 * in L1 while every coefficient is applied (hunt-158: 0.46 -> 0.20 s). fleet._pgf uses this
 * only where a probe finds it equal to numpy's loop bit for bit (fleet._horner_kernel). */
#define HORNER_BLOCK 256
#define HORNER_LOOP                                                                     \
    for (npy_intp j0 = 0; j0 < m; j0 += HORNER_BLOCK) {                                 \
        const npy_intp nb = m - j0 < HORNER_BLOCK ? m - j0 : HORNER_BLOCK;              \
        const double *xr = zr + j0, *xi = zi + j0;                                      \
        double r[HORNER_BLOCK], im[HORNER_BLOCK];                                       \
        for (npy_intp j = 0; j < nb; j++) {                                             \
            r[j] = 0.0;                                                                 \
            im[j] = 0.0;                                                                \
        }                                                                               \
        for (npy_intp k = kn - 1; k >= 0; k--) {                                        \
            const double c = cnt[k];                                                    \
            for (npy_intp j = 0; j < nb; j++) {                                         \
                const double nr = fma(r[j], xr[j], -(im[j] * xi[j]));                   \
                const double ni = fma(r[j], xi[j], im[j] * xr[j]);                      \
                r[j] = nr + c;                                                          \
                im[j] = ni + 0.0;                                                       \
            }                                                                           \
        }                                                                               \
        for (npy_intp j = 0; j < nb; j++) {                                             \
            are[j0 + j] = r[j];                                                         \
            aim[j0 + j] = im[j];                                                        \
        }                                                                               \
    }

static void horner_plain(const double *cnt, npy_intp kn, const double *zr, const double *zi,
                         double *are, double *aim, npy_intp m) {
    HORNER_LOOP
}

#if defined(__GNUC__) && defined(__x86_64__)
/* The same loop with the FMA unit (the plain build calls libm's fma a point). */
__attribute__((target("avx2,fma")))
static void horner_fma(const double *cnt, npy_intp kn, const double *zr, const double *zi,
                       double *are, double *aim, npy_intp m) {
    HORNER_LOOP
}
#endif

static PyObject *pgf_horner(PyObject *self, PyObject *args) {
    double unused = 0.0;
    struct pgf_io io;
    if (pgf_inputs(args, "OOO", &unused, &io) < 0) return NULL;
    double *are = (double *)PyArray_DATA(io.ore), *aim = (double *)PyArray_DATA(io.oim);
    Py_BEGIN_ALLOW_THREADS
#if defined(__GNUC__) && defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        horner_fma(io.cnt, io.kn, io.fre, io.fim, are, aim, io.mn);
    else
#endif
        horner_plain(io.cnt, io.kn, io.fre, io.fim, are, aim, io.mn);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("NN", io.ore, io.oim);
}

/* ---- Small dense blocks (bucket.py's level chains) ------------------------------------
 * These are not numpy's numbers bit for bit: numpy's matrix products and inverses are
 * BLAS/LAPACK's, whose summation order (blocking, fused multiply-adds) depends on the
 * machine. Plain loops here round differently in the last bits only; the chains' shares
 * are read against targets of ~1e-2, far above that. */

/* c (r×m) += a (r×n) · b (n×m), row-major; the product of each pair summed in k order
 * into a zeroed row, then added (numpy's `c + a @ b`: the product, then the sum). */
static inline __attribute__((always_inline)) void mat_addmul(double *c, const double *a, const double *b, npy_intp r, npy_intp n,
                       npy_intp m, double *row) {
    for (npy_intp i = 0; i < r; i++) {
        for (npy_intp j = 0; j < m; j++) row[j] = 0.0;
        for (npy_intp k = 0; k < n; k++) {
            double x = a[i * n + k];
            if (x == 0.0) continue;
            const double *bk = b + k * m;
            for (npy_intp j = 0; j < m; j++) row[j] += x * bk[j];
        }
        for (npy_intp j = 0; j < m; j++) c[i * m + j] += row[j];
    }
}

/* x (m) = v (n) · b (n×m). */
static inline __attribute__((always_inline)) void vec_mul(double *x, const double *v, const double *b, npy_intp n, npy_intp m) {
    for (npy_intp j = 0; j < m; j++) x[j] = 0.0;
    for (npy_intp k = 0; k < n; k++) {
        double y = v[k];
        if (y == 0.0) continue;
        const double *bk = b + k * m;
        for (npy_intp j = 0; j < m; j++) x[j] += y * bk[j];
    }
}

/* LU with partial pivoting of the n×n a (in place, as LAPACK's getrf picks pivots: the
 * largest magnitude in the column, the first of equals); 0 when a pivot is exactly 0. */
static inline __attribute__((always_inline)) int lu(double *a, npy_intp n, npy_intp *piv) {
    for (npy_intp k = 0; k < n; k++) {
        npy_intp p = k;
        double best = fabs(a[k * n + k]);
        for (npy_intp i = k + 1; i < n; i++) {
            double v = fabs(a[i * n + k]);
            if (v > best) { best = v; p = i; }
        }
        piv[k] = p;
        if (a[p * n + k] == 0.0) return 0;
        if (p != k) {
            for (npy_intp j = 0; j < n; j++) {
                double t = a[k * n + j]; a[k * n + j] = a[p * n + j]; a[p * n + j] = t;
            }
        }
        double d = a[k * n + k];
        for (npy_intp i = k + 1; i < n; i++) {
            double f = a[i * n + k] / d;
            a[i * n + k] = f;
            if (f == 0.0) continue;
            for (npy_intp j = k + 1; j < n; j++) a[i * n + j] -= f * a[k * n + j];
        }
    }
    return 1;
}

/* Solve (LU) x = b in place for one right-hand side b (n). */
static inline __attribute__((always_inline)) void lu_solve(const double *a, const npy_intp *piv, npy_intp n, double *b) {
    for (npy_intp k = 0; k < n; k++) {
        if (piv[k] != k) { double t = b[k]; b[k] = b[piv[k]]; b[piv[k]] = t; }
    }
    for (npy_intp i = 1; i < n; i++) {
        double s = b[i];
        for (npy_intp k = 0; k < i; k++) s -= a[i * n + k] * b[k];
        b[i] = s;
    }
    for (npy_intp i = n - 1; i >= 0; i--) {
        double s = b[i];
        for (npy_intp k = i + 1; k < n; k++) s -= a[i * n + k] * b[k];
        b[i] = s / a[i * n + i];
    }
}

/* inv (n×n) = (I − t)⁻¹; 0 when singular. work: n² + n doubles, piv: n. */
static inline __attribute__((always_inline)) int inv_eye_minus(const double *t, npy_intp n, double *inv, double *work,
                         npy_intp *piv) {
    double *a = work, *col = work + n * n;
    for (npy_intp i = 0; i < n * n; i++) a[i] = -t[i];
    for (npy_intp i = 0; i < n; i++) a[i * n + i] += 1.0;
    if (!lu(a, n, piv)) return 0;
    for (npy_intp j = 0; j < n; j++) {
        for (npy_intp i = 0; i < n; i++) col[i] = i == j ? 1.0 : 0.0;
        lu_solve(a, piv, n, col);
        for (npy_intp i = 0; i < n; i++) inv[i * n + j] = col[i];
    }
    return 1;
}

/* bucket._stationary of the row-stochastic t (n×n): the dense solve (the balance
 * equations with the last replaced by the total) up to 96 states when it gives no
 * negative mass beyond -1e-9, else the GTH elimination. work: 2n² + n doubles. */
static inline __attribute__((always_inline)) void stationary(const double *t, npy_intp n, double *pi, double *work, npy_intp *piv) {
    double *a = work, *p = work + n * n;
    if (n <= 96) {
        for (npy_intp i = 0; i < n; i++)
            for (npy_intp j = 0; j < n; j++) a[i * n + j] = t[j * n + i] - (i == j);
        for (npy_intp j = 0; j < n; j++) a[(n - 1) * n + j] = 1.0;
        if (lu(a, n, piv)) {
            for (npy_intp i = 0; i < n; i++) pi[i] = i == n - 1 ? 1.0 : 0.0;
            lu_solve(a, piv, n, pi);
            double lo = pi[0];
            for (npy_intp i = 1; i < n; i++) lo = pi[i] < lo ? pi[i] : lo;
            if (lo > -1e-9) {
                for (npy_intp i = 0; i < n; i++) pi[i] = pi[i] > 0.0 ? pi[i] : 0.0;
                double s = total(pi, n);
                for (npy_intp i = 0; i < n; i++) pi[i] /= s;
                return;
            }
        }
    }
    memcpy(p, t, sizeof(double) * n * n);
    for (npy_intp k = n - 1; k > 0; k--) {
        double s = total(p + k * n, k);
        if (s <= 0.0) s = 1e-300;
        for (npy_intp i = 0; i < k; i++) p[i * n + k] /= s;
        for (npy_intp i = 0; i < k; i++) {
            double f = p[i * n + k];
            for (npy_intp j = 0; j < k; j++) p[i * n + j] += f * p[k * n + j];
        }
    }
    pi[0] = 1.0;
    for (npy_intp k = 1; k < n; k++) {
        double s = 0.0;
        for (npy_intp i = 0; i < k; i++) s += pi[i] * p[i * n + k];
        pi[k] = s;
    }
    double s = total(pi, n);
    for (npy_intp i = 0; i < n; i++) pi[i] /= s;
}

/* A C-contiguous float64 array of the given shape (dims < 0: any), or NULL with
 * ValueError set. */
static double *f64_arr(PyObject *o, int nd, const npy_intp *dims, const char *name) {
    PyArrayObject *a = (PyArrayObject *)o;
    if (!PyArray_Check(o) || !F64(a) || PyArray_NDIM(a) != nd || !PyArray_IS_C_CONTIGUOUS(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous float64 array of %d dims",
                     name, nd);
        return NULL;
    }
    for (int i = 0; i < nd; i++) {
        if (dims[i] >= 0 && PyArray_DIM(a, i) != dims[i]) {
            PyErr_Format(PyExc_ValueError, "%s: dimension %d is %zd, not %zd", name, i,
                         (Py_ssize_t)PyArray_DIM(a, i), (Py_ssize_t)dims[i]);
            return NULL;
        }
    }
    return (double *)PyArray_DATA(a);
}

/* The pending chain's work (see pending_chain), on its inputs and scratch. */
struct pending {
    const double *t00, *t0, *blk, *last, *back, *stay;
    npy_intp n0, nc, u, J, w;
    double *mem, *pis;
    npy_intp *piv;
    char *init;
};

static inline __attribute__((always_inline)) int pending_core(struct pending *pd) {
    const double *t00 = pd->t00, *t0 = pd->t0, *blk = pd->blk, *last = pd->last;
    const double *back = pd->back, *stay = pd->stay;
    npy_intp n0 = pd->n0, nc = pd->nc, u = pd->u, J = pd->J, w = pd->w, b2 = nc * nc;
    double *mem = pd->mem, *pis = pd->pis;
    npy_intp *piv = pd->piv;
    char *init = pd->init;
    int ok = 1;
    double *T00 = mem, *T0 = T00 + n0 * n0, *T10 = T0 + u * n0 * nc, *U = T10 + nc * n0;
    double *D = U + J * (u + 1) * b2, *INV = D + J * b2, *down = INV + J * b2;
    double *C = down + nc * n0, *work = C + n0 * n0;  /* work: 2n0² + n0 */
#define UB(j, k) (U + (((j) - 1) * (u + 1) + (k)) * b2)
#define DB(j) (D + ((j) - 1) * b2)
#define T0B(c) (T0 + ((c) - 1) * n0 * nc)
    memcpy(T00, t00, sizeof(double) * n0 * n0);
    memcpy(T0, t0, sizeof(double) * u * n0 * nc);
    memcpy(T10, last, sizeof(double) * nc * n0);
    for (npy_intp k = 0; k <= u; k++) {
        for (npy_intp j = 1; j <= J; j++) {
            npy_intp kk = k < J - j ? k : J - j;
            const double *src = blk + (k * J + (j - 1)) * b2;
            double *dst = UB(j, kk);
            if (!init[(j - 1) * (u + 1) + kk]) {
                memcpy(dst, src, sizeof(double) * b2);
                init[(j - 1) * (u + 1) + kk] = 1;
            } else {
                for (npy_intp i = 0; i < b2; i++) dst[i] = dst[i] + src[i];
            }
        }
    }
    for (npy_intp j = 1; j <= J; j++) {
        if (j > 1) memcpy(DB(j), back + (j - 1) * b2, sizeof(double) * b2);
        double *dg = UB(j, 0);
        const double *st = stay + (j - 1) * b2;
        for (npy_intp i = 0; i < b2; i++) dg[i] = dg[i] + st[i];
    }
    /* Censor j = J, …, 1: T[a, j−1] += T[a, j] (I − T[j,j])⁻¹ T[j, j−1]. */
    for (npy_intp j = J; j >= 1 && ok; j--) {
        double *inv = INV + (j - 1) * b2;
        if (!inv_eye_minus(UB(j, 0), nc, inv, work, piv)) { ok = 0; break; }
        npy_intp cols = j == 1 ? n0 : nc;
        const double *tdown = j == 1 ? T10 : DB(j);
        for (npy_intp i = 0; i < nc * cols; i++) down[i] = 0.0;
        mat_addmul(down, inv, tdown, nc, nc, cols, work);
        for (npy_intp a = (j - u > 0 ? j - u : 0); a < j; a++) {
            const double *src = a == 0 ? T0B(j) : UB(a, j - a);
            double *dst = a == 0 ? (j == 1 ? T00 : T0B(j - 1))
                                 : (j - 1 == a ? UB(a, 0) : UB(a, j - 1 - a));
            mat_addmul(dst, src, down, a == 0 ? n0 : nc, nc, cols, work);
        }
    }
    if (ok) {
        /* pis[0]: the censored chain's, its rows renormalised. */
        for (npy_intp i = 0; i < n0; i++) {
            double s = total(T00 + i * n0, n0);
            for (npy_intp j = 0; j < n0; j++) C[i * n0 + j] = T00[i * n0 + j] / s;
        }
        stationary(C, n0, pis, work, piv);
        double *acc = work, *x = work + n0;
        for (npy_intp j = 1; j <= J; j++) {
            for (npy_intp i = 0; i < nc; i++) acc[i] = 0.0;
            for (npy_intp a = (j - u > 0 ? j - u : 0); a < j; a++) {
                const double *src = a == 0 ? T0B(j) : UB(a, j - a);
                vec_mul(x, pis + a * w, src, a == 0 ? n0 : nc, nc);
                for (npy_intp i = 0; i < nc; i++) acc[i] += x[i];
            }
            vec_mul(x, acc, INV + (j - 1) * b2, nc, nc);
            for (npy_intp i = 0; i < nc; i++) pis[j * w + i] = x[i] > 0.0 ? x[i] : 0.0;
        }
    }
#undef UB
#undef DB
#undef T0B
    return ok;
}

TWO_BUILDS(pending, struct pending, pending_core)

/* pending_chain(t00, t0, blk, last, back, stay) -> pis (J + 1, max(n0, nc)) or None
 *
 * bucket.BucketChain._pending's chain of (pending j = 0..J, level): the blocks as the
 * Python code builds them — t00 (n0×n0) T[0,0]; t0 (u, n0, nc) T[0,k], k = 1..u; blk
 * (u + 1, J, nc, nc) the fresh launches' blocks by refused calls k from j = 1..J (into
 * T[j, min(j + k, J)], added in k order); last (nc, n0) T[1,0]; back (J, nc, nc) T[j, j−1]
 * at j − 1 (j ≥ 2); stay (J, nc, nc) added to T[j,j] — censored from j = J down, then
 * the stationary law of T[0,0]'s chain and the pending counts' laws up (unnormalised; row
 * j's first n0 or nc entries). None: a block I − T[j,j] is singular (the numpy code's
 * LinAlgError). */
static PyObject *pending_chain(PyObject *self, PyObject *args) {
    PyObject *o00, *o0, *ob, *ol, *oba, *ost;
    if (!PyArg_ParseTuple(args, "OOOOOO", &o00, &o0, &ob, &ol, &oba, &ost)) return NULL;
    if (!PyArray_Check(o00) || PyArray_NDIM((PyArrayObject *)o00) != 2 ||
        !PyArray_Check(ob) || PyArray_NDIM((PyArrayObject *)ob) != 4) {
        PyErr_SetString(PyExc_ValueError, "t00 must be 2-d and blk 4-d");
        return NULL;
    }
    npy_intp n0 = PyArray_DIM((PyArrayObject *)o00, 0);
    npy_intp u = PyArray_DIM((PyArrayObject *)ob, 0) - 1;
    npy_intp J = PyArray_DIM((PyArrayObject *)ob, 1);
    npy_intp nc = PyArray_DIM((PyArrayObject *)ob, 2);
    if (u < 0 || u > J || J < 1 || nc < 1 || nc > n0) {
        PyErr_SetString(PyExc_ValueError, "pending_chain: shapes out of range");
        return NULL;
    }
    npy_intp d00[2] = {n0, n0}, d0[3] = {u, n0, nc}, db[4] = {u + 1, J, nc, nc};
    npy_intp dl[2] = {nc, n0}, dj[3] = {J, nc, nc};
    const double *t00 = f64_arr(o00, 2, d00, "t00");
    const double *t0 = t00 ? f64_arr(o0, 3, d0, "t0") : NULL;
    const double *blk = t0 ? f64_arr(ob, 4, db, "blk") : NULL;
    const double *last = blk ? f64_arr(ol, 2, dl, "last") : NULL;
    const double *back = last ? f64_arr(oba, 3, dj, "back") : NULL;
    const double *stay = back ? f64_arr(ost, 3, dj, "stay") : NULL;
    if (!stay) return NULL;
    npy_intp b2 = nc * nc, w = n0;
    npy_intp dims[2] = {J + 1, w};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(2, dims, NPY_FLOAT64, 0);
    if (!out) return NULL;
    double *pis = (double *)PyArray_DATA(out);
    /* T00 | T0[1..u] | T10 | U[j][k] (j = 1..J, k = 0..u) | D[j] (j = 2..J) | inv[j] |
       down | scratch */
    npy_intp size = n0 * n0 + u * n0 * nc + nc * n0 + J * (u + 1) * b2 + J * b2 + J * b2
                    + nc * n0 + n0 * n0 + 2 * n0 * n0 + n0;
    double *mem = (double *)calloc((size_t)size, sizeof(double));
    npy_intp *piv = (npy_intp *)malloc(sizeof(npy_intp) * (size_t)n0);
    char *init = (char *)calloc((size_t)(J * (u + 1)), 1);
    if (!mem || !piv || !init) {
        free(mem); free(piv); free(init); Py_DECREF(out);
        return PyErr_NoMemory();
    }
    int ok;
    struct pending pd = {t00, t0, blk, last, back, stay, n0, nc, u, J, w, mem, pis, piv, init};
    Py_BEGIN_ALLOW_THREADS
    ok = BEST_BUILD(pending, &pd);
    Py_END_ALLOW_THREADS
    free(mem); free(piv); free(init);
    if (!ok) { Py_DECREF(out); Py_RETURN_NONE; }
    return (PyObject *)out;
}

/* refill_combine(lams, refill, delta, x, coef) -> out (Q, len(lams), n, w):
 * out[q, b] = Σ_p coef[b, q, p] · (G_b @ x_p), x = [x_0 | x_1 | …] (n × P·w), G_b the
 * refill matrix of bucket._refills at event rate lams[b] on n levels. G's rows are
 * geometric — G[i, k] = r0 at k = i, c·q^(k−i−1) for i < k < n − 1, the rest of the row
 * at n − 1 — so G @ x is a running sum from the top, O(n·m) a block instead of a dense
 * product's O(n²·m). Its sums run in another order than BLAS's dense product: the last
 * bits differ. */
static PyObject *refill_combine(PyObject *self, PyObject *args) {
    PyObject *ol, *ox, *oc;
    double refill, delta;
    if (!PyArg_ParseTuple(args, "OddOO", &ol, &refill, &delta, &ox, &oc)) return NULL;
    npy_intp dl[1] = {-1}, dx[2] = {-1, -1}, dc[3] = {-1, -1, -1};
    const double *lams = f64_arr(ol, 1, dl, "lams");
    const double *x = lams ? f64_arr(ox, 2, dx, "x") : NULL;
    const double *coef = x ? f64_arr(oc, 3, dc, "coef") : NULL;
    if (!coef) return NULL;
    npy_intp nb = PyArray_DIM((PyArrayObject *)ol, 0);
    npy_intp n = PyArray_DIM((PyArrayObject *)ox, 0), m = PyArray_DIM((PyArrayObject *)ox, 1);
    npy_intp Q = PyArray_DIM((PyArrayObject *)oc, 1), P = PyArray_DIM((PyArrayObject *)oc, 2);
    if (n < 1 || P < 1 || m % P != 0 || PyArray_DIM((PyArrayObject *)oc, 0) != nb) {
        PyErr_SetString(PyExc_ValueError, "refill_combine: shapes do not match");
        return NULL;
    }
    npy_intp wd = m / P;
    npy_intp dims[4] = {Q, nb, n, wd};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(4, dims, NPY_FLOAT64, 0);
    if (!out) return NULL;
    double *o = (double *)PyArray_DATA(out);
    double *mem = (double *)malloc(sizeof(double) * (size_t)(m * (n + 1)));
    if (!mem) { Py_DECREF(out); return PyErr_NoMemory(); }
    double *acc = mem, *y = mem + m;
    npy_intp top = n - 1;
    const double *xt = x + top * m;
    Py_BEGIN_ALLOW_THREADS
    for (npy_intp b = 0; b < nb; b++) {
        double a = lams[b] * delta / refill;
        double q = exp(-a);
        double r0 = 1.0 - (1.0 - q) / a;
        double c = (1.0 - q) * (1.0 - q) / a;
        for (npy_intp j = 0; j < m; j++) { acc[j] = 0.0; y[top * m + j] = xt[j]; }
        /* Row i < top: r0·x[i] + c·Σ_{i<k<top} q^(k−i−1)·x[k] + (1 − the row's sum)·x[top];
           the row's sum r0 + c·(1 + q + … + q^(top−i−2)), accumulated as it grows. */
        double geo = 0.0;
        for (npy_intp i = top - 1; i >= 0; i--) {
            double gt = 1.0 - (r0 + c * geo);
            const double *xi = x + i * m;
            double *yi = y + i * m;
            for (npy_intp j = 0; j < m; j++) yi[j] = r0 * xi[j] + c * acc[j] + gt * xt[j];
            for (npy_intp j = 0; j < m; j++) acc[j] = xi[j] + q * acc[j];
            geo = 1.0 + q * geo;
        }
        for (npy_intp qq = 0; qq < Q; qq++) {
            double *ob = o + (qq * nb + b) * n * wd;
            for (npy_intp p = 0; p < P; p++) {
                double w = coef[(b * Q + qq) * P + p];
                if (w == 0.0) continue;
                for (npy_intp i = 0; i < n; i++) {
                    const double *yi = y + i * m + p * wd;
                    double *oi = ob + i * wd;
                    for (npy_intp j = 0; j < wd; j++) oi[j] += w * yi[j];
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    free(mem);
    return (PyObject *)out;
}

/* refills(lams, refill, delta, n) -> G (len(lams), n, n): bucket._refills' matrices
 * (the mean-preserving split of an exponential refill over the grid, capped at the
 * depth), element by element in its formulas (libm's exp and pow; the last column the
 * row's rest, numpy's pairwise sum). */
static PyObject *refills(PyObject *self, PyObject *args) {
    PyObject *ol;
    double refill, delta;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "Oddn", &ol, &refill, &delta, &n)) return NULL;
    npy_intp dl[1] = {-1};
    const double *lams = f64_arr(ol, 1, dl, "lams");
    if (!lams) return NULL;
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "refills: no levels");
        return NULL;
    }
    npy_intp nb = PyArray_DIM((PyArrayObject *)ol, 0);
    npy_intp dims[3] = {nb, n, n};
    PyArrayObject *out = (PyArrayObject *)PyArray_ZEROS(3, dims, NPY_FLOAT64, 0);
    if (!out) return NULL;
    double *g = (double *)PyArray_DATA(out);
    double *row = (double *)malloc(sizeof(double) * (size_t)n);
    if (!row) { Py_DECREF(out); return PyErr_NoMemory(); }
    npy_intp top = n - 1;
    Py_BEGIN_ALLOW_THREADS
    for (npy_intp b = 0; b < nb; b++) {
        double a = lams[b] * delta / refill;
        double q = exp(-a);
        row[0] = 1.0 - (1.0 - q) / a;
        double c = (1.0 - q) * (1.0 - q) / a;
        for (npy_intp d = 1; d < n; d++) row[d] = pow(q, (double)(d - 1)) * c;
        double *gb = g + b * n * n;
        for (npy_intp i = 0; i < n; i++) {
            double *gi = gb + i * n;
            for (npy_intp k = i; k < top; k++) gi[k] = row[k - i];
            gi[top] = 1.0 - total(gi, top);
        }
    }
    Py_END_ALLOW_THREADS
    free(row);
    return (PyObject *)out;
}

/* gamma_wh(k, u, g, power, log1p) -> pacing._gamma_numpy(k, u, g): Gamma(k, 1) by
 * Wilson–Hilferty, k(1 − 1/(9k) + g/√(9k))³ (k ≤ 1 computed as k = 2), −log1p(−u) where
 * k = 1, 0 where k < 1. The element-wise +, −, ×, ÷, √ and max(·, 0) are IEEE operations
 * in the numpy code's order (every x it meets is finite: max(x, 0) is x >= 0 ? x : 0);
 * the cube and log1p are numpy's own inner loops (struct loop), called on the same arrays
 * numpy's would be (the whole vector with the exponent broadcast; the gathered u of the
 * k = 1 entries), so their SIMD or libm results are numpy's. */
static PyObject *gamma_wh(PyObject *self, PyObject *args) {
    PyObject *k_obj, *u_obj, *g_obj, *pow_uf, *log1p_uf;
    if (!PyArg_ParseTuple(args, "O!OOOO", &PyArray_Type, &k_obj, &u_obj, &g_obj, &pow_uf,
                          &log1p_uf))
        return NULL;
    PyArrayObject *ka = (PyArrayObject *)k_obj;
    npy_intp n = PyArray_NDIM(ka) == 1 ? PyArray_DIM(ka, 0) : -1;
    if (n < 0 || PyArray_TYPE(ka) != NPY_INT64 || !PyArray_ISNOTSWAPPED(ka) ||
        !PyArray_ISALIGNED(ka) || !PyArray_IS_C_CONTIGUOUS(ka)) {
        PyErr_SetString(PyExc_ValueError, "k must be a contiguous int64 vector");
        return NULL;
    }
    if (!PyArray_Check(u_obj) || !PyArray_Check(g_obj) ||
        PyArray_NDIM((PyArrayObject *)u_obj) != 1 || PyArray_NDIM((PyArrayObject *)g_obj) != 1) {
        PyErr_SetString(PyExc_ValueError, "u and g must be float64 vectors");
        return NULL;
    }
    const double *u = f64_vec(u_obj, n, "u");
    const double *g = u ? f64_vec(g_obj, n, "g") : NULL;
    if (!g) return NULL;
    struct loop cube, l1p;
    const char dd_d[3] = {NPY_DOUBLE, NPY_DOUBLE, NPY_DOUBLE}, d_d[2] = {NPY_DOUBLE, NPY_DOUBLE};
    if (find_loop(pow_uf, dd_d, &cube) < 0 || find_loop(log1p_uf, d_d, &l1p) < 0) return NULL;
    const npy_int64 *k = (const npy_int64 *)PyArray_DATA(ka);
    npy_intp dims[1] = {n};
    PyArrayObject *out_a = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (!out_a) return NULL;
    double *out = (double *)PyArray_DATA(out_a);
    npy_intp ones = 0;
    for (npy_intp i = 0; i < n; i++) {
        double kk = (double)(k[i] > 2 ? k[i] : 2);   /* np.maximum(k, 2).astype(float64) */
        double s = 9.0 * kk;
        double o = 1.0 / s;
        o = 1.0 - o;
        s = sqrt(s);
        s = g[i] / s;
        o += s;
        if (!(o >= 0.0)) {
            if (o != o) {  /* (np.maximum propagates a nan; no nan reaches here) */
                Py_DECREF(out_a);
                PyErr_SetString(PyExc_ValueError, "nan in the Wilson-Hilferty draw");
                return NULL;
            }
            o = 0.0;
        }
        out[i] = o;
        ones += k[i] == 1;
    }
    const double three = 3.0;
    char *pa[3] = {(char *)out, (char *)&three, (char *)out};   /* out **= 3 */
    npy_intp pd[1] = {n}, ps[3] = {sizeof(double), 0, sizeof(double)};
    cube.fn(pa, pd, ps, cube.data);
    for (npy_intp i = 0; i < n; i++) out[i] *= (double)(k[i] > 2 ? k[i] : 2);
    if (ones > 0) {  /* out[k == 1] = −log1p(−u[k == 1]) */
        double *v = (double *)malloc(sizeof(double) * (size_t)ones);
        if (!v) {
            Py_DECREF(out_a);
            return PyErr_NoMemory();
        }
        npy_intp j = 0;
        for (npy_intp i = 0; i < n; i++)
            if (k[i] == 1) v[j++] = -u[i];
        char *la[2] = {(char *)v, (char *)v};
        npy_intp ld[1] = {ones}, ls[2] = {sizeof(double), sizeof(double)};
        l1p.fn(la, ld, ls, l1p.data);
        j = 0;
        for (npy_intp i = 0; i < n; i++)
            if (k[i] == 1) out[i] = -v[j++];
        free(v);
    }
    for (npy_intp i = 0; i < n; i++)
        if (k[i] < 1) out[i] = 0.0;
    if (PyErr_Occurred()) {
        Py_DECREF(out_a);
        return NULL;
    }
    return (PyObject *)out_a;
}

/* search_sorted(a, v, right) -> np.searchsorted(a, v, side="right" if right else "left")
 * (int64) for a sorted a without nan and keys without nan (else ValueError: numpy's way).
 * The keys come nearly in order (a turn sample's launch keys, row by row: rising, with a
 * drop at each row's padding): each search gallops from the last answer, O(log gap)
 * instead of numpy's O(log n) per key. The answer, the count of a's entries <= (right)
 * or < (left) the key, is the same number whatever the search. */
static PyObject *search_sorted(PyObject *self, PyObject *args) {
    PyObject *a_obj, *v_obj;
    int right;
    if (!PyArg_ParseTuple(args, "OOp", &a_obj, &v_obj, &right)) return NULL;
    const double *a, *v;
    npy_intp n, m;
    PyArrayObject *out = search_setup(a_obj, v_obj, &a, &v, &n, &m);
    if (!out) return NULL;
    npy_int64 *o = (npy_int64 *)PyArray_DATA(out);
    npy_intp h = 0;  /* the last answer: the next key's search starts there */
    for (npy_intp k = 0; k < m; k++) {
        const double x = v[k];
        if (x != x) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_ValueError, "v must hold no nan");
            return NULL;
        }
        /* in(i): a[i] is counted (<= x, or < x); true up to the answer, false after.
         * Bracket the answer in [lo, hi] (in(lo - 1) or lo = 0; !in(hi) or hi = n) by
         * doubling steps from h, then bisect. */
#define IN(i) (right ? a[i] <= x : a[i] < x)
        npy_intp lo, hi, step = 1;
        if (h < n && IN(h)) {
            lo = h + 1;
            while (lo + step - 1 < n && IN(lo + step - 1)) {
                lo += step;
                step *= 2;
            }
            hi = lo + step - 1 < n ? lo + step - 1 : n;
        } else {
            hi = h;
            while (hi - step >= 0 && !IN(hi - step)) {
                hi -= step;
                step *= 2;
            }
            lo = hi - step + 1 > 0 ? hi - step + 1 : 0;
        }
        while (lo < hi) {
            npy_intp mid = lo + (hi - lo) / 2;
            if (IN(mid)) lo = mid + 1;
            else hi = mid;
        }
#undef IN
        o[k] = (npy_int64)lo;
        h = lo;
    }
    return (PyObject *)out;
}

static PyObject *plain_builds(PyObject *self, PyObject *args) {
    int flag;
    if (!PyArg_ParseTuple(args, "p", &flag)) return NULL;
    const int was = g_plain_only;
    g_plain_only = flag;
    return PyBool_FromLong(was);
}

static PyMethodDef methods[] = {
    {"plain_builds", plain_builds, METH_VARARGS,
     "plain_builds(flag) -> previous flag: True runs only the plain builds (tests)."},
    {"carry_loop", carry_loop, METH_VARARGS,
     "The retry carry's iteration: (law, mean, dropped, settled)."},
    {"pairwise_sum", pairwise_sum, METH_VARARGS,
     "np.add.reduce of a contiguous float64 vector, as this module computes it."},
    {"hold_law_sums", hold_law_sums, METH_VARARGS,
     "pacing.hold_law's bincount of the held spans by level."},
    {"rate_mva_loop", rate_mva_loop, METH_VARARGS,
     "The rate pacer's mean-value recursion: (waits, util) by N."},
    {"masked_columns", masked_columns, METH_VARARGS,
     "timing.turn_timing's launch columns, masked, as the rows of an (n, r) array."},
    {"coarsen", coarsen, METH_VARARGS,
     "window._coarsen's pmf on a lattice factor times coarser (np.add.at's sums)."},
    {"launch_groups", launch_groups, METH_VARARGS,
     "TurnTiming.groups' event numbers of the launches and the most events a row."},
    {"session_law", session_law, METH_VARARGS,
     "window._session_law_uncached's law from its timeline (None: no load)."},
    {"cross_lag", cross_lag, METH_VARARGS,
     "TurnTiming._cross_uncached's sum over one lag."},
    {"run_signatures", run_signatures, METH_VARARGS,
     "TurnTiming._runs_uncached's launch counts after each kept breakpoint."},
    {"search_sorted", search_sorted, METH_VARARGS,
     "np.searchsorted(a, v, side) of a sorted float64 a, keys nearly in order (int64)."},
    {"gamma_wh", gamma_wh, METH_VARARGS,
     "pacing._gamma_numpy's Wilson-Hilferty Gamma(k, 1) draws (numpy's cube and log1p)."},
    {"search_right", search_right, METH_VARARGS,
     "np.searchsorted(a, v, side='right') of a sorted float64 a (int64)."},
    {"storm_renewal", storm_renewal, METH_VARARGS,
     "window._storm_arrivals' renewal sum of the pauses: the starts per step."},
    {"storm_retried", storm_retried, METH_VARARGS,
     "window._retried_returns: the starts per step."},
    {"storm_walk", storm_walk, METH_VARARGS,
     "window._storm_walk_numpy: a storm chain's steps (its sums in another order)."},
    {"pgf_horner", pgf_horner, METH_VARARGS,
     "fleet._pgf's count pgf at a charge's transform by Horner's rule (numpy's products)."},
    {"pgf_truncated", pgf_truncated, METH_VARARGS,
     "fleet._compound's count pgf at a charge's transform, each point cut below eps."},
    {"pending_chain", pending_chain, METH_VARARGS,
     "bucket.BucketChain._pending's chain censored by pending count: the laws by count."},
    {"refill_combine", refill_combine, METH_VARARGS,
     "Sums of bucket._refills' matrices times x's blocks, by their geometric rows."},
    {"refills", refills, METH_VARARGS,
     "bucket._refills' matrices at each event rate: (len(lams), n, n)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "The analytic model's compiled loops.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    import_array();
    import_umath();
    return PyModule_Create(&moddef);
}
