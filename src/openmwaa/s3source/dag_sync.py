"""Keeps every environment's DAG folder in step with the external S3: one poll every
``interval`` seconds over each (bucket, DAG prefix) in use, new and changed files fetched, deleted
ones removed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from openmwaa.s3source.client import SourceS3Error
from openmwaa.s3source.mirror import SourceMirror

log = logging.getLogger(__name__)

Targets = Callable[[], Iterable[tuple[str, str]]]


class DagSync:
    def __init__(self, mirror: SourceMirror, targets: Targets, *, interval: float) -> None:
        self._mirror = mirror
        self._targets = targets
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The last failure per target, so a lasting one is logged once, not at every poll.
        self._failing: dict[tuple[str, str], str] = {}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="openmwaa-dag-sync", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def poll_once(self) -> None:
        for bucket, prefix in sorted(set(self._targets())):
            try:
                result = self._mirror.sync_prefix(bucket, prefix)
            except (SourceS3Error, OSError) as exc:
                if self._failing.get((bucket, prefix)) != str(exc):
                    log.warning("DAG sync of s3://%s/%s failed: %s", bucket, prefix, exc)
                self._failing[(bucket, prefix)] = str(exc)
                continue
            if self._failing.pop((bucket, prefix), None) is not None:
                log.info("DAG sync of s3://%s/%s works again", bucket, prefix)
            if result.fetched or result.removed:
                log.info(
                    "DAG sync s3://%s/%s: %d fetched, %d removed",
                    bucket,
                    prefix,
                    result.fetched,
                    result.removed,
                )

    def _run(self) -> None:
        # At once first: changes made while openmwaa was down reach Airflow without waiting.
        while True:
            try:
                self.poll_once()
            except Exception:  # the loop must outlive any one failure
                log.exception("DAG sync poll failed")
            if self._stop.wait(self._interval):
                return
