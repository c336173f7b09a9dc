"""Load generator: closed-loop agent sessions shaped like the profile, driven against an
OpenAI/Azure/Anthropic-compatible endpoint (or the team's own agent service), measured,
and put beside the simulator's prediction (``capacity loadtest``).

Layers: :mod:`.plan` draws turns from the profile as the simulator does; :mod:`.protocol`
builds each provider's requests with a growing history; :mod:`.driver` runs sessions on
asyncio over raw aiohttp (retry by :class:`capacity.model.retry.RetryPolicy`, pacing by
:class:`capacity.model.pacing.Pacer`); :mod:`.measure` turns records into the simulator's
metrics; :mod:`.runner` runs a grid of N with predictions; :mod:`.locust` is the same
session as a Locust ``User``; :mod:`.sdk` runs the calls through the official
``openai`` / ``anthropic`` SDKs and measures their own retries; :mod:`.agent` posts user
turns to the team's agent service. Fleet profiles (``routes``) are routed client-side by
THE routing rule (:class:`capacity.model.routing.CallPath`; ``route="gateway"``: the target
routes), with per-deployment figures in each point. Profiles with ``populations`` run
the split of each N (held sessions at every N), each session on its population's pacing
and turns, with per-population figures beside the simulator's. Needs the ``loadtest`` extra
(aiohttp); Locust the ``locust`` extra; the SDK client the SDKs (``e2e`` extra).
"""

from __future__ import annotations

from .measure import EXTRA_METRICS, Recorder, summarise
from .plan import TurnSampler
from .result import LoadPoint, LoadtestResult, MeasuredCeiling
from .runner import LAG_FRACTION, LagError, LoadtestConfig, lag_limit_s, run_loadtest

__all__ = ["EXTRA_METRICS", "LAG_FRACTION", "LagError", "LoadPoint", "LoadtestConfig",
           "LoadtestResult", "MeasuredCeiling", "Recorder", "TurnSampler", "lag_limit_s",
           "run_loadtest", "summarise"]
