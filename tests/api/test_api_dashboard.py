"""The dashboard on the in-process API server: IAM sign-in, sessions, and what each viewer may see.

The sign-in URLs are signed by the CLI's own signer (botocore's SigV4 query signer). No Airflow
runs here: the AVAILABLE records have no web server, so their DAG data reads fail and say so.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.credentials import Credentials

from openmwaa.cli.dashboard import signin_url
from tests.api.conftest import ACCOUNT, ENV_ARN, REGION, ApiServer


def _url(api: ApiServer, user: str, *, expires: int = 60, region: str = REGION) -> str:
    key_id, secret = api.keys[user]
    return signin_url(api.endpoint_url, Credentials(key_id, secret), region, expires)


def _sign_in(api: ApiServer, user: str) -> requests.Session:
    session = requests.Session()
    response = session.get(_url(api, user), allow_redirects=False, timeout=10)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/"
    return session


def _state(api: ApiServer, session: requests.Session) -> dict[str, Any]:
    response = session.get(api.endpoint_url + "/dashboard/api/state", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _by_name(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {env["name"]: env for env in state["environments"]}


def test_sign_in_sets_a_strict_short_session_cookie_and_the_page_loads(api: ApiServer) -> None:
    response = requests.get(_url(api, "admin"), allow_redirects=False, timeout=10)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("openmwaa_dashboard=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age=3600"):
        assert attribute in cookie
    assert response.headers["referrer-policy"] == "no-referrer"
    token = cookie.split(";")[0].split("=", 1)[1]
    page = requests.get(api.endpoint_url + "/dashboard/", cookies={"openmwaa_dashboard": token}, timeout=10)
    assert page.status_code == 200 and "/dashboard/app.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = requests.get(
        api.endpoint_url + "/dashboard/app.js", cookies={"openmwaa_dashboard": token}, timeout=10
    )
    assert script.status_code == 200 and "/dashboard/api/state" in script.text


def test_a_sign_in_url_works_once(api: ApiServer) -> None:
    url = _url(api, "admin")
    assert requests.get(url, allow_redirects=False, timeout=10).status_code == 303
    replay = requests.get(url, allow_redirects=False, timeout=10)
    assert replay.status_code == 403
    assert "already been used" in replay.text
    assert "set-cookie" not in replay.headers


@pytest.mark.parametrize(
    ("mangle", "status", "wording"),
    [
        (lambda u: u[:-1] + ("0" if u[-1] != "0" else "1"), 403, "signature we calculated"),
        (lambda u: u.replace("/dashboard/signin", "/dashboard/signin/"), 403, "not signed in"),
        (lambda u: u.split("?")[0], 403, "pre-signed sign-in URL"),
        (lambda u: u.replace("X-Amz-Expires=60", "X-Amz-Expires=61"), 403, "signature we calculated"),
        (lambda u: u.replace("nonce=", "nonce=0"), 403, "signature we calculated"),
    ],
    ids=["tampered-signature", "other-path", "unsigned", "tampered-expiry", "tampered-query"],
)
def test_tampered_sign_in_urls_are_refused(api: ApiServer, mangle: Any, status: int, wording: str) -> None:
    response = requests.get(mangle(_url(api, "admin")), allow_redirects=False, timeout=10)
    assert response.status_code == status and wording in response.text, response.text
    assert "set-cookie" not in response.headers


def test_wrong_secret_long_expiry_and_other_region_are_refused(api: ApiServer) -> None:
    key_id, _ = api.keys["admin"]
    forged = signin_url(api.endpoint_url, Credentials(key_id, "not-the-secret"), REGION, 60)
    response = requests.get(forged, allow_redirects=False, timeout=10)
    assert response.status_code == 403 and "signature we calculated" in response.text
    long_lived = requests.get(_url(api, "admin", expires=3600), allow_redirects=False, timeout=10)
    assert long_lived.status_code == 400 and "at most 300 seconds" in long_lived.text
    elsewhere = requests.get(_url(api, "admin", region="eu-west-1"), allow_redirects=False, timeout=10)
    assert elsewhere.status_code == 403 and "set-cookie" not in elsewhere.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/dashboard"),
        ("GET", "/dashboard/"),
        ("GET", "/dashboard/app.js"),
        ("GET", "/dashboard/app.css"),
        ("GET", "/dashboard/api/state"),
        ("GET", f"/dashboard/airflow?environment={ENV_ARN}avail"),
        ("POST", "/dashboard/signout"),
        ("GET", "/dashboard/nothing-here"),
    ],
)
def test_every_dashboard_request_without_a_session_is_rejected(
    api: ApiServer, method: str, path: str
) -> None:
    for cookies in ({}, {"openmwaa_dashboard": "forged-session-id"}):
        response = requests.request(method, api.endpoint_url + path, cookies=cookies, timeout=10)
        assert response.status_code == 403, (path, response.text)
        assert "openmwaa dashboard" in response.text
    api_answer = requests.get(api.endpoint_url + "/dashboard/api/state", timeout=10).json()
    assert api_answer["code"] == "MissingAuthenticationTokenException" and api_answer["signIn"] is True


def test_sign_out_ends_the_session(api: ApiServer) -> None:
    session = _sign_in(api, "admin")
    assert session.get(api.endpoint_url + "/dashboard/api/state", timeout=30).status_code == 200
    assert session.post(api.endpoint_url + "/dashboard/signout", timeout=10).status_code == 200
    assert session.get(api.endpoint_url + "/dashboard/api/state", timeout=10).status_code == 403


def test_old_session_value_is_dead_after_sign_out(api: ApiServer) -> None:
    response = requests.get(_url(api, "admin"), allow_redirects=False, timeout=10)
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    cookies = {"openmwaa_dashboard": value}
    requests.post(api.endpoint_url + "/dashboard/signout", cookies=cookies, timeout=10)
    again = requests.get(api.endpoint_url + "/dashboard/api/state", cookies=cookies, timeout=10)
    assert again.status_code == 403


def test_viewers_see_only_what_their_policies_allow(api: ApiServer) -> None:
    admin = _by_name(_state(api, _sign_in(api, "admin")))
    assert {"avail", "team-a-env", "team-b-env"} <= set(admin)
    assert admin["avail"]["dagDataVisible"] is True
    link = urlsplit(admin["avail"]["airflowUrl"])
    assert link.path == "/dashboard/airflow" and parse_qs(link.query) == {"environment": [ENV_ARN + "avail"]}
    # No web server runs behind these records: the read fails, and the dashboard says why.
    assert "no running web server" in (admin["avail"]["dataError"] or "")

    getter = _by_name(_state(api, _sign_in(api, "getter")))
    assert {"avail", "team-a-env", "team-b-env"} <= set(getter)
    assert getter["avail"]["dagDataVisible"] is False and "runsByState" not in getter["avail"]
    assert getter["avail"]["airflowUrl"] is None

    team_a = _state(api, _sign_in(api, "team-a"))
    assert [env["name"] for env in team_a["environments"]] == ["team-a-env"]
    assert team_a["viewer"] == f"arn:aws:iam::{ACCOUNT}:user/team-a"

    # InvokeRestApi on one role, but no GetEnvironment: the environment is not shown at all.
    assert _state(api, _sign_in(api, "viewer-only"))["environments"] == []
    assert _state(api, _sign_in(api, "nobody"))["environments"] == []


def test_airflow_link_needs_a_web_login_role(api: ApiServer) -> None:
    getter = _sign_in(api, "getter")
    link = f"{api.endpoint_url}/dashboard/airflow?environment={ENV_ARN}avail&dag=hello"
    denied = getter.get(link, allow_redirects=False, timeout=10)
    assert denied.status_code == 403 and "No Airflow role granted in IAM" in denied.text
    admin = _sign_in(api, "admin")
    # Allowed, but these records have no Airflow behind them: a clear error, never a 500.
    unknown = admin.get(link.replace("avail", "no-such-env"), allow_redirects=False, timeout=10)
    assert unknown.status_code == 403
    bad = admin.get(f"{api.endpoint_url}/dashboard/airflow?environment=nonsense", timeout=10)
    assert bad.status_code == 400
