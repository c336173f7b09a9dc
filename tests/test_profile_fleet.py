"""Fleet keys in profiles: deployments, routes, cooldown — resolution and bad input.

Every new key has a bad-input test: one line naming file:line:key, exit 2, no traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from capacity import ProfileError, load_profile
from capacity.model.quota import charge_coefficients, limit_slots
from capacity.model.routing import Priority, Weighted, router_from_profile
from capacity.profile.schema import iter_calls, serving

from .conftest import ROOT

FLEET = ROOT / "profiles" / "ptu-spillover.yaml"


def _error(*sets: str, path: Path = FLEET) -> str:
    with pytest.raises(ProfileError) as err:
        load_profile(path, list(sets))
    return str(err.value)


def test_shipped_fleet_resolves() -> None:
    """Deployments resolve to their own quotas and their model's latency; the route
    becomes a priority router with spillover and a fallback chain."""
    p = load_profile(FLEET)
    assert p.routed
    assert p.quotas_for("ptu") == ["ptu"]
    assert p.quotas_for("paygo") == ["paygo"]
    assert p.quotas_for("gpt-4o") == []          # the model itself is behind no quota
    assert p.model_of("paygo").tokens_per_second.mean == 35
    assert serving(p, "gpt-4o") == ["ptu", "paygo", "mini"]
    router = router_from_profile(p)
    route = router.routes["gpt-4o"]
    assert isinstance(route.policy, Priority) and route.spills
    assert [d.name for d in route.deployments] == ["ptu", "paygo"]
    assert [d.quotas for d in route.deployments] == [("ptu",), ("paygo",)]
    assert router.chain("gpt-4o") == ["gpt-4o", "gpt-4o-mini"]


def test_charging_follows_the_serving_deployment() -> None:
    """The same call is charged on the PTU's token buckets or on pay-as-you-go's RPM,
    depending on the deployment serving it — never on both."""
    p = load_profile(FLEET)
    slots = limit_slots(p)
    call = next(c for c, _ in iter_calls(p.session.turns["research"].steps, ()))
    keys = [s.key for s in slots]
    on_ptu = charge_coefficients(p, call, slots, target="ptu")
    on_paygo = charge_coefficients(p, call, slots, target="paygo")
    ptu_slots = {k for k, r, i, m in zip(keys, on_ptu.request, on_ptu.input,
                                         on_ptu.max_tokens, strict=True) if r or i or m}
    paygo_slots = {k for k, r, i, m in zip(keys, on_paygo.request, on_paygo.input,
                                           on_paygo.max_tokens, strict=True) if r or i or m}
    assert ptu_slots == {"ptu.itpm", "ptu.otpm"}
    assert paygo_slots == {"paygo.rpm"}


def test_default_quotas_of_a_deployment() -> None:
    """Without `quotas`, a deployment is charged on the quotas listing it, else on those
    covering its model."""
    p = load_profile(FLEET, ["deployments.ptu.quotas=null", "deployments.paygo.quotas=null"])
    assert p.quotas_for("ptu") == ["ptu"] and p.quotas_for("paygo") == ["paygo"]
    p = load_profile(FLEET, ["deployments.extra={model: gpt-4o}",
                             "quotas.model-wide={models: [gpt-4o], rpm: 1000}",
                             "routes.gpt-4o.deployments=[ptu, paygo, extra]"])
    assert p.quotas_for("extra") == ["model-wide"]


def test_weighted_mapping_and_per_turn() -> None:
    p = load_profile(FLEET, ["routes.gpt-4o={policy: weighted, per_turn: true, "
                             "spillover: null, deployments: {ptu: 3, paygo: 1}}"])
    route = router_from_profile(p).routes["gpt-4o"]
    assert isinstance(route.policy, Weighted) and route.policy.per_turn
    assert [d.weight for d in route.deployments] == [3.0, 1.0]
    assert not route.spills


def test_models_serve_as_deployments() -> None:
    """A route may list model names directly (each its own deployment)."""
    p = load_profile(ROOT / "profiles" / "web-research.yaml",
                     ["routes.fast={policy: priority, deployments: [gpt-4o]}",
                      "session.turns.research.steps.0.call.model=fast"])
    assert serving(p, "fast") == ["gpt-4o"]
    assert p.quotas_for("gpt-4o") == ["deployment"]


def test_unrouted_profiles_are_unchanged() -> None:
    p = load_profile(ROOT / "profiles" / "web-research.yaml")
    assert not p.routed and not p.deployments and not p.routes and p.cooldown is None


BAD = [
    # (--set, key path in the message, words the rule must contain)
    ("routes.gpt-4o.deployments=[ptu, paygoo]", "routes.gpt-4o.deployments[1]",
     "unknown deployment 'paygoo' (did you mean 'paygo'?)"),
    ("routes.gpt-4o.deployments=[ptu, ptu]", "routes.gpt-4o.deployments[1]",
     "'ptu' is listed twice"),
    ("routes.gpt-4o.deployments=[]", "routes.gpt-4o.deployments",
     "a route needs at least one deployment"),
    ("routes.gpt-4o.deployments={ptu: 0, paygo: 0}", "routes.gpt-4o.deployments",
     "weights sum to zero"),
    ("routes.gpt-4o.deployments={ptu: -1}", "routes.gpt-4o.deployments",
     "must be ≥ 0"),
    ("routes.gpt-4o.deployments={ptu: abc}", "routes.gpt-4o.deployments",
     "expected a weight"),
    ("routes.gpt-4o.deployments=ptu", "routes.gpt-4o.deployments",
     "expected a list of deployment names or a mapping name → weight, got 'ptu'"),
    ("routes.gpt-4o.deployments=[ptu, 3]", "routes.gpt-4o.deployments",
     "expected deployment names, got 3"),
    ("routes.gpt-4o.policy=fastest", "routes.gpt-4o.policy", "'priority'"),
    ("routes.gpt-4o.per_turn=true", "routes.gpt-4o.per_turn",
     "applies to the weighted policy only"),
    ("routes.gpt-4o.spillover=maybe", "routes.gpt-4o.spillover", "bool"),
    ("routes.gpt-4o.fallbacks=[gpt-4o]", "routes.gpt-4o.fallbacks[0]",
     "a cycle of fallbacks: gpt-4o → gpt-4o"),
    ("routes.gpt-4o-mini.fallbacks=[gpt-4o]", "routes.gpt-4o.fallbacks[0]",
     "a cycle of fallbacks: gpt-4o → gpt-4o-mini → gpt-4o"),
    ("routes.gpt-4o.fallbacks=[gpt-4o-mni]", "routes.gpt-4o.fallbacks[0]",
     "unknown model 'gpt-4o-mni' (did you mean 'gpt-4o-mini'?)"),
    ("routes.gpt-4o.weights=[1, 2]", "routes.gpt-4o.weights", "unknown key 'weights'"),
    ("deployments.ptu.model=gpt-5", "deployments.ptu.model", "unknown model 'gpt-5'"),
    ("deployments.ptu.quotas=[ptx]", "deployments.ptu.quotas[0]",
     "unknown quota 'ptx' (did you mean 'ptu'?)"),
    ("deployments.ptu.region=eastus", "deployments.ptu.region", "unknown key 'region'"),
    ("deployments.gpt-4o-mini={model: gpt-4o}", "deployments.gpt-4o-mini",
     "also the name of a model"),
    ("quotas.ptu.models=[ptu, ptv]", "quotas.ptu.models[1]", "unknown model 'ptv'"),
    ("session.turns.research.steps.0.call.model=gpt4o",
     "session.turns.research.steps[0].call.model",
     "unknown model 'gpt4o' (did you mean 'gpt-4o'?)"),
    ("cooldown.threshold=1", "cooldown.threshold", "less than 1"),
    ("cooldown.threshold=-0.1", "cooldown.threshold", "greater than or equal to 0"),
    ("cooldown.min_calls=0", "cooldown.min_calls", "≥ 1"),
    ("cooldown.window=0", "cooldown.window", "positive duration"),
    ("cooldown.seconds=-5", "cooldown.seconds", "a duration"),
    ("cooldown.threshhold=0.5", "cooldown.threshhold", "did you mean 'threshold'"),
    ("cooldown=[1]", "cooldown", "mapping"),
]


@pytest.mark.parametrize(("setting", "where", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_fleet_keys(setting: str, where: str, words: str) -> None:
    """One line naming the file, a line number and the key path."""
    msg = _error(setting)
    assert "\n" not in msg
    assert f": {where}: " in msg, msg
    assert words in msg, msg


def test_max_tokens_needed_by_a_deployment_quota() -> None:
    """A deployment whose quota reserves max_tokens needs one for every call it may
    serve — named with the deployment."""
    msg = _error("models.gpt-4o.max_tokens=null",
                 "session.turns.research.steps.0.call.max_tokens=null")
    assert "session.turns.research.steps[0].call.max_tokens" in msg
    assert "(deployment 'ptu')" in msg


def test_error_lines_point_into_the_file(tmp_path: Path) -> None:
    """Errors from the file itself carry its line."""
    text = FLEET.read_text().replace("deployments: [ptu, paygo]", "deployments: [ptu, payg]")
    bad = tmp_path / "fleet.yaml"
    bad.write_text(text)
    msg = _error(path=bad)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "[ptu, payg]" in t)
    assert msg.startswith(f"{bad}:{line}: routes.gpt-4o.deployments[1]: unknown deployment")


def test_cli_exit_2_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "capacity", "validate", str(FLEET), "--set",
                          "routes.gpt-4o.fallbacks=[gpt-4o]"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "routes.gpt-4o.fallbacks[0]: a cycle of fallbacks" in out.stderr


def test_cooldown_switch_words() -> None:
    """``cooldown: off`` (YAML's false) is no cooldown, ``cooldown: on`` LiteLLM's
    defaults; another scalar is still one clear error."""
    load = load_profile
    ptu = ROOT / "profiles" / "ptu-spillover.yaml"
    assert load(ptu, ["cooldown=off"]).cooldown is None
    on = load(ptu, ["cooldown=on"]).cooldown
    assert on is not None and (on.threshold, on.min_calls, on.window, on.seconds) == (
        0.5, 5, 60.0, 5.0)
    # Quoted (and JSON) spellings mean the same.
    assert load(ptu, ['cooldown="off"']).cooldown is None
    assert load(ptu, ['cooldown="on"']).cooldown == on
    with pytest.raises(ProfileError, match="cooldown"):
        load(ptu, ["cooldown=3"])
