"""AWS Signature Version 4 verification (header-based ``AWS4-HMAC-SHA256`` only).

The server recomputes the signature from the request exactly as received: the raw path
(never a decoded one), the raw query pairs, the signed headers, and a payload hash it
computes itself. Everything the client sends is parsed strictly and bounded before any
work is done, and the final comparison is constant-time.

A retry within the same second repeats the signature byte for byte; that is not a replay
(SigV4 has no nonce) and verifies like the first attempt.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from openmwaa.auth.credentials import CredentialLookup
from openmwaa.errors import (
    IncompleteSignatureError,
    InvalidSignatureError,
    MissingAuthenticationTokenError,
)
from openmwaa.pipeline.context import RequestContext, SigningSeed
from openmwaa.principal import Principal

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

MAX_AUTHORIZATION_CHARS = 4096
MAX_SIGNED_HEADERS = 64
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_]{16,128}")
_SCOPE_DATE = re.compile(r"\d{8}")
_SCOPE_NAME = re.compile(r"[a-z0-9-]{1,64}")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]{1,128}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_PARTS = ("Credential", "SignedHeaders", "Signature")


#: ``x-amz-content-sha256`` values S3 signs literally instead of the body's hash.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
STREAMING_PAYLOADS = (
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
)


@dataclass(frozen=True)
class ParsedAuthorization:
    """The three components of an ``AWS4-HMAC-SHA256`` Authorization header, validated."""

    access_key_id: str
    scope_date: str
    scope_region: str
    scope_service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def credential_scope(self) -> str:
        return f"{self.scope_date}/{self.scope_region}/{self.scope_service}/{TERMINATOR}"


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` strictly."""
    if len(value) > MAX_AUTHORIZATION_CHARS:
        raise IncompleteSignatureError("Authorization header is too long.")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureError(
            f"Unsupported AWS 'algorithm': only '{ALGORITHM}' header-based signing is supported."
        )
    found: dict[str, str] = {}
    for raw_part in rest.split(","):
        key, eq, part_value = raw_part.strip().partition("=")
        if not eq or key not in _PARTS:
            raise IncompleteSignatureError(
                f"'{raw_part.strip()[:40]}' is not a valid Authorization component."
            )
        if key in found:
            raise IncompleteSignatureError(f"Authorization header has more than one '{key}' parameter.")
        found[key] = part_value
    missing = [f"Authorization header requires '{p}' parameter." for p in _PARTS if not found.get(p)]
    if missing:
        raise IncompleteSignatureError(" ".join(missing))
    access_key_id, date, region, service = _parse_credential(found["Credential"])
    return ParsedAuthorization(
        access_key_id=access_key_id,
        scope_date=date,
        scope_region=region,
        scope_service=service,
        signed_headers=_parse_signed_headers(found["SignedHeaders"]),
        signature=_parse_signature(found["Signature"]),
    )


def _parse_credential(value: str) -> tuple[str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureError(
            f"Credential should be of the form <access key>/<date>/<region>/<service>/{TERMINATOR}."
        )
    access_key_id, date, region, service, terminator = parts
    if not _ACCESS_KEY_ID.fullmatch(access_key_id):
        raise IncompleteSignatureError("Credential has a malformed access key id.")
    if not _SCOPE_DATE.fullmatch(date):
        raise IncompleteSignatureError("Credential scope date must be of the form YYYYMMDD.")
    if not _SCOPE_NAME.fullmatch(region) or not _SCOPE_NAME.fullmatch(service):
        raise IncompleteSignatureError("Credential scope has a malformed region or service.")
    if terminator != TERMINATOR:
        raise IncompleteSignatureError(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator[:40]}'."
        )
    return access_key_id, date, region, service


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if len(names) > MAX_SIGNED_HEADERS:
        raise IncompleteSignatureError("SignedHeaders lists too many headers.")
    for name in names:
        if not _HEADER_NAME.fullmatch(name):
            raise IncompleteSignatureError("SignedHeaders must be lower-case header names separated by ';'.")
    if list(names) != sorted(set(names)):
        raise IncompleteSignatureError("SignedHeaders must be sorted and must not repeat a header.")
    return names


def _parse_signature(value: str) -> str:
    if not _SIGNATURE.fullmatch(value):
        raise IncompleteSignatureError("Signature must be 64 lower-case hexadecimal characters.")
    return value


def request_timestamp(ctx: RequestContext) -> tuple[str, str]:
    """``(header name, timestamp as YYYYMMDDTHHMMSSZ)`` from ``x-amz-date`` or else ``date``."""
    amz_date = _single_header(ctx, "x-amz-date")
    if amz_date is not None:
        if not _AMZ_DATE.fullmatch(amz_date):
            raise IncompleteSignatureError(
                f"X-Amz-Date must be in the ISO8601 basic format ({AMZ_DATE_FORMAT})."
            )
        try:
            amz_timestamp(amz_date)
        except ValueError as exc:
            raise IncompleteSignatureError("X-Amz-Date is not a valid date.") from exc
        return "x-amz-date", amz_date
    http_date = _single_header(ctx, "date")
    if http_date is not None:
        try:
            parsed = parsedate_to_datetime(http_date[:64])
        except (TypeError, ValueError) as exc:
            raise IncompleteSignatureError("Date header is not a valid HTTP date.") from exc
        if parsed.tzinfo is None:  # "-0000" (botocore's formatdate): UTC, says RFC 2822
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return "date", parsed.astimezone(dt.timezone.utc).strftime(AMZ_DATE_FORMAT)
    raise IncompleteSignatureError(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def _single_header(ctx: RequestContext, name: str) -> str | None:
    values = [v for k, v in ctx.headers if k == name]
    if len(values) > 1:
        raise IncompleteSignatureError(f"The request has more than one '{name}' header.")
    return values[0] if values else None


def amz_timestamp(value: str) -> float:
    """``YYYYMMDDTHHMMSSZ`` (already matched by ``_AMZ_DATE``) -> epoch seconds; ValueError if no such time.

    Hand-parsed: ``strptime`` was the largest single cost of verifying a request.
    """
    moment = dt.datetime(
        int(value[0:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[9:11]),
        int(value[11:13]),
        int(value[13:15]),
        tzinfo=dt.timezone.utc,
    )
    return moment.timestamp()


def check_clock_skew(timestamp: str, now: float, clock_skew: float) -> None:
    """Raise InvalidSignatureError (in AWS's words) when ``timestamp`` is outside now ± skew."""
    signed_at = amz_timestamp(timestamp)
    minutes = f"{clock_skew / 60:g} min."
    if signed_at < now - clock_skew:
        raise InvalidSignatureError(
            f"Signature expired: {timestamp} is now earlier than {_format(now - clock_skew)} "
            f"({_format(now)} - {minutes})"
        )
    if signed_at > now + clock_skew:
        raise InvalidSignatureError(
            f"Signature not yet current: {timestamp} is still later than {_format(now + clock_skew)} "
            f"({_format(now)} + {minutes})"
        )


def _format(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.timezone.utc).strftime(AMZ_DATE_FORMAT)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 on the raw path; empty segments go too, as AWS services expect."""
    if not path:
        return "/"
    output: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    leading = "/" if path.startswith("/") else ""
    trailing = "/" if path.endswith("/") and output else ""
    return leading + "/".join(output) + trailing


def canonical_uri(raw_path: str) -> str:
    """The raw path, dot segments removed, percent-encoded once more (``%3A`` -> ``%253A``)."""
    return quote(remove_dot_segments(raw_path), safe="/~")


def canonical_query(raw_query: str) -> str:
    """Raw ``k=v`` pairs split on ``&`` and the first ``=``, sorted, not re-encoded."""
    if not raw_query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in raw_query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)


def canonical_headers(ctx: RequestContext, signed_headers: tuple[str, ...]) -> str:
    """``name:value\\n`` for each signed header; repeated headers joined with ``,``."""
    lines = []
    for name in signed_headers:
        values = [" ".join(value.split()) for key, value in ctx.headers if key == name]
        if not values:
            raise IncompleteSignatureError(f"'{name}' is listed in SignedHeaders but is not in the request.")
        lines.append(f"{name}:{','.join(values)}\n")
    return "".join(lines)


def canonical_request(
    ctx: RequestContext, signed_headers: tuple[str, ...], payload_hash: str, *, raw_uri: bool = False
) -> str:
    """``raw_uri``: S3 signs the path as sent (no dot segments removed, not encoded again)."""
    return "\n".join(
        [
            ctx.method.upper(),
            (ctx.raw_path or "/") if raw_uri else canonical_uri(ctx.raw_path),
            canonical_query(ctx.raw_query),
            canonical_headers(ctx, signed_headers),
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


@functools.lru_cache(maxsize=512)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """``AWS4``+secret -> date -> region -> service -> ``aws4_request`` (cached: one per key and day)."""
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def compute_signature(secret: str, timestamp: str, parsed: ParsedAuthorization, canonical: str) -> str:
    key = signing_key(secret, parsed.scope_date, parsed.scope_region, parsed.scope_service)
    message = string_to_sign(timestamp, parsed.credential_scope, canonical)
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_request(
    ctx: RequestContext,
    *,
    service: str,
    region: str,
    credentials: CredentialLookup,
    now: float,
    clock_skew: float,
) -> Principal:
    """Verify ``ctx``'s SigV4 signature for ``service`` in ``region``; return who signed it."""
    principal, _ = verify_request_with_seed(
        ctx, service=service, region=region, credentials=credentials, now=now, clock_skew=clock_skew
    )
    return principal


def verify_request_with_seed(
    ctx: RequestContext,
    *,
    service: str,
    region: str,
    credentials: CredentialLookup,
    now: float,
    clock_skew: float,
    literal_payload_hashes: bool = False,
) -> tuple[Principal, SigningSeed]:
    """:func:`verify_request`, also returning what chunk signatures chain from.

    ``literal_payload_hashes`` (S3's rules): the path is signed as sent; ``x-amz-content-sha256``
    is required, and its ``UNSIGNED-PAYLOAD``/``STREAMING-*`` values are signed as they are (the body is then
    checked by its checksums or chunk signatures, not here).
    """
    authorizations = [v for k, v in ctx.headers if k == "authorization"]
    if not authorizations:
        raise MissingAuthenticationTokenError()
    if len(authorizations) > 1:
        raise IncompleteSignatureError("The request has more than one Authorization header.")
    parsed = parse_authorization(authorizations[0])
    date_header, timestamp = request_timestamp(ctx)
    _check_signed_header_set(ctx, parsed, date_header)
    if parsed.scope_service != service:
        raise InvalidSignatureError(f"Credential should be scoped to correct service: '{service}'.")
    if parsed.scope_region != region:
        raise InvalidSignatureError(
            f"Credential should be scoped to a valid region, not '{parsed.scope_region}'. "
            f"This endpoint serves '{region}'."
        )
    if parsed.scope_date != timestamp[:8]:
        raise InvalidSignatureError(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{parsed.scope_date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    check_clock_skew(timestamp, now, clock_skew)
    session_token = _single_header(ctx, "x-amz-security-token")
    resolved = credentials.lookup(parsed.access_key_id, session_token, now)
    claimed_hash = _single_header(ctx, "x-amz-content-sha256")
    if literal_payload_hashes and claimed_hash is None:
        raise InvalidSignatureError("Missing required header for this request: x-amz-content-sha256")
    if (
        literal_payload_hashes
        and claimed_hash is not None
        and claimed_hash in (UNSIGNED_PAYLOAD, *STREAMING_PAYLOADS)
    ):
        payload_hash = claimed_hash
    elif literal_payload_hashes and ctx.body_stream is not None:
        # An upload streamed to disk: signed with the hash it claims, which the upload checks
        # against the body once it has arrived (XAmzContentSHA256Mismatch, nothing stored).
        if claimed_hash is None or not _HEX_SHA256.fullmatch(claimed_hash):
            raise InvalidSignatureError(
                "x-amz-content-sha256 must be the payload's hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-*."
            )
        payload_hash = claimed_hash
    else:
        payload_hash = hashlib.sha256(ctx.body).hexdigest()
    if "x-amz-content-sha256" in parsed.signed_headers:
        claimed = _single_header(ctx, "x-amz-content-sha256") or ""
        if not hmac.compare_digest(claimed.encode(), payload_hash.encode()):
            raise InvalidSignatureError("The provided 'x-amz-content-sha256' header does not match the body.")
    canonical = canonical_request(ctx, parsed.signed_headers, payload_hash, raw_uri=literal_payload_hashes)
    expected = compute_signature(resolved.secret_access_key, timestamp, parsed, canonical)
    if not hmac.compare_digest(expected.encode("ascii"), parsed.signature.encode("ascii")):
        raise InvalidSignatureError(MISMATCH_MESSAGE)
    key = signing_key(
        resolved.secret_access_key, parsed.scope_date, parsed.scope_region, parsed.scope_service
    )
    return resolved.principal, SigningSeed(key, timestamp, parsed.credential_scope, expected)


def _check_signed_header_set(ctx: RequestContext, parsed: ParsedAuthorization, date_header: str) -> None:
    """Headers an attacker could otherwise change freely must be covered by the signature."""
    signed = set(parsed.signed_headers)
    if "host" not in signed:
        raise IncompleteSignatureError("'Host' must be a signed header.")
    if date_header not in signed:
        raise IncompleteSignatureError(f"'{date_header}' must be a signed header.")
    if ctx.header("x-amz-security-token") is not None and "x-amz-security-token" not in signed:
        raise IncompleteSignatureError("'X-Amz-Security-Token' must be a signed header.")


#: A pre-signed URL is valid for at most seven days, as in S3.
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600
_PRESIGNED_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


def is_presigned(ctx: RequestContext) -> bool:
    return not ctx.header("authorization") and "X-Amz-Signature=" in ctx.raw_query


def verify_presigned(
    ctx: RequestContext,
    *,
    service: str,
    region: str,
    credentials: CredentialLookup,
    now: float,
    clock_skew: float,
    payload_hash: str = UNSIGNED_PAYLOAD,
) -> Principal:
    """A pre-signed URL: SigV4 in the query string, path as sent. The payload is signed as
    ``UNSIGNED-PAYLOAD`` by S3's pre-signer, as the empty body's hash by other services'
    (``payload_hash``)."""
    params: dict[str, str] = {}
    for pair in ctx.raw_query.split("&"):
        name, _, value = pair.partition("=")
        if name.startswith("X-Amz-"):
            if name in params:
                raise IncompleteSignatureError(f"The query string has more than one '{name}'.")
            params[name] = unquote(value)
    missing = [p for p in (*_PRESIGNED_PARAMS, "X-Amz-Expires") if not params.get(p)]
    if missing:
        raise IncompleteSignatureError(f"Query-string authentication requires the {missing[0]} parameter.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignatureError(f"X-Amz-Algorithm only supports '{ALGORITHM}'.")
    access_key_id, date, scope_region, scope_service = _parse_credential(params["X-Amz-Credential"])
    parsed = ParsedAuthorization(
        access_key_id=access_key_id,
        scope_date=date,
        scope_region=scope_region,
        scope_service=scope_service,
        signed_headers=_parse_signed_headers(params["X-Amz-SignedHeaders"]),
        signature=_parse_signature(params["X-Amz-Signature"]),
    )
    timestamp = params["X-Amz-Date"]
    expires = params["X-Amz-Expires"]
    if not _AMZ_DATE.fullmatch(timestamp) or not expires.isdigit() or len(expires) > 7:
        raise IncompleteSignatureError("X-Amz-Date or X-Amz-Expires is malformed.")
    if int(expires) > MAX_PRESIGNED_EXPIRES:
        raise IncompleteSignatureError("X-Amz-Expires must be less than a week (in seconds).")
    if "host" not in parsed.signed_headers:
        raise IncompleteSignatureError("'Host' must be a signed header.")
    if scope_service != service or scope_region != region or date != timestamp[:8]:
        raise InvalidSignatureError(f"The credential scope must be <date>/{region}/{service}/{TERMINATOR}.")
    try:
        signed_at = amz_timestamp(timestamp)
    except ValueError as exc:
        raise IncompleteSignatureError("X-Amz-Date is not a valid date.") from exc
    if now > signed_at + int(expires):
        raise InvalidSignatureError("Request has expired")
    if signed_at > now + clock_skew:
        raise InvalidSignatureError("Request is not yet valid (X-Amz-Date is in the future)")
    token = params.get("X-Amz-Security-Token")
    resolved = credentials.lookup(parsed.access_key_id, token, now)
    query = "&".join(p for p in ctx.raw_query.split("&") if not p.startswith("X-Amz-Signature="))
    canonical = "\n".join(
        [
            ctx.method.upper(),
            ctx.raw_path or "/",
            canonical_query(query),
            canonical_headers(ctx, parsed.signed_headers),
            ";".join(parsed.signed_headers),
            payload_hash,
        ]
    )
    expected = compute_signature(resolved.secret_access_key, timestamp, parsed, canonical)
    if not hmac.compare_digest(expected.encode("ascii"), parsed.signature.encode("ascii")):
        raise InvalidSignatureError(MISMATCH_MESSAGE)
    return resolved.principal
