"""Hostile and extreme input (issue 9): one clear line and exit 2, never a traceback,
never a silently changed figure, never unbounded work.

Each family is tested from its root cause with generated cases: input limits before
parsing, one bounded type per kind of field, merge semantics that make a restated value
mean the same, a mean-preserving token lattice, bounded turn sizes and memory.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capacity import ProfileError, load_profile, profile_from_dict
from capacity.analytic.model import analyze
from capacity.model.dist import Distribution
from capacity.profile.loader import MAX_DEPTH, MAX_PROFILE_BYTES
from capacity.profile.schema import MAX_CALLS_PER_TURN, MAX_RETRIES
from capacity.whatif.ceiling import MAX_SIMULATION_BYTES, simulation_memory

from .conftest import PROFILES, ROOT

WEB = ROOT / "profiles" / "web-research.yaml"
TOOL = ROOT / "profiles" / "tool-agent.yaml"
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capacity", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def _one_line_exit_2(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------
# C8/C9: what is read — regular files only, size capped before parsing
# ---------------------------------------------------------------------------------------


def test_special_files_are_refused_at_the_cli(tmp_path: Path) -> None:
    """/dev/zero (endless) and a FIFO with no writer (blocks forever) are refused."""
    fifo = tmp_path / "p.fifo"
    os.mkfifo(fifo)
    for target in ("/dev/zero", str(fifo), str(tmp_path)):
        line = _one_line_exit_2(_cli("validate", target, timeout=20))
        assert target in line


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    """A file beyond the cap fails on its size, whatever it contains."""
    path = tmp_path / "big.yaml"
    path.write_text("a: [" + "1, " * (MAX_PROFILE_BYTES // 3 + 10) + "1]\n")
    with pytest.raises(ProfileError, match="larger than"):
        load_profile(path)


@FAST
@given(depth=st.integers(MAX_DEPTH + 1, 3000),
       shape=st.sampled_from(["flowseq", "flowmap", "blockmap", "blockseq"]))
def test_deep_nesting_is_one_line(tmp_path: Path, depth: int, shape: str) -> None:
    """Any nesting past the limit is one ProfileError naming the line — no recursion."""
    if shape == "flowseq":
        text = "a: " + "[" * depth + "]" * depth + "\n"
    elif shape == "flowmap":
        text = "a: " + "{b: " * depth + "1" + "}" * depth + "\n"
    elif shape == "blockmap":
        text = "".join(" " * i + f"k{i}:\n" for i in range(depth)) + " " * depth + "v\n"
    else:
        text = "".join(" " * (2 * i) + "-\n" for i in range(depth))[:-2] + " 1\n"
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "\n" not in str(info.value)
    assert "deep" in str(info.value) or "larger than" in str(info.value)


@pytest.mark.parametrize("text", [
    "\n".join(["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 300)]),
    "a: &a [1, *a]\n",
    "a: &a {b: *a}\n",
    "a: " + "9" * 5000 + "\n",
])
def test_alias_chains_recursion_and_huge_integers(tmp_path: Path, text: str) -> None:
    """Long alias chains, self-referencing aliases and unconvertible integers: one line."""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------
# A2/A4/B5/D12: one bounded type per kind of field
# ---------------------------------------------------------------------------------------

DURATIONS = ["retry.initial_delay", "retry.max_delay", "retry.max_retry_after",
             "retry.rejection_latency", "quotas.deployment.enforcement.window",
             "targets.p95_turn_latency", "session.cadence", "models.gpt-4o.ttft"]
COUNTS = ["retry.max_retries", "session.turns.research.steps.1.parallel.count",
          "models.gpt-4o.max_tokens", "session.turns.research.steps.0.call.max_tokens"]
RATES = ["quotas.deployment.rpm", "quotas.deployment.rpm.limit",
         "models.gpt-4o.tokens_per_second", "session.turns.research.weight"]
TOKENS = ["session.turns.research.steps.0.call.input_tokens",
          "session.turns.research.steps.0.call.output_tokens"]
HOSTILE = ["-100", "-5s", "-1", "1e309", "1e309s", ".inf", "-.inf", ".nan",
           "100000000000000000000", "1" + "0" * 400, "true", "[]", "{}", "1e-400s",
           "{uniform: [1e309, 1e310]}", "{exponential: 1e309s}",
           "{lognormal: {median: 1, p95: 1e28}}", "{choice: {values: [1], weights: [1e309]}}"]


@FAST
@given(key=st.sampled_from(DURATIONS + COUNTS + RATES + TOKENS),
       value=st.sampled_from(HOSTILE))
def test_hostile_values_are_refused_or_harmless(key: str, value: str) -> None:
    """Whatever a --set puts in a duration, count, rate or token field, the result is a
    validated profile the models can use, or one line naming the flag and the key."""
    try:
        profile = load_profile(WEB, [f"{key}={value}"])
    except ProfileError as e:
        assert "\n" not in str(e)
        assert str(e).startswith(f"--set {key}="), e
        return
    result = analyze(profile)
    assert math.isfinite(result.mean_ceiling) or result.mean_ceiling == math.inf
    assert 0 <= result.burst_ceiling <= max(result.mean_ceiling, 0) + 1


@pytest.mark.parametrize(("override", "words"), [
    ("retry.rejection_latency=-100", "≥ 0s"),
    ("retry.initial_delay=-5", "≥ 0s"),
    ("retry.max_delay=-1", "≥ 0s"),
    ("pacing={rpm: 100, burst: -1}", "≥ 0s"),
    ("retry.initial_delay=1e309s", "finite"),
    ("retry.max_retries=100000000000000000000", f"at most {MAX_RETRIES}"),
    ("session.turns.research.steps.0.call.input_tokens=20000000", "10,000,000 tokens"),
    ("models.gpt-4o.ttft={lognormal: {median: 1s, p95: 1000s}}", "at most 100×"),
    ("models.gpt-4o.tokens_per_second=1e-300", "at least 0.001"),
    ("session.turns.research.steps.1.parallel={count: 1000, call: null, steps: [{parallel: "
     "{count: 20, call: {model: gpt-4o, input_tokens: 1, output_tokens: 1}}}]}",
     f"at most {MAX_CALLS_PER_TURN:,} per turn"),
])
def test_issue_examples_are_refused_with_the_bound(override: str, words: str) -> None:
    """The issue's accepted-but-wrong values now fail, saying the bound."""
    with pytest.raises(ProfileError, match=words.replace("(", r"\(")) as info:
        load_profile(WEB, [override])
    assert "\n" not in str(info.value)


def test_exponent_numbers_are_numbers_everywhere(tmp_path: Path) -> None:
    """`1e6` (YAML 1.1 would read a string) is a number for tokens as for limits."""
    text = WEB.read_text().replace("input_tokens: 1200", "input_tokens: 1.2e3").replace(
        "rpm: 150", "rpm: 15e1")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    assert load_profile(path) == load_profile(WEB)
    p = load_profile(WEB, ["session.turns.research.steps.0.call.input_tokens=1e6"])
    assert p.session.turns["research"].steps[0].call.input_tokens.mean == 1e6  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "read"), [
    ("0226", 226), ("0o226", 150), ("0x96", 150), ("1_500", 1500), ("007", 7), ("1.5e2", 150),
    ("2:30", None), ("0b10010110", None), ("2:30.0", None),
])
def test_numbers_are_read_as_yaml_12_reads_them(value: str, read: int | None) -> None:
    """YAML 1.1 read `0226` as octal (150), `2:30` in base 60 and `0b10010110` in binary
    — silently 150 where 226 or an error was meant — while the loader said it read numbers
    as YAML 1.2 and refused 0o226."""
    key = "quotas.deployment.rpm"
    if read is None:
        with pytest.raises(ProfileError, match=f"got '{value}'"):
            load_profile(WEB, [f"{key}={value}"])
        return
    assert load_profile(WEB, [f"{key}={value}"]).quotas["deployment"].rpm.limit == read  # type: ignore[union-attr]


def test_schema_states_the_bounds() -> None:
    """`capacity schema` carries every bound (maximum/minimum) of the numeric fields."""
    res = _cli("schema")
    assert res.returncode == 0
    text = res.stdout
    for bound in ('"maximum": 100', '"maximum": 2592000.0', '"maximum": 1000000000000.0',
                  '"maximum": 10000000'):
        assert bound in text, bound


# ---------------------------------------------------------------------------------------
# A3/D12: merge semantics — restating a value changes nothing; errors blame the --set
# ---------------------------------------------------------------------------------------


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in {"uniform", "exponential", "lognormal",
                                                     "choice", "fixed"}:
            return [(path, value)]  # a distribution is one value
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list) and path and path[-1] == "steps":
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix(
        "\n...")


def _nest(path: tuple[Any, ...], value: Any) -> Any:
    for part in reversed(path):
        value = {part: value}
    return value


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_restating_every_leaf_changes_nothing(path: Path, tmp_path: Path) -> None:
    """Every leaf of every shipped profile, restated by --set and (outside lists) by an
    overlay, leaves the validated profile — hence every figure — unchanged."""
    base = load_profile(path)
    raw = yaml.safe_load(path.read_text())
    leaves = _leaves(raw)
    assert len(leaves) > 10
    for keys, value in leaves:
        if any("." in str(k) for k in keys):
            continue  # a key with a dot (a model named gpt-4.1) has no --set path
        dotted = ".".join(map(str, keys))
        assert load_profile(path, [f"{dotted}={_flow(value)}"]) == base, dotted
        if not any(isinstance(k, int) for k in keys):
            overlay = tmp_path / "o.yaml"
            overlay.write_text(yaml.safe_dump(_nest(keys, value)))
            assert load_profile([path, overlay]).model_copy(update={"name": base.name}) == base
    # Shorthand restated over the mapping form, and the mapping form over shorthand.
    for q, spec in raw["quotas"].items():
        for dim in ("rpm", "tpm", "itpm", "otpm"):
            lim = spec.get(dim)
            if isinstance(lim, dict):
                assert load_profile(path, [f"quotas.{q}.{dim}={lim['limit']}"]) == base
            elif lim is not None:
                assert load_profile(path, [f"quotas.{q}.{dim}={{limit: {lim}}}"]) == base


def test_restated_tpm_keeps_its_enforcement_in_every_figure(tmp_path: Path) -> None:
    """The issue's example: tool-agent's ceiling stays 26, by --set and by overlay."""
    base = analyze(load_profile(TOOL))
    again = analyze(load_profile(TOOL, ["quotas.project.tpm=800000"]))
    assert again.to_dict()["constraints"] == base.to_dict()["constraints"]
    overlay = tmp_path / "same.yaml"
    overlay.write_text("quotas:\n  project:\n    tpm: 800000\n")
    merged = analyze(load_profile([TOOL, overlay]))
    assert merged.burst_ceiling == base.burst_ceiling
    res = _cli("compare", str(TOOL), str(overlay), "--json")
    assert res.returncode == 0, res.stderr
    assert '"change_percent": 0.0' in res.stdout


def test_error_inside_a_set_value_blames_the_set() -> None:
    """A bad key inside a --set mapping is reported against the flag, not the file."""
    with pytest.raises(ProfileError) as info:
        load_profile(TOOL, ["quotas.project.tpm={limit: 9, enforcement: {window: -1}}"])
    assert str(info.value).startswith("--set quotas.project.tpm="), info.value
    assert "quotas.project.tpm.enforcement.window" in str(info.value)


# ---------------------------------------------------------------------------------------
# A1: the token lattice conserves every mean; burst-aware ≤ mean-value; more fan-out
# never raises the ceiling
# ---------------------------------------------------------------------------------------


@FAST
@given(value=st.floats(0.0, 1e5), h=st.floats(0.5, 5e4),
       kind=st.sampled_from(["fixed", "uniform", "exponential", "lognormal"]))
def test_lattice_conserves_the_mean(value: float, h: float, kind: str) -> None:
    """Any charge, any step: the lattice mean equals the exact mean (no rounding to 0)."""
    raw: Any = {"fixed": value, "uniform": [value, 2 * value + 1],
                "exponential": value + 1, "lognormal": {"median": value + 1,
                                                        "p95": 3 * value + 4}}[kind]
    d = Distribution.parse({kind: raw} if kind != "fixed" else raw, "tokens")
    p = d.lattice_pmf(h, top=1e12)
    assert float(np.dot(np.arange(p.size), p)) * h == pytest.approx(d.mean, rel=1e-6,
                                                                    abs=1e-9)


def _fanout(count: int, inp: int, out: int, tpm: float, think: float) -> dict[str, Any]:
    call = {"model": "m", "input_tokens": inp, "output_tokens": out}
    step = {"parallel": {"count": count, "call": call}} if count > 1 else {"call": call}
    return {"models": {"m": {"ttft": "0.5s", "tokens_per_second": 50}},
            "quotas": {"q": {"models": ["m"], "tpm": {
                "limit": tpm, "enforcement": {"type": "fixed_window", "window": "10s"}}}},
            "session": {"think_time": {"exponential": think}, "turns": {"t": {"steps": [step]}}}}


@settings(max_examples=10, deadline=None)
@given(count=st.integers(1, 400), inp=st.integers(1, 2000), out=st.integers(0, 500),
       per_window=st.integers(2, 200), think=st.floats(5.0, 600.0))
def test_burst_aware_never_exceeds_mean_value(count: int, inp: int, out: int,
                                             per_window: int, think: float) -> None:
    """For any fan-out and charge, the burst-aware ceiling ≤ the napkin, and doubling the
    fan-out (same calls, half as many turns per session) never raises it."""
    from capacity import profile_from_dict

    batch = count * (inp + out)
    tpm = batch * per_window * 6.0  # the allowance holds `per_window` batches
    one = analyze(profile_from_dict(_fanout(count, inp, out, tpm, think)))
    assert one.burst_ceiling <= math.floor(one.mean_ceiling + 1e-9)
    if 2 * count <= 400:
        two = analyze(profile_from_dict(_fanout(2 * count, inp, out, tpm, 2 * think + 0.5)))
        assert two.burst_ceiling <= one.burst_ceiling + 1


# ---------------------------------------------------------------------------------------
# C10/C11: bounded work and memory
# ---------------------------------------------------------------------------------------


def test_large_legal_turns_are_sampled_in_proportion(tmp_path: Path) -> None:
    """A fan-out of up to 1,000 loops of up to 10 calls is legal and analysed (the
    sample shrinks with the calls per turn instead of taking minutes)."""
    from capacity import profile_from_dict
    from capacity.model.workload import CALL_SAMPLE_BUDGET, Workload

    p = profile_from_dict({
        "models": {"m": {"tokens_per_second": 100}},
        "quotas": {"q": {"models": ["m"], "rpm": 100000}},
        "session": {"think_time": "60s", "turns": {"t": {"steps": [{"parallel": {
            "count": {"uniform": [1, 1000]}, "steps": [{"repeat": {
                "count": {"uniform": [0, 10]},
                "call": {"model": "m", "input_tokens": 10, "output_tokens": 10}}}]}}]}}}})
    wl = Workload.from_profile(p)
    sample = wl.turn_sample
    assert sample.calls.size * wl.calls_per_turn() <= 2 * CALL_SAMPLE_BUDGET
    assert sample.calls.mean() == pytest.approx(wl.calls_per_turn(), rel=0.05)
    assert analyze(p).burst_ceiling > 0


def test_memory_budget_refuses_a_huge_simulation() -> None:
    """25k sessions of turns of 1,000 calls would need gigabytes: estimated and refused."""
    assert simulation_memory(25_000, 1_002, 20) > MAX_SIMULATION_BYTES
    assert simulation_memory(100, 10, 20) < MAX_SIMULATION_BYTES / 1000


CHAT = ROOT / "profiles" / "chat-assistant.yaml"


def test_an_empty_set_value_is_refused_not_a_removed_limit() -> None:
    # `--set quotas.org.rpm=` (a shell variable left unset) read as null and dropped the
    # rpm limit: a larger ceiling, no word. null still removes it, explicitly.
    with pytest.raises(ProfileError) as info:
        load_profile(CHAT, ["quotas.org.rpm="])
    assert str(info.value) == "--set quotas.org.rpm=: empty value; write null to remove the key"
    assert load_profile(CHAT, ["quotas.org.rpm=null"]).quotas["org"].rpm is None


def test_a_set_that_creates_an_unlike_key_names_the_keys_there() -> None:
    # A typo far from every name (no "did you mean") said only "steps: required key is
    # missing" of a turn type the user never meant to create.
    with pytest.raises(ProfileError) as info:
        load_profile(CHAT, ["session.turns.chatt.weight=5"])
    assert str(info.value).endswith(
        "session.turns.chatt.steps: required key is missing (--set created "
        "'session.turns.chatt', which the profile did not have (its keys there: message))")


def test_a_window_on_a_token_bucket_is_refused() -> None:
    """`{type: token_bucket, window: 10s}` was a 60 s bucket (the window silently ignored);
    web-research's comment suggested `--set ...enforcement.type=token_bucket`, which kept
    the file's `window: 10s` and so did just that."""
    with pytest.raises(ProfileError, match=r"quotas\.deployment\.enforcement\.window: a token "
                       r"bucket has no window: its depth is `burst`") as e:
        load_profile(WEB, ["quotas.deployment.enforcement.type=token_bucket"])
    assert e.value.line is not None  # the file's `window:` line
    with pytest.raises(ProfileError, match=r"enforcement\.burst: burst is a token bucket's "
                       r"depth; a sliding_window has none"):
        load_profile(WEB, ["quotas.deployment.enforcement.type=sliding_window",
                           "quotas.deployment.enforcement.burst=5s"])
    # An enforcement whose type changes is replaced whole (as a step whose kind changes).
    bucket = load_profile(WEB, ["quotas.deployment.enforcement={type: token_bucket, burst: 10s}"])
    enf = bucket.quotas["deployment"].enforcement
    assert (enf.type, enf.burst, enf.window) == ("token_bucket", 10.0, 60.0)
    assert load_profile(WEB, ["quotas.deployment.enforcement={window: 1s}"]).quotas[
        "deployment"].enforcement.type == "fixed_window"  # same type: merged
    # A preset's window is not merged into a bucket the profile asks for.
    data = bucket.model_dump(mode="json", exclude_none=True)
    data["quotas"]["deployment"] = {"preset": "azure-standard", "models": ["gpt-4o"],
                                    "tpm": 100_000, "enforcement": {"type": "token_bucket"}}
    assert profile_from_dict(data).quotas["deployment"].enforcement.type == "token_bucket"
    assert profile_from_dict(bucket.model_dump(mode="json", exclude_none=True)) == bucket


def test_fixed_to_sliding_keeps_the_window() -> None:
    """Both window types read `window`: an overlay or a preset's profile switching fixed
    <-> sliding keeps the length (replacing the enforcement whole dropped web-research's
    10 s window to the 60 s default: the ceiling 25 -> 57, silently)."""
    merged = load_profile(WEB, ["quotas.deployment.enforcement={type: sliding_window}"])
    enf = merged.quotas["deployment"].enforcement
    assert (enf.type, enf.window) == ("sliding_window", 10.0)
    data = merged.model_dump(mode="json", exclude_none=True)
    data["quotas"]["deployment"] = {"preset": "azure-standard", "models": ["gpt-4o"],
                                    "tpm": 100_000, "enforcement": {"type": "sliding_window"}}
    preset = profile_from_dict(data).quotas["deployment"].enforcement
    plain = dict(data)
    plain["quotas"] = {"deployment": {"preset": "azure-standard", "models": ["gpt-4o"],
                                      "tpm": 100_000}}
    fixed = profile_from_dict(plain).quotas["deployment"].enforcement
    assert (preset.type, preset.window) == ("sliding_window", fixed.window)
    assert fixed.window != 60.0  # the preset's own window, not the default
