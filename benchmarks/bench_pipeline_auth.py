"""Authenticated + authorized requests per second through the real request pipeline.

The pipeline is the one ``app.create_app`` declares (routing on botocore's model, SigV4 against
the identity store, input validation, IAM authorization, dispatch, audit finisher) with a
trivial GetEnvironment handler, driven in one thread (one core). Requests are signed by
botocore beforehand; the timed loop is the server side only.

Rows: a baseline pipeline with authentication and authorization removed, a principal with a
5-statement policy, and one with 1,000 statements (999 for other actions). Ratios are against the
baseline measured in the same run. Target: >= 5,000/s on the small set; the 1,000-statement
principal must not be linearly slower.

    .venv/bin/python benchmarks/bench_pipeline_auth.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openmwaa.auth.authenticator import SigV4Authenticator
from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.sts_sessions import StsSessionStore
from openmwaa.pipeline.chain import Pipeline
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.finishers import audit_to
from openmwaa.pipeline.response import Response
from openmwaa.pipeline.steps import Authenticate, Authorize, Dispatch, Operation, ParseInput, RouteRequest
from openmwaa.services.authorization import IamAuthorizer, VpcMap, condition_context
from openmwaa.store.audit import AuditLog
from openmwaa.store.db import open_engine
from openmwaa.wire.error_response import serialize_error
from openmwaa.wire.model import MwaaWire

REGION, ACCOUNT = "us-east-1", "123456789012"
ENV_ARN = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/bench"


def small_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Get", "Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": ENV_ARN},
            {"Sid": "List", "Effect": "Allow", "Action": "airflow:ListEnvironments", "Resource": "*"},
            {"Sid": "Invoke", "Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": "*"},
            {"Sid": "NoDelete", "Effect": "Deny", "Action": "airflow:DeleteEnvironment", "Resource": "*"},
            {
                "Sid": "Net",
                "Effect": "Allow",
                "Action": "airflow:UpdateEnvironment",
                "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
            },
        ],
    }


def large_policies() -> list[dict[str, Any]]:
    statements = [
        {
            "Sid": f"Other{i}",
            "Effect": "Allow",
            "Action": f"s3:GetObject{i}",
            "Resource": f"arn:aws:s3:::b{i}/*",
        }
        for i in range(999)
    ]
    statements.append(
        {"Sid": "Get", "Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": ENV_ARN}
    )
    # Policies hold at most 1,000 statements each; one policy with all of them.
    return [{"Version": "2012-10-17", "Statement": statements}]


def signed_context(access_key: str, secret: str, port: int = 8750) -> RequestContext:
    url = f"http://127.0.0.1:{port}/environments/bench"
    request = AWSRequest(method="GET", url=url, headers={})
    SigV4Auth(Credentials(access_key, secret), "airflow", REGION).add_auth(request)
    headers = [(k.lower(), v) for k, v in request.headers.items()]
    headers.append(("host", f"127.0.0.1:{port}"))
    return RequestContext(
        "bench", "GET", "/environments/bench", "", headers, "127.0.0.1", "http", time.time()
    )


async def trivial_get(ctx: RequestContext) -> Mapping[str, Any]:
    return {"Environment": {"Name": "bench", "Arn": ENV_ARN, "Status": "AVAILABLE"}}


class AllowAll:
    def authenticate(self, ctx: RequestContext) -> Any:
        return None

    def authorize(self, *args: Any) -> None:
        return None

    def allowed_resources(self, ctx: RequestContext, action: str, resources: Any, context: Any) -> list[str]:
        return list(resources)


def build_pipeline(wire: MwaaWire, store: IdentityStore | None, audit: AuditLog) -> Pipeline:
    operations = {"GetEnvironment": Operation(trivial_get, lambda p: ENV_ARN)}
    vpcs = VpcMap({"127.0.0.0/8": "vpc-openmwaa"})
    steps: list[Any] = [RouteRequest(wire)]
    if store is not None:
        authorizer = IamAuthorizer(store.policies_for)
        authn = SigV4Authenticator(region=REGION, credentials=store, clock=time.time, clock_skew=300)
        steps += [
            Authenticate(authn),
            ParseInput(wire),
            Authorize(
                authorizer,
                operations,
                lambda ctx: condition_context(
                    vpcs,
                    principal=ctx.principal,
                    client_ip=ctx.client_ip,
                    received_at=ctx.received_at,
                    secure_transport=ctx.scheme == "https",
                ),
            ),
        ]
    else:
        steps += [ParseInput(wire)]
    steps.append(Dispatch(wire, operations, None))

    def serialize(error: Any, ctx: RequestContext) -> Response:
        status, headers, body = serialize_error(error, ctx.request_id)
        return Response(status, body, headers)

    return Pipeline(steps, serializers={}, default_serializer=serialize, finishers=(audit_to(audit),))


def measure(pipeline: Pipeline, template: RequestContext, seconds: float) -> tuple[float, int]:
    async def loop() -> tuple[float, int]:
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(200):
                ctx = RequestContext(
                    template.request_id,
                    template.method,
                    template.raw_path,
                    template.raw_query,
                    template.headers,
                    template.client_ip,
                    template.scheme,
                    template.received_at,
                )
                response = await pipeline.handle(ctx)
                if response.status != 200:
                    raise SystemExit(f"unexpected {response.status}: {response.body[:300]!r}")
                count += 1
            now = time.perf_counter()
            if now >= deadline:
                return count / (now - start), count

    return asyncio.run(loop())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        users = [
            {
                "name": "small",
                "access_keys": [{"id": "AKIABENCHSMALL000001", "secret": "s" * 40}],
                "policies": [small_policy()],
            },
            {
                "name": "large",
                "access_keys": [{"id": "AKIABENCHLARGE000001", "secret": "l" * 40}],
                "policies": large_policies(),
            },
        ]
        (data / "iam.yaml").write_text(yaml.safe_dump({"users": users}))
        box = SecretBox.open(data)
        store = IdentityStore(
            data / "iam.yaml", account_id=ACCOUNT, box=box, sessions=StsSessionStore(data / "s.json", box)
        )
        audit = AuditLog(open_engine(f"sqlite:///{data / 'state.db'}"))
        audit.start()
        wire = MwaaWire.load()
        rows = []
        measure(
            build_pipeline(wire, store, audit), signed_context("AKIABENCHSMALL000001", "s" * 40), 0.5
        )  # warm-up
        base_rate, _ = measure(
            build_pipeline(wire, None, audit), signed_context("AKIABENCHSMALL000001", "s" * 40), args.seconds
        )
        rows.append(("baseline: no SigV4, no IAM", base_rate))
        full = build_pipeline(wire, store, audit)
        for label, key, secret in (
            ("SigV4 + IAM, 5 statements", "AKIABENCHSMALL000001", "s" * 40),
            ("SigV4 + IAM, 1,000 statements", "AKIABENCHLARGE000001", "l" * 40),
        ):
            rate, _ = measure(full, signed_context(key, secret), args.seconds)
            rows.append((label, rate))
        audit.stop()
    print(f"{'pipeline (one core, GetEnvironment, trivial handler)':<52} {'req/s':>10} {'ratio':>8}")
    for label, rate in rows:
        print(f"{label:<52} {rate:>10,.0f} {rate / base_rate:>8.2f}")
    small, large = rows[1][1], rows[2][1]
    print(f"\n1,000-statement / 5-statement throughput: {large / small:.2f} (1.00 = no slow-down)")
    print(f"target >= 5,000 req/s on the small set: {'met' if small >= 5000 else 'NOT met'} ({small:,.0f})")


if __name__ == "__main__":
    main()
