"""A hand-written SigV4 signer for tests: every part of the signature is the caller's to choose.

botocore's signer always signs the way a well-behaved client does (now, its own region and
service). The fuzz tests need signatures that are right in every respect but one (an old
timestamp, another scope, a flipped character), so this one takes each input explicitly. It
signs over the request target exactly as httpx will send it (``httpx.URL.raw_path``), so what
the server verifies is what was signed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"


def amz_date(moment: float) -> str:
    return dt.datetime.fromtimestamp(int(moment), tz=dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(raw_query: str) -> str:
    if not raw_query:
        return ""
    return "&".join(f"{k}={v}" for k, v in sorted(p.partition("=")[::2] for p in raw_query.split("&")))


@dataclass
class Signing:
    """What goes into one signature (defaults: a correct one for ``airflow`` in ``us-east-1``)."""

    key_id: str
    secret: str
    timestamp: str
    region: str = "us-east-1"
    service: str = "airflow"
    scope_date: str | None = None  # None: the timestamp's date
    terminator: str = TERMINATOR
    #: Header names to sign besides host and x-amz-date (content-type is added for a body).
    extra_signed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def scope(self) -> str:
        return f"{self.scope_date or self.timestamp[:8]}/{self.region}/{self.service}/{self.terminator}"


def signature(signing: Signing, canonical_request: str) -> str:
    string_to_sign = "\n".join(
        [ALGORITHM, signing.timestamp, signing.scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{signing.secret}".encode(), signing.scope_date or signing.timestamp[:8])
    for part in (signing.region, signing.service, signing.terminator):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_request(
    method: str, raw_path: str, raw_query: str, headers: dict[str, str], *, signed: list[str], body: bytes
) -> str:
    lines = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    return "\n".join(
        [
            method,
            quote(raw_path, safe="/~"),
            _canonical_query(raw_query),
            lines,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def signed_request(
    client: httpx.Client,
    method: str,
    url: str,
    body: bytes,
    signing: Signing,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Request:
    """An httpx request carrying an ``Authorization`` header made from ``signing``."""
    request = client.build_request(method, url, content=body, headers=headers or {})
    target = request.url.raw_path.decode("ascii")
    raw_path, _, raw_query = target.partition("?")
    request.headers["x-amz-date"] = signing.timestamp
    lowered = {k.lower(): v for k, v in request.headers.items()}
    names = {"host", "x-amz-date", *signing.extra_signed}
    if body and "content-type" in lowered:
        names.add("content-type")
    signed = sorted(names)
    canonical = canonical_request(method, raw_path, raw_query, lowered, signed=signed, body=body)
    request.headers["authorization"] = (
        f"{ALGORITHM} Credential={signing.key_id}/{signing.scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={signature(signing, canonical)}"
    )
    return request


def presigned_url(url: str, signing: Signing, expires: int, host: str) -> str:
    """``url`` with query-string SigV4 (what boto3's ``generate_presigned_url`` makes), for GET."""
    parsed = httpx.URL(url)
    credential = quote(f"{signing.key_id}/{signing.scope}", safe="")
    params = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential),
        ("X-Amz-Date", signing.timestamp),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    existing = parsed.raw_path.decode().partition("?")[2]
    query = "&".join([q for q in [existing] if q] + [f"{k}={v}" for k, v in params])
    path = parsed.raw_path.decode().partition("?")[0]
    canonical = canonical_request("GET", path, query, {"host": host}, signed=["host"], body=b"").replace(
        hashlib.sha256(b"").hexdigest(), "UNSIGNED-PAYLOAD"
    )
    return f"{parsed.scheme}://{host}{path}?{query}&X-Amz-Signature={signature(signing, canonical)}"
