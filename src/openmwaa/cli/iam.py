"""``openmwaa iam ...``: manage identities and simulate policy decisions."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    sub.add_parser("iam", help="manage IAM users, keys, roles and policies; simulate decisions")
