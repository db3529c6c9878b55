"""Web server replicas against real Airflow 3: N api-servers, requests spread, a killed one replaced,
an update that restarts them one at a time.

One environment with two web servers (MinWebservers=2, MaxWebservers=3) on a server of its own
whose scaling windows are shortened, so scale-up and drain run within the test too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    AIRFLOW2,
    AIRFLOW3,
    REGION,
    OpenMwaaServer,
    create_environment,
    invoke,
    new_data_dir,
    start_server,
    stop_server,
    wait_for_status,
)
from tests.e2e.test_web_login import web_session

pytestmark = pytest.mark.e2e

NAME = "replicas-af3"


@pytest.fixture(scope="module")
def replica_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenMwaaServer]:
    srv = start_server(
        new_data_dir(tmp_path_factory, "replicas"),
        extra_env={
            "OPENMWAA_WEB_SERVERS_LIMIT": "0",
            "OPENMWAA_REST_API_RATE": "0",
            "OPENMWAA_WEB_SCALE_UP_WINDOW": "3",
            "OPENMWAA_WEB_SCALE_DOWN_WINDOW": "20",
        },
    )
    try:
        create_environment(srv, NAME, AIRFLOW3, MinWebservers=2, MaxWebservers=3)
        yield srv
    finally:
        stop_server(srv)


def home(server: OpenMwaaServer) -> Path:
    return server.data_dir / "environments" / "123456789012" / REGION / NAME


def web_pids(server: OpenMwaaServer) -> dict[str, int]:
    """Running web server replicas: name -> pid (from the supervisor's pid files)."""
    found = {}
    for path in (home(server) / "run").glob("api-server*.pid"):
        pid = int(json.loads(path.read_text())["pid"])
        if Path(f"/proc/{pid}").exists():
            found[path.stem] = pid
    return found


def web_ports(server: OpenMwaaServer) -> set[int]:
    """Their ports, from their command lines (Airflow rewrites its process title to
    ``airflow api_server -- host:127.0.0.1 port:N``)."""
    ports = set()
    for pid in web_pids(server).values():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")
        found = re.search(r"(?:--port |port:)(\d+)", cmdline)
        assert found, cmdline
        ports.add(int(found.group(1)))
    return ports


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def served(server: OpenMwaaServer, name: str) -> int:
    """Requests for /api/v2/version in replica ``name``'s access log."""
    path = home(server) / "logs" / f"{name}.log"
    return path.read_text(errors="replace").count("/api/v2/version")


def test_min_webservers_replicas_run_on_distinct_ports_and_share_requests(
    replica_server: OpenMwaaServer,
) -> None:
    wait_until(lambda: len(web_pids(replica_server)) == 2, 120, "two api-servers")
    pids = web_pids(replica_server)
    assert set(pids) == {"api-server", "api-server-1"} and len(set(pids.values())) == 2
    assert len(web_ports(replica_server)) == 2
    # The second replica must be in rotation before requests can reach it.
    wait_until(lambda: _both_serve(replica_server), 120, "requests on both replicas")
    before = {n: served(replica_server, n) for n in pids}
    for _ in range(20):
        invoke(replica_server, NAME, "/version")
    after = {n: served(replica_server, n) for n in pids}
    shares = [after[n] - before[n] for n in pids]
    assert sum(shares) >= 20 and min(shares) >= 5, shares


def _both_serve(server: OpenMwaaServer) -> bool:
    before = {n: served(server, n) for n in ("api-server", "api-server-1")}
    for _ in range(4):
        invoke(server, NAME, "/version")
    return all(served(server, n) > before[n] for n in before)


def test_a_killed_replica_is_replaced_and_no_request_fails(replica_server: OpenMwaaServer) -> None:
    wait_until(lambda: _both_serve(replica_server), 120, "requests on both replicas")
    victim = web_pids(replica_server)["api-server-1"]
    failures: list[str] = []
    done = 0
    stop = threading.Event()

    def loop() -> None:
        nonlocal done
        while not stop.is_set():
            try:
                answer = invoke(replica_server, NAME, "/dags", QueryParameters={"limit": 5})
                assert answer["RestApiStatusCode"] == 200
                done += 1
            except Exception as exc:
                failures.append(repr(exc))

    workers = [threading.Thread(target=loop) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(2)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: web_pids(replica_server).get("api-server-1") not in (None, victim), 60, "a new replica"
        )
        wait_until(lambda: _both_serve(replica_server), 120, "the new replica in rotation")
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert failures == [] and done > 10


def test_an_update_of_web_server_settings_restarts_them_one_at_a_time_and_no_request_fails(
    replica_server: OpenMwaaServer,
) -> None:
    """UpdateEnvironment with an ``api.*`` option: only the web servers restart, one at a time
    behind a spare, while InvokeRestApi and a web session keep calling: none fails."""
    wait_until(lambda: _both_serve(replica_server), 120, "requests on both replicas")
    before = web_pids(replica_server)
    session = web_session(replica_server, NAME, 3)
    failures: list[str] = []
    done = {"invoke": 0, "session": 0}
    stop = threading.Event()

    def invoking() -> None:
        while not stop.is_set():
            try:
                answer = invoke(replica_server, NAME, "/dags", QueryParameters={"limit": 5})
                assert answer["RestApiStatusCode"] == 200
                done["invoke"] += 1
            except Exception as exc:
                failures.append(f"InvokeRestApi: {exc!r}")

    def browsing() -> None:
        while not stop.is_set():
            try:
                answer = session.request("GET", "/api/v2/dags?limit=5")
                assert answer.status_code == 200, answer.text
                done["session"] += 1
            except Exception as exc:
                failures.append(f"web session: {exc!r}")

    workers = [
        threading.Thread(target=invoking),
        threading.Thread(target=invoking),
        threading.Thread(target=browsing),
    ]
    for worker in workers:
        worker.start()
    mwaa = replica_server.client()
    try:
        time.sleep(1)
        mwaa.update_environment(Name=NAME, AirflowConfigurationOptions={"api.instance_name": "rolled"})
        time.sleep(2)  # the update is taken up (UPDATING), then runs to its end
        env = wait_for_status(mwaa, NAME, {"AVAILABLE", "UPDATE_FAILED"}, timeout=400)
        during = dict(done)
        time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert env["Status"] == "AVAILABLE", env.get("LastUpdate")
    assert failures == [], failures[:5]
    assert during["invoke"] > 10 and during["session"] > 5, during
    log = replica_server.log_tail(10**6)
    assert "web servers restarted one at a time (2)" in log
    after = web_pids(replica_server)
    assert set(after) == {"api-server", "api-server-1"}, after  # the spare is gone
    assert not set(after.values()) & set(before.values())
    # Both serve the new configuration (the UI's config endpoint names the instance).
    names = {session.request("GET", "/ui/config").json()["instance_name"] for _ in range(6)}
    assert names == {"rolled"}, names


def test_scales_up_under_load_and_drains_back_to_min(replica_server: OpenMwaaServer) -> None:
    stop = threading.Event()
    failures: list[str] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                invoke(replica_server, NAME, "/dags", QueryParameters={"limit": 100})
            except Exception as exc:
                failures.append(repr(exc))

    workers = [threading.Thread(target=loop) for _ in range(6)]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: len(web_pids(replica_server)) == 3, 90, "a third api-server under load")
        wait_until(
            lambda: "api-server-2 answers" in replica_server.log_tail(10**6), 120, "the third in rotation"
        )
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert "web servers 2 -> 3" in replica_server.log_tail(10**6)
    wait_until(lambda: len(web_pids(replica_server)) == 2, 120, "the third api-server drained")
    assert "web servers 3 -> 2" in replica_server.log_tail(10**6)
    assert failures == []


def test_airflow2_runs_min_webservers_replicas_that_share_requests(replica_server: OpenMwaaServer) -> None:
    """Airflow 2's ``webserver``: a second one beside the first (its own pid file) on its own port."""
    name = "replicas-af2"
    create_environment(replica_server, name, AIRFLOW2, MinWebservers=2, MaxWebservers=2)
    run = replica_server.data_dir / "environments" / "123456789012" / REGION / name / "run"
    logs = run.parent / "logs"

    def live() -> dict[str, int]:
        found = {}
        for path in run.glob("webserver*.pid"):
            pid = int(json.loads(path.read_text())["pid"])
            if Path(f"/proc/{pid}").exists():
                found[path.stem] = pid
        return found

    def served() -> list[int]:
        return [
            (logs / f"{n}.log").read_text(errors="replace").count("/api/v1/version")
            for n in ("webserver", "webserver-1")
        ]

    wait_until(lambda: set(live()) == {"webserver", "webserver-1"}, 180, "two webservers")
    assert len(set(live().values())) == 2

    def both() -> bool:
        before = served()
        for _ in range(6):
            invoke(replica_server, name, "/version")
        return all(a > b for a, b in zip(served(), before, strict=True))

    wait_until(both, 180, "requests on both Airflow 2 webservers")
