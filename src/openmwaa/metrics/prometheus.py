"""``GET /metrics``: openmwaa's series in the Prometheus text format, written with prometheus_client.

One registry per app (nothing global, nothing at import time). Series:

- ``openmwaa_requests_total{service,operation,status}`` and
  ``openmwaa_request_duration_seconds{service}`` (histogram), for every API request;
- ``openmwaa_requests_denied_total{service}`` (403) and ``openmwaa_requests_throttled_total`` (429);
- ``openmwaa_audit_backlog``, ``openmwaa_audit_lost_total``: entries waiting for, and lost by, the trail;
- ``openmwaa_environment_status{environment,status}`` (1 for the current status) and
  ``openmwaa_environment_serving{environment}`` (1 while Airflow's API has an endpoint).

Only built when the scrape is on (:mod:`openmwaa.metrics.endpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from openmwaa.pipeline.context import RequestContext

STATUSES: Final = (
    "CREATING", "CREATE_FAILED", "AVAILABLE", "UPDATING", "DELETING", "DELETED", "UNAVAILABLE",
    "UPDATE_FAILED", "ROLLING_BACK", "CREATING_SNAPSHOT", "PENDING", "MAINTENANCE",
)  # fmt: skip


@dataclass(frozen=True)
class EnvironmentState:
    name: str
    status: str
    serving: bool


class _StateCollector(Collector):
    def __init__(
        self,
        environments: Callable[[], Iterable[EnvironmentState]],
        audit_backlog: Callable[[], int],
        audit_lost: Callable[[], int],
    ) -> None:
        self._environments = environments
        self._backlog = audit_backlog
        self._lost = audit_lost

    def collect(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "openmwaa_environment_status",
            "1 for the environment's current status.",
            labels=["environment", "status"],
        )
        serving = GaugeMetricFamily(
            "openmwaa_environment_serving",
            "1 while the environment's Airflow API is up.",
            labels=["environment"],
        )
        for env in self._environments():
            for name in STATUSES:
                status.add_metric([env.name, name], 1.0 if env.status == name else 0.0)
            serving.add_metric([env.name], 1.0 if env.serving else 0.0)
        yield status
        yield serving
        yield GaugeMetricFamily(
            "openmwaa_audit_backlog", "Audit entries not written yet.", value=self._backlog()
        )
        lost = CounterMetricFamily("openmwaa_audit_lost", "Audit entries that could not be written.")
        lost.add_metric([], self._lost())
        yield lost


class ApiMetrics:
    def __init__(
        self,
        *,
        environments: Callable[[], Iterable[EnvironmentState]],
        audit_backlog: Callable[[], int],
        audit_lost: Callable[[], int],
        clock: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._clock = clock
        self._requests = Counter(
            "openmwaa_requests", "API requests.", ["service", "operation", "status"], registry=self.registry
        )
        self._latency = Histogram(
            "openmwaa_request_duration_seconds", "API request latency.", ["service"], registry=self.registry
        )
        self._denied = Counter(
            "openmwaa_requests_denied", "Requests denied (403).", ["service"], registry=self.registry
        )
        self._throttled = Counter(
            "openmwaa_requests_throttled", "Requests throttled (429).", ["service"], registry=self.registry
        )
        self.registry.register(_StateCollector(environments, audit_backlog, audit_lost))

    def observe(self, ctx: RequestContext) -> None:
        """A pipeline finisher: count and time every request."""
        service = ctx.service or "unrouted"
        self._requests.labels(service, (ctx.operation or "-")[:64], str(ctx.status)).inc()
        self._latency.labels(service).observe(max(0.0, self._clock() - ctx.received_at))
        if ctx.status == 403:
            self._denied.labels(service).inc()
        elif ctx.status == 429:
            self._throttled.labels(service).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
