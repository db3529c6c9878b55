"""Web server replicas under REST API load: 1 vs 2 web servers, scale-up time, scale-in failures.

Starts real openmwaa servers (``python -m openmwaa up``, throttle off: ``OPENMWAA_REST_API_RATE=0``)
one after the other, each with one Airflow 3 environment holding 100 DAGs, and loads the expensive
``GET /dags?limit=100`` through InvokeRestApi (each call SigV4-signed with botocore, sent with
``requests``; N threads, each its own keep-alive session):

- **1 web server**: ``OPENMWAA_WEB_SERVERS_LIMIT=1``.
- **2 web servers**: MinWebservers=MaxWebservers=2.
- **scaling**: the second environment updated to MaxWebservers=3 with a 5 s scale-up window and a
  20 s scale-down window: the time from the load starting to a third web server in rotation, the
  time from the load stopping to two again, and the requests that failed meanwhile (a light load
  of one thread keeps running across the drain).

Throughput is completed calls per second over the run; p50/p99 are per-call latencies; the
ratios compare the two rows of the same run. Stops by itself (a few minutes, mostly Airflow
starting and parsing the DAGs).

    .venv/bin/python benchmarks/bench_webserver_scaling.py [--threads 6] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import (
    ACCESS_KEY,
    AIRFLOW3,
    REGION,
    SECRET_KEY,
    OpenMwaaServer,
    create_environment,
    start_server,
    stop_server,
)

ENV = "bench-scaling"
DAGS = 100
BODY = json.dumps({"Path": "/dags", "Method": "GET", "QueryParameters": {"limit": DAGS}}).encode()
DAG_TEMPLATE = """from datetime import datetime
from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("bench_{i:03d}", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
    EmptyOperator(task_id="noop")
"""


def signed_headers(server: OpenMwaaServer) -> tuple[str, dict[str, str]]:
    url = f"{server.endpoint_url}/restapi/{ENV}"
    request = AWSRequest("POST", url, data=BODY, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "airflow", REGION).add_auth(request)
    return url, dict(request.headers.items())


class Load:
    """``threads`` callers of ``/dags?limit=100`` until stopped: latencies and failures."""

    def __init__(self, server: OpenMwaaServer, threads: int) -> None:
        self.server = server
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self.started = 0.0
        self.ended = 0.0

    def __enter__(self) -> Load:
        self.started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.ended = time.perf_counter()

    def _run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        signed_at, (url, headers) = time.monotonic(), signed_headers(self.server)
        while not self._stop.is_set():
            if time.monotonic() - signed_at > 60:
                signed_at, (url, headers) = time.monotonic(), signed_headers(self.server)
            began = time.perf_counter()
            try:
                response = session.post(url, data=BODY, headers=headers, timeout=60)
                ok = response.status_code == 200 and response.json()["RestApiStatusCode"] == 200
                if not ok:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
            except requests.RequestException as exc:
                self.failures.append(repr(exc))
                continue
            self.latencies.append(time.perf_counter() - began)

    def figures(self) -> tuple[float, float, float]:
        """(calls per second, p50 ms, p99 ms)."""
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
        rate = len(ordered) / (self.ended - self.started)
        return rate, statistics.median(ordered) * 1000, p99 * 1000


def home(server: OpenMwaaServer) -> Path:
    return server.data_dir / "environments" / "123456789012" / REGION / ENV


def web_servers(server: OpenMwaaServer) -> int:
    alive = 0
    for path in (home(server) / "run").glob("api-server*.pid"):
        if Path(f"/proc/{json.loads(path.read_text())['pid']}").exists():
            alive += 1
    return alive


def rotation_size(server: OpenMwaaServer) -> int:
    """Web servers that answered (the supervisor logs each as it joins the rotation)."""
    return server.log_tail(100000).count("answers on http://")


def environment(threads: int, limit: int, tmp: Path, **extra: Any) -> OpenMwaaServer:
    server = start_server(
        tmp,
        extra_env={
            "OPENMWAA_REST_API_RATE": "0",
            "OPENMWAA_WEB_SERVERS_LIMIT": str(limit),
            "OPENMWAA_WEB_SCALE_UP_WINDOW": "5",
            "OPENMWAA_WEB_SCALE_DOWN_WINDOW": "20",
        },
    )
    bucket = server.make_bucket(f"bucket-{limit}")
    for i in range(DAGS):
        (bucket / "dags" / f"bench_{i:03d}.py").write_text(DAG_TEMPLATE.format(i=i))
    create_environment(server, ENV, AIRFLOW3, bucket=f"bucket-{limit}", **extra)
    mwaa = server.client()
    deadline = time.monotonic() + 300
    while True:
        answer = mwaa.invoke_rest_api(Name=ENV, Path="/dags", Method="GET", QueryParameters={"limit": 1})
        if answer["RestApiResponse"]["total_entries"] >= DAGS:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the 100 DAGs were not parsed in 300 s")
        time.sleep(2)
    want = 1 if limit == 1 else 2
    while web_servers(server) < want or rotation_size(server) < want:
        time.sleep(1)
    return server


def measure(server: OpenMwaaServer, threads: int, seconds: float) -> tuple[float, float, float, int]:
    with Load(server, threads) as load:
        time.sleep(seconds)
    return (*load.figures(), len(load.failures))


def scaling(server: OpenMwaaServer, threads: int) -> tuple[float, float, int]:
    """(s to a third web server in rotation under load, s back to two once idle, failures)."""
    mwaa = server.client()
    mwaa.update_environment(Name=ENV, MaxWebservers=3)
    while mwaa.get_environment(Name=ENV)["Environment"]["Status"] != "AVAILABLE":
        time.sleep(0.5)
    joined = rotation_size(server)
    with Load(server, threads) as heavy:
        began = time.monotonic()
        while rotation_size(server) <= joined and time.monotonic() - began < 120:
            time.sleep(0.2)
        scale_up = time.monotonic() - began
    with Load(server, 1) as light:
        began = time.monotonic()
        while web_servers(server) > 2 and time.monotonic() - began < 300:
            time.sleep(0.5)
        scale_down = time.monotonic() - began
        time.sleep(2)
    return scale_up, scale_down, len(heavy.failures) + len(light.failures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    rows: dict[str, tuple[float, float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp:
        # As root, each environment runs as a user of its own, which must pass through here.
        Path(tmp).chmod(0o711)
        one = environment(args.threads, 1, Path(tmp) / "one")
        try:
            rows["1 web server"] = measure(one, args.threads, args.seconds)
        finally:
            stop_server(one)
        two = environment(args.threads, 0, Path(tmp) / "two", MinWebservers=2, MaxWebservers=2)
        try:
            rows["2 web servers"] = measure(two, args.threads, args.seconds)
            up, down, failures = scaling(two, args.threads)
        finally:
            stop_server(two)
    print(f"\nGET /dags?limit={DAGS} through InvokeRestApi, {args.threads} threads, {args.seconds:g} s each")
    print(f"| {'web servers':<14} | {'calls/s':>8} | {'p50 ms':>8} | {'p99 ms':>8} | {'failed':>6} |")
    print(f"|{'-' * 16}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 8}|")
    for name, (rate, p50, p99, failed) in rows.items():
        print(f"| {name:<14} | {rate:8.1f} | {p50:8.1f} | {p99:8.1f} | {failed:6d} |")
    (r1, _, p99_1, _), (r2, _, p99_2, _) = rows["1 web server"], rows["2 web servers"]
    print(f"\nthroughput 2/1: {r2 / r1:.2f}x   p99 2/1: {p99_2 / p99_1:.2f}x")
    print(f"scale-up 2 -> 3 under load (5 s window): {up:.1f} s to the third web server in rotation")
    print(f"scale-in 3 -> 2 once idle (20 s window): {down:.1f} s; failed requests meanwhile: {failures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
