"""``capacity serve``: a protocol-aware mock LLM endpoint enforcing the profile's quotas.

It speaks OpenAI Chat Completions and Responses, Azure OpenAI and Anthropic Messages
(streaming and not), answers by the stateless history rule (:mod:`.history`: a tool
result gets text, otherwise offered tools get a schema-valid tool call), takes the
profile's latency and token counts (:mod:`.behaviour`), and admits or 429s every request
with :class:`capacity.limits.Limiter` — the simulator's own rules — so a team can watch
its real agent hit the ceiling the calculator predicted. A fleet profile's deployments
are served each on its own quotas, and a request naming a routed logical model finds the
mock acting as the gateway (THE routing rule, spillover within the request). With
session populations, a request's call is drawn from every population's turns by its
expected rate, or found in the population a load generator names.

Needs the ``serve`` extra (aiohttp). Start it in-process with :class:`MockServer` (async)
or :class:`ServerThread` (sync), or from the shell with ``capacity serve PROFILE``.
"""

from capacity.serve.app import MockProvider, MockServer, ServeOptions, ServerThread, build_app

__all__ = ["MockProvider", "MockServer", "ServeOptions", "ServerThread", "build_app"]
