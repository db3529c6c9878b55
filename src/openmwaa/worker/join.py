"""The JoinWorkerPool call, as a worker on another machine makes it: SigV4-signed, over HTTPS.

Credentials come from botocore's standard chain (environment variables, ``AWS_PROFILE`` and the
shared files, SSO, container and instance roles). The request is signed for the ``openmwaa``
service; the grant comes back in the response body, never in a URL.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openmwaa.errors import OpenMwaaError, ValidationError
from openmwaa.pipeline.transport import is_loopback
from openmwaa.wire.worker_pool import PATH_PREFIX, SIGNING_SERVICE, WorkerPoolGrant

TIMEOUT_SECONDS = 60.0


class JoinRefusedError(OpenMwaaError):
    """openmwaa refused the join; ``code`` is its error code (AccessDeniedException, ...)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.remote_code = code
        self.remote_status = status


@dataclass(frozen=True)
class Endpoint:
    """openmwaa's endpoint as the worker reaches it, and the CA bundle to verify it with."""

    url: str
    #: A CA bundle (PEM) to trust; None: the system's (certifi's) roots.
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
            raise ValidationError(f"--endpoint {self.url!r} must be https://HOST[:PORT] (nothing after it)")
        if parts.scheme == "http" and not _loopback_host(parts.hostname):
            raise ValidationError(
                f"--endpoint {self.url!r}: plain HTTP would carry the environment's secrets in the clear; "
                "use openmwaa's HTTPS listener (OPENMWAA_TLS_PORT)"
            )

    @property
    def base(self) -> str:
        return self.url.rstrip("/")

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx verifies the endpoint with."""
        return ssl.create_default_context(cafile=self.ca_bundle) if self.ca_bundle else True


def join_pool(
    endpoint: Endpoint,
    environment: str,
    *,
    credentials: Credentials,
    region: str,
    worker_name: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> WorkerPoolGrant:
    """Ask openmwaa for environment ``environment``'s worker pool grant."""
    url = f"{endpoint.base}{PATH_PREFIX}{environment}"
    body = json.dumps({"WorkerName": worker_name} if worker_name else {}).encode()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials, SIGNING_SERVICE, region).add_auth(request)
    headers = dict(request.headers.items())
    with httpx.Client(verify=endpoint.verify, timeout=TIMEOUT_SECONDS, transport=transport) as client:
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ValidationError(f"Cannot reach openmwaa at {endpoint.base}: {exc}") from exc
    if response.status_code != 200:
        code, message = _error(response)
        raise JoinRefusedError(code, message, response.status_code)
    return WorkerPoolGrant.from_json(response.content)


def _error(response: httpx.Response) -> tuple[str, str]:
    code = response.headers.get("x-amzn-errortype") or f"HTTP {response.status_code}"
    try:
        body = response.json()
        message = str(body.get("message") or body.get("Message") or "")
    except ValueError:
        message = response.text[:300]
    return code.split(":", 1)[0], message


def _loopback_host(host: str) -> bool:
    return host == "localhost" or is_loopback(host)
