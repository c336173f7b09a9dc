"""The workload model shared by every engine, in plain Python (numpy, no numba/scipy).

``dist`` (distributions with their moments), ``quota`` (slots and THE charging rule),
``workload`` (the analytic view of a profile's turns), ``retry`` (THE client retry policy)
and ``pacing`` (THE client-side pacer). The simulator's kernels, the mock server and the
load generator all follow these definitions; the simulator's compiled twins are proven
equal by the trace-replay test. One loop is compiled here too (``_special.c``: the normal
cdf of an array, libm's erfc as ``math.erfc`` gives it, with that plain fallback).
"""
