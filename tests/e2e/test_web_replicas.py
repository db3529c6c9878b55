"""Web server replicas against real Airflow 3 and 2: N web servers, requests spread over them, a
killed one replaced with no failed request, scale-up and drain, an update that restarts them one at
a time, and the class and bound checks a create or update gets from a real server.

Two environments with two web servers each (MinWebservers=2, MaxWebservers=3), Airflow 3 and
Airflow 2, created at the same time on a server of their own whose scaling windows are shortened,
so scale-up and drain run within the tests too.
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
from typing import Any

import pytest

from tests.e2e.conftest import (
    AIRFLOW2,
    AIRFLOW3,
    REGION,
    OpenMwaaServer,
    env_home,
    invoke,
    new_data_dir,
    request_environment,
    start_server,
    stop_server,
    wait_for_example_dags,
    wait_for_status,
)
from tests.e2e.test_web_login import web_session

pytestmark = pytest.mark.e2e

NAME = "replicas-af3"
AF2_NAME = "replicas-af2"


@pytest.fixture(scope="module")
def replica_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenMwaaServer]:
    srv = start_server(
        new_data_dir(tmp_path_factory, "replicas"),
        extra_env={
            "OPENMWAA_WEB_SERVERS_LIMIT": "0",
            "OPENMWAA_REST_API_RATE": "0",
            "OPENMWAA_WEB_SCALE_UP_WINDOW": "3",
            # Low load this long, this long after the last change, drains a replica (120 s by
            # default): the tests' heavy load keeps the mean far above the drain threshold, so a
            # short window only shortens the wait for the drain once the load stops.
            "OPENMWAA_WEB_SCALE_DOWN_WINDOW": "10",
        },
    )
    try:
        mwaa = srv.client()
        for name, version in ((NAME, AIRFLOW3), (AF2_NAME, AIRFLOW2)):  # both start at once
            srv.make_bucket(f"bucket-{name}")
            request_environment(srv, name, version, f"bucket-{name}", MinWebservers=2, MaxWebservers=3)
        for name in (NAME, AF2_NAME):
            env = wait_for_status(mwaa, name, {"AVAILABLE", "CREATE_FAILED"})
            assert env["Status"] == "AVAILABLE", (env.get("LastUpdate"), srv.log_tail())
            wait_for_example_dags(srv, name)
        yield srv
    finally:
        stop_server(srv)


def home(server: OpenMwaaServer, name: str = NAME) -> Path:
    return env_home(server, name)


def web_pids(server: OpenMwaaServer, name: str = NAME, kind: str = "api-server") -> dict[str, int]:
    """Running web server replicas: name -> pid (from the supervisor's pid files)."""
    found = {}
    for path in (home(server, name) / "run").glob(f"{kind}*.pid"):
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
    # An access log line may be written a moment after its answer.
    wait_until(lambda: sum(served(replica_server, n) - before[n] for n in pids) >= 20, 30, "the access log")
    after = {n: served(replica_server, n) for n in pids}
    shares = [after[n] - before[n] for n in pids]
    assert sum(shares) >= 20 and min(shares) >= 5, shares


def test_the_first_replicas_execution_api_is_warmed_the_others_not(replica_server: OpenMwaaServer) -> None:
    """Tasks call the execution API on the environment's own web server (the first replica): it
    was asked once it answered, before any task; the other replicas serve no task."""
    logs = home(replica_server) / "logs"
    warmed = "method=GET path=/execution/health query= status_code=200"
    wait_until(lambda: warmed in (logs / "api-server.log").read_text(errors="replace"), 60, "the warm-up")
    assert "/execution/" not in (logs / "api-server-1.log").read_text(errors="replace")
    af2_logs = (home(replica_server, AF2_NAME) / "logs").glob("*.log")
    assert not any("/execution/health" in p.read_text(errors="replace") for p in af2_logs)


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


class Load:
    """``threads`` callers of InvokeRestApi ``GET /dags?limit=<limit>`` until the block ends."""

    def __init__(self, server: OpenMwaaServer, name: str, threads: int, limit: int) -> None:
        self.failures: list[str] = []
        self.done = 0
        self._stop = threading.Event()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    answer = invoke(server, name, "/dags", QueryParameters={"limit": limit})
                    assert answer["RestApiStatusCode"] == 200
                    self.done += 1
                except Exception as exc:
                    self.failures.append(repr(exc))

        self._threads = [threading.Thread(target=loop) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def joined(server: OpenMwaaServer, name: str) -> int:
    """How often web server ``name`` joined a rotation so far (a spare of a rolling restart too)."""
    return server.log_tail(10**6).count(f"web server {name} answers")


def test_scales_up_under_load_and_drains_back_to_min(replica_server: OpenMwaaServer) -> None:
    before = joined(replica_server, "api-server-2")
    with Load(replica_server, NAME, threads=6, limit=100) as heavy:
        wait_until(
            lambda: joined(replica_server, "api-server-2") > before, 180, "a third api-server in rotation"
        )
    assert heavy.failures == [], heavy.failures[:5]
    assert f"{NAME}: web servers 2 -> 3" in replica_server.log_tail(10**6)
    wait_until(lambda: len(web_pids(replica_server)) == 2, 120, "the third api-server drained")
    assert f"{NAME}: web servers 3 -> 2" in replica_server.log_tail(10**6)


def test_airflow2_webservers_share_requests_a_killed_one_is_replaced_and_they_scale(
    replica_server: OpenMwaaServer,
) -> None:
    """Airflow 2's ``webserver``: a second one beside the first (its own pid file) on its own port;
    one killed is replaced with no failed request; load adds a third, which drains once idle."""
    logs = home(replica_server, AF2_NAME) / "logs"

    def live() -> dict[str, int]:
        return web_pids(replica_server, AF2_NAME, "webserver")

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
            invoke(replica_server, AF2_NAME, "/version")
        return all(a > b for a, b in zip(served(), before, strict=True))

    wait_until(both, 180, "requests on both Airflow 2 webservers")

    victim = live()["webserver-1"]
    with Load(replica_server, AF2_NAME, threads=2, limit=5) as light:
        time.sleep(2)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: live().get("webserver-1") not in (None, victim), 60, "a new webserver")
        wait_until(both, 180, "the new webserver in rotation")
    assert light.failures == [] and light.done > 10, light.failures[:5]

    before = joined(replica_server, "webserver-2")
    with Load(replica_server, AF2_NAME, threads=6, limit=100) as heavy:
        wait_until(lambda: joined(replica_server, "webserver-2") > before, 180, "a third webserver")
    assert heavy.failures == [], heavy.failures[:5]
    wait_until(lambda: len(live()) == 2, 120, "the third webserver drained")
    assert f"environment 123456789012/{REGION}/{AF2_NAME}: web servers 3 -> 2" in replica_server.log_tail(
        10**6
    )


@pytest.mark.parametrize("version", [AIRFLOW3, AIRFLOW2])
def test_bad_classes_and_counts_are_validation_errors_and_change_nothing(
    replica_server: OpenMwaaServer, version: str
) -> None:
    mwaa = replica_server.client()
    request: dict[str, Any] = {
        "Name": f"refused-{version[0]}",
        "AirflowVersion": version,
        "SourceBucketArn": f"arn:aws:s3:::bucket-{NAME}",
        "DagS3Path": "dags",
        "ExecutionRoleArn": "arn:aws:iam::123456789012:role/e2e",
        "NetworkConfiguration": {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-a"]},
    }
    enum = "Member must satisfy enum value set"
    at_most = "failed to satisfy constraint: Member must have value less than or equal to"
    refused: list[tuple[str, dict[str, Any]]] = [
        (
            f"Value 'mw1.foo' at 'environmentClass' failed to satisfy constraint: {enum}",
            {"EnvironmentClass": "mw1.foo"},
        ),
        (f"Value '6' at 'maxWebservers' {at_most} 5 for environment class mw1.small", {"MaxWebservers": 6}),
        (
            f"Value '2' at 'minWebservers' {at_most} 1 for environment class mw1.micro",
            {"EnvironmentClass": "mw1.micro", "MinWebservers": 2, "MaxWebservers": 2},
        ),
        (
            f"Value '3' at 'minWebservers' {at_most} MaxWebservers (2)",
            {"MinWebservers": 3, "MaxWebservers": 2},
        ),
    ]
    for message, extra in refused:
        with pytest.raises(mwaa.exceptions.ValidationException) as exc:
            mwaa.create_environment(**request, **extra)
        assert message in exc.value.response["Error"]["Message"]
    names = mwaa.list_environments()["Environments"]
    assert request["Name"] not in names
    running = NAME if version == AIRFLOW3 else AF2_NAME
    with pytest.raises(mwaa.exceptions.ValidationException) as exc:
        mwaa.update_environment(Name=running, EnvironmentClass="mw1.micro")
    assert "for environment class mw1.micro" in exc.value.response["Error"]["Message"]
    env = mwaa.get_environment(Name=running)["Environment"]
    assert (env["Status"], env["EnvironmentClass"], env["MaxWebservers"]) == ("AVAILABLE", "mw1.small", 3)
