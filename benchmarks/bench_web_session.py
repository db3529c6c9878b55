"""Web sessions: requests per second through openmwaa's HTTPS endpoint vs Airflow called directly.

Runs a real openmwaa server (``python -m openmwaa up``) in a temporary data directory with one
Airflow environment (3.3.1 unless ``--airflow-version``), signs in as MWAA documents it
(CreateWebLoginToken, then POST the token to the login route), and drives the same Airflow
endpoints two ways with the same client (``loadgen``: lean, so that on a small machine the client's
own CPU does not crowd out what it measures), concurrency and duration, alternating rounds:

- session: ``https://{WebServerHostname}/api/v2/...`` with ``Authorization: Bearer <_token>``
  (Airflow 2: ``/api/v1/...`` with the ``session`` cookie), through TLS, session lookup, a minted
  Airflow credential and the reverse proxy;
- direct (baseline): Airflow's own ``http://127.0.0.1:<port>/api/...`` with an Airflow token
  minted once, as a client inside the machine holding the secret could.

The ratio is session / direct (target >= 0.9). Login latency is CreateWebLoginToken (boto3,
SigV4 and IAM) plus the login POST, p50 and p99 over ``--logins`` sign-ins. Loopback only,
bounded by ``--seconds`` per round; the server and its Airflow are stopped at the end.

With ``--tls off`` openmwaa serves its web endpoints over plain HTTP (``OPENMWAA_WEB_TLS=false``),
which separates the proxy's own cost from TLS's (the direct baseline is plain HTTP either way).

    .venv/bin/python benchmarks/bench_web_session.py [--seconds 5] [--concurrency 8] [--rounds 2] [--tls off]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import loadgen  # noqa: E402
from tests.e2e.conftest import (  # noqa: E402
    REGION,
    OpenMwaaServer,
    create_environment,
    start_server,
    stop_server,
)

from openmwaa.auth.credentials import SecretBox  # noqa: E402
from openmwaa.runtime.airflow_token import mint_airflow_token  # noqa: E402
from openmwaa.store.db import open_engine  # noqa: E402
from openmwaa.store.environments import EnvironmentKey, EnvironmentRepository  # noqa: E402

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Target:
    """One way to reach an Airflow endpoint: a base URL and what to send along."""

    name: str
    base_url: str
    headers: Mapping[str, str]
    cookies: Mapping[str, str]
    verify: str | bool


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state held by ``pid`` or its descendants (from /proc)."""
    pids, todo = set(), [pid]
    while todo:
        current = todo.pop()
        pids.add(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    inodes = set()
    for p in pids:
        for fd in Path(f"/proc/{p}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def direct_target(server: OpenMwaaServer, name: str, major: int) -> Target:
    """Airflow's own API: the port its API process listens on, a token minted with its secret."""
    engine = open_engine(f"sqlite:///{server.data_dir / 'openmwaa.db'}")
    record = EnvironmentRepository(engine, cipher=SecretBox.open(server.data_dir)).get(
        EnvironmentKey(ACCOUNT, REGION, name)
    )
    assert record is not None
    component = "api-server" if major == 3 else "webserver"
    env_dir = server.data_dir / "environments" / ACCOUNT / REGION / name
    pid = int(json.loads((env_dir / "run" / f"{component}.pid").read_text())["pid"])
    for port in sorted(listening_ports(pid)):
        probe = httpx.get(f"http://127.0.0.1:{port}/api/v{2 if major == 3 else 1}/version", timeout=10)
        if probe.status_code in (200, 401, 403):
            break
    else:
        raise RuntimeError(f"no Airflow API port found for {name}")
    token = mint_airflow_token(
        major=major,
        jwt_secret=record.secrets.get("jwt_secret", ""),
        token_secret=record.secrets.get("token_secret", ""),
        username="user/admin",
        role="Admin",
        ttl=3600,
    )
    return Target("direct", f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}, {}, False)


def login(server: OpenMwaaServer, name: str, major: int, *, tls: bool) -> tuple[Target, float]:
    """Sign in once as the MWAA docs show; the session target and how long it took (s)."""
    mwaa = server.client()
    verify: str | bool = str(server.data_dir / "tls" / "ca.pem") if tls else False
    scheme = "https" if tls else "http"
    path = "/aws_mwaa/login" if major == 2 else "/pluginsv2/aws_mwaa/login"
    started = time.perf_counter()
    created = mwaa.create_web_login_token(Name=name)
    host = created["WebServerHostname"]
    response = httpx.post(f"{scheme}://{host}{path}", data={"token": created["WebToken"]}, verify=verify)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    if major == 2:
        target = Target("session", f"{scheme}://{host}", {}, {"session": response.cookies["session"]}, verify)
    else:
        bearer = {"Authorization": f"Bearer {response.cookies['_token']}"}
        target = Target("session", f"{scheme}://{host}", bearer, {}, verify)
    return target, elapsed


async def throughput(target: Target, path: str, *, seconds: float, concurrency: int) -> tuple[float, int]:
    """Completed requests per second (and error count) with ``concurrency`` keep-alive connections."""
    headers = dict(target.headers)
    if target.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in target.cookies.items())
    context = ssl.create_default_context(cafile=target.verify) if isinstance(target.verify, str) else None
    return await loadgen.throughput(
        target.base_url + path, headers, seconds=seconds, concurrency=concurrency, ssl_context=context
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--airflow-version", default="3.3.1")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one measured round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per target, alternating")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--logins", type=int, default=40)
    parser.add_argument("--tls", choices=("on", "off"), default="on", help="HTTPS on the web endpoints")
    args = parser.parse_args()
    major = int(args.airflow_version.split(".")[0])
    api = "/api/v2" if major == 3 else "/api/v1"

    data_dir = Path(tempfile.mkdtemp(prefix="openmwaa-bench-web-"))
    tls = args.tls == "on"
    server = start_server(data_dir, extra_env={"OPENMWAA_WEB_TLS": str(tls).lower()})
    try:
        print(f"creating an Airflow {args.airflow_version} environment ...", flush=True)
        name = create_environment(server, "bench-web", args.airflow_version)
        session, _ = login(server, name, major, tls=tls)
        direct = direct_target(server, name, major)

        rows: list[tuple[str, float, float, float, int]] = []
        for path in (f"{api}/version", f"{api}/dags?limit=10"):
            rates: dict[str, list[float]] = {"direct": [], "session": []}
            errors = 0
            for _ in range(args.rounds):
                for target in (direct, session):
                    rate, failed = asyncio.run(
                        throughput(target, path, seconds=args.seconds, concurrency=args.concurrency)
                    )
                    rates[target.name].append(rate)
                    errors += failed
            d, s = statistics.mean(rates["direct"]), statistics.mean(rates["session"])
            rows.append((path, d, s, s / d, errors))

        latencies = [login(server, name, major, tls=tls)[1] * 1000 for _ in range(args.logins)]
    finally:
        stop_server(server)
        shutil.rmtree(data_dir, ignore_errors=True)

    print()
    print(
        f"Airflow {args.airflow_version}, concurrency {args.concurrency}, "
        f"{args.rounds} x {args.seconds:g} s per target (alternating), loopback, "
        f"session over {'HTTPS' if tls else 'plain HTTP'}"
    )
    print(f"{'endpoint':<26}{'direct req/s':>14}{'session req/s':>15}{'ratio':>8}{'errors':>8}")
    for path, d, s, ratio, errors in rows:
        print(f"{path:<26}{d:>14.0f}{s:>15.0f}{ratio:>8.2f}{errors:>8}")
    print("target: ratio >= 0.90")
    print()
    print(f"login (CreateWebLoginToken + POST login), {len(latencies)} sign-ins")
    print(f"{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    print(f"{percentile(latencies, 0.5):>10.1f}{percentile(latencies, 0.99):>10.1f}{max(latencies):>10.1f}")


if __name__ == "__main__":
    main()
