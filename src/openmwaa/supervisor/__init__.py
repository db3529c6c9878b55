"""The environment supervisor: runs each environment's Airflow processes and reports on them.

Public names (what the services layer codes against) are re-exported here; importing this
package starts nothing.
"""

from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.supervisor.spec import EnvironmentEvent, EnvironmentSpec
from openmwaa.supervisor.supervisor import EnvironmentNotRunningError, Supervisor

__all__ = [
    "EnvironmentEvent",
    "EnvironmentNotRunningError",
    "EnvironmentSecrets",
    "EnvironmentSpec",
    "Supervisor",
]
