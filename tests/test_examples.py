"""Every example script runs to completion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path) -> None:
    """The example exits 0 and prints something."""
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


def test_overlays_validate() -> None:
    """Every example overlay merges over its base profile into a valid profile."""
    from capacity import load_profile

    base = ROOT / "profiles" / "web-research.yaml"
    for overlay in sorted((ROOT / "examples" / "overlays").glob("*.yaml")):
        load_profile([base, overlay])
