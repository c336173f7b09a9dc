/* The model layer's one compiled loop: the standard normal cdf of an array.
 *
 * ndtr(z) = 0.5 * erfc((-z) / sqrt(2)), element by element with the C library's erfc —
 * the function Python's math.erfc calls — in the order capacity.model.dist._ndtr's
 * fallback computes it (negate, divide by the double sqrt(2), erfc, halve), so the
 * numbers are the same bit for bit (setup.py turns fused multiply-adds off). The
 * fallback maps math.erfc over a Python list: ~150 ns a point against ~15 ns here, on
 * the lattice laws of every lognormal and uniform charge (4 calls a lattice point).
 *
 * tests/test_dist_special.py checks it against the fallback and scipy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <numpy/arrayobject.h>

static PyObject *ndtr(PyObject *self, PyObject *args) {
    PyObject *arg;
    if (!PyArg_ParseTuple(args, "O", &arg)) return NULL;
    PyArrayObject *z = (PyArrayObject *)PyArray_FROMANY(
        arg, NPY_FLOAT64, 0, 0, NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED);
    if (z == NULL) return NULL;
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(
        PyArray_NDIM(z), PyArray_DIMS(z), NPY_FLOAT64);
    if (out == NULL) {
        Py_DECREF(z);
        return NULL;
    }
    const double *zi = (const double *)PyArray_DATA(z);
    double *o = (double *)PyArray_DATA(out);
    const double root2 = sqrt(2.0);
    npy_intp n = PyArray_SIZE(z);
    Py_BEGIN_ALLOW_THREADS
    for (npy_intp i = 0; i < n; i++) {
        double x = (-zi[i]) / root2;
        o[i] = 0.5 * erfc(x);
    }
    Py_END_ALLOW_THREADS
    Py_DECREF(z);
    return (PyObject *)out;
}

static PyMethodDef methods[] = {
    {"ndtr", ndtr, METH_VARARGS,
     "ndtr(z) -> Φ(z) as a float64 array of z's shape (0.5·erfc(−z/√2), libm's erfc)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_special",
                                    "The model layer's compiled normal cdf.", -1, methods};

PyMODINIT_FUNC PyInit__special(void) {
    import_array();
    return PyModule_Create(&moddef);
}
