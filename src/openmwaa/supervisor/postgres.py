"""An environment's PostgreSQL metadata database: created before ``db migrate``, dropped on delete.

The work runs in the runtime's Python, which has psycopg2; the URL (with its password)
travels in an environment variable, never on a command line.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from openmwaa.runtime.errors import DatabaseSetupError, output_tail

_URL_VARIABLE: Final = "OPENMWAA_PG_URL"
_SCRIPT: Final = """
import os, sys
from urllib.parse import unquote, urlsplit
import psycopg2
from psycopg2 import sql
url = urlsplit(os.environ["OPENMWAA_PG_URL"])
name = unquote(url.path.lstrip("/"))
action, copy = sys.argv[1], sys.argv[2]
conn = psycopg2.connect(
    host=url.hostname, port=url.port or 5432, user=unquote(url.username or ""),
    password=unquote(url.password or ""), dbname="postgres",
)
conn.autocommit = True
cur = conn.cursor()
def exists(db):
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
    return cur.fetchone() is not None
def disconnect(db):
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (db,),
    )
def drop(db):
    disconnect(db)
    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db)))
def clone(source, target):  # a file-level copy: no session may be connected to the source
    disconnect(source)
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
    cur.execute(create.format(sql.Identifier(target), sql.Identifier(source)))
if action == "create" and not exists(name):
    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
elif action == "drop":
    drop(name)
    drop(copy)
elif action == "snapshot":
    drop(copy)
    clone(name, copy)
elif action == "restore":
    if not exists(copy):
        sys.exit("the copy " + copy + " taken before the upgrade does not exist")
    drop(name)
    clone(copy, name)
elif action == "drop-snapshot":
    drop(copy)
elif action == "exists":
    sys.exit(0 if exists(copy) else 3)
elif action == "rename":
    disconnect(name)
    cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(copy)))
elif action == "clone-new":  # a new environment's database from the template ``copy``
    if exists(name):
        target = psycopg2.connect(
            host=url.hostname, port=url.port or 5432, user=unquote(url.username or ""),
            password=unquote(url.password or ""), dbname=name,
        )
        tables = target.cursor()
        tables.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        used = tables.fetchone()[0]
        target.close()
        if used:
            sys.exit(3)
        drop(name)
    clone(copy, name)
    if len(sys.argv) > 3:
        target = psycopg2.connect(
            host=url.hostname, port=url.port or 5432, user=unquote(url.username or ""),
            password=unquote(url.password or ""), dbname=name,
        )
        target.autocommit = True
        target.cursor().execute(
            "UPDATE slot_pool SET slots = %s WHERE pool = 'default_pool'", (int(sys.argv[3]),)
        )
        target.close()
"""


def is_postgres(url: str | None) -> bool:
    return bool(url) and urlsplit(str(url)).scheme.split("+")[0] in ("postgresql", "postgres")


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def ensure_database(python: Path, url: str, *, timeout: float = 60.0) -> None:
    _run(python, "create", url, timeout)


def drop_database(python: Path, url: str, *, timeout: float = 60.0) -> None:
    """Drop the database and any copy :func:`snapshot_database` left."""
    _run(python, "drop", url, timeout)


def snapshot_name(url: str) -> str:
    """The copy of the database taken before an upgrade (at most 63 bytes, PostgreSQL's limit)."""
    name = database_name(url)
    return f"{name[:38]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}_before_upgrade"


def snapshot_database(python: Path, url: str, *, timeout: float = 600.0) -> None:
    """Copy the database (``CREATE DATABASE ... TEMPLATE``), replacing an earlier copy."""
    _run(python, "snapshot", url, timeout)


def restore_database(python: Path, url: str, *, timeout: float = 600.0) -> None:
    """Replace the database with the copy; the copy is kept until :func:`drop_snapshot`."""
    _run(python, "restore", url, timeout)


def drop_snapshot(python: Path, url: str, *, timeout: float = 60.0) -> None:
    _run(python, "drop-snapshot", url, timeout)


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def database_exists(python: Path, url: str, *, timeout: float = 60.0) -> bool:
    return _run(python, "exists", url, timeout, other=database_name(url), answers=True)


def rename_database(python: Path, url: str, new_name: str, *, timeout: float = 60.0) -> None:
    _run(python, "rename", url, timeout, other=new_name)


def clone_new_database(
    python: Path, url: str, template: str, *, slots: int | None = None, timeout: float = 120.0
) -> bool:
    """Make ``url``'s database a copy of ``template`` unless it already has tables (then False).

    ``slots``: the default pool's size in the copy.
    """
    extra = () if slots is None else (str(slots),)
    return _run(python, "clone-new", url, timeout, other=template, extra=extra, answers=True)


def _run(
    python: Path,
    action: str,
    url: str,
    timeout: float,
    *,
    other: str | None = None,
    extra: tuple[str, ...] = (),
    answers: bool = False,
) -> bool:
    """Run ``action``; with ``answers``, exit code 3 means "no" (False) rather than a failure."""
    if not database_name(url):
        raise DatabaseSetupError("The PostgreSQL URL names no database.")
    env = {**os.environ, _URL_VARIABLE: url}
    try:
        done = subprocess.run(
            [str(python), "-c", _SCRIPT, action, other or snapshot_name(url), *extra],
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DatabaseSetupError(f"PostgreSQL did not answer within {timeout:.0f} s.") from exc
    if answers and done.returncode == 3:
        return False
    if done.returncode != 0:
        raise DatabaseSetupError(
            f"Could not {action} the PostgreSQL database {database_name(url)!r}:\n{output_tail(done.stderr)}"
        )
    return True
