"""Counters of the mock, served as Prometheus text (``GET /metrics``).

Every label set is bounded (the profile's models and slots, a fixed list of APIs and
statuses, retry counts folded into ``0..5`` and ``6+``), so a flood of odd requests cannot
grow the server's memory through its metrics.
"""

from __future__ import annotations

from collections import Counter, deque

# Lag samples kept (one every LAG_TICK_S): the last ~40 s of wall time.
LAG_SAMPLES = 4096
LAG_TICK_S = 0.01

_RETRY_BUCKETS = ("0", "1", "2", "3", "4", "5", "6+")


def retry_bucket(header: str | None) -> str | None:
    """The ``x-stainless-retry-count`` value as a bounded label (None if absent/bad)."""
    if header is None:
        return None
    try:
        n = int(header)
    except ValueError:
        return None
    if n < 0:
        return None
    return str(n) if n < 6 else "6+"


class Metrics:
    """The server's counters and gauges (single event loop: no locking needed)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter (gauges of work in flight are kept)."""
        self.requests: Counter[tuple[str, str, int]] = Counter()  # (api, model, status)
        self.rejected: Counter[str] = Counter()  # slot key
        self.charged: dict[str, float] = {}  # slot key -> units charged
        self.tokens: Counter[tuple[str, str]] = Counter()  # (model, prompt|completion)
        self.retry_counts: Counter[str] = Counter()  # x-stainless-retry-count bucket
        self.bad_requests: Counter[tuple[str, int]] = Counter()  # (api, status)
        self.disconnects = 0
        # Mock-as-gateway (a request naming a routed logical model): every attempt on a
        # deployment by (route, deployment, outcome) — admitted, spilled (a 429 the
        # request went on from, to another deployment or a fallback model) or rejected
        # (the 429 the client saw, or one the gateway retried after a fallback) — and the
        # requests that fell back, by the route they fell back from.
        self.gateway: Counter[tuple[str, str, str]] = Counter()
        self.fallbacks: Counter[str] = Counter()
        # The server's own event-loop lag (wall seconds, how late a 10 ms timer fired),
        # since the last reset: a starved mock admits at the wrong instants, which a load
        # generator must know before it trusts what it measured.
        self.lag: deque[float] = deque(maxlen=LAG_SAMPLES)
        if not hasattr(self, "in_flight_streams"):
            self.in_flight_streams = 0
            self.in_flight_requests = 0
            # Admitted requests not yet answered, by deployment (or model) name: the
            # gateway's least_busy input, and a gauge.
            self.in_flight: Counter[str] = Counter()

    @property
    def retries_seen(self) -> int:
        """Requests that said they were SDK retries (``x-stainless-retry-count`` > 0)."""
        return sum(v for k, v in self.retry_counts.items() if k != "0")

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")

        family("capacity_mock_requests_total", "counter",
               "generation requests answered, by API, model and HTTP status")
        for (api, model, status), v in sorted(self.requests.items()):
            out.append(f'capacity_mock_requests_total{{api="{api}",model="{_esc(model)}",'
                       f'status="{status}"}} {v}')
        family("capacity_mock_rate_limited_total", "counter",
               "429 answers by the quota slot that had no room (a request refused by "
               "several slots counts on each)")
        for slot, v in sorted(self.rejected.items()):
            out.append(f'capacity_mock_rate_limited_total{{slot="{_esc(slot)}"}} {v}')
        family("capacity_mock_charged_units_total", "counter",
               "units charged at admission by slot (requests or tokens), net of settlement")
        for slot, units in sorted(self.charged.items()):
            out.append(f'capacity_mock_charged_units_total{{slot="{_esc(slot)}"}} {float(units)!r}')
        family("capacity_mock_tokens_total", "counter",
               "tokens in the usage of answered requests, by model and kind")
        for (model, kind), v in sorted(self.tokens.items()):
            out.append(f'capacity_mock_tokens_total{{model="{_esc(model)}",kind="{kind}"}} {v}')
        family("capacity_mock_retry_count_seen_total", "counter",
               "requests by the x-stainless-retry-count they carried")
        for b in _RETRY_BUCKETS:
            if b in self.retry_counts:
                out.append(f'capacity_mock_retry_count_seen_total{{retry="{b}"}} '
                           f"{self.retry_counts[b]}")
        family("capacity_mock_retries_seen_total", "counter",
               "requests that were SDK retries (x-stainless-retry-count > 0)")
        out.append(f"capacity_mock_retries_seen_total {self.retries_seen}")
        family("capacity_mock_bad_requests_total", "counter",
               "requests refused as malformed or unknown, by API and status")
        for (api, status), v in sorted(self.bad_requests.items()):
            out.append(f'capacity_mock_bad_requests_total{{api="{api}",status="{status}"}} {v}')
        family("capacity_mock_client_disconnects_total", "counter",
               "answers cut short because the client went away")
        out.append(f"capacity_mock_client_disconnects_total {self.disconnects}")
        family("capacity_mock_event_loop_lag_seconds", "summary",
               "how late the server's 10 ms timer fired (wall seconds) since the last "
               "reset: quantiles of the last samples")
        if self.lag:
            lags = sorted(self.lag)
            for q in (0.5, 0.99):
                out.append(f'capacity_mock_event_loop_lag_seconds{{quantile="{q}"}} '
                           f"{lags[min(len(lags) - 1, int(q * len(lags)))]:.6f}")
            out.append(f"capacity_mock_event_loop_lag_seconds_count {len(lags)}")
            out.append(f"capacity_mock_event_loop_lag_seconds_max {lags[-1]:.6f}")
        family("capacity_mock_gateway_attempts_total", "counter",
               "attempts the mock-as-gateway made on a deployment for a routed logical "
               "model, by route, deployment and outcome (admitted, spilled, rejected)")
        for (route, dep, outcome), v in sorted(self.gateway.items()):
            out.append(f'capacity_mock_gateway_attempts_total{{route="{_esc(route)}",'
                       f'deployment="{_esc(dep)}",outcome="{outcome}"}} {v}')
        family("capacity_mock_gateway_fallbacks_total", "counter",
               "requests the gateway moved to a fallback model, by the route they left")
        for route, v in sorted(self.fallbacks.items()):
            out.append(f'capacity_mock_gateway_fallbacks_total{{route="{_esc(route)}"}} {v}')
        family("capacity_mock_deployment_in_flight", "gauge",
               "admitted requests not yet fully answered, by deployment (or model)")
        for dep, v in sorted(self.in_flight.items()):
            out.append(f'capacity_mock_deployment_in_flight{{deployment="{_esc(dep)}"}} {v}')
        family("capacity_mock_in_flight_streams", "gauge", "SSE streams being sent")
        out.append(f"capacity_mock_in_flight_streams {self.in_flight_streams}")
        family("capacity_mock_in_flight_requests", "gauge",
               "admitted requests not yet fully answered")
        out.append(f"capacity_mock_in_flight_requests {self.in_flight_requests}")
        return "\n".join(out) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
