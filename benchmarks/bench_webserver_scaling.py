"""Web server replicas under load: 1 vs 2 web servers, scale-up and scale-in, a rolling restart, memory.

Starts real openmwaa servers (``python -m openmwaa up``, throttle off: ``OPENMWAA_REST_API_RATE=0``,
the default scaling windows) one after the other, each with one Airflow 3 environment holding
100 DAGs:

- **1 web server**: ``EnvironmentClass`` mw1.micro, whose minimum (and maximum) is one web server
  and one scheduler; also the idle memory of an environment at its class's minimum.
- **2 web servers**: mw1.small at its minimum, MinWebservers = MaxWebservers = 2.

Each is loaded with ``GET /dags?limit=100`` two ways, in alternating rounds, by the lean load
generator (``loadgen``, N keep-alive connections, ~0.1 ms of client CPU a call): through
InvokeRestApi (one SigV4-signed request replayed) and through a web session (the ``_token``
bearer from the web login, HTTPS to the environment's ``WebServerHostname``). Throughput is
completed calls per second, p50/p99 per call; the ratios compare the two servers of the same run.

During each load, where the CPU goes (``cpu_breakdown``): CPU seconds per second of each web
server replica, the scheduler, the DAG processor, the triggerer, the openmwaa server, the load
generator and the rest of the machine, from ``/proc``; from those, the CPU a call costs, what
runs whatever the load (the background), and the ceiling that leaves on this machine. Each
replica's share of the calls comes from its access log. Each web server's threads are sampled
too (``thread_states``): a web server with requests in flight but no thread on a CPU or waiting
for one is held back by something else, and where its threads sleep says what. Then calls/s
at 1, 2, 4, 6 and 12 connections each way (``--sweep-seconds`` each): whether the connections
or the cores cap it.

Then, on the second environment:

- **scale-up**: MaxWebservers=3, and the same load through InvokeRestApi: seconds from the load
  starting to a third web server in rotation.
- **scale-in**: the load stops; a light load (one thread through InvokeRestApi, one through the
  web session, ``requests``) runs on: seconds to MinWebservers again, and failed requests.
- **rolling restart**: UpdateEnvironment with an ``api.*`` option under the same light load: its
  duration and failed requests.
- **memory**: PSS of each web server (its process tree), and of the idle environment.

Stops by itself (about ten minutes, mostly Airflow starting and parsing the DAGs).

    .venv/bin/python benchmarks/bench_webserver_scaling.py [--connections 6] [--seconds 20] [--rounds 2]
    .venv/bin/python benchmarks/bench_webserver_scaling.py --only throughput  # 1 vs 2 web servers,
                                                 # the CPU breakdown, the sweep (about 8 minutes)
    .venv/bin/python benchmarks/bench_webserver_scaling.py --only scale-up  # the mw1.small environment
                                                                          # and the scale-up alone
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import loadgen
from cpu_breakdown import IDLE, LOADGEN, OTHER, SERVER, STEAL, TICKS, CpuMeter, cpu_ticks, table
from tests.e2e.conftest import (
    ACCESS_KEY,
    AIRFLOW3,
    REGION,
    SECRET_KEY,
    OpenMwaaServer,
    create_environment,
    start_server,
    stop_server,
    wait_for_status,
)
from tests.e2e.test_web_login import ca_file, post_login
from thread_states import ThreadSampler

from openmwaa.supervisor.memory import process_tree_pss
from openmwaa.supervisor.proc import PROC, parse_stat

ENV = "bench-scaling"
DAGS = 100
BODY = json.dumps({"Path": "/dags", "Method": "GET", "QueryParameters": {"limit": DAGS}}).encode()
SESSION_PATH = f"/api/v2/dags?limit={DAGS}"
DAG_TEMPLATE = """from datetime import datetime
from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("bench_{i:03d}", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    EmptyOperator(task_id="noop")
"""
MB = 1024 * 1024


def signed_headers(server: OpenMwaaServer) -> tuple[str, dict[str, str]]:
    url = f"{server.endpoint_url}/restapi/{ENV}"
    request = AWSRequest("POST", url, data=BODY, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", REGION).add_auth(request)
    return url, dict(request.headers.items())


@dataclass(frozen=True)
class WebSession:
    host: str
    token: str
    ca: str

    @property
    def url(self) -> str:
        return f"https://{self.host}{SESSION_PATH}"

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


def web_session(server: OpenMwaaServer) -> WebSession:
    created = server.client().create_web_login_token(Name=ENV)
    login = post_login(server, created["WebServerHostname"], 3, created["WebToken"])
    assert login.status_code == 200, login.text
    return WebSession(created["WebServerHostname"], login.cookies["_token"], ca_file(server))


# Light load, counting every failure (requests in threads) -----------------------------------


class LightLoad:
    """One thread through InvokeRestApi and one through the web session until stopped, each
    pausing ``PAUSE`` s between calls: well under one request in flight on average, so the
    environment scales in (it would not under a load that still fills its replicas)."""

    PAUSE = 0.25

    def __init__(self, server: OpenMwaaServer, session: WebSession) -> None:
        self.server, self.session = server, session
        self.done = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._invoke,), daemon=True),
            threading.Thread(target=self._loop, args=(self._browse,), daemon=True),
        ]

    def __enter__(self) -> LightLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _loop(self, call: Callable[[requests.Session], bool]) -> None:
        http = requests.Session()
        http.trust_env = False
        while not self._stop.is_set():
            try:
                ok = call(http)
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                continue
            if ok:
                self.done += 1
            time.sleep(self.PAUSE)

    def _invoke(self, http: requests.Session) -> bool:
        url, headers = signed_headers(self.server)
        response = http.post(url, data=BODY, headers=headers, timeout=60)
        if response.status_code == 200 and response.json()["RestApiStatusCode"] == 200:
            return True
        self.failures.append(f"InvokeRestApi {response.status_code}: {response.text[:200]}")
        return False

    def _browse(self, http: requests.Session) -> bool:
        response = http.get(
            self.session.url, headers=self.session.headers, verify=self.session.ca, timeout=60
        )
        if response.status_code == 200:
            return True
        self.failures.append(f"web session {response.status_code}: {response.text[:200]}")
        return False


# Throughput (lean load generator) ----------------------------------------------------------


@dataclass
class Row:
    rates: list[float]
    latencies: list[float]
    errors: int = 0
    #: Per run: CPU seconds per second of each part (cpu_breakdown), and the 1-min load average after.
    cpu: list[dict[str, float]] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    #: Per run: calls each web server replica's access log shows.
    served: list[dict[str, int]] = field(default_factory=list)
    #: Per run: DAG files the DAG processor parsed a second.
    parsed: list[float] = field(default_factory=list)
    #: Per run: the share of samples in which each web server (and openmwaa) had a thread on a
    #: CPU or runnable; and where their sleeping threads waited (thread_states), all runs.
    on_cpu: list[dict[str, float]] = field(default_factory=list)
    waits: dict[str, Counter[str]] = field(default_factory=dict)
    #: Processes in each component's session at the end of the last run.
    processes: dict[str, int] = field(default_factory=dict)

    def figures(self) -> tuple[float, float, float]:
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return statistics.mean(self.rates), statistics.median(ordered) * 1e3, p99 * 1e3

    def mean_cpu(self) -> dict[str, float]:
        names = {name for run in self.cpu for name in run}
        return {name: statistics.mean(run.get(name, 0.0) for run in self.cpu) for name in names}


def load_way(server: OpenMwaaServer, session: WebSession, way: str) -> tuple[Any, ...]:
    """(url, headers, method, body, TLS context) of one way of loading the environment."""
    if way == "InvokeRestApi":
        url, headers = signed_headers(server)
        return url, headers, "POST", BODY, None
    return session.url, session.headers, "GET", b"", ssl.create_default_context(cafile=session.ca)


def access_lines(server: OpenMwaaServer) -> dict[str, int]:
    """Requests for ``SESSION_PATH`` each web server replica's log shows so far (Airflow 3's access
    log: ``method=GET path=/api/v2/dags query='limit=100'``), by replica."""
    path, _, query = SESSION_PATH.partition("?")
    line = re.compile(rf"method=GET path={re.escape(path)} query='?{re.escape(query)}'? ".encode())
    counts = {}
    for log in (home(server) / "logs").glob("api-server*.log"):
        with contextlib.suppress(OSError):
            counts[log.stem] = len(line.findall(log.read_bytes()))
    return counts


def parse_results(server: OpenMwaaServer) -> int:
    """DAG parse results the DAG processor has written so far (one log line each)."""
    with contextlib.suppress(OSError):
        return (home(server) / "logs" / "dag-processor.log").read_bytes().count(b"Bulk-writing dags to db")
    return 0


def measured_run(
    server: OpenMwaaServer,
    session: WebSession,
    way: str,
    row: Row,
    *,
    connections: int,
    seconds: float,
) -> float:
    """One load run of ``seconds`` into ``row``, with its CPU breakdown; returns calls/s."""
    url, headers, method, body, tls = load_way(server, session, way)
    logged, parsed = access_lines(server), parse_results(server)
    watched = {**live_pids(server, "api-server*.pid"), SERVER: server.process.pid}
    with CpuMeter([home(server) / "run"], server.process.pid) as meter, ThreadSampler(watched) as threads:
        rate, errors = asyncio.run(
            loadgen.throughput(
                url,
                headers,
                seconds=seconds,
                concurrency=connections,
                ssl_context=tls,
                method=method,
                body=body,
                latencies=row.latencies,
            )
        )
    row.rates.append(rate)
    row.errors += errors
    row.cpu.append(meter.rates)
    row.loads.append(os.getloadavg()[0])
    row.served.append({k: v - logged.get(k, 0) for k, v in access_lines(server).items()})
    row.processes = meter.processes
    row.on_cpu.append(threads.on_cpu)
    for name, waits in threads.waits.items():
        row.waits.setdefault(name, Counter()).update(waits)
    row.parsed.append((parse_results(server) - parsed) / seconds)
    if any(nice for nice in meter.nice.values()):
        print(f"  niced during the load (autogroup nice): {meter.nice}", flush=True)
    return rate


def lean_rows(
    server: OpenMwaaServer, session: WebSession, connections: int, seconds: float, rounds: int
) -> dict[str, Row]:
    rows = {"InvokeRestApi": Row([], []), "web session": Row([], [])}
    for _ in range(rounds):
        for name, row in rows.items():
            measured_run(server, session, name, row, connections=connections, seconds=seconds)
    return rows


SWEEP = (1, 2, 4, 6, 12)


def sweep(server: OpenMwaaServer, session: WebSession, seconds: float) -> dict[str, dict[int, Row]]:
    """Calls/s by connection count, each way: where a closed loop stops adding throughput."""
    found: dict[str, dict[int, Row]] = {"InvokeRestApi": {}, "web session": {}}
    for connections in SWEEP:
        for way, rows in found.items():
            rows[connections] = Row([], [])
            measured_run(server, session, way, rows[connections], connections=connections, seconds=seconds)
    return found


# The environment ---------------------------------------------------------------------------


def home(server: OpenMwaaServer) -> Path:
    return server.data_dir / "environments" / "123456789012" / REGION / ENV


def live_pids(server: OpenMwaaServer, pattern: str = "*.pid") -> dict[str, int]:
    found = {}
    for path in (home(server) / "run").glob(pattern):
        pid = int(json.loads(path.read_text())["pid"])
        if Path(f"/proc/{pid}").exists():
            found[path.stem] = pid
    return found


def web_servers(server: OpenMwaaServer) -> int:
    return len(live_pids(server, "api-server*.pid"))


def rotation_joins(server: OpenMwaaServer) -> int:
    """Web servers that joined the rotation so far (the supervisor logs each as it does)."""
    return server.log_tail(10**6).count("answers on http://")


def environment(tmp: Path, **extra: Any) -> OpenMwaaServer:
    server = start_server(tmp, extra_env={"OPENMWAA_REST_API_RATE": "0", "OPENMWAA_WEB_SERVERS_LIMIT": "0"})
    bucket = server.make_bucket("bucket-bench")
    for i in range(DAGS):
        (bucket / "dags" / f"bench_{i:03d}.py").write_text(DAG_TEMPLATE.format(i=i))
    create_environment(server, ENV, AIRFLOW3, bucket="bucket-bench", **extra)
    mwaa = server.client()
    deadline = time.monotonic() + 300
    while True:
        answer = mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET", QueryParameters={"limit": 1})
        if answer["RestApiResponse"]["total_entries"] >= DAGS:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the 100 DAGs were not parsed in 300 s")
        time.sleep(2)
    want = mwaa.get_environment(Name=ENV)["Environment"]["MinWebservers"]
    while web_servers(server) < want or rotation_joins(server) < want:
        time.sleep(1)
    return server


def memory(server: OpenMwaaServer, settle: float = 20.0) -> tuple[float, list[float]]:
    """(idle PSS of every process of the environment, PSS of each web server), in MB."""
    time.sleep(settle)  # the load's and the DAG parsing's short-lived processes are gone
    total = process_tree_pss(live_pids(server).values()) / MB
    web = [process_tree_pss([pid]) / MB for pid in live_pids(server, "api-server*.pid").values()]
    return total, sorted(web)


def session_cpu(leader: int) -> tuple[float, float]:
    """(CPU seconds of a process session so far, seconds since its leader started): how much of
    the machine a starting web server got."""
    cpu, started = 0, 0
    for path in PROC.glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = path.read_text()
            stat = parse_stat(int(path.parent.name), text)
            if stat.session == leader:  # its session: utime, stime, cutime, cstime
                cpu += sum(cpu_ticks(text))
            if stat.pid == leader:
                started = stat.start_ticks
    uptime = float((PROC / "uptime").read_text().split()[0])
    return cpu / TICKS, uptime - started / TICKS


def scale_up(server: OpenMwaaServer, connections: int) -> tuple[float, float, float]:
    """MaxWebservers=3, then load: (seconds from the load starting to a third web server in
    rotation; that web server's CPU seconds and seconds alive when it joined)."""
    mwaa = server.client()
    mwaa.update_environment(Name=ENV, MaxWebservers=3)
    wait_for_status(mwaa, ENV, {"AVAILABLE"})
    joined = rotation_joins(server)
    url, headers = signed_headers(server)
    began = time.monotonic()
    stop_at: list[float] = []
    new_cpu: list[tuple[float, float]] = []

    async def load() -> None:
        task = asyncio.ensure_future(
            loadgen.throughput(url, headers, seconds=150, concurrency=connections, method="POST", body=BODY)
        )
        while rotation_joins(server) <= joined and time.monotonic() - began < 150:
            await asyncio.sleep(0.2)
        stop_at.append(time.monotonic() - began)
        new = live_pids(server, "api-server-2.pid").get("api-server-2")
        new_cpu.append(session_cpu(new) if new is not None else (float("nan"), float("nan")))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(load())
    return stop_at[0], *new_cpu[0]


def scale_in(server: OpenMwaaServer, session: WebSession) -> tuple[float, int, int]:
    """Light load only: (seconds to MinWebservers, calls made, failed calls)."""
    with LightLoad(server, session) as light:
        began = time.monotonic()
        while web_servers(server) > 2 and time.monotonic() - began < 300:
            time.sleep(0.5)
        took = time.monotonic() - began
        time.sleep(2)
    return took, light.done, len(light.failures)


def rolling_restart(server: OpenMwaaServer, session: WebSession) -> tuple[float, int, int]:
    """An api.* update under the light load: (seconds to AVAILABLE, calls made, failed calls)."""
    mwaa = server.client()
    with LightLoad(server, session) as light:
        time.sleep(2)
        began = time.monotonic()
        mwaa.update_environment(Name=ENV, AirflowConfigurationOptions={"api.instance_name": "rolled"})
        time.sleep(1)
        env = wait_for_status(mwaa, ENV, {"AVAILABLE", "UPDATE_FAILED"})
        took = time.monotonic() - began
        time.sleep(2)
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    assert "web servers restarted one at a time" in server.log_tail(10**6)
    if light.failures:
        print("rolling restart failures:", light.failures[:5])
    return took, light.done, len(light.failures)


def only_scale_up(connections: int) -> int:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        Path(tmp).chmod(0o711)
        print("2 web servers: an mw1.small environment at its minimum...", flush=True)
        two = environment(Path(tmp) / "two", EnvironmentClass="mw1.small", MinWebservers=2, MaxWebservers=2)
        try:
            load_start = os.getloadavg()
            up, cpu, alive = scale_up(two, connections)
        finally:
            stop_server(two)
    load_after = os.getloadavg()
    print(f"\nscale-up 2 -> 3 under load: {up:.1f} s to the third web server in rotation (target <= 30 s)")
    print(
        f"the third web server had {cpu:.1f} s of CPU in its first {alive:.1f} s "
        f"({cpu / alive:.0%} of a core)"
    )
    print(
        f"load average (1, 5, 15 min): before {', '.join(f'{x:.1f}' for x in load_before)}; "
        f"at the load's start {', '.join(f'{x:.1f}' for x in load_start)}; "
        f"after {', '.join(f'{x:.1f}' for x in load_after)}"
    )
    return 0


WAYS = ("InvokeRestApi", "web session")
COUNTS = ("1 web server", "2 web servers")
PART_ORDER = ("api-server", "api-server-1", "api-server-2", "scheduler", "scheduler-1", "dag-processor")


def print_throughput(results: dict[str, dict[str, Row]], args: argparse.Namespace) -> None:
    print(
        f"\nGET /dags?limit={DAGS} ({DAGS} DAGs), {args.connections} connections, "
        f"{args.rounds} alternating rounds of {args.seconds:g} s per row (lean load generator)"
    )
    figures = " | ".join((f"{'calls/s':>8}", f"{'p50 ms':>7}", f"{'p99 ms':>7}", "errors", "load 1 min"))
    print(f"| {'load through':<14} | {'web servers':<11} | {figures} |")
    print(f"|{'-' * 16}|{'-' * 13}|{'-' * 10}|{'-' * 9}|{'-' * 9}|--------|------------|")
    for way in WAYS:
        for count in COUNTS:
            row = results[count][way]
            rate, p50, p99 = row.figures()
            loads = "-".join(f"{x:.1f}" for x in (min(row.loads), max(row.loads)))
            print(
                f"| {way:<14} | {count[0]:<11} | {rate:8.1f} | {p50:7.1f} | {p99:7.1f} | {row.errors:6d} "
                f"| {loads:>10} |"
            )
        (r1, _, p1), (r2, _, p2) = (results[c][way].figures() for c in COUNTS)
        ratios = f"{r2 / r1:7.2f}x |         | {p2 / p1:6.2f}x |        |            |"
        print(f"|   2 vs 1       | ratio       | {ratios}")
    print("targets: throughput 2 vs 1 >= 1.5x, lower p99")


def _ms_a_call(parts: Callable[[str], bool]) -> Callable[[dict[str, float], float], str]:
    return lambda cpu, rate: f"{1e3 * sum(v for k, v in cpu.items() if parts(k)) / rate:.1f}"


NOT_BACKGROUND = (SERVER, LOADGEN, OTHER, STEAL, IDLE)


def _per_call(cpu: dict[str, float]) -> float:
    return sum(v for k, v in cpu.items() if k.startswith("api-server") or k in (SERVER, LOADGEN))


def _background(cpu: dict[str, float]) -> float:
    return sum(v for k, v in cpu.items() if not k.startswith("api-server") and k not in NOT_BACKGROUND)


def _ceiling(cpu: dict[str, float], rate: float) -> str:
    """Calls/s if every core not spent in the background went to calls at this cost a call."""
    cores = os.cpu_count() or 1
    return f"{(cores - _background(cpu)) / (_per_call(cpu) / rate):.1f}"


#: The derived figures under the CPU table: label -> (CPU s/s by part, calls/s) -> cell.
FIGURES: dict[str, Callable[[dict[str, float], float], str]] = {
    "calls/s": lambda cpu, rate: f"{rate:.1f}",
    "api-servers, ms a call": _ms_a_call(lambda k: k.startswith("api-server")),
    "openmwaa server, ms a call": _ms_a_call(lambda k: k == SERVER),
    "every per-call part (api-servers, openmwaa, load generator), ms a call": lambda cpu, rate: (
        f"{1e3 * _per_call(cpu) / rate:.1f}"
    ),
    "background (schedulers, DAG processor, triggerer), s/s": lambda cpu, _: f"{_background(cpu):.2f}",
    "ceiling: calls/s if all the cores left by the background went to calls": _ceiling,
}
#: The same, for what needs more than the CPU figures.
ROW_FIGURES: dict[str, Callable[[Row], str]] = {
    "DAG files parsed a second during the load": lambda row: f"{statistics.mean(row.parsed):.2f}",
    "the DAG processor's CPU ms a file parsed": lambda row: (
        f"{1e3 * row.mean_cpu().get('dag-processor', 0.0) / statistics.mean(row.parsed):.0f}"
        if statistics.mean(row.parsed)
        else "-"
    ),
}


def print_cpu(results: dict[str, dict[str, Row]]) -> None:
    """The CPU breakdown of each phase, and what a call costs."""
    columns = {
        f"{count[0]} ws, {'invoke' if way == 'InvokeRestApi' else 'session'}": results[count][way]
        for way in WAYS
        for count in COUNTS
    }
    print("\nCPU seconds per second during each load (mean of its rounds; 2 cores = 2.00):")
    order = (*PART_ORDER, "triggerer", SERVER, LOADGEN, OTHER, STEAL, IDLE)
    for line in table({name: row.mean_cpu() for name, row in columns.items()}, order):
        print(line)
    print("what a call costs (CPU ms a call) and what runs whatever the load (CPU s/s), per column:")
    for label, figure in FIGURES.items():
        cells = " | ".join(figure(row.mean_cpu(), row.figures()[0]) for row in columns.values())
        print(f"  {label}: {cells}")
    for label, row_figure in ROW_FIGURES.items():
        print(f"  {label}: " + " | ".join(row_figure(row) for row in columns.values()))
    print(
        "processes per component: "
        + ", ".join(f"{k} {v}" for k, v in sorted(next(iter(columns.values())).processes.items()))
        + " (1 web server); "
        + ", ".join(f"{k} {v}" for k, v in sorted(list(columns.values())[1].processes.items()))
        + " (2 web servers)"
    )
    print("share of samples with a thread on a CPU or runnable (each process), and where else they waited:")
    for name, row in columns.items():
        names = sorted({k for run in row.on_cpu for k in run})
        shares = ", ".join(f"{k} {statistics.mean(run.get(k, 0.0) for run in row.on_cpu):.0%}" for k in names)
        waits = "; ".join(
            f"{k}: " + ", ".join(f"{w} {n}" for w, n in row.waits[k].most_common(3))
            for k in names
            if row.waits.get(k)
        )
        print(f"  {name}: {shares}" + (f" (waits: {waits})" if waits else ""))
    for name, row in columns.items():
        split = [run for run in row.served if sum(run.values())]
        if split:
            total: dict[str, int] = {}
            for run in split:
                for replica, calls in run.items():
                    total[replica] = total.get(replica, 0) + calls
            share = ", ".join(f"{k} {v} ({v / sum(total.values()):.0%})" for k, v in sorted(total.items()))
            print(f"calls per replica ({name}, access log): {share}")


def print_sweep(sweeps: dict[str, dict[str, dict[int, Row]]], seconds: float) -> None:
    print(f"\ncalls/s by connections (one run of {seconds:g} s each; 1-min load average after it):")
    head = " | ".join(f"{f'{c[0]} ws {w[:7]}':>16}" for w in WAYS for c in COUNTS)
    print(f"| connections | {head} | 2 vs 1 invoke | 2 vs 1 session |")
    print("|-------------|" + "|".join("-" * 18 for _ in range(4)) + "|---------------|----------------|")
    for connections in SWEEP:
        cells, ratios = [], []
        for way in WAYS:
            pair = [sweeps[count][way][connections] for count in COUNTS]
            for row in pair:
                cells.append(f"{row.rates[0]:7.1f} (l {row.loads[0]:4.1f})")
            ratios.append(pair[1].rates[0] / pair[0].rates[0])
        print(
            f"| {connections:>11} | " + " | ".join(f"{c:>16}" for c in cells) + " | "
            f"{ratios[0]:12.2f}x | {ratios[1]:13.2f}x |"
        )
    print("(a closed loop of N connections cannot exceed N / latency calls/s)")


def print_scaling(up: float, scaled_in: tuple[float, int, int], rolled: tuple[float, int, int]) -> None:
    print(f"\nscale-up 2 -> 3 under load: {up:.1f} s to the third web server in rotation (target <= 30 s)")
    print(
        f"scale-in 3 -> 2 (MinWebservers) once the load stopped: {scaled_in[0]:.1f} s (target <= 120 s); "
        f"light load meanwhile: {scaled_in[1]} calls, {scaled_in[2]} failed"
    )
    print(
        f"rolling restart (UpdateEnvironment api.instance_name, 2 web servers): {rolled[0]:.1f} s to "
        f"AVAILABLE; light load meanwhile: {rolled[1]} calls, {rolled[2]} failed"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--sweep-seconds", type=float, default=8, help="each run of the connections sweep (0: no sweep)"
    )
    parser.add_argument(
        "--only",
        choices=["scale-up", "throughput"],
        help="run only this part: scale-up (the mw1.small environment alone), throughput (1 vs 2 "
        "web servers, the CPU breakdown and the connections sweep; no scaling, no rolling restart)",
    )
    args = parser.parse_args()
    if args.only == "scale-up":
        return only_scale_up(args.connections)
    load_before = os.getloadavg()
    results: dict[str, dict[str, Row]] = {}
    sweeps: dict[str, dict[str, dict[int, Row]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        # As root, each environment runs as a user of its own, which must pass through here.
        Path(tmp).chmod(0o711)
        print("1 web server: an mw1.micro environment with 100 DAGs...", flush=True)
        one = environment(
            Path(tmp) / "one", EnvironmentClass="mw1.micro", MinWebservers=1, MaxWebservers=1, Schedulers=1
        )
        try:
            micro_idle, micro_web = memory(one)
            session = web_session(one)
            results["1 web server"] = lean_rows(one, session, args.connections, args.seconds, args.rounds)
            if args.sweep_seconds:
                sweeps["1 web server"] = sweep(one, session, args.sweep_seconds)
        finally:
            stop_server(one)
        print("2 web servers: an mw1.small environment at its minimum...", flush=True)
        two = environment(Path(tmp) / "two", EnvironmentClass="mw1.small", MinWebservers=2, MaxWebservers=2)
        try:
            small_idle, small_web = memory(two)
            session = web_session(two)
            results["2 web servers"] = lean_rows(two, session, args.connections, args.seconds, args.rounds)
            if args.sweep_seconds:
                sweeps["2 web servers"] = sweep(two, session, args.sweep_seconds)
            if args.only is None:
                print("scaling and a rolling restart...", flush=True)
                up, _, _ = scale_up(two, args.connections)
                scaled_in = scale_in(two, session)
                rolled = rolling_restart(two, session)
        finally:
            stop_server(two)
    load_after = os.getloadavg()

    print_throughput(results, args)
    print_cpu(results)
    if sweeps:
        print_sweep(sweeps, args.sweep_seconds)
    if args.only is None:
        print_scaling(up, scaled_in, rolled)
    print(
        f"\nidle environment PSS: mw1.micro (1 web server, 1 scheduler) {micro_idle:.0f} MB; "
        f"mw1.small at its minimum (2 web servers) {small_idle:.0f} MB (target <= 700 MB)"
    )
    print(
        f"web server PSS each: mw1.micro {', '.join(f'{m:.0f}' for m in micro_web)} MB; "
        f"mw1.small {', '.join(f'{m:.0f}' for m in small_web)} MB"
    )
    print(
        f"load average (1, 5, 15 min): before {', '.join(f'{x:.1f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.1f}' for x in load_after)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
