"""Regenerate docs/saturation.png, the README's picture of `capacity sweep --plot`.

Runs exactly the command the README shows next to the picture (web-research, N from 10
to 100, simulated with seed 1):

    python docs/make_saturation_plot.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["sweep", "profiles/web-research.yaml", "--sessions", "10:100:10", "--seed", "1",
           "--plot", "docs/saturation.png", "--quiet"]


def main() -> None:
    """Draw the picture with the CLI itself (so it shows what a user gets)."""
    subprocess.run([sys.executable, "-m", "capacity", *COMMAND], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    print("wrote", ROOT / "docs" / "saturation.png")


if __name__ == "__main__":
    main()
