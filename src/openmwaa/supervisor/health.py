"""Airflow's own health endpoint: the environment is AVAILABLE only when it says all is well."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

log = logging.getLogger(__name__)

HEALTH_PATH: Final[Mapping[int, str]] = {3: "/api/v2/monitor/health", 2: "/health"}
#: What must report "healthy" (Airflow 2 runs its DAG processor inside the scheduler).
REQUIRED_COMPONENTS: Final[Mapping[int, tuple[str, ...]]] = {
    3: ("metadatabase", "scheduler", "triggerer", "dag_processor"),
    2: ("metadatabase", "scheduler", "triggerer"),
}


#: The component (as openmwaa names its processes) behind each part of the health report.
COMPONENT_OF: Final[Mapping[str, str]] = {
    "scheduler": "scheduler",
    "triggerer": "triggerer",
    "dag_processor": "dag-processor",
}
#: The component that serves the health endpoint: if it does not answer, it is the one failing.
WEB_COMPONENT: Final[Mapping[int, str]] = {3: "api-server", 2: "webserver"}


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    #: Human-readable: which parts are not healthy, or why the endpoint did not answer.
    detail: str
    #: The components known to be failing (a failing metadatabase is no component's fault).
    failing: tuple[str, ...] = ()


def evaluate_health(body: Any, major: int) -> HealthReport:
    """Judge a health response body (pure)."""
    if not isinstance(body, Mapping):
        return HealthReport(False, "the health endpoint returned no JSON object")
    unhealthy, failing = [], []
    for name in REQUIRED_COMPONENTS[major]:
        part = body.get(name)
        status = part.get("status") if isinstance(part, Mapping) else None
        if status != "healthy":
            unhealthy.append(f"{name} is {status or 'not reporting'}")
            if name in COMPONENT_OF:
                failing.append(COMPONENT_OF[name])
    if unhealthy:
        return HealthReport(False, "; ".join(unhealthy), tuple(failing))
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
        detail = f"the web server does not answer yet ({type(exc).__name__})"
        return HealthReport(False, detail, (WEB_COMPONENT[major],))
    if response.status_code != 200:
        detail = f"the health endpoint answered HTTP {response.status_code}"
        return HealthReport(False, detail, (WEB_COMPONENT[major],))
    try:
        body = response.json()
    except ValueError:
        return HealthReport(False, "the health endpoint returned no JSON", (WEB_COMPONENT[major],))
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


#: Airflow 3's task execution API (mounted at ``/execution``; every task calls it, on the
#: environment's own web server) builds its versioned routes on its first request (Cadwyn), in the
#: server's event loop: 4.7 s on 2 quiet cores (Airflow 3.3.1) during which that web server answers
#: nothing else, and the first task's ``/run`` call, and every task starting beside it, waited.
#: Its health route is enough to trigger it, and needs no token.
EXECUTION_API_HEALTH_PATH: Final = "/execution/health"


def warm_execution_api(base_url: str, *, timeout: float = 60.0) -> bool:
    """One request to the execution API's health route; True if it answered 200."""
    url = base_url.rstrip("/") + EXECUTION_API_HEALTH_PATH
    try:
        response = httpx.get(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        log.info("the execution API on %s did not answer its warm-up (%s)", base_url, type(exc).__name__)
        return False
    if response.status_code != 200:
        log.info("the execution API on %s answered its warm-up with HTTP %d", base_url, response.status_code)
    return response.status_code == 200


class ExecutionApiWarmup:
    """Warms an Airflow 3 web server's execution API (:func:`warm_execution_api`) on a thread of
    its own; the caller polls the function returned (True once done, answered or not). Airflow 2
    has no execution API: done at once."""

    def __init__(self, timeout: float = 60.0) -> None:
        self._timeout = timeout

    def __call__(self, base_url: str, major: int) -> Callable[[], bool]:
        done = threading.Event()
        if major < 3:
            done.set()
            return done.is_set

        def warm() -> None:
            try:
                warm_execution_api(base_url, timeout=self._timeout)
            finally:
                done.set()

        threading.Thread(target=warm, name="openmwaa-warm-execution-api", daemon=True).start()
        return done.is_set
