"""Airflow 3's task tokens, checked before a forwarded execution API request reaches Airflow.

The scheduler signs every task's token with the environment's ``[api_auth] jwt_secret``
(HS512, Airflow's choice for a shared secret; ``jwt_algorithm`` is openmwaa's to set and it
leaves the default) for the execution API's audience. openmwaa checks signature, audience and
expiry itself, so a request without a token of this environment never reaches its api-server
(not even the execution API's unauthenticated health routes); Airflow then checks the token
again, with its scopes and the task it names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import jwt

#: ``[execution_api] jwt_audience``'s default (the first value is the one Airflow signs with).
DEFAULT_AUDIENCE: Final = "urn:airflow.apache.org:task"
AUDIENCE_OPTION: Final = "execution_api.jwt_audience"
ALGORITHM: Final = "HS512"
#: Airflow's ``[api_auth] jwt_leeway`` default: clocks of the machines may differ this much.
LEEWAY_SECONDS: Final = 10


def audiences(airflow_options: dict[str, str] | None) -> list[str]:
    """The audiences Airflow accepts, from the environment's AirflowConfigurationOptions."""
    for option, value in (airflow_options or {}).items():
        if option.lower() == AUDIENCE_OPTION:
            found = [a.strip() for a in str(value).split(",") if a.strip()]
            return found or [DEFAULT_AUDIENCE]
    return [DEFAULT_AUDIENCE]


def is_task_token(token: str, secret: str, accepted: Sequence[str]) -> bool:
    """True when ``token`` is signed with ``secret`` for one of ``accepted`` and has not expired."""
    if not token or not secret or len(token) > 8192:
        return False
    try:
        jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=list(accepted),
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "aud"]},
        )
    except jwt.PyJWTError:
        return False
    return True
