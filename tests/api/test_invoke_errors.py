"""InvokeRestApi's proxy edges, in process, against a fake upstream Airflow (a plain HTTP server).

A fake Airflow is never proof that openmwaa works with Airflow (the e2e tests are); it is here
for what a real one cannot do on demand: hang past the timeout, answer 7 MB, count the exact
number of upstream calls a retrying client causes, or take a burst deterministically.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import boto3
import jwt
import pytest
import uvicorn
import yaml
from botocore.config import Config

from openmwaa.app import Services, build_services, create_app
from openmwaa.auth.bootstrap import ensure_bootstrap_admin
from openmwaa.settings import Settings
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from openmwaa.supervisor import EnvironmentEvent, Supervisor
from openmwaa.upstream.balancer import Lease, untracked_lease
from tests.api.conftest import api_settings

ACCOUNT = "123456789012"
REGION = "us-east-1"
ADMIN_KEY = "AKIAINVOKETESTADMIN1"
ADMIN_SECRET = "invoke-test-admin-secret-0000000000000000"
ROLE_ARN = f"arn:aws:airflow:{REGION}:{ACCOUNT}:role/"
SIX_MB = 6 * 1024 * 1024

#: name -> (AirflowVersion, status, WebserverAccessMode)
ENVIRONMENTS = {
    "af3": ("3.3.1", "AVAILABLE", "PRIVATE_ONLY"),
    "af2": ("2.11.2", "AVAILABLE", "PRIVATE_ONLY"),
    "calm": ("3.3.1", "AVAILABLE", "PRIVATE_ONLY"),
    # One per throttle test: each starts on a full bucket of its own, with no wait for a refill.
    "burst-get": ("3.3.1", "AVAILABLE", "PRIVATE_ONLY"),
    "burst-post": ("3.3.1", "AVAILABLE", "PRIVATE_ONLY"),
    "burst-split": ("3.3.1", "AVAILABLE", "PRIVATE_ONLY"),
    "public": ("3.3.1", "AVAILABLE", "PUBLIC_ONLY"),
    "creating": ("3.3.1", "CREATING", "PRIVATE_ONLY"),
    "updating": ("3.3.1", "UPDATING", "PRIVATE_ONLY"),
    # UPDATING with a web server answering, as during an update's rolling restart.
    "rolling": ("3.3.1", "UPDATING", "PRIVATE_ONLY"),
    "resuming": ("3.3.1", "MAINTENANCE", "PRIVATE_ONLY"),
    "unavailable": ("3.3.1", "UNAVAILABLE", "PRIVATE_ONLY"),
}


def _allow_invoke(resource: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


#: Extra users: name -> policy. aws:SourceVpc conditions for the VPC tests.
USERS = {
    "in-openmwaa-vpc": _allow_invoke(
        ROLE_ARN + "*/Admin", {"StringEquals": {"aws:SourceVpc": "vpc-openmwaa"}}
    ),
    "in-other-vpc": _allow_invoke(ROLE_ARN + "*/Admin", {"StringEquals": {"aws:SourceVpc": "vpc-other"}}),
    "viewer": _allow_invoke(ROLE_ARN + "*/Viewer"),
    "viewer-and-op": {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": ROLE_ARN + "*/" + role}
            for role in ("Viewer", "Op")
        ],
    },
}


# The fake upstream ----------------------------------------------------------------------------

#: Answers served byte for byte under /raw/<name>: Airflow's own spacing, escapes and number
#: forms; a large /dags-like document; and JSON that only looks like it.
RAW_ANSWERS = {
    "styled": b' {"z": "caf\\u00e9 \xe2\x98\x95", "a" : [1.0, 1E2, -0, 18446744073709551615],\n "n": null}\n',
    "dags": json.dumps(
        {
            "dags": [
                {
                    "dag_id": f"dag_{i:05d}",
                    "is_paused": i % 2 == 0,
                    "tags": [{"name": "ünï ☕"}],
                    "owners": [],
                }
                for i in range(30_000)
            ],
            "total_entries": 30_000,
        },
        ensure_ascii=False,
    ).encode(),
    "trailing": b'{"a": 1} {"b": 2}',
    "bad-utf8": b'{"a": "\xff"}',
    "bom": b'\xef\xbb\xbf{"a": 1}',
}


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


class FakeAirflow:
    """Answers by path (after /api/vN): echo, slow, big/<n>, text, variables, status/<code>."""

    def __init__(self, slow_seconds: float) -> None:
        self.slow_seconds = slow_seconds
        self.seen: list[Seen] = []
        self.variables: dict[str, Any] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parts.query,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with fake.lock:
                    fake.seen.append(seen)
                try:
                    status, content_type, payload = fake.answer(seen)
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the proxy gave up on us (the timeout test)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, seen: Seen) -> tuple[int, str, bytes]:
        version, _, rest = seen.path.removeprefix("/api/").partition("/")
        segments = rest.split("/")

        def as_json(status: int, value: Any) -> tuple[int, str, bytes]:
            return status, "application/json", json.dumps(value).encode()

        if segments[0] == "echo":
            return as_json(
                200,
                {
                    "version": version,
                    "method": seen.method,
                    "path": seen.path,
                    "query": seen.query,
                    "headers": seen.headers,
                    "body": json.loads(seen.body) if seen.body else None,
                },
            )
        if segments[0] == "slow":
            time.sleep(self.slow_seconds)
            return as_json(200, {"slept": self.slow_seconds})
        if segments[0] == "big":
            return 200, "text/plain", b"x" * int(segments[1])
        if segments[0] == "raw":  # a document exactly as Airflow might write it
            return 200, "application/json", RAW_ANSWERS[segments[1]]
        if segments[0] == "text":
            return 200, "text/plain; charset=utf-8", b"plain text, not JSON"
        if segments[0] == "nan":  # Python's json writes this; it is not JSON
            return 200, "application/json", b'{"value": NaN}'
        if segments[0] == "unicode":
            return as_json(
                200, {"name": "café ☕ \U0001d538", "big": 2**63 - 1, "small": -(2**63), "ratio": 0.1}
            )
        if segments[0] == "status":
            code = int(segments[1])
            return as_json(code, {"title": "as you asked", "status": code})
        if segments[0] == "variables" and seen.method == "POST":
            variable = json.loads(seen.body)
            with self.lock:
                self.variables[variable["key"]] = variable["value"]
            return as_json(201, variable)
        if segments[0] == "variables" and len(segments) == 2:
            with self.lock:
                value = self.variables.get(segments[1])
            if value is None:
                return as_json(404, {"detail": f"Variable {segments[1]} not found"})
            return as_json(200, {"key": segments[1], "value": value})
        return as_json(404, {"detail": "Not Found"})

    def calls_to(self, path_suffix: str) -> int:
        with self.lock:
            return sum(1 for s in self.seen if s.path.endswith(path_suffix))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeSupervisor:
    """The only thing InvokeRestApi asks of the supervisor: where an environment's Airflow listens."""

    def __init__(self, url: str) -> None:
        self.url = url

    def endpoint(self, key: str) -> str | None:
        return self.url

    def serving(self, key: str) -> bool:
        """A web server answers: only "rolling" of the environments not AVAILABLE."""
        return key.endswith("/rolling")

    def lease(self, key: str) -> Lease | None:
        return untracked_lease(self.url)

    def shutdown(self, timeout: float = 30.0) -> None:
        pass


# The in-process openmwaa --------------------------------------------------------------------


@dataclasses.dataclass
class Proxy:
    port: int
    upstream: FakeAirflow
    records: dict[str, EnvironmentRecord]
    keys: dict[str, tuple[str, str]]
    services: Services

    def client(self, user: str = "admin", *, max_attempts: int = 0, mode: str = "standard") -> Any:
        """A boto3 client; ``max_attempts`` is botocore's retry count (0: retries off)."""
        key_id, secret = self.keys[user]
        return boto3.client(
            "mwaa",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name=REGION,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(
                inject_host_prefix=False,
                retries={"max_attempts": max_attempts, "mode": mode},
                max_pool_connections=50,
            ),
        )


def _write_identities(settings: Settings) -> dict[str, tuple[str, str]]:
    keys: dict[str, tuple[str, str]] = {}
    users = []
    for index, (name, policy) in enumerate(USERS.items()):
        keys[name] = (f"AKIAINVOKETESTUSER{index:02d}", f"invoke-test-secret-{name}-{index:05d}")
        users.append(
            {
                "name": name,
                "access_keys": [{"id": keys[name][0], "secret": keys[name][1]}],
                "policies": [{"name": "inline", "document": policy}],
            }
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.iam_path.write_text(yaml.safe_dump({"users": users}, sort_keys=False))
    keys["admin"] = ensure_bootstrap_admin(settings)
    return keys


def _records() -> dict[str, EnvironmentRecord]:
    return {
        name: EnvironmentRecord(
            key=EnvironmentKey(ACCOUNT, REGION, name),
            arn=f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/{name}",
            status=status,
            created_at=time.time(),
            config={"AirflowVersion": version, "WebserverAccessMode": mode},
            previous_config=None,
            last_update=None,
            tags={},
            secrets={"jwt_secret": secrets.token_hex(32), "token_secret": secrets.token_hex(32)},
            resume_status="AVAILABLE" if status in ("MAINTENANCE", "UNAVAILABLE") else None,
        )
        for name, (version, status, mode) in ENVIRONMENTS.items()
    }


def _serve(tmp: Any, upstream: FakeAirflow, **overrides: Any) -> Iterator[Proxy]:
    settings = api_settings(tmp.mktemp("invoke"), admin_key=ADMIN_KEY, admin_secret=ADMIN_SECRET, **overrides)
    port = settings.port
    keys = _write_identities(settings)
    services = build_services(settings)
    real_supervisor = services.supervisor
    # A stand-in with the endpoint lookups InvokeRestApi uses (duck-typed, no Airflow behind it).
    services = dataclasses.replace(services, supervisor=cast(Supervisor, FakeSupervisor(upstream.url)))
    records = _records()
    for record in records.values():
        services.repository.insert(record)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, services),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "in-process openmwaa did not start"
        time.sleep(0.02)
    try:
        yield Proxy(port, upstream, records, keys, services)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.shutdown()
        real_supervisor.shutdown()


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeAirflow]:
    fake = FakeAirflow(slow_seconds=3.0)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAirflow) -> Iterator[Proxy]:
    """Throttle off, a 0.5 s upstream timeout: for everything but the throttle itself."""
    yield from _serve(tmp_path_factory, upstream, rest_api_timeout=0.5, rest_api_rate=0)


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAirflow) -> Iterator[Proxy]:
    """Throttle off, the default 10 s upstream timeout: for answers big enough (6 MB) that a busy
    machine may take longer than 0.5 s to pass them through."""
    assert Settings().rest_api_timeout == 10
    yield from _serve(tmp_path_factory, upstream, rest_api_rate=0)


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAirflow) -> Iterator[Proxy]:
    """The default throttle (settings.rest_api_rate: 10 per second per environment and account)."""
    assert Settings().rest_api_rate == 10
    yield from _serve(tmp_path_factory, upstream)


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory, upstream: FakeAirflow) -> Iterator[Proxy]:
    """Loopback is mapped to a VPC that is not the environments' (OPENMWAA_VPC_CIDRS)."""
    yield from _serve(
        tmp_path_factory,
        upstream,
        rest_api_rate=0,
        vpc_cidrs={"127.0.0.0/8": "vpc-other", "::1/128": "vpc-other"},
    )


def invoke(client: Any, name: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
    return client.invoke_rest_api(Name=name, Path=path, Method=method, **kwargs)


# What reaches Airflow --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "version"), [("af3", "v2"), ("af2", "v1")])
def test_request_as_airflow_sees_it(proxy: Proxy, name: str, version: str) -> None:
    out = invoke(
        proxy.client(),
        name,
        "/echo/x",
        "POST",
        QueryParameters={
            "paused": False,
            "only_active": True,
            "tags": ["a", "b c"],
            "limit": 5,
            "skip": None,
        },
        Body={"conf": {"n": 1, "ok": True}, "note": None},
    )
    assert out["RestApiStatusCode"] == 200
    seen = out["RestApiResponse"]
    assert seen["path"] == f"/api/{version}/echo/x"
    assert seen["method"] == "POST"
    # Booleans stay booleans (false, not False), lists repeat their key, None drops out.
    assert parse_qsl(seen["query"]) == [
        ("paused", "false"),
        ("only_active", "true"),
        ("tags", "a"),
        ("tags", "b c"),
        ("limit", "5"),
    ]
    assert seen["body"] == {"conf": {"n": 1, "ok": True}, "note": None}
    assert seen["headers"]["content-type"] == "application/json"
    # Airflow gets openmwaa's token for the caller's role, never the caller's SigV4 headers.
    assert "x-amz-date" not in seen["headers"]
    assert not any(h.startswith("amz-sdk") for h in seen["headers"])
    token = seen["headers"]["authorization"].removeprefix("Bearer ")
    record = proxy.records[name]
    if version == "v2":
        claims = jwt.decode(token, record.secrets["jwt_secret"], ["HS512"], audience="apache-airflow")
        assert claims["role"] == "ADMIN"
        # Never handed out, so nothing to revoke: no jti for Airflow 3 to look up per request.
        assert "jti" not in claims
    else:
        claims = jwt.decode(token, record.secrets["token_secret"], ["HS256"], audience="openmwaa-airflow")
        assert claims["role"] == "Admin"
        assert claims["jti"]  # openmwaa_airflow.auth_backend requires one
    assert claims["sub"] == "user/admin"


def test_most_privileged_allowed_role_is_used(proxy: Proxy) -> None:
    seen = invoke(proxy.client("viewer"), "af3", "/echo/v")["RestApiResponse"]
    claims = jwt.decode(
        seen["headers"]["authorization"].removeprefix("Bearer "),
        proxy.records["af3"].secrets["jwt_secret"],
        ["HS512"],
        audience="apache-airflow",
    )
    assert (claims["role"], claims["sub"]) == ("VIEWER", "user/viewer")


def test_a_caller_granted_several_roles_runs_as_the_most_privileged(proxy: Proxy) -> None:
    client = proxy.client("viewer-and-op")
    answer = client.invoke_rest_api(Name="af3", Path="/echo/op", Method="GET")
    claims = jwt.decode(
        answer["RestApiResponse"]["headers"]["authorization"].removeprefix("Bearer "),
        proxy.records["af3"].secrets["jwt_secret"],
        ["HS512"],
        audience="apache-airflow",
    )
    assert (claims["role"], claims["sub"]) == ("OP", "user/viewer-and-op")
    # The audit trail names the role ARN the call ran as, and the statement that allowed it.
    request_id = answer["ResponseMetadata"]["RequestId"]
    proxy.services.audit.flush()
    entries = proxy.services.audit.query(since=0, limit=100_000)
    (entry,) = [e for _, e in entries if e.request_id == request_id]
    assert (entry.decision, entry.resource) == ("Allow", f"{ROLE_ARN}af3/Op")
    assert entry.deciding_statement == "user/viewer-and-op/inline/#1"


def test_get_sends_no_body(proxy: Proxy) -> None:
    seen = invoke(proxy.client(), "af3", "/echo/g")["RestApiResponse"]
    assert seen["body"] is None
    assert seen["query"] == ""
    assert "content-type" not in seen["headers"]


# What comes back --------------------------------------------------------------------------------


def test_text_response_comes_back_as_a_string(proxy: Proxy) -> None:
    out = invoke(proxy.client(), "af3", "/text")
    assert out["RestApiStatusCode"] == 200
    assert out["RestApiResponse"] == "plain text, not JSON"


def test_a_json_answer_that_is_not_strict_json_comes_back_as_a_string(proxy: Proxy) -> None:
    """NaN is not JSON: the answer is text, not a 500 for a number the response cannot carry."""
    out = invoke(proxy.client(), "af3", "/nan")
    assert out["RestApiResponse"] == '{"value": NaN}'


def test_json_answers_come_back_unchanged(proxy: Proxy) -> None:
    out = invoke(proxy.client(), "af3", "/unicode")
    assert out["RestApiResponse"] == {
        "name": "café ☕ \U0001d538",
        "big": 2**63 - 1,
        "small": -(2**63),
        "ratio": 0.1,
    }


def _invoke_raw(client: Any, path: str) -> tuple[bytes, Any]:
    """The wire body of InvokeRestApi's answer, and what boto3 made of it."""
    bodies: list[bytes] = []
    client.meta.events.register(
        "after-call.mwaa.InvokeRestApi", lambda http_response, **_: bodies.append(http_response.content)
    )
    out = invoke(client, "af3", path)
    return bodies[0], out


@pytest.mark.parametrize("name", ["styled", "dags"])
def test_json_answers_are_spliced_in_byte_for_byte(proxy: Proxy, name: str) -> None:
    """Validated, then passed on as Airflow wrote it (not decoded and encoded again)."""
    wire, out = _invoke_raw(proxy.client(), f"/raw/{name}")
    assert wire == b'{"RestApiStatusCode":200,"RestApiResponse":' + RAW_ANSWERS[name] + b"}"
    assert out["RestApiStatusCode"] == 200
    assert out["RestApiResponse"] == json.loads(RAW_ANSWERS[name])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("trailing", '{"a": 1} {"b": 2}'),
        ("bad-utf8", '{"a": "\ufffd"}'),
        ("bom", '\ufeff{"a": 1}'),
    ],
)
def test_answers_that_are_not_one_json_document_come_back_as_text(proxy: Proxy, name: str, text: str) -> None:
    wire, out = _invoke_raw(proxy.client(), f"/raw/{name}")
    assert json.loads(wire) == {"RestApiStatusCode": 200, "RestApiResponse": text}
    assert out["RestApiResponse"] == text


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, "RestApiClientException"),
        (409, "RestApiClientException"),
        (500, "RestApiServerException"),
        (503, "RestApiServerException"),
    ],
)
def test_airflow_errors_are_modeled_and_never_retried(proxy: Proxy, status: int, code: str) -> None:
    client = proxy.client(max_attempts=3)
    before = proxy.upstream.calls_to(f"/status/{status}")
    with pytest.raises(client.exceptions.ClientError) as exc:
        invoke(client, "af3", f"/status/{status}", "POST", Body={})
    response = exc.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["RestApiStatusCode"] == status
    assert response["RestApiResponse"] == {"title": "as you asked", "status": status}
    assert proxy.upstream.calls_to(f"/status/{status}") == before + 1


def test_timeout_is_a_modeled_error_that_boto3_does_not_retry(proxy: Proxy) -> None:
    client = proxy.client(max_attempts=3)
    before = proxy.upstream.calls_to("/slow")
    started = time.monotonic()
    with pytest.raises(client.exceptions.RestApiServerException) as exc:
        invoke(client, "af3", "/slow")
    elapsed = time.monotonic() - started
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert response["RestApiStatusCode"] == 504
    assert "did not answer within 0.5 seconds" in response["Error"]["Message"]
    assert 0.4 < elapsed < 2.8, elapsed  # the fake sleeps 3 s: openmwaa gave up at 0.5 s
    assert proxy.upstream.calls_to("/slow") == before + 1


def test_response_up_to_6_mb_passes(roomy: Proxy) -> None:
    out = invoke(roomy.client(), "af3", f"/big/{SIX_MB}")
    assert out["RestApiStatusCode"] == 200
    assert len(out["RestApiResponse"]) == SIX_MB


def test_response_over_6_mb_is_a_clear_error(roomy: Proxy) -> None:
    client = roomy.client(max_attempts=3)
    with pytest.raises(client.exceptions.RestApiServerException) as exc:
        invoke(client, "af3", f"/big/{SIX_MB + 1}")
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "6 MB" in response["Error"]["Message"]
    assert roomy.upstream.calls_to(f"/big/{SIX_MB + 1}") == 1


# Refused before Airflow is called ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["creating", "updating", "resuming"])
def test_environment_still_starting_after_the_timeout(proxy: Proxy, name: str) -> None:
    """Waited for within the call's timeout (0.5 s here), then refused: Airflow is never called."""
    client = proxy.client()
    before = len(proxy.upstream.seen)
    with pytest.raises(client.exceptions.ValidationException) as exc:
        invoke(client, name, "/echo/n")
    status = ENVIRONMENTS[name][1]
    assert str(exc.value).endswith(
        f"Environment {name} is still {status} after 0.5 s; InvokeRestApi needs it to be AVAILABLE. "
        "Try again shortly."
    )
    assert len(proxy.upstream.seen) == before
    assert proxy.services.environments.status_changes.waiting(str(proxy.records[name].key)) == 0


def test_an_updating_environment_whose_web_server_answers_is_served_at_once(proxy: Proxy) -> None:
    """An update restarts the web servers one at a time: calls made meanwhile do not wait for it."""
    out = invoke(proxy.client(), "rolling", "/echo/during-update")
    assert out["RestApiStatusCode"] == 200
    assert out["RestApiResponse"]["path"] == "/api/v2/echo/during-update"


def test_environment_not_serving_is_refused_at_once(proxy: Proxy) -> None:
    client = proxy.client()
    before = len(proxy.upstream.seen)
    with pytest.raises(client.exceptions.ValidationException) as exc:
        invoke(client, "unavailable", "/echo/n")
    assert str(exc.value).endswith(
        "Environment unavailable is UNAVAILABLE; InvokeRestApi needs it to be AVAILABLE."
    )
    assert len(proxy.upstream.seen) == before


def test_a_call_made_while_airflow_starts_again_is_served_once_it_answers(throttled: Proxy) -> None:
    """After openmwaa restarts, an environment is MAINTENANCE until its Airflow is healthy; a call
    made meanwhile waits for that (within its 10 s) instead of failing."""
    key = str(throttled.records["resuming"].key)
    watch = throttled.services.environments.status_changes
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(invoke, throttled.client(), "resuming", "/echo/resumed")
        deadline = time.monotonic() + 5
        while watch.waiting(key) == 0:  # the call is in, waiting for the environment
            assert not call.done(), call.result()
            assert time.monotonic() < deadline, "the call never waited for the environment"
            time.sleep(0.01)
        assert throttled.upstream.calls_to("/echo/resumed") == 0
        throttled.services.environments.on_event(EnvironmentEvent(key, "available"))
        out = call.result(timeout=10)
    assert out["RestApiStatusCode"] == 200
    assert out["RestApiResponse"]["path"] == "/api/v2/echo/resumed"
    assert throttled.services.environments.get("resuming").status == "AVAILABLE"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/../v1/dags", "GET"),
        ("//evil/x", "GET"),
        ("/dags/%2e%2e/x", "GET"),
        ("/" + "d" * 64, "GET"),
        ("/dags", "HEAD"),
        ("/dags", "get"),
    ],
)
def test_invalid_input_never_reaches_airflow(proxy: Proxy, path: str, method: str) -> None:
    client = proxy.client()
    before = len(proxy.upstream.seen)
    with pytest.raises(client.exceptions.ValidationException):
        invoke(client, "af3", path, method)
    assert len(proxy.upstream.seen) == before


def test_unknown_environment(proxy: Proxy) -> None:
    client = proxy.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        invoke(client, "no-such-env", "/dags")


# The throttle ------------------------------------------------------------------------------------


def _burst(proxy: Proxy, calls: list[tuple[str, str, str, dict[str, Any]]]) -> list[str]:
    """Send ``calls`` at once (one thread each, one client with retries off): "ok" or the error code."""
    client = proxy.client(max_attempts=0)
    barrier = threading.Barrier(len(calls))

    def one(index: int) -> str:
        name, path, method, extra = calls[index]
        barrier.wait()
        try:
            invoke(client, name, path, method, **extra)
        except client.exceptions.ClientError as exc:
            meta = exc.response["ResponseMetadata"]
            assert meta["RetryAttempts"] == 0
            code = str(exc.response["Error"]["Code"])
            if code == "ThrottlingException":
                assert meta["HTTPStatusCode"] == 429
                assert exc.response["Error"]["Message"] == "Rate exceeded"
            return code
        return "ok"

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, range(len(calls))))


def test_throttle_get_burst(throttled: Proxy) -> None:
    before = throttled.upstream.calls_to("/echo/burst")
    started = time.monotonic()
    outcomes = _burst(throttled, [("burst-get", "/echo/burst", "GET", {})] * 30)
    elapsed = time.monotonic() - started
    accepted = outcomes.count("ok")
    assert set(outcomes) == {"ok", "ThrottlingException"}, outcomes
    assert 10 <= accepted <= 10 + int(10 * elapsed) + 1, (accepted, elapsed)
    # A throttled call never reached Airflow.
    assert throttled.upstream.calls_to("/echo/burst") == before + accepted


def test_throttled_post_has_no_effect(throttled: Proxy) -> None:
    keys = [f"burst-{i}-{secrets.token_hex(4)}" for i in range(30)]
    calls = [("burst-post", "/variables", "POST", {"Body": {"key": k, "value": k}}) for k in keys]
    outcomes = _burst(throttled, calls)
    assert "ThrottlingException" in outcomes and "ok" in outcomes
    admin = throttled.client()
    for key, outcome in zip(keys, outcomes, strict=True):
        assert (key in throttled.upstream.variables) == (outcome == "ok"), (key, outcome)
        if outcome == "ok":
            time.sleep(0.1)  # stay under the rate while checking
            assert invoke(admin, "burst-post", f"/variables/{key}")["RestApiResponse"]["value"] == key


def test_throttle_is_per_environment(throttled: Proxy) -> None:
    outcomes = _burst(throttled, [("burst-split", "/echo/a", "GET", {})] * 20)
    assert "ThrottlingException" in outcomes
    # burst-split's bucket is empty; calm's is not.
    assert invoke(throttled.client(), "calm", "/echo/b")["RestApiStatusCode"] == 200


# PRIVATE_ONLY and aws:SourceVpc ------------------------------------------------------------------


def test_private_environment_from_outside_its_vpc_is_denied(elsewhere: Proxy) -> None:
    client = elsewhere.client()
    before = len(elsewhere.upstream.seen)
    with pytest.raises(client.exceptions.AccessDeniedException) as exc:
        invoke(client, "af3", "/echo/p")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "private web server" in exc.value.response["Error"]["Message"]
    assert len(elsewhere.upstream.seen) == before
    # A PUBLIC_ONLY environment takes the same call from the same place.
    assert invoke(client, "public", "/echo/p")["RestApiStatusCode"] == 200


def test_private_environment_from_its_vpc_is_allowed(proxy: Proxy) -> None:
    assert invoke(proxy.client(), "af3", "/echo/p")["RestApiStatusCode"] == 200


def test_source_vpc_condition(proxy: Proxy, elsewhere: Proxy) -> None:
    # Loopback is vpc-openmwaa: the policy conditioned on it allows, the other one grants no role.
    assert invoke(proxy.client("in-openmwaa-vpc"), "af3", "/echo/v")["RestApiStatusCode"] == 200
    other = proxy.client("in-other-vpc")
    with pytest.raises(other.exceptions.AccessDeniedException) as exc:
        invoke(other, "af3", "/echo/v")
    assert exc.value.response["Error"]["Message"] == "No Airflow role granted in IAM."
    # Loopback is vpc-other (on the PUBLIC_ONLY environment): the other way round.
    assert invoke(elsewhere.client("in-other-vpc"), "public", "/echo/v")["RestApiStatusCode"] == 200
    inside = elsewhere.client("in-openmwaa-vpc")
    with pytest.raises(inside.exceptions.AccessDeniedException) as exc:
        invoke(inside, "public", "/echo/v")
    assert exc.value.response["Error"]["Message"] == "No Airflow role granted in IAM."
