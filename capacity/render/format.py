"""One number format per quantity, and text that is safe to show on a terminal.

Every table and sentence formats a quantity with the same function, so the same number
never reads ``5.1e-06`` in one place and ``0.3%`` in another:

* fractions of calls or attempts (429s, failures, windows over the allowance) — :func:`pct`:
  ``0%``, ``<0.01%``, ``0.35%``, ``3.9%``, ``14%``;
* utilisation — :func:`util`: whole percent;
* sessions and limits — :func:`count`: integers with thousands separators;
* durations in seconds — :func:`secs`: one decimal, ``98.6s``;
* how far one figure is below another — :func:`fewer`: a whole percent, ``44% fewer``.

User-supplied text (profile, quota, turn and scenario names, file names) is passed through
:func:`safe` before it reaches a terminal: control characters (ANSI escapes, newlines) are
shown as escapes, never interpreted.
"""

from __future__ import annotations

import math
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


_ascii_only = False


def use_ascii(on: bool) -> None:
    """Write ASCII look-alikes of our glyphs (≤ → <=) in everything :func:`safe` passes,
    before tables are laid out, so columns stay aligned on a terminal that cannot show
    them."""
    global _ascii_only
    _ascii_only = on


def safe(text: object) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``): one line,
    nothing a terminal would interpret. Rich markup is not escaped here: render user text
    as :class:`rich.text.Text` (or through :func:`rich.markup.escape`)."""
    s = str(text)
    if _CONTROL.search(s):
        s = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), s)
    if _ascii_only and not s.isascii():
        s = s.translate(_ASCII_TABLE)
    return s


def pct(x: float | None) -> str:
    """A fraction of calls or attempts as a percentage with sensible precision."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0%"
    if x < 0.0001:
        return "<0.01%"
    if x < 0.01:
        return f"{x:.2%}"
    if x < 0.1:
        return f"{x:.1%}"
    return f"{x:.0%}"


def util(x: float | None) -> str:
    """Utilisation of a quota: whole percent."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.0%}"


def count(x: float | None) -> str:
    """Sessions, limits and other counts: integers with separators (``∞``/``—`` if none)."""
    if x is None:
        return "—"
    if isinstance(x, float) and not math.isfinite(x):
        return "∞"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.1f}"


def num(x: float | None, digits: int = 1) -> str:
    """A non-count quantity (per-turn means, rates) with fixed decimals."""
    if x is None:
        return "—"
    if isinstance(x, float) and not math.isfinite(x):
        return "∞"
    return f"{x:,.{digits}f}"


def secs(x: float | None) -> str:
    """A duration in seconds, one decimal."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "∞" if x is not None else "—"
    return f"{x:.1f}s"


def fewer(value: float, reference: float) -> str:
    """How far ``value`` lies below ``reference``, as a whole percent of the reference."""
    if reference <= 0 or not math.isfinite(reference):
        return ""
    frac = 1 - value / reference
    if frac <= 0:
        return "no fewer"
    if frac < 0.005:
        return "<1% fewer"
    return f"{frac:.0%} fewer"


# Glyphs this package prints, and what they become on a terminal that cannot show them
# (PYTHONIOENCODING=ascii, a latin-1 locale). Rich already draws ASCII table borders there.
ASCII_GLYPHS: dict[str, str] = {
    "◀": "<", "✗": "x", "×": "x", "–": "-", "—": "-", "≤": "<=", "≥": ">=", "∞": "inf",
    "±": "+/-", "…": "...", "÷": "/", "⌊": "floor(", "⌋": ")", "·": "*", "→": "->",
    "‘": "'", "’": "'", "“": '"', "”": '"', "θ": "theta", "λ": "lambda", "ρ": "rho",
    "•": "*", "⠋": "-", "━": "-", "│": "|", "─": "-",
}


_ASCII_TABLE = str.maketrans(ASCII_GLYPHS)


def latency_binds(r: object) -> bool:
    """Whether the p95 turn-latency target, not a quota, stops the next session: the
    analytic answer's unreachable (or pacer-held) target, or the simulated search's
    N* + 1 missing only it."""
    return bool(getattr(r, "latency_limits", False))  # CeilingResult.latency_limits


def ascii_fallback(err: UnicodeError) -> tuple[str, int]:
    """A codec error handler: known glyphs become ASCII look-alikes, the rest ``?``."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    chunk = err.object[err.start:err.end]
    return "".join(ASCII_GLYPHS.get(ch, "?") for ch in chunk), err.end
