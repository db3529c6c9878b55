"""Helpers for the auth tests: request contexts, two independent signers, an identities file."""

from __future__ import annotations

import hashlib
import hmac
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openmwaa.pipeline.context import RequestContext

ACCOUNT = "123456789012"
REGION = "us-east-1"
ALICE_KEY = "AKIAALICEEXAMPLE0001"
ALICE_SECRET = "alice/K7MDENG/bPxRfiCYEXAMPLEKEYalice000"
BOB_KEY = "AKIABOBEXAMPLE000002"
BOB_SECRET = "bob+secret/EXAMPLEKEY0000000000000000000"
CAROL_KEY = "AKIACAROLEXAMPLE0003"
CAROL_SECRET = "carol-secret-EXAMPLEKEY00000000000000000"

IDENTITIES_YAML = textwrap.dedent(
    f"""
    managed_policies:
      AssumeAnyRole:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: sts:AssumeRole
            Resource: "*"
    users:
      - name: alice
        access_keys:
          - id: {ALICE_KEY}
            secret: "{ALICE_SECRET}"
        policies:
          - Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: "airflow:*"
                Resource: "*"
        managed_policies: [AssumeAnyRole]
      - name: bob
        access_keys:
          - id: {BOB_KEY}
            secret: "{BOB_SECRET}"
        managed_policies: [AssumeAnyRole]
      - name: carol
        access_keys:
          - id: {CAROL_KEY}
            secret: "{CAROL_SECRET}"
    roles:
      - name: Deployer
        max_session_duration: 7200
        trust_policy:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Principal: {{AWS: "arn:aws:iam::{ACCOUNT}:user/alice"}}
              Action: sts:AssumeRole
            - Effect: Allow
              Principal: {{AWS: "arn:aws:iam::{ACCOUNT}:user/carol"}}
              Action: sts:AssumeRole
        policies:
          - name: deploy
            document:
              Version: "2012-10-17"
              Statement:
                - Effect: Allow
                  Action: ["airflow:CreateCliToken", "sts:AssumeRole"]
                  Resource: "*"
      - name: Chained
        trust_policy:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Principal: {{AWS: "arn:aws:iam::{ACCOUNT}:role/Deployer"}}
              Action: sts:AssumeRole
    """
)


def context_from(
    method: str, url: str, headers: list[tuple[str, Any]], body: bytes = b"", received_at: float | None = None
) -> RequestContext:
    """A RequestContext as the pipeline builds it: raw path and query, lower-cased headers, Host added."""
    parts = urlsplit(url)
    lowered = [(k.lower(), v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in headers]
    if not any(k == "host" for k, _ in lowered):
        lowered.insert(0, ("host", parts.netloc))
    return RequestContext(
        request_id="req-1",
        method=method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=lowered,
        client_ip="127.0.0.1",
        scheme=parts.scheme,
        received_at=received_at if received_at is not None else time.time(),
        body=body,
    )


def botocore_signed(
    method: str,
    url: str,
    *,
    key: str,
    secret: str,
    token: str | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    service: str = "airflow",
    region: str = REGION,
) -> RequestContext:
    """Sign with botocore's own SigV4Auth (at the current time)."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(key, secret, token), service, region).add_auth(request)
    return context_from(method, url, list(request.headers.items()), body)


def hand_signed(
    method: str,
    host: str,
    raw_path: str,
    raw_query: str,
    *,
    key: str,
    secret: str,
    amz_date: str,
    body: bytes = b"",
    extra: dict[str, str] | None = None,
    canonical_uri: str | None = None,
    service: str = "airflow",
    region: str = REGION,
) -> RequestContext:
    """An independent signer written from the SigV4 documentation, not from the code under test."""
    headers = {"host": host, "x-amz-date": amz_date, **(extra or {})}
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
    query = "&".join(sorted(raw_query.split("&"))) if raw_query else ""
    canonical = "\n".join(
        [
            method,
            canonical_uri if canonical_uri is not None else raw_path,
            query,
            canonical_headers,
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = (
        "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + hashlib.sha256(canonical.encode()).hexdigest()
    )
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (
        f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    ordered = [(n, headers[n]) for n in headers] + [("authorization", auth)]
    url = f"http://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")
    return context_from(method, url, ordered, body)


def write_identities(path: Path, text: str = IDENTITIES_YAML) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)  # it holds plaintext secrets: openmwaa refuses it readable by others
