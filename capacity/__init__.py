"""capacity: how many concurrent LLM-agent sessions can a provider quota carry?"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("capacity")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .errors import CapacityError, ProfileError
from .loader import load_profile, profile_from_dict
from .profile import Profile

__all__ = [
    "CapacityError",
    "Profile",
    "ProfileError",
    "__version__",
    "load_profile",
    "profile_from_dict",
]
