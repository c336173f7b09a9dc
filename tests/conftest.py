"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "profiles").glob("*.yaml"))


@pytest.fixture(name="root")
def _root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(name="web_research")
def _web_research() -> Path:
    """The founding story's profile."""
    return ROOT / "profiles" / "web-research.yaml"
