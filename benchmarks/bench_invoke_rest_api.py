"""What InvokeRestApi adds on top of calling Airflow's REST API directly: latency and throughput.

Starts a real openmwaa server (``python -m openmwaa up``, throttle off:
``OPENMWAA_REST_API_RATE=0``) with one Airflow 3 environment holding 100 DAGs.

**Side by side with a bare Airflow** (``GET /version`` and ``GET /dags?limit=100``): a second
``airflow api-server`` of the same runtime, on the same metadata database, with Airflow's own
SimpleAuthManager and ``simple_auth_manager_all_admins`` (no token at all), is the baseline;
openmwaa's own api-server called directly with an openmwaa token shows what the auth manager and
token check cost; InvokeRestApi (pre-signed) shows the rest. Sequential calls, interleaved.

Then the same Airflow endpoint (``GET /api/v2/version``) three ways in the same run:

- **direct**: ``requests`` with keep-alive straight to the environment's api-server on loopback,
  with a token minted the way openmwaa mints them (secrets read from the server's state DB; the
  api-server's port from its process's command line). This is the baseline.
- **proxy (pre-signed)**: one InvokeRestApi request signed once with botocore's SigV4 signer and
  replayed with ``requests`` (a repeat of a signature inside the clock-skew window is allowed):
  openmwaa's server-side cost only.
- **proxy (boto3)**: ``client.invoke_rest_api`` as users call it: adds botocore's own signing and
  parsing on the client side.

Latency: sequential calls, interleaved round-robin so that load drifts hit every row alike; p50
and p99, and the difference to direct. Throughput: N threads (each with its own session or boto3
client) for a fixed time, and again with the lean load generator (``loadgen``: one pre-serialized
request per connection, ~0.1 ms of client CPU a call) for direct and pre-signed, which measures
the servers rather than the clients sharing their cores. Targets: p50 +2 ms at most, p99 +10 ms
at most, throughput >= 0.85 of direct (judged on the lean-client rows).

Upstream client: the CPU this process spends per request (``time.process_time``; Airflow runs in
other processes) calling the api-server directly with openmwaa's ``Http1Client`` and with
aiohttp's ``ClientSession`` (same llhttp parser, pooled connections), alternating rounds on
uvloop as the server runs. The rule: if aiohttp is within 10 % of ``Http1Client``'s CPU per
request, openmwaa switches to it (needs ``pip install -e ".[bench]"``).

    .venv/bin/python benchmarks/bench_invoke_rest_api.py [--calls 400] [--threads 8] [--seconds 5] \
        [--rounds 3] [--client-calls 2000] [--only-clients] [--only-bare]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import loadgen
from bench_webserver_scaling import DAG_TEMPLATE, DAGS
from cpu_breakdown import TICKS, process_ticks
from tests.e2e.conftest import (
    ACCESS_KEY,
    AIRFLOW3,
    REGION,
    SECRET_KEY,
    OpenMwaaServer,
    create_environment,
    free_port,
    start_server,
    stop_server,
)

from openmwaa.auth.credentials import SecretBox
from openmwaa.runtime.airflow_token import mint_airflow_token
from openmwaa.store.db import open_engine
from openmwaa.store.environments import EnvironmentKey, EnvironmentRepository
from openmwaa.supervisor.proc import all_stats, descendants
from openmwaa.upstream.client import Http1Client
from openmwaa.upstream.request import UpstreamRequest

ACCOUNT = "123456789012"
ENV = "bench-af3"
PATH = "/version"

Call = Callable[[], Any]


def wait_for_admin_key(server: OpenMwaaServer, timeout: float = 15.0) -> None:
    """Until the server knows the bootstrap key (it may listen a moment before it reloads it)."""
    mwaa = server.client()
    deadline = time.monotonic() + timeout
    while True:
        try:
            mwaa.list_environments()
            return
        except mwaa.exceptions.ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def airflow_process(server: OpenMwaaServer) -> tuple[int, int]:
    """(pid, port) of the api-server (the supervisor binds it to loopback), from its command line.

    The supervisor runs each component as a child of the server process. Airflow rewrites its
    process title (``airflow api_server -- host:127.0.0.1 port:N``, over its argv and environment),
    so both that and the original ``api-server --port N`` are recognised.
    """
    for pid in children_of(server.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")
        except OSError:
            continue
        found = re.search(r"api[-_]server\b.*?(?:--port |port:)(\d+)", cmdline)
        if found:
            return pid, int(found.group(1))
    raise RuntimeError("no Airflow api-server process found for the benchmark environment")


def scheduler_process(server: OpenMwaaServer) -> Path:
    for pid in children_of(server.process.pid):
        try:
            if b"airflow\0scheduler" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return Path(f"/proc/{pid}")
        except OSError:
            continue
    raise RuntimeError("no Airflow scheduler process found for the benchmark environment")


def airflow_port(server: OpenMwaaServer) -> int:
    return airflow_process(server)[1]


class BareApiServer:
    """A second ``airflow api-server`` beside the environment's: the same runtime, configuration,
    database and user, but Airflow's own SimpleAuthManager with everyone admin (no token checked).
    """

    AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"

    def __init__(self, server: OpenMwaaServer, log_path: Path) -> None:
        # The api-server's title rewrite wiped its own environ; the scheduler's has everything the
        # api-server's does but the component name and log level.
        proc = scheduler_process(server)
        environ = dict(
            item.split("=", 1)
            for item in proc.joinpath("environ").read_bytes().decode().split("\0")
            if "=" in item
        )
        environ["MWAA_AIRFLOW_COMPONENT"] = "webserver"
        status = proc.joinpath("status").read_text()
        uid, gid = (int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1)) for k in ("Uid", "Gid"))  # type: ignore[union-attr]
        python = proc.joinpath("cmdline").read_bytes().split(b"\0")[0].decode()  # the runtime's python
        self.port = free_port()
        environ.update(
            AIRFLOW__CORE__AUTH_MANAGER=self.AUTH_MANAGER,
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__API__PORT=str(self.port),
        )
        command = [
            str(python),
            "-m",
            "airflow",
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=environ,
                cwd=os.readlink(proc / "cwd"),
                user=uid,
                group=gid,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base = f"http://127.0.0.1:{self.port}/api/v2"
        deadline = time.monotonic() + 240
        while True:
            try:
                if requests.get(f"{self.base}/version", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the bare api-server did not start; see {log_path}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def get_caller(url: str, headers: dict[str, str] | None = None) -> Call:
    session = requests.Session()
    session.trust_env = False
    # Uncompressed, as InvokeRestApi's answers are (openmwaa asks Airflow for none): with requests'
    # default "gzip, deflate", Airflow's GZipMiddleware would compress /dags' ~90 kB for the direct
    # rows only, and their extra CPU would hide part of what openmwaa's hop adds.
    session.headers["Accept-Encoding"] = "identity"

    def call() -> Any:
        response = session.get(url, headers=headers or {}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    return call


def presigned_caller(server: OpenMwaaServer, body: bytes) -> Call:
    url = f"{server.endpoint_url}/restapi/{ENV}"
    request = AWSRequest("POST", url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", REGION).add_auth(request)
    headers = dict(request.headers.items())
    session = requests.Session()
    session.trust_env = False

    def call() -> Any:
        response = session.post(url, data=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["RestApiResponse"]

    return call


def side_by_side(server: OpenMwaaServer, bare: BareApiServer, calls: int) -> None:
    """Latency of /version and /dags?limit=100: bare Airflow, openmwaa's api-server, InvokeRestApi."""
    print(
        f"\nSide by side with a bare Airflow 3.3.1 api-server: {calls} sequential calls per row, interleaved"
    )
    figures = " | ".join(f"{h:>7}" for h in ("p50 ms", "p99 ms", "+p50 ms", "+p99 ms"))
    print(f"| {'endpoint':<22} | {'row':<34} | {figures} |")
    print(f"|{'-' * 24}|{'-' * 36}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for path, query in (("/version", {}), ("/dags", {"limit": DAGS})):
        suffix = f"?limit={DAGS}" if query else ""
        rows = {name: call for name, (call, _) in side_rows(server, bare, path, suffix).items()}
        answers = [call() for call in rows.values()]
        if path == "/dags":
            assert all(a["total_entries"] >= DAGS and len(a["dags"]) == DAGS for a in answers)
        samples = latency(rows, calls)
        base50 = percentile(samples["bare api-server (baseline)"], 0.5)
        base99 = percentile(samples["bare api-server (baseline)"], 0.99)
        for name, values in samples.items():
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            print(
                f"| GET {path + suffix:<18} | {name:<34} | {p50 * 1e3:7.2f} | {p99 * 1e3:7.2f} | "
                f"{(p50 - base50) * 1e3:7.2f} | {(p99 - base99) * 1e3:7.2f} |"
            )
    print("target: InvokeRestApi's +p50 on /dags <= 2 ms")
    server_cpu(server, bare)


def tree_cpu(pid: int, *, alone: bool = False) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and every process below it (``alone``:
    by ``pid`` only: the openmwaa server's children are the environment's Airflow processes)."""
    members = [pid] if alone else descendants([pid], all_stats())
    return sum(process_ticks(member, children=False) for member in members) / TICKS


def side_rows(
    server: OpenMwaaServer, bare: BareApiServer, path: str, suffix: str
) -> dict[str, tuple[Call, list[int]]]:
    """Each row's caller and the processes that serve it (whose CPU it costs)."""
    api_pid, port = airflow_process(server)
    _, headers = direct_request(server)
    own = f"http://127.0.0.1:{port}/api/v2"
    query = {"QueryParameters": {"limit": DAGS}} if suffix else {}
    body = json.dumps({"Path": path, "Method": "GET", **query}).encode()
    return {
        "bare api-server (baseline)": (get_caller(f"{bare.base}{path}{suffix}"), [bare.process.pid]),
        "openmwaa api-server, direct + token": (get_caller(f"{own}{path}{suffix}", headers), [api_pid]),
        "InvokeRestApi (pre-signed)": (presigned_caller(server, body), [api_pid, server.process.pid]),
    }


def idle_cpu_rate(pid: int, seconds: float = 5.0) -> float:
    """CPU seconds per second the process spends with no call in flight (its background work:
    supervision, health probes, statsd, log shipping), to take out of the per-call figures."""
    return idle_cpu_rates({pid: True}, seconds)[pid]


def idle_cpu_rates(pids: dict[int, bool], seconds: float = 5.0) -> dict[int, float]:
    """``idle_cpu_rate`` of several processes over the same seconds (``pids``: pid -> alone)."""
    before, start = {pid: tree_cpu(pid, alone=alone) for pid, alone in pids.items()}, time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    return {pid: (tree_cpu(pid, alone=alone) - before[pid]) / elapsed for pid, alone in pids.items()}


def server_cpu(server: OpenMwaaServer, bare: BareApiServer, calls: int = 150) -> None:
    """CPU the serving processes spend per call, row after row: unlike latency, what a busy
    machine's other work does not inflate. The openmwaa server's own share is what it adds, less
    what it spends anyway in the same time with no call (measured before and after the rows)."""
    print(f"\nServer-side CPU per call ({calls} sequential calls per row): Airflow's process(es), openmwaa's")
    # Airflow's api-servers have background work too (openmwaa's health probes hit its own one
    # every 2 s, not the bare one): taken out over each row's wall time, as openmwaa's.
    watched = {server.process.pid: True, airflow_process(server)[0]: False, bare.process.pid: False}
    idle = [idle_cpu_rates(watched)]
    rows: list[tuple[str, str, float, float, float, int]] = []
    for path, suffix in (("/version", ""), ("/dags", f"?limit={DAGS}")):
        for name, (call, pids) in side_rows(server, bare, path, suffix).items():
            for _ in range(10):
                call()
            before, start = [tree_cpu(pid, alone=i > 0) for i, pid in enumerate(pids)], time.monotonic()
            for _ in range(calls):
                call()
            wall = (time.monotonic() - start) / calls
            after = [tree_cpu(pid, alone=i > 0) for i, pid in enumerate(pids)]
            used = [(a - b) / calls * 1e3 for a, b in zip(after, before, strict=True)]
            airflow, proxy = used[0], (used[1] if len(used) > 1 else None)
            rows.append((path + suffix, name, airflow, -1.0 if proxy is None else proxy, wall, pids[0]))
    idle.append(idle_cpu_rates(watched))
    rates = {pid: statistics.mean(r[pid] for r in idle) for pid in watched}
    rate = rates[server.process.pid]
    print(
        "with no call in flight, ms of CPU a second (before and after the rows): openmwaa "
        + " and ".join(f"{r[server.process.pid] * 1e3:.1f}" for r in idle)
        + f"; its api-server {rates[airflow_process(server)[0]] * 1e3:.1f}, the bare one "
        f"{rates[bare.process.pid] * 1e3:.1f}; '- idle' takes that out over each row's wall time"
    )
    heads = ("Airflow ms", "Airflow - idle", "openmwaa ms", "openmwaa - idle", "wall ms/call")
    print(f"| {'endpoint':<22} | {'row':<34} | " + " | ".join(f"{h:>15}" for h in heads) + " |")
    print(f"|{'-' * 24}|{'-' * 36}|" + "|".join("-" * 17 for _ in heads) + "|")
    for endpoint, name, airflow, proxy, wall, airflow_pid in rows:
        own = f"{proxy:15.2f} | {proxy - rate * wall * 1e3:15.2f}" if proxy >= 0 else f"{'-':>15} | {'-':>15}"
        quiet = airflow - rates[airflow_pid] * wall * 1e3
        figures = f"{airflow:15.2f} | {quiet:15.2f} | {own} | {wall * 1e3:15.1f}"
        print(f"| GET {endpoint:<18} | {name:<34} | {figures} |")


def environment_with_dags(server: OpenMwaaServer, timeout: float = 300) -> None:
    """The benchmark's environment, AVAILABLE with its 100 DAGs parsed."""
    wait_for_admin_key(server)
    bucket = server.make_bucket(f"bucket-{ENV}")
    for i in range(DAGS):
        (bucket / "dags" / f"bench_{i:03d}.py").write_text(DAG_TEMPLATE.format(i=i))
    create_environment(server, ENV, AIRFLOW3, bucket=f"bucket-{ENV}")
    mwaa = server.client()
    deadline = time.monotonic() + timeout
    while True:
        answer = mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET", QueryParameters={"limit": 1})
        if answer["RestApiResponse"]["total_entries"] >= DAGS:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {DAGS} DAGs were not parsed in {timeout:.0f} s")
        time.sleep(2)


def direct_request(server: OpenMwaaServer) -> tuple[str, dict[str, str]]:
    """Airflow's own URL for the call, and headers with a token minted with the environment's secret."""
    engine = open_engine(f"sqlite:///{server.data_dir / 'openmwaa.db'}")
    record = EnvironmentRepository(engine, cipher=SecretBox.open(server.data_dir)).get(
        EnvironmentKey(ACCOUNT, REGION, ENV)
    )
    engine.dispose()
    assert record is not None
    token = mint_airflow_token(
        major=3,
        jwt_secret=record.secrets["jwt_secret"],
        token_secret=record.secrets["token_secret"],
        username="user/admin",
        role="Admin",
        ttl=3600,
    )
    url = f"http://127.0.0.1:{airflow_port(server)}/api/v2{PATH}"
    return url, {"authorization": f"Bearer {token}", "accept": "application/json"}


def direct_call(server: OpenMwaaServer) -> Callable[[], Call]:
    """A factory of direct callers (one keep-alive session each)."""
    url, headers = direct_request(server)

    def make() -> Call:
        session = requests.Session()
        session.trust_env = False
        session.headers["Accept-Encoding"] = "identity"  # as in get_caller

        def call() -> Any:
            response = session.get(url, headers=headers, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()

        return call

    return make


PRESIGNED_BODY = b'{"Path": "/version", "Method": "GET"}'


def presigned_request(server: OpenMwaaServer) -> tuple[str, dict[str, str]]:
    """The URL and headers of one InvokeRestApi call signed now (valid for the 5-minute skew)."""
    url = f"{server.endpoint_url}/restapi/{ENV}"
    request = AWSRequest("POST", url, data=PRESIGNED_BODY, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", REGION).add_auth(request)
    return url, dict(request.headers.items())


def presigned_call(server: OpenMwaaServer) -> Callable[[], Call]:
    body = PRESIGNED_BODY
    url, headers = presigned_request(server)

    def make() -> Call:
        session = requests.Session()
        session.trust_env = False

        def call() -> Any:
            response = session.post(url, data=body, headers=headers, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()

        return call

    return make


def boto3_call(server: OpenMwaaServer) -> Callable[[], Call]:
    def make() -> Call:
        client = boto3.client(
            "mwaa",
            endpoint_url=server.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(inject_host_prefix=False, retries={"max_attempts": 0}),
        )

        def call() -> Any:
            return client.invoke_rest_api(Name=ENV, Path=PATH, Method="GET")

        return call

    return make


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(rows: dict[str, Call], calls: int) -> dict[str, list[float]]:
    for call in rows.values():  # warm connections, caches, Airflow's own
        for _ in range(20):
            call()
    samples: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(calls):
        for name, call in rows.items():
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return samples


def throughput(make: Callable[[], Call], threads: int, seconds: float) -> float:
    callers = [make() for _ in range(threads)]
    for call in callers:
        call()
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    deadline = 0.0

    def run(index: int) -> None:
        start.wait()
        while time.perf_counter() < deadline:
            callers[index]()
            counts[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.perf_counter() + seconds
    start.wait()
    began = time.perf_counter()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


async def http1_client_calls(url: str, headers: dict[str, str], calls: int) -> tuple[float, float]:
    """CPU and wall seconds per request of openmwaa's own upstream client."""
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")
    target = "/" + url.removeprefix("http://").split("/", 1)[1]
    request = UpstreamRequest("GET", host, int(port), target, list(headers.items()))
    client = Http1Client()
    try:
        for _ in range(20):
            await client.request(request, timeout=30, max_body=1 << 20)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            response = await client.request(request, timeout=30, max_body=1 << 20)
            assert response.status == 200, response.body
        return (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls
    finally:
        await client.aclose()


async def aiohttp_calls(url: str, headers: dict[str, str], calls: int) -> tuple[float, float]:
    """The same with aiohttp, set up as openmwaa would use it: pooled, no cookie jar, a deadline."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit_per_host=64)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, timeout=timeout
    ) as session:

        async def call() -> None:
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                assert response.status == 200, body

        for _ in range(20):
            await call()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            await call()
        return (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls


def upstream_clients(server: OpenMwaaServer, calls: int, rounds: int) -> None:
    try:
        import aiohttp
    except ImportError:
        print("\nUpstream client: aiohttp is not installed (pip install -e '.[bench]'); skipped")
        return
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    url, headers = direct_request(server)
    clients = {
        "openmwaa Http1Client": http1_client_calls,
        f"aiohttp {aiohttp.__version__}": aiohttp_calls,
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, run in clients.items():
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                results[name].append(runner.run(run(url, headers, calls)))
    print(
        f"\nUpstream client: GET /api/v2{PATH} straight to Airflow, {calls} sequential calls, "
        f"{rounds} alternating rounds (median)"
    )
    print(f"{'client':<22} {'CPU us/req':>10} {'wall ms/req':>11} {'CPU ratio':>9}")
    base = statistics.median(cpu for cpu, _ in results["openmwaa Http1Client"])
    for name, values in results.items():
        cpu = statistics.median(c for c, _ in values)
        wall = statistics.median(w for _, w in values)
        print(f"{name:<22} {cpu * 1e6:10.1f} {wall * 1e3:11.2f} {cpu / base:9.2f}")
    print("rule: switch to aiohttp if its CPU ratio is <= 1.10")


def version_rows(server: OpenMwaaServer, args: argparse.Namespace) -> None:
    """GET /version: latency and throughput, direct to openmwaa's api-server vs InvokeRestApi."""
    makers = {
        "direct (baseline)": direct_call(server),
        "proxy, pre-signed": presigned_call(server),
        "proxy, boto3": boto3_call(server),
    }
    rows = {name: make() for name, make in makers.items()}
    assert rows["proxy, boto3"]()["RestApiResponse"] == rows["direct (baseline)"]()

    samples = latency(rows, args.calls)
    base50 = percentile(samples["direct (baseline)"], 0.5)
    base99 = percentile(samples["direct (baseline)"], 0.99)
    print(f"\nLatency: GET /api/v2{PATH}, {args.calls} sequential calls per row, interleaved")
    print(f"{'row':<20} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8}")
    for name, values in samples.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(
            f"{name:<20} {p50 * 1e3:8.2f} {p99 * 1e3:8.2f} "
            f"{(p50 - base50) * 1e3:8.2f} {(p99 - base99) * 1e3:8.2f}"
        )
    print("targets: +p50 <= 2 ms, +p99 <= 10 ms")

    print(f"\nThroughput: {args.threads} concurrent clients, {args.seconds:g} s per row")
    print(f"{'row':<20} {'req/s':>8} {'ratio':>8}")
    base_rate = 0.0
    for name, make in makers.items():
        rate = throughput(make, args.threads, args.seconds)
        base_rate = base_rate or rate
        print(f"{name:<20} {rate:8.1f} {rate / base_rate:8.2f}")
    print("(requests/boto3 clients in threads: their own CPU, ~1 ms a call, shares the 2 cores)")

    print(
        f"\nThroughput, lean client (loadgen): {args.threads} connections, "
        f"{args.rounds} alternating rounds of {args.seconds:g} s per row (mean)"
    )
    print(f"{'row':<20} {'req/s':>8} {'ratio':>8}")
    lean = {
        "direct (baseline)": direct_request(server),
        "proxy, pre-signed": presigned_request(server),
    }
    rates: dict[str, list[float]] = {name: [] for name in lean}
    for _ in range(args.rounds):
        for name, (url, headers) in lean.items():
            body = PRESIGNED_BODY if name.startswith("proxy") else b""
            rate, errors = asyncio.run(
                loadgen.throughput(
                    url,
                    headers,
                    seconds=args.seconds,
                    concurrency=args.threads,
                    method="POST" if body else "GET",
                    body=body,
                )
            )
            assert errors == 0, f"{name}: {errors} answers other than 200"
            rates[name].append(rate)
    lean_base = statistics.mean(rates["direct (baseline)"])
    for name, values in rates.items():
        mean = statistics.mean(values)
        print(f"{name:<20} {mean:8.1f} {mean / lean_base:8.2f}")
    print("target: ratio >= 0.85")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=400, help="sequential calls per row (latency)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients (throughput)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput row")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (lean-client rows)")
    parser.add_argument(
        "--client-calls", type=int, default=2000, help="sequential calls per round (upstream client rows)"
    )
    parser.add_argument("--only-clients", action="store_true", help="only the upstream client comparison")
    parser.add_argument("--only-bare", action="store_true", help="only the side by side with a bare Airflow")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-invoke-") as tmp:
        print("starting openmwaa and an Airflow 3 environment (about a minute)...", flush=True)
        Path(tmp).chmod(0o711)  # as root, the environment runs as a user of its own
        server = start_server(Path(tmp) / "data", extra_env={"OPENMWAA_REST_API_RATE": "0"})
        try:
            environment_with_dags(server)
            if args.only_clients:
                upstream_clients(server, args.client_calls, args.rounds)
                return 0
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            bare = BareApiServer(server, Path(tmp) / "bare-api-server.log")
            try:
                side_by_side(server, bare, args.calls)
            finally:
                bare.stop()
            if args.only_bare:
                return 0
            version_rows(server, args)
            upstream_clients(server, args.client_calls, args.rounds)
        finally:
            stop_server(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
