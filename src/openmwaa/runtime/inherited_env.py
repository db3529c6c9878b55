"""What the environments' processes inherit from openmwaa's own environment: an allow-list.

openmwaa runs other people's code (DAGs, plugins, startup scripts, requirements' build
scripts), and the operator's environment often holds credentials (``AWS_*``, ``PG*``,
tokens). Nothing reaches that code unless it is named here: the locale, the time zone, where
executables and temporary files are, and which certificate authorities to trust. Everything
else a component sees is set by openmwaa itself (``airflow_config``) or exported by the
environment's startup script.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

INHERITED_VARIABLES: Final = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        # Trust settings (file paths, no secrets): HTTPS from tasks works as it does for openmwaa.
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    }
)
INHERITED_PREFIXES: Final = ("LC_",)
DEFAULT_PATH: Final = "/usr/local/bin:/usr/bin:/bin"


def is_inherited(name: str) -> bool:
    return name in INHERITED_VARIABLES or name.startswith(INHERITED_PREFIXES)


def inherited_environment(environ: Mapping[str, str], *, home: Path | str) -> dict[str, str]:
    """The allowed part of ``environ``, with ``HOME`` the environment's own home."""
    env = {k: v for k, v in environ.items() if is_inherited(k)}
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = str(home)
    return env
