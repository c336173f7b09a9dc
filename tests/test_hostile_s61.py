"""A hostile new user's findings (session 61)."""

from __future__ import annotations

import json

from .conftest import ROOT
from .test_cli_hostile import run, sane

WEB = str(ROOT / "profiles" / "web-research.yaml")


def test_choice_options_take_any_case() -> None:
    """`--method ANALYTIC` or `--provider Azure` was a usage error while `--format JSON`
    was accepted: every choice option now reads its value in any case."""
    lower = sane(run("ceiling", WEB, "--method", "analytic", "--json"))
    upper = sane(run("ceiling", WEB, "--method", "ANALYTIC", "--json"))
    assert upper.code == 0
    assert json.loads(upper.stdout) == json.loads(lower.stdout)
    # Parsed as the members they name: the checks that follow parsing speak of them.
    r = sane(run("loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "2", "--engine", "Builtin", "--workers", "2"), where="--workers")
    assert r.code == 2 and "--engine locust" in r.stderr
    r = sane(run("loadtest", WEB, "--target", "http://127.0.0.1:9", "--sessions", "2", "--client", "Anthropic", "--provider", "OpenAI"),
             where="--provider")
    assert r.code == 2 and "openai" in r.stderr
