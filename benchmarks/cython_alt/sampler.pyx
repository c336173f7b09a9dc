# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The engine's lognormal and uniform samplers (SplitMix64 counter streams) in Cython, to
compare the two ways of compiling the engine (benchmarks/bench_cython.py)."""

from libc.math cimport cos, exp, log1p, sqrt, M_PI
from libc.stdint cimport uint64_t

import numpy as np

cdef inline uint64_t mix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)

cdef inline double unit01(uint64_t key, uint64_t i) noexcept nogil:
    return <double>(mix64(key + (i + 1) * 0x9E3779B97F4A7C15ULL) >> 11) * 1.1102230246251565e-16

def sample_lognormal(uint64_t key, Py_ssize_t n, double p0, double p1):
    out = np.empty(n)
    cdef double[::1] o = out
    cdef Py_ssize_t i
    cdef double u, z
    with nogil:
        for i in range(n):
            u = unit01(key, 2 * i)
            z = sqrt(-2.0 * log1p(-u)) * cos(2.0 * M_PI * unit01(key, 2 * i + 1))
            o[i] = p0 * exp(p1 * z)
    return out

def sample_uniform(uint64_t key, Py_ssize_t n, double p0, double p1):
    out = np.empty(n)
    cdef double[::1] o = out
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            o[i] = p0 + unit01(key, 2 * i) * (p1 - p0)
    return out
