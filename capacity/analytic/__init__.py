"""Analytic ceilings: the mean-value (napkin made exact) and burst-aware models.

Takes the workload view (:mod:`capacity.model.workload`) down to per-constraint ceilings in
milliseconds of compute; the simulator is the check where its assumptions do not hold.
"""
