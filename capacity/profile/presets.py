"""Quota presets: common provider rules, so a profile need not spell them out.

A quota may say ``preset: NAME``; the preset fills in every field the quota leaves out
(field by field — anything written in the profile wins). Sources are the providers'
public documentation as summarised in ``shared/reference/provider-limits.md``; rules change,
so each preset records the date of the text it follows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    """Defaults for a quota, with where they come from."""

    name: str
    summary: str
    source: str
    as_of: str
    defaults: dict[str, Any]
    dimension_enforcement: dict[str, dict[str, Any]] = field(default_factory=dict)
    rpm_per_1000_tpm: float | None = None


PRESETS: dict[str, Preset] = {
    "azure-standard": Preset(
        name="azure-standard",
        summary="Azure OpenAI standard deployment: RPM = 6 per 1,000 TPM (older chat models), "
        "RPM checked over 10 s windows, TPM a per-minute counter charged prompt + max_tokens",
        source="Microsoft Learn, 'Manage Azure OpenAI quota' (azure-ai-docs quota.md, "
        "ms.date 11/26/2025): 'evaluates the rate of incoming requests over a small period "
        "of time, typically 1 or 10 seconds'; 'running token count ... reset each minute'",
        as_of="2025-11-26",
        defaults={"charge_max_tokens": True, "cached_input_exempt": False,
                  "rejected_count": True,
                  "enforcement": {"type": "fixed_window", "window": "10s"}},
        dimension_enforcement={"tpm": {"type": "fixed_window", "window": "60s"}},
        rpm_per_1000_tpm=6.0,
    ),
    "openai": Preset(
        name="openai",
        summary="OpenAI API: RPM quantised to per-second windows, TPM a per-minute counter "
        "charged prompt + max_tokens at admission, rejected requests count (how finely TPM "
        "is quantised is undocumented; per-second TPM windows would refuse any request "
        "larger than TPM/60 outright, which providers do not do)",
        source="OpenAI Help Center 'How can I solve 429' / 'Rate limits' guide: 'may be "
        "enforced as 1,000 requests/second'; 'unsuccessful requests contribute to your "
        "per-minute limit'",
        as_of="2026-06-24",
        defaults={"charge_max_tokens": True, "cached_input_exempt": False,
                  "rejected_count": True,
                  "enforcement": {"type": "fixed_window", "window": "1s"}},
        dimension_enforcement={"tpm": {"type": "fixed_window", "window": "60s"}},
    ),
    "anthropic": Preset(
        name="anthropic",
        summary="Anthropic API: RPM/ITPM/OTPM token buckets refilled continuously (depth: one "
        "minute), cached input not counted against ITPM, max_tokens not charged to OTPM",
        source="Anthropic 'Rate limits' (platform.claude.com/docs/en/api/rate-limits, copy of "
        "~Aug 2026): 'token bucket algorithm'; 'only uncached input tokens count'",
        as_of="2026-08",
        defaults={"charge_max_tokens": False, "cached_input_exempt": True,
                  "rejected_count": False,
                  "enforcement": {"type": "token_bucket", "burst": "60s"}},
    ),
}


def same_span_field(a: Any, b: Any) -> bool:
    """True when enforcement types ``a`` and ``b`` read the same span: both windows
    (fixed, sliding: ``window``) or both buckets (``burst``). A type changed across that
    divide keeps none of the other's fields; within it, the window's length stays."""
    return bool(a == "token_bucket") == bool(b == "token_bucket")


def apply_preset(data: dict[str, Any]) -> dict[str, Any]:
    """Expand ``preset:`` in a raw quota mapping; raises ValueError for an unknown preset."""
    name = data.get("preset")
    if name is None:
        return data
    if not isinstance(name, str) or name not in PRESETS:  # a list or mapping: unhashable
        import difflib

        close = difflib.get_close_matches(str(name), list(PRESETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown preset {name!r}{hint}; presets: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    out = {k: v for k, v in data.items() if k != "preset"}
    for key, value in preset.defaults.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            mine = out[key]
            # Field by field, the profile's fields winning; a type across the bucket /
            # window divide takes none of the preset's (a fixed window's `window` on a
            # bucket), a sliding window keeps the preset's fixed window's length.
            if "type" not in mine or same_span_field(mine["type"], value.get("type")):
                out[key] = {**value, **mine}
        else:
            out.setdefault(key, value)
    for dim, enf in preset.dimension_enforcement.items():
        lim = out.get(dim)
        if isinstance(lim, int | float) and not isinstance(lim, bool):
            out[dim] = {"limit": lim, "enforcement": enf}
        elif isinstance(lim, dict) and "enforcement" not in lim:
            out[dim] = {**lim, "enforcement": enf}
    if preset.rpm_per_1000_tpm and "rpm" not in out and "tpm" in out:
        tpm = out["tpm"]["limit"] if isinstance(out["tpm"], dict) else out["tpm"]
        if isinstance(tpm, int | float) and not isinstance(tpm, bool) and tpm > 0:
            out["rpm"] = rpm = math.floor(tpm / 1000.0 * preset.rpm_per_1000_tpm)
            _check_derived_rpm(name, preset.rpm_per_1000_tpm, tpm, rpm, out.get("enforcement"))
    return out


def _check_derived_rpm(name: str, per_1000: float, tpm: float, rpm: int,
                       enforcement: Any) -> None:
    """Refuse an rpm derived from tpm that admits nothing: 0, or less than one request per
    window. The error named ``rpm`` ("must be > 0, got 0"), a value the profile never
    wrote."""
    from capacity.model.dist import parse_duration

    window_s = 60.0
    if isinstance(enforcement, dict) and enforcement.get("type", "fixed_window") != \
            "token_bucket":
        try:
            window_s = parse_duration(enforcement.get("window", "60s"))
        except (ValueError, TypeError):
            return  # the schema names a bad window itself
    per_window = math.floor(rpm * window_s / 60.0 + 1e-9) if window_s < 60.0 else rpm
    if per_window >= 1:
        return
    need_rpm = max(1, math.ceil(60.0 / window_s - 1e-9)) if window_s < 60.0 else 1
    need = math.ceil(need_rpm * 1000.0 / per_1000 - 1e-9)
    raise ValueError(f"{name} derives rpm from tpm ({per_1000:g} RPM per 1,000 TPM): tpm "
                     f"{tpm:g} gives {rpm:,} RPM"
                     + (f", 0 per {window_s:g}s window" if rpm >= 1 else "")
                     + f"; give rpm, or a tpm of at least {need:,}")
