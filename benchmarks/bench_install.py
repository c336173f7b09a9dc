"""A new user's install: footprint, the first run after it, warm runs, ``--version``.

Run from the repository root (needs network access to the package index, like pip)::

    python benchmarks/bench_install.py            # about 2 minutes, mostly pip

It builds a wheel of this tree, installs it with its runtime dependencies (no extras) into
a fresh virtual environment, and measures there, from an empty directory:

* the install footprint: the environment's site-packages without pip and setuptools
  (pkg_resources included), with the largest packages;
* the first ``capacity ceiling web-research`` after the install (nothing cached: the
  engine was compiled when the wheel was built; Python's own bytecode was written by pip)
  — wall time and the whole process's CPU time;
* the same command warm (median of 5), ``ceiling --method analytic`` and the start-up
  commands ``--version``, ``--help``, ``validate``, ``schema`` (median of 5 each; they
  import no numpy).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _run(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="capacity-bench-install-"))
    try:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--disable-pip-version-check", "-w", str(work / "dist"), str(ROOT)],
                       check=True)
        build_s = time.perf_counter() - t
        wheel = next((work / "dist").glob("*.whl"))
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
        py = work / "venv" / "bin" / "python"
        t = time.perf_counter()
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        str(wheel)], check=True)
        install_s = time.perf_counter() - t
        site = next((work / "venv" / "lib").glob("python*/site-packages"))
        sizes: dict[str, int] = {}
        for entry in site.iterdir():
            name = entry.name.split("-")[0].split(".")[0].lower()
            if name in ("pip", "setuptools", "pkg_resources", "_distutils_hack", "distutils",
                        "__pycache__"):  # the venv's own installers, not ours
                continue
            sizes[name] = sizes.get(name, 0) + (_du(entry) if entry.is_dir()
                                                else entry.stat().st_size)
        total = sum(sizes.values())
        empty = work / "empty"
        empty.mkdir()
        exe = str(work / "venv" / "bin" / "capacity")
        cold = _run([exe, "ceiling", "web-research", "--seed", "1", "-q"], empty)
        warm = [_run([exe, "ceiling", "web-research", "--seed", "1", "-q"], empty)
                for _ in range(5)]
        _run([exe, "init", "web-research", "wr.yaml"], empty)  # a profile file to validate
        others = {label: [_run([exe, *args], empty) for _ in range(5)] for label, args in (
            ("`capacity ceiling web-research --method analytic`",
             ["ceiling", "web-research", "--method", "analytic"]),
            ("`capacity --version`", ["--version"]),
            ("`capacity --help`", ["--help"]),
            ("`capacity validate wr.yaml`", ["validate", "wr.yaml"]),
            ("`capacity schema`", ["schema"]))}
        load = os.getloadavg()[0]
        print(f"# Install benchmark ({os.cpu_count()} CPUs, load average {load:.1f}; "
              f"wheel {wheel.name})")
        print(f"wheel build (compiles the engine): {build_s:.1f} s; pip install with "
              f"dependencies: {install_s:.1f} s")
        print(f"runtime footprint (site-packages without pip/setuptools): "
              f"{total / 1e6:.0f} MB")
        for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:8]:
            print(f"  {name:<24} {size / 1e6:7.1f} MB")
        print(f"first `capacity ceiling web-research` after install: {cold[0]:.2f} s wall, "
              f"{cold[1]:.2f} s CPU")
        print(f"warm, median of 5: {statistics.median(w for w, _ in warm):.2f} s wall, "
              f"{statistics.median(c for _, c in warm):.2f} s CPU")
        for label, runs in others.items():
            print(f"{label}, median of 5: {statistics.median(w for w, _ in runs):.3f} s wall, "
                  f"{statistics.median(c for _, c in runs):.3f} s CPU")
        print(f"scipy installed: {'scipy' in sizes}; load average {os.getloadavg()[0]:.1f} at "
              "the end")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
