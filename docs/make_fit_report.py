"""Regenerate docs/fit-report.png, the README's picture of `capacity fit --report`.

Writes the request log an unthrottled tool-agent would log (profiles/tool-agent.yaml,
100 sessions x 40 turns, seed 2026), then runs the command the README shows:

    python docs/make_fit_report.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from capacity import load_profile
from capacity.fit.jsonl import RequestLogWriter
from capacity.fit.synth import synth_log

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "calls.jsonl"
        with RequestLogWriter(log) as w:
            for rec in synth_log(load_profile(ROOT / "profiles" / "tool-agent.yaml"), 100, 40,
                                 np.random.default_rng(2026)):
                w.write(rec)
        subprocess.run([sys.executable, "-m", "capacity", "fit", str(log),
                        "--quota-from", str(ROOT / "profiles" / "tool-agent.yaml"),
                        "--name", "tool-agent-fitted", "-o", str(Path(tmp) / "fitted.yaml"),
                        "--report", str(ROOT / "docs" / "fit-report.png")], check=True)


if __name__ == "__main__":
    main()
