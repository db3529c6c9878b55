"""Getting an environment's files and database ready, upgrading them, and removing them.

:class:`Provisioner` is what the runner's lifecycle needs; :class:`LocalProvisioner` does it
on this machine (:mod:`openmwaa.supervisor.prepare`). Every step raises an
:class:`~openmwaa.runtime.errors.EnvironmentSetupError` a user can act on.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from openmwaa.runtime import plugins, requirements
from openmwaa.runtime.airflow_config import Ports
from openmwaa.runtime.errors import EnvironmentSetupError
from openmwaa.runtime.installer import RuntimeManager
from openmwaa.supervisor import postgres, upgrade
from openmwaa.supervisor.prepare import (
    PreparedEnvironment,
    initialize_database,
    migrate_database,
    prepare_environment,
)
from openmwaa.supervisor.spec import EnvironmentSpec

log = logging.getLogger(__name__)


class Provisioner(Protocol):
    def prepare(
        self, spec: EnvironmentSpec, ports: Ports, progress: Callable[[str], None]
    ) -> PreparedEnvironment:
        """Runtime, requirements, plugins, startup script and configuration; starts nothing."""

    def has_database(self, prepared: PreparedEnvironment) -> bool:
        """False only when the environment's own SQLite file is missing."""

    def initialize_database(self, prepared: PreparedEnvironment, timeout: float) -> None:
        """A new environment's metadata database."""

    def begin_upgrade(self, prepared: PreparedEnvironment, from_version: str, timeout: float) -> None:
        """Keep a copy of the database, then migrate it to ``prepared``'s Airflow version.

        If the same upgrade was interrupted before, its copy is put back first.
        """

    def resume_upgrade(self, prepared: PreparedEnvironment, timeout: float) -> bool:
        """Settle an upgrade an earlier openmwaa left unfinished, before ``prepared`` starts.

        Migrates again from the copy if ``prepared`` runs the new version (True: finish it once
        healthy), puts the copy back if it runs the old one; False if there was none.
        """

    def roll_back_upgrade(self, spec: EnvironmentSpec) -> None:
        """Put the copy kept by :meth:`begin_upgrade` back (the upgrade failed); none: nothing."""

    def finish_upgrade(self, spec: EnvironmentSpec) -> None:
        """The upgraded environment is healthy: the copy is no longer needed."""

    def remove_unused(self, prepared: PreparedEnvironment) -> None:
        """Requirements and plugins installed for configurations no longer in force."""

    def remove(self, home: Path, database_url: str | None, python: Path | None) -> None:
        """The environment's files and its PostgreSQL database (dropped with ``python``'s psycopg2)."""


class LocalProvisioner:
    def __init__(self, runtimes: RuntimeManager, *, isolate: bool = False) -> None:
        """``isolate``: each environment as a system user of its own (runtime/isolation)."""
        self._runtimes = runtimes
        self._isolate = isolate

    def prepare(
        self, spec: EnvironmentSpec, ports: Ports, progress: Callable[[str], None]
    ) -> PreparedEnvironment:
        return prepare_environment(spec, self._runtimes, ports, progress, isolate=self._isolate)

    def has_database(self, prepared: PreparedEnvironment) -> bool:
        return prepared.spec.database_url is not None or (prepared.spec.home / "airflow.db").exists()

    def initialize_database(self, prepared: PreparedEnvironment, timeout: float) -> None:
        initialize_database(prepared, timeout=timeout)

    def begin_upgrade(self, prepared: PreparedEnvironment, from_version: str, timeout: float) -> None:
        home = prepared.spec.home
        wanted = upgrade.Upgrade(from_version, prepared.runtime.version)
        copy = self._copy(prepared.spec, prepared.runtime.python)
        journal = upgrade.read_journal(home)
        if journal == wanted:
            log.info("environment %s: the upgrade was interrupted; migrating again from the copy", home.name)
            copy.put_back()
        else:
            upgrade.remove_journal(home)  # one of another upgrade cannot be left over, but be sure
            if self.has_database(prepared):  # else migrate creates it: nothing to go back to
                copy.take()
                upgrade.write_journal(home, wanted)
        migrate_database(prepared, timeout=timeout)

    def resume_upgrade(self, prepared: PreparedEnvironment, timeout: float) -> bool:
        journal = upgrade.read_journal(prepared.spec.home)
        if journal is None:
            return False
        if journal.to_version == prepared.runtime.version:
            self.begin_upgrade(prepared, journal.from_version, timeout)
            return True
        self.roll_back_upgrade(prepared.spec)
        return False

    def roll_back_upgrade(self, spec: EnvironmentSpec) -> None:
        if upgrade.read_journal(spec.home) is None:
            return
        copy = self._copy(spec, self._python(spec.airflow_version))
        copy.put_back()
        upgrade.remove_journal(spec.home)
        copy.discard()

    def finish_upgrade(self, spec: EnvironmentSpec) -> None:
        if upgrade.read_journal(spec.home) is None:
            return
        upgrade.remove_journal(spec.home)
        try:
            self._copy(spec, self._python(spec.airflow_version)).discard()
        except EnvironmentSetupError as exc:  # harmless: the next upgrade replaces it, a delete drops it
            log.warning("environment %s: the copy taken before the upgrade stays: %s", spec.name, exc)

    def remove_unused(self, prepared: PreparedEnvironment) -> None:
        requirements.remove_other_requirements(prepared.spec.home, prepared.site_dir)
        plugins.remove_other_plugins(prepared.spec.home, prepared.plugins_dir)

    def remove(self, home: Path, database_url: str | None, python: Path | None) -> None:
        if database_url and postgres.is_postgres(database_url):
            python = python or self._python(None)
            if python is not None:
                postgres.drop_database(python, database_url)
        if home.exists():
            shutil.rmtree(home)

    def _copy(self, spec: EnvironmentSpec, python: Path | None) -> upgrade.DatabaseCopy:
        return upgrade.DatabaseCopy(spec.home, spec.database_url, python)

    def _python(self, version: str | None) -> Path | None:
        """An installed runtime's interpreter (``version``'s if installed), for psycopg2."""
        found = self._runtimes.installed_runtimes()
        chosen = [r for r in found if r.version == version] or found
        return chosen[0].python if chosen else None
