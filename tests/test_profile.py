"""Profile loading and validation: every error names file, line and key path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from capacity import ProfileError, load_profile
from capacity.profile.schema import CallStep, ParallelStep, Profile

from .conftest import PROFILES, ROOT

BASE = (ROOT / "profiles" / "web-research.yaml").read_text()


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _mutate(tmp_path: Path, old: str, new: str) -> Path:
    assert old in BASE, old
    return _write(tmp_path, BASE.replace(old, new, 1))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_shipped_profiles_validate(path: Path) -> None:
    """Every shipped profile loads into a typed, immutable Profile."""
    profile = load_profile(path)
    assert isinstance(profile, Profile)
    with pytest.raises(Exception, match="frozen"):
        profile.name = "x"  # type: ignore[misc]


def test_web_research_structure(web_research: Path) -> None:
    """The founding profile is analysis -> 3 parallel synthesis -> classifier."""
    p = load_profile(web_research)
    steps = p.session.turns["research"].steps
    assert [type(s) for s in steps] == [CallStep, ParallelStep, CallStep]
    assert p.session.cadence is not None
    assert (p.session.cadence.lower, p.session.cadence.upper) == (120.0, 180.0)
    assert p.quotas["deployment"].rpm is not None
    assert p.quotas["deployment"].rpm.limit == 150


BAD_CASES = [
    # (old, new, path fragment, message fragment)
    ("    rpm: 150", "    rpmm: 150", "quotas.deployment.rpmm", "did you mean 'rpm'"),
    ("    rpm: 150", "    rpm: 0", "quotas.deployment.rpm", "must be > 0"),
    ("    rpm: 150", "    rpm: -5", "quotas.deployment.rpm", "must be > 0"),
    ("    rpm: 150", "    rpm: lots", "quotas.deployment.rpm", "positive number"),
    ("            count: 3", "            count: 0.5", "steps[1].parallel.count", "integer"),
    ("            count: 3", "            count: -1", "steps[1].parallel.count", "≥ 0"),
    ("  cadence: {uniform: [2m, 3m]}", "  cadence: {uniform: [3m, 2m]}", "session.cadence",
     "low ≤ high"),
    ("      window: 10s", "      window: ten", "enforcement.window", "duration"),
    ("      window: 10s", "      window: 0s", "enforcement.window", "positive"),
    ("      window: 10s", "      window: 100ms", "quotas.deployment.rpm", "= 0 per window"),
    ("    tokens_per_second: 35", "    tokens_per_second: 0", "tokens_per_second", "> 0"),
    ("  max_retries: 2", "  max_retries: true", "retry.max_retries", "integer"),
    ("  max_retries: 2", "  max_retries: -1", "retry.max_retries", "must be ≥ 0"),
    ("  max_429_fraction: 0.01", "  max_429_fraction: 1.5", "targets.max_429_fraction",
     "less than 1"),
    ("  max_429_fraction: 0.01", "  max_429_fraction: 0", "targets.max_429_fraction",
     "greater than 0"),
    ("        - call:\n            name: query", "        - cal:\n            name: query",
     "steps[0]", "unknown step 'cal' (did you mean 'call'?)"),
    ("            model: gpt-4o\n            input_tokens: 1200",
     "            model: gpt4o\n            input_tokens: 1200", "steps[0].call.model",
     "did you mean 'gpt-4o'"),
    ("            input_tokens: 1200", "            input_tokens: -1200",
     "steps[0].call.input_tokens", "≥ 0"),
    ("            input_tokens: 1200", "            input_tokens: {gamma: 3}",
     "steps[0].call.input_tokens", "unknown distribution"),
    ("            max_tokens: 50", "            max_tokens: 3", "steps[2].call.output_tokens",
     "exceeds max_tokens"),
    ("  cadence: {uniform: [2m, 3m]}", "  cadence: {uniform: [2m, 3m]}\n  think_time: 10s",
     "session", "exactly one of 'think_time'"),
    # One message for both cases did not say which: a think time added to a cadence
    # profile (--set session.think_time=30s) read as if none were given.
    ("  cadence: {uniform: [2m, 3m]}", "  cadence: {uniform: [2m, 3m]}\n  think_time: 10s",
     "session", "or 'cadence': both are given; remove one (with --set, KEY=null removes a "
     "key)"),
    ("  cadence: {uniform: [2m, 3m]}", "", "session",
     "or 'cadence': neither is given"),
    ("    models: [gpt-4o]", "    models: [gpt-4]", "quotas.deployment.models[0]",
     "unknown model"),
    ("  jitter: 0.25", "  jitter: 2", "retry.jitter", "less than or equal"),
]


@pytest.mark.parametrize(("old", "new", "where", "what"), BAD_CASES,
                         ids=[f"{c[2]}:{c[3]}" for c in BAD_CASES])
def test_bad_values_name_file_line_and_key(tmp_path: Path, old: str, new: str, where: str,
                                           what: str) -> None:
    """Each malformed value raises one ProfileError naming file, line, key path and rule."""
    path = _mutate(tmp_path, old, new)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:"), msg
    assert where in msg, msg
    assert what in msg, msg
    # The line number points at (or just above) the edited text.
    line = int(re.match(rf"{re.escape(str(path))}:(\d+):", msg).group(1))  # type: ignore[union-attr]
    changed = BASE.replace(old, new, 1).splitlines()
    first_changed = next(i for i, (a, b) in enumerate(zip(changed, BASE.splitlines(),
                                                          strict=False)) if a != b) + 1
    assert abs(line - first_changed) <= 12, (line, first_changed, msg)


def test_unknown_key_lists_suggestion_and_allowed(tmp_path: Path) -> None:
    """An unknown key gets a did-you-mean and the allowed keys."""
    path = _mutate(tmp_path, "  max_retries: 2", "  max_retrys: 2")
    with pytest.raises(ProfileError, match=r"retry\.max_retrys: unknown key 'max_retrys' "
                       r"\(did you mean 'max_retries'\?\); allowed: max_retries"):
        load_profile(path)


@pytest.mark.parametrize(("text", "what"), [
    ("", "empty"),
    ("# only a comment\n", "empty"),
    ("models: [\n", "invalid YAML"),
    ("key: value: other\n", "invalid YAML"),
    ("- 1\n- 2\n", "mapping"),
    ("just a string\n", "mapping"),
    ("models: {}\n", "at least 1 item"),
])
def test_structurally_bad_files(tmp_path: Path, text: str, what: str) -> None:
    """Empty files, broken YAML and non-mappings are one-line errors."""
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert what in str(info.value)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_alias_bomb_is_rejected_quickly(tmp_path: Path) -> None:
    """A billion-laughs document is refused before it is expanded."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ProfileError, match="alias bomb"):
        load_profile(path)


def test_small_aliases_are_fine(tmp_path: Path) -> None:
    """Anchors used for reuse (a few expansions) are accepted."""
    text = BASE.replace("    research:\n      steps:", "    research: &research\n      steps:")
    text = text.replace("\nretry:", "    again:\n      <<: *research\n      weight: 0.5\n\nretry:")
    profile = load_profile(_write(tmp_path, text))
    assert set(profile.session.turns) == {"research", "again"}


def test_missing_file() -> None:
    """A missing file is a ProfileError, not an OSError."""
    with pytest.raises(ProfileError, match="no such file"):
        load_profile("does/not/exist.yaml")


def test_overlay_merges_in_order(tmp_path: Path, web_research: Path) -> None:
    """Later files override earlier ones key by key."""
    overlay = _write(tmp_path, "quotas:\n  deployment:\n    rpm: 300\n", "more.yaml")
    p = load_profile([web_research, overlay])
    assert p.quotas["deployment"].rpm is not None
    assert p.quotas["deployment"].rpm.limit == 300
    assert p.quotas["deployment"].enforcement.window == 10.0


def test_overlay_errors_name_the_overlay(tmp_path: Path, web_research: Path) -> None:
    """An error in an overlay points at the overlay's file and line."""
    overlay = _write(tmp_path, "# what-if\nquotas:\n  deployment:\n    rpm: 0\n", "bad.yaml")
    with pytest.raises(ProfileError, match=rf"^{re.escape(str(overlay))}:4: "
                       r"quotas\.deployment\.rpm: must be > 0"):
        load_profile([web_research, overlay])


def test_set_override_typed(web_research: Path) -> None:
    """--set values are parsed as YAML and validated like the file."""
    p = load_profile(web_research, ["quotas.deployment.enforcement.window=1s",
                                    "session.turns.research.steps.1.parallel.count=2"])
    assert p.quotas["deployment"].enforcement.window == 1.0
    step = p.session.turns["research"].steps[1]
    assert isinstance(step, ParallelStep)
    assert step.parallel.count.mean == 2


@pytest.mark.parametrize(("override", "what"), [
    ("quotas.deploymen.rpm=3", "did you mean 'deployment'"),
    ("quotas.deployment.rpm=0", "must be > 0"),
    ("quotas.deployment.rpmx=10", "did you mean 'rpm'"),
    ("session.turns.research.steps.9.call.model=x", "no such list index"),
    ("nonsense", "key.path=value"),
    # Merged key by key, {} changed nothing, silently (error hunt 3).
    ("session.turns={}", "session.turns={}: an empty mapping changes nothing"),
])
def test_set_override_errors(web_research: Path, override: str, what: str) -> None:
    """Bad overrides name the --set flag and the key."""
    with pytest.raises(ProfileError) as info:
        load_profile(web_research, [override])
    assert "--set" in str(info.value)
    assert what in str(info.value)


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    """A key given twice in one mapping is an error, not a silent last-one-wins."""
    path = _mutate(tmp_path, "    rpm: 150", "    rpm: 150\n    rpm: 300")
    with pytest.raises(ProfileError, match=r"quotas\.deployment\.rpm: duplicate key 'rpm' "
                       r"\(first defined at line \d+\)"):
        load_profile(path)


@pytest.mark.parametrize("steps", [
    "[{repeat: {count: 0, call: {model: m, input_tokens: 100, output_tokens: 10}}}]",
    "[{call: {model: m, input_tokens: 100, output_tokens: 0}}]",
    "[{optional: {probability: 0, call: {model: m, input_tokens: 1, output_tokens: 1}}}]",
])
def test_nothing_charged_is_an_input_error(tmp_path: Path, steps: str) -> None:
    """A profile whose calls never charge any quota is refused with the key, not a crash."""
    path = _write(tmp_path, "models: {m: {tokens_per_second: 100}}\n"
                  "quotas: {q: {models: [m], otpm: 1000}}\n"
                  f"session: {{think_time: 10s, turns: {{t: {{steps: {steps}}}}}}}\n")
    with pytest.raises(ProfileError, match=r"session\.turns: no call ever charges"):
        load_profile(path)


def test_set_can_create_new_quotas_and_dimensions(web_research: Path) -> None:
    """--set may add a quota or a dimension whose name resembles an existing one."""
    p = load_profile(web_research, ["quotas.deployment2.models=[gpt-4o]",
                                    "quotas.deployment2.rpm=300",
                                    "quotas.deployment.tpm.limit=1000000"])
    assert set(p.quotas) == {"deployment", "deployment2"}
    assert p.quotas["deployment"].tpm is not None


def test_set_errors_in_created_keys_blame_the_flag(web_research: Path) -> None:
    """An incomplete quota created by --set is reported against the flag, not the file."""
    with pytest.raises(ProfileError, match=r"^--set quotas\.new\.rpm=3: quotas\.new\.models"):
        load_profile(web_research, ["quotas.new.rpm=3"])


def test_extra_key_beside_a_step_kind(tmp_path: Path) -> None:
    """A stray key next to `call:` names the step, not a field inside the call."""
    path = _mutate(tmp_path, "        - call:\n            name: query-analysis",
                   "        - foo: 1\n          call:\n            name: query-analysis")
    with pytest.raises(ProfileError, match=r"steps\[0\]: unknown key 'foo' beside 'call'"):
        load_profile(path)


def test_overlay_replaces_a_distribution(tmp_path: Path, web_research: Path) -> None:
    """An overlay or --set can change a distribution's kind (no merging of its keys)."""
    overlay = _write(tmp_path, "session: {cadence: {exponential: 150s}}\n", "o.yaml")
    assert load_profile([web_research, overlay]).session.pause.kind == "exponential"
    p = load_profile(web_research, ["session.cadence.exponential=150s"])
    assert p.session.pause.kind == "exponential"


def test_set_digit_keys_in_mappings(tmp_path: Path) -> None:
    """A mapping key made of digits can be addressed by --set."""
    path = _write(tmp_path, "models: {m: {tokens_per_second: 50}}\n"
                  "quotas: {'7': {models: [m], rpm: 10}}\n"
                  "session: {think_time: 10s, turns: {t: {steps: [{call: {model: m, "
                  "input_tokens: 1, output_tokens: 1}}]}}}\n")
    assert load_profile(path, ["quotas.7.rpm=50"]).quotas["7"].rpm.limit == 50  # type: ignore[union-attr]


def test_preset_enforcement_merges_field_by_field(tmp_path: Path) -> None:
    """A quota's partial enforcement keeps the preset's other fields."""
    path = _write(tmp_path, "models: {m: {tokens_per_second: 50}}\n"
                  "quotas: {org: {preset: anthropic, models: [m], rpm: 50, "
                  "enforcement: {burst: 5s}}}\n"
                  "session: {think_time: 10s, turns: {t: {steps: [{call: {model: m, "
                  "input_tokens: 1, output_tokens: 1}}]}}}\n")
    enf = load_profile(path).quotas["org"].enforcement
    assert (enf.type, enf.burst) == ("token_bucket", 5.0)


@pytest.mark.parametrize(("old", "new", "line", "expect"), [
    ("rpm: 150", "rpm: 1" + "0" * 5000, 26,
     "quotas.deployment.rpm: invalid YAML value: a number of 5,001 digits"),
    ("name: web-research", "name: 2024-02-30", 14,
     "name: invalid YAML value: day is out of range for month"),
])
def test_an_unreadable_yaml_value_names_line_and_key(tmp_path: Path, old: str, new: str,
                                                     line: int, expect: str) -> None:
    """The error hunt: an integer past Python's 4,300 digits (or an impossible date) said
    'p.yaml: invalid YAML value: Exceeds the limit (4300 digits) for integer string
    conversion ...; use sys.set_int_max_str_digits() to increase the limit' — no line,
    no key, and advice for a Python programmer."""
    path = _mutate(tmp_path, old, new)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value) == f"{path}:{line}: {expect}"


@pytest.mark.parametrize(("text", "what"), [
    ("description: !!python/object:os.system x\n", "constructor"),
    ("? [a, b]\n: 1\n", "unhashable key"),
])
def test_unsafe_or_odd_yaml_is_one_line(tmp_path: Path, text: str, what: str) -> None:
    """Python tags and complex keys are refused in one line with a line number."""
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "\n" not in str(info.value) and what in str(info.value)
    assert str(info.value).startswith(f"{path}:")


@pytest.mark.parametrize(("name", "said"), [
    ("yes", "a boolean (yes/true/on)"),
    ("5", "a number (5)"),
    ("1.5e3", "a number (1500.0)"),  # YAML's value, not the text: quoting is the user's
    ("2024-01-01", "a date (2024-01-01)"),
    ("~", "null (null/~)"),
])
def test_a_name_yaml_reads_as_another_type(tmp_path: Path, name: str, said: str) -> None:
    """A mapping key YAML reads as a boolean, number, date or null: said at the mapping,
    not as pydantic's "models[1].[key]: input should be a valid string" (error hunt 3)."""
    path = tmp_path / "p.yaml"
    path.write_text(f"name: x\nmodels:\n  {name}: {{ttft: 1s, tokens_per_second: 10}}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(info.value) == (f"{path}:2: models: a name YAML reads as {said}, not a "
                               "string; quote it in the file")


@pytest.mark.parametrize(("line", "path", "said"), [
    ("name: no", "name", "a boolean (no/false/off)"),
    ("name: 2024", "name", "a number (2024)"),
    ("description: 2024-01-01", "description", "a date (2024-01-01)"),
])
def test_a_text_value_yaml_reads_as_another_type(tmp_path: Path, line: str, path: str,
                                                 said: str) -> None:
    """A text value YAML typed: said with the value as written, not "got False" or "got
    datetime.date(2024, 1, 1)" (Python's repr of what YAML made)."""
    text = (ROOT / "profiles" / "web-research.yaml").read_text()
    p = tmp_path / "p.yaml"
    p.write_text(re.sub(rf"^{path}: .*$", line, text, count=1, flags=re.M))
    with pytest.raises(ProfileError) as info:
        load_profile(p)
    assert str(info.value).startswith(f"{p}:") and str(info.value).endswith(
        f" {path}: a value YAML reads as {said}, not a string; quote it")


def test_a_top_level_name_yaml_reads_as_another_type(tmp_path: Path) -> None:
    """`yes:` at the top of a profile: said as for a nested name, not "keys must be
    strings, got True"."""
    p = tmp_path / "p.yaml"
    p.write_text("yes: 1\nname: x\n")
    with pytest.raises(ProfileError) as info:
        load_profile(p)
    assert str(info.value) == (f"{p}:1: a name YAML reads as a boolean (yes/true/on), "
                               "not a string; quote it")


def test_a_preset_rpm_derived_as_zero_says_so(tmp_path: Path) -> None:
    """azure-standard derives 6 RPM per 1,000 TPM: tpm 100 gave "quotas.q.rpm: must be
    > 0 ..., got 0", an rpm the profile never wrote."""
    text = ("models: {m: {tokens_per_second: 50, max_tokens: 64}}\n"
            "quotas: {q: {preset: azure-standard, models: [m], tpm: TPM}}\n"
            "session: {think_time: 10s, turns: {t: {steps: [{call: {model: m, "
            "input_tokens: 1, output_tokens: 1}}]}}}\n")
    with pytest.raises(ProfileError, match=re.escape(
            "quotas.q.preset: azure-standard derives rpm from tpm (6 RPM per 1,000 TPM): tpm "
            "100 gives 0 RPM; give rpm, or a tpm of at least 1,000")):
        load_profile(_write(tmp_path, text.replace("TPM", "100")))
    with pytest.raises(ProfileError, match=re.escape(  # 3 RPM: 0 per 10 s window
            "tpm 500 gives 3 RPM, 0 per 10s window; give rpm, or a tpm of at least 1,000")):
        load_profile(_write(tmp_path, text.replace("TPM", "500")))
    assert load_profile(_write(tmp_path, text.replace("TPM", "1000"))).quotas["q"].rpm.limit == 6  # type: ignore[union-attr]
