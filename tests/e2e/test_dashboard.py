"""The dashboard in headless Chromium: three environments in three states, a failed run, a narrower viewer.

The shared environments are reused: ``af3_env`` gets a DAG run marked failed (with a failed task
instance) through InvokeRestApi, ``af2_env`` stays as it is, and a third environment fails to
create (its startup script exits 3, so no Airflow starts). Sign-in is the CLI's pre-signed URL,
signed with the e2e keys; the page is loaded by Chromium (``--dump-dom`` after its scripts ran,
and a screenshot, left in the test's temporary directory).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from tests.e2e.conftest import (
    ACCESS_KEY,
    AIRFLOW3,
    SECRET_KEY,
    OpenMwaaServer,
    invoke,
    request_environment,
    wait_for_status,
    wait_until_known,
)
from tests.e2e.test_browser_sso import chromium
from tests.e2e.test_iam import ACCOUNT, ENV_ARN, Key, add_user

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("chromium") is None,
        reason="chromium is not installed (Debian/Ubuntu: apt-get install -y chromium)",
    ),
]

BROKEN = "dash-broken"
#: Virtual time the dashboard page gets to fetch its state and draw it (ms).
PAGE_BUDGET_MS = 4000


def signin_url(server: OpenMwaaServer, key: Key | None = None) -> str:
    """What a user runs: ``openmwaa dashboard``, with their credentials in the environment."""
    env = server.client_env()
    if key is not None:
        env.update(AWS_ACCESS_KEY_ID=key.access_key_id, AWS_SECRET_ACCESS_KEY=key.secret_access_key)
    done = subprocess.run(
        [sys.executable, "-m", "openmwaa", "dashboard", "--endpoint-url", server.endpoint_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(server.endpoint_url + "/dashboard/signin?") and "X-Amz-Signature=" in url
    return url


@pytest.fixture(scope="module")
def broken_env(server: OpenMwaaServer) -> Iterator[str]:
    """An environment that fails to create (its startup script exits 3): no Airflow starts."""
    bucket = server.make_bucket(f"bucket-{BROKEN}")
    (bucket / "startup-failing.sh").write_text("#!/bin/bash\necho 'no artifacts today' >&2\nexit 3\n")
    request_environment(server, BROKEN, AIRFLOW3, bucket.name, StartupScriptS3Path="startup-failing.sh")
    yield BROKEN
    server.client().delete_environment(Name=BROKEN)


@pytest.fixture(scope="module")
def failed_run(server: OpenMwaaServer, af3_env: str) -> str:
    """A run of hello_openmwaa on the Airflow 3 environment, with task ``extract`` and the run failed."""
    run_id = f"df-{uuid.uuid4().hex[:6]}"
    invoke(
        server, af3_env, "/dags/hello_openmwaa/dagRuns", "POST",
        Body={"dag_run_id": run_id, "logical_date": None},
    )  # fmt: skip
    base = f"/dags/hello_openmwaa/dagRuns/{run_id}"
    invoke(server, af3_env, f"{base}/taskInstances/extract", "PATCH", Body={"new_state": "failed"})
    invoke(server, af3_env, base, "PATCH", Body={"state": "failed"})
    return run_id


@pytest.fixture(scope="module")
def narrow_viewer(server: OpenMwaaServer, af2_env: str) -> Key:
    """May see the Airflow 2 environment only, and none of its DAG data."""
    editor = IdentitiesEditor(
        server.data_dir / "iam.yaml", account_id=ACCOUNT, box=SecretBox.open(server.data_dir)
    )
    key = add_user(
        editor,
        "dashboard-narrow",
        {"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": ENV_ARN + af2_env},
    )
    wait_until_known(server, key.access_key_id, key.secret_access_key)
    return key


def signed_in(server: OpenMwaaServer, key: Key | None = None) -> requests.Session:
    session = requests.Session()
    response = session.get(signin_url(server, key), allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text
    return session


def wait_for_state(
    server: OpenMwaaServer, session: requests.Session, ready: Any, timeout: float = 120
) -> dict[str, Any]:
    """Poll the dashboard's JSON until ``ready(state)`` (what the page will then draw)."""
    deadline = time.monotonic() + timeout
    while True:
        state: dict[str, Any] = session.get(server.endpoint_url + "/dashboard/api/state", timeout=60).json()
        if ready(state) or time.monotonic() > deadline:
            return state
        time.sleep(1)


def by_name(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {env["name"]: env for env in state.get("environments", [])}


def text_of(dom: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def test_dashboard_shows_three_environments_and_a_failed_run(
    server: OpenMwaaServer,
    *,
    af3_env: str,
    af2_env: str,
    broken_env: str,
    failed_run: str,
    tmp_path: Path,
) -> None:
    wait_for_status(server.client(), broken_env, {"CREATE_FAILED"}, timeout=300)
    session = signed_in(server)

    def ready(state: dict[str, Any]) -> bool:
        envs = by_name(state)
        af3 = envs.get(af3_env, {})
        return (
            any(d["lastRunId"] == failed_run for d in af3.get("failingDags", []))
            and bool(envs.get(af2_env, {}).get("runsByState"))
            and envs.get(broken_env, {}).get("status") == "CREATE_FAILED"
        )

    state = wait_for_state(server, session, ready)
    assert ready(state), state
    envs = by_name(state)
    af3, af2, broken = envs[af3_env], envs[af2_env], envs[broken_env]
    assert af3["runsByState"]["failed"] >= 1
    assert any(t["runId"] == failed_run and t["taskId"] == "extract" for t in af3["failedTasks"])
    assert af3["health"]["scheduler"] == "healthy" and af3["webServers"] >= 1 and af3["workers"] == 1
    assert af2["health"]["scheduler"] == "healthy" and af2["airflowVersion"].startswith("2.")
    assert broken["health"] == {} and "exited with code 3" in (broken["lastError"] or "")
    # The admin's own InvokeRestApi calls above are among the environment's audit decisions.
    assert any(a["action"] == "airflow:InvokeRestApi" for a in af3["audit"])

    # The page, in a browser: the three cards, the failed run, all drawn by its script.
    shot = tmp_path / "dashboard-admin.png"
    dom = chromium(
        server, tmp_path / "profile-admin", signin_url(server), screenshot=shot, budget_ms=PAGE_BUDGET_MS
    )
    print(f"screenshot of the dashboard: {shot}")
    assert shot.stat().st_size > 10_000
    text = text_of(dom)
    assert 'data-loaded="true"' in dom, text[:2000]
    for name, status in ((af3_env, "AVAILABLE"), (af2_env, "AVAILABLE"), (broken_env, "CREATE_FAILED")):
        assert re.search(rf'id="env-{name}" data-status="{status}"', dom), (name, text[:3000])
    assert "hello_openmwaa — " in text and f"last {failed_run}" in text
    assert f"hello_openmwaa.extract run {failed_run}" in text
    assert "exited with code 3" in text

    # The failing DAG's link goes into Airflow through a single-use web login for this viewer.
    link = next(d["url"] for d in af3["failingDags"] if d["lastRunId"] == failed_run)
    redirect = session.get(server.endpoint_url + link, allow_redirects=False, timeout=60)
    assert redirect.status_code == 303, redirect.text
    location = redirect.headers["location"]
    assert "/pluginsv2/aws_mwaa/aws-console-sso?login=true&next=%2Fdags%2Fhello_openmwaa#" in location
    host = location.split("/")[2]
    login = requests.post(
        f"https://{host}/pluginsv2/aws_mwaa/login",
        data={"token": location.split("#", 1)[1]},
        verify=str(server.data_dir / "tls" / "ca.pem"),
        timeout=30,
    )
    assert login.status_code == 200, login.text


def test_a_narrower_viewer_sees_less(
    server: OpenMwaaServer, af3_env: str, af2_env: str, narrow_viewer: Key, tmp_path: Path
) -> None:
    session = signed_in(server, narrow_viewer)
    state = wait_for_state(server, session, lambda s: bool(by_name(s).get(af2_env, {}).get("health")))
    assert [env["name"] for env in state["environments"]] == [af2_env]
    af2 = state["environments"][0]
    assert af2["dagDataVisible"] is False and "runsByState" not in af2 and af2["airflowUrl"] is None
    # This viewer's own requests only: the admin's InvokeRestApi calls are not theirs to see.
    assert all(a["principal"] == state["viewer"] for a in af2["audit"])

    shot = tmp_path / "dashboard-narrow.png"
    dom = chromium(
        server,
        tmp_path / "profile-narrow",
        signin_url(server, narrow_viewer),
        screenshot=shot,
        budget_ms=PAGE_BUDGET_MS,
    )
    print(f"screenshot of the narrower viewer's dashboard: {shot}")
    text = text_of(dom)
    assert f'id="env-{af2_env}"' in dom and f'id="env-{af3_env}"' not in dom, text[:2000]
    assert "DAG data hidden" in text and "1 environment(s)" in text
    # Its session cannot open an Airflow UI it has no role in.
    link = f"{server.endpoint_url}/dashboard/airflow?environment={ENV_ARN}{af2_env}"
    assert session.get(link, allow_redirects=False, timeout=30).status_code == 403


def test_the_cli_sign_in_url_works_once(server: OpenMwaaServer) -> None:
    url = signin_url(server)
    assert requests.get(url, allow_redirects=False, timeout=30).status_code == 303
    replay = requests.get(url, allow_redirects=False, timeout=30)
    assert replay.status_code == 403 and "already been used" in replay.text
    assert ACCESS_KEY not in replay.text and SECRET_KEY not in replay.text
