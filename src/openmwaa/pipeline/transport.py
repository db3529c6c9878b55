"""Whether a request travelled where nobody else could read it: HTTPS, or this machine's loopback.

Answers that carry secrets (a worker's broker and database settings, a task's execution API
traffic) are only given to such requests. The peer address is the one uvicorn reports (after
its ``X-Forwarded-*`` handling, which it applies only to a proxy on loopback), so a proxy on this
machine that terminates TLS and forwards over loopback counts as confidential, and anything
that cannot be read as an address counts as not loopback: deny on doubt.
"""

from __future__ import annotations

import ipaddress

from openmwaa.pipeline.context import RequestContext


def is_loopback(address: str) -> bool:
    """``127.0.0.0/8``, ``::1``, or an IPv4-mapped IPv6 loopback address; anything unparsable is not."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_confidential(ctx: RequestContext) -> bool:
    """The request came over HTTPS, or from a peer on this machine's loopback interface."""
    return ctx.scheme == "https" or is_loopback(ctx.client_ip)
