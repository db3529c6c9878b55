"""Observability (issue 15): a Prometheus scrape, FilterLogEvents over 100k lines, CloudWatch
GetMetricStatistics, and what log shipping costs Airflow.

Sections (run them all, or some with ``--only``); each prints rows of
``measure, p50, p95, target or baseline, ratio``, the ratio against a baseline measured in the
same run or against the issue's target:

- ``scrape``: ``GET /metrics`` over HTTP from an in-process server (uvicorn in a thread) with 20
  environments and a few thousand requests counted; baseline: an unauthenticated ``GET /`` that
  the pipeline refuses (the fixed cost of any request). Target p95 <= 50 ms.
- ``logs``: FilterLogEvents on 100k task log lines in 10 streams (LogsService, no HTTP) for a
  rare phrase; baseline: the same query scanned line by line (the search's anchor off).
  Target p95 <= 1 s.
- ``cloudwatch``: GetMetricStatistics over HTTP (boto3, JSON 1.0) for a day of per-minute
  SchedulerHeartbeat data among 5,000 series; baseline: ListMetrics of one namespace.
- ``dashboard``: ``/dashboard/api/state`` for 20 environments, cold, warm (one viewer, and 10 at
  once), and an uncached baseline; the environments' Airflow is in-process fake REST APIs
  (``observability_dashboard``). Target p95 <= 1 s warm.
- ``shipping``: trigger -> success of the example DAG ``hello_openmwaa`` on two Airflow 3
  environments of one real server, one with every LoggingConfiguration module on (INFO) and one
  with all off, triggered alternately; ratio on / off (1.00: no cost). Slow (real Airflow, a few
  minutes); ``--only scrape,logs,cloudwatch`` skips it.

A section is a function taking the parsed arguments and returning rows; add one to
``SECTIONS``.

    .venv/bin/python benchmarks/bench_observability.py [--only scrape,logs] [--runs 30] [--dag-runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import uvicorn
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_logs import GROUP, write_logs
from observability_dashboard import run_dashboard_section

from openmwaa.app import build_services, create_app
from openmwaa.auth.bootstrap import ensure_bootstrap_admin
from openmwaa.logs import service as logs_service
from openmwaa.logs.service import EnvironmentLogs, LogsService
from openmwaa.logs.tokens import TokenSigner
from openmwaa.settings import Settings
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from openmwaa.store.metrics import Datapoint, SeriesKey

ACCOUNT, REGION = "123456789012", "us-east-1"
KEY, SECRET = "AKIABENCHOBSERVE0001", "bench-observability-secret-000000000000"
TOKEN = "bench-scrape-token-0123456789abcdef"


@dataclass(frozen=True)
class Row:
    measure: str
    p50_ms: float
    p95_ms: float
    #: "target" rows compare p95 with a limit; "baseline" rows with another row's p95.
    against: str
    ratio: float


Section = Callable[[argparse.Namespace], list[Row]]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(run: Callable[[], Any], runs: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


# An in-process server ------------------------------------------------------------------------


@contextmanager
def in_process_server(data_dir: Path, environments: int) -> Iterator[tuple[str, Any]]:
    """openmwaa's app on a free port with ``environments`` records (no Airflow behind them)."""
    settings = Settings(
        data_dir=data_dir,
        port=0,
        region=REGION,
        account_id=ACCOUNT,
        default_environment=False,
        bootstrap_access_key_id=KEY,
        bootstrap_secret_access_key=SECRET,
        metrics_token=TOKEN,
    )
    ensure_bootstrap_admin(settings)
    services = build_services(settings)
    for i in range(environments):
        services.repository.insert(
            EnvironmentRecord(
                key=EnvironmentKey(ACCOUNT, REGION, f"env-{i:02d}"),
                arn=f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/env-{i:02d}",
                status="AVAILABLE",
                created_at=time.time(),
                config={"AirflowVersion": "3.3.1"},
                previous_config=None,
                last_update=None,
                tags={},
                secrets={},
            )
        )
    services.audit.start()
    config = uvicorn.Config(
        create_app(settings, services),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        server.should_exit = True
        thread.join(10)
        services.audit.stop()
        services.metrics.store.close()


# Sections ------------------------------------------------------------------------------------


def scrape(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp, in_process_server(Path(tmp), 20) as (url, services):
        with httpx.Client() as client:
            for _ in range(3000):  # a server that has answered for a while: many label sets
                client.get(f"{url}/")
            headers = {"Authorization": f"Bearer {TOKEN}"}
            assert client.get(f"{url}/metrics", headers=headers).status_code == 200
            base50, base95 = timed(lambda: client.get(f"{url}/"), args.runs)
            p50, p95 = timed(lambda: client.get(f"{url}/metrics", headers=headers), args.runs)
        del services
    return [
        Row("GET / refused (baseline)", base50, base95, "", 1.0),
        Row("GET /metrics, 20 environments", p50, p95, "target 50 ms", p95 / 50),
        Row("GET /metrics vs baseline", p50, p95, "baseline", p95 / base95),
    ]


def logs(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs"
        write_logs(folder, 100_000, 10)
        env = EnvironmentLogs(
            "bench", {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}}, folder, time.time()
        )
        service = LogsService(
            list_environments=lambda: [env],
            find_environment=lambda name: env if name == "bench" else None,
            signer=TokenSigner(b"k" * 32),
            region=REGION,
            account_id=ACCOUNT,
        )

        def query() -> None:
            found = service.filter_log_events(GROUP, {"filterPattern": '"needle in the haystack"'})
            assert len(found["events"]) == 1

        runs = max(7, args.runs // 3)
        p50, p95 = timed(query, runs)
        anchored = logs_service._scan
        logs_service._scan = lambda stream, file, anchor: anchored(stream, file, None)
        try:
            base50, base95 = timed(query, runs)
        finally:
            logs_service._scan = anchored
    return [
        Row("FilterLogEvents 100k, line by line (baseline)", base50, base95, "", 1.0),
        Row("FilterLogEvents 100k, rare phrase", p50, p95, "target 1000 ms", p95 / 1000),
        Row("FilterLogEvents 100k vs baseline", p50, p95, "baseline", p95 / base95),
    ]


def cloudwatch(args: argparse.Namespace) -> list[Row]:
    now = int(time.time()) // 60 * 60
    with tempfile.TemporaryDirectory() as tmp, in_process_server(Path(tmp), 1) as (url, services):
        points = [
            Datapoint(
                SeriesKey.of(
                    ACCOUNT, REGION, "AmazonMWAA", "TaskDuration", {"DAG": f"d{i}", "Environment": "env-00"}
                ),
                now - 60,
                1,
                1,
                1,
                1,
                "Milliseconds",
            )
            for i in range(5000)
        ]
        heartbeat = SeriesKey.of(
            ACCOUNT,
            REGION,
            "AmazonMWAA",
            "SchedulerHeartbeat",
            {"Function": "Scheduler", "Environment": "env-00"},
        )
        points += [Datapoint(heartbeat, now - 60 * m, 12, 12, 1, 1, "Count") for m in range(1440)]
        services.metrics.store.add(points)
        client = boto3.client(
            "cloudwatch",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 1}),
        )

        def statistics_day() -> None:
            out = client.get_metric_statistics(
                Namespace="AmazonMWAA",
                MetricName="SchedulerHeartbeat",
                Dimensions=[
                    {"Name": "Function", "Value": "Scheduler"},
                    {"Name": "Environment", "Value": "env-00"},
                ],
                StartTime=now - 86400,
                EndTime=now,
                Period=300,
                Statistics=["Sum", "Average", "Maximum"],
            )
            assert len(out["Datapoints"]) == 288

        base50, base95 = timed(lambda: client.list_metrics(Namespace="AWS/MWAA"), args.runs)
        p50, p95 = timed(statistics_day, args.runs)
    return [
        Row("ListMetrics, empty namespace (baseline)", base50, base95, "", 1.0),
        Row("GetMetricStatistics, 1 day at 5 min, 5k series", p50, p95, "baseline", p95 / base95),
    ]


def shipping(args: argparse.Namespace) -> list[Row]:
    from tests.e2e.conftest import (
        AIRFLOW3,
        create_environment,
        start_server,
        stop_server,
        trigger_and_wait,
    )

    modules = ("DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs")
    with tempfile.TemporaryDirectory(prefix="bench-observability-") as tmp:
        Path(tmp).chmod(0o755)  # isolated environment users must reach their homes inside it
        server = start_server(Path(tmp) / "data", extra_env={"OPENMWAA_WEB_SERVERS_LIMIT": "1"})
        try:
            configs = {
                "on": {m: {"Enabled": True, "LogLevel": "INFO"} for m in modules},
                "off": {m: {"Enabled": False, "LogLevel": "INFO"} for m in modules},
            }
            names = {}
            threads = []
            for label, logging in configs.items():
                name = f"bench-logs-{label}"
                names[label] = name
                thread = threading.Thread(
                    target=create_environment,
                    args=(server, name, AIRFLOW3),
                    kwargs={"LoggingConfiguration": logging},
                )
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join()
            samples: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(args.dag_runs + 1):  # the first round warms both up and is not counted
                for label in ("on", "off"):
                    started = time.perf_counter()
                    run = trigger_and_wait(server, names[label], 3, "hello_openmwaa")
                    assert run["state"] == "success", run
                    samples[label].append((time.perf_counter() - started) * 1000)
        finally:
            stop_server(server)
    on50, on95 = percentiles(samples["on"][1:])
    off50, off95 = percentiles(samples["off"][1:])
    return [
        Row("trigger -> success, log shipping off (baseline)", off50, off95, "", 1.0),
        Row("trigger -> success, log shipping on", on50, on95, "baseline", on50 / off50),
    ]


def dashboard(args: argparse.Namespace) -> list[Row]:
    """The dashboard's data for 20 environments (their Airflow: in-process fakes; see the module)."""
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        rows, note = run_dashboard_section(Path(tmp), polls=max(args.runs, 20) * 5)
    print(note, flush=True)
    return [Row(*figures) for figures in rows]


SECTIONS: dict[str, Section] = {
    "scrape": scrape,
    "logs": logs,
    "cloudwatch": cloudwatch,
    "shipping": shipping,
    "dashboard": dashboard,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated, of: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--runs", type=int, default=30, help="timed runs per measure (after 2 warm-ups)")
    parser.add_argument("--dag-runs", type=int, default=5, help="DAG runs per environment in 'shipping'")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    print(f"{'measure':<52} {'p50 ms':>9} {'p95 ms':>9}   {'against':<16} {'ratio':>6}")
    for name in chosen:
        for row in SECTIONS[name](args):
            figures = f"{row.p50_ms:>9.1f} {row.p95_ms:>9.1f}"
            print(f"{row.measure:<52} {figures}   {row.against:<16} {row.ratio:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
