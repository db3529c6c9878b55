"""The pipeline's authenticator: SigV4 against the identity store, for the routed service."""

from __future__ import annotations

from collections.abc import Callable

from openmwaa.auth.credentials import CredentialLookup
from openmwaa.auth.sigv4 import is_presigned, verify_presigned, verify_request, verify_request_with_seed
from openmwaa.pipeline.context import RequestContext
from openmwaa.principal import Principal


class SigV4Authenticator:
    def __init__(
        self,
        *,
        region: str,
        credentials: CredentialLookup,
        clock: Callable[[], float],
        clock_skew: float,
        default_service: str = "airflow",
    ) -> None:
        self._region = region
        self._credentials = credentials
        self._clock = clock
        self._clock_skew = clock_skew
        self._default_service = default_service

    def authenticate(self, ctx: RequestContext) -> Principal:
        if ctx.service == "s3" and is_presigned(ctx):
            return verify_presigned(
                ctx,
                service="s3",
                region=self._region,
                credentials=self._credentials,
                now=self._clock(),
                clock_skew=self._clock_skew,
            )
        if ctx.service == "s3":
            # S3 signs its payload hash literally (UNSIGNED-PAYLOAD, STREAMING-*); an
            # aws-chunked body's chunk signatures chain from this request's signature.
            principal, ctx.signing_seed = verify_request_with_seed(
                ctx,
                service="s3",
                region=self._region,
                credentials=self._credentials,
                now=self._clock(),
                clock_skew=self._clock_skew,
                literal_payload_hashes=True,
            )
            return principal
        return verify_request(
            ctx,
            service=ctx.service or self._default_service,
            region=self._region,
            credentials=self._credentials,
            now=self._clock(),
            clock_skew=self._clock_skew,
        )
