"""Monte Carlo: the closed-loop discrete-event engine.

``_engine`` is the compiled event loop (C, built with the package: ``_engine.c``);
``kernels`` holds the array layout it shares with Python and the small numpy helpers;
``engine`` compiles a profile into arrays, runs replications and summarises them. The
compiled rules are twins of :mod:`capacity.limits` and :mod:`capacity.model.retry`;
``trace`` mode records every attempt so :mod:`capacity.sim.twins` can replay it through
the pure code.
"""
