"""bench_observability's dashboard section: the dashboard's data for 20 environments, warm (p95 < 1 s).

Twenty real Airflow environments need ~10 GB of memory and minutes of start-up on a 2-core machine,
so the environments' Airflow here is **in-process fake Airflow REST APIs** (one loopback port per
environment, answering the six GETs of a refresh with realistic JSON after ``--airflow-latency-ms``,
25 ms by default: what Airflow 3's api-server took per call on this machine). Everything on
openmwaa's side is real: the whole app (``create_app``) served by uvicorn in a thread, a pre-signed
sign-in, the session cookie, the policy engine over 20 environment ARNs, InvokeRestApi's upstream
client with Airflow credentials minted per call, the audit trail, the per-environment cache.

Rows (the same run):

- **cold**: the first view (every environment read from Airflow while the viewer waits);
- **warm, 1 viewer**: polls of ``/dashboard/api/state`` as the page makes them (the cache refreshes
  each environment every ``--refresh`` s under them, so the p95 includes refreshes);
- **warm, N viewers**: as many concurrent pollers, each polling back to back;
- **uncached baseline**: the same data read straight from the 20 fake Airflows on every view
  (``fetch_dag_data`` per environment, all at once), which is what the dashboard would cost each
  environment without the cache.

Upstream load: requests each environment's Airflow received per second during the N-viewer row,
against what the baseline would send for the same views.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import uvicorn
from botocore.credentials import Credentials

from openmwaa.app import build_services, create_app
from openmwaa.auth.bootstrap import ensure_bootstrap_admin
from openmwaa.cli.dashboard import signin_url
from openmwaa.services.dashboard_data import fetch_dag_data
from openmwaa.settings import Settings
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from openmwaa.upstream.balancer import Lease, untracked_lease
from openmwaa.upstream.client import Http1Client

ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY_ID, SECRET = "AKIABENCHDASHBOARD01", "bench-dashboard-secret-000000000000000000"
TARGET_P95_S = 1.0


def _runs(state: str, count: int) -> bytes:
    runs = [
        {
            "dag_id": f"dag_{i % 7}",
            "dag_run_id": f"manual__{i}",
            "state": state,
            "start_date": "2026-01-01T00:00:00+00:00",
            "end_date": "2026-01-01T00:05:00+00:00",
            "conf": {},
        }
        for i in range(min(count, 100 if state == "failed" else 1))
    ]
    return json.dumps({"dag_runs": runs, "total_entries": count}).encode()


_ANSWERS: dict[str, bytes] = {
    "health": json.dumps(
        {n: {"status": "healthy"} for n in ("metadatabase", "scheduler", "triggerer", "dag_processor")}
    ).encode(),
    "queued": _runs("queued", 3),
    "running": _runs("running", 5),
    "success": _runs("success", 400),
    "failed": _runs("failed", 12),
    "tasks": json.dumps(
        {
            "task_instances": [
                {
                    "dag_id": f"dag_{i}",
                    "dag_run_id": f"manual__{i}",
                    "task_id": "load",
                    "try_number": 2,
                    "end_date": f"2026-01-01T00:{i:02d}:00+00:00",
                }
                for i in range(20)
            ],
            "total_entries": 20,
        }
    ).encode(),
}


@dataclass
class FakeAirflows:
    """One fake Airflow REST API per environment, each on its own loopback port, in one thread."""

    count: int
    latency: float
    ports: list[int] = field(default_factory=list)
    requests_by_port: dict[int, int] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            servers = [
                self.loop.run_until_complete(asyncio.start_server(self._handler, "127.0.0.1", 0))
                for _ in range(self.count)
            ]
            self.ports = [s.sockets[0].getsockname()[1] for s in servers]
            self.requests_by_port = dict.fromkeys(self.ports, 0)
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, name="fake-airflows", daemon=True).start()
        ready.wait(10)

    async def _handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                self.requests_by_port[port] += 1
                await asyncio.sleep(self.latency)
                body = _ANSWERS[_answer_for(target)]
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def total_requests(self) -> int:
        return sum(self.requests_by_port.values())


def _answer_for(target: str) -> str:
    if "health" in target:
        return "health"
    if "taskInstances" in target:
        return "tasks"
    state = target.partition("state=")[2].partition("&")[0]
    return state if state in _ANSWERS else "health"


class FakeSupervisor:
    """Where each environment's (fake) Airflow listens: what the dashboard and InvokeRestApi ask."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls

    def endpoint(self, key: str) -> str | None:
        return self.urls.get(key)

    def lease(self, key: str) -> Lease | None:
        url = self.urls.get(key)
        return untracked_lease(url) if url else None

    def web_servers(self, key: str) -> int:
        return 1 if key in self.urls else 0

    def shutdown(self, timeout: float = 30.0) -> None:
        pass


def _record(name: str, secret: str) -> EnvironmentRecord:
    return EnvironmentRecord(
        key=EnvironmentKey(ACCOUNT, REGION, name),
        arn=f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{name}",
        status="AVAILABLE",
        created_at=time.time(),
        config={"AirflowVersion": "3.3.1", "WebserverAccessMode": "PUBLIC_ONLY"},
        previous_config=None,
        last_update=None,
        tags={},
        secrets={"jwt_secret": secret, "token_secret": secret},
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(call: Callable[[], Any], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def _serve(
    data_dir: Path, fakes: FakeAirflows, environments: int, refresh: float
) -> tuple[Any, uvicorn.Server, str, list[EnvironmentRecord]]:
    """The whole openmwaa app in a thread, its environments' Airflow the fakes."""
    port = _free_port()
    settings = Settings(
        data_dir=data_dir,
        port=port,
        region=REGION,
        account_id=ACCOUNT,
        runtime_dir=data_dir / "runtimes",
        default_environment=False,
        bootstrap_access_key_id=KEY_ID,
        bootstrap_secret_access_key=SECRET,
        dashboard_refresh_interval=refresh,
    )
    ensure_bootstrap_admin(settings)
    services = build_services(settings)
    secret = uuid.uuid4().hex * 2
    records = [_record(f"bench-env-{i:02d}", secret) for i in range(environments)]
    for record in records:
        services.repository.insert(record)
    services.supervisor = FakeSupervisor(  # type: ignore[assignment]
        {str(r.key): f"http://127.0.0.1:{p}" for r, p in zip(records, fakes.ports, strict=True)}
    )
    services.audit.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services), host="127.0.0.1", port=port, log_level="warning",
            access_log=False, lifespan="off",
        )
    )  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return services, server, f"http://127.0.0.1:{port}", records


def _concurrent(
    view: Callable[[requests.Session], None], sessions: list[requests.Session], seconds: float
) -> list[float]:
    """Each session polls back to back for ``seconds``; every view's latency."""
    samples: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def poller(session: requests.Session) -> None:
        while time.monotonic() < stop:
            sample = _timed(lambda: view(session), 1)
            with lock:
                samples.extend(sample)

    threads = [threading.Thread(target=poller, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


#: (measure, p50 ms, p95 ms, against, ratio): the rows of bench_observability.
Figures = tuple[str, float, float, str, float]


def _figures(measure: str, samples: list[float], against: str, reference: float) -> Figures:
    p50, p95 = statistics.median(samples) * 1000, _percentile(samples, 0.95) * 1000
    return (measure, p50, p95, against, p95 / reference)


def run_dashboard_section(
    data_dir: Path,
    *,
    environments: int = 20,
    polls: int = 200,
    viewers: int = 10,
    seconds: float = 15.0,
    refresh: float = 5.0,
    airflow_latency_ms: float = 25.0,
) -> tuple[list[Figures], str]:
    """The section's rows (p95 against the 1 s target, and the uncached baseline), and a note."""
    fakes = FakeAirflows(environments, airflow_latency_ms / 1000)
    fakes.start()
    services, server, endpoint, records = _serve(data_dir, fakes, environments, refresh)

    def viewer() -> requests.Session:
        session = requests.Session()
        url = signin_url(endpoint, Credentials(KEY_ID, SECRET), REGION, 60)
        assert session.get(url, allow_redirects=False, timeout=30).status_code == 303
        return session

    def view(session: requests.Session) -> None:
        response = session.get(endpoint + "/dashboard/api/state", timeout=30)
        body = response.json()
        assert response.status_code == 200 and len(body["environments"]) == environments, body
        assert all("runsByState" in e for e in body["environments"]), "a refresh did not finish"

    try:
        one = viewer()
        cold = _timed(lambda: view(one), 1)
        warm = _timed(lambda: view(one), polls)
        sessions = [viewer() for _ in range(viewers)]
        before, started = fakes.total_requests(), time.monotonic()
        many = _concurrent(view, sessions, seconds)
        elapsed = time.monotonic() - started
        cached_rate = (fakes.total_requests() - before) / elapsed / environments
        uncached_rate = 6 * len(many) / elapsed / environments
        baseline = asyncio.run(_uncached(services, records, rounds=20))
    finally:
        server.should_exit = True
        services.shutdown()
    uncached_p95 = _percentile(baseline, 0.95) * 1000
    rows = [
        _figures(f"dashboard {environments} envs (FAKE Airflow): cold", cold, "target 1 s", 1000),
        _figures(f"dashboard {environments} envs (FAKE Airflow): warm", warm, "target 1 s", 1000),
        _figures(f"  same, {viewers} concurrent viewers", many, "target 1 s", 1000),
        _figures("  uncached: every view reads 20 Airflows", baseline, "", uncached_p95),
        _figures("  warm vs uncached", warm, "uncached", uncached_p95),
    ]
    note = (
        f"dashboard: {environments} in-process FAKE Airflow REST APIs ({airflow_latency_ms:g} ms a call), "
        f"not real Airflow; openmwaa's side is real. Upstream requests per environment per second with "
        f"{viewers} viewers: {cached_rate:.2f} cached vs {uncached_rate:.1f} uncached "
        f"(bound: 6 per {refresh:g} s = {6 / refresh:.2f})."
    )
    return rows, note


async def _uncached(services: Any, records: list[EnvironmentRecord], *, rounds: int) -> list[float]:
    """Every environment read from its fake Airflow on every view, as without the cache (timed)."""
    from openmwaa.services.invoke import RestApiInvoker
    from openmwaa.services.throttle import RateLimiter

    invoker = RestApiInvoker(
        endpoints=services.supervisor,
        environments=services.environments,
        client=Http1Client(),
        timeout=10,
        limiter=RateLimiter(0),
    )
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        results = await asyncio.gather(*(fetch_dag_data(invoker, r, time.time()) for r in records))
        samples.append(time.perf_counter() - start)
        assert all(r.error is None for r in results), [r.error for r in results if r.error]
    return samples


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
