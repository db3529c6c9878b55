"""Airflow's own health endpoint: the environment is AVAILABLE only when it says all is well."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

HEALTH_PATH: Final[Mapping[int, str]] = {3: "/api/v2/monitor/health", 2: "/health"}
#: What must report "healthy" (Airflow 2 runs its DAG processor inside the scheduler).
REQUIRED_COMPONENTS: Final[Mapping[int, tuple[str, ...]]] = {
    3: ("metadatabase", "scheduler", "triggerer", "dag_processor"),
    2: ("metadatabase", "scheduler", "triggerer"),
}


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    #: Human-readable: which parts are not healthy, or why the endpoint did not answer.
    detail: str


def evaluate_health(body: Any, major: int) -> HealthReport:
    """Judge a health response body (pure)."""
    if not isinstance(body, Mapping):
        return HealthReport(False, "the health endpoint returned no JSON object")
    unhealthy = []
    for name in REQUIRED_COMPONENTS[major]:
        part = body.get(name)
        status = part.get("status") if isinstance(part, Mapping) else None
        if status != "healthy":
            unhealthy.append(f"{name} is {status or 'not reporting'}")
    if unhealthy:
        return HealthReport(False, "; ".join(unhealthy))
    return HealthReport(True, "all components healthy")


def probe_health(
    base_url: str, major: int, *, timeout: float = 5.0, client: httpx.Client | None = None
) -> HealthReport:
    """Ask Airflow; ``client`` saves building one per probe (tens of ms of CPU each, for TLS)."""
    url = base_url.rstrip("/") + HEALTH_PATH[major]
    try:
        if client is None:
            response = httpx.get(url, timeout=timeout, trust_env=False)
        else:
            response = client.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return HealthReport(False, f"the web server does not answer yet ({type(exc).__name__})")
    if response.status_code != 200:
        return HealthReport(False, f"the health endpoint answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return HealthReport(False, "the health endpoint returned no JSON")
    return evaluate_health(body, major)


class HealthProbe:
    """``probe_health`` through one client, for a supervisor that probes several times a second.

    Loopback only: no proxy from the environment, and no kept-alive connections that a
    restarted web server would leave stale.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._client = httpx.Client(trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))

    def __call__(self, base_url: str, major: int) -> HealthReport:
        return probe_health(base_url, major, timeout=self._timeout, client=self._client)

    def close(self) -> None:
        self._client.close()
