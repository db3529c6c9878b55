"""An environment's PostgreSQL metadata database: created before ``db migrate``, dropped on delete.

The work runs in the runtime's Python, which has psycopg2; the URL (with its password)
travels in an environment variable, never on a command line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from openmwaa.runtime.errors import DatabaseSetupError, output_tail

_URL_VARIABLE: Final = "OPENMWAA_PG_URL"
_SCRIPT: Final = """
import os, sys
from urllib.parse import unquote, urlsplit
import psycopg2
from psycopg2 import sql
url = urlsplit(os.environ["OPENMWAA_PG_URL"])
name = unquote(url.path.lstrip("/"))
conn = psycopg2.connect(
    host=url.hostname, port=url.port or 5432, user=unquote(url.username or ""),
    password=unquote(url.password or ""), dbname="postgres",
)
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
exists = cur.fetchone() is not None
if sys.argv[1] == "create" and not exists:
    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
elif sys.argv[1] == "drop" and exists:
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
"""


def is_postgres(url: str | None) -> bool:
    return bool(url) and urlsplit(str(url)).scheme.split("+")[0] in ("postgresql", "postgres")


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def ensure_database(python: Path, url: str, *, timeout: float = 60.0) -> None:
    _run(python, "create", url, timeout)


def drop_database(python: Path, url: str, *, timeout: float = 60.0) -> None:
    _run(python, "drop", url, timeout)


def _run(python: Path, action: str, url: str, timeout: float) -> None:
    if not database_name(url):
        raise DatabaseSetupError("The PostgreSQL URL names no database.")
    env = {**os.environ, _URL_VARIABLE: url}
    try:
        done = subprocess.run(
            [str(python), "-c", _SCRIPT, action], env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DatabaseSetupError(f"PostgreSQL did not answer within {timeout:.0f} s.") from exc
    if done.returncode != 0:
        raise DatabaseSetupError(
            f"Could not {action} the PostgreSQL database {database_name(url)!r}:\n{output_tail(done.stderr)}"
        )
