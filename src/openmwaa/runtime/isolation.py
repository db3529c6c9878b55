"""Each environment's processes under a system user of its own (when openmwaa runs as root).

DAGs, plugins, requirements' build scripts and startup scripts are other people's code. Run
as openmwaa's own user they could read everything openmwaa keeps (``master.key``, ``iam.yaml``,
``web-token.key``, ``openmwaa.db``, the TLS keys, openmwaa's ``/proc/<pid>/environ``) and every
other environment's home. So, as root, openmwaa gives each environment a system user
(``omw-<digest of its key>``, no login shell, created on first use) that owns the
environment's home (mode 0700) and runs every process that executes the environment's code:
the components, ``airflow`` commands, ``db migrate``, the startup script and the
requirements install. openmwaa's own files stay root's (0600/0700); the runtime, the bucket
folders and openmwaa's Airflow plugin only need to be readable by others, which
:func:`check_reachable` proves before anything starts.

Without root there is no second user to run as: :data:`NOT_ISOLATED` says what that leaves open.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from openmwaa.runtime.errors import EnvironmentSetupError, output_tail

USER_PREFIX: Final = "omw-"
#: Files and folders in a home that stay openmwaa's (it writes them; the environment does not).
OPENMWAA_OWNED: Final = frozenset({"run"})
NOT_ISOLATED: Final = (
    "openmwaa is not running as root, so every environment's processes (DAGs, plugins, startup "
    "scripts) run as this same user: they can read openmwaa's master.key, iam.yaml, "
    "web-token.key, openmwaa.db, TLS keys and the other environments' homes. Run openmwaa as "
    "root to give each environment a user of its own."
)
_USERADD_EXISTS: Final = 9
_PROBE: Final = "import os, sys\nfor path in sys.argv[1:]:\n    os.listdir(path)\n"
_lock = threading.Lock()


@dataclass(frozen=True)
class EnvironmentUser:
    name: str
    uid: int
    gid: int

    def popen_args(self) -> dict[str, Any]:
        """``subprocess`` arguments that start a process as this user, with no other groups."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def popen_args(user: EnvironmentUser | None) -> dict[str, Any]:
    return user.popen_args() if user is not None else {}


def user_name(key: str) -> str:
    """``omw-`` and 12 hex digits of the environment key's SHA-256 (user names are short)."""
    return USER_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:12]


def ensure_user(key: str, home: Path) -> EnvironmentUser:
    """The environment's system user, created (``useradd --system``) if it does not exist yet."""
    return ensure_system_user(user_name(key), home, f"openmwaa environment {key}")


def ensure_system_user(name: str, home: Path, comment: str) -> EnvironmentUser:
    """A system user (no login shell), created if it does not exist yet."""
    with _lock:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            _useradd(name, comment, home)
            entry = pwd.getpwnam(name)
    return EnvironmentUser(name, entry.pw_uid, entry.pw_gid)


def _useradd(name: str, comment: str, home: Path) -> None:
    argv = [
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        str(home),
        "--shell",
        "/usr/sbin/nologin",
        "--comment",
        comment,
        name,
    ]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvironmentSetupError(f"Cannot create the system user {name}: {exc}.") from exc
    if done.returncode not in (0, _USERADD_EXISTS):
        raise EnvironmentSetupError(
            f"Cannot create the system user {name} (useradd exit code "
            f"{done.returncode}): {output_tail(done.stderr or done.stdout)}"
        )


def hand_over(home: Path, user: EnvironmentUser) -> None:
    """Make ``home`` (mode 0700) and what is in it the user's, except openmwaa's own entries.

    The walk goes by file descriptors (``os.fwalk``): links are changed, never followed, even
    if the environment's code swaps a folder for a link while it runs.
    """
    fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (user.uid, user.gid):
            os.fchown(fd, user.uid, user.gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    for root, dirs, files, root_fd in os.fwalk(home, follow_symlinks=False):
        if Path(root) == home:
            dirs[:] = [d for d in dirs if d not in OPENMWAA_OWNED]
        for name in (*dirs, *files):
            st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            if (st.st_uid, st.st_gid) != (user.uid, user.gid):
                os.chown(name, user.uid, user.gid, dir_fd=root_fd, follow_symlinks=False)


def give(paths: Iterable[Path], user: EnvironmentUser | None) -> None:
    """Hand entries right below a home (e.g. a database openmwaa just wrote) to the user."""
    if user is None:
        return
    for path in paths:
        if path.exists() or path.is_symlink():
            _chown(path, user)


def _chown(path: Path, user: EnvironmentUser) -> None:
    st = path.lstat()
    if (st.st_uid, st.st_gid) != (user.uid, user.gid):
        os.chown(path, user.uid, user.gid, follow_symlinks=False)


def check_reachable(
    user: EnvironmentUser, python: Path, folders: Sequence[Path], env: Mapping[str, str], cwd: Path
) -> None:
    """Prove the user can run the runtime's Python and read ``folders``, or say what stops it."""
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE, *map(str, folders)],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
            **user.popen_args(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = str(exc)
    else:
        if done.returncode == 0:
            return
        failure = output_tail(done.stderr or done.stdout) or f"exit code {done.returncode}"
    closed = [str(d) for d in _closed_directories([python, *folders])]
    hint = (
        f" These directories do not let other users through: {', '.join(closed)}; allow it "
        "(chmod o+x) or move the runtimes (OPENMWAA_RUNTIME_DIR), openmwaa's Python and the "
        "buckets somewhere they can reach."
        if closed
        else ""
    )
    raise EnvironmentSetupError(
        f"The environment's user {user.name} cannot run Airflow from {python} or read "
        f"{', '.join(map(str, folders))}: {failure}.{hint}"
    )


def _closed_directories(paths: Iterable[Path]) -> list[Path]:
    """Directories on the way to ``paths`` (links resolved) that others may not enter."""
    closed: list[Path] = []
    for path in paths:
        for target in {path.absolute(), path.resolve()}:
            for directory in reversed(target.parents):
                try:
                    mode = directory.stat().st_mode
                except OSError:
                    continue
                if not mode & 0o001 and directory not in closed:
                    closed.append(directory)
    return closed


def protect_data_dir(data_dir: Path, state_database_url: str, *, isolate: bool) -> None:
    """openmwaa's data directory: private, except that environments' users may pass through it.

    Isolated, the directory is 0711: an environment's user reaches its own home below it
    (and the default bucket folder) but cannot list it, and every secret in it is 0600. The
    SQLite state database is created 0600 before SQLAlchemy opens it (SQLite gives its journal
    files the database's mode), and a database left readable by an older version is tightened.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if isolate:
        os.chmod(data_dir, 0o711)  # noqa: S103 (enter only: no listing, every secret in it 0600)
    prefix = "sqlite:///"
    if not state_database_url.startswith(prefix):
        return
    db = Path(state_database_url.removeprefix(prefix).split("?", 1)[0])
    if not db.name or db.name == ":memory:":
        return
    os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
    for path in (
        db,
        db.with_name(db.name + "-wal"),
        db.with_name(db.name + "-shm"),
        db.with_name(db.name + "-journal"),
    ):
        if path.exists() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
