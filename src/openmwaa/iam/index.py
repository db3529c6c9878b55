"""PolicyIndex: a principal's statements bucketed by action, so unrelated statements cost nothing.

Statements naming exact actions (``airflow:CreateEnvironment``) go into a bucket per action;
wildcard actions within one service (``airflow:Get*``) into a bucket per service; ``*`` and
NotAction statements into a small list consulted for every request. For each bucket the
candidates are merged ahead of time, in policy order, so a lookup is one dict access.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from openmwaa.iam.policy import Policy, Statement
from openmwaa.iam.request import StatementRef

#: (policy name, statement, its ref when prebuilt); position in a tuple is the evaluation order.
Entry = tuple[str, Statement, StatementRef | None]


@dataclass(frozen=True, slots=True)
class PolicyIndex:
    statement_count: int
    errors: tuple[str, ...]
    by_action: dict[str, tuple[Entry, ...]]
    by_service: dict[str, tuple[Entry, ...]]
    anywhere: tuple[Entry, ...]

    @classmethod
    def build(cls, policies: Sequence[Policy]) -> PolicyIndex:
        errors = tuple(
            f"policy {p.name!r} is a {p.kind} policy, not an identity policy"
            for p in policies
            if p.kind != "identity"
        )
        # Refs are built once here, not per evaluation.
        ordered = [(name, st, StatementRef(name, st.sid, st.index)) for name, st, _ in iter_entries(policies)]
        position = {id(entry[1]): n for n, entry in enumerate(ordered)}
        exact: defaultdict[str, list[Entry]] = defaultdict(list)
        per_service: defaultdict[str, list[Entry]] = defaultdict(list)
        anywhere: list[Entry] = []
        for entry in ordered:
            statement = entry[1]
            if statement.not_action or any(a.service is None for a in statement.actions):
                anywhere.append(entry)
                continue
            for action in statement.actions:
                assert action.service is not None
                if action.exact is not None:
                    exact[action.exact].append(entry)
                else:
                    per_service[action.service].append(entry)

        def merged(*groups: Iterable[Entry]) -> tuple[Entry, ...]:
            unique = {id(e[1]): e for group in groups for e in group}
            return tuple(sorted(unique.values(), key=lambda e: position[id(e[1])]))

        services = set(per_service) | {key.partition(":")[0] for key in exact}
        return cls(
            statement_count=len(ordered),
            errors=errors,
            by_action={
                key: merged(group, per_service[key.partition(":")[0]], anywhere)
                for key, group in exact.items()
            },
            by_service={service: merged(per_service[service], anywhere) for service in services},
            anywhere=tuple(anywhere),
        )

    def candidates(self, action: str, service: str) -> tuple[Entry, ...]:
        """Statements that may match the lower-cased ``action`` (a superset; matching still checks)."""
        found = self.by_action.get(action)
        if found is not None:
            return found
        found = self.by_service.get(service)
        return found if found is not None else self.anywhere


def iter_entries(policies: Sequence[Policy]) -> Iterable[Entry]:
    for policy in policies:
        for statement in policy.statements:
            yield policy.name, statement, None
