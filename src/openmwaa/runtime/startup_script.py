"""The environment's startup script: run with bash before the components start.

One run is one shell: the variables the script exports (or changes) are returned for the
components that run with them (which runs, and for which components, is the supervisor's
business: ``supervisor/prepare.py``); what the script prints goes to the given log. The script
runs in a shell that then prints its environment NUL-separated on stdout, so values with
newlines survive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from openmwaa.runtime.beneath import open_log
from openmwaa.runtime.errors import StartupScriptError, output_tail
from openmwaa.runtime.isolation import EnvironmentUser, popen_args

TIMEOUT: Final = 300.0
# The script is sourced so its exports stay in this shell; its stdout joins stderr (the log).
_WRAPPER: Final = '. "$1" 1>&2 || exit $?; exec env -0'


def run_startup_script(
    script: Path,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    *,
    timeout: float = TIMEOUT,
    user: EnvironmentUser | None = None,
) -> dict[str, str]:
    """Run ``script`` (as ``user`` if given); the variables it exported or changed, compared with ``env``."""
    # In the environment's home: opened without following links, and read back through the same
    # descriptor, so a link put in its place cannot make openmwaa write or quote another file.
    with os.fdopen(open_log(log_path, cwd, append=False, readable=True), "w+b") as log:
        try:
            proc = subprocess.Popen(
                ["bash", "-c", _WRAPPER, "bash", str(script)],
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                **popen_args(user),
            )
        except OSError as exc:
            raise StartupScriptError(f"Cannot run the startup script with bash: {exc.strerror}.") from exc
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc)
            raise StartupScriptError(
                f"The startup script ran longer than {timeout:.0f} s and was stopped."
            ) from exc
        if proc.returncode != 0:
            log.seek(0)
            tail = output_tail(log.read())
            raise StartupScriptError(f"The startup script exited with code {proc.returncode}:\n{tail}")
    after = parse_env0(out)
    return {k: v for k, v in after.items() if env.get(k) != v}


def parse_env0(raw: bytes) -> dict[str, str]:
    """Parse ``env -0`` output."""
    result = {}
    for entry in raw.split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and name:
            result[name.decode(errors="replace")] = value.decode(errors="replace")
    return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
