"""Type stub of the model layer's compiled normal cdf (``_special.c``)."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

def ndtr(z: Any) -> NDArray[np.float64]: ...
