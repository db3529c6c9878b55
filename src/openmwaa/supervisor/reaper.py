"""The dead man's switch: ends every component session openmwaa started if openmwaa dies first.

``PR_SET_PDEATHSIG`` (see process.py) sends each component's main process SIGTERM when openmwaa
dies, but what happens next is up to Airflow: a graceful shutdown can take long, and what that
process started (gunicorn's master and workers, DAG-file processors, task runners) may outlive
it. The reaper is a small process of its own (``python -I -S``: nothing of openmwaa imported, a
few MB) that openmwaa tells over a pipe which sessions are its components' (leader pid and start
time) as they start and stop. When the pipe reports end-of-file (openmwaa has exited, cleanly or
killed) it sends SIGTERM to every process still in those sessions, waits up to the grace, and
sends SIGKILL to what is left. After a clean shutdown no session is left and it simply exits.

A process is only ever signalled if it is in a recorded session and started no earlier than
that session's leader (the rule of :func:`openmwaa.supervisor.proc.session_members`), so a
reused pid cannot make it kill a stranger; sessions a restarted openmwaa starts are not its.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from typing import Final

from openmwaa.supervisor.process import ChildProcess

#: Seconds between SIGTERM and SIGKILL once openmwaa is gone.
GRACE: Final = 10.0

#: argv: reaper <grace seconds>. Reads "+ pid ticks" / "- pid ticks" lines on stdin until EOF.
REAPER_SCRIPT: Final = r"""
import os, signal, sys, time
grace = float(sys.argv[1])
sessions = {}
for line in sys.stdin:
    parts = line.split()
    if len(parts) != 3 or parts[0] not in "+-" or not (parts[1].isdigit() and parts[2].isdigit()):
        continue
    if parts[0] == "+":
        sessions[int(parts[1])] = int(parts[2])
    elif sessions.get(int(parts[1])) == int(parts[2]):
        del sessions[int(parts[1])]
if not sessions:
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
me = os.getpid()
def stats():
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/" + name + "/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2:].split()
        if fields[0] != b"Z":  # a zombie has ended already
            found[int(name)] = (int(fields[3]), int(fields[19]))
    return found
def members():
    now = stats()
    ours = {}
    for leader, ticks in sessions.items():
        if leader in now and now[leader][1] != ticks:
            continue
        for pid, (session, started) in now.items():
            if session == leader and started >= ticks and pid != me:
                ours[pid] = started
    return ours
def signal_all(targets, sig):
    current = stats()
    for pid, started in targets.items():
        if pid in current and current[pid][1] == started:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
targets = members()
signal_all(targets, signal.SIGTERM)
deadline = time.monotonic() + grace
while time.monotonic() < deadline:
    time.sleep(0.2)
    current = stats()
    targets = {p: t for p, t in targets.items() if p in current and current[p][1] == t}
    targets.update(members())
    if not targets:
        sys.exit(0)
signal_all(members(), signal.SIGKILL)
"""


class Reaper:
    """The reaper process and the write end of its pipe (this process holds the only copy)."""

    def __init__(self, grace: float = GRACE) -> None:
        self._grace = grace
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None

    def start(self) -> None:
        """Start the reaper (once)."""
        with self._lock:
            if self._proc is not None:
                return
            read_end, write_end = os.pipe()  # both non-inheritable: no other child gets them
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", REAPER_SCRIPT, str(self._grace)],
                    stdin=read_end,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env={},
                    close_fds=True,
                    start_new_session=True,  # a signal to openmwaa's process group spares it
                )
            except BaseException:
                os.close(write_end)
                raise
            finally:
                os.close(read_end)
            self._pipe = write_end

    def watch(self, child: ChildProcess) -> None:
        """``child``'s session is openmwaa's from now on."""
        self._send(f"+ {child.pid} {child.start_ticks}\n")

    def forget(self, child: ChildProcess) -> None:
        """``child``'s session has been stopped by openmwaa itself."""
        self._send(f"- {child.pid} {child.start_ticks}\n")

    def close(self, timeout: float = 5.0) -> None:
        """After a clean shutdown: the reaper finds nothing left to end and exits."""
        with self._lock:
            pipe, proc = self._pipe, self._proc
            self._pipe = self._proc = None
        if pipe is not None:
            os.close(pipe)
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._pipe is None:
                return
            # One short write: atomic on a pipe; the reaper reads continuously, so it never blocks long.
            with contextlib.suppress(OSError):  # the reaper is gone: openmwaa runs on without it
                os.write(self._pipe, line.encode())
