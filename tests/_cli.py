"""The CLI's text output, for tests that check what a report says."""

from __future__ import annotations

from pathlib import Path


def analytic_text(path: Path) -> str:
    """``capacity ceiling PATH --method analytic``'s output with its whitespace folded
    (rich wraps lines at the terminal width); asserts the command succeeded."""
    from typer.testing import CliRunner

    from capacity.cli.app import app

    out = CliRunner().invoke(app, ["ceiling", str(path), "--method", "analytic"])
    assert out.exit_code == 0, out.output
    return " ".join(out.output.split())
