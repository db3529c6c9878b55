"""``openmwaa dashboard``: a pre-signed dashboard sign-in URL, signed with your AWS credentials."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from openmwaa.errors import OpenMwaaError
from openmwaa.settings import Settings

DEFAULT_EXPIRES = 60
#: The server refuses longer (``auth.dashboard_signin.MAX_SIGNIN_EXPIRES``).
MAX_EXPIRES = 300


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "dashboard",
        help="print a sign-in URL for the dashboard (signed with your AWS credentials)",
        description="Print a short-lived, single-use URL that signs you in to the dashboard at "
        "<endpoint>/dashboard/. It is pre-signed (SigV4) with the caller's AWS credentials from the "
        "standard chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE, ~/.aws), else the admin key `openmwaa up` "
        "wrote to the data directory. The dashboard shows the environments your IAM policy lets you "
        "see (airflow:GetEnvironment), and their DAG data where it allows airflow:InvokeRestApi.",
    )
    parser.add_argument("--endpoint-url", help="the openmwaa endpoint (default from settings)")
    parser.add_argument(
        "--expires",
        type=int,
        default=DEFAULT_EXPIRES,
        help=f"seconds the URL stays valid (default {DEFAULT_EXPIRES}, at most {MAX_EXPIRES})",
    )
    parser.set_defaults(run=run)


def signin_url(endpoint: str, credentials: Any, region: str, expires: int) -> str:
    """``<endpoint>/dashboard/signin`` pre-signed for service ``airflow`` (botocore's query signer).

    A random ``nonce`` is signed in too: two URLs signed in the same second differ, so using one
    never uses up the other (each works once).
    """
    import secrets

    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    url = f"{endpoint.rstrip('/')}/dashboard/signin?nonce={secrets.token_hex(8)}"
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(credentials, "airflow", region, expires=expires).add_auth(request)
    return str(request.url)


def run(settings: Settings, args: argparse.Namespace) -> int:
    import botocore.session
    from botocore.credentials import Credentials

    from openmwaa.cli.environments import bootstrap_credentials

    if not 1 <= args.expires <= MAX_EXPIRES:
        raise OpenMwaaError(f"--expires must be 1 to {MAX_EXPIRES} seconds.")
    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        found = bootstrap_credentials(settings)
        if not found.get("aws_access_key_id"):
            raise OpenMwaaError(
                "No AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile), "
                "or run this where `openmwaa up` wrote its admin key (--data-dir)."
            )
        credentials = Credentials(found["aws_access_key_id"], found["aws_secret_access_key"])
    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or settings.endpoint_url
    url = signin_url(endpoint, credentials.get_frozen_credentials(), settings.region, args.expires)
    print(url)
    print(f"(valid for {args.expires} s, once; open it in your browser)", file=sys.stderr)
    return 0
