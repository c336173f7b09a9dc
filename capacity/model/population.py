"""Session populations: how N splits among a profile's kinds of sessions.

The split itself is :meth:`capacity.profile.schema.Profile.split` (largest remainder over
the shares, fixed counts held). This module holds what the layers share about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.errors import CapacityError

if TYPE_CHECKING:
    from capacity.profile.schema import Profile


def require_one_population(profile: Profile, what: str) -> None:
    """Refuse a profile with ``populations`` in a layer that does not model them yet (one
    clear line rather than a silently wrong answer)."""
    if profile.populations:
        raise CapacityError(f"{what} does not support 'populations' yet (profile "
                            f"{profile.title!r} declares {', '.join(profile.populations)})")
