"""Build the Cython comparison module in place: python setup_cython.py build_ext --inplace"""

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize([Extension(
    "sampler", ["sampler.pyx"], include_dirs=[np.get_include()],
    extra_compile_args=["-O2", "-ffp-contract=off"])], quiet=True))
