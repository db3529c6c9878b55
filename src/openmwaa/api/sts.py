"""STS on the openmwaa endpoint: AssumeRole and GetCallerIdentity.

AssumeRole needs both halves: the caller's identity policies must allow ``sts:AssumeRole``
on the role ARN (checked by the injected ``authorize`` callback) and the role's trust policy
must allow the caller. (AWS also lets a trust policy that names the caller directly stand
alone within one account; openmwaa asks for both, which only ever denies more.) A role that
does not exist answers exactly like a denied one, so callers cannot probe for role names.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from anyio.to_thread import run_sync

from openmwaa.auth.identities import IdentityStore, session_principal
from openmwaa.auth.sts_sessions import StsSessionStore
from openmwaa.errors import AccessDeniedError, UnknownOperationError, ValidationError
from openmwaa.iam import Decision
from openmwaa.iam.engine import evaluate_trust
from openmwaa.pipeline.authorization import authorize, record_decision
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.response import Response
from openmwaa.principal import Principal
from openmwaa.wire.sts import API_VERSION, parse_params, result_response

#: ``authorize(principal, action, resource)``: raises AccessDeniedError unless allowed.
Authorize = Callable[[Principal, str, str], None]
#: Told of a trust policy's denial (``role_arn``, decision), for the audit trail.
TrustDenied = Callable[[str, Decision], None]

ROLE_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)
MIN_DURATION, DEFAULT_DURATION, CHAINED_MAX_DURATION = 900, 3600, 3600
ARN_MAX = 2048
#: Parameters that would narrow or change a session in ways openmwaa does not implement.
#: Ignoring them would hand out more than was asked for, so they are refused.
_UNSUPPORTED = ("Policy", "PolicyArns", "SerialNumber", "TokenCode", "ProvidedContexts", "Tags")
_ASSUME_ROLE_PARAMS = {"Action", "Version", "RoleArn", "RoleSessionName", "DurationSeconds", "ExternalId"}
_ASSUME_ROLE_PARAMS |= {"SourceIdentity", "TransitiveTagKeys", "MinimumSessionTokenSize"}


class StsService:
    """The STS operations, independent of the wire format."""

    def __init__(self, identities: IdentityStore, sessions: StsSessionStore, *, account_id: str) -> None:
        self.identities = identities
        self.sessions = sessions
        self.account_id = account_id

    def get_caller_identity(self, principal: Principal) -> dict[str, Any]:
        # Needs no permission, as in AWS: the answer only tells callers who they are.
        return {"UserId": principal.user_id, "Account": principal.account_id, "Arn": principal.arn}

    def assume_role(
        self,
        principal: Principal,
        params: Mapping[str, str],
        *,
        authorize: Authorize,
        now: float,
        on_trust_denied: TrustDenied | None = None,
    ) -> dict[str, Any]:
        role_arn = _required(params, "RoleArn")
        if not 20 <= len(role_arn) <= ARN_MAX:
            raise ValidationError("RoleArn must be 20 to 2048 characters")
        session_name = _required(params, "RoleSessionName")
        if not ROLE_SESSION_NAME.fullmatch(session_name):
            raise ValidationError(
                f"1 validation error detected: Value '{session_name[:64]}' at 'roleSessionName' "
                "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                "[\\w+=,.@-]* and length 2 to 64"
            )
        for name in _UNSUPPORTED:
            if any(key == name or key.startswith(name + ".") for key in params):
                raise ValidationError(f"openmwaa does not support the AssumeRole parameter {name}")
        external_id = params.get("ExternalId")
        if external_id is not None and not EXTERNAL_ID.fullmatch(external_id):
            raise ValidationError("ExternalId must be 2 to 1224 characters of letters, digits and +=,.@:/-")

        denied = AccessDeniedError(
            f"User: {principal.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        )
        authorize(principal, "sts:AssumeRole", role_arn)
        role = self.identities.role_by_arn(role_arn)
        if role is None:
            raise denied
        context: dict[str, str] = {
            "aws:PrincipalArn": principal.arn,
            "aws:PrincipalAccount": principal.account_id,
            "aws:userid": principal.user_id,
            "aws:PrincipalType": "AssumedRole" if principal.kind == "assumed-role" else "User",
            "sts:RoleSessionName": session_name,
        }
        if principal.kind == "user":
            context["aws:username"] = principal.name
        if external_id is not None:
            context["sts:ExternalId"] = external_id
        decision = evaluate_trust(
            role.trust_policy,
            principal_arn=principal.arn,
            principal_account=principal.account_id,
            action="sts:AssumeRole",
            context=context,
        )
        if not decision.allowed:
            if on_trust_denied is not None:
                on_trust_denied(role_arn, decision)
            raise denied

        duration = _duration(params, role.max_session_duration, chained=principal.kind == "assumed-role")
        issued = self.sessions.issue(
            role_name=role.name,
            session_name=session_name,
            source_arn=principal.arn,
            duration=duration,
            now=now,
        )
        assumed = session_principal(role, issued.session, self.account_id)
        return {
            "Credentials": {
                "AccessKeyId": issued.session.access_key_id,
                "SecretAccessKey": issued.session.secret_access_key,
                "SessionToken": issued.session_token,
                "Expiration": dt.datetime.fromtimestamp(int(issued.session.expires_at), tz=dt.timezone.utc),
            },
            "AssumedRoleUser": {"AssumedRoleId": assumed.user_id, "Arn": assumed.arn},
        }


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise ValidationError(
            f"1 validation error detected: Value null at '{name[0].lower()}{name[1:]}' failed to "
            "satisfy constraint: Member must not be null"
        )
    return value


def _duration(params: Mapping[str, str], role_max: int, *, chained: bool) -> int:
    raw = params.get("DurationSeconds")
    if raw is None:
        return DEFAULT_DURATION  # within every role's maximum, and the chaining limit
    if not raw.isdigit() or len(raw) > 6:
        raise ValidationError("DurationSeconds must be a whole number of seconds")
    duration = int(raw)
    limit = min(role_max, CHAINED_MAX_DURATION) if chained else role_max
    if not MIN_DURATION <= duration <= limit:
        raise ValidationError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            if duration > limit
            else f"DurationSeconds must be at least {MIN_DURATION}"
        )
    return duration


def make_sts_handler(
    service: StsService, *, authorizer: Authorizer, clock: Callable[[], float]
) -> Callable[[RequestContext], Awaitable[Response]]:
    """The pipeline's STS step: ``ctx.principal`` must already be set by SigV4 (scope ``sts``).

    The identity-policy check of AssumeRole sees the principal's condition keys only; its
    decision, and a trust policy's denial, are recorded on the request for the audit trail.

    Errors are raised as OpenMwaaError; the pipeline must serialize them with
    :func:`openmwaa.wire.sts.error_response` when ``ctx.service == "sts"``.
    """

    async def handle(ctx: RequestContext) -> Response:
        params = parse_params(ctx.body)
        action = params.get("Action", "")
        ctx.operation = action or None
        if params.get("Version") != API_VERSION:
            raise ValidationError(f"Version must be {API_VERSION}")
        principal = ctx.principal
        if principal is None:  # the pipeline authenticates before this step
            raise AccessDeniedError("The request was not authenticated")
        if action == "GetCallerIdentity":
            _only(params, {"Action", "Version"})
            ctx.action, ctx.resource = "sts:GetCallerIdentity", principal.arn
            return Response.from_wire(
                result_response(action, service.get_caller_identity(principal), ctx.request_id)
            )
        if action == "AssumeRole":
            _only(params, _ASSUME_ROLE_PARAMS | set(_UNSUPPORTED))
            ctx.action, ctx.resource = "sts:AssumeRole", params.get("RoleArn")

            def check(caller: Principal, action: str, resource: str) -> None:
                keys = {"aws:PrincipalArn": caller.arn, "aws:PrincipalAccount": caller.account_id}
                authorize(authorizer, ctx, action, resource, keys)

            def trust_denied(role_arn: str, decision: Decision) -> None:
                record_decision(ctx, "sts:AssumeRole", role_arn, decision)

            # Off the event loop: issuing a session encrypts its secret and appends to the
            # sessions journal with an fsync.
            result = await run_sync(
                functools.partial(
                    service.assume_role,
                    principal,
                    params,
                    authorize=check,
                    now=clock(),
                    on_trust_denied=trust_denied,
                )
            )
            return Response.from_wire(result_response(action, result, ctx.request_id))
        raise UnknownOperationError(f"Could not find operation {action[:64]} for version {API_VERSION}")

    return handle


def _only(params: Mapping[str, str], allowed: set[str]) -> None:
    for key in params:
        if key not in allowed and key.split(".")[0] not in allowed:
            raise ValidationError(f"Unknown parameter {key[:64]!r}")
