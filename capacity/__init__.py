"""capacity: how many concurrent LLM-agent sessions can a provider quota carry?

The package is layered; data flows down once::

    profile/   YAML -> validated, frozen Profile (file:line:key errors), presets
    model/     distributions, quota slots + charging rules, workload view, client retry
               policy, client pacing                                   (pure Python)
    limits/    meters and the limiter: THE admit-or-429, snapshots, provider headers, clocks
    analytic/  mean-value and burst-aware ceilings (window models, bucket bounds)
    sim/       the compiled closed-loop engine (a twin of limits/ and model.retry), stats
    search     the saturation point N* by simulation
    whatif/    ceiling, size, check, compare, sweep, explain: typed results (.to_dict())
    render/    rich tables, JSON, CSV                                  (rich only here)
    cli/       parse -> load -> compute -> render                     (typer only here)

``import capacity`` is cheap: the names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from capacity._version import __version__

if TYPE_CHECKING:
    from capacity.errors import CapacityError, ProfileError
    from capacity.profile.loader import load_profile, profile_from_dict
    from capacity.profile.schema import Profile

__all__ = [
    "CapacityError",
    "Profile",
    "ProfileError",
    "__version__",
    "load_profile",
    "profile_from_dict",
]

_LAZY = {
    "CapacityError": "capacity.errors",
    "ProfileError": "capacity.errors",
    "load_profile": "capacity.profile.loader",
    "profile_from_dict": "capacity.profile.loader",
    "Profile": "capacity.profile.schema",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'capacity' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
