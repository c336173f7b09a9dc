"""Agent mode: sessions post their user turns to the team's own agent service.

Each session keeps the profile's pacing (think time or cadence, steady-state start) but,
instead of calling the LLM itself, posts one JSON body per turn to ``--agent-url`` and
waits for the answer to end (a JSON body, or a ``text/event-stream`` read to its end): that
is the turn's latency as a user sees it; a non-2xx answer is a failed turn. The agent's
own LLM client points at ``--target`` (``capacity serve``), and the LLM-side figures —
attempts, 429s, retries the SDK announced — are read from the mock's ``/metrics`` at the
start and end of the measured interval.

Body template (``--agent-template``): a JSON text in which the strings ``"{session}"``,
``"{turn}"`` and ``"{message}"`` are replaced; default
``{"session_id": "{session}", "message": "{message}"}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import re

from ..profile.schema import Profile
from .driver import DriverConfig, SessionDriver, _origin, _short, session_rngs
from .measure import TurnRecord
from .plan import iter_calls
from .protocol import TargetError, filler

__all__ = ["DEFAULT_TEMPLATE", "AgentDriver", "agent_deployments", "agent_metrics",
           "parse_prometheus"]

DEFAULT_TEMPLATE = '{"session_id": "{session}", "message": "{message}"}'


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum of the mock's counters we read: requests by status, retries announced; for a
    fleet the gateway's attempts per deployment and outcome (``gw:<deployment>:<outcome>``)
    and its fallbacks (``gw_fallbacks``)."""
    out = {"ok": 0.0, "rejected": 0.0, "retried": 0.0}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r'^(\w+)(\{[^}]*\})?\s+([0-9.eE+-]+)$', line.strip())
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        if name == "capacity_mock_requests_total":
            if 'status="200"' in labels:
                out["ok"] += value
            elif 'status="429"' in labels:
                out["rejected"] += value
        elif name == "capacity_mock_retry_count_seen_total" and 'retry="0"' not in labels:
            out["retried"] += value
        elif name == "capacity_mock_gateway_attempts_total":
            lab = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels))
            key = f"gw:{lab.get('deployment', '')}:{lab.get('outcome', '')}"
            out[key] = out.get(key, 0.0) + value
        elif name == "capacity_mock_gateway_fallbacks_total":
            out["gw_fallbacks"] = out.get("gw_fallbacks", 0.0) + value
    return out


def agent_deployments(llm: dict[str, float] | None) -> dict[str, dict[str, int]]:
    """Per deployment, from the mock-as-gateway's counters over the measured interval:
    ``sent``, ``admitted``, ``rejected`` (429s a client saw), ``spilled`` (``fell_back``
    is not split by deployment there: 0; the total is in ``gw_fallbacks``)."""
    out: dict[str, dict[str, int]] = {}
    for key, v in (llm or {}).items():
        if not key.startswith("gw:"):
            continue
        _, dep, outcome = key.split(":", 2)
        if outcome not in ("admitted", "rejected", "spilled"):
            continue
        d = out.setdefault(dep, {"sent": 0, "admitted": 0, "rejected": 0, "spilled": 0,
                                 "fell_back": 0})
        d[outcome] += int(v)
        d["sent"] += int(v)
    return out


class AgentDriver(SessionDriver):
    """Sessions that talk to an agent service (see the module docstring)."""

    def __init__(self, profile: Profile, cfg: DriverConfig, ids: list[int],
                 origin_epoch: float | None = None, *, agent_url: str,
                 template: str | None = None) -> None:
        super().__init__(profile, cfg, ids, origin_epoch)
        self.agent_url = agent_url
        self.template = template or DEFAULT_TEMPLATE
        try:
            json.loads(self._body(0, 0, "x"))
        except ValueError as e:
            raise TargetError(f"--agent-template is not JSON once filled in: {e}") from None
        self._scrapes: list[dict[str, float]] = []

    def allowed_origins(self) -> set[tuple[str, str, int | None]]:
        """The target's origin (its /metrics and /admin/reset) and the agent's."""
        return {*super().allowed_origins(), _origin(self.agent_url)}

    def peer(self) -> str:
        """The sessions post to the agent, not to the target."""
        return f"the agent {self.agent_url} (--agent-url)"

    def _body(self, session: int, turn: int, message: str) -> str:
        return (self.template.replace("{session}", f"session-{session}")
                .replace("{turn}", str(turn)).replace("{message}", message))

    async def _metrics(self) -> dict[str, float]:
        async with self._http.get("/metrics") as resp:
            text = await resp.text()
            if resp.status != 200:
                raise TargetError(f"the target has no /metrics (HTTP {resp.status}): the "
                                  "LLM side of --agent-url needs capacity serve as --target")
        return parse_prometheus(text)

    async def _wait_end(self) -> None:
        scraper = asyncio.create_task(self._scrape())
        try:
            await super()._wait_end()
            if self.fatal is None:
                # The second scrape is due at the end of the measured interval, which is
                # also when the wait above may return: let it finish.
                await asyncio.wait_for(asyncio.shield(scraper), 10.0)
        finally:
            scraper.cancel()
        if len(self._scrapes) == 2:
            a, b = self._scrapes
            # A counter first seen in the second scrape (a deployment's first 429) was 0.
            self.rec.llm = {k: b.get(k, 0.0) - a.get(k, 0.0) for k in a.keys() | b.keys()}

    async def _scrape(self) -> None:
        try:
            await self.sleep_until(self.t0)
            self._scrapes.append(await self._metrics())
            await self.sleep_until(self.t1)
            self._scrapes.append(await self._metrics())
        except TargetError as e:
            self._fail(e)

    async def _session_loop(self, k: int) -> None:
        pop, p, j = self.population(k)
        sampler = self.samplers[pop]
        rng, _ = session_rngs(self.cfg.seed, j, p)
        await self.sleep_until(sampler.first_start(rng))
        turn = 0
        while True:
            start = self.now()
            _, plan = sampler.draw_turn(rng)  # same stream as raw mode: same pauses
            pause = sampler.draw_pause(rng)
            rec = TurnRecord(start, math.nan)
            measured = self.t0 <= start < self.t1
            if measured:
                self.measured_open += 1
            self._open_starts[k] = start
            self.in_turn += 1
            try:
                ok = await self._post(k, turn, len(iter_calls(plan)))
            finally:
                self.in_turn -= 1
            rec.end = self.now()
            rec.failed = not ok
            del self._open_starts[k]
            self.rec.turns.append(rec.as_tuple())
            if self.cfg.populations:
                self.rec.turn_populations.append(pop)
            if ok:
                self.rec.successes.append((rec.end, 0))
            if measured:
                self.measured_open -= 1
            turn += 1
            await self.sleep_until(sampler.next_start(start, rec.end, pause))

    async def _post(self, k: int, turn: int, calls: int) -> bool:
        message = f"turn {turn}: " + filler(80, turn)
        async with self._http.post(self.agent_url, data=self._body(k, turn, message),
                                   headers={"content-type": "application/json"}) as resp:
            # Read to the end: JSON, or a server-sent event stream until it closes.
            raw = await resp.read()
            if resp.status >= 500 or resp.status == 429:
                return False
            if resp.status != 200:
                raise TargetError(f"the agent answered HTTP {resp.status}: {_short(raw)}")
            if "json" in (resp.content_type or ""):
                try:
                    json.loads(raw)
                except ValueError:
                    raise TargetError(f"the agent's answer is not JSON: {_short(raw)}"
                                      ) from None
            return True


def agent_metrics(m: dict[str, float], llm: dict[str, float] | None, horizon: float,
                  turns: int) -> None:
    """Fill the LLM-side metrics of an agent run from the mock's counters (in place)."""
    if not llm:
        return
    attempts = llm["ok"] + llm["rejected"]
    m["attempt_429_fraction"] = llm["rejected"] / attempts if attempts else math.nan
    m["goodput_calls_per_min"] = llm["ok"] / horizon * 60.0
    m["attempts_per_call"] = attempts / llm["ok"] if llm["ok"] else math.nan
    m["calls_per_turn"] = llm["ok"] / turns if turns else math.nan
    m["turn_429_fraction"] = math.nan  # not observable from outside the agent
    m["call_failure_fraction"] = math.nan
    m["pacing_wait_mean_s"] = math.nan
    m["sdk_retries_seen"] = llm["retried"]
    deps = agent_deployments(llm)
    if deps:  # a fleet behind the mock-as-gateway: its routing figures
        sends = sum(d["sent"] for d in deps.values())
        m["sends_per_attempt"] = sends / attempts if attempts else math.nan
        m["spill_fraction"] = (sum(d["spilled"] for d in deps.values()) / sends
                               if sends else math.nan)
        m["fallback_fraction"] = (llm.get("gw_fallbacks", 0.0) / llm["ok"]
                                  if llm["ok"] else math.nan)

