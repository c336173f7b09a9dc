"""Tried as a new user would: install, shipped profiles, output that shows the answer.

Each test is one item of issue 8 (or the rendering families of issue 9): what a user
types, and what they must see.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from capacity._version import __version__
from capacity.cli.app import app

from .conftest import PROFILES, ROOT

runner = CliRunner()
OVERLAYS = sorted((ROOT / "examples" / "overlays").glob("*.yaml"))
FAST = ("--replications", "4", "--horizon", "15m", "--seed", "1", "-q")


def _ok(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return result


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a fresh interpreter (terminal width, encoding);
    each distinct run once per session (several tests read the same output)."""
    return _cli_once(args, tuple(sorted((env or {}).items())))


@functools.cache
def _cli_once(args: tuple[str, ...],
              env: tuple[tuple[str, str], ...]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "80", **dict(env)}
    full.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "capacity", *args], capture_output=True,
                          text=True, cwd=ROOT, env=full, encoding="utf-8", errors="strict")


# -- 1, 2: installs ---------------------------------------------------------------------


class TestPackaging:
    def test_distribution_name_is_free_of_the_unrelated_capacity(self) -> None:
        """The distribution is llm-capacity; the import package and command stay capacity."""
        from importlib.metadata import version

        meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert meta["project"]["name"] == "llm-capacity"
        assert version("llm-capacity") == __version__
        assert meta["project"]["scripts"]["capacity"].startswith("capacity.cli.")

    def test_no_message_or_readme_line_names_the_wrong_distribution(self) -> None:
        """`pip install 'capacity[...]'` would install an unrelated package: never say it."""
        files = [ROOT / "README.md", *ROOT.glob("capacity/**/*.py")]
        bad = [f"{f.relative_to(ROOT)}:{i}" for f in files
               for i, line in enumerate(f.read_text().splitlines(), 1)
               if re.search(r"install[^\n]*['\"]capacity\[", line)
               or re.search(r"pip install capacity\b", line)]
        assert bad == []

    def test_plot_hint_names_the_distribution(self, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
        """The hint a user copies installs this project's plot extra."""
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        result = runner.invoke(app, ["sweep", "web-research", "--sessions", "10,20",
                                     "--method", "analytic", "--plot",
                                     str(tmp_path / "c.png")])
        assert result.exit_code == 2
        assert "pip install 'llm-capacity[plot]'" in result.stderr

    def test_no_private_typer_import(self) -> None:
        """typer._click exists only in typer >= 0.26: importing it breaks the declared floor."""
        hits = [str(f.relative_to(ROOT)) for f in ROOT.glob("capacity/**/*.py")
                if "typer._click" in f.read_text()]
        assert hits == []

    def test_floors_are_pinned_and_tested_in_ci(self) -> None:
        """Every runtime dependency has a floor, and .ci/run installs exactly those floors."""
        deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+>=[0-9][0-9.]*", d) for d in deps), deps
        assert ".ci/floors" in (ROOT / ".ci" / "run").read_text()
        assert (ROOT / ".ci" / "floors").stat().st_mode & 0o111


# -- 3, 4: read-only install, first-run compile --------------------------------------------


class TestCompiledEngine:
    def test_the_engine_is_compiled_at_install_and_needs_no_cache(self) -> None:
        """The simulator is a compiled extension module built with the package: no JIT
        compiler and no cache directory are involved at run time."""
        code = ("import sys, capacity.sim.engine as e, capacity.sim._engine as c; "
                "print(c.__file__); print(sorted({m.split('.')[0] for m in sys.modules} & "
                "{'numba', 'llvmlite'}))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={**os.environ, "HOME": "/nonexistent"})
        path, jit = out.stdout.splitlines()
        assert Path(path).suffix in (".so", ".pyd") and jit == "[]"

    def test_progress_display_names_the_work(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The live display says what it does from the first replication on."""
        from rich.console import Console

        import capacity.cli.common as common

        buf = io.StringIO()
        monkeypatch.setattr(common, "err_console",
                            Console(file=buf, force_terminal=True, width=100))
        with common.progress_display("simulating", quiet=False) as progress:
            assert progress is not None
            progress(3)
        assert "simulating" in buf.getvalue()
        assert "compiling" not in buf.getvalue()


# -- 5: shipped profiles -------------------------------------------------------------------


class TestShippedProfiles:
    def test_profiles_lists_every_shipped_file_with_its_description(self) -> None:
        """`capacity profiles` names every profile and overlay with one line of what it is."""
        out = _ok("profiles").stdout
        for path in [*PROFILES, *OVERLAYS]:
            assert path.stem in out
        assert "Research agent" in out
        rows = json.loads(_ok("profiles", "--format", "json").stdout)
        assert {r["name"] for r in rows} == {p.stem for p in [*PROFILES, *OVERLAYS]}
        assert all(r["description"] for r in rows)

    def test_package_data_holds_the_shipped_files(self) -> None:
        """The files come from the installed package, not from the repository."""
        from importlib.resources import files

        data = files("capacity") / "data"
        assert sorted(e.name for e in (data / "profiles").iterdir()) == \
            [p.name for p in PROFILES]
        assert sorted(e.name for e in (data / "overlays").iterdir()) == \
            [p.name for p in OVERLAYS]
        globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
            "package-data"]["capacity"]
        assert {"data/profiles/*.yaml", "data/overlays/*.yaml"} <= set(globs)

    def test_init_writes_a_commented_copy_and_refuses_to_overwrite(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """`capacity init web-research` writes the file with its comments, once."""
        monkeypatch.chdir(tmp_path)
        _ok("init", "web-research")
        written = tmp_path / "web-research.yaml"
        assert written.read_text() == (ROOT / "profiles" / "web-research.yaml").read_text()
        again = runner.invoke(app, ["init", "web-research"])
        assert again.exit_code == 2 and "already exists" in again.stderr
        _ok("init", "tool-agent", "mine.yaml")
        assert (tmp_path / "mine.yaml").read_text().startswith("#")
        unknown = runner.invoke(app, ["init", "no-such-profile"])
        assert unknown.exit_code == 2 and "web-research" in unknown.stderr

    def test_a_shipped_name_works_where_a_path_is_expected(self, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
        """`capacity ceiling web-research` from an empty directory = the file's answer."""
        monkeypatch.chdir(tmp_path)
        by_name = json.loads(_ok("ceiling", "web-research", "--method", "analytic",
                                 "--json").stdout)
        by_path = json.loads(_ok("ceiling", str(ROOT / "profiles" / "web-research.yaml"),
                                 "--method", "analytic", "--json").stdout)
        assert by_name == by_path
        merged = json.loads(_ok("compare", "web-research", "second-deployment",
                                "--json").stdout)
        assert merged["variants"][1]["burst_ceiling"] > merged["variants"][0]["burst_ceiling"]

    def test_a_local_file_wins_over_a_shipped_name(self, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        """When a file of that name exists, it is the one used."""
        monkeypatch.chdir(tmp_path)
        text = (ROOT / "profiles" / "web-research.yaml").read_text()
        (tmp_path / "web-research").write_text(text.replace("rpm: 150", "rpm: 300"))
        data = json.loads(_ok("ceiling", "web-research", "--method", "analytic",
                              "--json").stdout)
        assert data["mean_ceiling"] == pytest.approx(150)

    def test_unknown_name_is_one_line_exit_2(self, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        """Neither a file nor a shipped profile: the usual "no such file" line."""
        monkeypatch.chdir(tmp_path)
        result = runner.invoke(app, ["ceiling", "web-reserch"])
        assert result.exit_code == 2
        assert result.stderr == ("error: web-reserch: no such file, nor a shipped profile "
                                 "(did you mean 'web-research'?)\n")
        path = runner.invoke(app, ["ceiling", "nowhere/web-research.yaml"])
        assert path.stderr == "error: nowhere/web-research.yaml: no such file\n"


# -- 6: validate ----------------------------------------------------------------------------


class TestValidate:
    def test_each_file_on_its_own(self) -> None:
        """`validate profiles/*.yaml` checks each file (no merging) and reports each."""
        out = _ok("validate", *map(str, PROFILES)).stdout
        assert out.count("ok: ") == len(PROFILES)
        for p in PROFILES:
            assert str(p) in out

    def test_one_bad_file_fails_the_run_but_every_file_is_reported(self,
                                                                  tmp_path: Path) -> None:
        """A bad file: its error line, the good file's ok line, exit 2."""
        bad = tmp_path / "bad.yaml"
        bad.write_text((ROOT / "profiles" / "web-research.yaml").read_text()
                       .replace("rpm: 150", "rpmm: 150"))
        result = runner.invoke(app, ["validate", str(bad), str(PROFILES[0])])
        assert result.exit_code == 2
        assert result.stdout.count("ok: ") == 1
        assert "rpmm" in result.stderr and "bad.yaml:" in result.stderr

    def test_merge_validates_a_stack(self) -> None:
        """--merge validates a base and its overlays as one profile."""
        base = ROOT / "profiles" / "web-research.yaml"
        out = _ok("validate", "--merge", str(base), str(OVERLAYS[0])).stdout
        assert out.count("ok: ") == 1 and " + " in out

    def test_stdin(self) -> None:
        """`-` reads the profile from standard input; errors name <stdin> and the line."""
        text = (ROOT / "profiles" / "web-research.yaml").read_text()
        assert _ok("validate", "-", input=text).stdout.startswith("ok: ")
        data = json.loads(_ok("ceiling", "-", "--method", "analytic", "--json",
                              input=text).stdout)
        by_file = json.loads(_ok("ceiling", "web-research", "--method", "analytic",
                                 "--json").stdout)
        assert {**data, "profile": ""} == {**by_file, "profile": ""}
        bad = runner.invoke(app, ["validate", "-"], input=text.replace("rpm: 150", "rpm: -1"))
        assert bad.exit_code == 2
        assert re.match(r"error: <stdin>:\d+: quotas\.deployment\.rpm", bad.stderr)


# -- 7: JSON Schema -----------------------------------------------------------------------


def _properties(node: object) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            out += [v for v in props.values() if isinstance(v, dict)]
        for v in node.values():
            out += _properties(v)
    elif isinstance(node, list):
        for v in node:
            out += _properties(v)
    return out


class TestSchema:
    def test_complete_and_described(self) -> None:
        """$schema, $id, a plain root description, and a description on every property."""
        schema = json.loads(_ok("schema").stdout)
        assert schema["$schema"].startswith("https://json-schema.org/")
        assert schema["$id"]
        assert ":func:" not in schema["description"] and "``" not in schema["description"]
        props = _properties(schema)
        assert len(props) >= 140
        assert [p for p in props if not p.get("description")] == []

    def test_every_shipped_profile_and_overlay_validates(self) -> None:
        """Profiles against the schema, overlays against its overlay variant."""
        import jsonschema

        full = json.loads(_ok("schema").stdout)
        overlay = json.loads(_ok("schema", "--overlay").stdout)
        for p in PROFILES:
            jsonschema.validate(yaml.safe_load(p.read_text()), full)
        for p in OVERLAYS:
            data = yaml.safe_load(p.read_text())
            jsonschema.validate(data, overlay)
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(data, full)  # an overlay alone is not a profile

    @pytest.mark.parametrize("duration", ["2.5 m", "1e2s", "500ms", "1h", " 30s ", "2min",
                                          "0.01d"])
    def test_durations_the_cli_accepts_the_schema_accepts(self, duration: str) -> None:
        """The duration pattern is the parser's own rule."""
        import jsonschema

        base = yaml.safe_load((ROOT / "profiles" / "web-research.yaml").read_text())
        base["session"]["cadence"] = duration
        jsonschema.validate(base, json.loads(_ok("schema").stdout))
        _ok("validate", "-", "--set", f"session.cadence={duration}",
            input=(ROOT / "profiles" / "web-research.yaml").read_text())

    def test_output_file(self, tmp_path: Path) -> None:
        """-o writes the schema to a file."""
        _ok("schema", "-o", str(tmp_path / "s.json"))
        assert json.loads((tmp_path / "s.json").read_text())["$id"]


# -- 8, 12 (D): tables that fit, one number format per quantity, plain words -----------------

TABLE_RUNS = [
    ("ceiling", "profiles/web-research.yaml", *FAST),
    ("ceiling", "profiles/chat-assistant.yaml", "--method", "analytic", "--sessions", "50"),
    ("sweep", "profiles/web-research.yaml", "--sessions", "20:100:20", *FAST),
    ("compare", "profiles/web-research.yaml", "examples/overlays/second-deployment.yaml",
     "--scenario", "bucket:quotas.deployment.enforcement={type: token_bucket}",
     "--scenario", "1s-windows:quotas.deployment.enforcement.window=1s"),
    ("size", "profiles/web-research.yaml", "--sessions", "500", "--method", "analytic"),
    ("explain", "profiles/tool-agent.yaml"),
    ("profiles",),
]


class TestTables:
    @pytest.mark.parametrize("args", TABLE_RUNS, ids=lambda a: a[0])
    def test_fits_80_columns_without_cut_cells_or_trailing_spaces(self,
                                                                  args: tuple[str]) -> None:
        """Every line ≤ 80 columns, nothing cut to `…`, no trailing spaces."""
        out = _cli(*args)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert max(map(len, lines)) <= 80, [ln for ln in lines if len(ln) > 80]
        assert "…" not in out.stdout
        assert [ln for ln in lines if ln != ln.rstrip()] == []

    def test_one_format_for_fractions(self) -> None:
        """No scientific notation: 429 and failure fractions read as percentages."""
        out = _cli("sweep", "profiles/web-research.yaml", "--sessions", "20:100:20", *FAST)
        assert not re.search(r"\d\.\de-\d\d", out.stdout)
        assert "<0.01%" in out.stdout
        assert "◀ saturation point on this grid" in out.stdout  # the legend line

    def test_narrow_terminal_never_cuts_a_number(self) -> None:
        """COLUMNS=60: the table keeps its width; every cell equals its 80-column self."""
        args = ("sweep", "profiles/web-research.yaml", "--sessions", "20:100:20", *FAST)
        wide = _cli(*args).stdout
        narrow = _cli(*args, env={"COLUMNS": "60"}).stdout
        assert "…" not in narrow

        def rows(text: str) -> list[str]:
            return [ln for ln in text.splitlines() if ln.startswith("│")]

        assert rows(narrow) == rows(wide)

    def test_plain_words_first_methods_under_verbose(self) -> None:
        """The method behind each figure (e.g. compound binomial by FFT, the Lundberg bound)
        is named only with --verbose."""
        from capacity.render.format import fewer

        for name in ("web-research", "chat-assistant"):
            data = json.loads(_ok("ceiling", name, "--method", "analytic", "--json").stdout)
            plain = " ".join(_ok("ceiling", name, "--method", "analytic").stdout.split())
            verbose = " ".join(_ok("ceiling", name, "--method", "analytic",
                                   "-v").stdout.split())
            methods = {c["method"] for c in data["constraints"]}
            assert methods and all(m not in plain for m in methods), (methods, plain)
            assert all(m in verbose for m in methods), (methods, verbose)
            assert "below the napkin" not in plain
            # The text compares the whole sessions the napkin carries (208 at a mean
            # ceiling of 208.2 is no fewer: "bursts cost nothing here").
            napkin = data["mean_ceiling_sessions"]
            if 0 < data["burst_ceiling"] < napkin:
                assert f"({fewer(data['burst_ceiling'], napkin)})" in plain
            elif data["burst_ceiling"] == napkin:
                assert "bursts cost nothing here" in plain

    def test_near_napkin_is_not_1_00x(self, tmp_path: Path) -> None:
        """207 vs 208 reads as a percentage, never `1.00× below the napkin`."""
        data = json.loads(_ok("ceiling", "tool-agent", "--method", "analytic",
                              "--json").stdout)
        out = _ok("ceiling", "tool-agent", "--method", "analytic").stdout
        assert "1.00×" not in out
        assert f"{data['burst_ceiling']:,}" in out


# -- 9: plots ---------------------------------------------------------------------------------


class TestPlot:
    @pytest.mark.parametrize(("ext", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml"),
                                                ("pdf", b"%PDF")])
    def test_format_follows_the_extension(self, tmp_path: Path, ext: str,
                                          magic: bytes) -> None:
        """--plot c.svg writes SVG, c.pdf PDF, c.png PNG."""
        out = tmp_path / f"c.{ext}"
        _ok("sweep", "web-research", "--sessions", "20:80:20", "--method", "analytic",
            "--plot", str(out), "-q")
        assert out.read_bytes().startswith(magic)

    def test_unknown_extension_and_missing_matplotlib_fail_before_the_sweep(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Nothing is computed when the plot cannot be written."""
        import capacity.whatif.sweep as sweep_mod

        def never(*_a: object, **_k: object) -> None:
            raise AssertionError("the sweep ran before the plot was checked")

        monkeypatch.setattr(sweep_mod, "sweep", never)
        bad = runner.invoke(app, ["sweep", "web-research", "--sessions", "10,20", "--plot",
                                  str(tmp_path / "c.txt")])
        assert bad.exit_code == 2 and ".png, .svg or .pdf" in bad.stderr
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        missing = runner.invoke(app, ["sweep", "web-research", "--sessions", "10,20",
                                      "--plot", str(tmp_path / "c.png")])
        assert missing.exit_code == 2 and "matplotlib" in missing.stderr

    def test_429_axis_is_logarithmic(self) -> None:
        """The 1% target is visible: the 429 panel has a log axis."""
        import matplotlib.pyplot as plt

        from capacity.profile.loader import load_profile
        from capacity.render.plot import sweep_figure
        from capacity.whatif.sweep import sweep

        result = sweep(load_profile(ROOT / "profiles" / "web-research.yaml"), [20, 40, 60])
        fig = sweep_figure(result)
        try:
            assert fig.axes[0].get_yscale() == "log"
        finally:
            plt.close(fig)


# -- 10: help ---------------------------------------------------------------------------------

MY_COMMANDS = ["ceiling", "explain", "validate", "schema", "size", "check", "compare",
               "sweep", "report", "profiles", "init"]


class TestHelp:
    @pytest.mark.parametrize("command", MY_COMMANDS)
    def test_readable_metavars_and_an_example(self, command: str) -> None:
        """No `{profiles}`, `<list[Path]>` or `<list[str]>`; one example per command."""
        out = runner.invoke(app, [command, "--help"], terminal_width=80).stdout
        assert not re.search(r"<list\[|\{[a-z]+\}|<Path>|<str>", out), out
        assert "Example: capacity " + command in out

    def test_summaries_fit_and_completion_is_on(self) -> None:
        """The command list is not cut with `...`; shell completion can be installed."""
        out = runner.invoke(app, ["--help"], terminal_width=80).stdout
        listed = [ln for ln in out.splitlines() if re.match(r"  [a-z]+ +\S", ln)]
        assert listed and not [ln for ln in listed if ln.endswith("...")], listed
        assert "--install-completion" in out


# -- 11: --format / -o -----------------------------------------------------------------------

COMPUTING = [
    ("ceiling", "web-research", "--method", "analytic"),
    ("explain", "web-research"),
    ("size", "web-research", "--sessions", "100", "--method", "analytic"),
    ("check", "web-research", "--sessions", "10"),
    ("compare", "web-research", "second-deployment"),
    ("sweep", "web-research", "--sessions", "20,40", "--method", "analytic"),
]


class TestFormats:
    @pytest.mark.parametrize("args", COMPUTING, ids=lambda a: a[0])
    def test_json_csv_and_output_file_on_every_computing_command(self, args: tuple[str],
                                                                  tmp_path: Path) -> None:
        """--format json equals --json; --format csv parses; -o writes the file only."""
        as_json = json.loads(_ok(*args, "--json").stdout)
        assert json.loads(_ok(*args, "--format", "json").stdout) == as_json
        rows = list(csv.DictReader(io.StringIO(_ok(*args, "-f", "csv").stdout)))
        assert rows and all(rows[0].keys())
        target = tmp_path / "out.json"
        written = _ok(*args, "--format", "json", "-o", str(target))
        assert written.stdout == ""
        assert json.loads(target.read_text()) == as_json
        table = tmp_path / "out.txt"
        _ok(*args, "-o", str(table))
        assert table.read_text().strip()

    @pytest.mark.parametrize("flags", [("--json", "--csv"), ("--json", "--format", "table"),
                                       ("--csv", "--format", "json")])
    def test_conflicting_formats_are_an_error(self, flags: tuple[str, ...]) -> None:
        """`--csv --json` used to print CSV silently: now one error line, exit 2."""
        result = runner.invoke(app, ["sweep", "web-research", "--sessions", "20,40",
                                     "--method", "analytic", *flags])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith("error: conflicting output formats")

    def test_unwritable_output_is_refused_before_computing(self, tmp_path: Path) -> None:
        """-o into a missing directory: exit 2 at once."""
        result = runner.invoke(app, ["ceiling", "web-research", "-o",
                                     str(tmp_path / "no" / "x.json")])
        assert result.exit_code == 2 and "no directory" in result.stderr


# -- 12: the README says what is true ---------------------------------------------------------


def test_readme_does_not_claim_scipy_backs_the_distributions() -> None:
    """Distributions are the project's own code; scipy only checks them in tests."""
    readme = (ROOT / "README.md").read_text()
    assert "backed by `scipy.stats`" not in readme and "backed by scipy" not in readme


def test_readme_shows_the_generated_saturation_curve() -> None:
    """The picture next to the sweep comes from a script in the repository."""
    readme = (ROOT / "README.md").read_text()
    assert "docs/saturation.png" in readme
    assert (ROOT / "docs" / "saturation.png").stat().st_size > 10_000
    script = (ROOT / "docs" / "make_saturation_plot.py").read_text()
    assert "saturation.png" in script


# -- B6, B7: user text is shown literally; any terminal encoding ------------------------------


def _renamed(tmp_path: Path, name: str, filename: str = "p.yaml") -> Path:
    text = (ROOT / "profiles" / "web-research.yaml").read_text()
    path = tmp_path / filename
    path.write_text(text.replace("name: web-research", f"name: {json.dumps(name)}"))
    return path


class TestUserText:
    @pytest.mark.parametrize("command", ["validate", "ceiling", "explain", "sweep"])
    def test_markup_in_a_name_is_shown_literally(self, tmp_path: Path, command: str) -> None:
        """`name: "agent [/staging]"` used to raise MarkupError."""
        path = _renamed(tmp_path, "agent [/staging] [bold]x[/bold]")
        extra = {"ceiling": ["--method", "analytic"], "sweep": ["--sessions", "20,40",
                                                              "--method", "analytic"]}
        out = _ok(command, str(path), *extra.get(command, [])).stdout
        assert "agent [/staging] [bold]x[/bold]" in out

    def test_file_name_with_brackets(self, tmp_path: Path) -> None:
        """A file `agent[v2].yaml` is named agent[v2], not `agent`."""
        text = (ROOT / "profiles" / "web-research.yaml").read_text()
        path = tmp_path / "agent[v2].yaml"
        path.write_text(text.replace("name: web-research\n", ""))
        out = _ok("ceiling", str(path), "--method", "analytic").stdout
        assert "agent[v2]" in out
        cmp = _ok("compare", str(path), "--scenario", "x[/y]:quotas.deployment.rpm=300").stdout
        assert "x[/y]" in cmp and "agent[v2]" in cmp

    def test_control_characters_never_reach_the_terminal(self, tmp_path: Path) -> None:
        """ANSI escapes and newlines in names are shown as escapes, on one line."""
        path = _renamed(tmp_path, "evil\x1b[31mred\nsecond line")
        out = _ok("ceiling", str(path), "--method", "analytic").stdout
        assert "\x1b" not in out
        assert "evil\\x1b[31mred\\nsecond line" in out
        bad = tmp_path / "k.yaml"
        bad.write_text((ROOT / "profiles" / "web-research.yaml").read_text()
                       + '"bad\\nkey\\x1b[2J": 1\n')
        result = runner.invoke(app, ["validate", str(bad)])
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and "\x1b" not in result.stderr

    @pytest.mark.parametrize("args", [
        ("ceiling", "profiles/web-research.yaml", "--method", "analytic"),
        ("ceiling", "profiles/web-research.yaml", "--method", "analytic", "--json"),
        ("explain", "profiles/tool-agent.yaml"),
        ("check", "profiles/web-research.yaml", "--sessions", "10"),
        ("validate", "profiles/chat-assistant.yaml"),
        ("sweep", "profiles/web-research.yaml", "--sessions", "20,40", "--method", "analytic"),
        ("profiles",),
    ], ids=lambda a: "-".join(a[:2] + a[-1:]))
    def test_ascii_terminal(self, args: tuple[str, ...]) -> None:
        """PYTHONIOENCODING=ascii: ASCII look-alikes instead of UnicodeEncodeError."""
        proc = subprocess.run([sys.executable, "-m", "capacity", *args], capture_output=True,
                              cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "ascii",
                                             "COLUMNS": "80"})
        assert proc.returncode == 0, proc.stderr.decode("ascii", "replace")
        text = proc.stdout.decode("ascii")  # raises if anything non-ASCII got through
        assert "?" not in text.replace("?)", "")  # known glyphs have look-alikes
        blocks: list[list[str]] = [[]]
        for ln in text.splitlines():
            if ln[:1] in "|+":
                blocks[-1].append(ln)
            elif blocks[-1]:
                blocks.append([])
        for table in blocks:  # each table's lines have one length: columns stay aligned
            assert len({len(ln) for ln in table}) <= 1, table
        if "--json" in args:
            utf8 = _cli(*args).stdout
            assert json.loads(text) == json.loads(utf8)


# -- 15: bad input that used to crash -----------------------------------------------------------


@pytest.mark.parametrize("text", [
    "a: " + "[" * 3000 + "]" * 3000,
    "a: " + "{b: " * 3000 + "1" + "}" * 3000,
    "a:\n" + "".join("  " * (i + 1) + "b:\n" for i in range(1500)),
    "a: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 2000)),
], ids=["deep-flow-sequence", "deep-flow-mapping", "deep-block-mapping", "anchor-chain"])
def test_deep_nesting_is_one_line_exit_2(tmp_path: Path, text: str) -> None:
    """3,000 levels of nesting (and kin): one error line, exit 2, never a RecursionError."""
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output[-500:]
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_deep_nesting_through_the_console_entry_point(tmp_path: Path) -> None:
    """The same in a fresh interpreter: no traceback, no exit 3."""
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 3000 + "]" * 3000)
    out = subprocess.run([sys.executable, "-m", "capacity", "validate", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 2, out.stderr[-500:]
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


README_COMMANDS = ("capacity ceiling ", "capacity sweep ", "capacity size ", "capacity compare ")


def _readme_examples() -> list[tuple[str, str]]:
    """(command, printed output) of the README's console examples of the table commands."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        for part in re.split(r"^\$ ", block, flags=re.M)[1:]:
            lines = part.split("\n")
            cmd, i = lines[0], 1
            while cmd.endswith("\\"):
                cmd, i = cmd[:-1] + " " + lines[i].strip(), i + 1
            if cmd.startswith(README_COMMANDS) and "|" not in cmd and "bad.yaml" not in cmd:
                out.append((cmd, "\n".join(lines[i:]).strip("\n")))
    return out


@pytest.mark.parametrize(("command", "printed"), _readme_examples(),
                         ids=lambda v: v.split()[1] if v.startswith("capacity") else "")
def test_readme_console_examples_reproduce(command: str, printed: str) -> None:
    """Each README console example prints exactly what the README shows (80 columns); the
    command is split as a shell splits it (quotes kept a value with spaces whole)."""
    out = _cli(*shlex.split(command)[1:])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip("\n") == printed
