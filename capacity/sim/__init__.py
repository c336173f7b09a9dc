"""Monte Carlo: the closed-loop discrete-event engine.

``kernels`` holds every compiled (numba) function — one module, so numba's cache key
covers all of them; ``engine`` compiles a profile into arrays, runs replications and
summarises them. The kernels are twins of :mod:`capacity.limits` and
:mod:`capacity.model.retry`; ``trace`` mode records every attempt so a test can replay it
through the pure code.
"""
