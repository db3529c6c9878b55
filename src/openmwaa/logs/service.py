"""The CloudWatch Logs operations over environments' log files (no wire format, no HTTP here).

Groups are ``airflow-<Env>-<Module>`` for each environment's enabled modules; streams and events
come from :mod:`openmwaa.logs.files` and :mod:`openmwaa.logs.reader`. Every read is bounded: a
response holds at most ``limit`` events and about 1 MB, and one FilterLogEvents call scans at
most ``scan_budget`` bytes before it hands back a token to go on from.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.logs import files, reader, search
from openmwaa.logs.groups import LogGroupName, enabled_modules, group_arn
from openmwaa.logs.patterns import parse_pattern
from openmwaa.logs.tokens import TokenSigner

MAX_RESPONSE_BYTES: Final = 1_048_576
EVENT_OVERHEAD: Final = 26
DEFAULT_EVENTS: Final = 10_000
DEFAULT_DESCRIBE: Final = 50
SCAN_BUDGET: Final = 64 * 1024 * 1024
#: FilterLogEvents opens at most this many streams at once (the most recently written).
MAX_FILTER_STREAMS: Final = 256


@dataclass(frozen=True)
class EnvironmentLogs:
    name: str
    logging_configuration: Mapping[str, Any]
    logs_dir: Path
    created_at: float


#: Every environment of this account and region, and one by name (None if there is none).
ListEnvironments = Callable[[], Sequence[EnvironmentLogs]]
FindEnvironment = Callable[[str], EnvironmentLogs | None]


class LogsService:
    def __init__(
        self,
        *,
        list_environments: ListEnvironments,
        find_environment: FindEnvironment,
        signer: TokenSigner,
        region: str,
        account_id: str,
        scan_budget: int = SCAN_BUDGET,
    ) -> None:
        self._list = list_environments
        self._find = find_environment
        self._signer = signer
        self._region = region
        self._account_id = account_id
        self._scan_budget = scan_budget

    # Groups --------------------------------------------------------------------------------

    def group_arn(self, name: str) -> str:
        return group_arn(self._region, self._account_id, name)

    def group_name(self, params: Mapping[str, Any]) -> str:
        """``logGroupName`` or ``logGroupIdentifier`` (a name or this account's group ARN)."""
        name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
        if (name is None) == (identifier is None):
            raise ValidationError("Exactly one of logGroupName and logGroupIdentifier must be given.")
        value = str(name if name is not None else identifier)
        prefix = self.group_arn("")
        if identifier is not None and value.startswith("arn:"):
            if not value.startswith(prefix):
                raise ResourceNotFoundError("The specified log group does not exist.")
            value = value[len(prefix) :].removesuffix(":*")
        return value

    def group_names(self, prefix: str, pattern: Any) -> list[tuple[str, float]]:
        """The groups (name, creation time) whose name starts with ``prefix`` and contains ``pattern``."""
        found = []
        for env in self._list():
            for suffix in enabled_modules(env.logging_configuration):
                name = str(LogGroupName(env.name, suffix))
                if name.startswith(prefix) and (not pattern or str(pattern).lower() in name.lower()):
                    found.append((name, env.created_at))
        return sorted(found)

    def describe_log_groups(
        self, params: Mapping[str, Any], allowed: Callable[[str], bool]
    ) -> dict[str, Any]:
        prefix = str(params.get("logGroupNamePrefix") or "")
        pattern = params.get("logGroupNamePattern")
        limit = int(params.get("limit") or DEFAULT_DESCRIBE)
        query = _digest({"op": "groups", "prefix": prefix, "pattern": pattern})
        after = ""
        if params.get("nextToken") is not None:
            token = self._signer.open(str(params["nextToken"]), {"q": str, "after": str})
            if token["q"] != query:
                raise ValidationError("The specified nextToken is invalid.")
            after = token["after"]
        groups = [
            {
                "logGroupName": name,
                "creationTime": int(created_at * 1000),
                "metricFilterCount": 0,
                "arn": self.group_arn(name) + ":*",
                "logGroupArn": self.group_arn(name),
                "storedBytes": 0,
                "logGroupClass": "STANDARD",
            }
            for name, created_at in self.group_names(prefix, pattern)
            if name > after and allowed(name)
        ]
        groups.sort(key=lambda g: str(g["logGroupName"]))
        out: dict[str, Any] = {"logGroups": groups[:limit]}
        if len(groups) > limit:
            out["nextToken"] = self._signer.issue({"q": query, "after": groups[limit - 1]["logGroupName"]})
        return out

    # Streams -------------------------------------------------------------------------------

    def describe_log_streams(self, group: str, params: Mapping[str, Any]) -> dict[str, Any]:
        logs_dir, suffix = self._group(group)
        prefix = str(params.get("logStreamNamePrefix") or "")
        order = str(params.get("orderBy") or "LogStreamName")
        descending = params.get("descending") is True
        if order not in ("LogStreamName", "LastEventTime"):
            raise ValidationError("orderBy must be LogStreamName or LastEventTime")
        if prefix and order == "LastEventTime":
            raise ValidationError("Cannot order by LastEventTime with a logStreamNamePrefix.")
        limit = int(params.get("limit") or DEFAULT_DESCRIBE)
        query = _digest({"op": "streams", "g": group, "p": prefix, "o": order, "d": descending})
        start = 0
        if params.get("nextToken") is not None:
            token = self._signer.open(str(params["nextToken"]), {"q": str, "i": int})
            if token["q"] != query:
                raise ValidationError("The specified nextToken is invalid.")
            start = token["i"]
        streams = [s for s in files.group_streams(logs_dir, suffix) if s.name.startswith(prefix)]
        if order == "LastEventTime":
            streams.sort(key=lambda s: (s.mtime, s.name))
        if descending:
            streams.reverse()
        page = streams[start : start + limit]
        out: dict[str, Any] = {
            "logStreams": [
                {
                    "logStreamName": s.name,
                    "creationTime": int(min(s.ctime, s.mtime) * 1000),
                    "lastEventTimestamp": int(s.mtime * 1000),
                    "lastIngestionTime": int(s.mtime * 1000),
                    "arn": f"{self.group_arn(group)}:log-stream:{s.name}",
                    "storedBytes": s.size,
                }
                for s in page
            ]
        }
        if start + limit < len(streams):
            out["nextToken"] = self._signer.issue({"q": query, "i": start + limit})
        return out

    # Events --------------------------------------------------------------------------------

    def get_log_events(self, group: str, params: Mapping[str, Any]) -> dict[str, Any]:
        logs_dir, suffix = self._group(group)
        stream_name = str(params.get("logStreamName") or "")
        stream = files.find_stream(logs_dir, suffix, stream_name)
        if stream is None:
            raise ResourceNotFoundError("The specified log stream does not exist.")
        limit = int(params.get("limit") or DEFAULT_EVENTS)
        start_time, end_time = params.get("startTime"), params.get("endTime")
        fields = {"g": str, "s": str, "i": int, "o": int, "d": str}
        default_ts = int(stream.mtime * 1000)
        try:
            opened = files.open_stream(stream.path, logs_dir)
        except OSError as exc:  # gone since it was listed, or swapped for a link
            raise ResourceNotFoundError("The specified log stream does not exist.") from exc
        with opened as file:
            end = reader.complete_end(file, stream.size)
            if params.get("nextToken") is not None:
                token = self._signer.open(str(params["nextToken"]), fields)
                if (token["g"], token["s"]) != (group, stream_name) or token["d"] not in ("f", "b"):
                    raise ValidationError("The specified nextToken is invalid.")
                if token["i"] != stream.inode or token["o"] > end:
                    raise ValidationError(
                        "The specified nextToken is no longer valid: the stream was rotated."
                    )
                forward, position = token["d"] == "f", token["o"]
            else:
                forward = params.get("startFromHead") is True
                position = 0 if forward else end
            if forward:
                events = _take(reader.read_forward(file, position, default_timestamp=default_ts), limit, end)
                first, last = position, (events[-1].end if events else position)
            else:
                events = reader.read_backward(file, position, limit, default_timestamp=default_ts)
                events = _trim_from_head(events)
                first = events[0].offset if events else position
                last = position
        selected = [
            e
            for e in events
            if (start_time is None or e.timestamp >= start_time)
            and (end_time is None or e.timestamp < end_time)
        ]

        def issue(direction: str, offset: int) -> str:
            return self._signer.issue(
                {"g": group, "s": stream_name, "i": stream.inode, "o": offset, "d": direction}
            )

        return {
            "events": [
                {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}
                for e in selected
            ],
            "nextForwardToken": issue("f", last),
            "nextBackwardToken": issue("b", first),
        }

    def filter_log_events(self, group: str, params: Mapping[str, Any]) -> dict[str, Any]:
        logs_dir, suffix = self._group(group)
        pattern = parse_pattern(params.get("filterPattern"))
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise ValidationError("logStreamNames and logStreamNamePrefix cannot both be given.")
        start_time, end_time = params.get("startTime"), params.get("endTime")
        limit = int(params.get("limit") or DEFAULT_EVENTS)
        query = _digest(
            {
                "g": group,
                "n": names,
                "p": prefix,
                "f": params.get("filterPattern"),
                "s": start_time,
                "e": end_time,
            }
        )
        after: tuple[int, str, int] | None = None
        if params.get("nextToken") is not None:
            token = self._signer.open(str(params["nextToken"]), {"q": str, "t": int, "s": str, "o": int})
            if token["q"] != query:
                raise ValidationError("The specified nextToken is invalid.")
            after = (token["t"], token["s"], token["o"])
        streams = _select_streams(files.group_streams(logs_dir, suffix), names, prefix, start_time)
        found: list[dict[str, Any]] = []
        size = 0
        scanned = 0
        resume: tuple[int, str, int] | None = None
        with ExitStack() as stack:
            sources = []
            for stream in streams:
                try:
                    file: BinaryIO = stack.enter_context(files.open_stream(stream.path, logs_dir))
                except OSError:
                    continue
                sources.append(_scan(stream, file, pattern.anchor))
            # (time, stream, offset) is unique: the merge never compares further.
            for timestamp, name, offset, end, raw, span_start in heapq.merge(*sources):
                key = (timestamp, name, offset)
                if after is not None and key <= after:
                    continue
                if end_time is not None and timestamp >= end_time:
                    continue
                scanned += end - span_start
                if (
                    raw is not None
                    and (start_time is None or timestamp >= start_time)
                    and pattern.matches_raw(raw)
                ):
                    cost = len(raw) + EVENT_OVERHEAD
                    if len(found) >= limit or size + cost > MAX_RESPONSE_BYTES:
                        break
                    found.append(
                        {
                            "logStreamName": name,
                            "timestamp": timestamp,
                            "message": raw[: reader.MAX_EVENT_BYTES].decode("utf-8", errors="replace"),
                            "ingestionTime": timestamp,
                            "eventId": _event_id(name, offset),
                        }
                    )
                    size += cost
                resume = key
                if scanned >= self._scan_budget:
                    break
            else:
                resume = None  # every stream read to its end
        out: dict[str, Any] = {"events": found, "searchedLogStreams": []}
        if resume is not None:
            out["nextToken"] = self._signer.issue(
                {"q": query, "t": resume[0], "s": resume[1], "o": resume[2]}
            )
        return out

    # Helpers -------------------------------------------------------------------------------

    def _group(self, group: str) -> tuple[Path, str]:
        parsed = LogGroupName.parse(group)
        env = self._find(parsed.environment) if parsed is not None else None
        if parsed is None or env is None or parsed.suffix not in enabled_modules(env.logging_configuration):
            raise ResourceNotFoundError("The specified log group does not exist.")
        return env.logs_dir, parsed.suffix


def _select_streams(
    streams: list[files.StreamFile], names: Any, prefix: Any, start_time: Any
) -> list[files.StreamFile]:
    if names is not None:
        wanted = set(names)
        streams = [s for s in streams if s.name in wanted]
    elif prefix:
        streams = [s for s in streams if s.name.startswith(str(prefix))]
    if start_time is not None:
        # A file last written before startTime holds no event after it.
        streams = [s for s in streams if s.mtime * 1000 + 1000 >= start_time]
    return sorted(streams, key=lambda s: s.mtime, reverse=True)[:MAX_FILTER_STREAMS]


def _scan(stream: files.StreamFile, file: BinaryIO, anchor: bytes | None) -> Iterator[search.Item]:
    """The stream's lines as the merge takes them (see :mod:`openmwaa.logs.search`)."""
    end_of_listing = reader.complete_end(file, stream.size)
    default = int(stream.mtime * 1000)
    if anchor is None:
        return search.scan_all(file, stream.name, end_of_listing, default)
    return search.scan_anchored(file, stream.name, end_of_listing, default, anchor)


def _take(events: Iterator[reader.Event], limit: int, end: int) -> list[reader.Event]:
    out: list[reader.Event] = []
    size = 0
    for event in events:
        cost = len(event.raw) + EVENT_OVERHEAD
        if event.end > end or len(out) >= limit or size + cost > MAX_RESPONSE_BYTES:
            break
        out.append(event)
        size += cost
    return out


def _trim_from_head(events: list[reader.Event]) -> list[reader.Event]:
    """The newest events that fit in one response."""
    size = 0
    for index in range(len(events) - 1, -1, -1):
        size += len(events[index].raw) + EVENT_OVERHEAD
        if size > MAX_RESPONSE_BYTES:
            return events[index + 1 :]
    return events


def _event_id(stream: str, offset: int) -> str:
    return f"{zlib.crc32(stream.encode()):010d}{offset:020d}"


def _digest(query: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:32]
