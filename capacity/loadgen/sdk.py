"""``--client openai|anthropic``: sessions that call the official SDK, retries and all.

The raw engine retries by the profile's :class:`~capacity.model.retry.RetryPolicy`; this
one hands every call to the official async client (``openai.AsyncOpenAI`` /
``AsyncAzureOpenAI`` or ``anthropic.AsyncAnthropic``) with ``max_retries`` from the
profile and lets the SDK do what it does in a real application: honour ``retry-after-ms``
/ ``retry-after`` its own way, back off with its own jitter, give up with
``RateLimitError``. What it did is counted, not assumed: an httpx event hook on the SDK's
own HTTP client sees every attempt (and the ``x-stainless-retry-count`` it carries) and
every status, and attributes them to the call being made through a context variable (the
SDK retries inside the caller's task).

Fleet profiles: the SDK sends the logical model name and the target routes (``capacity
serve`` as the gateway; the SDK's ``x-stainless-retry-count`` tells it the client's last
attempt); the deployments its answers name are counted per deployment.

The SDK sleeps in wall time, so this mode runs at time scale 1 only. The same requests as
the raw client are sent (body, tool, history, hint headers); the SDK's HTTP client
ignores proxy settings from the environment (``trust_env=False``) and refuses any URL
that is not the target's origin, so the sessions send only to ``--target``.
"""

from __future__ import annotations

import contextvars
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..profile.schema import Profile
from .driver import DriverConfig, SessionDriver, gateway_counts
from .measure import Recorder, TurnRecord
from .plan import CallPlan
from .protocol import (
    AZURE_API_VERSION,
    Conversation,
    TargetError,
    build_request,
    parse_reply,
)

__all__ = ["SdkDriver"]

Sdk = Literal["openai", "anthropic"]


@dataclass
class _Attempts:
    """What the SDK's HTTP client did for one call."""

    sent: int = 0
    rejected: int = 0
    max_retry_header: int = 0
    # Fleet profiles (the target routes): each answer's status and routing headers.
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)


_ROUTING_HEADERS = ("x-capacity-deployment", "x-capacity-spilled",
                    "x-capacity-fell-back-from")
"""What a gateway (capacity serve routing a logical model) says about each answer."""

_CURRENT: contextvars.ContextVar[_Attempts | None] = contextvars.ContextVar(
    "capacity_sdk_call", default=None)


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (str(url.scheme), str(url.host), url.port)


class SdkDriver(SessionDriver):
    """Sessions whose calls go through the official ``openai`` or ``anthropic`` SDK."""

    def __init__(self, profile: Profile, cfg: DriverConfig, ids: list[int],
                 origin_epoch: float | None = None, *, sdk: str) -> None:
        if sdk not in ("openai", "anthropic"):
            raise TargetError(f"--client {sdk!r}: expected openai or anthropic")
        try:
            # Imported before model time starts: the SDKs take seconds to import.
            importlib.import_module(sdk)
        except ImportError:
            raise TargetError(f"--client {sdk} needs the official SDK: pip install "
                              f"'{sdk}' (tested ranges in the 'e2e' extra)") from None
        super().__init__(profile, cfg, ids, origin_epoch)
        if cfg.time_scale != 1.0:
            raise TargetError(f"--client {sdk} runs the SDK's own retries in wall time: it "
                              f"needs --time-scale 1 (got {cfg.time_scale:g})")
        if sdk == "anthropic" and cfg.provider != "anthropic":
            raise TargetError("--client anthropic speaks the Anthropic Messages API: use "
                              "--provider anthropic")
        if sdk == "openai" and cfg.provider == "anthropic":
            raise TargetError("--client openai speaks the OpenAI API: use --provider openai "
                              "or azure")
        self.sdk: Sdk = "openai" if sdk == "openai" else "anthropic"
        self._client: Any = None
        self.retries_seen = 0  # attempts that carried x-stainless-retry-count > 0

    # -- the SDK client ----------------------------------------------------------------
    def _make_client(self) -> Any:
        import httpx2

        target = httpx2.URL(self.cfg.target)
        allowed = _origin(target)

        async def on_request(request: Any) -> None:
            if _origin(request.url) != allowed:
                # Never reached by our own requests; a guard, so that what the SDK sends
                # provably goes to the target only.
                raise TargetError(f"refusing to send to {request.url}: not the target "
                                  f"{self.cfg.target}")
            att = _CURRENT.get()
            if att is not None:
                att.sent += 1
                try:
                    n = int(request.headers.get("x-stainless-retry-count", "0"))
                except ValueError:
                    n = 0
                att.max_retry_header = max(att.max_retry_header, n)
                if n > 0:
                    self.retries_seen += 1

        routed = bool(self.profile.routes)

        async def on_response(response: Any) -> None:
            att = _CURRENT.get()
            if att is not None and response.status_code == 429:
                att.rejected += 1
            if att is not None and routed:
                att.answers.append((response.status_code, {
                    k: response.headers[k] for k in _ROUTING_HEADERS
                    if k in response.headers}))

        timeout = httpx2.Timeout(self.cfg.request_timeout_s,
                                 connect=self.cfg.connect_timeout_s)
        hooks: dict[str, list[Callable[..., Any]]] = {"request": [on_request],
                                                      "response": [on_response]}
        retries = self.policy.max_retries
        if self.sdk == "anthropic":
            import anthropic

            http = anthropic.DefaultAsyncHttpxClient(
                trust_env=False, event_hooks=hooks, timeout=timeout,
                limits=httpx2.Limits(max_connections=None, max_keepalive_connections=1000))
            return anthropic.AsyncAnthropic(
                base_url=self.cfg.target, api_key="capacity-loadtest", max_retries=retries,
                timeout=timeout, http_client=http)
        import openai

        http = openai.DefaultAsyncHttpxClient(
            trust_env=False, event_hooks=hooks, timeout=timeout,
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=1000))
        if self.cfg.provider == "azure":
            return openai.AsyncAzureOpenAI(
                azure_endpoint=self.cfg.target, api_version=AZURE_API_VERSION,
                api_key="capacity-loadtest", max_retries=retries, timeout=timeout,
                http_client=http)
        return openai.AsyncOpenAI(base_url=self.cfg.target + "/v1",
                                  api_key="capacity-loadtest", max_retries=retries,
                                  timeout=timeout, http_client=http)

    async def run(self) -> Recorder:
        """As :meth:`SessionDriver.run`, with the SDK client opened and closed around it."""
        self._client = self._make_client()
        try:
            return await super().run()
        finally:
            await self._client.close()
            self._client = None

    # -- one call ----------------------------------------------------------------------
    async def _call(self, call: CallPlan, conv: Conversation, rec: TurnRecord,
                    rng: np.random.Generator) -> Conversation:
        rec.calls += 1
        new = conv.next_messages()
        req = build_request(self.cfg.provider, call, conv.exchanges, new,
                            deployment=self.cfg.deployments.get(call.model),
                            ident=self.ident(rec), population=rec.population)
        hints = {k: v for k, v in req.headers.items() if k.startswith("x-capacity-")}
        gate = self._gate
        if gate is not None:
            q0 = self.now()
            await gate.acquire()
            rec.pace_wait += self.now() - q0
        att = _Attempts()
        token = _CURRENT.set(att)
        started = time.time()
        self.in_flight += 1
        try:
            data = await self._create(req.body, hints, call)
        except Exception as e:
            failed = self._classify(e)
            rec.attempts += att.sent
            rec.rejected += att.rejected
            for status, headers in att.answers:
                gateway_counts(rec, headers, status)
            if failed:
                rec.failed = True
                rec.calls_failed += 1
                self.log_call(rec, call, started, int(getattr(e, "status_code", 0) or 0),
                              att.sent, None)
                return conv
            raise
        finally:
            self.in_flight -= 1
            _CURRENT.reset(token)
            if gate is not None:
                gate.release()
        rec.attempts += att.sent
        rec.rejected += att.rejected
        for status, headers in att.answers:
            gateway_counts(rec, headers, status)
        reply = parse_reply(self.cfg.provider, data)
        self.rec.successes.append((self.now(), reply.prompt_tokens + reply.completion_tokens))
        if reply.prompt_tokens != call.input_tokens:
            self.rec.usage_mismatch += 1
        conv.record(new, reply)
        self.log_call(rec, call, started, 200, att.sent, reply)
        return conv

    async def _create(self, body: dict[str, Any], hints: dict[str, str],
                      call: CallPlan) -> Any:
        """One call through the SDK; the answer as a plain dict (what the wire carried)."""
        if self.sdk == "anthropic":
            msg = await self._client.messages.create(**body, extra_headers=hints)
            return msg.model_dump(mode="json")
        kw = {k: v for k, v in body.items() if k != "stream"}
        if self.cfg.provider == "azure":
            kw["model"] = self.cfg.deployments.get(call.model) or call.model
        resp = await self._client.chat.completions.create(**kw, extra_headers=hints)
        return resp.model_dump(mode="json")

    def _classify(self, e: BaseException) -> bool:
        """True: the call failed after the SDK's retries (a 429 or 5xx it gave up on).
        Raises :class:`TargetError` for what is the target's fault or ours to report."""
        mod = __import__(self.sdk)
        if isinstance(e, mod.RateLimitError):
            return True
        if isinstance(e, mod.InternalServerError | mod.APIStatusError) and \
                getattr(e, "status_code", 0) >= 500:
            return True
        if isinstance(e, mod.APITimeoutError):
            raise TargetError(f"the target {self.cfg.target} did not answer in time") from e
        if isinstance(e, mod.APIConnectionError):
            cause = e.__cause__ or e
            if isinstance(cause, TargetError):
                raise cause from None
            raise TargetError(f"cannot reach the target {self.cfg.target}: {cause}") from None
        if isinstance(e, mod.APIStatusError):
            raise TargetError(f"the target answered HTTP {e.status_code}: "
                              f"{str(e)[:200]}") from None
        if isinstance(e, TargetError):
            raise e
        return False
