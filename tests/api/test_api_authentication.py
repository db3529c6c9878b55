"""SigV4 through the real app: who is refused, with which error, before anything else happens."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast
from urllib.parse import quote

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from openmwaa.app import create_app
from tests.api.conftest import ACCOUNT, ADMIN_KEY, ADMIN_SECRET, ENV_ARN, REGION, ApiServer


def signed_request(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    service: str = "airflow",
    region: str = REGION,
    key: tuple[str, str] = (ADMIN_KEY, ADMIN_SECRET),
    headers: dict[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """``url`` and the headers botocore's own signer adds for this request."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(*key), service, region).add_auth(request)
    return url, dict(request.headers.items())


def send(api: ApiServer, method: str, path: str, body: bytes = b"", **kwargs: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json"} if body else {}
    url, signed = signed_request(method, api.endpoint_url + path, body, headers=headers, **kwargs)
    return httpx.request(method, url, content=body, headers=signed, timeout=30)


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return (
        response.status_code,
        response.headers.get("x-amzn-ErrorType", ""),
        str(body.get("message") or body.get("Message") or ""),
    )


def plain_client_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    # Authentication failures are not modeled: botocore raises the base ClientError.
    assert type(exc.value) is ClientError
    response = exc.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], str(exc.value))


def test_wrong_secret_is_an_invalid_signature(api: ApiServer) -> None:
    mwaa = api.client(aws_access_key_id=ADMIN_KEY, aws_secret_access_key="not-the-secret-" + "x" * 25)
    with pytest.raises(ClientError) as exc:
        mwaa.list_environments()
    code, status, text = plain_client_error(exc)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "signature we calculated does not match" in text


def test_unknown_key_is_unrecognized(api: ApiServer) -> None:
    mwaa = api.client(aws_access_key_id="AKIANOBODYHASTHIS000", aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as exc:
        mwaa.list_environments()
    code, status, text = plain_client_error(exc)
    assert (code, status) == ("UnrecognizedClientException", 403)
    assert "The security token included in the request is invalid." in text


def test_signed_for_another_region_is_refused(api: ApiServer) -> None:
    with pytest.raises(ClientError) as exc:
        api.client(region="eu-west-1").list_environments()
    code, status, text = plain_client_error(exc)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "eu-west-1" in text


def test_signed_for_another_service_is_refused(api: ApiServer) -> None:
    response = send(api, "GET", "/environments", service="ec2")  # s3 is served here now
    status, code, message = error(response)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "airflow" in message
    assert send(api, "GET", "/environments").status_code == 200  # the same request, signed right


@pytest.mark.parametrize(
    ("offset", "wording"), [(-600, "Signature expired"), (600, "Signature not yet current")]
)
def test_clock_skew_beyond_five_minutes(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch, offset: int, wording: str
) -> None:
    def skewed() -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=offset)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", skewed)
    with pytest.raises(ClientError) as exc:
        api.client().list_environments()
    code, status, text = plain_client_error(exc)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert wording in text


def test_clock_skew_within_five_minutes_is_accepted(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def skewed() -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=240)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", skewed)
    assert "Environments" in api.client().list_environments()


def test_raw_path_signature_with_an_arn_label(api: ApiServer) -> None:
    """The ARN travels as one percent-encoded segment; the signature covers the raw path."""
    path = "/tags/" + quote(ENV_ARN + "team-a-env", safe="-_.~")
    assert "%3A" in path
    response = send(api, "GET", path)
    assert response.status_code == 200, response.text
    assert response.json() == {"Tags": {"team": "a"}}
    # Signed over the decoded ':' but sent as '%3A': the server verifies what it received.
    _, headers = signed_request("GET", api.endpoint_url + path.replace("%3A", ":"))
    response = httpx.get(api.endpoint_url + path, headers=headers)
    assert error(response)[:2] == (403, "InvalidSignatureException")


@pytest.mark.anyio
async def test_in_process_asgi_transport_keeps_raw_paths(api: ApiServer) -> None:
    """The same app driven through httpx's ASGITransport (no socket): SigV4 over the raw path holds."""
    app = create_app(api.settings, api.services)
    base = f"http://127.0.0.1:{api.port}"
    path = "/tags/" + quote(ENV_ARN + "team-b-env", safe="-_.~")
    url, headers = signed_request("GET", base + path)
    transport = httpx.ASGITransport(app=cast(Any, app), client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"Tags": {"team": "b"}}


def test_validation_errors_never_reach_unauthenticated_callers(api: ApiServer) -> None:
    bad_input = json.dumps({"MaxWorkers": "ten", "Unknown": 1}).encode()
    # Unsigned: the answer is about authentication, whatever is wrong with the input.
    response = httpx.patch(
        api.endpoint_url + "/environments/1-not-a-valid-name!",
        content=bad_input,
        headers={"Content-Type": "application/json"},
    )
    assert error(response)[:2] == (403, "MissingAuthenticationTokenException")
    assert "MaxWorkers" not in response.text and "Name" not in response.text
    # Wrongly signed: the same.
    response = send(api, "PATCH", "/environments/1-not-a-valid-name!", bad_input, key=(ADMIN_KEY, "x" * 40))
    assert error(response)[:2] == (403, "InvalidSignatureException")
    assert "MaxWorkers" not in response.text
    # Properly signed, the caller learns what is wrong.
    response = send(api, "PATCH", "/environments/1-not-a-valid-name!", bad_input)
    assert error(response)[:2] == (400, "ValidationException")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/environments/x-env", b"{not json"),
        ("PUT", "/environments/x-env", b"[1, 2, 3]"),
        ("PUT", "/environments/x-env", b'{"Name": "x-env", "MaxWorkers": "ten"}'),
        ("PATCH", "/environments/avail", b'{"MaxWorkers": true, "Schedulers": "2"}'),
        ("PATCH", "/environments/avail", b'{"NetworkConfiguration": "sg-1"}'),
        ("POST", "/restapi/avail", b'{"Path": 5, "Method": "GET"}'),
        ("POST", "/restapi/avail", b'{"Path": "/dags", "Method": "TRACE"}'),
        ("POST", "/tags/" + quote(ENV_ARN + "avail", safe=""), b'{"Tags": ["a", "b"]}'),
        ("POST", "/tags/" + quote(ENV_ARN + "avail", safe=""), b'{"Tags": {"k": 5}}'),
        ("GET", "/environments?MaxResults=banana", b""),
        ("GET", "/environments?MaxResults=1000", b""),
        ("PUT", "/environments/x-env", '{"Name": "\u00e9\\ud800"}'.encode()),
        ("PUT", "/environments/x-env", b"\xff\xfe\x00garbage"),
    ],
)
def test_bad_input_is_a_client_error_never_a_server_error(
    api: ApiServer, method: str, path: str, body: bytes
) -> None:
    response = send(api, method, path, body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["x-amzn-ErrorType"] == "ValidationException", response.text


def test_huge_body_is_refused_without_a_server_error(api: ApiServer) -> None:
    body = b'{"Name": "' + b"a" * (9 * 1024 * 1024) + b'"}'
    response = send(api, "PUT", "/environments/x-env", body)
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"


def test_a_nested_body_within_the_limit_is_a_client_error(api: ApiServer) -> None:
    body = json.dumps({"Path": "/dags", "Method": "POST"}).encode()[:-1] + b', "Body": ' + b"[" * 5000
    body += b"]" * 5000 + b"}"
    response = send(api, "POST", "/restapi/avail", body)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    ("path", "status", "signed"),
    [("/environments/no-such-env", 404, True), ("/environments", 200, True), ("/environments", 403, False)],
)
def test_every_response_carries_one_request_id(api: ApiServer, path: str, status: int, signed: bool) -> None:
    response = send(api, "GET", path) if signed else httpx.get(api.endpoint_url + path)
    assert response.status_code == status
    (request_id,) = response.headers.get_list("x-amzn-RequestId")
    assert len(request_id) >= 16 and ACCOUNT not in request_id
