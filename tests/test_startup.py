"""Start-up stays lean: what each kind of command imports (speed itself is measured in
benchmarks/, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT


def _modules_after(*args: str) -> set[str]:
    """Top-level modules loaded by running the CLI with ``args`` in a fresh interpreter."""
    code = ("import sys, json, atexit\n"
            "atexit.register(lambda: sys.__stderr__.write(\n"
            "    '\\n@@' + json.dumps(sorted(sys.modules))))\n"
            f"sys.argv = ['capacity', *{list(args)!r}]\n"
            "from capacity.cli.entry import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    return set(json.loads(out.stderr.rpartition("@@")[2]))


def test_version_loads_nothing_but_the_version() -> None:
    """``capacity --version`` prints the CLI's line without importing the CLI or numpy."""
    out = subprocess.run([sys.executable, "-m", "capacity", "--version"], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    assert out.stdout.startswith("capacity ")
    mods = _modules_after("--version")
    assert not {m.split(".")[0] for m in mods} & {"numpy", "scipy", "typer", "rich"}
    assert "capacity.cli.app" not in mods


SHIPPED = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "profiles").glob("*.yaml"))


@pytest.mark.parametrize("args", [
    ["--help"],
    ["ceiling", "--help"],
    ["validate", *SHIPPED],
    ["validate", "--merge", "profiles/web-research.yaml",
     "examples/overlays/second-deployment.yaml"],
    ["validate", "profiles/no-such-file.yaml"],
    ["schema"],
    ["schema", "--overlay"],
], ids=["help", "ceiling-help", "validate", "validate-merge", "validate-missing", "schema",
        "schema-overlay"])
def test_commands_that_compute_nothing_load_no_numpy(args: list[str]) -> None:
    """--help, validate and schema answer without numpy or scipy (pydantic parses the
    profile; the distributions' parsing, bounds and means are plain Python)."""
    mods = _modules_after(*args)
    assert "capacity.cli.app" in mods  # the CLI itself ran
    if args[0] == "validate" and "no-such" not in args[-1]:
        assert "capacity.profile.loader" in mods and "capacity.model.workload" in mods
    assert not {m.split(".")[0] for m in mods} & {"numpy", "scipy"}


def test_help_loads_no_profile_models() -> None:
    """``capacity --help`` lists the commands without building the profile's pydantic
    models (nor importing pydantic): they load with the first profile."""
    mods = _modules_after("--help")
    assert "capacity.cli.app" in mods
    assert "capacity.profile.schema" not in mods
    assert not {m for m in mods if m.split(".")[0] in ("pydantic", "pydantic_core")}


@pytest.mark.parametrize("args", [["ceiling", "profiles/web-research.yaml", "--method",
                                   "analytic", "-q"]])
def test_analytic_ceiling_loads_no_simulator(args: list[str]) -> None:
    """The analytic method never imports the simulator (nor scipy)."""
    mods = _modules_after(*args)
    assert "capacity.analytic.model" in mods
    assert not {m for m in mods if m.startswith("capacity.sim")}
    assert not {m for m in mods if m.split(".")[0] == "scipy"}


def test_a_simulated_ceiling_loads_no_scipy() -> None:
    """Simulating needs no scipy at all (it is no runtime dependency): the confidence
    intervals' t quantiles and the analytic model's root finding are the package's own."""
    mods = _modules_after("ceiling", "profiles/web-research.yaml", "-q")
    assert "capacity.sim._engine" in mods
    assert not {m for m in mods if m.split(".")[0] == "scipy"}


def test_a_run_builds_only_the_command_it_invokes(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() hands typer an app holding only the invoked command (building every
    command's click object is most of typer's cost); --help, root options, unknown names
    (their suggestions) and shell completion get the whole app."""
    from capacity.cli.app import _app_for, app

    one = _app_for(["ceiling", "web-research"])
    assert [c.callback.__name__ for c in one.registered_commands
            if c.callback is not None] == ["ceiling"]
    assert one.registered_callback is app.registered_callback
    assert [c.name for c in _app_for(["explain", "x"]).registered_commands] == ["explain"]
    for argv in ([], ["--help"], ["--version"], ["ceilin", "x"]):
        assert _app_for(argv) is app
    monkeypatch.setenv("_CAPACITY_COMPLETE", "complete_bash")
    assert _app_for(["ceiling"]) is app
    assert len(app.registered_commands) > 10  # untouched


def test_an_unknown_command_still_gets_suggestions() -> None:
    """A misspelt command is answered by the whole app: one line with suggestions."""
    out = subprocess.run([sys.executable, "-m", "capacity", "ceilin", "web-research"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    # (the wording of the suggestion depends on the click version)
    assert "'ceilin'" in out.stderr and "'ceiling'" in out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_the_collector_runs_while_a_command_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point pauses the cyclic collector only while the CLI is imported: a
    command (a long `serve` or `loadtest` too) runs with it enabled, the start-up objects
    frozen out of its passes."""
    import gc

    import capacity.cli.app
    from capacity.cli import entry

    seen: list[tuple[bool, int]] = []
    monkeypatch.setattr(capacity.cli.app, "main",
                        lambda: seen.append((gc.isenabled(), gc.get_freeze_count())))
    monkeypatch.setattr(sys, "argv", ["capacity", "profiles"])
    try:
        entry.main()
    finally:
        gc.unfreeze()
    assert gc.isenabled()
    assert len(seen) == 1 and seen[0][0] and seen[0][1] > 0


@pytest.mark.parametrize("given, expected", [
    ({}, "1"),
    ({"OMP_NUM_THREADS": "3"}, None),
    ({"OPENBLAS_NUM_THREADS": "2"}, "2"),
], ids=["unset", "omp-set", "openblas-set"])
def test_one_blas_thread_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch,
                                               given: dict[str, str],
                                               expected: str | None) -> None:
    """The entry point asks numpy's OpenBLAS for one thread (its idle threads spin,
    costing CPU every command), unless the user set a thread count of their own."""
    import gc
    import os

    import capacity.cli.app
    from capacity.cli import entry

    for var in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.setenv(var, "")  # recorded, so the entry point's setting is undone
        monkeypatch.delenv(var)
    for var, value in given.items():
        monkeypatch.setenv(var, value)
    seen: list[str | None] = []
    monkeypatch.setattr(capacity.cli.app, "main",
                        lambda: seen.append(os.environ.get("OPENBLAS_NUM_THREADS")))
    monkeypatch.setattr(sys, "argv", ["capacity", "profiles"])
    try:
        entry.main()
    finally:
        gc.unfreeze()
    assert seen == [expected]
