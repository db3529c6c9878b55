"""How many tasks an environment has queued and running: the worker autoscaler's signal.

Read from the metadata database's ``task_instance`` states, the source of the figures MWAA
scales on (its QueuedTasks and RunningTasks): a task is ``queued`` from the moment the
scheduler hands it to the executor until a worker starts it, then ``running`` until it ends.
The broker's queue length would miss the running tasks (and the ones a worker has prefetched),
and Celery's ``inspect`` broadcasts to every worker and waits for their answers.

The query runs in a small helper process on the environment's runtime Python, which has the
database driver (openmwaa itself needs none); it lives as long as the environment's runner asks,
answers one line of JSON per request, and is started again if it dies or stops answering.
The database URL (with its password) reaches it in an environment variable, never in argv.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
from pathlib import Path
from typing import IO, Any, Final

from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.worker_scaling import TaskCounts

_URL_VARIABLE: Final = "OPENMWAA_TASKS_DB_URL"
DATABASE_VARIABLE: Final = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"

#: Runs in the runtime's Python: one request line in, one JSON line out, until stdin closes.
_SCRIPT: Final = """
import json, os, sys
url = os.environ.pop("OPENMWAA_TASKS_DB_URL")
query = ("SELECT state, COUNT(*) FROM task_instance WHERE state IN ('queued', 'running') "
         "GROUP BY state")
def connect():
    scheme, rest = url.split("://", 1)
    if scheme.startswith("sqlite"):
        import sqlite3
        return sqlite3.connect("file:" + rest[1:].split("?", 1)[0] + "?mode=ro", uri=True, timeout=3)
    import psycopg2
    conn = psycopg2.connect("postgresql://" + rest, connect_timeout=3,
                            options="-c statement_timeout=3000", application_name="openmwaa-autoscaler")
    conn.autocommit = True
    return conn
conn = None
for _ in sys.stdin:
    try:
        if conn is None:
            conn = connect()
        cur = conn.cursor()
        cur.execute(query)
        rows = {str(state): int(n) for state, n in cur.fetchall()}
        cur.close()
        out = {"queued": rows.get("queued", 0), "running": rows.get("running", 0)}
    except Exception as exc:
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass
        conn = None
        out = {"error": (type(exc).__name__ + ": " + str(exc).strip())[:500]}
    sys.stdout.write(json.dumps(out) + "\\n")
    sys.stdout.flush()
"""


class TaskCounter:
    """``counter(prepared)``: the environment's tasks queued and running now, or None if unknown.

    :attr:`error` says why the last count failed (None after a success).
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self._timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._target: tuple[str, str] | None = None
        self.error: str | None = None

    def __call__(self, prepared: PreparedEnvironment) -> TaskCounts | None:
        url = prepared.env.get(DATABASE_VARIABLE)
        if not url:
            return self._failed("the environment has no metadata database URL")
        return self.count(prepared.runtime.python, url)

    def count(self, python: Path, database_url: str) -> TaskCounts | None:
        """Ask the helper on ``python`` (started if need be) about the database at ``database_url``."""
        target = (str(python), database_url)
        if self._proc is None or self._proc.poll() is not None or target != self._target:
            self.close()
            self._start(target)
        answer = self._ask()
        if answer is None:
            self.close()  # hung or gone: a fresh one next time
            return self._failed("the task counter did not answer")
        if "error" in answer:
            return self._failed(str(answer["error"]))
        try:
            counts = TaskCounts(queued=int(answer["queued"]), running=int(answer["running"]))
        except (KeyError, TypeError, ValueError):
            return self._failed(f"the task counter answered {answer!r}")
        self.error = None
        return counts

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def _start(self, target: tuple[str, str]) -> None:
        python, url = target
        self._target = target
        self._proc = subprocess.Popen(
            [python, "-I", "-c", _SCRIPT],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), _URL_VARIABLE: url},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def _ask(self) -> dict[str, Any] | None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            return None
        try:
            proc.stdin.write(b"\n")
            proc.stdin.flush()
        except OSError:
            return None
        line = _read_line(proc.stdout, self._timeout)
        if not line:
            return None
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None

    def _failed(self, reason: str) -> TaskCounts | None:
        self.error = reason
        return None


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else b""
