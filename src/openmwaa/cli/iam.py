"""``openmwaa iam ...``: manage the identities file and ask the policy engine for decisions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openmwaa.errors import ValidationError
from openmwaa.settings import Settings

if TYPE_CHECKING:  # imported when a command runs, so `openmwaa --help` stays quick
    from openmwaa.auth.iam_admin import IdentitiesEditor


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "iam",
        help="manage IAM users, keys, roles and policies; simulate decisions",
        description="Identities live in <data dir>/iam.yaml (reloaded by the running service when it "
        "changes). These commands edit it safely: every change is validated before it is written.",
    )
    cmds = parser.add_subparsers(dest="iam_command", metavar="ACTION", required=True)

    cmds.add_parser("list", help="users (with key ids), roles and their policy names").set_defaults(run=_list)

    add_user = cmds.add_parser("add-user", help="create an IAM user")
    add_user.add_argument("name")
    add_user.set_defaults(run=_add_user)

    key = cmds.add_parser("create-access-key", help="create an access key; prints the secret once")
    key.add_argument("user")
    key.set_defaults(run=_create_access_key)

    put = cmds.add_parser("put-user-policy", help="attach an inline policy (JSON file or '-') to a user")
    put.add_argument("user")
    put.add_argument("policy_name")
    put.add_argument("document", help="path to the policy JSON, or - for standard input")
    put.set_defaults(run=_put_user_policy)

    role = cmds.add_parser("create-role", help="create a role with a trust policy (JSON file or '-')")
    role.add_argument("name")
    role.add_argument("trust_policy", help="path to the trust policy JSON, or - for standard input")
    role.add_argument("--max-session-duration", type=int, default=3600)
    role.set_defaults(run=_create_role)

    put_role = cmds.add_parser("put-role-policy", help="attach an inline policy to a role")
    put_role.add_argument("role")
    put_role.add_argument("policy_name")
    put_role.add_argument("document")
    put_role.set_defaults(run=_put_role_policy)

    sim = cmds.add_parser(
        "simulate",
        help="print the decision for an action on a resource, and the statement that decided it",
        description="Like AWS's policy simulator: evaluates the identity policies of --principal "
        "(user/NAME or role/NAME) for --action on --resource, with optional condition keys.",
    )
    sim.add_argument("--principal", required=True, help="user/NAME or role/NAME")
    sim.add_argument("--action", required=True, help="e.g. airflow:InvokeRestApi")
    sim.add_argument(
        "--resource", required=True, help="e.g. arn:aws:airflow:us-east-1:123456789012:role/env/Admin"
    )
    sim.add_argument(
        "--context", action="append", default=[], metavar="KEY=VALUE", help="a condition key (repeatable)"
    )
    sim.set_defaults(run=_simulate)


def _editor(settings: Settings) -> IdentitiesEditor:
    from openmwaa.auth.credentials import SecretBox
    from openmwaa.auth.iam_admin import IdentitiesEditor

    return IdentitiesEditor(
        settings.iam_path, account_id=settings.account_id, box=SecretBox.open(settings.data_dir)
    )


def _read_document(source: str) -> str:
    return sys.stdin.read() if source == "-" else Path(source).read_text()


def _list(settings: Settings, args: argparse.Namespace) -> int:
    print(json.dumps(_editor(settings).describe(), indent=2, sort_keys=True))
    return 0


def _add_user(settings: Settings, args: argparse.Namespace) -> int:
    _editor(settings).add_user(args.name)
    print(f"arn:aws:iam::{settings.account_id}:user/{args.name}")
    return 0


def _create_access_key(settings: Settings, args: argparse.Namespace) -> int:
    key = _editor(settings).create_access_key(args.user)
    print(f"AccessKeyId     {key.access_key_id}")
    print(f"SecretAccessKey {key.secret_access_key}   (shown once; it is stored encrypted)")
    return 0


def _put_user_policy(settings: Settings, args: argparse.Namespace) -> int:
    _editor(settings).put_user_policy(args.user, args.policy_name, _read_document(args.document))
    return 0


def _create_role(settings: Settings, args: argparse.Namespace) -> int:
    _editor(settings).create_role(
        args.name,
        json.loads(_read_document(args.trust_policy)),
        max_session_duration=args.max_session_duration,
    )
    print(f"arn:aws:iam::{settings.account_id}:role/{args.name}")
    return 0


def _put_role_policy(settings: Settings, args: argparse.Namespace) -> int:
    _editor(settings).put_role_policy(args.role, args.policy_name, _read_document(args.document))
    return 0


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    identities = _editor(settings).load()
    kind, _, name = args.principal.partition("/")
    if kind == "user" and name in identities.users:
        user = identities.users[name]
        policies, arn = user.policies, user.arn
    elif kind == "role" and name in identities.roles:
        role = identities.roles[name]
        policies, arn = role.policies, role.arn
    else:
        raise ValidationError(f"no such principal {args.principal!r}: use user/NAME or role/NAME")
    context: dict[str, str] = {}
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValidationError(f"--context {item!r}: use KEY=VALUE")
        context[key] = value
    from openmwaa.iam import simulate

    result = simulate(policies, args.action, args.resource, arn, context)
    print(result.render())
    return 0 if result.eval_decision == "allowed" else 1
