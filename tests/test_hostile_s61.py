"""A hostile new user's findings (session 61)."""

from __future__ import annotations

import json

import pytest

from .conftest import ROOT
from .test_cli_hostile import run, sane

WEB = str(ROOT / "profiles" / "web-research.yaml")
MISSING = "/nonexistent/profile.yaml"
TARGET = ("--target", "http://127.0.0.1:9", "--sessions", "2")


def test_choice_options_take_any_case() -> None:
    """`--method ANALYTIC` or `--provider Azure` was a usage error while `--format JSON`
    was accepted: every choice option now reads its value in any case."""
    lower = sane(run("ceiling", WEB, "--method", "analytic", "--json"))
    upper = sane(run("ceiling", WEB, "--method", "ANALYTIC", "--json"))
    assert upper.code == 0
    assert json.loads(upper.stdout) == json.loads(lower.stdout)
    # Parsed as the members they name: the checks that follow parsing speak of them.
    r = sane(run("loadtest", WEB, *TARGET, "--engine", "Builtin", "--workers", "2"),
             where="--workers")
    assert r.code == 2 and "--engine locust" in r.stderr
    r = sane(run("loadtest", WEB, *TARGET, "--client", "Anthropic", "--provider", "OpenAI"),
             where="--provider")
    assert r.code == 2 and "drop --provider openai" in r.stderr


@pytest.mark.parametrize("args", [
    ("ceiling", MISSING, "--method", "ANALYTIC", "--format", "JSON"),
    ("sweep", MISSING, "--sessions", "2", "--method", "Both", "--format", "CSV"),
    ("check", MISSING, "--sessions", "2", "--method", "MEAN"),
    ("sensitivity", MISSING, "--method", "Simulate"),
    ("fit", "/nonexistent/trace.json", "--format", "OTLP-JSON", "--pacing", "AUTO"),
    ("serve", MISSING, "--provider", "AZURE"),
    ("loadtest", MISSING, *TARGET, "--provider", "Azure", "--client", "RAW",
     "--engine", "Builtin", "--route", "Client"),
], ids=lambda a: a[0])
def test_each_choice_option_reads_any_case(args: tuple[str, ...]) -> None:
    """Parsed: the error is the missing file's, found after parsing, not a usage error
    naming the option."""
    r = sane(run(*args))
    assert r.code == 2 and "no such file" in r.stderr and "Invalid value" not in r.stderr
