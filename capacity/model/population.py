"""Session populations: how N splits among a profile's kinds of sessions.

The split itself is :meth:`capacity.profile.schema.Profile.split` (largest remainder over
the shares, fixed counts held). This module holds what the layers share about it: how
the split is described to a user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capacity.profile.schema import Profile


def describe(profile: Profile) -> str | None:
    """One line saying what N counts: ``N = sessions of session + chat (shares 75/25 %);
    batch: 40 sessions held`` (None without populations)."""
    if not profile.populations:
        return None
    from capacity.profile.schema import SESSION

    varying = [(SESSION, profile.session_share())] + [
        (k, p.share) for k, p in profile.populations.items() if p.share is not None]
    held = [(k, p.sessions) for k, p in profile.populations.items() if p.sessions is not None]
    text = "N = sessions of " + " + ".join(k for k, _ in varying)
    if len(varying) > 1:
        text += " (shares " + "/".join(f"{100 * s:.3g}" for _, s in varying) + " %)"
    if held:
        text += "; " + ", ".join(f"{k}: {n:,} session{'s' if n != 1 else ''}"
                                 for k, n in held) + " held"
    return text
