"""A secrets backend shipped in plugins.zip, named by ``secrets.backend`` (as MWAA users do).

It serves the connections given in ``secrets.backend_kwargs`` (``{"connections": {id: uri}}``).
"""

from __future__ import annotations

from airflow.secrets import BaseSecretsBackend


class DictSecretsBackend(BaseSecretsBackend):
    def __init__(self, connections: dict[str, str] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.connections = dict(connections or {})

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        return self.connections.get(conn_id)

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        return None

    def get_config(self, key: str) -> str | None:
        return None
