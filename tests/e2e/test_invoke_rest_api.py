"""InvokeRestApi against real Airflow 3 (/api/v2) and Airflow 2 (/api/v1), with real boto3.

The proxy's edges that need an upstream misbehaving on demand (timeout, 6 MB, exact retry
counts, a deterministic burst) are in ``tests/api/test_invoke_errors.py``; here everything is real.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from tests.e2e.conftest import (
    REGION,
    OpenMwaaServer,
    invoke,
    throttle_clock,
    trigger_and_wait,
    wait_until_known,
)

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"

#: The seed's first sample script, as our own text: list DAGs, create a variable, unchanged code.
SAMPLE_SCRIPT = """
import boto3

env_name = "__ENV_NAME__"


def list_dags(client):
    request_params = {
        "Name": env_name,
        "Path": "/dags",
        "Method": "GET",
        "QueryParameters": {"paused": False},
    }
    response = client.invoke_rest_api(**request_params)
    print("Airflow REST API response: ", response["RestApiResponse"])


def create_variable(client):
    request_params = {
        "Name": env_name,
        "Path": "/variables",
        "Method": "POST",
        "Body": {
            "key": "test-restapi-key",
            "value": "test-restapi-value",
            "description": "Test variable created by MWAA InvokeRestApi API",
        },
    }
    response = client.invoke_rest_api(**request_params)
    print("Airflow REST API response: ", response["RestApiResponse"])


if __name__ == "__main__":
    client = boto3.client("mwaa")
    list_dags(client)
    create_variable(client)
"""


def rest_error(server: OpenMwaaServer, call: Any) -> dict[str, Any]:
    """The error response ``call`` ends in (fails if it succeeds)."""
    mwaa = server.client()
    with pytest.raises(mwaa.exceptions.ClientError) as exc:
        call()
    return dict(exc.value.response)


def delete_quietly(server: OpenMwaaServer, name: str, path: str) -> None:
    try:
        invoke(server, name, path, "DELETE")
    except server.client().exceptions.RestApiClientException as exc:
        assert exc.response["RestApiStatusCode"] == 404


# 1. The seed's sample script -------------------------------------------------------------------


def test_seed_sample_script_runs_unchanged(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, major = shared_env
    mwaa = server.client()
    # The shared environments keep MWAA's default: a private web server, reached from "inside" its VPC.
    assert mwaa.get_environment(Name=name)["Environment"]["WebserverAccessMode"] == "PRIVATE_ONLY"
    delete_quietly(server, name, "/variables/test-restapi-key")
    result = subprocess.run(
        [sys.executable, "-c", SAMPLE_SCRIPT.replace("__ENV_NAME__", name)],
        env=server.client_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("Airflow REST API response:  {") and "'total_entries'" in lines[0]
    assert lines[1].startswith("Airflow REST API response:  {") and "'test-restapi-key'" in lines[1]
    stored = invoke(server, name, "/variables/test-restapi-key")
    assert stored["RestApiStatusCode"] == 200
    variable = stored["RestApiResponse"]
    # Airflow 3 masks values of keys that look sensitive ("test_restapi_key" contains "api_key").
    value = "***" if major == 3 else "test-restapi-value"
    assert (variable["key"], variable["value"], variable["description"]) == (
        "test-restapi-key",
        value,
        "Test variable created by MWAA InvokeRestApi API",
    )


# 2. A DAG run from trigger to XCom ---------------------------------------------------------------


def test_trigger_poll_and_read_xcom(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, major = shared_env
    run = trigger_and_wait(server, name, major, "hello_openmwaa")
    assert run["state"] == "success"
    run_id = run["dag_run_id"]
    tis = invoke(server, name, f"/dags/hello_openmwaa/dagRuns/{run_id}/taskInstances")["RestApiResponse"]
    assert sorted((ti["task_id"], ti["state"]) for ti in tis["task_instances"]) == [
        ("extract", "success"),
        ("report", "success"),
    ]
    # The XCom entry of `report`, listed within InvokeRestApi's 64-character Path limit.
    entries = invoke(
        server,
        name,
        "/dags/hello_openmwaa/dagRuns/~/taskInstances/report/xcomEntries",
        QueryParameters={"xcom_key": "return_value", "limit": 100},
    )["RestApiResponse"]["xcom_entries"]
    assert {(e["dag_id"], e["task_id"], e["key"]) for e in entries} == {
        ("hello_openmwaa", "report", "return_value")
    }
    if major == 3:  # Airflow 2's listing carries no run id
        assert run_id in {e["run_id"] for e in entries}

    # Its value's own path is longer than 64 characters: refused, as MWAA refuses it...
    value_path = f"/dags/hello_openmwaa/dagRuns/{run_id}/taskInstances/report/xcomEntries/return_value"
    assert len(value_path) > 64
    error = rest_error(server, lambda: invoke(server, name, value_path))
    assert error["Error"]["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 64" in error["Error"]["Message"]

    # ...and read through a web session, the documented way to the full REST API.
    login = server.client().create_web_login_token(Name=name)
    ca = str(server.data_dir / "tls" / "ca.pem")
    base = f"https://{login['WebServerHostname']}"
    login_path = "/pluginsv2/aws_mwaa/login" if major == 3 else "/aws_mwaa/login"
    session = requests.post(base + login_path, data={"token": login["WebToken"]}, verify=ca, timeout=30)
    assert session.status_code == 200
    if major == 3:
        auth: dict[str, Any] = {"headers": {"Authorization": f"Bearer {session.cookies['_token']}"}}
    else:
        auth = {"cookies": {"session": session.cookies["session"]}}
    value = requests.get(
        f"{base}/api/v{1 if major == 2 else 2}{value_path}",
        params={"deserialize": "true"} if major == 3 else None,
        verify=ca,
        timeout=30,
        **auth,
    )
    assert value.status_code == 200, value.text
    assert value.json()["value"] in ("hello, openmwaa", '"hello, openmwaa"')


def test_query_parameters_reach_airflow_typed(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, _ = shared_env
    invoke(server, name, "/dags/hello_openmwaa", "PATCH", Body={"is_paused": False})
    invoke(server, name, "/dags/on_new_signup", "PATCH", Body={"is_paused": True})

    def dag_ids(query: dict[str, Any]) -> set[str]:
        dags = invoke(server, name, "/dags", QueryParameters=query)["RestApiResponse"]["dags"]
        return {d["dag_id"] for d in dags}

    # {"paused": False} arrives as paused=false (Python's "False" would be a 4xx or no filter).
    unpaused, paused = dag_ids({"paused": False}), dag_ids({"paused": True})
    assert "hello_openmwaa" in unpaused and "hello_openmwaa" not in paused
    assert "on_new_signup" in paused and "on_new_signup" not in unpaused
    # A list repeats its key (tags=a&tags=b, matched as "any"): whichever order, both values count.
    assert "hello_openmwaa" in dag_ids({"tags": ["no-such-tag", "example"]})
    assert "hello_openmwaa" in dag_ids({"tags": ["example", "no-such-tag"]})
    assert dag_ids({"tags": ["no-such-tag"]}) == set()
    assert dag_ids({"tags": ["example"], "limit": 1}) and len(dag_ids({"limit": 1})) == 1


# 3. Errors ---------------------------------------------------------------------------------------


def test_airflow_404_is_rest_api_client_exception(
    server: OpenMwaaServer, shared_env: tuple[str, int]
) -> None:
    name, major = shared_env
    error = rest_error(server, lambda: invoke(server, name, "/dags/no_such_dag"))
    assert error["Error"]["Code"] == "RestApiClientException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["RestApiStatusCode"] == 404
    body = error["RestApiResponse"]
    if major == 3:
        assert "no_such_dag" in body["detail"]
    else:
        assert body["status"] == 404 and "no_such_dag" in body["detail"]


@pytest.mark.parametrize(
    ("path", "method", "says"),
    [
        ("/../x", "GET", "not a valid Airflow REST API path"),
        ("//x", "GET", "not a valid Airflow REST API path"),
        ("/dags/../../x", "GET", "not a valid Airflow REST API path"),
        ("/dags/%2e%2e/%2e%2e/x", "GET", "not a valid Airflow REST API path"),
        ("/dags/" + "x" * 59, "GET", "Member must have length less than or equal to 64"),
        ("/dags", "HEAD", "Member must satisfy enum value set"),
        ("/dags", "OPTIONS", "Member must satisfy enum value set"),
    ],
)
def test_invalid_input_is_validation_exception(
    server: OpenMwaaServer, shared_env: tuple[str, int], path: str, method: str, says: str
) -> None:
    name, _ = shared_env
    error = rest_error(server, lambda: invoke(server, name, path, method))
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert says in error["Error"]["Message"]


def test_64_character_path_is_accepted(server: OpenMwaaServer, af3_env: str) -> None:
    path = "/dags/" + "x" * 58
    assert len(path) == 64
    error = rest_error(server, lambda: invoke(server, af3_env, path))
    assert (error["Error"]["Code"], error["RestApiStatusCode"]) == ("RestApiClientException", 404)


def test_unknown_environment(server: OpenMwaaServer) -> None:
    error = rest_error(server, lambda: invoke(server, "no-such-environment", "/dags"))
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_non_json_response_comes_back_as_a_string(
    server: OpenMwaaServer, shared_env: tuple[str, int]
) -> None:
    name, major = shared_env
    if major == 3:
        pytest.skip(
            "Airflow 3's /api/v2 answers JSON on every route when asked for application/json, as "
            "InvokeRestApi asks (its text routes need Accept: text/plain); "
            "see tests/api/test_invoke_errors.py"
        )
    out = invoke(server, name, "/openapi.yaml")  # Airflow 2's API spec, served as YAML text
    assert out["RestApiStatusCode"] == 200
    assert isinstance(out["RestApiResponse"], str)
    assert "openapi: 3." in out["RestApiResponse"] and "/dags/{dag_id}:" in out["RestApiResponse"]


# 4. The throttle ---------------------------------------------------------------------------------


def test_throttle_burst_and_throttled_posts_have_no_effect(server: OpenMwaaServer, af3_env: str) -> None:
    """A burst is throttled (429 Rate exceeded); a throttled POST never reaches Airflow.

    The burst is of reads, to measure the throttle and nothing else. The writes come right after
    it, into an empty bucket, so most are throttled and the few admitted ones must all be there.
    """
    client = server.client(
        config=Config(inject_host_prefix=False, retries={"max_attempts": 0}, max_pool_connections=40)
    )

    def call(kwargs: dict[str, Any], barrier: threading.Barrier) -> str:
        barrier.wait()
        try:
            client.invoke_rest_api(Name=af3_env, **kwargs)
        except client.exceptions.ClientError as exc:
            code = str(exc.response["Error"]["Code"])
            if code == "ThrottlingException":
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
                assert exc.response["Error"]["Message"] == "Rate exceeded"
                return code
            return f"{code}: {exc.response['Error'].get('Message')} {exc.response.get('RestApiResponse')}"
        return "ok"

    def burst(requests: list[dict[str, Any]]) -> list[str]:
        barrier = threading.Barrier(len(requests))
        with ThreadPoolExecutor(len(requests)) as pool:
            return list(pool.map(lambda kwargs: call(kwargs, barrier), requests))

    throttle_clock.wait_for_full_bucket()
    reads = burst([{"Path": "/dags", "Method": "GET"}] * 30)
    assert "ThrottlingException" in reads and "ok" in reads, reads
    keys = [f"throttle-{uuid.uuid4().hex[:8]}-{i}" for i in range(8)]
    writes = burst([{"Path": "/variables", "Method": "POST", "Body": {"key": k, "value": "v"}} for k in keys])
    assert "ThrottlingException" in writes, writes
    assert set(writes) <= {"ok", "ThrottlingException"}, writes
    throttle_clock.wait_for_full_bucket()  # for the checks (and the tests after this one)
    listed = invoke(server, af3_env, "/variables", QueryParameters={"limit": 100})["RestApiResponse"]
    stored = {v["key"] for v in listed["variables"]}
    for key, outcome in zip(keys, writes, strict=True):
        assert (key in stored) == (outcome == "ok"), (key, outcome)
    for key in stored & set(keys):
        invoke(server, af3_env, f"/variables/{key}", "DELETE")


THROTTLE_DAG = """
import datetime
from airflow import DAG
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:
    from airflow.operators.empty import EmptyOperator

with DAG("openmwaa_throttle_target", start_date=datetime.datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="noop")
"""
THROTTLE_CLIENTS = 100


def test_a_hundred_clients_trigger_one_dag_under_the_throttle(server: OpenMwaaServer, af3_env: str) -> None:
    """100 clients trigger one DAG at once: each accepted trigger is exactly one run, each refused one
    a ThrottlingException (429) that created nothing, and the runs Airflow has are exactly the accepted.

    The DAG stays paused, so its runs are created and counted but never executed.
    """
    dag_id = "openmwaa_throttle_target"
    (server.buckets / f"bucket-{af3_env}" / "dags" / f"{dag_id}.py").write_text(THROTTLE_DAG)
    mwaa = server.client()
    deadline = time.monotonic() + 120
    while True:  # the DAG processor picks the file up within seconds
        try:
            invoke(server, af3_env, f"/dags/{dag_id}", "PATCH", Body={"is_paused": True})
            break
        except mwaa.exceptions.ClientError as exc:  # not parsed yet (404), or throttled
            if exc.response["Error"]["Code"] not in ("RestApiClientException", "ThrottlingException"):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    config = Config(inject_host_prefix=False, retries={"max_attempts": 0})
    clients = [server.client(config=config) for _ in range(THROTTLE_CLIENTS)]
    prefix = f"thr-{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(THROTTLE_CLIENTS)

    def trigger(index: int) -> str:
        client, run_id = clients[index], f"{prefix}-{index}"
        barrier.wait()
        try:
            out = client.invoke_rest_api(
                Name=af3_env,
                Path=f"/dags/{dag_id}/dagRuns",
                Method="POST",
                Body={"dag_run_id": run_id, "logical_date": None},
            )
        except client.exceptions.ClientError as exc:
            response = exc.response
            if response["Error"]["Code"] == "ThrottlingException":
                assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
                assert response["Error"]["Message"] == "Rate exceeded"
                return "throttled"
            return f"{response['Error']['Code']}: {response['Error'].get('Message')}"
        assert out["RestApiStatusCode"] == 200, out
        assert out["RestApiResponse"]["dag_run_id"] == run_id, out
        return "accepted"

    throttle_clock.wait_for_full_bucket()
    started = time.monotonic()
    with ThreadPoolExecutor(THROTTLE_CLIENTS) as pool:
        outcomes = list(pool.map(trigger, range(THROTTLE_CLIENTS)))
    elapsed = time.monotonic() - started
    accepted = {f"{prefix}-{i}" for i, outcome in enumerate(outcomes) if outcome == "accepted"}
    throttled = outcomes.count("throttled")
    assert len(accepted) + throttled == THROTTLE_CLIENTS, [
        o for o in outcomes if o not in ("accepted", "throttled")
    ]
    assert accepted and throttled, outcomes
    # A burst of 10 and 10 a second: no more can have passed while the clients were calling.
    assert len(accepted) <= 10 + 10 * elapsed + 1, (len(accepted), elapsed)

    throttle_clock.wait_for_full_bucket()
    listed = invoke(server, af3_env, f"/dags/{dag_id}/dagRuns", QueryParameters={"limit": 100})
    runs = [r["dag_run_id"] for r in listed["RestApiResponse"]["dag_runs"]]
    ours = [r for r in runs if r.startswith(prefix + "-")]
    assert sorted(ours) == sorted(accepted), (sorted(ours), sorted(accepted))
    print(
        f"\n{THROTTLE_CLIENTS} concurrent triggers in {elapsed:.1f} s: {len(accepted)} accepted "
        f"(= {len(ours)} DAG runs in Airflow), {throttled} ThrottlingException, 0 lost"
    )


def test_concurrent_writes_all_land(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    """Writes arriving together all succeed (Airflow 3 on SQLite deadlocks on them unless openmwaa
    lets one at a time through: see ``upstream/write_gate.py``)."""
    name, major = shared_env
    client = server.client(
        config=Config(inject_host_prefix=False, retries={"max_attempts": 0}, max_pool_connections=10)
    )
    keys = [f"together-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)]
    barrier = threading.Barrier(len(keys))

    def create(key: str) -> int:
        barrier.wait()
        body = {"key": key, "value": "v"}
        out = client.invoke_rest_api(Name=name, Path="/variables", Method="POST", Body=body)
        return int(out["RestApiStatusCode"])

    throttle_clock.wait_for_full_bucket()  # the throttle admits all six
    started = time.monotonic()
    with ThreadPoolExecutor(len(keys)) as pool:
        statuses = list(pool.map(create, keys))
    elapsed = time.monotonic() - started
    assert statuses == [201 if major == 3 else 200] * len(keys), statuses
    assert elapsed < 5, f"six writes took {elapsed:.1f} s: something waited for a lock"
    # Clean up within the throttle: the six writes used most of this second's ten calls.
    for key in keys:
        deadline = time.monotonic() + 10
        while True:
            try:
                invoke(server, name, f"/variables/{key}", "DELETE")
                break
            except ClientError as exc:  # ThrottlingException is not in MWAA's model
                if exc.response["Error"]["Code"] != "ThrottlingException" or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


# 5. Events from outside ------------------------------------------------------------------------


def test_asset_event_triggers_the_scheduled_dag(server: OpenMwaaServer, shared_env: tuple[str, int]) -> None:
    name, major = shared_env
    runs_path = "/dags/on_new_signup/dagRuns"
    invoke(server, name, "/dags/on_new_signup", "PATCH", Body={"is_paused": False})
    before = {r["dag_run_id"] for r in invoke(server, name, runs_path)["RestApiResponse"]["dag_runs"]}
    if major == 3:
        assets = invoke(server, name, "/assets", QueryParameters={"uri_pattern": "openmwaa://signups"})
        [asset] = assets["RestApiResponse"]["assets"]
        event = invoke(server, name, "/assets/events", "POST", Body={"asset_id": asset["id"]})
    else:
        datasets = invoke(server, name, "/datasets", QueryParameters={"uri_pattern": "openmwaa://signups"})
        [dataset] = datasets["RestApiResponse"]["datasets"]
        event = invoke(server, name, "/datasets/events", "POST", Body={"dataset_uri": dataset["uri"]})
    assert event["RestApiStatusCode"] == 200
    deadline = time.monotonic() + 120
    new: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = invoke(server, name, runs_path)["RestApiResponse"]["dag_runs"]
        new = [r for r in runs if r["dag_run_id"] not in before]
        if new and new[0]["state"] in ("success", "failed"):
            break
        time.sleep(1)
    invoke(server, name, "/dags/on_new_signup", "PATCH", Body={"is_paused": True})
    assert new, "the asset event started no run of on_new_signup"
    assert new[0]["run_type"] == ("asset_triggered" if major == 3 else "dataset_triggered")
    assert new[0]["state"] == "success"


# 8. Roles ----------------------------------------------------------------------------------------

ROLES = ("Admin", "Op", "User", "Viewer", "Public")
#: (method, path, body) -> the Airflow status per role, Admin..Public; "ok" is the call's success
#: status (which differs by Airflow version), 403 is Airflow's RBAC refusing the role.
ROLE_MATRIX: list[tuple[str, str, str, tuple[int | str, ...]]] = [
    ("read DAGs", "GET", "/dags", ("ok", "ok", "ok", "ok", 403)),
    ("read variables", "GET", "/variables", ("ok", "ok", 403, 403, 403)),
    ("create a variable", "POST", "/variables", ("ok", "ok", 403, 403, 403)),
    ("trigger a DAG", "POST", "/dags/hello_openmwaa/dagRuns", ("ok", "ok", "ok", 403, 403)),
    ("read connections", "GET", "/connections", ("ok", "ok", 403, 403, 403)),
    ("read plugins", "GET", "/plugins", ("ok", "ok", 403, 403, 403)),
]
SUCCESS = {(3, "POST", "/variables"): 201}


@pytest.fixture(scope="module")
def role_users(server: OpenMwaaServer) -> Iterator[dict[str, tuple[str, str]]]:
    """One IAM user per Airflow role, allowed airflow:InvokeRestApi on exactly that role's ARN."""
    editor = IdentitiesEditor(
        server.data_dir / "iam.yaml", account_id=ACCOUNT, box=SecretBox.open(server.data_dir)
    )
    suffix = uuid.uuid4().hex[:6]
    keys: dict[str, tuple[str, str]] = {}
    for role in ROLES:
        user = f"e2e-{role.lower()}-{suffix}"
        editor.add_user(user)
        editor.put_user_policy(
            user,
            "invoke-one-role",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "airflow:InvokeRestApi",
                        "Resource": f"arn:aws:airflow:{REGION}:{ACCOUNT}:role/*/{role}",
                    }
                ],
            },
        )
        key = editor.create_access_key(user)
        keys[role] = (key.access_key_id, key.secret_access_key)
    for access_key_id, secret in keys.values():
        wait_until_known(server, access_key_id, secret)
    yield keys


def _role_client(server: OpenMwaaServer, key: tuple[str, str]) -> Any:
    return server.client(aws_access_key_id=key[0], aws_secret_access_key=key[1])


def _status(client: Any, name: str, method: str, path: str, body: Any) -> int:
    kwargs = {"Body": body} if body is not None else {}
    try:
        return int(client.invoke_rest_api(Name=name, Path=path, Method=method, **kwargs)["RestApiStatusCode"])
    except client.exceptions.RestApiClientException as exc:
        return int(exc.response["RestApiStatusCode"])


def test_role_matrix(
    server: OpenMwaaServer, shared_env: tuple[str, int], role_users: dict[str, tuple[str, str]]
) -> None:
    name, major = shared_env
    actual: dict[tuple[str, str], int] = {}
    expected: dict[tuple[str, str], int] = {}
    for what, method, path, outcomes in ROLE_MATRIX:
        for role, outcome in zip(ROLES, outcomes, strict=True):
            body: Any = None
            if path == "/variables" and method == "POST":
                body = {"key": f"role-{role.lower()}-{uuid.uuid4().hex[:6]}", "value": role}
            elif method == "POST":
                body = {"logical_date": None} if major == 3 else {}
            client = _role_client(server, role_users[role])
            actual[(what, role)] = _status(client, name, method, path, body)
            ok = SUCCESS.get((major, method, path), 200)
            expected[(what, role)] = ok if outcome == "ok" else int(outcome)
            time.sleep(0.05)
    assert actual == expected
    # No role at all is IAM's refusal, before Airflow.
    no_role = server.client(aws_access_key_id="AKIANOSUCHUSER000001", aws_secret_access_key="x" * 40)
    with pytest.raises(no_role.exceptions.ClientError) as exc:
        no_role.invoke_rest_api(Name=name, Path="/dags", Method="GET")
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_no_role_granted(
    server: OpenMwaaServer, af3_env: str, role_users: dict[str, tuple[str, str]]
) -> None:
    editor = IdentitiesEditor(
        server.data_dir / "iam.yaml", account_id=ACCOUNT, box=SecretBox.open(server.data_dir)
    )
    user = f"e2e-norole-{uuid.uuid4().hex[:6]}"
    editor.add_user(user)
    editor.put_user_policy(
        user,
        "other-env-only",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "airflow:InvokeRestApi",
                    "Resource": f"arn:aws:airflow:{REGION}:{ACCOUNT}:role/some-other-env/Admin",
                }
            ],
        },
    )
    key = editor.create_access_key(user)
    wait_until_known(server, key.access_key_id, key.secret_access_key)
    client = _role_client(server, (key.access_key_id, key.secret_access_key))
    with pytest.raises(client.exceptions.AccessDeniedException) as exc:
        client.invoke_rest_api(Name=af3_env, Path="/dags", Method="GET")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert exc.value.response["Error"]["Message"] == "No Airflow role granted in IAM."
