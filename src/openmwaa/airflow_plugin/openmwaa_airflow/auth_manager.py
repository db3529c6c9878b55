"""Airflow 3 auth manager: users are whoever openmwaa's JWTs name, with the role those JWTs grant.

Token validation is Airflow's own (``BaseAuthManager.get_user_from_token``): signature with
``[api_auth] jwt_secret`` (HS512 unless ``[api_auth] jwt_algorithm`` says otherwise), audience
``[api_auth] jwt_audience`` (default ``apache-airflow``), issuer when ``[api_auth] jwt_issuer`` is set,
``exp``/``iat``/``nbf`` required, revoked ``jti`` refused. This class only turns the validated claims
into a user and decides what each role may do.

The role model is SimpleAuthManager's (VIEWER < USER < OP < ADMIN, each including the ones below),
adjusted where Airflow's default FAB roles differ, because MWAA runs FAB and users expect its
answers: configuration, plugins and providers are Op and up; audit logs and triggers are Admin only;
creating asset events is User and up; deleting XComs is Op and up. PUBLIC is a valid role that is
authorized for nothing (FAB's Public role has no permissions).

There is no password login: no users in config, no generated passwords file, and
``[core] simple_auth_manager_all_admins`` is never honoured. The login URL is the web-login page
openmwaa serves at ``/pluginsv2/aws_mwaa/login``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.common.types import MenuItem

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        AssetAliasDetails,
        AssetDetails,
        ConfigurationDetails,
        ConnectionDetails,
        DagDetails,
        PoolDetails,
        TeamDetails,
        VariableDetails,
    )
    from fastapi import FastAPI

LOGIN_URL = "/pluginsv2/aws_mwaa/login"

# Role claim -> rank. A rank below VIEWER's grants nothing; ADMIN is allowed everything.
PUBLIC, VIEWER, USER, OP, ADMIN = -1, 0, 1, 2, 3
ROLE_RANKS: dict[str, int] = {"PUBLIC": PUBLIC, "VIEWER": VIEWER, "USER": USER, "OP": OP, "ADMIN": ADMIN}

# Longest user name openmwaa mints (MWAA's AirflowIdentity limit).
MAX_USERNAME = 64

# Minimum rank per (DAG sub-entity, read or write). Entities not listed: VIEWER reads, USER writes.
_DAG_ENTITY_RANKS: dict[DagAccessEntity, tuple[int, int]] = {
    DagAccessEntity.AUDIT_LOG: (ADMIN, ADMIN),
    DagAccessEntity.XCOM: (VIEWER, OP),
}
# Minimum rank per read-only view. Views not listed: VIEWER.
_VIEW_RANKS: dict[AccessView, int] = {
    AccessView.PLUGINS: OP,
    AccessView.PROVIDERS: OP,
    AccessView.TRIGGERS: ADMIN,
}
# Minimum rank to see a menu item. Items not listed: VIEWER.
_MENU_RANKS: dict[MenuItem, int] = {
    MenuItem.REQUIRED_ACTIONS: USER,
    MenuItem.AUDIT_LOG: ADMIN,
    MenuItem.CONFIG: OP,
    MenuItem.CONNECTIONS: OP,
    MenuItem.PLUGINS: OP,
    MenuItem.PROVIDERS: OP,
    MenuItem.VARIABLES: OP,
    MenuItem.XCOMS: OP,
}


def _rank(user: SimpleAuthManagerUser) -> int:
    return ROLE_RANKS.get((user.role or "").upper(), PUBLIC)


def _allowed(user: SimpleAuthManagerUser, method: str, *, read: int, write: int) -> bool:
    """Whether ``user`` may use ``method``: GETs need rank ``read``, anything else rank ``write``."""
    rank = _rank(user)
    if rank < VIEWER:
        return False
    if rank == ADMIN:
        return True
    return rank >= (read if method == "GET" else write)


class OpenMwaaAuthManager(SimpleAuthManager):
    """SimpleAuthManager's users and role order, fed only by openmwaa-minted JWTs."""

    # -- lifecycle: none of SimpleAuthManager's password machinery --------------------------

    def init(self) -> None:
        BaseAuthManager.init(self)

    @staticmethod
    def get_users() -> list[SimpleAuthManagerUser]:
        return []

    def _get_teams(self) -> set[str]:
        return set()

    def get_fastapi_app(self) -> FastAPI | None:
        # SimpleAuthManager's app is a username/password form; openmwaa serves the login page.
        return None

    def get_fastapi_middlewares(self) -> list[tuple[Any, dict[str, Any]]]:
        # SimpleAuthManager adds an "everyone is admin" middleware when all_admins is set; never.
        return []

    def get_url_login(self, **kwargs: Any) -> str:
        next_url = kwargs.get("next_url")
        return f"{LOGIN_URL}?{urlencode({'next': next_url})}" if next_url else LOGIN_URL

    # -- users from claims ------------------------------------------------------------------

    def deserialize_user(self, token: dict[str, Any]) -> SimpleAuthManagerUser:
        # ValueError/KeyError here make Airflow reject the token as invalid.
        username = token["sub"]
        role = token["role"]
        if not isinstance(username, str) or not 0 < len(username) <= MAX_USERNAME:
            raise ValueError("sub must be a user name of 1-64 characters")
        if not isinstance(role, str) or role.upper() not in ROLE_RANKS:
            raise ValueError("role must be one of ADMIN, OP, USER, VIEWER, PUBLIC")
        return SimpleAuthManagerUser(username=username, role=role.upper())

    def serialize_user(self, user: SimpleAuthManagerUser) -> dict[str, Any]:
        return {"sub": user.username, "role": user.role or "PUBLIC"}

    # -- authorization ----------------------------------------------------------------------

    def is_authorized_configuration(
        self,
        *,
        method: ResourceMethod,
        user: SimpleAuthManagerUser,
        details: ConfigurationDetails | None = None,
    ) -> bool:
        return _allowed(user, method, read=OP, write=ADMIN)

    def is_authorized_connection(
        self, *, method: ResourceMethod, user: SimpleAuthManagerUser, details: ConnectionDetails | None = None
    ) -> bool:
        return _allowed(user, method, read=OP, write=OP)

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        read, write = _DAG_ENTITY_RANKS.get(access_entity, (VIEWER, USER))  # type: ignore[arg-type]
        return _allowed(user, method, read=read, write=write)

    def is_authorized_asset(
        self, *, method: ResourceMethod, user: SimpleAuthManagerUser, details: AssetDetails | None = None
    ) -> bool:
        # FAB: User may create asset events (POST); changing or deleting assets is Op.
        return _allowed(user, method, read=VIEWER, write=USER if method == "POST" else OP)

    def is_authorized_asset_alias(
        self, *, method: ResourceMethod, user: SimpleAuthManagerUser, details: AssetAliasDetails | None = None
    ) -> bool:
        return _allowed(user, method, read=VIEWER, write=OP)

    def is_authorized_pool(
        self, *, method: ResourceMethod, user: SimpleAuthManagerUser, details: PoolDetails | None = None
    ) -> bool:
        return _allowed(user, method, read=VIEWER, write=OP)

    def is_authorized_variable(
        self, *, method: ResourceMethod, user: SimpleAuthManagerUser, details: VariableDetails | None = None
    ) -> bool:
        return _allowed(user, method, read=OP, write=OP)

    def is_authorized_team(
        self, *, method: ResourceMethod, user: SimpleAuthManagerUser, details: TeamDetails | None = None
    ) -> bool:
        # Multi-team mode is not supported: tokens carry no teams, so only Admin spans teams.
        return details is not None and _rank(user) == ADMIN

    def is_authorized_view(self, *, access_view: AccessView, user: SimpleAuthManagerUser) -> bool:
        return _allowed(user, "GET", read=_VIEW_RANKS.get(access_view, VIEWER), write=ADMIN)

    def is_authorized_custom_view(
        self, *, method: ResourceMethod, resource_name: str, user: SimpleAuthManagerUser
    ) -> bool:
        # Plugin views: readable by every real role, changeable by User and up.
        return _allowed(user, method, read=VIEWER, write=USER)

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: SimpleAuthManagerUser) -> bool:
        if _rank(user) < USER:
            return False
        return not assigned_users or user.get_id() in assigned_users

    def filter_authorized_menu_items(
        self, menu_items: list[MenuItem], *, user: SimpleAuthManagerUser
    ) -> list[MenuItem]:
        rank = _rank(user)
        return [item for item in menu_items if rank >= VIEWER and rank >= _MENU_RANKS.get(item, VIEWER)]

    @staticmethod
    def _is_admin(user: SimpleAuthManagerUser) -> bool:
        return _rank(user) == ADMIN
