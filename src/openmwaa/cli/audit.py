"""``openmwaa audit``: filter, follow and export the audit trail."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from openmwaa.settings import Settings

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when the command runs
    from openmwaa.store.audit import AuditEntry

#: Rows read per query; the whole trail is printed, a page at a time.
PAGE_SIZE = 1000


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "audit",
        help="show the audit trail of API calls (who, what, on which resource, decision)",
        description="Every API call is recorded: time, request id, principal, source IP, action, resource, "
        "decision, deciding statement, error code and any policy evaluation errors "
        "(never bodies or secrets).",
    )
    parser.add_argument("--principal", help="only calls by this principal ARN")
    parser.add_argument("--action", help="only this action, e.g. airflow:InvokeRestApi")
    parser.add_argument(
        "--decision", choices=["Allow", "ExplicitDeny", "ImplicitDeny"], help="only this decision"
    )
    parser.add_argument("--since", type=float, help="only calls in the last N seconds")
    parser.add_argument("--json", action="store_true", help="print JSON lines (for export)")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new calls as they happen")
    parser.set_defaults(run=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from openmwaa.store.audit import AuditLog
    from openmwaa.store.db import open_engine

    log = AuditLog(open_engine(settings.state_database_url))
    since = time.time() - args.since if args.since else None
    last_id: int | None = None
    while True:
        printed = 0
        for row_id, entry in log.query(
            since=since,
            after_id=last_id,
            principal=args.principal,
            action=args.action,
            decision=args.decision,
            limit=PAGE_SIZE,
        ):
            print(format_entry(entry, as_json=args.json), flush=True)
            last_id = row_id
            printed += 1
        if printed == PAGE_SIZE:
            continue  # a full page: there may be more right now
        if not args.follow:
            return 0
        time.sleep(1)


def format_entry(entry: AuditEntry, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(asdict(entry), sort_keys=True)
    when = datetime.fromtimestamp(entry.time, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = [
        when,
        entry.request_id[:8],
        entry.principal_arn or "-",
        entry.source_ip,
        entry.action or "-",
        entry.resource or "-",
        entry.decision or "-",
        str(entry.status),
        entry.error_code or "",
    ]
    if entry.policy_errors:
        fields.append(f"policy errors: {entry.policy_errors}")
    return "  ".join(fields)
