"""``GET /metrics``: Prometheus' own text parser reads openmwaa's series; the scrape needs the token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from openmwaa.app import build_services, create_app
from openmwaa.auth.bootstrap import ensure_bootstrap_admin
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from tests.api.conftest import ACCOUNT, ENV_ARN, REGION, ApiServer, api_settings

TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, tuple[str, str]]]:
    settings = api_settings(tmp_path_factory.mktemp("metrics"), metrics_token=TOKEN)
    key = ensure_bootstrap_admin(settings)
    services = build_services(settings)
    for name, status in (("prod", "AVAILABLE"), ("broken", "UPDATE_FAILED")):
        services.repository.insert(
            EnvironmentRecord(
                key=EnvironmentKey(ACCOUNT, REGION, name),
                arn=ENV_ARN + name,
                status=status,
                created_at=time.time(),
                config={"AirflowVersion": "3.3.1"},
                previous_config=None,
                last_update=None,
                tags={},
                secrets={},
            )
        )
    services.audit.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}", key
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.shutdown()


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return series


def test_prometheus_reads_requests_denials_and_environment_status(
    server: tuple[str, tuple[str, str]], tmp_path: Path
) -> None:
    url, (key_id, secret) = server
    mwaa = boto3.client(
        "mwaa",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )
    mwaa.get_environment(Name="prod")
    wrong = boto3.client(
        "mwaa",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key="not-the-secret",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError):
        wrong.get_environment(Name="prod")
    series = scrape(url)
    assert ({"service": "airflow", "operation": "GetEnvironment", "status": "200"}, 1.0) in series[
        "openmwaa_requests_total"
    ]
    assert ({"service": "airflow"}, 1.0) in series["openmwaa_requests_denied_total"]
    assert any(
        labels == {"service": "airflow", "le": "+Inf"}
        for labels, _ in series["openmwaa_request_duration_seconds_bucket"]
    )
    status = {
        (labels["environment"], labels["status"]): value
        for labels, value in series["openmwaa_environment_status"]
    }
    assert status[("prod", "AVAILABLE")] == 1.0 and status[("prod", "UPDATE_FAILED")] == 0.0
    assert status[("broken", "UPDATE_FAILED")] == 1.0
    assert ({"environment": "prod"}, 0.0) in series["openmwaa_environment_serving"]  # no Airflow here
    assert series["openmwaa_audit_backlog"][0][1] >= 0


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Bearer {TOKEN}x", f"bearer{TOKEN}"])
def test_the_scrape_needs_the_token(server: tuple[str, tuple[str, str]], header: str | None) -> None:
    url, _key = server
    headers = {"Authorization": header} if header else {}
    response = requests.get(url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 403
    assert "openmwaa_requests_total" not in response.text


def test_without_a_token_setting_there_is_no_metrics_endpoint(api: ApiServer) -> None:
    response = requests.get(api.endpoint_url + "/metrics", headers={"Authorization": "Bearer "}, timeout=10)
    assert response.status_code == 404
    assert "OPENMWAA_METRICS_TOKEN" in response.text


def test_an_s3_request_for_a_bucket_named_metrics_is_not_a_scrape(
    server: tuple[str, tuple[str, str]],
) -> None:
    url, (key_id, secret) = server
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as missing:
        s3.list_objects_v2(Bucket="metrics")
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"
