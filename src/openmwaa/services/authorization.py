"""IAM authorization of API calls: the caller's policies, the request's condition keys, the pure engine.

The authorizer only decides: it returns the engine's :class:`~openmwaa.iam.Decision`, and the
caller (the pipeline's Authorize step, the STS handler) records it and enforces it.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from openmwaa.iam import AuthzRequest, Decision, Policy, PolicyIndex, evaluate_indexed
from openmwaa.principal import Principal

PolicySource = Callable[[Principal], Sequence[Policy]]


class VpcMap:
    """``aws:SourceVpc``: which VPC a source address is in, from configured CIDRs (most specific wins)."""

    def __init__(self, cidrs: Mapping[str, str]) -> None:
        networks = [(ipaddress.ip_network(cidr, strict=False), vpc) for cidr, vpc in cidrs.items()]
        self._networks = sorted(networks, key=lambda item: item[0].prefixlen, reverse=True)
        # Per-request address parsing showed in profiles; callers come from few addresses.
        self._cached_lookup = functools.lru_cache(maxsize=4096)(self._lookup)

    def vpc_of(self, address: str) -> str | None:
        return self._cached_lookup(address)

    def _lookup(self, address: str) -> str | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        for network, vpc in self._networks:
            if ip.version == network.version and ip in network:
                return vpc
        return None


def condition_context(
    vpcs: VpcMap,
    *,
    principal: Principal | None,
    client_ip: str,
    received_at: float,
    secure_transport: bool,
    resource_tags: Mapping[str, str] | None = None,
    request_tags: Mapping[str, str] | None = None,
    tag_keys: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The global condition keys of a request (see the IAM issue's list)."""
    context: dict[str, Any] = {
        "aws:SourceIp": client_ip,
        "aws:CurrentTime": _iso_time(int(received_at)),
        "aws:EpochTime": str(int(received_at)),
        "aws:SecureTransport": "true" if secure_transport else "false",
    }
    vpc = vpcs.vpc_of(client_ip)
    if vpc is not None:
        context["aws:SourceVpc"] = vpc
    if principal is not None:
        context["aws:PrincipalArn"] = principal.arn
        context["aws:PrincipalAccount"] = principal.account_id
        context["aws:userid"] = principal.user_id
        if principal.kind == "user":
            context["aws:username"] = principal.name
    for key, value in (resource_tags or {}).items():
        context[f"aws:ResourceTag/{key}"] = value
    for key, value in (request_tags or {}).items():
        context[f"aws:RequestTag/{key}"] = value
    if tag_keys is not None:
        context["aws:TagKeys"] = list(tag_keys)
    return context


@functools.lru_cache(maxsize=8)
def _iso_time(epoch_second: int) -> str:
    return datetime.fromtimestamp(epoch_second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class IamAuthorizer:
    """Decides with the caller's identity policies; indexes them once per policy set."""

    def __init__(self, policies_for: PolicySource, *, cache_size: int = 4096) -> None:
        self._policies_for = policies_for
        # id(policies) -> (policies, index). The entry keeps ``policies`` alive, so its id cannot
        # be reused by another object while cached; a reloaded identities file brings new objects.
        self._cache: dict[int, tuple[Sequence[Policy], PolicyIndex]] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def index_for(self, principal: Principal) -> PolicyIndex:
        policies = self._policies_for(principal)
        entry = self._cache.get(id(policies))
        if entry is not None and entry[0] is policies:
            return entry[1]
        index = PolicyIndex.build(policies)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[id(policies)] = (policies, index)
        return index

    def decide(
        self, principal: Principal, action: str, resource: str, context: Mapping[str, Any]
    ) -> Decision:
        return evaluate_indexed(
            self.index_for(principal), AuthzRequest(action, resource, principal.arn, context)
        )
