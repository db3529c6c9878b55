"""An Airflow plugin in plugins.zip: registers a macro (``macros.openmwaa_e2e.shout``)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from e2e_lib.text import shout


class OpenMwaaE2ePlugin(AirflowPlugin):
    name = "openmwaa_e2e"
    macros = [shout]
