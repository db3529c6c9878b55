"""A migrated template database per runtime on a PostgreSQL server, copied into each new environment.

The PostgreSQL counterpart of :mod:`openmwaa.supervisor.metadata_template` (whose docstring says
what ``airflow db migrate`` writes, and when a copy would differ: the same rules apply). On a
PostgreSQL server ``airflow db migrate`` of an empty database takes 10-20 s; ``CREATE DATABASE
... TEMPLATE`` copies a migrated one in well under a second. The first new environment of a
runtime on a server migrates ``openmwaa_template_<digest of the runtime>`` (built under another
name and renamed into place, so a crash leaves no half-made template); every later one copies
it. The template holds no environment's data. A file lock beside the runtime makes concurrent
creates wait for one build, and copies run one at a time (PostgreSQL copies a template only
while nobody else uses it).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from openmwaa.runtime.installer import Runtime
from openmwaa.supervisor import metadata_template, postgres

log = logging.getLogger(__name__)

#: Migrates the database at the URL, with the given empty directory as AIRFLOW_HOME, in time.
BuildFn = Callable[[Path, str, float], None]


#: Every template database's name starts with this.
TEMPLATE_PREFIX: Final = "openmwaa_template_"


def template_name(runtime: Runtime) -> str:
    digest = hashlib.sha256(f"{runtime.root.name}|{metadata_template.TEMPLATE_FORMAT}".encode()).hexdigest()
    return f"{TEMPLATE_PREFIX}{digest[:16]}"


def copy_template(
    runtime: Runtime, url: str, build: BuildFn, *, home: Path, slots: int | None, timeout: float
) -> str | None:
    """Make ``url``'s (new, empty) database a copy of the runtime's template.

    None once copied; else why the environment must migrate its own database instead.
    """
    template = template_name(runtime)
    server = hashlib.sha256(urlsplit(url).netloc.encode()).hexdigest()[:12]
    deadline = time.monotonic() + timeout
    try:
        with metadata_template.locked(runtime.root / f".postgres-template-{server}.lock", deadline):
            if not postgres.database_exists(runtime.python, postgres.with_database(url, template)):
                left = max(1.0, deadline - time.monotonic())
                _build(runtime, url, template, build, home=home, timeout=left)
            copied = postgres.clone_new_database(runtime.python, url, template, slots=slots)
    except OSError as exc:  # e.g. a read-only runtime cache: no lock, so no template
        return f"no template database ({exc})"
    return None if copied else "the environment already has a metadata database"


def _build(runtime: Runtime, url: str, template: str, build: BuildFn, *, home: Path, timeout: float) -> None:
    building = postgres.with_database(url, f"{template}_building")
    postgres.drop_database(runtime.python, building)  # left by a build that crashed
    postgres.ensure_database(runtime.python, building)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-postgres-template-", dir=home))
    try:
        build(staging, building, timeout)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    postgres.rename_database(runtime.python, building, template)
    log.info("built the PostgreSQL metadata database template %s", template)
