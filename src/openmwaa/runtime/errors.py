"""Why an environment could not be prepared; each error says what the user can do about it.

These are not wire errors: the supervisor turns them into environment events whose
``error_code`` and message end up in the environment's ``LastUpdate.Error``.

    EnvironmentSetupError              INCORRECT_CONFIGURATION
    ├── RuntimeInstallError            AIRFLOW_INSTALL_FAILED
    ├── RequirementsInstallError       REQUIREMENTS_INSTALL_FAILED
    ├── PluginsInstallError            PLUGINS_INSTALL_FAILED
    ├── StartupScriptError             STARTUP_SCRIPT_FAILED
    └── DatabaseSetupError             DATABASE_SETUP_FAILED
"""

from __future__ import annotations

from typing import ClassVar


class EnvironmentSetupError(Exception):
    error_code: ClassVar[str] = "INCORRECT_CONFIGURATION"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RuntimeInstallError(EnvironmentSetupError):
    error_code = "AIRFLOW_INSTALL_FAILED"


class RequirementsInstallError(EnvironmentSetupError):
    error_code = "REQUIREMENTS_INSTALL_FAILED"


class PluginsInstallError(EnvironmentSetupError):
    error_code = "PLUGINS_INSTALL_FAILED"


class StartupScriptError(EnvironmentSetupError):
    error_code = "STARTUP_SCRIPT_FAILED"


class DatabaseSetupError(EnvironmentSetupError):
    error_code = "DATABASE_SETUP_FAILED"


def output_tail(text: str | bytes, lines: int = 20, limit: int = 1500) -> str:
    """The last lines of a tool's output, short enough for an error message."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    tail = "\n".join(line.rstrip() for line in text.strip().splitlines()[-lines:])
    return tail[-limit:]
