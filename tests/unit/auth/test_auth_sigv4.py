from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from openmwaa.auth import sigv4
from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.sigv4 import canonical_query, canonical_uri, parse_authorization, verify_request
from openmwaa.errors import (
    ExpiredTokenError,
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
    UnrecognizedClientError,
)
from openmwaa.pipeline.context import RequestContext
from tests.unit.authtest_support import (
    ALICE_KEY,
    ALICE_SECRET,
    BOB_KEY,
    BOB_SECRET,
    REGION,
    botocore_signed,
    context_from,
    hand_signed,
)

ENDPOINT = "http://127.0.0.1:8750"
ARN_PATH = "/tags/arn%3Aaws%3Aairflow%3Aus-east-1%3A123456789012%3Aenvironment%2Fmy-env"
FIXED = "20261127T120000Z"
FIXED_EPOCH = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc).timestamp()


def verify(
    ctx: RequestContext, store: IdentityStore, *, now: float | None = None, service: str = "airflow"
) -> Any:
    return verify_request(
        ctx,
        service=service,
        region=REGION,
        credentials=store,
        now=time.time() if now is None else now,
        clock_skew=300.0,
    )


def replace_header(ctx: RequestContext, name: str, value: str) -> RequestContext:
    headers = [(k, value if k == name else v) for k, v in ctx.headers]
    assert headers != ctx.headers, f"{name} not in request"
    return dataclasses.replace(ctx, headers=headers)


# --- both signers verify -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body", "headers"),
    [
        ("GET", f"{ENDPOINT}/environments", b"", {}),
        ("GET", f"{ENDPOINT}/environments?MaxResults=5&NextToken=abc%2Fdef", b"", {}),
        (
            "PUT",
            f"{ENDPOINT}/environments/my-env",
            b'{"AirflowVersion": "3.0.6"}',
            {"Content-Type": "application/json"},
        ),
        ("GET", f"{ENDPOINT}{ARN_PATH}", b"", {}),
        ("DELETE", f"{ENDPOINT}{ARN_PATH}?tagKeys=b&tagKeys=a", b"", {}),
        ("POST", f"{ENDPOINT}/restapi/my-env", b'{"Path": "/dags", "Method": "GET"}', {"Content-Type": "x"}),
    ],
)
def test_botocore_signed_requests_verify(
    store: IdentityStore, method: str, url: str, body: bytes, headers: dict[str, str]
) -> None:
    ctx = botocore_signed(method, url, key=ALICE_KEY, secret=ALICE_SECRET, body=body, headers=headers)
    principal = verify(ctx, store)
    assert principal.arn == "arn:aws:iam::123456789012:user/alice"
    assert principal.identity == "user/alice"
    assert principal.access_key_id == ALICE_KEY


def test_hand_signed_request_verifies(store: IdentityStore) -> None:
    ctx = hand_signed(
        "POST",
        "127.0.0.1:8750",
        "/clitoken/my-env",
        "b=2&a=1",
        key=BOB_KEY,
        secret=BOB_SECRET,
        amz_date=FIXED,
    )
    assert verify(ctx, store, now=FIXED_EPOCH).name == "bob"


def test_hand_signed_arn_path_is_encoded_once_more(store: IdentityStore) -> None:
    double = ARN_PATH.replace("%", "%25")
    ctx = hand_signed(
        "GET",
        "api.example:443",
        ARN_PATH,
        "",
        key=BOB_KEY,
        secret=BOB_SECRET,
        amz_date=FIXED,
        canonical_uri=double,
    )
    assert verify(ctx, store, now=FIXED_EPOCH).name == "bob"
    # Signing the decoded or the single-encoded path must not verify.
    for wrong in (ARN_PATH, "/tags/arn:aws:airflow:us-east-1:123456789012:environment/my-env"):
        bad = hand_signed(
            "GET",
            "api.example:443",
            ARN_PATH,
            "",
            key=BOB_KEY,
            secret=BOB_SECRET,
            amz_date=FIXED,
            canonical_uri=wrong,
        )
        with pytest.raises(InvalidSignatureError):
            verify(bad, store, now=FIXED_EPOCH)


def test_real_boto3_mwaa_client_requests_verify(store: IdentityStore) -> None:
    """What boto3 actually puts on the wire (captured before sending) verifies."""
    captured: list[RequestContext] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else bytes(body)
        captured.append(context_from(request.method, request.url, list(request.headers.items()), body))
        return AWSResponse(request.url, 200, {"content-type": "application/json"}, _Raw(b"{}"))

    client = boto3.client(
        "mwaa",
        region_name=REGION,
        endpoint_url=ENDPOINT,
        aws_access_key_id=ALICE_KEY,
        aws_secret_access_key=ALICE_SECRET,
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )
    client.meta.events.register("before-send", capture)
    arn = "arn:aws:airflow:us-east-1:123456789012:environment/my-env"
    client.list_tags_for_resource(ResourceArn=arn)
    client.untag_resource(ResourceArn=arn, tagKeys=["b key", "a/key"])
    client.invoke_rest_api(Name="my-env", Path="/dags", Method="GET", QueryParameters={"limit": 1})
    client.list_environments(MaxResults=5)
    assert len(captured) == 4
    assert captured[0].raw_path == ARN_PATH
    for ctx in captured:
        assert verify(ctx, store).name == "alice"


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, *_: Any, **__: Any) -> Any:
        yield self._data


# --- any alteration is rejected ----------------------------------------------------------------


@pytest.fixture
def signed(store: IdentityStore) -> RequestContext:
    ctx = botocore_signed(
        "POST",
        f"{ENDPOINT}/restapi/my-env?x=1",
        key=ALICE_KEY,
        secret=ALICE_SECRET,
        body=b'{"Path": "/dags"}',
        headers={"Content-Type": "application/json"},
    )
    verify(ctx, store)  # the unaltered request is fine
    return ctx


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda c: dataclasses.replace(c, method="PUT"), id="method"),
        pytest.param(lambda c: dataclasses.replace(c, raw_path="/restapi/other-env"), id="path"),
        pytest.param(lambda c: dataclasses.replace(c, raw_query="x=2"), id="query"),
        pytest.param(lambda c: dataclasses.replace(c, raw_query=""), id="query-removed"),
        pytest.param(lambda c: dataclasses.replace(c, body=b'{"Path": "/pools"}'), id="body"),
        pytest.param(lambda c: replace_header(c, "host", "127.0.0.1:9999"), id="host"),
        pytest.param(lambda c: replace_header(c, "content-type", "text/plain"), id="content-type"),
    ],
)
def test_altered_request_is_rejected(store: IdentityStore, signed: RequestContext, alter: Any) -> None:
    with pytest.raises(InvalidSignatureError) as info:
        verify(alter(signed), store)
    assert info.value.message == sigv4.MISMATCH_MESSAGE
    assert info.value.status == 403


def test_altered_date_is_rejected(store: IdentityStore, signed: RequestContext) -> None:
    amz_date = signed.header("x-amz-date")
    assert amz_date is not None
    later = (dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ") + dt.timedelta(seconds=1)).strftime(
        "%Y%m%dT%H%M%SZ"
    )
    with pytest.raises(InvalidSignatureError):
        verify(replace_header(signed, "x-amz-date", later), store)


def test_unsigned_headers_may_change(store: IdentityStore, signed: RequestContext) -> None:
    ctx = dataclasses.replace(
        signed, headers=[*signed.headers, ("user-agent", "retry/2"), ("content-length", "17")]
    )
    assert verify(ctx, store).name == "alice"


def test_retry_with_identical_signature_verifies(store: IdentityStore, signed: RequestContext) -> None:
    again = dataclasses.replace(signed, request_id="req-2")
    assert verify(signed, store).name == verify(again, store).name == "alice"


def test_wrong_secret_is_rejected(store: IdentityStore) -> None:
    ctx = botocore_signed("GET", f"{ENDPOINT}/environments", key=ALICE_KEY, secret=BOB_SECRET)
    with pytest.raises(InvalidSignatureError):
        verify(ctx, store)


def test_key_swapped_into_authorization_is_rejected(store: IdentityStore, signed: RequestContext) -> None:
    auth = signed.header("authorization")
    assert auth is not None
    with pytest.raises(InvalidSignatureError):
        verify(replace_header(signed, "authorization", auth.replace(ALICE_KEY, BOB_KEY)), store)


def test_unknown_key_is_unrecognized(store: IdentityStore) -> None:
    ctx = botocore_signed("GET", f"{ENDPOINT}/environments", key="AKIANOBODY0000000000", secret="x" * 40)
    with pytest.raises(UnrecognizedClientError) as info:
        verify(ctx, store)
    assert info.value.message == "The security token included in the request is invalid."


@pytest.mark.parametrize(
    ("service", "region", "fragment"),
    [("sts", REGION, "correct service: 'airflow'"), ("airflow", "eu-west-1", "valid region")],
)
def test_wrong_scope_is_rejected(store: IdentityStore, service: str, region: str, fragment: str) -> None:
    ctx = botocore_signed(
        "GET", f"{ENDPOINT}/environments", key=ALICE_KEY, secret=ALICE_SECRET, service=service, region=region
    )
    with pytest.raises(InvalidSignatureError, match=fragment):
        verify(ctx, store)


def test_scope_date_must_match_request_date(store: IdentityStore) -> None:
    ctx = hand_signed("GET", "h", "/environments", "", key=BOB_KEY, secret=BOB_SECRET, amz_date=FIXED)
    auth = ctx.header("authorization")
    assert auth is not None
    ctx = replace_header(ctx, "authorization", auth.replace("/20261127/", "/20261126/"))
    with pytest.raises(InvalidSignatureError, match="Date in Credential scope"):
        verify(ctx, store, now=FIXED_EPOCH)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (
            301,
            "Signature expired: 20261127T120000Z is now earlier than 20261127T120001Z "
            "(20261127T120501Z - 5 min.)",
        ),
        (-301, "Signature not yet current: 20261127T120000Z is still later than 20261127T115959Z"),
    ],
)
def test_clock_skew(store: IdentityStore, offset: float, message: str) -> None:
    ctx = hand_signed("GET", "h", "/environments", "", key=BOB_KEY, secret=BOB_SECRET, amz_date=FIXED)
    assert verify(ctx, store, now=FIXED_EPOCH + 299).name == "bob"
    assert verify(ctx, store, now=FIXED_EPOCH - 299).name == "bob"
    with pytest.raises(InvalidSignatureError) as info:
        verify(ctx, store, now=FIXED_EPOCH + offset)
    assert info.value.message.startswith(message)


def test_http_date_header_is_accepted(store: IdentityStore) -> None:
    ctx = botocore_signed(
        "GET", f"{ENDPOINT}/environments", key=ALICE_KEY, secret=ALICE_SECRET, headers={"Date": "placeholder"}
    )
    assert ctx.header("x-amz-date") is None and ctx.header("date") is not None
    assert verify(ctx, store).name == "alice"


# --- malformed or missing authorization ---------------------------------------------------------


def test_missing_authorization() -> None:
    ctx = context_from("GET", f"{ENDPOINT}/environments", [])
    with pytest.raises(MissingAuthenticationTokenError):
        verify_request(ctx, service="airflow", region=REGION, credentials=_NoLookup(), now=0, clock_skew=300)


class _NoLookup:
    def lookup(self, *_: Any) -> Any:
        raise AssertionError("must not be reached")


GOOD = f"AWS4-HMAC-SHA256 Credential={ALICE_KEY}/20261127/us-east-1/airflow/aws4_request, " + (
    "SignedHeaders=host;x-amz-date, Signature=" + "a" * 64
)


def test_parse_authorization_accepts_botocore_format() -> None:
    parsed = parse_authorization(GOOD)
    assert parsed.access_key_id == ALICE_KEY
    assert parsed.signed_headers == ("host", "x-amz-date")
    assert parsed.credential_scope == "20261127/us-east-1/airflow/aws4_request"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA512 " + GOOD.split(" ", 1)[1],
        GOOD.replace(", Signature=", ", Signature=" + "a" * 64 + ", Signature="),
        GOOD + ", Extra=1",
        GOOD.replace("SignedHeaders=host;x-amz-date, ", ""),
        GOOD.replace("Signature=" + "a" * 64, "Signature=" + "A" * 64),
        GOOD.replace("Signature=" + "a" * 64, "Signature=" + "a" * 63),
        GOOD.replace("host;x-amz-date", "x-amz-date;host"),
        GOOD.replace("host;x-amz-date", "host;host;x-amz-date"),
        GOOD.replace("host;x-amz-date", "Host;x-amz-date"),
        GOOD.replace("/aws4_request", "/aws5_request"),
        GOOD.replace("/20261127/", "/2026112/"),
        GOOD.replace(ALICE_KEY, "short"),
        GOOD.replace("/us-east-1/", "/us east 1/"),
        GOOD + "x" * 5000,
    ],
)
def test_parse_authorization_rejects(value: str) -> None:
    with pytest.raises(IncompleteSignatureError):
        parse_authorization(value)


def test_host_must_be_signed(store: IdentityStore) -> None:
    ctx = hand_signed("GET", "h", "/environments", "", key=BOB_KEY, secret=BOB_SECRET, amz_date=FIXED)
    auth = ctx.header("authorization")
    assert auth is not None
    ctx = replace_header(
        ctx, "authorization", auth.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date")
    )
    with pytest.raises(IncompleteSignatureError, match="Host"):
        verify(ctx, store, now=FIXED_EPOCH)


def test_missing_date(store: IdentityStore) -> None:
    ctx = hand_signed("GET", "h", "/environments", "", key=BOB_KEY, secret=BOB_SECRET, amz_date=FIXED)
    ctx = dataclasses.replace(ctx, headers=[(k, v) for k, v in ctx.headers if k != "x-amz-date"])
    with pytest.raises(IncompleteSignatureError, match="X-Amz-Date"):
        verify(ctx, store, now=FIXED_EPOCH)


def test_content_sha256_must_match_body(store: IdentityStore) -> None:
    body = b'{"a": 1}'
    good = botocore_signed(
        "POST",
        f"{ENDPOINT}/restapi/e",
        key=ALICE_KEY,
        secret=ALICE_SECRET,
        body=body,
        headers={"X-Amz-Content-SHA256": __import__("hashlib").sha256(body).hexdigest()},
    )
    assert verify(good, store).name == "alice"
    lying = botocore_signed(
        "POST",
        f"{ENDPOINT}/restapi/e",
        key=ALICE_KEY,
        secret=ALICE_SECRET,
        body=body,
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    with pytest.raises(InvalidSignatureError, match="x-amz-content-sha256"):
        verify(lying, store)


# --- session tokens -----------------------------------------------------------------------------


def test_session_credentials(store: IdentityStore) -> None:
    now = time.time()
    issued = store.sessions.issue(
        role_name="Deployer", session_name="ci", source_arn="x", duration=900, now=now
    )
    key, secret, token = issued.session.access_key_id, issued.session.secret_access_key, issued.session_token
    url = f"{ENDPOINT}/environments"

    principal = verify(botocore_signed("GET", url, key=key, secret=secret, token=token), store)
    assert principal.arn == "arn:aws:sts::123456789012:assumed-role/Deployer/ci"
    assert principal.identity == "assumed-role/Deployer/ci"
    assert principal.user_id.startswith("AROA") and principal.user_id.endswith(":ci")

    with pytest.raises(UnrecognizedClientError):  # token missing
        verify(botocore_signed("GET", url, key=key, secret=secret), store)
    wrong = token[:-1] + ("B" if token.endswith("A") else "A")  # always a different last character
    with pytest.raises(UnrecognizedClientError):  # wrong token
        verify(botocore_signed("GET", url, key=key, secret=secret, token=wrong), store)
    old = store.sessions.issue(
        role_name="Deployer", session_name="ci", source_arn="x", duration=900, now=now - 901
    )
    with pytest.raises(ExpiredTokenError):
        verify(
            botocore_signed(
                "GET",
                url,
                key=old.session.access_key_id,
                secret=old.session.secret_access_key,
                token=old.session_token,
            ),
            store,
        )
    with pytest.raises(UnrecognizedClientError):  # a token with a long-term key
        verify(botocore_signed("GET", url, key=ALICE_KEY, secret=ALICE_SECRET, token=token), store)


def test_security_token_header_must_be_signed(store: IdentityStore) -> None:
    ctx = hand_signed("GET", "h", "/environments", "", key=BOB_KEY, secret=BOB_SECRET, amz_date=FIXED)
    ctx = dataclasses.replace(ctx, headers=[*ctx.headers, ("x-amz-security-token", "t")])
    with pytest.raises(IncompleteSignatureError, match="Security-Token"):
        verify(ctx, store, now=FIXED_EPOCH)


# --- canonical pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/a/./b/../c/", "/a/c/"),
        ("//a//b", "/a/b"),
        ("/a b", "/a%20b"),
        ("/x%3Ay", "/x%253Ay"),
        ("/~user", "/~user"),
    ],
)
def test_canonical_uri(raw: str, expected: str) -> None:
    assert canonical_uri(raw) == expected


def test_canonical_query_sorts_raw_pairs_without_reencoding() -> None:
    assert canonical_query("b=2&a=%2F&a=1&c") == "a=%2F&a=1&b=2&c="
    assert canonical_query("") == ""


@pytest.mark.parametrize("bad", ["2026-11-27T12:00:00Z", "20261327T120000Z", "20261127T120000"])
def test_malformed_amz_date(store: IdentityStore, bad: str) -> None:
    ctx = hand_signed("GET", "h", "/environments", "", key=BOB_KEY, secret=BOB_SECRET, amz_date=FIXED)
    with pytest.raises(IncompleteSignatureError, match="X-Amz-Date"):
        verify(replace_header(ctx, "x-amz-date", bad), store, now=FIXED_EPOCH)


def test_duplicate_authorization_header(store: IdentityStore) -> None:
    ctx = hand_signed("GET", "h", "/environments", "", key=BOB_KEY, secret=BOB_SECRET, amz_date=FIXED)
    auth = ctx.header("authorization")
    assert auth is not None
    ctx = dataclasses.replace(ctx, headers=[*ctx.headers, ("authorization", auth)])
    with pytest.raises(IncompleteSignatureError, match="more than one"):
        verify(ctx, store, now=FIXED_EPOCH)


def test_signing_keys_are_cached_per_scope() -> None:
    sigv4.signing_key.cache_clear()
    first = sigv4.signing_key("secret", "20261127", REGION, "airflow")
    assert sigv4.signing_key("secret", "20261127", REGION, "airflow") == first
    assert sigv4.signing_key("secret", "20261128", REGION, "airflow") != first
    assert sigv4.signing_key.cache_info().hits == 1
