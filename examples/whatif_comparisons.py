"""Scripted what-if comparisons: which change buys the most sessions?

Each variant is the shipped profile plus an overlay file and/or ``--set``-style overrides.
Run: python examples/whatif_comparisons.py
"""

from __future__ import annotations

from pathlib import Path

from capacity import load_profile
from capacity.whatif.ceiling import compare

HERE = Path(__file__).resolve().parent
PROFILES = HERE.parent / "profiles"


def research_variants() -> list[tuple[str, object]]:
    """Variants of the founding research agent."""
    base = PROFILES / "web-research.yaml"
    return [
        ("baseline", load_profile(base)),
        ("second deployment", load_profile([base, HERE / "overlays" / "second-deployment.yaml"])),
        ("classifier on mini", load_profile(
            [base, HERE / "overlays" / "small-classifier.yaml"],
            ["session.turns.research.steps.2.call.model=gpt-4o-mini"])),
        ("token bucket", load_profile(
            base, ["quotas.deployment.enforcement={type: token_bucket}"])),
    ]


def tool_agent_variants() -> list[tuple[str, object]]:
    """Variants of the TPM-bound tool-calling agent."""
    base = PROFILES / "tool-agent.yaml"
    return [
        ("baseline", load_profile(base)),
        ("answer max_tokens 800", load_profile(
            base, ["session.turns.task.steps.2.call.max_tokens=800"])),
    ]


def chat_variants() -> list[tuple[str, object]]:
    """Prompt caching on the Anthropic-style chat assistant."""
    base = PROFILES / "chat-assistant.yaml"
    return [
        ("75% cached", load_profile(base)),
        ("no caching", load_profile(
            base, ["session.turns.message.steps.0.call.cached_input_fraction=0"])),
    ]


def main() -> None:
    """Print each comparison as rows: variant, ceilings, binding constraint, change."""
    for title, variants in (("research agent", research_variants()),
                            ("tool agent", tool_agent_variants()),
                            ("chat assistant", chat_variants())):
        result = compare(variants)  # type: ignore[arg-type]
        print(f"== {title}")
        for row in result.rows():
            change = "" if row["name"] == result.names[0] else (
                f"  ({row['change_sessions']:+d} sessions)")
            binding = row["binding_constraint"]
            print(f"  {row['name']:<24} mean {row['mean_ceiling']:8.1f}  "
                  f"burst-aware {row['burst_ceiling']:5d}  binds "
                  f"{binding['quota']}.{binding['dimension']}{change}")


if __name__ == "__main__":
    main()
