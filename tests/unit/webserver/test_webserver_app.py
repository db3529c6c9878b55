"""The web endpoint in process: login per major, sessions, proxy hygiene, logout, console sign-in."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest

from tests.unit.webserver.webtest_support import JWT_SECRET, TOKEN_SECRET, Harness, chunks

pytestmark = pytest.mark.anyio


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


async def _login(
    harness: Harness, name: str, route: str = "/aws_mwaa/login", role: str = "Op"
) -> httpx.Response:
    async with harness.client(name) as client:
        return await client.post(route, data={"token": harness.web_token(name, role=role)})


async def test_airflow2_login_sets_http_only_session_cookie(harness: Harness) -> None:
    response = await _login(harness, "af2")
    assert response.status_code == 200
    cookies = _set_cookies(response)
    assert set(cookies) == {"session", "openmwaa_session"}
    for attributes in cookies.values():
        assert "HttpOnly" in attributes and "Secure" in attributes and "SameSite=Lax" in attributes
    assert "Max-Age=3600" in cookies["session"]


async def test_airflow3_login_sets_token_cookie_readable_by_the_ui(harness: Harness) -> None:
    response = await _login(harness, "af3", "/pluginsv2/aws_mwaa/login")
    assert response.status_code == 200
    cookies = _set_cookies(response)
    assert set(cookies) == {"_token", "openmwaa_session"}
    assert "HttpOnly" not in cookies["_token"] and "Secure" in cookies["_token"]
    # The value is a JWT (three base64url parts), as Airflow 3 clients expect.
    assert response.cookies["_token"].count(".") == 2


@pytest.mark.parametrize(
    ("token_for", "reuse", "message"),
    [("af3", True, "already been used"), ("af2", False, "another environment"), (None, False, "not valid")],
)
async def test_bad_web_tokens_are_refused_with_reason(
    harness: Harness, token_for: str | None, reuse: bool, message: str
) -> None:
    token = harness.web_token(token_for) if token_for else "forged.token.value"
    async with harness.client("af3") as client:
        if reuse:
            assert (await client.post("/aws_mwaa/login", data={"token": token})).status_code == 200
            client.cookies.clear()
        response = await client.post("/aws_mwaa/login", data={"token": token})
    assert response.status_code == 403
    assert message in response.json()["detail"]
    assert "set-cookie" not in response.headers


async def test_expired_web_token_is_refused(harness: Harness) -> None:
    token = harness.web_token("af2")
    harness.clock.now += 61
    async with harness.client("af2") as client:
        response = await client.post("/aws_mwaa/login", data={"token": token})
    assert response.status_code == 403 and "expired" in response.json()["detail"]


async def test_proxy_replaces_credentials_and_strips_hop_by_hop(harness: Harness) -> None:
    login = await _login(harness, "af2", role="Viewer")
    session = login.cookies["session"]
    async with harness.client("af2") as client:
        response = await client.get(
            "/api/v1/dags?limit=5",
            headers={
                "Authorization": "Basic c3RvbGVu",
                "Cookie": f"session={session}; theme=dark; openmwaa_session={session}",
                "Connection": "x-secret",
                "X-Secret": "hop",
                "Keep-Alive": "timeout=1",
                "X-Forwarded-For": "10.9.9.9",
                "X-Custom": "kept",
            },
        )
    assert response.status_code == 200
    sent = harness.airflow.requests[-1]
    assert sent["path"] == "/api/v1/dags" and sent["query"] == b"limit=5"
    names = [k for k, _ in sent["headers"]]
    assert "x-secret" not in names and "keep-alive" not in names
    assert harness.airflow.last_header("cookie") == ["theme=dark"]
    assert harness.airflow.last_header("x-custom") == ["kept"]
    assert harness.airflow.last_header("x-forwarded-for") == ["203.0.113.7"]
    assert harness.airflow.last_header("x-forwarded-proto") == ["https"]
    (authorization,) = harness.airflow.last_header("authorization")
    claims = jwt.decode(
        authorization.removeprefix("Bearer "),
        TOKEN_SECRET,
        algorithms=["HS256"],
        audience="openmwaa-airflow",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert (claims["sub"], claims["role"]) == ("assumed-role/Admin/alice", "Viewer")
    # Airflow's hop-by-hop headers and its cookies with openmwaa's names do not come back.
    assert "x-hop" not in response.headers and "keep-alive" not in response.headers
    assert [c.split("=")[0] for c in response.headers.get_list("set-cookie")] == ["airflow_pref"]


async def test_airflow3_bearer_session_gets_an_airflow3_token(harness: Harness) -> None:
    login = await _login(harness, "af3", "/pluginsv2/aws_mwaa/login", role="Admin")
    async with harness.client("af3") as client:
        response = await client.get(
            "/api/v2/dags", headers={"Authorization": f"Bearer {login.cookies['_token']}"}
        )
    assert response.status_code == 200
    (authorization,) = harness.airflow.last_header("authorization")
    claims = jwt.decode(
        authorization.removeprefix("Bearer "),
        JWT_SECRET,
        algorithms=["HS512"],
        audience="apache-airflow",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["role"] == "ADMIN"
    assert authorization.removeprefix("Bearer ") != login.cookies["_token"]


async def test_airflow2_trigger_call_reaches_airflow3_as_v2(harness: Harness) -> None:
    login = await _login(harness, "af3")  # the Airflow 2 style login, on an Airflow 3 environment
    async with harness.client("af3") as client:
        response = await client.post(
            "/api/v1/dags/my_dag/dagRuns",
            headers={"Cookie": "session=" + login.cookies["session"]},
            json={"conf": {}},
        )
    assert response.status_code == 200
    sent = harness.airflow.requests[-1]
    assert sent["path"] == "/api/v2/dags/my_dag/dagRuns"
    assert json.loads(sent["body"]) == {"conf": {}, "logical_date": None}


async def test_unauthenticated_requests_never_reach_airflow(harness: Harness) -> None:
    other = await _login(harness, "af2")
    async with harness.client("af3") as client:
        api = await client.get("/api/v2/dags", headers={"Authorization": "Bearer made.up.token"})
        foreign = await client.get("/api/v2/dags", headers={"Cookie": "session=" + other.cookies["session"]})
        page = await client.get("/dags?x=1", headers={"Accept": "text/html"})
    assert api.status_code == 401 and foreign.status_code == 401
    assert page.status_code == 302
    assert page.headers["location"] == "/pluginsv2/aws_mwaa/login?next=%2Fdags%3Fx%3D1"
    assert harness.airflow.requests == []


async def test_session_expires(harness: Harness) -> None:
    login = await _login(harness, "af2")
    async with harness.client("af2") as client:
        client.cookies.set("session", login.cookies["session"])
        assert (await client.get("/api/v1/dags")).status_code == 200
        harness.clock.now += 3601
        assert (await client.get("/api/v1/dags")).status_code == 401


async def test_logout_ends_the_session(harness: Harness) -> None:
    login = await _login(harness, "af2")
    token = login.cookies["session"]
    async with harness.client("af2") as client:
        out = await client.post("/aws_mwaa/logout", headers={"Cookie": "session=" + token})
        after = await client.get("/api/v1/dags", headers={"Cookie": "session=" + token})
    assert out.status_code == 200
    assert all("Max-Age=0" in c for c in out.headers.get_list("set-cookie"))
    assert after.status_code == 401


async def test_large_bodies_stream_both_ways(harness: Harness) -> None:
    login = await _login(harness, "af2")
    size = 5 * 1024 * 1024 + 7
    async with harness.client("af2") as client:
        client.cookies.set("session", login.cookies["session"])
        upload = await client.post("/api/v1/upload", content=chunks(size))
        download = await client.get("/big", params={"n": str(size)})
    assert upload.json()["length"] == size
    assert len(download.content) == size and download.content == b"z" * size


async def test_upstream_redirects_point_back_at_the_endpoint(harness: Harness) -> None:
    login = await _login(harness, "af2")
    async with harness.client("af2") as client:
        response = await client.get("/redirect", headers={"Cookie": "session=" + login.cookies["session"]})
    assert response.status_code == 302
    assert response.headers["location"] == "https://127.0.0.1:8761/home"


async def test_stopped_airflow_answers_503(harness: Harness) -> None:
    login = await _login(harness, "af2")
    harness.endpoints.running.clear()
    async with harness.client("af2") as client:
        response = await client.get("/api/v1/dags", headers={"Cookie": "session=" + login.cookies["session"]})
    assert response.status_code == 503


async def test_console_sso_page_posts_fragment_to_login(harness: Harness) -> None:
    async with harness.client("af3") as client:
        v2 = await client.get("/aws_mwaa/aws-console-sso", params={"login": "true"})
        v3 = await client.get("/pluginsv2/aws_mwaa/aws-console-sso", params={"login": "true"})
    assert v2.status_code == 200 and '"/aws_mwaa/login"' in v2.text and "location.hash" in v2.text
    assert '"/pluginsv2/aws_mwaa/login"' in v3.text
    assert "frame-ancestors 'none'" in v2.headers["content-security-policy"]


async def test_login_form_ignores_offsite_next(harness: Harness) -> None:
    async with harness.client("af2") as client:
        response = await client.post(
            "/aws_mwaa/login", data={"token": harness.web_token("af2"), "next": "//evil.example/"}
        )
    assert response.status_code == 200 and "evil.example" not in response.text


async def test_console_sso_page_opens_a_same_origin_next_path_only(harness: Harness) -> None:
    async with harness.client("af3") as client:
        dag = await client.get("/pluginsv2/aws_mwaa/aws-console-sso", params={"next": "/dags/etl</script>"})
        offsite = await client.get("/aws_mwaa/aws-console-sso", params={"next": "//evil.example/"})
    assert 'location.replace("/dags/etl\\u003c/script\\u003e")' in dag.text
    assert '</script>")' not in dag.text
    assert 'location.replace("/")' in offsite.text and "evil.example" not in offsite.text
