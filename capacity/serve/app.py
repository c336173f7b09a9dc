"""The mock provider: one asyncio process, a real socket, the profile's quotas enforced.

Routes
------
* ``POST /v1/chat/completions`` — OpenAI Chat Completions (headers in ``provider``'s
  dialect, OpenAI by default);
* ``POST /openai/deployments/{deployment}/chat/completions?api-version=…`` — Azure: the
  deployment names a deployment or model of the profile (or, as before fleets, a quota:
  its first model answers);
* ``POST /openai/responses?api-version=…``, ``POST /openai/v1/chat/completions`` and
  ``POST /openai/v1/responses`` — Azure's Responses API and its v1 API (the body's
  ``model``), in Azure's error shape and header subset;
* ``POST /v1/messages`` — Anthropic Messages (any ``anthropic-version``, and none: the
  mock, lenient on headers as on ``x-api-key``, answers raw clients the SDKs' way);
* ``POST /v1/messages/count_tokens`` — Anthropic's token count (the mock's estimate);
* ``POST /v1/responses`` — OpenAI Responses;
* ``GET /v1/models``, ``GET /v1/models/{model}`` — the profile's models, one model
  (Anthropic's shape when the request carries ``anthropic-version``);
* ``GET /metrics`` (Prometheus text), ``POST /admin/reset`` (fresh quota state; with
  ``?metrics=true`` also zero the counters), ``GET /health``.

Fleets (``deployments`` / ``routes`` in the profile): a request names a DEPLOYMENT (the
Azure path's segment, or the body's ``model``) and is admitted on that deployment's own
quotas (:meth:`capacity.profile.schema.Profile.quotas_for`), answered at its model's
latency, with its own rate-limit headers and ``x-capacity-deployment`` naming it. A
request naming a routed LOGICAL model (a key of ``routes``) finds the mock acting as the
gateway in front of the fleet (Azure API Management backend pool, LiteLLM proxy): it
chooses with THE routing rule (:func:`capacity.model.routing.router_from_profile`, one
:class:`~capacity.model.routing.Router` for the server: round-robin position and
cooldown are the gateway's), spills within the request — the client sees a 429 only
when every deployment it tried refused, with the headers of the last one tried — and
names the deployment that answered in ``x-capacity-deployment`` (those that refused
before it, in order, in ``x-capacity-spilled``; the one whose refusal sent the request to
a fallback model in ``x-capacity-fell-back-from``). Retries are the client's: the gateway
reads the SDK's ``x-stainless-retry-count`` as the attempt number, so on the client's
last attempt (``retry.max_retries``) a refused route falls back to its ``fallbacks``
within the request, whose own retries the gateway then waits out itself by
:class:`capacity.model.retry.RetryPolicy` (the simulator's timing; a client that does not
send the header is always on its first attempt and never falls back). Draws: one uniform
of the server's generator per choice; a turn's draw (``per_turn``) is a hash of the
request's session and turn (:func:`_ident`), so a turn's calls stay on one deployment.

A generation request is validated (a provider-shaped 400/404/413 naming the field
otherwise), its behaviour drawn (:mod:`.behaviour`), its content decided by the history
rule (:mod:`.history`), and then — at arrival — admitted or refused by
:class:`capacity.limits.Limiter`, the simulator's own rules, at ``clock.now()`` model
seconds. A refusal is the provider's 429 with ``retry-after`` / ``retry-after-ms`` and
rate-limit headers from :func:`capacity.limits.render_headers`; an admitted answer
carries the remaining/reset headers, takes ``ttft + tokens / tokens_per_second`` (÷ the
time scale) and is settled with its actual output when it ends (also when the client
goes away mid-stream).

Why aiohttp: measured here (one-off, 2-core machine; a POST endpoint that parses the body
with orjson and answers JSON, 32 connections from an aiohttp client in another process),
aiohttp 3.14 served 15.1 k tiny / 13.1 k agent-sized (4.3 KB) requests per server
CPU-second, starlette 1.10 + uvicorn 0.54 (default install, h11 parser) 5.7 k / 5.3 k;
``../shared/reference`` measured uvicorn with uvloop + httptools at ≈ 12 k against aiohttp +
uvloop at 10–12 k: starlette+uvicorn is at best a tie, with three dependencies instead
of one. aiohttp also gives direct control of the listen backlog and of handler
cancellation when a client disconnects, and it is the load generator's HTTP client.
The whole mock costs ≈ 250 µs of CPU per agent request (``benchmarks/bench_serve.py``),
so the framework is not the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from capacity.fit.jsonl import RequestLogWriteError
from capacity.limits import (
    Clock,
    Decision,
    Limiter,
    Request,
    SlotSnapshot,
    TokenBucket,
    WallClock,
    render_headers,
)
from capacity.model.quota import REQUEST_DIMENSIONS, output_cap
from capacity.model.retry import RetryPolicy
from capacity.model.routing import (
    CallPath,
    Next,
    Router,
    UsageBased,
    router_from_profile,
    snapshots_for,
)
from capacity.profile.schema import Profile
from capacity.serve import anthropic_messages, openai_chat, responses
from capacity.serve.behaviour import (
    Hints,
    ModelBehaviour,
    Plan,
    read_hints,
)
from capacity.serve.errors import Api, ApiError, bad, error_body
from capacity.serve.history import decide, new_id
from capacity.serve.metrics import LAG_TICK_S, Metrics, retry_bucket
from capacity.serve.wire import (
    Choice,
    JSONDecodeError,
    Parsed,
    Usage,
    dumps,
    estimate_prompt_tokens,
    loads,
)

__all__ = ["MockServer", "ServeOptions", "ServerThread", "build_app"]

log = logging.getLogger("capacity.serve")

_DIM_TEXT = {"rpm": "requests per min (RPM)", "rpd": "requests per day (RPD)",
             "tpm": "tokens per min (TPM)", "tpd": "tokens per day (TPD)",
             "itpm": "input tokens per min (ITPM)", "otpm": "output tokens per min (OTPM)"}
_UNIT_TEXT = {"rpm": "requests", "rpd": "requests", "tpm": "tokens", "tpd": "tokens",
              "itpm": "input tokens", "otpm": "output tokens"}
# /admin/reset's clock_offset_s, at most: Unix time fits, with the provider's clock still
# exact to 2 µs (at 1e308 s, t + offset lost every digit of t and windows with it).
_MAX_CLOCK_OFFSET_S = 1e10
# /admin/reset?metrics=...: absent or empty is false.
_FLAG = {"": False, "0": False, "false": False, "no": False,
         "1": True, "true": True, "yes": True}


@dataclass
class ServeOptions:
    """How the mock runs.

    Attributes
    ----------
    time_scale : K; the mock runs K times faster: latencies, windows, retry-after and
        header durations are divided by K (model seconds = wall seconds × K).
    seed : seed of the generator behind every draw (None: fresh entropy, see ``.seed``).
    provider : header dialect (and error shape) for paths that do not imply one
        (``/v1/chat/completions``, ``/v1/responses``).
    tool_probability : chance that an ``auto`` turn with tools answers with a tool call.
    tool_calls : calls per tool-call answer when parallel calls are allowed (None: the
        profile's fan-out for the model, else 1).
    max_body_bytes : larger request bodies get a 413.
    stream_interval_s : wall seconds between two SSE events of one stream (tokens are
        grouped so that a stream costs the server a few events per second, not one per
        token).
    backlog : listen backlog (thousands of clients may connect at once).
    clock : the limiter's clock (model seconds); default ``WallClock(time_scale)``.
        Tests pass a :class:`capacity.limits.ManualClock` for deterministic decisions.
    log : a :class:`capacity.fit.jsonl.RequestLogWriter` (``capacity serve --log``): one
        request-log line per answered request (see :meth:`MockProvider.log_line`).
    """

    time_scale: float = 1.0
    seed: int | None = None
    provider: str = "openai"
    tool_probability: float = 1.0
    tool_calls: int | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    stream_interval_s: float = 0.05
    backlog: int = 4096
    clock: Clock | None = field(default=None, repr=False)
    log: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not MIN_TIME_SCALE <= self.time_scale <= MAX_TIME_SCALE:
            raise ValueError(f"time scale must be in [{MIN_TIME_SCALE:g}, {MAX_TIME_SCALE:g}], "
                             f"got {self.time_scale}")
        if self.provider not in ("openai", "azure", "anthropic"):
            raise ValueError(f"provider must be openai, azure or anthropic, got "
                             f"{self.provider!r}")
        if not 0.0 <= self.tool_probability <= 1.0:
            raise ValueError(f"tool probability must be in [0, 1], got {self.tool_probability}")
        if self.tool_calls is not None and not 1 <= self.tool_calls <= MAX_TOOL_CALLS:
            raise ValueError(f"tool calls must be in [1, {MAX_TOOL_CALLS}], "
                             f"got {self.tool_calls}")
        if self.seed is None:
            entropy = np.random.SeedSequence().entropy
            assert isinstance(entropy, int)
            self.seed = entropy % (2**63)


class _Endpoint:
    """One generation API: its body module, error shape and header dialect."""

    def __init__(self, name: str, module: ModuleType, api: Api, dialect: str) -> None:
        self.name, self.module, self.api, self.dialect = name, module, api, dialect


# Time compression bounds: at K = 1,000,000 a 1 s window lasts 1 µs of wall time (the lag
# guards then refuse any measurement; tests with a manual clock use it to make answers
# instant); below 0.001 a
# minute of behaviour takes 17 hours.
MIN_TIME_SCALE, MAX_TIME_SCALE = 0.001, 1_000_000.0
# Tool calls in one answer (OpenAI's parallel tool calls are a handful in practice): a bound
# so that one answer cannot take the server's memory.
MAX_TOOL_CALLS = 64


class MockProvider:
    """The request handlers and the state they share (limiter, clock, generator, metrics)."""

    def __init__(self, profile: Profile, options: ServeOptions | None = None) -> None:
        self.profile = profile
        self.options = options or ServeOptions()
        self.k = float(self.options.time_scale)
        self.clock: Clock = self.options.clock or WallClock(time_scale=self.k)
        self.limiter = Limiter.from_profile(profile)
        self.rng = np.random.default_rng(self.options.seed)
        self.metrics = Metrics()
        self.behaviours = {m: ModelBehaviour(profile, m, self.options.tool_calls)
                           for m in (*profile.models, *profile.deployments)}
        # The gateway (requests naming a routed logical model): one router for the server.
        self.router: Router | None = router_from_profile(profile) if profile.routes else None
        self.retry = RetryPolicy.from_profile(profile)
        p = self.options.provider
        self.ep_chat = _Endpoint("chat", openai_chat, "azure" if p == "azure" else "openai", p)
        self.ep_azure = _Endpoint("azure", openai_chat, "azure", "azure")
        self.ep_messages = _Endpoint("messages", anthropic_messages, "anthropic", "anthropic")
        self.ep_responses = _Endpoint("responses", responses,
                                      "azure" if p == "azure" else "openai", p)
        self.ep_azure_responses = _Endpoint("responses", responses, "azure", "azure")

    # -- plumbing ----------------------------------------------------------------------

    def _error(self, api: Api, err: ApiError, request: web.Request,
               headers: dict[str, str] | None = None) -> web.Response:
        # One id per request: the one its headers carry already (a 429 of the generation
        # path), else a new one — header and body name the same request.
        rid = (headers or {}).get("x-request-id") or new_id("req_")
        h = {"x-request-id": rid, **(headers or {})}
        if api == "anthropic":
            h["request-id"] = rid
        if err.status != 429:
            self.metrics.bad_requests[(api, err.status)] += 1
            # One line per refused request, no traceback: the client's mistake, not ours.
            log.warning("%d %s %s: %s", err.status, request.method, request.path, err.message)
        resp = web.Response(status=err.status, body=dumps(error_body(api, err, rid)),
                            content_type="application/json", headers=h)
        if request.content.exception() is not None:
            # A body read only part way (its content-encoding did not decode): answer,
            # then close the connection. aiohttp drained the rest after the answer, met the
            # decoding error again and logged it as an "Unhandled exception" traceback.
            request.content.feed_eof()
            resp.force_close()
        return resp

    async def _read(self, request: web.Request) -> bytes:
        """The body's bytes, decoded by its content-encoding; a 400/413 naming why not."""
        limit = self.options.max_body_bytes
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, f"body: request too large (the limit is {limit} bytes)",
                           param="body", code="request_too_large") from None
        except RequestPayloadError:
            # A body its content-encoding does not decode (not gzip after all, or br
            # without brotli installed) is the client's mistake, not the mock's.
            encoding = request.headers.get("content-encoding", "")[:40]
            if encoding:
                raise bad("content-encoding", f"the body is not {encoding!r} data the "
                          "mock can decode (gzip, deflate, and br where brotli is "
                          "installed; or send it uncompressed)") from None
            raise bad("body", "could not be read (a malformed chunked transfer or a "
                      "length the body does not match)") from None

    async def _body(self, request: web.Request) -> Any:
        if "content-type" in request.headers:
            # A declared non-JSON body is a client mistake (curl -d sends a form type):
            # refused naming the header. A raw client that sends none is read as JSON.
            mime = request.content_type
            if not request.headers["content-type"].strip():
                # aiohttp reads an empty header as application/octet-stream: say what
                # was sent, not what it was taken for.
                raise bad("content-type", "the header is empty: the body must be JSON sent "
                          "as application/json")
            if mime != "application/json" and not mime.endswith("+json"):
                # The header as sent: aiohttp reads 'application/json, text/plain' as
                # application/octet-stream, which the client never wrote.
                raise bad("content-type", f"expected application/json, got "
                          f"{request.headers['content-type'][:100]!r}: the "
                          "body must be JSON sent as application/json (curl -d needs "
                          "-H 'content-type: application/json')")
        limit = self.options.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, f"body: request too large ({request.content_length} bytes; "
                           f"the limit is {limit})", param="body", code="request_too_large")
        raw = await self._read(request)
        if not raw:
            raise bad("body", "empty; expected a JSON object")
        try:
            return loads(raw)
        except (JSONDecodeError, ValueError, UnicodeDecodeError) as e:
            raise bad("body", f"not valid JSON ({str(e).splitlines()[0][:120]})") from None

    # -- routes ------------------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``."""
        return await self._handle(request, self.ep_chat, None)

    async def azure_chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /openai/deployments/{deployment}/chat/completions``."""
        return await self._handle(request, self.ep_azure, request.match_info["deployment"])

    async def azure_v1_chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /openai/v1/chat/completions``: Azure's v1 API (``OpenAI(base_url=
        ".../openai/v1/")``, the model in the body, no api-version)."""
        return await self._handle(request, self.ep_azure, None)

    async def azure_responses(self, request: web.Request) -> web.StreamResponse:
        """``POST /openai/responses?api-version=`` (``AzureOpenAI(...).responses``) and
        ``POST /openai/v1/responses`` (Azure's v1 API)."""
        return await self._handle(request, self.ep_azure_responses, None)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/messages``."""
        return await self._handle(request, self.ep_messages, None)

    async def count_tokens(self, request: web.Request) -> web.Response:
        """``POST /v1/messages/count_tokens``: the prompt tokens a Messages request
        would be charged, no quota spent — the ``x-capacity-input-tokens`` hint when
        sent (as ``/v1/messages`` charges it), else the estimate from its prompt fields
        (:func:`capacity.serve.wire.estimate_prompt_tokens`, as ``/v1/messages``), so it
        equals that request's ``input_tokens + cache_read_input_tokens``;
        LangChain's ``ChatAnthropic.get_num_tokens_from_messages`` calls it."""
        ep = self.ep_messages
        try:
            hints = read_hints(request.headers)
            body = await self._body(request)
            # Validated as a Messages body, whose max_tokens this endpoint does not take.
            parsed = anthropic_messages.parse(
                {"max_tokens": 1, **body} if isinstance(body, dict) else body)
            self._resolve(ep, parsed.model, False)
        except ApiError as e:
            return self._error(ep.api, e, request)
        tokens = (estimate_prompt_tokens(body, anthropic_messages.PROMPT_FIELDS)
                  if hints.input_tokens is None else hints.input_tokens)
        return web.Response(body=dumps({"input_tokens": tokens}),
                            content_type="application/json")

    async def responses(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/responses``."""
        return await self._handle(request, self.ep_responses, None)

    def _model_names(self) -> list[str]:
        """The profile's model, deployment and route names, each once, in order."""
        p = self.profile
        return list(dict.fromkeys((*p.models, *p.deployments, *p.routes)))

    @staticmethod
    def _model_entry(name: str, anthropic: bool) -> dict[str, Any]:
        """One model object in the dialect the client speaks (Anthropic's or OpenAI's)."""
        if anthropic:
            return {"type": "model", "id": name, "display_name": name,
                    "created_at": "2026-01-01T00:00:00Z"}
        return {"id": name, "object": "model", "created": 0, "owned_by": "capacity-mock"}

    async def models(self, request: web.Request) -> web.Response:
        """``GET /v1/models``: the profile's models."""
        names = self._model_names()
        anthropic = "anthropic-version" in request.headers
        entries = [self._model_entry(m, anthropic) for m in names]
        data: dict[str, Any] = (
            {"data": entries, "has_more": False, "first_id": names[0], "last_id": names[-1]}
            if anthropic else {"object": "list", "data": entries})
        return web.Response(body=dumps(data), content_type="application/json")

    async def model(self, request: web.Request) -> web.Response:
        """``GET /v1/models/{model}``: one of the profile's models (the SDKs'
        ``models.retrieve``), or a 404 in the dialect the client speaks."""
        name = request.match_info["model"]
        anthropic = "anthropic-version" in request.headers
        if name not in self._model_names():
            err = (ApiError(404, f"model: {name}") if anthropic else
                   ApiError(404, f"The model '{name}' does not exist", param="model",
                            code="model_not_found"))
            return self._error("anthropic" if anthropic else "openai", err, request)
        return web.Response(body=dumps(self._model_entry(name, anthropic)),
                            content_type="application/json")

    async def metrics_text(self, request: web.Request) -> web.Response:
        """``GET /metrics``."""
        # The time scale too, for a load generator run without --reset (see reset()).
        scale = ("# HELP capacity_mock_time_scale K: the mock runs K times faster\n"
                 "# TYPE capacity_mock_time_scale gauge\n"
                 f"capacity_mock_time_scale {self.k:g}\n")
        return web.Response(text=self.metrics.render() + scale, content_type="text/plain",
                            charset="utf-8", headers={"x-prometheus-format": "0.0.4"})

    async def reset(self, request: web.Request) -> web.Response:
        """``POST /admin/reset``: fresh quota state and gateway state (cooldowns,
        round-robin positions), and counters with ``?metrics=true``.

        An optional JSON body ``{"bucket_deficit": {"<slot key>": units}}`` starts token
        buckets part-used instead of full — the simulator's steady-state start, which
        ``capacity loadtest`` sends before each N so that both start alike (a full bucket
        of a slow quota takes minutes of over-demand to drain, longer than a warm-up).

        Model time restarts at 0 and fixed windows fall at multiples of their length on
        the provider's clock, ``clock_offset_s`` (in the body; default 0) at time 0 — the
        simulator's window phase, which ``capacity loadtest`` draws from its seed. Before,
        the phase was the time since the mock started: the same seed did not give the
        same 429s twice.
        """
        flag = request.query.get("metrics", "").lower()
        if flag not in _FLAG:  # a typo must not silently keep the counters
            return self._error("openai", bad("metrics", "expected true or false (1/0, yes/no), "
                                             f"got {request.query['metrics']!r}"), request)
        deficit: dict[str, float] = {}
        offset = 0.0
        try:
            raw = await self._read(request)
        except ApiError as e:
            return self._error("openai", e, request)
        if raw.strip():
            try:
                body = loads(raw)
            except (JSONDecodeError, ValueError, UnicodeDecodeError) as e:
                # The body's syntax, not a field: "bucket_deficit: unexpected character"
                # blamed a field for a NaN or a truncated body.
                return self._error("openai", bad(
                    "body", f"not valid JSON ({str(e).splitlines()[0][:120]})"), request)
            try:
                deficit = _bucket_deficit(body, self.limiter)
                offset = _clock_offset(body)
            except ApiError as e:
                return self._error("openai", e, request)
        restart = getattr(self.clock, "restart", None)
        if restart is not None:
            restart()
        self.limiter.clock_offset_s = offset
        self.limiter.reset()
        if self.router is not None:  # the gateway's state too: cooldowns, RR positions
            self.router = router_from_profile(self.profile)
        self.metrics.lag.clear()  # lag is judged per measurement, as the quota state
        now = self.clock.now()
        for slot, meter in zip(self.limiter.slots, self.limiter.meters, strict=True):
            if slot.key in deficit and isinstance(meter, TokenBucket):
                # A full bucket charged the deficit now: level = depth − deficit at `now`.
                meter.charge(now, min(deficit[slot.key], meter.depth))
        zero = _FLAG[flag]
        if zero:
            self.metrics.reset()
        # The time scale too: a load generator run at another K would read every latency
        # and window K-fold wrong, and checks it here (capacity.loadgen.runner).
        return web.Response(body=dumps({"reset": True, "metrics_reset": zero,
                                        "time_scale": self.k}),
                            content_type="application/json")

    async def health(self, request: web.Request) -> web.Response:
        """``GET /health``."""
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    # -- the generation path -----------------------------------------------------------

    def _resolve(self, ep: _Endpoint, name: str, deployment: bool) -> str:
        """The deployment or model answering for ``name``, or the routed logical model
        ``name`` itself (a key of ``self.router.routes``: the gateway chooses); a 404 in
        the API's shape if none."""
        router = self.router
        if router is not None and name in router.routes and name in self.profile.routes:
            return name
        if name in self.profile.models or name in self.profile.deployments:
            return name
        if deployment and name in self.profile.quotas:
            return self.profile.quotas[name].models[0]
        if name in self.profile.routes:
            # router_from_profile builds the routes that calls (or fallbacks) use.
            raise ApiError(404, f"model: route {name!r} is declared but no call of the "
                           "profile uses it, so the mock does not serve it", param="model",
                           code="model_not_found")
        if ep.api == "anthropic":
            raise ApiError(404, f"model: {name}", param="model")
        if deployment:
            raise ApiError(404, f"The API deployment {name} for this resource does not "
                           "exist. If you created the deployment within the last 5 "
                           "minutes, please wait a moment and try again.", param="model",
                           code="DeploymentNotFound")
        raise ApiError(404, f"The model `{name}` does not exist or you do not have access "
                       "to it.", param="model", code="model_not_found")

    async def _handle(self, request: web.Request, ep: _Endpoint,
                      deployment: str | None) -> web.StreamResponse:
        bucket = retry_bucket(request.headers.get("x-stainless-retry-count"))
        if bucket is not None:
            self.metrics.retry_counts[bucket] += 1
        try:
            if ep.api == "azure" and deployment is not None and \
                    not request.query.get("api-version"):
                # Azure's own answer is a 404 "Resource not found" (a 400 made the SDK
                # raise BadRequestError where the real service gives NotFoundError).
                raise ApiError(404, "Resource not found: the api-version query parameter "
                               "(?api-version=) is required for all requests",
                               param="api-version", code="404")
            body = await self._body(request)
            if ep.module is openai_chat:
                parsed = openai_chat.parse(body, model=deployment)
            else:
                parsed = ep.module.parse(body)
            # Azure names deployments in the body too (its v1 API, /openai/responses, and
            # /v1/... with --provider azure): a quota name the banner lists as a deployment
            # resolves there as it does in the path.
            model = self._resolve(ep, parsed.model,
                                  deployment is not None or ep.api == "azure")
        except ApiError as e:
            return self._error(ep.api, e, request)
        routed = self.router is not None and model in self.router.routes and \
            model in self.profile.routes
        ident = (_ident(request, body) if self.options.log is not None or routed
                 else None)
        return await self._generate(request, ep, parsed, model, body, ident, routed)

    def _admit(self, target: str, plan: Plan, prompt: int, cached: int,
               max_tokens: int | None) -> tuple[Request | None, Decision | None]:
        """Admit a request on ``target``'s quotas now (None, None: no quota covers it).

        THE request the limiter meters (settled by :meth:`_settle` with the output
        actually sent): its prompt once and the output of every choice
        (:attr:`Plan.total_output_tokens`). With ``n`` > 1 choices its ``max_tokens`` is
        ``n ×`` the request's (else the model's default): each choice may run to the cap,
        so a quota that reserves max_tokens reserves ``n ×`` it (the mock's assumption:
        provider-limits.md documents no OpenAI rule for ``n``), and the charge's cut at
        max_tokens applies to the total of all choices, not to one.
        """
        if not self.limiter.knows(target):
            return None, None
        cap = self._cap(target, plan, max_tokens)
        lreq = Request(model=target, input_tokens=float(prompt),
                       output_tokens=float(plan.total_output_tokens),
                       cached_input_tokens=float(cached),
                       max_tokens=None if cap is None else float(cap))
        return lreq, self.limiter.admit(self.clock.now(), lreq)

    def _cap(self, target: str, plan: Plan, max_tokens: int | None) -> int | None:
        """The output cap of a request of ``1 + len(plan.more)`` choices on ``target``:
        the request's ``max_tokens`` for one choice, ``n ×`` it (else the model's
        default) for ``n`` — what the limiter reserves and the request log records."""
        n = 1 + len(plan.more)
        if n == 1:
            return max_tokens
        cap = output_cap(self.profile, target, max_tokens)
        return None if cap is None else n * int(cap)

    async def _generate(self, request: web.Request, ep: _Endpoint, parsed: Parsed,
                        model: str, body: dict[str, Any],
                        ident: tuple[str, str, str | None] | None = None,
                        routed: bool = False) -> web.StreamResponse:
        opts = self.options
        arrived = time.time()
        try:
            # A load generator's hint headers name the call's tokens (behaviour docstring).
            hints = read_hints(request.headers)
            if hints.population is not None and \
                    hints.population not in self.profile.all_sessions():
                raise bad("x-capacity-population", f"no population {hints.population!r} "
                          f"in the profile (it has {', '.join(self.profile.all_sessions())})")
        except ApiError as e:
            return self._error(ep.api, e, request)
        first = self.router.routes[model].deployments[0].name if (
            routed and self.router is not None) else model
        plan = self.behaviours[first].plan(self.rng, parsed.max_tokens, hints.output_tokens,
                                           hints.population, hints.call, parsed.n)
        try:
            # The history rule per choice (OpenAI's n), each with its own draws and ids.
            replies = [decide(parsed.view, self.rng, tool_probability=opts.tool_probability,
                              n_calls=p.tool_calls,
                              id_prefix="toolu_" if ep.api == "anthropic" else "call_")
                       for p in (plan, *plan.more)]
        except ApiError as e:  # a tool schema no arguments can be generated for
            return self._error(ep.api, e, request)
        prompt = (estimate_prompt_tokens(body, ep.module.PROMPT_FIELDS)
                  if hints.input_tokens is None else hints.input_tokens)
        if hints.cached_tokens is None:
            cached = int(prompt * plan.cached_fraction)
        elif hints.cached_tokens <= prompt:
            cached = hints.cached_tokens
        else:
            return self._error(ep.api, bad(
                "x-capacity-cached-tokens", f"{hints.cached_tokens} cached tokens exceed "
                f"the request's {prompt} prompt tokens"), request)
        rid = new_id("req_")
        headers = {"x-request-id": rid}
        if ep.api == "anthropic":
            headers["request-id"] = rid
        elif ep.api == "azure":
            headers["apim-request-id"] = rid
        if routed:
            served = await self._gateway(request, ep, parsed, model, hints,
                                         prompt, cached, plan, ident, headers)
            if isinstance(served, web.StreamResponse):
                return served
            model, plan, lreq = served
        else:
            lreq, d = self._admit(model, plan, prompt, cached, parsed.max_tokens)
            headers["x-capacity-deployment"] = model
            if d is not None:
                headers.update(render_headers(d, ep.dialect, time_scale=self.k))  # type: ignore[arg-type]
                if not d.admitted:
                    assert lreq is not None
                    return self._rate_limited(request, ep, parsed, model, lreq, d, headers)
                self._count_charged(d)
        choices = tuple(
            Choice(r, p.output_tokens, "tool_calls" if r.is_tool_call
                   else "length" if p.truncated else "stop")
            for r, p in zip(replies, (plan, *plan.more), strict=True))
        reply = replies[0]
        usage = Usage(prompt, cached, plan.total_output_tokens, choices[0].finish)
        # Several choices (n > 1) are rendered from the list; one keeps the plain call.
        more: dict[str, Any] = {"choices": choices} if plan.more else {}
        self.metrics.requests[(ep.name, model, 200)] += 1
        self.metrics.tokens[(model, "prompt")] += prompt
        self.metrics.in_flight_requests += 1
        self.metrics.in_flight[model] += 1
        progress = [0.0]  # share of the output delivered, for settling a cut answer
        try:
            if parsed.stream:
                return await self._stream(request, ep, parsed, reply, usage, plan.ttft_s,
                                          plan.generation_s, headers, progress, more)
            await asyncio.sleep((plan.ttft_s + plan.generation_s) / self.k)
            progress[0] = 1.0
            return web.Response(body=dumps(ep.module.render(parsed, reply, usage, **more)),
                                content_type="application/json", headers=headers)
        finally:
            self.metrics.in_flight_requests -= 1
            self.metrics.in_flight[model] -= 1
            if progress[0] < 1.0:
                self.metrics.disconnects += 1
            actual = float(round(plan.total_output_tokens * progress[0]))
            self.metrics.tokens[(model, "completion")] += int(actual)
            if lreq is not None:
                self._settle(lreq, actual)
            if opts.log is not None and progress[0] >= 1.0:
                # The cap of all n choices, as their summed output_tokens (a fit of
                # one choice's cap read every n > 1 call as running past it).
                self.log_line(request, ident, model, arrived, usage,
                              self._cap(model, plan, parsed.max_tokens), plan.ttft_s / self.k)

    def _count_charged(self, d: Decision) -> None:
        for key, units in d.charged.items():
            self.metrics.charged[key] = self.metrics.charged.get(key, 0.0) + units

    def _turn_u(self, ident: tuple[str, str, str | None] | None) -> float:
        """The turn's uniform draw for sticky (``per_turn``) routing: a hash of the
        request's session and turn, so every call of a turn draws the same; a fresh draw
        for a request that names no session."""
        if ident is None or ident[0] == "-":
            return float(self.rng.random())
        h = hashlib.blake2b(f"{self.options.seed}|{ident[0]}|{ident[1]}".encode(),
                            digest_size=8).digest()
        return int.from_bytes(h, "big") / 2.0**64

    async def _gateway(self, request: web.Request, ep: _Endpoint, parsed: Parsed,
                       logical: str, hints: Hints, prompt: int, cached: int,
                       plan0: Plan, ident: tuple[str, str, str | None] | None,
                       headers: dict[str, str]
                       ) -> tuple[str, Plan, Request | None] | web.StreamResponse:
        """Route a request naming ``logical`` (see the module docstring): the serving
        deployment, its drawn plan and limiter request — or the 429 the client sees."""
        router = self.router
        assert router is not None
        rc = request.headers.get("x-stainless-retry-count", "0").strip()
        # A count of any length is a retry number (a long one is past max_retries: the
        # client's last attempt); int() is kept to short ones (no 4,300-digit parse).
        retries = ((int(rc) if len(rc) < 6 else self.retry.max_retries)
                   if rc.isascii() and rc.isdigit() else 0)
        path = CallPath(router, logical, self.retry.max_retries)
        path.attempt = min(retries, self.retry.max_retries)  # the client's attempt number
        first = router.routes[logical].deployments[0].name
        route_name = logical
        turn_u: float | None = None
        spilled: list[str] = []
        fell_back = False
        last: tuple[str, Request | None, Decision | None] | None = None
        while True:
            now = self.clock.now()
            route = router.routes[path.current]
            if turn_u is None:
                turn_u = self._turn_u(ident)
            snaps = (snapshots_for(self.limiter, route.deployments, now)
                     if isinstance(route.policy, UsageBased) else None)
            dep = path.choose(now, u=float(self.rng.random()), turn_u=turn_u,
                              in_flight=self.metrics.in_flight, snapshots=snaps)
            admitted = False
            if dep is not None:
                # The first deployment's plan was drawn already (the answer's shape).
                plan = plan0 if dep.name == first else self.behaviours[dep.name].plan(
                    self.rng, parsed.max_tokens, hints.output_tokens, hints.population,
                    hints.call, parsed.n)
                lreq, d = self._admit(dep.name, plan, prompt, cached, parsed.max_tokens)
                admitted = d is None or d.admitted
                last = (dep.name, lreq, d)
            nxt = path.outcome(dep, now, admitted)
            if nxt is Next.DONE:
                assert dep is not None
                self.metrics.gateway[(route_name, dep.name, "admitted")] += 1
                headers["x-capacity-deployment"] = dep.name
                if spilled:
                    headers["x-capacity-spilled"] = ",".join(spilled)
                if fell_back:
                    headers["x-capacity-fallback"] = path.current
                if d is not None:
                    headers.update(render_headers(d, ep.dialect, time_scale=self.k))  # type: ignore[arg-type]
                    self._count_charged(d)
                return dep.name, plan, lreq
            if dep is not None:
                went_on = nxt in (Next.SPILL, Next.FALLBACK) or (nxt is Next.RETRY
                                                                 and fell_back)
                self.metrics.gateway[(route_name, dep.name,
                                      "spilled" if went_on else "rejected")] += 1
                if went_on:
                    spilled.append(dep.name)
            if nxt is Next.SPILL:
                continue
            if nxt is Next.FALLBACK:
                self.metrics.fallbacks[route_name] += 1
                if dep is not None:
                    headers["x-capacity-fell-back-from"] = dep.name
                fell_back = True
                route_name = path.current
                turn_u = None
                continue
            if nxt is Next.RETRY and fell_back:
                # After a fallback the client has no retries left: the gateway retries
                # the fallback model itself, by the client's rule (the last 429's wait).
                ra = (last[2].retry_after_s if last is not None and last[2] is not None
                      and math.isfinite(last[2].retry_after_s) else None)
                wait = self.retry.wait(path.attempt, ra, float(self.rng.random()))
                if wait is not None:
                    await asyncio.sleep(wait / self.k)
                    continue
            # The client sees a 429: the last deployment's, or "none available".
            if spilled:
                headers["x-capacity-spilled"] = ",".join(spilled)
            if last is None or last[2] is None or dep is None:
                self.metrics.requests[(ep.name, path.current, 429)] += 1
                return self._error(ep.api, ApiError(
                    429, f"No deployments available for model {path.current!r}: every "
                    "deployment of its route is cooling down after failures. Please "
                    "retry later.", code="429" if ep.api == "azure" else
                    "rate_limit_error" if ep.api == "anthropic" else "rate_limit_exceeded"),
                    request, headers)
            name, lreq_last, d_last = last
            assert lreq_last is not None and d_last is not None
            headers["x-capacity-deployment"] = name
            headers.update(render_headers(d_last, ep.dialect, time_scale=self.k))  # type: ignore[arg-type]
            return self._rate_limited(request, ep, parsed, name, lreq_last, d_last, headers)

    async def _stream(self, request: web.Request, ep: _Endpoint, parsed: Parsed,
                      reply: Any, usage: Usage, ttft_s: float, gen_s: float,
                      headers: dict[str, str], progress: list[float],
                      more: dict[str, Any]) -> web.StreamResponse:
        """Send an answer as server-sent events at the model's pace.

        ``progress[0]`` tracks the share of the content written (1.0 once complete);
        ``more``: the renderer's extra keywords (the choices of an ``n`` > 1 answer).
        """
        gen_wall = gen_s / self.k
        groups = max(1, min(usage.completion_tokens,
                            math.ceil(gen_wall / self.options.stream_interval_s)))
        parts = ep.module.stream(parsed, reply, usage, groups, **more)
        resp = web.StreamResponse(status=200, headers={
            **headers, "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache"})
        self.metrics.in_flight_streams += 1
        try:
            await resp.prepare(request)
            await asyncio.sleep(ttft_s / self.k)
            await resp.write(parts.head)
            n = parts.n
            step = gen_wall / n if n else 0.0
            for i, piece in enumerate(parts.pieces):
                if step > 0.0:
                    await asyncio.sleep(step)
                await resp.write(piece)
                progress[0] = (i + 1) / (n + 1)
            await resp.write(parts.tail)
            progress[0] = 1.0
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            # The client went away mid-stream (aiohttp raises ClientConnectionResetError,
            # a ConnectionError, or RuntimeError on a closed transport): stop generating;
            # the caller settles what was sent.
            pass
        finally:
            self.metrics.in_flight_streams -= 1
        return resp

    def log_line(self, request: web.Request, ident: tuple[str, str, str | None] | None,
                 model: str, arrived: float, usage: Usage, max_tokens: int | None,
                 ttft_wall_s: float) -> None:
        """One request-log line (:mod:`capacity.fit.jsonl`) for an answered request.

        Wall-clock times (at ``--time-scale K`` ≠ 1 the line records ``time_scale`` K,
        which ``capacity fit`` multiplies them by).
        The mock sees attempts, not calls: refused attempts are not logged, and
        ``retries`` is the SDK's ``x-stainless-retry-count`` (the ``start`` is this
        attempt's arrival). Session and turn: see :func:`_ident`.
        """
        session, turn, name = ident or ("-", "0", None)
        retries = retry_bucket(request.headers.get("x-stainless-retry-count"))
        line: dict[str, Any] = {
            "session": session, "turn": turn, "start": arrived, "end": time.time(),
            "model": model, "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "cached_input_tokens": usage.cached_tokens, "max_tokens": max_tokens,
            "retries": int(retries.rstrip("+")) if retries is not None else 0,
            "ttft": ttft_wall_s}
        if name is not None:
            line["name"] = name
        if self.k != 1.0:
            line["time_scale"] = self.k
        try:
            self.options.log.write_call(**line)
        except ValueError as e:  # a line the format refuses: say so, keep serving
            log.warning("request log: line skipped: %s", e)
        except RequestLogWriteError as e:  # a full disk: say so once, keep serving
            log.error("%s; no more lines are written (the requests are still answered)", e)
            self.options.log = None

    def _settle(self, lreq: Request, actual: float) -> None:
        if actual == lreq.output_tokens:
            self.limiter.settle(self.clock.now(), lreq, actual)
            return
        before = self.limiter.charges(lreq)
        after = self.limiter.charges(replace(lreq, output_tokens=actual))
        self.limiter.settle(self.clock.now(), lreq, actual)
        for key, units in after.items():
            self.metrics.charged[key] = (self.metrics.charged.get(key, 0.0) + units
                                         - before.get(key, 0.0))

    def _admits(self, key: str, snap: SlotSnapshot | None) -> str | None:
        """The most slot ``key`` admits at once: its window's allowance (per window of
        wall time) or its bucket's depth; None when the slot is unknown."""
        slot = next((s for s in self.limiter.slots if s.key == key), None)
        if slot is None or snap is None:
            return None
        unit = _UNIT_TEXT.get(slot.dimension, "units")
        allowance = _units(snap.allowance, True)
        return (f"a token bucket {allowance} {unit} deep" if slot.kind == "token_bucket"
                else f"at most {allowance} {unit} per {_human(slot.window_s / self.k)} window")

    def _never_fits(self, key: str, snap: SlotSnapshot | None, lreq: Request,
                    n: int = 1) -> str:
        """Why a request can never be admitted: the most its slot admits at once — and,
        for ``n`` > 1 choices where one choice would fit, that the charge counts every
        choice's output (or reserves every choice's max_tokens)."""
        most = self._admits(key, snap)
        if most is None:
            return "This request can never fit."
        requested = self.limiter.charges(lreq).get(key, 0.0)
        unit = _UNIT_TEXT.get(key.rsplit(".", 1)[-1], "units")
        why = ""
        if n > 1 and snap is not None:
            one = replace(lreq, output_tokens=lreq.output_tokens / n,
                          max_tokens=None if lreq.max_tokens is None else lreq.max_tokens / n)
            single = self.limiter.charges(one).get(key, 0.0)
            if single < requested and single <= snap.allowance:
                # Output not charged at admission: the slot reserves max_tokens instead.
                reserved = self.limiter.charges(replace(lreq, output_tokens=0.0)).get(
                    key, 0.0) == requested and one.max_tokens is not None
                why = (f", reserving max_tokens {_units(one.max_tokens or 0.0, True)} for each of "
                       f"its n={n} choices" if reserved else
                       f", counting the output of all n={n} choices")
                why += "; one choice would fit"
        return (f"This request ({_units(requested, True)} {unit}{why}) can never fit: the "
                f"quota admits {most}, so no wait helps.")

    def _rate_limited(self, request: web.Request, ep: _Endpoint, parsed: Parsed, model: str,
                      lreq: Request, d: Decision, headers: dict[str, str]) -> web.Response:
        for key in d.rejected_by:
            self.metrics.rejected[key] += 1
        self.metrics.requests[(ep.name, model, 429)] += 1
        snaps = {s.key: s for s in d.snapshots}
        key = d.rejected_by[0]
        snap = snaps.get(key)
        dim = key.rsplit(".", 1)[-1]
        requested = self.limiter.charges(lreq).get(key, 0.0)
        limit = snap.limit if snap is not None else 0.0
        remaining = snap.remaining if snap is not None else 0.0
        never = not math.isfinite(d.retry_after_s)
        cap = ""
        if never:
            headers["x-should-retry"] = "false"  # it can never fit: retrying cannot help
            cap = self._never_fits(key, snap, lreq, parsed.n)
        wait_s = d.retry_after_s / self.k
        if ep.api == "anthropic":
            what = _DIM_TEXT.get(dim, dim).split(" (")[0]
            msg = (f"This request would exceed the rate limit for your organization of "
                   f"{_units(limit, True)} {what} (quota {key}). "
                   + (f"{cap} Reduce its size." if never else
                      "Please try again later or contact sales to increase your rate limit."))
            err = ApiError(429, msg, code="rate_limit_error")
        elif ep.api == "azure":
            kind = "call" if dim in REQUEST_DIMENSIONS else "token"
            after = headers.get("retry-after", "0")
            msg = (f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                   f"version {request.query.get('api-version', '2024-10-21')} have exceeded "
                   f"{kind} rate limit of your current OpenAI S0 pricing tier (quota {key}). "
                   + (f"{cap} Do not retry it. " if never else
                      f"Please retry after {after} seconds. ") + "Please go here: "
                   "https://aka.ms/oai/quotaincrease if you would like to further increase "
                   "the default rate limit.")
            err = ApiError(429, msg, code="429")
        else:
            # OpenAI's own text, word for word ("... on tokens per min (TPM): Limit 10000,
            # Used 9348, Requested 5086. Please try again in 26.604s. Visit ..."), which
            # clients and people match; the mock's quota key follows it, not inside it.
            head = (f"for {model} in organization org-mock on {_DIM_TEXT.get(dim, dim)}: "
                    f"Limit {_units(limit)}")
            # The window's allowance where it is not the limit ("Limit 600, Used 100" over
            # 10 s windows read as room left); a request that can never fit says it already.
            most = (self._admits(key, snap) if snap and snap.allowance != limit and not never
                    else None)
            visit = ("Visit https://platform.openai.com/account/rate-limits to learn more. "
                     f"(Mock quota {key}{f': {most}' if most else ''}.)")
            if never:
                msg = (f"Request too large {head}, Requested {_units(requested)}. {cap} The "
                       "input or output tokens must be reduced in order to run successfully. "
                       + visit)
            else:
                # Used: the units of the refusing window (or bucket) already taken, as the
                # remaining-* headers count them (a window's allowance − what is left).
                used = math.floor(max(snap.allowance - remaining, 0.0)) if snap else 0
                msg = (f"Rate limit reached {head}, Used {used}, Requested "
                       f"{_units(requested)}. Please try again in {_human(wait_s)}. " + visit)
            # As OpenAI: type names the limit ("tokens" / "requests"), code is the same.
            err = ApiError(429, msg, code="rate_limit_exceeded",
                           kind="requests" if dim in REQUEST_DIMENSIONS else "tokens")
        return self._error(ep.api, err, request, headers)


def _ident(request: web.Request, body: Any) -> tuple[str, str, str | None]:
    """(session, turn, call name) of a request, for the request log.

    Session: the ``x-capacity-session`` header, else OpenAI's ``user`` or Anthropic's
    ``metadata.user_id``, else ``-``. Turn: ``x-capacity-turn``, else the number of user
    messages in the history (a conversation's turn index — stateless, it needs the whole
    history). Name: ``x-capacity-call`` if sent. Header values are cut at 200 characters.
    """
    h = request.headers
    session = h.get("x-capacity-session")
    if session is None and isinstance(body, dict):
        meta = body.get("metadata")
        user = body.get("user") or (meta.get("user_id") if isinstance(meta, dict) else None)
        session = user if isinstance(user, str) else None
    turn = h.get("x-capacity-turn")
    if turn is None:
        msgs = body.get("messages") if isinstance(body, dict) else None
        n = 0
        for m in msgs if isinstance(msgs, list) else ():
            if not isinstance(m, dict) or m.get("role") != "user":
                continue
            c = m.get("content")
            # Anthropic tool results are user messages made of tool_result blocks only.
            if isinstance(c, list) and c and all(isinstance(b, dict) and
                                                 b.get("type") == "tool_result" for b in c):
                continue
            n += 1
        turn = str(n)
    name = h.get("x-capacity-call")
    return ((session or "-")[:200], turn[:200] or "0", None if name is None else name[:200])


def _bucket_deficit(body: Any, limiter: Limiter) -> dict[str, float]:
    """The ``bucket_deficit`` of a reset body, checked (a 400 naming what is wrong)."""
    if not isinstance(body, dict) or set(body) - {"bucket_deficit", "clock_offset_s"}:
        raise bad("body", 'expected {"bucket_deficit": {"<slot key>": units, ...}, '
                  '"clock_offset_s": seconds}')
    # Absent is {}; a present value must be the object itself (0, false, [] or null were
    # taken as {} when ``or {}`` stood here: a full bucket where a deficit was meant).
    d = body.get("bucket_deficit", {})
    if not isinstance(d, dict):
        raise bad("bucket_deficit", "expected an object of slot keys to units, got "
                  + json.dumps(d)[:120])
    buckets = {s.key for s in limiter.slots if s.kind == "token_bucket"}
    out: dict[str, float] = {}
    for key, units in d.items():
        if key not in buckets:
            raise bad("bucket_deficit", f"{key!r} is not a token-bucket slot of the profile "
                      f"(those are: {', '.join(sorted(buckets)) or 'none'})")
        if isinstance(units, bool) or not isinstance(units, int | float) or \
                not math.isfinite(units) or units < 0:
            raise bad("bucket_deficit", f"{key}: expected a number of units ≥ 0, got "
                      + json.dumps(units)[:120])
        out[key] = float(units)
    return out


def _clock_offset(body: dict[str, Any]) -> float:
    """The ``clock_offset_s`` of a reset body (0 if absent), checked (a 400 if not)."""
    x = body.get("clock_offset_s", 0.0)
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) \
            or x < 0:
        raise bad("clock_offset_s", "expected a number of seconds ≥ 0, got "
                  + json.dumps(x)[:120])
    if x > _MAX_CLOCK_OFFSET_S:
        raise bad("clock_offset_s", f"at most {_MAX_CLOCK_OFFSET_S:,.0f} seconds (a phase; "
                  "loadtest draws one within a day), got " + json.dumps(x)[:120])
    return float(x)


def _units(x: float, grouped: bool = False) -> str:
    """A count of requests or tokens as a provider's message prints it: a whole number in
    full (4000000 or 4,000,000 ``grouped``; ``:g`` printed 4e+06, and 1234567 as
    1.23457e+06, another number), a fraction (a bucket's level) to 3 decimals."""
    if float(x).is_integer():
        return f"{int(x):,}" if grouped else str(int(x))
    return (f"{x:,.3f}" if grouped else f"{x:.3f}").rstrip("0").rstrip(".")


def _human(seconds: float) -> str:
    """A wait as OpenAI's messages print it (``644ms``, ``26.604s``)."""
    if seconds < 1.0:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _api_for_path(path: str) -> Api:
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/openai/"):
        return "azure"
    return "openai"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(provider: MockProvider) -> web.Application:
    """The aiohttp application serving ``provider``'s routes."""

    @web.middleware
    async def shape_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        # aiohttp's own errors (unknown route, wrong method) and anything unexpected are
        # answered in the provider's JSON shape, so an SDK raises its usual error.
        api = _api_for_path(request.path)
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            what = (f"unknown path {request.path}" if e.status == 404
                    else f"method {request.method} not allowed on {request.path}"
                    if e.status == 405 else e.reason)
            return provider._error(api, ApiError(e.status, what), request)
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:  # a bug of ours must not take the server down: log it, 500
            log.exception("500 %s %s", request.method, request.path)
            err = ApiError(500, "internal error in the capacity mock (see its log)")
            return provider._error(api, err, request)

    app = web.Application(middlewares=[shape_errors],
                          client_max_size=provider.options.max_body_bytes)
    app.router.add_post("/v1/chat/completions", provider.chat)
    app.router.add_post("/chat/completions", provider.chat)  # base_url without /v1
    app.router.add_post("/openai/deployments/{deployment}/chat/completions",
                        provider.azure_chat)
    app.router.add_post("/openai/v1/chat/completions", provider.azure_v1_chat)
    app.router.add_post("/openai/responses", provider.azure_responses)
    app.router.add_post("/openai/v1/responses", provider.azure_responses)
    app.router.add_post("/v1/messages", provider.messages)
    app.router.add_post("/v1/messages/count_tokens", provider.count_tokens)
    app.router.add_post("/v1/responses", provider.responses)
    app.router.add_get("/v1/models", provider.models)
    app.router.add_get("/v1/models/{model}", provider.model)
    app.router.add_get("/metrics", provider.metrics_text)
    app.router.add_post("/admin/reset", provider.reset)
    app.router.add_get("/health", provider.health)

    async def lag_ticker(app: web.Application) -> Any:
        # How late a 10 ms timer fires: the server's own event-loop lag, which /metrics
        # reports so that a load generator can refuse a measurement taken while the mock
        # was starved of CPU (its admissions would then happen at the wrong instants).
        async def tick() -> None:
            loop = asyncio.get_running_loop()
            while True:
                due = loop.time() + LAG_TICK_S
                await asyncio.sleep(LAG_TICK_S)
                provider.metrics.lag.append(max(0.0, loop.time() - due))

        task = asyncio.create_task(tick())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(lag_ticker)
    return app


class MockServer:
    """The mock on a real socket, in the running event loop.

    Use ``async with MockServer(profile, options) as srv:`` (or ``await srv.start()`` /
    ``await srv.close()``); ``srv.url`` is ``http://host:port`` once started. Port 0 picks a
    free port. ``profile`` may be a YAML path; options may be given as keywords instead of
    a :class:`ServeOptions` (``MockServer(profile, time_scale=100, seed=1)``).
    """

    def __init__(self, profile: Profile | str | Path,
                 options: ServeOptions | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, **option_fields: Any) -> None:
        if not isinstance(profile, Profile):
            from capacity.profile.loader import load_profile

            profile = load_profile([Path(profile)])
        if option_fields:
            if options is not None:
                raise TypeError("give a ServeOptions or keyword options, not both")
            options = ServeOptions(**option_fields)
        self.provider = MockProvider(profile, options)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def options(self) -> ServeOptions:
        """The options the server runs with (``seed`` filled in)."""
        return self.provider.options

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for the OpenAI SDK / ``ChatOpenAI`` (includes ``/v1``)."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for the Anthropic SDK / ``ChatAnthropic`` (no ``/v1``)."""
        return self.url

    @property
    def azure_endpoint(self) -> str:
        """``azure_endpoint`` for ``AzureOpenAI`` / ``AzureChatOpenAI``."""
        return self.url

    async def start(self) -> MockServer:
        """Bind and listen."""
        # shutdown_timeout: on close, answers still running get 0.5 s, then are cut (a
        # stream may have minutes to go; Ctrl-C must not wait for it).
        runner = web.AppRunner(build_app(self.provider), handler_cancellation=True,
                               access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=self.provider.options.backlog,
                           reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addr = runner.addresses[0]
        self.port = int(addr[1])
        return self

    async def close(self) -> None:
        """Stop listening, end open answers, free the socket."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> MockServer:
        return await self.start()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


class ServerThread:
    """The mock in a background thread with its own event loop (for synchronous callers:
    tests driving sync SDK clients, notebooks).

    ``with ServerThread(profile, options) as srv: ... srv.url``; or ``srv.start()`` /
    ``srv.close()``. Arguments and attributes as :class:`MockServer`.
    """

    def __init__(self, profile: Profile | str | Path,
                 options: ServeOptions | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, **option_fields: Any) -> None:
        self.server = MockServer(profile, options, host=host, port=port, **option_fields)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def __getattr__(self, name: str) -> Any:
        if name in ("url", "openai_base_url", "anthropic_base_url", "azure_endpoint",
                    "provider", "options", "port", "host"):
            return getattr(self.server, name)
        raise AttributeError(name)

    def start(self) -> ServerThread:
        """Start the thread and wait until the socket listens (errors re-raised here)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as e:
                failure.append(e)
                ready.set()
                return
            ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.server.close()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(main())
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="capacity-serve", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def close(self) -> None:
        """Stop the server and join the thread (idempotent)."""
        loop, thread, stop = self._loop, self._thread, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
