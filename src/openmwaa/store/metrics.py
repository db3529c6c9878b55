"""CloudWatch-style metric datapoints: one row per series and minute, with its statistic set.

A series is (account, region, namespace, metric name, dimensions); its dimensions are kept as
canonical JSON (sorted ``[name, value]`` pairs), so equal dimension sets are equal strings. Rows
hold SampleCount, Sum, Minimum and Maximum: every CloudWatch statistic but percentiles can be
computed from them, and rows of one minute merge when the same series is written again (SQLite
and PostgreSQL upserts). Kept in a database of its own (``<data_dir>/metrics.db`` by default)
so a busy environment's metrics never wait on, or slow, openmwaa's state database.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

#: Datapoints are kept per minute (CloudWatch's standard resolution).
RESOLUTION: Final = 60

_metadata = MetaData()
points = Table(
    "metric_points",
    _metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("namespace", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("dimensions", Text, primary_key=True),
    Column("minute", Integer, primary_key=True),
    Column("count", Float, nullable=False),
    Column("total", Float, nullable=False),
    Column("minimum", Float, nullable=False),
    Column("maximum", Float, nullable=False),
    Column("unit", String(32), nullable=False),
    Index("ix_metric_points_minute", "minute"),
)

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SeriesKey:
    account_id: str
    region: str
    namespace: str
    name: str
    dimensions: Dimensions

    @staticmethod
    def of(
        account_id: str, region: str, namespace: str, name: str, dimensions: Mapping[str, str]
    ) -> SeriesKey:
        return SeriesKey(account_id, region, namespace, name, tuple(sorted(dimensions.items())))


@dataclass(frozen=True)
class Datapoint:
    """The statistic set of one series over one minute (``minute``: its first second, epoch)."""

    series: SeriesKey
    minute: int
    count: float
    total: float
    minimum: float
    maximum: float
    unit: str


def encode_dimensions(dimensions: Dimensions) -> str:
    return json.dumps([list(pair) for pair in dimensions], separators=(",", ":"))


def decode_dimensions(text: str) -> Dimensions:
    return tuple((str(name), str(value)) for name, value in json.loads(text))


class MetricStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        _metadata.create_all(engine)

    @classmethod
    def open(cls, url: str) -> MetricStore:
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        return cls(engine)

    def close(self) -> None:
        self._engine.dispose()

    def add(self, datapoints: Sequence[Datapoint]) -> None:
        """Merge ``datapoints`` into the stored minutes (counts and sums add, extremes widen)."""
        if not datapoints:
            return
        rows = [
            {
                "account_id": d.series.account_id,
                "region": d.series.region,
                "namespace": d.series.namespace,
                "name": d.series.name,
                "dimensions": encode_dimensions(d.series.dimensions),
                "minute": d.minute,
                "count": d.count,
                "total": d.total,
                "minimum": d.minimum,
                "maximum": d.maximum,
                "unit": d.unit,
            }
            for d in datapoints
        ]
        dialect = self._engine.dialect.name
        insert = postgresql.insert(points) if dialect == "postgresql" else sqlite.insert(points)
        new = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=["account_id", "region", "namespace", "name", "dimensions", "minute"],
            set_={
                "count": points.c.count + new.count,
                "total": points.c.total + new.total,
                "minimum": func.min(points.c.minimum, new.minimum)
                if dialect != "postgresql"
                else func.least(points.c.minimum, new.minimum),
                "maximum": func.max(points.c.maximum, new.maximum)
                if dialect != "postgresql"
                else func.greatest(points.c.maximum, new.maximum),
                "unit": new.unit,
            },
        )
        with self._engine.begin() as conn:
            conn.execute(statement, rows)

    def datapoints(
        self, series: SeriesKey, start: int, end: int
    ) -> list[tuple[int, float, float, float, float, str]]:
        """(minute, count, sum, min, max, unit) of ``series`` for minutes in [start, end), oldest first."""
        c = points.c
        query = (
            select(c.minute, c.count, c.total, c.minimum, c.maximum, c.unit)
            .where(
                and_(
                    c.account_id == series.account_id,
                    c.region == series.region,
                    c.namespace == series.namespace,
                    c.name == series.name,
                    c.dimensions == encode_dimensions(series.dimensions),
                    c.minute >= start,
                    c.minute < end,
                )
            )
            .order_by(c.minute)
        )
        with self._engine.connect() as conn:
            return [
                (int(m), float(c), float(s), float(lo), float(hi), str(u))
                for m, c, s, lo, hi, u in conn.execute(query)
            ]

    def series(
        self,
        account_id: str,
        region: str,
        *,
        namespace: str | None = None,
        name: str | None = None,
        since: int | None = None,
    ) -> list[SeriesKey]:
        """Distinct series (optionally of one namespace / metric, or with data since ``since``), sorted."""
        c = points.c
        conditions = [c.account_id == account_id, c.region == region]
        if namespace is not None:
            conditions.append(c.namespace == namespace)
        if name is not None:
            conditions.append(c.name == name)
        if since is not None:
            conditions.append(c.minute >= since)
        query = (
            select(c.namespace, c.name, c.dimensions)
            .where(and_(*conditions))
            .group_by(c.namespace, c.name, c.dimensions)
            .order_by(c.namespace, c.name, c.dimensions)
        )
        with self._engine.connect() as conn:
            return [
                SeriesKey(account_id, region, ns, metric, decode_dimensions(dims))
                for ns, metric, dims in conn.execute(query)
            ]

    def prune(self, before: int) -> int:
        """Delete minutes older than ``before``; how many rows went."""
        with self._engine.begin() as conn:
            return int(conn.execute(delete(points).where(points.c.minute < before)).rowcount or 0)

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(points)).scalar_one())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
