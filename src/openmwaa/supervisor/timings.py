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
    #: UpdateEnvironment with WorkerReplacementStrategy GRACEFUL: the longest the workers' running
    #: tasks may take to finish before the workers are stopped anyway (MWAA: 12 hours).
    graceful_worker_stop: float = 43200.0
    #: UpdateEnvironment with WorkerReplacementStrategy FORCED: how long the workers' tasks get
    #: to end on SIGTERM before they are killed, their supervisors left to tell Airflow (as
    #: Airflow's own task supervisor escalates, after 5 s).
    forced_task_grace: float = 5.0
    #: A worker scaled in gets this long to finish its tasks before it is stopped anyway.
    worker_drain_timeout: float = 43200.0
    #: How often the tasks queued and running are counted for the worker autoscaler.
    worker_probe_interval: float = 2.0
    #: The longest the runner waits for a command before it reconciles again.
    tick: float = 1.0
