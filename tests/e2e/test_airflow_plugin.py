"""openmwaa_airflow inside real Airflow: only openmwaa's tokens get in, Airflow's RBAC decides the rest.

Each runtime is a virtualenv with plain ``apache-airflow`` installed, named by an environment
variable (``OPENMWAA_TEST_AIRFLOW3`` / ``OPENMWAA_TEST_AIRFLOW2``) or else installed by openmwaa's own
runtime manager into its cache. The test migrates a fresh SQLite
database in a temporary AIRFLOW_HOME and starts only the API server (Airflow 3 ``api-server``,
Airflow 2 ``webserver``) on loopback with the plugin on PYTHONPATH; both runtimes at the same time.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from openmwaa.runtime.airflow_token import airflow_username, mint_airflow_token
from openmwaa.runtime.installer import RuntimeManager
from openmwaa.runtime.versions import DEFAULT_VERSION
from tests.e2e.conftest import runtime_cache

pytestmark = pytest.mark.e2e

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "src" / "openmwaa" / "airflow_plugin"
START_TIMEOUT = 180.0


@dataclass
class Runtime:
    major: int
    base_url: str
    jwt_secret: str = field(repr=False)
    token_secret: str = field(repr=False)

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v{2 if self.major == 3 else 1}"

    def token(self, identity: str, role: str, **kwargs: Any) -> str:
        return mint_airflow_token(
            major=self.major,
            jwt_secret=self.jwt_secret,
            token_secret=self.token_secret,
            username=airflow_username(identity),
            role=role,
            **kwargs,
        )

    def call(self, method: str, path: str, token: str | None, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.request(method, self.api + path, headers=headers, json=body, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # The server runs in its own session; signal the whole group so gunicorn/uvicorn workers go too.
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> str | None:
    """None once ``url`` answers 200, else why not (the server exited, or the time ran out)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"Airflow exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return None
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return f"Airflow not healthy after {START_TIMEOUT:.0f}s:\n{log.read_text()[-4000:]}"


@dataclass
class Started:
    """One runtime's API server process, or why it did not start."""

    runtime: Runtime | None = None
    proc: subprocess.Popen[bytes] | None = None
    failure: str | None = None


def _start(major: int, home: Path) -> Started:
    """Migrate a fresh database in ``home`` and start the runtime's API server until it is healthy."""
    env_var = f"OPENMWAA_TEST_AIRFLOW{major}"
    venv = os.environ.get(env_var)
    if not venv:
        # openmwaa's own installer and cache: the same runtime environments get.
        version = DEFAULT_VERSION if major == 3 else "2.11.2"
        venv = str(RuntimeManager(runtime_cache()).ensure(version, progress=lambda _message: None).root)
    airflow = Path(venv) / "bin" / "airflow"
    if not airflow.exists():
        return Started(failure=f"{env_var}={venv} has no bin/airflow")

    (home / "dags").mkdir()
    port = _free_port()
    jwt_secret, token_secret = secrets.token_urlsafe(64), secrets.token_urlsafe(64)
    env = {
        "PATH": f"{Path(venv) / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": str(PLUGIN_DIR),
        "OPENMWAA_TOKEN_SECRET": token_secret,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    if major == 3:
        env |= {
            "AIRFLOW__CORE__AUTH_MANAGER": "openmwaa_airflow.auth_manager.OpenMwaaAuthManager",
            "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
            # Must be ignored: nobody becomes Admin without an openmwaa token.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "intruder:admin",
        }
        serve = [str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    else:
        env |= {
            "AIRFLOW__API__AUTH_BACKENDS": "openmwaa_airflow.auth_backend",
            "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__WEBSERVER__WORKERS": "1",
        }
        serve = [str(airflow), "webserver", "--hostname", "127.0.0.1", "--port", str(port), "--workers", "1"]
        health = f"http://127.0.0.1:{port}/health"

    log = home / "server.log"
    migrate = subprocess.run(
        [str(airflow), "db", "migrate"], env=env, cwd=home, capture_output=True, timeout=600, check=False
    )
    if migrate.returncode != 0:
        return Started(failure=f"airflow db migrate failed:\n{migrate.stderr.decode()[-4000:]}")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            serve, env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    started = Started(proc=proc)
    started.failure = _wait_healthy(proc, health, log)
    if started.failure is None:
        started.runtime = Runtime(major, f"http://127.0.0.1:{port}", jwt_secret, token_secret)
    return started


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Started]]:
    """Both runtimes' API servers, started at the same time (each mostly waits on its own imports)."""
    homes = {major: tmp_path_factory.mktemp(f"airflow{major}") for major in (3, 2)}
    with ThreadPoolExecutor(len(homes)) as pool:
        futures = {major: pool.submit(_start, major, home) for major, home in homes.items()}
    started = {}
    for major, future in futures.items():
        try:
            started[major] = future.result()
        except Exception as exc:  # e.g. the runtime could not be installed: its tests fail, say why
            started[major] = Started(failure=repr(exc))
    try:
        yield started
    finally:
        with ThreadPoolExecutor(len(started)) as pool:
            stopping = [pool.submit(_stop, one.proc) for one in started.values() if one.proc is not None]
        for stopped in stopping:
            stopped.result()
    assert not (homes[3] / "simple_auth_manager_passwords.json.generated").exists()


@pytest.fixture(scope="module", params=[3, 2], ids=["airflow3", "airflow2"])
def runtime(request: pytest.FixtureRequest, runtimes: dict[int, Started]) -> Runtime:
    started = runtimes[request.param]
    if started.runtime is None:
        pytest.fail(started.failure or "not started")
    return started.runtime


def _forged(rt: Runtime, role: str = "Admin") -> str:
    return mint_airflow_token(
        major=rt.major,
        jwt_secret=secrets.token_urlsafe(64),
        token_secret=secrets.token_urlsafe(64),
        username="user/mallory",
        role=role,
    )


def _variable() -> dict[str, str]:
    return {"key": f"k_{uuid.uuid4().hex[:12]}", "value": "v"}


# -- authentication -------------------------------------------------------------------------


def test_no_token_is_unauthenticated(runtime: Runtime) -> None:
    # Airflow 2's FAB treats an anonymous caller as its "Public" role (no permissions): 403.
    assert runtime.call("GET", "/dags", None).status_code == (401 if runtime.major == 3 else 403)
    response = httpx.get(
        runtime.api + "/dags", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}, timeout=30
    )
    assert response.status_code in (401, 403)


def test_token_signed_with_another_secret_is_refused(runtime: Runtime) -> None:
    response = runtime.call("GET", "/dags", _forged(runtime))
    # Airflow 3 answers an invalid (as opposed to missing or expired) JWT with 403 itself.
    assert response.status_code == (403 if runtime.major == 3 else 401)


def test_token_for_the_other_runtime_is_refused(runtime: Runtime) -> None:
    # Right secret, wrong shape: a token minted for the other major version with this one's key.
    other = 2 if runtime.major == 3 else 3
    token = mint_airflow_token(
        major=other,
        jwt_secret=runtime.jwt_secret if runtime.major == 3 else runtime.token_secret,
        token_secret=runtime.token_secret if runtime.major == 2 else runtime.jwt_secret,
        username="user/mallory",
        role="Admin",
    )
    assert runtime.call("GET", "/dags", token).status_code in (401, 403)


def test_expired_token_is_refused(runtime: Runtime) -> None:
    token = runtime.token("user/late", "Admin", now=time.time() - 600)
    assert runtime.call("GET", "/dags", token).status_code == 401


def test_unknown_role_is_refused(runtime: Runtime) -> None:
    secret = runtime.jwt_secret if runtime.major == 3 else runtime.token_secret
    now = int(time.time())
    claims = {
        "sub": "user/odd",
        "role": "SUPERUSER",
        "aud": "apache-airflow" if runtime.major == 3 else "openmwaa-airflow",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, secret, algorithm="HS512" if runtime.major == 3 else "HS256")
    assert runtime.call("GET", "/dags", token).status_code in (401, 403)


# -- authorization by Airflow's default roles ------------------------------------------------


def test_admin_reads_dags_and_writes_variables(runtime: Runtime) -> None:
    token = runtime.token("assumed-role/Admin/ci-runner", "Admin")
    assert runtime.call("GET", "/dags", token).status_code == 200
    assert runtime.call("POST", "/variables", token, _variable()).status_code in (200, 201)


def test_viewer_reads_but_cannot_write(runtime: Runtime) -> None:
    token = runtime.token("user/reader", "Viewer")
    assert runtime.call("GET", "/dags", token).status_code == 200
    assert runtime.call("POST", "/variables", token, _variable()).status_code == 403
    assert runtime.call("POST", "/dags/any_dag/dagRuns", token, {"logical_date": None}).status_code == 403
    # FAB's Viewer may not read the audit log either (Admin only).
    assert runtime.call("GET", "/eventLogs", token).status_code == 403


def test_public_may_do_nothing(runtime: Runtime) -> None:
    token = runtime.token("user/anyone", "Public")
    assert runtime.call("GET", "/dags", token).status_code == 403
    assert runtime.call("GET", "/pools", token).status_code == 403


def test_user_runs_dags_but_cannot_touch_variables(runtime: Runtime) -> None:
    token = runtime.token("user/developer", "User")
    assert runtime.call("POST", "/variables", token, _variable()).status_code == 403
    assert runtime.call("GET", "/variables", token).status_code == 403
    # Authorized to trigger, so Airflow gets as far as finding no such DAG.
    assert runtime.call("POST", "/dags/no_such_dag/dagRuns", token, {"logical_date": None}).status_code == 404


def test_op_writes_variables_and_connections_reads(runtime: Runtime) -> None:
    token = runtime.token("user/operator", "Op")
    assert runtime.call("POST", "/variables", token, _variable()).status_code in (200, 201)
    assert runtime.call("GET", "/connections", token).status_code == 200
    assert runtime.call("GET", "/connections", runtime.token("user/developer", "User")).status_code == 403


def test_role_is_whatever_the_latest_token_says(runtime: Runtime) -> None:
    identity = "assumed-role/Shifting/session"
    assert runtime.call("POST", "/variables", runtime.token(identity, "Admin"), _variable()).status_code in (
        200,
        201,
    )
    viewer = runtime.token(identity, "Viewer")
    assert runtime.call("POST", "/variables", viewer, _variable()).status_code == 403
    assert runtime.call("GET", "/dags", viewer).status_code == 200


def test_audit_log_names_the_caller(runtime: Runtime) -> None:
    identity = "assumed-role/Admin/" + "audited-session-" * 4
    username = airflow_username(identity)
    token = runtime.token(identity, "Admin")
    variable = _variable()
    assert runtime.call("POST", "/variables", token, variable).status_code in (200, 201)
    response = runtime.call("GET", "/eventLogs?limit=100", token)
    assert response.status_code == 200, response.text
    owners = {entry.get("owner") for entry in response.json()["event_logs"]}
    assert username in owners
