"""More than a thousand bad SigV4 signatures against the real app: none accepted, each refused as modeled.

Every case is a correct signature with exactly one thing wrong: a tampered signature, request
part or signed header; a timestamp too old or too far ahead; a credential scope with another
date, terminator, region or service; an unknown key or a wrong secret; pre-signed (query-string)
URLs, fresh and replayed past their expiry. Each must be refused with the error AWS gives for it
(code, status and wording), never a 5xx. Control requests, signed right by the same signer and
interleaved with the cases, must be accepted: they prove the one thing changed is the cause.

openmwaa verifies header signatures only, so every pre-signed URL is refused as unauthenticated
(``MissingAuthenticationTokenException``), expired or not.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.api.conftest import ADMIN_KEY, ADMIN_SECRET, ENV_ARN, REGION, ApiServer
from tests.api.sigv4_signer import Signing, amz_date, presigned_url, signed_request

SEED = 20261206
CASES = 1200
SKEW = 300  # the server's default clock skew
TAGS_PATH = "/tags/" + quote(ENV_ARN + "team-a-env", safe="-_.~")
NOT_MATCHING = "signature we calculated does not match"


@dataclass(frozen=True)
class Base:
    """A request the cases are made from, and what its correctly signed form gets (the control)."""

    method: str
    target: str
    body: bytes
    accepted_status: int


BASES = [
    Base("GET", "/environments", b"", 200),
    Base("GET", "/environments?MaxResults=5", b"", 200),
    Base("GET", "/environments/avail", b"", 200),
    Base("GET", TAGS_PATH, b"", 200),
    Base("DELETE", TAGS_PATH + "?tagKeys=no-such-key", b"", 200),
    # Bodies that are invalid: were one of their tampered forms ever accepted, nothing would change.
    Base("PATCH", "/environments/avail", b'{"MaxWorkers": "ten"}', 400),
    Base("POST", "/restapi/avail", b'{"Path": 5, "Method": "GET"}', 400),
    Base("POST", "/clitoken/no-such-env", b"", 404),
]

#: Another operation on the same route template, for a method swapped after signing.
OTHER_METHOD = {"GET": "DELETE", "DELETE": "GET", "PATCH": "PUT", "POST": "GET"}


@dataclass(frozen=True)
class Expected:
    status: int
    code: str
    wording: str


MISMATCH = Expected(403, "InvalidSignatureException", NOT_MATCHING)
UNAUTHENTICATED = Expected(403, "MissingAuthenticationTokenException", "Missing Authentication Token")


@dataclass
class Case:
    kind: str
    request: httpx.Request
    expected: Expected


class Maker:
    """Builds one case of each kind from a base request."""

    def __init__(self, api: ApiServer, client: httpx.Client, rng: random.Random) -> None:
        self.api = api
        self.client = client
        self.rng = rng
        self.host = f"127.0.0.1:{api.port}"

    def signing(self, **changes: object) -> Signing:
        fields: dict[str, object] = {
            "key_id": ADMIN_KEY,
            "secret": ADMIN_SECRET,
            "timestamp": amz_date(time.time()),
            "region": REGION,
        }
        fields.update(changes)
        return Signing(**fields)  # type: ignore[arg-type]

    def request(self, base: Base, signing: Signing, **overrides: object) -> httpx.Request:
        method = str(overrides.get("method", base.method))
        target = str(overrides.get("target", base.target))
        body = overrides.get("body", base.body)
        assert isinstance(body, bytes)
        headers = {"content-type": "application/json"} if body else {}
        return signed_request(
            self.client, method, self.api.endpoint_url + target, body, signing, headers=headers
        )

    def control(self, base: Base) -> httpx.Request:
        return self.request(base, self.signing())

    # Tampering after signing -------------------------------------------------------------------

    def flip_signature(self, base: Base) -> Case:
        request = self.control(base)
        auth = request.headers["authorization"]
        position = len(auth) - 1 - self.rng.randrange(64)
        old = auth[position]
        new = self.rng.choice([c for c in "0123456789abcdef" if c != old])
        request.headers["authorization"] = auth[:position] + new + auth[position + 1 :]
        return Case("tampered signature", request, MISMATCH)

    def malformed_signature(self, base: Base) -> Case:
        request = self.control(base)
        auth = request.headers["authorization"]
        broken = self.rng.choice([auth[:-1], auth[:-1] + "G", auth[:-64] + auth[-64:].upper()])
        request.headers["authorization"] = broken
        return Case(
            "malformed signature",
            request,
            Expected(400, "IncompleteSignatureException", "64 lower-case hexadecimal"),
        )

    def tamper_body(self, base: Base) -> Case:
        if base.body:
            index = self.rng.randrange(len(base.body))
            replacement = bytes([base.body[index] ^ 0x01])
            body = base.body[:index] + replacement + base.body[index + 1 :]
        else:
            body = b"{}"
        request = self.request(base, self.signing())
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        tampered = self.client.build_request(request.method, request.url, content=body, headers=headers)
        return Case("tampered body", tampered, MISMATCH)

    def tamper_query(self, base: Base) -> Case:
        request = self.control(base)
        separator = "&" if request.url.query else ""
        extra = self.rng.choice(
            ["x=1", "MaxResults=6", "tagKeys=team", "X-Amz-Date=" + amz_date(time.time())]
        )
        url = request.url.copy_with(query=(request.url.query.decode() + separator + extra).encode())
        tampered = self.client.build_request(
            request.method, url, content=request.content, headers=dict(request.headers)
        )
        return Case("tampered query", tampered, MISMATCH)

    def tamper_path(self, base: Base) -> Case:
        """Another label on the same route (the path decides the operation before SigV4 runs)."""
        path, mark, query = base.target.partition("?")
        if path.count("/") < 2:  # /environments has no label to change
            return self.tamper_query(base)
        head, _, label = path.rpartition("/")
        swapped = self.rng.choice([c for c in "abcdefxyz" if c != label[-1]])  # never inside a %XX
        request = self.control(base)
        url = request.url.copy_with(raw_path=f"{head}/{label[:-1]}{swapped}{mark}{query}".encode())
        tampered = self.client.build_request(
            request.method, url, content=request.content, headers=dict(request.headers)
        )
        return Case("tampered path", tampered, MISMATCH)

    def tamper_method(self, base: Base) -> Case:
        if (
            base.target.startswith(("/environments?", "/restapi/", "/clitoken/"))
            or base.target == "/environments"
        ):
            # Only one method on these templates: another would be an unknown operation (404).
            return self.tamper_host(base)
        request = self.control(base)
        tampered = self.client.build_request(
            OTHER_METHOD[base.method], request.url, content=request.content, headers=dict(request.headers)
        )
        return Case("tampered method", tampered, MISMATCH)

    def tamper_host(self, base: Base) -> Case:
        request = self.control(base)
        request.headers["host"] = self.rng.choice(
            [f"localhost:{self.api.port}", f"api.127.0.0.1:{self.api.port}", "127.0.0.1"]
        )
        return Case("tampered host", request, MISMATCH)

    def tamper_date(self, base: Base) -> Case:
        request = self.control(base)
        signed_at = time.time() + self.rng.choice([-2, -1, 1, 2])
        request.headers["x-amz-date"] = amz_date(signed_at)
        if request.headers["x-amz-date"][:8] != amz_date(time.time())[:8]:
            return self.flip_signature(base)  # a second across midnight changes the scope check
        return Case("tampered x-amz-date", request, MISMATCH)

    # Signed wrongly ---------------------------------------------------------------------------

    def unlisted_header(self, base: Base) -> Case:
        request = self.control(base)
        auth = request.headers["authorization"]
        # Listed in SignedHeaders (sorted, after x-amz-date), never sent.
        request.headers["authorization"] = auth.replace("x-amz-date,", "x-amz-date;x-amz-meta-missing,", 1)
        return Case(
            "signed header missing",
            request,
            Expected(400, "IncompleteSignatureException", "is listed in SignedHeaders but is not"),
        )

    def host_not_signed(self, base: Base) -> Case:
        request = self.control(base)
        auth = request.headers["authorization"].replace("SignedHeaders=host;", "SignedHeaders=", 1)
        auth = auth.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;", 1)
        request.headers["authorization"] = auth
        return Case(
            "host not signed", request, Expected(400, "IncompleteSignatureException", "'Host' must be")
        )

    def wrong_secret(self, base: Base) -> Case:
        secret = "".join(self.rng.choice("abcdefXYZ0123/+") for _ in range(40))
        return Case("wrong secret", self.request(base, self.signing(secret=secret)), MISMATCH)

    def unknown_key(self, base: Base) -> Case:
        key_id = "AKIA" + "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        return Case(
            "unknown access key",
            self.request(base, self.signing(key_id=key_id)),
            Expected(403, "UnrecognizedClientException", "security token included in the request is invalid"),
        )

    def expired(self, base: Base) -> Case:
        age = self.rng.choice([SKEW + 30, SKEW + 600, 3600, 86400, 30 * 86400, 400 * 86400])
        signing = self.signing(timestamp=amz_date(time.time() - age))
        return Case(
            "expired",
            self.request(base, signing),
            Expected(403, "InvalidSignatureException", "Signature expired"),
        )

    def skewed(self, base: Base) -> Case:
        ahead = self.rng.choice([SKEW + 30, SKEW + 600, 3600, 86400, 30 * 86400])
        signing = self.signing(timestamp=amz_date(time.time() + ahead))
        return Case(
            "clock skew (future)",
            self.request(base, signing),
            Expected(403, "InvalidSignatureException", "Signature not yet current"),
        )

    def scope_date(self, base: Base) -> Case:
        days = self.rng.choice([-400, -30, -2, -1, 1, 2, 30])
        other = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).strftime("%Y%m%d")
        return Case(
            "wrong scope date",
            self.request(base, self.signing(scope_date=other)),
            Expected(403, "InvalidSignatureException", "Date in Credential scope does not match"),
        )

    def scope_terminator(self, base: Base) -> Case:
        terminator = self.rng.choice(["aws4_reques", "aws5_request", "AWS4_REQUEST", "aws4_request_"])
        return Case(
            "wrong scope terminator",
            self.request(base, self.signing(terminator=terminator)),
            Expected(400, "IncompleteSignatureException", "valid terminator"),
        )

    def wrong_region(self, base: Base) -> Case:
        region = self.rng.choice(["eu-west-1", "us-west-2", "us-east-2", "ap-south-1", "local", "us-east-1a"])
        return Case(
            "wrong region",
            self.request(base, self.signing(region=region)),
            Expected(403, "InvalidSignatureException", f"not '{region}'"),
        )

    def wrong_service(self, base: Base) -> Case:
        service = self.rng.choice(["ec2", "mwaa", "sts", "execute-api", "iam", "airflow-env", "airflo"])
        return Case(
            "wrong service",
            self.request(base, self.signing(service=service)),
            Expected(403, "InvalidSignatureException", "scoped to correct service: 'airflow'"),
        )

    def botocore_signed(self, base: Base) -> Case:
        """botocore's own signer with a skewed clock, another region or service, or a wrong secret."""
        kind, offset, region, service, secret = self.rng.choice(
            [
                ("botocore: expired", -(SKEW + 120), REGION, "airflow", ADMIN_SECRET),
                ("botocore: clock skew (future)", SKEW + 120, REGION, "airflow", ADMIN_SECRET),
                ("botocore: wrong region", 0, "eu-central-1", "airflow", ADMIN_SECRET),
                ("botocore: wrong service", 0, REGION, "mwaa", ADMIN_SECRET),
                ("botocore: wrong secret", 0, REGION, "airflow", ADMIN_SECRET[::-1]),
            ]
        )
        expected = {
            "botocore: expired": Expected(403, "InvalidSignatureException", "Signature expired"),
            "botocore: clock skew (future)": Expected(403, "InvalidSignatureException", "not yet current"),
            "botocore: wrong region": Expected(403, "InvalidSignatureException", "eu-central-1"),
            "botocore: wrong service": Expected(403, "InvalidSignatureException", "correct service"),
            "botocore: wrong secret": MISMATCH,
        }[kind]
        moment = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=offset)
        headers = {"Content-Type": "application/json"} if base.body else {}
        aws = AWSRequest(base.method, self.api.endpoint_url + base.target, data=base.body, headers=headers)
        original = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: moment
        try:
            SigV4Auth(Credentials(ADMIN_KEY, secret), service, region).add_auth(aws)
        finally:
            botocore.auth.get_current_datetime = original
        request = self.client.build_request(
            base.method, aws.url, content=base.body, headers=dict(aws.headers.items())
        )
        return Case(kind, request, expected)

    # Pre-signed (query-string) forms ------------------------------------------------------------

    def presigned(self, base: Base) -> Case:
        """A pre-signed GET, either fresh or long past its X-Amz-Expires; refused either way."""
        target = base.target if base.method == "GET" else "/environments/avail"
        expired = self.rng.random() < 0.75
        if expired:
            expires = self.rng.choice([1, 60, 300, 3600])
            signed_at = time.time() - expires - self.rng.choice([1, 30, 600])
        else:
            expires, signed_at = 3600, time.time()
        signing = self.signing(timestamp=amz_date(signed_at))
        url = presigned_url(self.api.endpoint_url + target, signing, expires, self.host)
        kind = "pre-signed, replayed past expiry" if expired else "pre-signed, within expiry"
        return Case(kind, self.client.build_request("GET", url), UNAUTHENTICATED)


def _makers(maker: Maker) -> list[Callable[[Base], Case]]:
    return [
        maker.flip_signature,
        maker.malformed_signature,
        maker.tamper_body,
        maker.tamper_query,
        maker.tamper_path,
        maker.tamper_method,
        maker.tamper_host,
        maker.tamper_date,
        maker.unlisted_header,
        maker.host_not_signed,
        maker.wrong_secret,
        maker.unknown_key,
        maker.expired,
        maker.skewed,
        maker.scope_date,
        maker.scope_terminator,
        maker.wrong_region,
        maker.wrong_service,
        maker.botocore_signed,
        maker.presigned,
    ]


def _cases(maker: Maker) -> Iterator[Case]:
    makers = _makers(maker)
    for index in range(CASES):
        base = BASES[index % len(BASES)]
        yield makers[(index // len(BASES) + index) % len(makers)](base)


def _outcome(response: httpx.Response) -> tuple[int, str, str]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = str(body.get("message") or body.get("Message") or "") if isinstance(body, dict) else ""
    return response.status_code, response.headers.get("x-amzn-ErrorType", ""), message


def test_a_thousand_bad_signatures_are_all_refused_as_modeled(api: ApiServer) -> None:
    rng = random.Random(SEED)
    wrong: list[str] = []
    refused: collections.Counter[str] = collections.Counter()
    controls = 0
    with httpx.Client(timeout=30) as client:
        maker = Maker(api, client, rng)
        for index, case in enumerate(_cases(maker)):
            response = client.send(case.request)
            status, code, message = _outcome(response)
            expected = case.expected
            if (status, code) != (expected.status, expected.code) or expected.wording not in message:
                wrong.append(
                    f"{case.kind}: {case.request.method} {case.request.url} -> {status} {code} {message}"
                )
            else:
                refused[case.kind] += 1
            if index % 25 == 0:  # the same signer, nothing changed: accepted
                base = BASES[index % len(BASES)]
                control = client.send(maker.control(base))
                assert control.status_code == base.accepted_status, (base, control.text)
                assert control.headers.get("x-amzn-ErrorType", "") not in {
                    "InvalidSignatureException",
                    "IncompleteSignatureException",
                    "UnrecognizedClientException",
                    "MissingAuthenticationTokenException",
                }
                controls += 1
    summary = ", ".join(f"{kind} {count}" for kind, count in sorted(refused.items()))
    print(
        f"\n{sum(refused.values())} bad signatures refused as modeled "
        f"({controls} controls accepted): {summary}"
    )
    assert not wrong, f"{len(wrong)} of {CASES} not refused as modeled:\n" + "\n".join(wrong[:20])
    assert sum(refused.values()) >= 1000
    assert len(refused) >= 20, refused  # every kind of case was made


def test_a_presigned_url_from_boto3_is_refused_fresh_and_after_expiry(api: ApiServer) -> None:
    """boto3's own pre-signed URLs, replayed after their one-second expiry, and the fresh control."""
    mwaa = api.client()
    urls = [mwaa.generate_presigned_url("get_environment", Params={"Name": "avail"}, ExpiresIn=1)]
    urls.append(mwaa.generate_presigned_url("list_environments", Params={}, ExpiresIn=1))
    fresh = [httpx.get(url) for url in urls]
    time.sleep(2.1)
    replayed = [httpx.get(url) for _ in range(5) for url in urls]
    for response in fresh + replayed:
        assert _outcome(response)[:2] == (UNAUTHENTICATED.status, UNAUTHENTICATED.code), response.text
    # The same request with a header signature is accepted.
    assert mwaa.get_environment(Name="avail")["Environment"]["Name"] == "avail"


@pytest.mark.parametrize("kind", ["session token tampered", "session token from another key"])
def test_tampered_session_tokens_are_refused(api: ApiServer, kind: str) -> None:
    """Temporary credentials from AssumeRole: a changed token, or a token with another key pair."""
    sts = api.client("sts", user="assumer")
    role = "arn:aws:iam::123456789012:role/EnvReader"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="fuzz")["Credentials"]
    other = sts.assume_role(RoleArn=role, RoleSessionName="fuzz-2")["Credentials"]
    token = creds["SessionToken"]
    if kind == "session token tampered":
        index = len(token) // 2
        token = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
    else:
        token = other["SessionToken"]
    mwaa = api.client(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=token,
    )
    with pytest.raises(mwaa.exceptions.ClientError) as exc:
        mwaa.list_environments()
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    assert response["Error"]["Code"] in {"UnrecognizedClientException", "InvalidSignatureException"}
    good = api.client(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert "Environments" in good.list_environments()
