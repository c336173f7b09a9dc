"""The published JSON Schema of the profile format (``capacity schema``), for editors
(``# yaml-language-server: $schema=...``) and validators.

Built from the pydantic models of :mod:`capacity.profile.schema`, then completed here:

* ``$schema`` (draft 2020-12) and ``$id``;
* a description on every property (the models describe their own fields; the forms of a
  distribution and the shorthand forms of a limit are described from :data:`DESCRIBE`);
* duration strings matched by the pattern of the parser itself
  (:data:`capacity.model.dist.DURATION_PATTERN`), so the schema accepts exactly what the CLI
  accepts (``2.5 m``, ``1e2s``);
* an ``overlay`` variant with nothing required: an overlay states only what it changes.
"""

from __future__ import annotations

import copy
from typing import Any

from capacity._version import DISTRIBUTION, __version__
from capacity.model.dist import DURATION_PATTERN, DURATION_UNITS

DRAFT = "https://json-schema.org/draft/2020-12/schema"

ROOT_DESCRIPTION = (
    "A capacity profile: one agent workload against one provider account — models "
    "(latency), quotas (limits and how they are enforced), session (turn mix and pacing), "
    "retry (the client's 429 policy), targets. Overlays are merged over a base profile.")

# Descriptions of properties whose schema has none of its own, by property name.
DESCRIBE: dict[str, str] = {
    "description": "One line saying what this profile models (shown by `capacity profiles`).",
    "models": "Latency of each model, by the name calls use.",
    "quotas": "Named provider limits, each over one or more models.",
    "session": "How a session paces its turns and which turns it runs.",
    "retry": "The client's policy on a 429 (defaults: openai-python ≤ 2.51's rule).",
    "pacing": "Optional client-side pacing: calls wait instead of being sent into a 429.",
    "targets": "What counts as carrying the load: 429 fraction and optional p95 latency.",
    "call": "One LLM call.",
    "parallel": "Copies of a call (or steps) launched together (a fan-out).",
    "optional": "A call (or steps) run with a probability.",
    "repeat": "A call (or steps) repeated in sequence (a tool loop).",
    "enforcement": "How the provider enforces the limit: fixed window, sliding window or "
                   "token bucket.",
    "type": "fixed_window, sliding_window or token_bucket.",
    "rpm": "Requests per minute.",
    "tpm": "Tokens (input + output) per minute.",
    "itpm": "Input tokens per minute.",
    "otpm": "Output tokens per minute.",
    "rpd": "Requests per day.",
    "tpd": "Tokens per day.",
    "limit": "The limit, in units per minute (per day for rpd/tpd).",
    "max_retries": "Retries after the first attempt before the call fails.",
    "honour_retry_after": "Wait the provider's retry-after when it sends one.",
    "uniform": "Uniform between [low, high] (inclusive integers for counts).",
    "exponential": "Exponential with this mean.",
    "lognormal": "Lognormal given its median and 95th percentile.",
    "median": "The median.",
    "p95": "The 95th percentile.",
    "choice": "One of the values, with optional weights.",
    "values": "The values to choose from.",
    "weights": "Relative weights of the values (default: equal).",
}


def _complete(node: Any, pattern: str) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "description" not in sub and name in DESCRIBE:
                    sub["description"] = DESCRIBE[name]
        if node.get("type") == "string" and DURATION_UNITS in str(node.get("pattern", "")):
            node["pattern"] = pattern
        for value in node.values():
            _complete(value, pattern)
    elif isinstance(node, list):
        for value in node:
            _complete(value, pattern)


def _drop_required(node: Any) -> None:
    """Make every object of the profile optional (pydantic models carry a ``title``);
    the one-key forms of a distribution keep their key, which is what they are."""
    if isinstance(node, dict):
        if "title" in node and "properties" in node:
            node.pop("required", None)
        for value in node.values():
            _drop_required(value)
    elif isinstance(node, list):
        for value in node:
            _drop_required(value)


def profile_json_schema(*, overlay: bool = False) -> dict[str, Any]:
    """The JSON Schema of a profile (or, with ``overlay``, of an overlay: nothing
    required)."""
    from capacity.profile.schema import Profile

    body = copy.deepcopy(Profile.model_json_schema())
    # The parser's own rule; Python and ECMA-262 agree on every construct it uses.
    _complete(body, DURATION_PATTERN)
    kind = "overlay" if overlay else "profile"
    body["description"] = ROOT_DESCRIPTION if not overlay else (
        "An overlay: any part of a capacity profile, merged over a base profile "
        "(nothing is required).")
    body["title"] = f"capacity {kind}"
    if overlay:
        _drop_required(body)
    return {"$schema": DRAFT, "$id": f"urn:{DISTRIBUTION}:{kind}:{__version__}", **body}
