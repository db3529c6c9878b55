"""Environments on SQLite (the default): a write to Airflow's metadata database waits out a busy
database instead of failing.

Several Airflow processes share one SQLite file, and only one writes at a time. On a loaded
machine a writer (the scheduler, the DAG processor) can hold the lock for seconds; Python's
``sqlite3`` gives up after 5 s by default, and Airflow answers the API call it was serving with
500 "Database error". openmwaa gives the environments' connections a longer busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import OpenMwaaServer, env_home
from tests.e2e.test_web_login import api, web_session

pytestmark = pytest.mark.e2e

#: Longer than sqlite3's default busy timeout (5 s), well within openmwaa's.
HOLD_SECONDS = 7.0


def metadata_database(server: OpenMwaaServer, name: str) -> Path:
    return env_home(server, name) / "airflow.db"


def write_while_locked(server: OpenMwaaServer, name: str, major: int) -> tuple[requests.Response, float]:
    """POST a variable through a web session while another connection holds the database's write
    lock for HOLD_SECONDS; (Airflow's answer, seconds the call took). The variable is deleted."""
    session = web_session(server, name, major)
    key = f"busy-{uuid.uuid4().hex[:10]}"
    holder = sqlite3.connect(metadata_database(server, name), timeout=60, isolation_level=None)
    answered: list[requests.Response] = []
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long scheduler transaction holds it
        started = time.monotonic()
        call = threading.Thread(
            target=lambda: answered.append(
                session.request("POST", f"{api(major)}/variables", json={"key": key, "value": "v"})
            )
        )
        call.start()
        time.sleep(HOLD_SECONDS)
        assert not answered, (
            f"the write did not wait for the lock: {answered[0].status_code} {answered[0].text}"
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    call.join(timeout=60)
    took = time.monotonic() - started
    session.request("DELETE", f"{api(major)}/variables/{key}")
    assert answered, "no answer within 60 s of the lock's release"
    return answered[0], took


def test_a_write_waits_out_a_lock_held_longer_than_sqlites_default(
    server: OpenMwaaServer, af3_env: str, af2_env: str
) -> None:
    with ThreadPoolExecutor(2) as pool:  # both versions at once: the wait is the test's whole cost
        futures = {
            major: pool.submit(write_while_locked, server, name, major)
            for major, name in ((3, af3_env), (2, af2_env))
        }
        results = {major: future.result() for major, future in futures.items()}
    for major, (answer, took) in results.items():
        assert answer.status_code in (200, 201), f"Airflow {major}: {answer.status_code} {answer.text}"
        assert took < HOLD_SECONDS + 30, f"Airflow {major}: {took:.1f} s"
