"""Who made a request, once SigV4 has verified it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["user", "assumed-role", "root"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``arn`` is what IAM conditions and denial messages name (``arn:aws:iam::111122223333:user/alice``
    or ``arn:aws:sts::111122223333:assumed-role/Admin/ci-runner``). ``identity`` is the short form
    MWAA shows as ``IamIdentity`` and uses as the Airflow user name (``user/alice``,
    ``assumed-role/Admin/ci-runner``).
    """

    arn: str
    account_id: str
    kind: PrincipalKind
    #: aws:userid (``AIDA...`` for users, ``AROA...:session`` for assumed roles).
    user_id: str
    #: The IAM user or role name.
    name: str
    #: RoleSessionName for assumed roles.
    session_name: str | None
    access_key_id: str

    @property
    def identity(self) -> str:
        if self.kind == "assumed-role":
            return f"assumed-role/{self.name}/{self.session_name}"
        if self.kind == "root":
            return "root"
        return f"user/{self.name}"
