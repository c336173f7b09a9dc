"""Build of the compiled simulator (``capacity.sim._engine``), the analytic model's
compiled loops (``capacity.analytic._kernels``) and the model layer's normal cdf
(``capacity.model._special``); everything else is in pyproject.toml.

The engine is one C file using the CPython and numpy C APIs, compiled here when the
package is built (``pip install .`` / ``pip install -e .`` / a wheel build), so nothing is
compiled or cached at run time. It needs a C compiler and numpy's headers at build time
(numpy is a build requirement in pyproject.toml); machines without a compiler install a
prebuilt wheel (see ``[tool.cibuildwheel]``).

Floating-point contraction is turned off: the engine's limiter and retry rule must give
bit-identical results to the plain-Python rules they twin (tests/test_twins.py), and a
fused multiply-add rounds once where Python rounds twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

FLAGS = {
    "unix": ["-O3", "-ffp-contract=off", "-fno-fast-math", "-fno-strict-aliasing"],
    "mingw32": ["-O3", "-ffp-contract=off", "-fno-fast-math"],
    "msvc": ["/O2", "/fp:precise"],
}


class BuildExt(build_ext):
    """Compiler-specific flags (the compiler is only known once the build starts)."""

    def build_extensions(self) -> None:
        flags = FLAGS.get(self.compiler.compiler_type, [])
        for ext in self.extensions:
            ext.extra_compile_args = [*flags, *ext.extra_compile_args]
        super().build_extensions()


ext_modules: list[Any] = [
    Extension(
        "capacity.sim._engine",
        sources=["capacity/sim/_engine.c"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    # The analytic model's scalar-bound loops (the retry carry, the rate pacer, the
    # storms' renewal sums, the turn sample's runs and laws: the list heads the file):
    # numpy's and Python's numbers, bit for bit, compiled.
    Extension(
        "capacity.analytic._kernels",
        sources=["capacity/analytic/_kernels.c"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    # The model layer's normal cdf over an array (libm's erfc, math.erfc's numbers):
    # every continuous charge's lattice law asks it four times a point.
    Extension(
        "capacity.model._special",
        sources=["capacity/model/_special.c"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
