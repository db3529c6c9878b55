"""InvokeRestApi: an Airflow REST API call made as the Airflow role IAM grants the caller.

Which role: the caller may use every role ARN on which IAM allows ``airflow:InvokeRestApi``; the
call runs as the most privileged of them (Admin > Op > User > Viewer > Public). MWAA leaves the
choice undocumented; taking the most privileged allowed role is the natural reading of a policy
that grants several.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import orjson

from openmwaa.errors import (
    RestApiClientError,
    RestApiServerError,
    ThrottlingError,
    ValidationError,
)
from openmwaa.principal import Principal
from openmwaa.runtime.airflow_token import AIRFLOW_ROLES, AirflowTokenCache, airflow_username
from openmwaa.runtime.versions import major
from openmwaa.services.environments import SERVING_STATUSES, STARTING_STATUSES
from openmwaa.services.status_watch import StatusWatch
from openmwaa.services.throttle import RateLimiter
from openmwaa.store.environments import EnvironmentRecord
from openmwaa.strict_json import json_fragment
from openmwaa.upstream.balancer import Lease, retry_elsewhere
from openmwaa.upstream.client import Http1Client, UpstreamResponse
from openmwaa.upstream.errors import ResponseTooLarge, UpstreamError, UpstreamTimeout
from openmwaa.upstream.request import UpstreamRequest

NO_ROLE_MESSAGE = "No Airflow role granted in IAM."
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
#: A version-less REST path: segments of URL path characters, no dot segments, no query or fragment.
_PATH = re.compile(r"^(/[A-Za-z0-9\-._~!$&'()*+,;=:@%]+)+/?$")


class AirflowEndpoints(Protocol):
    def lease(self, key: str) -> Lease | None: ...

    def serving(self, key: str) -> bool:
        """Whether a web server of the environment answers now (in rotation)."""
        ...


class EnvironmentStatuses(Protocol):
    """Current records, and a watch woken whenever a status changes (``EnvironmentService``)."""

    @property
    def status_changes(self) -> StatusWatch: ...

    def get(self, name: str) -> EnvironmentRecord: ...


def role_arns(region: str, account_id: str, environment: str) -> list[str]:
    """The five role ARNs of an environment, most privileged first."""
    return [f"arn:aws:airflow:{region}:{account_id}:role/{environment}/{role}" for role in AIRFLOW_ROLES]


def role_of(role_arn: str) -> str:
    """``Admin`` for ``arn:aws:airflow:...:role/<environment>/Admin``."""
    role = role_arn.rsplit("/", 1)[-1]
    if role not in AIRFLOW_ROLES:
        raise ValueError(f"not an Airflow role ARN: {role_arn!r}")
    return role


def check_path(path: str) -> str:
    """The path below ``/api/vN``; anything that could leave the API root is refused."""
    decoded = path.replace("%2e", ".").replace("%2E", ".")
    segments = decoded.split("/")
    if not _PATH.match(path) or any(s in (".", "..") for s in segments) or "//" in path:
        raise ValidationError(
            f"Path {path!r} is not a valid Airflow REST API path: give a version-less path such as /dags"
        )
    return path


def encode_query(query: Any) -> str:
    """QueryParameters (a JSON object) -> a query string: booleans as true/false, lists repeated."""
    if query is None:
        return ""
    if not isinstance(query, Mapping):
        raise ValidationError("QueryParameters must be a JSON object of parameter names to values")
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if isinstance(item, bool):
                pairs.append((key, "true" if item else "false"))
            elif isinstance(item, (int, float, str)):
                pairs.append((key, str(item)))
            else:
                raise ValidationError(
                    f"QueryParameters.{key}: values must be strings, numbers, booleans or lists"
                )
    return urlencode(pairs)


class RestApiInvoker:
    def __init__(
        self,
        *,
        endpoints: AirflowEndpoints,
        environments: EnvironmentStatuses,
        client: Http1Client,
        timeout: float,
        limiter: RateLimiter,
        token_ttl: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._endpoints = endpoints
        self._environments = environments
        self._client = client
        self._timeout = timeout
        self._limiter = limiter
        self._token_ttl = token_ttl
        self._clock = clock
        # Held here and sent over loopback only, never to a caller: no jti to look up (see revocable).
        self._tokens = AirflowTokenCache(revocable=False)

    def admit(self, record: EnvironmentRecord, principal: Principal) -> Lease:
        """Check the environment can take the call and the caller is within its rate; a hold on the
        web server replica to send it to (release it once answered)."""
        if not self._serves(record):
            raise ValidationError(
                f"Environment {record.name} is {record.status}; InvokeRestApi needs it to be AVAILABLE."
            )
        if not self._limiter.try_acquire((str(record.key), principal.account_id)):
            raise ThrottlingError()
        return self._lease(record)

    def _lease(self, record: EnvironmentRecord) -> Lease:
        lease = self._endpoints.lease(str(record.key))
        if lease is None:
            raise ValidationError(
                f"Environment {record.name} has no running web server right now; try again shortly."
            )
        return lease

    async def invoke(
        self,
        *,
        record: EnvironmentRecord,
        principal: Principal,
        role: str,
        params: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Call Airflow as ``principal`` with ``role``, the Airflow role IAM allowed (the most
        privileged of them, see ``pipeline.authorization.first_allowed``)."""
        path = check_path(str(params["Path"]))
        query = encode_query(params.get("QueryParameters"))
        deadline = time.monotonic() + self._timeout
        record = await self._wait_while_starting(record, deadline)
        lease = self.admit(record, principal)
        body = params.get("Body")
        content = None if body is None else json.dumps(body).encode()
        response = await self._call(
            record,
            lease,
            username=airflow_username(principal.identity),
            role=role,
            method=str(params["Method"]),
            target=(path, query),
            content=content,
            deadline=deadline,
        )
        return _answer(response, embed=True)

    async def read(
        self, record: EnvironmentRecord, path: str, query: Mapping[str, Any], *, username: str, role: str
    ) -> Any:
        """A GET of Airflow's REST API for openmwaa itself (the dashboard), as ``username`` with
        ``role``: no IAM caller, so no per-caller throttle (the caller bounds its own load).

        Airflow's JSON answer; RestApiError when Airflow answers an error, ValidationError when
        the environment is not serving.
        """
        if record.status not in SERVING_STATUSES:
            raise ValidationError(f"Environment {record.name} is {record.status}.")
        deadline = time.monotonic() + self._timeout
        lease = self._lease(record)
        response = await self._call(
            record,
            lease,
            username=username,
            role=role,
            method="GET",
            target=(check_path(path), encode_query(query)),
            content=None,
            deadline=deadline,
        )
        return _answer(response, embed=False)["RestApiResponse"]

    async def _call(
        self,
        record: EnvironmentRecord,
        lease: Lease,
        *,
        username: str,
        role: str,
        method: str,
        target: tuple[str, str],
        content: bytes | None,
        deadline: float,
    ) -> UpstreamResponse:
        """Send one call to the leased replica as ``username``/``role`` (another replica if it is gone)."""
        airflow_major = major(str(record.config["AirflowVersion"]))
        try:
            token = self._tokens.token(
                major=airflow_major,
                jwt_secret=record.secrets["jwt_secret"],
                token_secret=record.secrets["token_secret"],
                username=username,
                role=role,
                ttl=self._token_ttl,
                now=self._clock() if self._clock else None,
            )
        except BaseException:
            lease.release()
            raise
        path, query = target
        url = f"/api/v{1 if airflow_major == 2 else 2}{quote(path, safe='/%:@!$&()*+,;=-._~')}"
        if query:
            url = f"{url}?{query}"
        headers = {"authorization": f"Bearer {token}", "accept": "application/json"}
        if content is not None:
            headers["content-type"] = "application/json"
        tried: set[str] = set()
        while True:
            tried.add(lease.url)
            host, _, port = lease.url.removeprefix("http://").rstrip("/").rpartition(":")
            request = UpstreamRequest(method, host, int(port), url, list(headers.items()), content)
            try:
                response = await self._send(request, timeout=deadline - time.monotonic())
            except _Unreachable as unreachable:
                # The replica died or left under this call: another one takes it, if there is one.
                lease.failed()
                following = (
                    self._endpoints.lease(str(record.key))
                    if retry_elsewhere(method, unreachable.cause)
                    else None
                )
                if following is None or following.url in tried:
                    if following is not None:
                        following.release()
                    raise unreachable.error from unreachable.cause
                lease = following
                continue
            except BaseException:
                lease.release()
                raise
            lease.release()
            return response

    def _serves(self, record: EnvironmentRecord) -> bool:
        """AVAILABLE (or UPDATE_FAILED, the previous configuration running), or UPDATING while a web
        server answers: an update restarts them one at a time, and calls are served throughout."""
        if record.status in SERVING_STATUSES:
            return True
        return record.status == "UPDATING" and self._endpoints.serving(str(record.key))

    async def _wait_while_starting(self, record: EnvironmentRecord, deadline: float) -> EnvironmentRecord:
        """The environment's record once it is no longer starting, or an update keeps a web server
        answering (the time it took counts towards the call's timeout): a call made while Airflow
        starts is served, not refused."""
        watch = self._environments.status_changes
        key = str(record.key)
        while True:
            seen = watch.generation(key)
            record = self._environments.get(record.name)  # read after the generation: no change missed
            if record.status not in STARTING_STATUSES or self._serves(record):
                return record
            if not await watch.wait(key, seen, deadline - time.monotonic()):
                raise ValidationError(
                    f"Environment {record.name} is still {record.status} after {self._timeout:g} s; "
                    "InvokeRestApi needs it to be AVAILABLE. Try again shortly."
                )

    async def _send(self, request: UpstreamRequest, *, timeout: float) -> UpstreamResponse:
        try:
            response = await self._client.request(request, timeout=timeout, max_body=MAX_RESPONSE_BYTES)
        except UpstreamTimeout as exc:
            raise RestApiServerError(
                f"The Airflow REST API did not answer within {self._timeout:g} seconds; "
                "the call was terminated.",
                504,
                {"title": "Gateway Timeout", "detail": "InvokeRestApi timed out", "status": 504},
            ) from exc
        except ResponseTooLarge as exc:
            raise RestApiServerError(
                "Airflow's response exceeds InvokeRestApi's 6 MB limit; request less (e.g. limit/offset).",
                502,
                {"title": "Response too large", "status": 502},
            ) from exc
        except UpstreamError as exc:
            error = RestApiServerError(
                "The environment's Airflow web server could not be reached.",
                502,
                {"title": "Bad Gateway", "detail": type(exc).__name__, "status": 502},
            )
            raise _Unreachable(error, exc) from exc
        return response


class _Unreachable(Exception):
    """The replica could not be reached: the error to give the caller unless another replica can."""

    def __init__(self, error: RestApiServerError, cause: UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause


def _answer(response: UpstreamResponse, *, embed: bool) -> dict[str, Any]:
    """InvokeRestApi's output for Airflow's answer; RestApiError for an error status.

    ``embed``: a successful answer that is a valid JSON object or array goes into the output as
    its own bytes (validated, never decoded): the output is written straight to the wire. The
    dashboard reads the document itself, so it gets it decoded.
    """
    status = response.status
    if status < 400:
        fragment = json_fragment(response.body) if embed else None
        payload = fragment if fragment is not None else _decode(response.body)
        return {"RestApiStatusCode": status, "RestApiResponse": payload}
    payload = _decode(response.body)
    if status < 500:
        raise RestApiClientError(f"Airflow answered {status}.", status, payload)
    raise RestApiServerError(f"Airflow answered {status}.", status, payload)


def _decode(body: bytes) -> Any:
    """Airflow's answer as JSON (strict: NaN or invalid UTF-8 is not JSON), else as text.

    orjson, not json: on ``/dags?limit=100`` (90 kB) json's decode and the output's encode were
    most of what InvokeRestApi added to Airflow's own time (benchmarks/bench_invoke_rest_api.py).
    """
    if not body:
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")
