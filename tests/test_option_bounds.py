"""Options of the measuring commands that would take the machine's memory or make a
measurement meaningless are refused up front: one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from capacity.serve.app import ServeOptions

from .conftest import ROOT

WEB = str(ROOT / "profiles" / "web-research.yaml")


@pytest.mark.parametrize(("args", "needle"), [
    (["serve", WEB, "--time-scale", "1e308"], "--time-scale"),
    (["serve", WEB, "--time-scale", "1e-308"], "--time-scale"),
    (["serve", WEB, "--tool-calls", "100000000000"], "--tool-calls"),
    (["loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "5",
      "--time-scale", "1e308"], "--time-scale"),
    (["loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "100000000"],
     "--sessions '100000000': at most 100,000"),
])
def test_out_of_bounds_options_are_one_line_exit_2(args: list[str], needle: str) -> None:
    res = subprocess.run([sys.executable, "-m", "capacity", *args], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]


@pytest.mark.parametrize("fields", [{"time_scale": 1e308}, {"time_scale": 0.0},
                                    {"tool_calls": 10**11}, {"tool_calls": 0}])
def test_the_library_refuses_them_too(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ServeOptions(**fields)  # type: ignore[arg-type]
