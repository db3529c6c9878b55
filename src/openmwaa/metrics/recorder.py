"""The metrics recorder: values from StatsD, the container sampler and PublishMetrics, aggregated
per series and minute in memory and written to the :class:`~openmwaa.store.metrics.MetricStore`.

A background thread flushes every ``flush_interval`` seconds and prunes minutes older than the
retention once in a while; a reader calls :meth:`flush` first, so what was recorded before a
query is in its answer. The number of distinct series is capped, so a DAG that invents task ids
by the thousand cannot grow the store without bound (what is dropped is counted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from openmwaa.store.metrics import RESOLUTION, Datapoint, MetricStore, SeriesKey

log = logging.getLogger(__name__)

#: Distinct series one server keeps at most (CloudWatch's own limits are per account and far higher).
MAX_SERIES: Final = 20_000


class MetricRecorder:
    def __init__(
        self,
        store: MetricStore,
        *,
        retention_seconds: float,
        flush_interval: float = 5.0,
        clock: Callable[[], float] = time.time,
        max_series: int = MAX_SERIES,
    ) -> None:
        self.store = store
        self._retention = retention_seconds
        self._interval = flush_interval
        self._clock = clock
        self._max_series = max_series
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        #: (series, minute) -> [count, sum, min, max], and the unit of each series.
        self._pending: dict[tuple[SeriesKey, int], list[float]] = {}
        self._units: dict[SeriesKey, str] = {}
        self._known: set[SeriesKey] = set()
        self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0

    def record(self, series: SeriesKey, value: float, unit: str, at: float | None = None) -> None:
        """One sample of ``series`` at ``at`` (default: now)."""
        self.record_set(series, StatisticSet(1.0, value, value, value), unit, at)

    def record_set(self, series: SeriesKey, stats: StatisticSet, unit: str, at: float | None = None) -> None:
        """A statistic set (PublishMetrics' StatisticValues) of ``series`` at ``at``."""
        minute = int((self._clock() if at is None else at) // RESOLUTION * RESOLUTION)
        with self._lock:
            if series not in self._known:
                if len(self._known) >= self._max_series:
                    self.dropped += 1
                    return
                self._known.add(series)
            self._units[series] = unit
            slot = self._pending.get((series, minute))
            if slot is None:
                self._pending[(series, minute)] = [stats.count, stats.total, stats.minimum, stats.maximum]
            else:
                slot[0] += stats.count
                slot[1] += stats.total
                slot[2] = min(slot[2], stats.minimum)
                slot[3] = max(slot[3], stats.maximum)

    def flush(self) -> None:
        """Write what is pending to the store."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                units = dict(self._units)
            self.store.add(
                [
                    Datapoint(series, minute, c, s, lo, hi, units.get(series, "None"))
                    for (series, minute), (c, s, lo, hi) in pending.items()
                ]
            )

    def prune(self) -> None:
        before = int(self._clock() - self._retention)
        removed = self.store.prune(before)
        if removed:
            log.info("metrics: removed %d datapoints older than the retention", removed)

    # Background thread --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metrics-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._safe_flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._safe_flush()
            if self._clock() - self._last_prune > 3600:
                self._last_prune = self._clock()
                try:
                    self.prune()
                except Exception:  # - a failed prune is retried next hour
                    log.exception("metrics: pruning failed")

    def _safe_flush(self) -> None:
        try:
            self.flush()
        except Exception:  # - keep the thread alive; the next flush tries again
            log.exception("metrics: writing datapoints failed")


@dataclass(frozen=True)
class EnvironmentRef:
    """Whose metrics: the environment's account, region and name."""

    account_id: str
    region: str
    name: str


@dataclass(frozen=True)
class StatisticSet:
    count: float
    total: float
    minimum: float
    maximum: float


def environment_series(
    environment: EnvironmentRef, namespace: str, name: str, extra: Mapping[str, str]
) -> SeriesKey:
    """A series of one environment: its dimensions plus ``Environment``."""
    return SeriesKey.of(
        environment.account_id,
        environment.region,
        namespace,
        name,
        {**extra, "Environment": environment.name},
    )
