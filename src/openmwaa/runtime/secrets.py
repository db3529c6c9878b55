"""The secrets one environment's Airflow processes share (and openmwaa keeps)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EnvironmentSecrets:
    """Every field is a credential: none appears in a repr."""

    #: ``[api_auth] jwt_secret`` (Airflow 3); at least 64 bytes, which Airflow requires for HS512.
    jwt_secret: str = field(repr=False)
    #: ``[core] fernet_key``: encrypts connections and variables in the metadata database.
    fernet_key: str = field(repr=False)
    #: ``[webserver] secret_key`` / ``[api] secret_key``: signs sessions and log-server requests.
    webserver_secret_key: str = field(repr=False)
    #: ``OPENMWAA_TOKEN_SECRET``: verifies openmwaa's tokens in the Airflow 2 auth backend.
    token_secret: str = field(repr=False)

    @classmethod
    def generate(cls) -> EnvironmentSecrets:
        return cls(
            jwt_secret=secrets.token_urlsafe(64),
            fernet_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            webserver_secret_key=secrets.token_urlsafe(32),
            token_secret=secrets.token_urlsafe(48),
        )
