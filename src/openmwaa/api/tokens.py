"""CreateWebLoginToken and CreateCliToken.

CreateWebLoginToken is authorized like InvokeRestApi, on the environment's five role ARNs: the
session gets the most privileged role IAM allows (``pipeline.authorization.first_allowed``
over ``services.invoke.role_arns``, most privileged first), and
none allowed is ``AccessDeniedException: No Airflow role granted in IAM.``. CreateCliToken is
authorized by the pipeline on the environment ARN. Both need the environment AVAILABLE and make
sure its web endpoint is running before naming it in ``WebServerHostname``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from anyio.to_thread import run_sync

from openmwaa.errors import AccessDeniedError, ValidationError
from openmwaa.pipeline.authorization import first_allowed
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.pipeline.steps import Operation
from openmwaa.runtime.airflow_token import airflow_username
from openmwaa.services.environments import SERVING_STATUSES, EnvironmentService
from openmwaa.services.invoke import NO_ROLE_MESSAGE, role_arns, role_of
from openmwaa.services.web_tokens import WebTokenService
from openmwaa.store.environments import EnvironmentRecord


class WebEndpoints(Protocol):
    def ensure(self, record: EnvironmentRecord) -> str:
        """Start the environment's web endpoint if needed; its ``WebServerHostname``."""


def _require_available(record: EnvironmentRecord, operation: str) -> None:
    if record.status not in SERVING_STATUSES:
        raise ValidationError(
            f"Environment {record.name} is {record.status}; {operation} needs it to be AVAILABLE."
        )


def operations(
    service: EnvironmentService,
    tokens: WebTokenService,
    endpoints: WebEndpoints,
    authorizer: Authorizer,
    condition_context: Callable[[RequestContext], Mapping[str, Any]],
    *,
    region: str,
    account_id: str,
) -> dict[str, Operation]:
    async def create_web_login_token(ctx: RequestContext) -> Mapping[str, Any]:
        assert ctx.principal is not None
        name = str(ctx.params["Name"])
        allowed = first_allowed(
            authorizer,
            ctx,
            "airflow:CreateWebLoginToken",
            role_arns(region, account_id, name),
            condition_context(ctx),
        )
        if allowed is None:  # before the lookup: a caller granted no role learns nothing more
            raise AccessDeniedError(NO_ROLE_MESSAGE)
        role = role_of(allowed)
        record = await run_sync(service.get, name)
        _require_available(record, "CreateWebLoginToken")
        hostname = await run_sync(endpoints.ensure, record)
        identity = ctx.principal.identity
        return {
            "WebToken": tokens.issue_web_token(environment_arn=record.arn, identity=identity, role=role),
            "WebServerHostname": hostname,
            "IamIdentity": identity,
            "AirflowIdentity": airflow_username(identity),
        }

    async def create_cli_token(ctx: RequestContext) -> Mapping[str, Any]:
        assert ctx.principal is not None
        record = await run_sync(service.get, str(ctx.params["Name"]))
        _require_available(record, "CreateCliToken")
        hostname = await run_sync(endpoints.ensure, record)
        token = tokens.issue_cli_token(environment_arn=record.arn, identity=ctx.principal.identity)
        return {"CliToken": token, "WebServerHostname": hostname}

    def environment_arn(params: Mapping[str, Any]) -> str:
        return f"arn:aws:airflow:{region}:{account_id}:environment/{params['Name']}"

    return {
        "CreateWebLoginToken": Operation(create_web_login_token, None),
        "CreateCliToken": Operation(create_cli_token, environment_arn),
    }
