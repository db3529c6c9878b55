"""How often an environment's runner looks, and how long it waits (injectable, for fast tests)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    #: How often Airflow's health endpoint is asked while components start: a probe costs well
    #: under a millisecond of CPU, and every second saved here is a second sooner AVAILABLE.
    health_interval: float = 0.25
    #: How often an UNAVAILABLE environment is checked for having recovered.
    recovery_check_interval: float = 5.0
    #: How often an AVAILABLE environment's health is checked for hung components.
    liveness_check_interval: float = 15.0
    #: How often each web server replica in rotation is asked whether it still answers (one out
    #: of rotation is asked on every tick until it does).
    replica_probe_interval: float = 2.0
    #: A hung component gets this long to end on SIGTERM before SIGKILL.
    hung_stop_grace: float = 5.0
    #: Every other stopped component gets this long.
    stop_grace: float = 20.0
    #: The longest the runner waits for a command before it reconciles again.
    tick: float = 1.0
