"""The StatsD receiver: one UDP socket on loopback for every environment's Airflow.

Each environment's Airflow sends ``<prefix>.<metric>:<value>|<type>[|@rate]`` (StatsD-InfluxDB
tags after the name, ``,dag_id=x``, are accepted and set aside) with a prefix of
its own (``[metrics] statsd_prefix``, set by openmwaa and reserved): an HMAC of the environment's
secret, so the prefix says which environment a packet is from, and an environment's code, which
never sees another environment's secrets, cannot write into another environment's metrics.
One socket for the server rather than one port per environment: ports would be one more
allocation per environment to keep, and a loopback port is no better a proof of the sender
than the prefix.

Lines become MWAA metrics (:mod:`openmwaa.metrics.airflow_names`) in the recorder; the
executor's queued and running task gauges also go to ``AWS/MWAA`` as QueuedTasks and
RunningTasks, where MWAA keeps them as environment metrics.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from openmwaa.metrics.airflow_names import NAMESPACE, mwaa_metric
from openmwaa.metrics.recorder import EnvironmentRef, MetricRecorder, environment_series
from openmwaa.store.metrics import SeriesKey

log = logging.getLogger(__name__)

CONTAINER_NAMESPACE: Final = "AWS/MWAA"
_PREFIX_LABEL: Final = b"openmwaa statsd prefix v1"
_LINE: Final = re.compile(
    r"([A-Za-z0-9_.\-]{1,512})((?:,[A-Za-z0-9_.\-]{1,64}=[^,:|]{0,1024}){0,16})"
    r":([+-]?[0-9.eE+-]{1,32})\|(c|g|ms|h|s)(?:\|@([0-9.]+))?(?:\|.*)?"
)
_UNITS: Final = {"c": "Count", "g": "Count", "ms": "Milliseconds", "h": "Milliseconds"}
#: Executor gauges that MWAA also keeps in AWS/MWAA.
_ENVIRONMENT_GAUGES: Final = {"QueuedTasks", "RunningTasks"}
MAX_PACKET: Final = 65535


def statsd_prefix(token_secret: str) -> str:
    """The environment's StatsD prefix: unguessable without its secret, stable across restarts."""
    digest = hmac.new(token_secret.encode(), _PREFIX_LABEL, hashlib.sha256).hexdigest()
    return f"om{digest[:24]}"


@dataclass(frozen=True)
class StatsdSample:
    name: str
    value: float
    kind: str
    #: A gauge change ("+3|g") rather than a new value.
    delta: bool = False
    #: StatsD-InfluxDB tags (``name,dag_id=x:1|c``), sent when ``statsd_influxdb_enabled`` is on.
    tags: tuple[tuple[str, str], ...] = ()


def parse_line(line: str) -> StatsdSample | None:
    """One StatsD line, or None when it is not one this receiver understands."""
    match = _LINE.fullmatch(line.strip())
    if match is None:
        return None
    name, tag_text, raw, kind, rate = match.groups()
    try:
        value = float(raw)
        sample_rate = float(rate) if rate else 1.0
    except ValueError:
        return None
    if not math.isfinite(value) or not 0 < sample_rate <= 1:
        return None
    if kind == "c":
        value /= sample_rate
    tags = tuple((key, text) for key, _, text in (pair.partition("=") for pair in tag_text.split(",")[1:]))
    return StatsdSample(name, value, kind, delta=kind == "g" and raw[0] in "+-", tags=tags)


class StatsdReceiver:
    def __init__(
        self,
        recorder: MetricRecorder,
        environments: Callable[[], Mapping[str, EnvironmentRef]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``environments``: prefix -> environment, asked again when an unknown prefix arrives."""
        self._recorder = recorder
        self._environments = environments
        self._host = host
        self._port = port
        self._clock = clock
        self._prefixes: Mapping[str, EnvironmentRef] = {}
        self._refreshed = -math.inf
        self._gauges: dict[SeriesKey, float] = {}
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        #: Lines dropped: unknown prefix, malformed, or a metric MWAA does not publish.
        self.ignored = 0

    @property
    def bound_port(self) -> int | None:
        """The UDP port it listens on; None until started."""
        return None if self._socket is None else int(self._socket.getsockname()[1])

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self._host, self._port))
        sock.settimeout(0.5)
        self._socket = sock
        self._thread = threading.Thread(target=self._run, name="statsd-receiver", daemon=True)
        self._thread.start()
        log.info("StatsD receiver on udp://%s:%s", self._host, self.bound_port)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._socket is not None:
            self._socket.close()

    def _run(self) -> None:
        assert self._socket is not None
        while not self._stop.is_set():
            try:
                data = self._socket.recv(MAX_PACKET)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            try:
                self.handle_packet(data)
            except Exception:  # - one bad packet must not stop the receiver
                log.exception("StatsD: a packet could not be handled")

    def handle_packet(self, data: bytes) -> None:
        """Every line of one datagram (clients may batch lines separated by newlines)."""
        for line in data.decode("utf-8", "replace").splitlines():
            if line:
                self.handle_line(line)

    def handle_line(self, line: str) -> None:
        sample = parse_line(line)
        prefix, _, name = (sample.name if sample else "").partition(".")
        environment = self._environment(prefix) if sample and name else None
        metric = mwaa_metric(name) if environment else None
        if sample is None or environment is None or metric is None or sample.kind == "s":
            self.ignored += 1
            return
        series = environment_series(environment, NAMESPACE, metric.name, metric.dimensions)
        value = sample.value
        if sample.kind == "g":
            value = self._gauges.get(series, 0.0) + value if sample.delta else value
            self._gauges[series] = value
        unit = _UNITS[sample.kind]
        now = self._clock()
        self._recorder.record(series, value, unit, now)
        if metric.name in _ENVIRONMENT_GAUGES and metric.dimensions.get("Function") == "Executor":
            gauge = environment_series(environment, CONTAINER_NAMESPACE, metric.name, {})
            self._recorder.record(gauge, value, unit, now)

    def _environment(self, prefix: str) -> EnvironmentRef | None:
        found = self._prefixes.get(prefix)
        if found is None and self._clock() - self._refreshed > 5.0:
            # A new environment (or a stranger): look again, at most every few seconds.
            self._refreshed = self._clock()
            self._prefixes = dict(self._environments())
            found = self._prefixes.get(prefix)
        return found
