"""A limiter decision rendered as each provider's rate-limit headers.

* ``openai``: ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` — resets as Go
  durations (``1s``, ``6m0s``, ``12ms``) — and on a 429 ``retry-after`` (whole seconds,
  rounded up) and ``retry-after-ms`` (what openai-python reads first).
* ``azure``: on 200s only ``x-ratelimit-remaining-{requests,tokens}`` (what standard
  deployments send); on 429s ``retry-after``, ``retry-after-ms`` and
  ``x-ratelimit-reset-{requests,tokens}``.
* ``anthropic``: ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
  {limit,remaining,reset}`` with RFC 3339 resets (the instant the limit is fully
  replenished) and ``retry-after`` in seconds on a 429 (plus ``retry-after-ms`` under
  time compression, which the anthropic SDK reads first). Token ``remaining`` values are
  rounded to the nearest thousand, as Anthropic documents (provider-limits.md §3);
  ``requests-remaining`` is exact.

Which slot a header reports: providers print one figure per dimension family; where a
request touches several slots of a family (two quotas, or rpm and rpd) the header shows the
*tightest* one (fewest remaining). ``limit`` is the quota as written (per minute or per
day); ``remaining`` is what the enforcement would admit right now; ``reset`` the time until
it is back to its full allowance. Durations are wall time: model seconds / ``time_scale``.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Literal

from capacity.limits.limiter import Decision, SlotSnapshot

Dialect = Literal["openai", "azure", "anthropic"]
DIALECTS: tuple[Dialect, ...] = ("openai", "azure", "anthropic")

# Dimension -> header family.
_OPENAI_FAMILY = {"rpm": "requests", "rpd": "requests", "tpm": "tokens", "tpd": "tokens",
                  "itpm": "tokens", "otpm": "tokens"}
_ANTHROPIC_FAMILY = {"rpm": "requests", "rpd": "requests", "tpm": "tokens", "tpd": "tokens",
                     "itpm": "input-tokens", "otpm": "output-tokens"}
# Anthropic's tokens-* show "the most restrictive limit currently in effect"
# (provider-limits.md §3): of every token limit, input and output ones included.
_ANTHROPIC_TOKENS = {"tpm": "tokens", "tpd": "tokens", "itpm": "tokens", "otpm": "tokens"}


def go_duration(seconds: float) -> str:
    """A duration as Go prints it (``6m0s``, ``1.5s``, ``12ms``), as OpenAI's reset headers."""
    if not math.isfinite(seconds):
        return "0s"
    ms = max(0, math.ceil(seconds * 1000.0 - 1e-6))
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s = rem / 1000.0
    sec = f"{s:.3f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{sec}"
    if m:
        return f"{m}m{sec}"
    return sec


def rfc3339(epoch_s: float) -> str:
    """An instant as RFC 3339 UTC with a ``Z`` (``2025-08-21T12:40:59Z``)."""
    return datetime.fromtimestamp(math.ceil(epoch_s), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tightest(snaps: tuple[SlotSnapshot, ...], family: dict[str, str]
              ) -> dict[str, SlotSnapshot]:
    out: dict[str, SlotSnapshot] = {}
    for s in snaps:
        fam = family.get(s.dimension)
        if fam is None:
            continue
        cur = out.get(fam)
        if cur is None or s.remaining < cur.remaining:
            out[fam] = s
    return out


def _int(x: float) -> str:
    return str(int(max(0.0, math.floor(x + 1e-9))))


def _thousands(x: float) -> str:
    """A token count rounded to the nearest thousand (halves up), as Anthropic's token
    ``remaining`` headers print it: 7600 -> 8000, 7499 -> 7000, 400 -> 0."""
    return str(1000 * int(max(0.0, math.floor(x + 1e-9)) / 1000.0 + 0.5))


def render_headers(decision: Decision, dialect: Dialect, *, time_scale: float = 1.0,
                   now_epoch_s: float | None = None) -> dict[str, str]:
    """The headers a provider of ``dialect`` sends with this decision.

    Parameters
    ----------
    decision : from :meth:`capacity.limits.Limiter.admit`.
    dialect : ``openai``, ``azure`` or ``anthropic``.
    time_scale : model seconds per wall second (durations are divided by it).
    now_epoch_s : the wall clock for Anthropic's RFC 3339 resets (default: now).
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown header dialect {dialect!r}; one of {', '.join(DIALECTS)}")
    h: dict[str, str] = {}
    k = float(time_scale)
    if not decision.admitted and math.isfinite(decision.retry_after_s):
        wait = decision.retry_after_s / k
        h["retry-after"] = str(max(1, math.ceil(wait - 1e-9)))
        # Anthropic sends whole seconds only; under time compression that would stretch
        # a client's wait by up to K model seconds, so the mock adds the millisecond form
        # (which the anthropic SDK reads first) whenever time_scale != 1.
        if dialect != "anthropic" or k != 1.0:
            h["retry-after-ms"] = str(max(1, math.ceil(wait * 1000.0 - 1e-6)))
    if dialect == "anthropic":
        now = time.time() if now_epoch_s is None else now_epoch_s
        fams = {**_tightest(decision.snapshots, _ANTHROPIC_FAMILY),
                **_tightest(decision.snapshots, _ANTHROPIC_TOKENS)}
        for fam, s in fams.items():
            p = f"anthropic-ratelimit-{fam}"
            h[f"{p}-limit"] = _int(s.limit)
            h[f"{p}-remaining"] = (_int(s.remaining) if fam == "requests"
                                   else _thousands(s.remaining))
            h[f"{p}-reset"] = rfc3339(now + s.reset_s / k)
        return h
    for fam, s in _tightest(decision.snapshots, _OPENAI_FAMILY).items():
        if dialect == "openai":
            h[f"x-ratelimit-limit-{fam}"] = _int(s.limit)
        h[f"x-ratelimit-remaining-{fam}"] = _int(s.remaining)
        if dialect == "openai" or not decision.admitted:
            h[f"x-ratelimit-reset-{fam}"] = go_duration(s.reset_s / k)
    return h
