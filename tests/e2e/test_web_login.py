"""Web login tokens and web sessions, with real clients, real TLS and real Airflow.

What MWAA's user guide shows -- CreateWebLoginToken, ``POST https://{host}/aws_mwaa/login`` (Airflow
3: ``/pluginsv2/aws_mwaa/login``), then the Airflow REST API with the session -- run here against
openmwaa's HTTPS endpoint, verified with openmwaa's local CA (``REQUESTS_CA_BUNDLE``), not with
``verify=False``. Token expiry (60 s) is covered in-process with an injected clock
(``tests/unit/services/test_web_tokens.py``); here: reused, forged, other-kind and
other-environment tokens, logout, and the IAM-mapped role deciding what the session may do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from tests.e2e.conftest import REGION, OpenMwaaServer, invoke
from tests.e2e.mwaa_hook_venv import mwaa_hook_python

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
DAG = "hello_openmwaa"

# What the seed's "create a web server session token" sample does, written out as a user would run
# it (its undefined ``dag_id`` read as ``dag_name``): boto3 and requests, nothing but the
# environment variables pointing at openmwaa and at its CA bundle.
SESSION_SCRIPT = """
import logging
import sys

import boto3
import requests


def get_session_info(region, env_name):
    logging.basicConfig(level=logging.INFO)
    try:
        mwaa = boto3.client("mwaa", region_name=region)
        response = mwaa.create_web_login_token(Name=env_name)
        web_server_host_name = response["WebServerHostname"]
        web_token = response["WebToken"]
        login_url = f"https://{web_server_host_name}/aws_mwaa/login"
        login_payload = {"token": web_token}
        response = requests.post(login_url, data=login_payload, timeout=10)
        if response.status_code == 200:
            return (web_server_host_name, response.cookies["session"])
        logging.error("Failed to log in: HTTP %d", response.status_code)
        return None
    except requests.RequestException as e:
        logging.error("Request failed: %s", str(e))
        return None
    except Exception as e:
        logging.error("An unexpected error occurred: %s", str(e))
        return None


def trigger_dag(region, env_name, dag_name):
    logging.info(f"Attempting to trigger DAG {dag_name} in environment {env_name} at region {region}")
    try:
        web_server_host_name, session_cookie = get_session_info(region, env_name)
        if not session_cookie:
            logging.error("Authentication failed, no session cookie retrieved.")
            return
    except Exception as e:
        logging.error(f"Error retrieving session info: {str(e)}")
        return
    cookies = {"session": session_cookie}
    json_body = {"conf": {}}
    url = f"https://{web_server_host_name}/api/v1/dags/{dag_name}/dagRuns"
    try:
        response = requests.post(url, cookies=cookies, json=json_body)
        if response.status_code == 200:
            logging.info("DAG triggered successfully.")
        else:
            logging.error(f"Failed to trigger DAG: HTTP {response.status_code} - {response.text}")
    except requests.RequestException as e:
        logging.error(f"Request to trigger DAG failed: {str(e)}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) != 4:
        logging.error("Incorrect usage. Proper format: python script_name.py {region} {env_name} {dag_name}")
        sys.exit(1)
    region = sys.argv[1]
    env_name = sys.argv[2]
    dag_name = sys.argv[3]
    trigger_dag(region, env_name, dag_name)
"""


def ca_file(server: OpenMwaaServer) -> str:
    return str(server.data_dir / "tls" / "ca.pem")


def ca_bundle(server: OpenMwaaServer) -> str:
    return str(server.data_dir / "tls" / "ca-bundle.pem")


def login_path(major: int) -> str:
    return "/aws_mwaa/login" if major == 2 else "/pluginsv2/aws_mwaa/login"


def api(major: int) -> str:
    return "/api/v1" if major == 2 else "/api/v2"


def post_login(server: OpenMwaaServer, host: str, major: int, token: str) -> requests.Response:
    return requests.post(
        f"https://{host}{login_path(major)}", data={"token": token}, timeout=30, verify=ca_file(server)
    )


class WebSession:
    """A signed-in client as MWAA documents it: cookie ``session`` (v2) or bearer ``_token`` (v3)."""

    def __init__(self, server: OpenMwaaServer, host: str, major: int, login: requests.Response) -> None:
        self.host, self.major = host, major
        self.http = requests.Session()
        self.http.verify = ca_file(server)
        if major == 2:
            self.http.cookies.set("session", login.cookies["session"])
        else:
            self.http.headers["Authorization"] = f"Bearer {login.cookies['_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        # Per request: a REQUESTS_CA_BUNDLE in the environment would override the session's verify.
        verify = self.http.verify
        return self.http.request(method, f"https://{self.host}{path}", timeout=30, verify=verify, **kwargs)


def web_session(server: OpenMwaaServer, name: str, major: int, mwaa: Any = None) -> WebSession:
    created = (mwaa or server.client()).create_web_login_token(Name=name)
    login = post_login(server, created["WebServerHostname"], major, created["WebToken"])
    assert login.status_code == 200, login.text
    return WebSession(server, created["WebServerHostname"], major, login)


def dag_runs(server: OpenMwaaServer, name: str, major: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many runs ``DAG`` has, the newest few), read through InvokeRestApi."""
    newest = "-execution_date" if major == 2 else "-run_after"
    page = invoke(server, name, f"/dags/{DAG}/dagRuns", QueryParameters={"limit": 5, "order_by": newest})
    return page["RestApiResponse"]["total_entries"], page["RestApiResponse"]["dag_runs"]


def test_create_web_login_token_names_an_https_endpoint(server: OpenMwaaServer, af3_env: str) -> None:
    created = server.client().create_web_login_token(Name=af3_env)
    host = created["WebServerHostname"]
    assert host.startswith("127.0.0.1:") and "/" not in host
    assert created["IamIdentity"] == "user/admin"
    assert created["AirflowIdentity"] == "user/admin"
    # The certificate verifies against openmwaa's CA: real TLS, no verify=False anywhere.
    page = requests.get(f"https://{host}/pluginsv2/aws_mwaa/login", verify=ca_file(server), timeout=30)
    assert page.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{host}/pluginsv2/aws_mwaa/login", verify=True, timeout=30)


def test_seed_session_script_triggers_a_dag(
    server: OpenMwaaServer, shared_env: tuple[str, int], tmp_path: Path
) -> None:
    name, major = shared_env
    before, _ = dag_runs(server, name, major)
    script = tmp_path / "trigger_dag.py"
    script.write_text(SESSION_SCRIPT)
    env = {**server.client_env(), "REQUESTS_CA_BUNDLE": ca_bundle(server)}
    done = subprocess.run(
        [sys.executable, str(script), REGION, name, DAG],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "DAG triggered successfully." in done.stderr, done.stderr
    after, newest = dag_runs(server, name, major)
    assert after == before + 1
    run = newest[0]
    assert run["run_type"] == "manual"
    assert run["conf"] == {}
    assert run["state"] in ("queued", "running", "success")


def test_airflow3_session_uses_bearer_token_on_api_v2(server: OpenMwaaServer, af3_env: str) -> None:
    created = server.client().create_web_login_token(Name=af3_env)
    host = created["WebServerHostname"]
    login = post_login(server, host, 3, created["WebToken"])
    assert login.status_code == 200, login.text
    token = login.cookies["_token"]
    headers = {"Authorization": f"Bearer {token}"}
    base = f"https://{host}/api/v2"
    dags = requests.get(f"{base}/dags", headers=headers, verify=ca_file(server), timeout=30)
    assert dags.status_code == 200, dags.text
    assert DAG in {d["dag_id"] for d in dags.json()["dags"]}
    triggered = requests.post(
        f"{base}/dags/{DAG}/dagRuns",
        headers=headers,
        json={"logical_date": None},
        verify=ca_file(server),
        timeout=30,
    )
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    # (InvokeRestApi's Path is at most 64 characters, too short for a run id: list the newest.)
    _, newest = dag_runs(server, af3_env, 3)
    assert run_id in {r["dag_run_id"] for r in newest}
    # The session token is openmwaa's, not an Airflow credential: Airflow itself would refuse it.
    assert token.count(".") == 2


def test_bad_web_tokens_are_refused_with_a_reason(server: OpenMwaaServer, af3_env: str, af2_env: str) -> None:
    mwaa = server.client()
    created = mwaa.create_web_login_token(Name=af2_env)
    host, token = created["WebServerHostname"], created["WebToken"]

    first = post_login(server, host, 2, token)
    assert first.status_code == 200
    reused = post_login(server, host, 2, token)
    assert reused.status_code == 403
    assert "already been used" in reused.json()["detail"]

    fresh = mwaa.create_web_login_token(Name=af2_env)["WebToken"]
    head, payload, signature = fresh.split(".")
    forged_signature = ("A" if signature[0] != "A" else "B") + signature[1:]
    forged = post_login(server, host, 2, f"{head}.{payload}.{forged_signature}")
    assert forged.status_code == 403
    assert "not valid" in forged.json()["detail"]

    other_env = mwaa.create_web_login_token(Name=af3_env)["WebToken"]
    elsewhere = post_login(server, host, 2, other_env)
    assert elsewhere.status_code == 403
    assert "another environment" in elsewhere.json()["detail"]

    cli_token = mwaa.create_cli_token(Name=af2_env)["CliToken"]
    wrong_kind = post_login(server, host, 2, cli_token)
    assert wrong_kind.status_code == 403
    # The unused token for the right environment still works: the refusals above used nothing up.
    assert post_login(server, host, 2, fresh).status_code == 200


def test_no_or_forged_session_gets_401(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, major = shared_env
    session = web_session(server, name, major)
    url = f"https://{session.host}{api(major)}/dags"
    anonymous = requests.get(url, verify=ca_file(server), timeout=30)
    assert anonymous.status_code == 401
    assert "Not signed in" in anonymous.json()["detail"]
    good = session.request("GET", f"{api(major)}/dags")
    assert good.status_code == 200
    forged: dict[str, Any] = dict(session.http.cookies) | dict(session.http.headers)
    forged_value = (forged.get("session") or forged["Authorization"].split()[1])[:-2] + "xx"
    bad = requests.get(
        url,
        cookies={"session": forged_value},
        headers={"Authorization": f"Bearer {forged_value}"},
        verify=ca_file(server),
        timeout=30,
    )
    assert bad.status_code == 401


def test_logout_ends_the_session(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, major = shared_env
    session = web_session(server, name, major)
    assert session.request("GET", f"{api(major)}/dags").status_code == 200
    prefix = "/aws_mwaa" if major == 2 else "/pluginsv2/aws_mwaa"
    out = session.request("POST", f"{prefix}/logout")
    assert out.status_code == 200
    assert any(c.startswith(("session=;", "_token=;")) for c in out.headers["set-cookie"].split(", "))
    # The same cookie or bearer token, kept by the client, no longer opens anything.
    after = session.request("GET", f"{api(major)}/dags")
    assert after.status_code == 401


def test_airflow2_ui_logout_link_ends_the_web_session(server: OpenMwaaServer, af2_env: str) -> None:
    session = web_session(server, af2_env, 2)
    assert session.request("GET", "/api/v1/dags").status_code == 200
    out = session.request("GET", "/logout/", allow_redirects=False)
    assert out.status_code == 200
    assert session.request("GET", "/api/v1/dags").status_code == 401


@dataclass(frozen=True)
class Viewer:
    """An IAM user allowed CreateWebLoginToken on the Viewer role only (no InvokeRestApi)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)

    def client_env(self, server: OpenMwaaServer) -> dict[str, str]:
        return {
            **server.client_env(),
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def mwaa(self, server: OpenMwaaServer) -> Any:
        return server.client(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key
        )


@pytest.fixture(scope="module")
def viewer(server: OpenMwaaServer) -> Viewer:
    editor = IdentitiesEditor(
        server.data_dir / "iam.yaml", account_id=ACCOUNT, box=SecretBox.open(server.data_dir)
    )
    user = f"web-viewer-{os.getpid()}"
    editor.add_user(user)
    editor.put_user_policy(
        user,
        "viewer-web-login",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "airflow:CreateWebLoginToken",
                    "Resource": f"arn:aws:airflow:{REGION}:{ACCOUNT}:role/*/Viewer",
                }
            ],
        },
    )
    key = editor.create_access_key(user)
    found = Viewer(key.access_key_id, key.secret_access_key)
    client = found.mwaa(server)
    deadline = time.monotonic() + 30
    while True:  # the server re-reads the identities file within a second or so
        try:
            client.list_environments()
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "AccessDeniedException" and time.monotonic() < deadline:
                time.sleep(0.3)
                continue
        return found


def test_airflow2_ui_pages_work_through_the_session(
    server: OpenMwaaServer, af2_env: str, viewer: Viewer
) -> None:
    """Airflow 2's Flask UI signs the session's user in (openmwaa_airflow.web_login); forms work."""
    session = web_session(server, af2_env, 2)
    home = session.request("GET", "/home")
    assert home.status_code == 200, home.text[-500:]
    assert "user/admin" in home.text  # FAB's user menu
    assert DAG in home.text
    assert "airflow_session" in session.http.cookies  # Airflow's own session, carrying its CSRF token
    found = re.search(r"var csrfToken = '([^']+)'", home.text)
    assert found is not None
    csrf = found.group(1)

    def is_paused() -> bool:
        return bool(invoke(server, af2_env, f"/dags/{DAG}")["RestApiResponse"]["is_paused"])

    def toggle(who: WebSession, token: str) -> requests.Response:
        # Airflow 2's pause switch posts the DAG's current state and flips it.
        return who.request(
            "POST",
            f"/paused?is_paused={str(is_paused()).lower()}&dag_id={DAG}",
            headers={"X-CSRFToken": token, "Referer": f"https://{session.host}/home"},
            allow_redirects=False,
        )

    before = is_paused()
    forged = toggle(session, "not-the-token")
    assert forged.status_code == 400
    assert "CSRF" in forged.text
    assert is_paused() == before
    assert toggle(session, csrf).status_code == 200
    assert is_paused() != before
    assert toggle(session, csrf).status_code == 200
    assert is_paused() == before

    # A Viewer's UI session reads but cannot change DAGs (FAB's answer).
    created = viewer.mwaa(server).create_web_login_token(Name=af2_env)
    login = post_login(server, created["WebServerHostname"], 2, created["WebToken"])
    watcher = WebSession(server, created["WebServerHostname"], 2, login)
    page = watcher.request("GET", "/home")
    assert page.status_code == 200
    assert created["AirflowIdentity"] in page.text
    found = re.search(r"var csrfToken = '([^']+)'", page.text)
    assert found is not None
    assert toggle(watcher, found.group(1)).status_code != 200
    assert is_paused() == before
    # Each user keeps their own Airflow session: the Viewer's "Access is Denied" (and CSRF token)
    # must not reach the next user signing in (the proxy's upstream client keeps no cookies).
    fresh = web_session(server, af2_env, 2)
    page = fresh.request("GET", "/home")
    assert "Access is Denied" not in page.text
    assert fresh.http.cookies["airflow_session"] != watcher.http.cookies["airflow_session"]
    assert "Access is Denied" in watcher.request("GET", "/home").text

    # No session: a browser is sent to the login page, coming back here afterwards.
    anonymous = requests.get(
        f"https://{session.host}/home",
        headers={"Accept": "text/html"},
        allow_redirects=False,
        verify=ca_file(server),
        timeout=30,
    )
    assert anonymous.status_code == 302
    assert anonymous.headers["location"] == "/aws_mwaa/login?next=%2Fhome"


def test_session_carries_the_iam_mapped_role(
    server: OpenMwaaServer, shared_env: tuple[str, int], viewer: Viewer
) -> None:
    name, major = shared_env
    viewer_mwaa = viewer.mwaa(server)
    created = viewer_mwaa.create_web_login_token(Name=name)
    assert created["AirflowIdentity"].startswith("user/web-viewer-")
    login = post_login(server, created["WebServerHostname"], major, created["WebToken"])
    assert login.status_code == 200, login.text
    session = WebSession(server, created["WebServerHostname"], major, login)
    assert session.request("GET", f"{api(major)}/dags").status_code == 200
    body: dict[str, Any] = {"conf": {}} if major == 2 else {"logical_date": None}
    before, _ = dag_runs(server, name, major)
    refused = session.request("POST", f"{api(major)}/dags/{DAG}/dagRuns", json=body)
    assert refused.status_code == 403, refused.text  # Airflow's own RBAC answer for a Viewer
    assert dag_runs(server, name, major)[0] == before
    # IAM allows this user no other role: InvokeRestApi and an Admin-level login stay closed.
    with pytest.raises(ClientError) as denied:
        viewer_mwaa.invoke_rest_api(Name=name, Path="/dags", Method="GET")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_official_airflow_client_lists_dags_through_a_session(server: OpenMwaaServer, af3_env: str) -> None:
    """``apache-airflow-client`` 3.x against ``/api/v2`` with the session's ``_token`` as access token."""
    import airflow_client.client as airflow_client

    created = server.client().create_web_login_token(Name=af3_env)
    login = post_login(server, created["WebServerHostname"], 3, created["WebToken"])
    assert login.status_code == 200, login.text
    config = airflow_client.Configuration(
        host=f"https://{created['WebServerHostname']}",
        access_token=login.cookies["_token"],
        ssl_ca_cert=ca_file(server),
    )
    with airflow_client.ApiClient(config) as api_client:
        dags = airflow_client.DAGApi(api_client).get_dags(dag_id_pattern="hello")
        dag = airflow_client.DAGApi(api_client).get_dag(DAG)
    assert [d.dag_id for d in dags.dags] == [DAG]
    assert dag.dag_id == DAG

    config.access_token = None
    with airflow_client.ApiClient(config) as api_client, pytest.raises(airflow_client.ApiException) as no:
        airflow_client.DAGApi(api_client).get_dags()
    assert no.value.status == 401


# The Amazon provider's MwaaHook runs in its own virtualenv (apache-airflow + the provider), shared
# with tests/e2e/test_mwaa_hook.py: same place, recipe, lock and ready-marker, made once.

HOOK_SCRIPT = """
import json
import os
import sys

from airflow.providers.amazon.aws.hooks.mwaa import MwaaHook

results = {}
for name, major, local, keys in json.loads(sys.argv[1]):
    if keys:  # another IAM user from here on (the hook's boto3 session reads the environment)
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = keys
    hook = MwaaHook(aws_conn_id=None)
    out = hook.invoke_rest_api(
        env_name=name, path="/dags", method="GET", generate_local_token=local, airflow_version=major
    )
    results[name + ("/local" if local else "/fallback")] = {
        "status": out["RestApiStatusCode"],
        "dags": sorted(d["dag_id"] for d in out["RestApiResponse"]["dags"]),
    }
print(json.dumps(results))
"""


def test_mwaa_hook_web_token_path(
    server: OpenMwaaServer, af3_env: str, af2_env: str, viewer: Viewer, tmp_path: Path
) -> None:
    """``invoke_rest_api(generate_local_token=True)``: CreateWebLoginToken, login, then the REST API.

    The hook posts the token to ``https://{host}/aws_mwaa/login`` (Airflow 3: ``/pluginsv2/...``)
    with ``requests`` and no ``verify`` argument, so ``REQUESTS_CA_BUNDLE`` is how it trusts the
    endpoint. A caller IAM allows no InvokeRestApi gets ``No Airflow role granted in IAM.``, on
    which the hook falls back to the same web-token path by itself.
    """
    python = mwaa_hook_python()
    calls = [
        [af2_env, 2, True, None],
        [af3_env, 3, True, None],
        # As a user IAM allows CreateWebLoginToken (Viewer) but no InvokeRestApi: the fallback.
        [af3_env, 3, False, [viewer.access_key_id, viewer.secret_access_key]],
    ]
    done = subprocess.run(
        [str(python), "-c", HOOK_SCRIPT, json.dumps(calls)],
        env={
            **server.client_env(),
            "REQUESTS_CA_BUNDLE": ca_bundle(server),
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    # The shared environments hold the example DAGs, and may hold other tests' DAGs too.
    for key in (f"{af2_env}/local", f"{af3_env}/local", f"{af3_env}/fallback"):
        assert results[key]["status"] == 200, results[key]
        assert {"hello_openmwaa", "on_new_signup"} <= set(results[key]["dags"]), results[key]
    assert results[f"{af3_env}/fallback"] == results[f"{af3_env}/local"]  # Viewers see every DAG too
    assert "Trying again by generating local token" in done.stderr + done.stdout


def stalled_upload(server: OpenMwaaServer, session: WebSession, path: str) -> ssl.SSLSocket:
    """A signed-in client that sends a write's head and the start of its body, then nothing more."""
    host, port = session.host.rsplit(":", 1)
    tls = ssl.create_default_context(cafile=ca_file(server))
    conn = tls.wrap_socket(socket.create_connection((host, int(port)), timeout=30), server_hostname=host)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {session.host}\r\n"
        f"Authorization: {session.http.headers['Authorization']!s}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    conn.sendall(head.encode() + b'{"key": "stalled-upload", "value": "')
    return conn


def test_stalled_uploads_never_hold_up_invoke_rest_api_writes(server: OpenMwaaServer, af3_env: str) -> None:
    """Three web-session uploads that stall mid-body (open, then closed by their clients) never
    hold Airflow's write gate: an InvokeRestApi write still lands within its 10 s both times."""
    session = web_session(server, af3_env, 3)
    mwaa = server.client()  # a RestApiServerException (a 400) is never retried
    stalled = [stalled_upload(server, session, "/api/v2/variables") for _ in range(3)]
    time.sleep(1)  # nothing to poll: let the server take in the three heads and partial bodies
    keys = [f"past-stalled-{uuid.uuid4().hex[:8]}-{i}" for i in range(2)]
    try:
        for phase, key in zip(("stalled", "closed"), keys, strict=True):
            started = time.monotonic()
            out = mwaa.invoke_rest_api(
                Name=af3_env, Path="/variables", Method="POST", Body={"key": key, "value": phase}
            )
            elapsed = time.monotonic() - started
            assert out["RestApiStatusCode"] == 201, (phase, out)
            assert elapsed < 10, f"the write waited {elapsed:.1f} s behind {phase} uploads"
            if phase == "stalled":
                for conn in stalled:
                    conn.close()  # and the next write follows at once
        listed = invoke(server, af3_env, "/variables", QueryParameters={"limit": 100})["RestApiResponse"]
        assert "stalled-upload" not in {v["key"] for v in listed["variables"]}  # no half body reached Airflow
    finally:
        for conn in stalled:
            conn.close()
        for key in keys:
            with contextlib.suppress(ClientError):
                invoke(server, af3_env, f"/variables/{key}", "DELETE")
