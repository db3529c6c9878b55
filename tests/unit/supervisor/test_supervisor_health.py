from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from openmwaa.supervisor.health import (
    ExecutionApiWarmup,
    HealthProbe,
    evaluate_health,
    probe_health,
    warm_execution_api,
)

HEALTHY3 = {
    "metadatabase": {"status": "healthy"},
    "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "2024-01-01T00:00:00+00:00"},
    "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": "2024-01-01T00:00:00+00:00"},
    "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": "2024-01-01T00:00:00+00:00"},
}


def test_all_healthy() -> None:
    assert evaluate_health(HEALTHY3, 3).healthy


@pytest.mark.parametrize(
    ("part", "value", "detail", "failing"),
    [
        ("scheduler", {"status": "unhealthy"}, "scheduler is unhealthy", ("scheduler",)),
        ("triggerer", {"status": None}, "triggerer is not reporting", ("triggerer",)),
        ("dag_processor", None, "dag_processor is not reporting", ("dag-processor",)),
        ("metadatabase", {"status": "unhealthy"}, "metadatabase is unhealthy", ()),
    ],
)
def test_any_unhealthy_part_fails_and_names_its_component(
    part: str, value: Any, detail: str, failing: tuple[str, ...]
) -> None:
    body = {**HEALTHY3, part: value}
    report = evaluate_health(body, 3)
    assert not report.healthy
    assert detail in report.detail
    assert report.failing == failing


def test_airflow2_does_not_need_a_standalone_dag_processor() -> None:
    body = {**HEALTHY3, "dag_processor": {"status": None}}
    assert evaluate_health(body, 2).healthy
    assert not evaluate_health(body, 3).healthy


def test_not_json_object() -> None:
    assert not evaluate_health(["healthy"], 3).healthy


def test_unreachable_server_is_reported_not_raised() -> None:
    report = probe_health("http://127.0.0.1:9", 3, timeout=0.5)
    assert not report.healthy
    assert "does not answer" in report.detail
    assert report.failing == ("api-server",)
    assert probe_health("http://127.0.0.1:9", 2, timeout=0.5).failing == ("webserver",)


class _Healthy(BaseHTTPRequestHandler):
    #: Every path asked for, by every server of this handler.
    asked: list[str] = []

    def do_GET(self) -> None:
        self.asked.append(self.path)
        body = json.dumps(HEALTHY3).encode()
        self.send_response(200 if self.path in ("/api/v2/monitor/health", "/execution/health") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def airflow_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_reuses_one_client_and_ignores_proxy_settings(
    airflow_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would make every probe fail
    monkeypatch.setenv("NO_PROXY", "")
    probe = HealthProbe(timeout=5)
    try:
        for _ in range(3):
            assert probe(airflow_url, 3).healthy
    finally:
        probe.close()
    assert probe_health(airflow_url, 3).healthy
    assert "HTTP 404" in probe_health(airflow_url, 2).detail


def test_the_execution_api_is_warmed_through_its_health_route(airflow_url: str) -> None:
    _Healthy.asked.clear()
    assert warm_execution_api(airflow_url + "/", timeout=5)
    assert _Healthy.asked == ["/execution/health"]


def test_a_warm_up_that_gets_no_answer_is_reported_not_raised() -> None:
    assert not warm_execution_api("http://127.0.0.1:9", timeout=0.5)


def test_airflow3_web_servers_are_warmed_in_the_background_and_airflow2_ones_not_at_all(
    airflow_url: str,
) -> None:
    _Healthy.asked.clear()
    warmup = ExecutionApiWarmup(timeout=5)
    assert warmup(airflow_url, 2)()  # nothing to warm: over at once
    done = warmup(airflow_url, 3)
    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done() and _Healthy.asked == ["/execution/health"]


def test_a_warm_up_is_over_even_when_the_server_does_not_answer() -> None:
    done = ExecutionApiWarmup(timeout=0.5)("http://127.0.0.1:9", 3)
    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done()
