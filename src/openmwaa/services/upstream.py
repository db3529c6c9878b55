"""The HTTP client openmwaa uses to reach environments' Airflow on loopback."""

from __future__ import annotations

from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from openmwaa.services.write_gate import SerializedWritesTransport, WriteGates


def airflow_http_client(
    *,
    timeout: httpx.Timeout | float,
    transport: httpx.AsyncBaseTransport | None = None,
    max_connections: int = 200,
    write_gates: WriteGates | None = None,
) -> httpx.AsyncClient:
    """One pooled client that serves every caller, so it must stay stateless between them.

    - no cookie is ever kept: one caller's Airflow session (Airflow 2) or refreshed token
      (Airflow 3) must never ride along on another caller's request;
    - no HTTP(S)_PROXY from the environment: Airflow is on loopback;
    - redirects are the caller's business, not followed here;
    - with ``write_gates``, unsafe requests reach each Airflow one at a time (see ``write_gate``).
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=min(50, max_connections))
    if write_gates is not None:
        inner = transport or httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
        transport = SerializedWritesTransport(inner, write_gates)
    return httpx.AsyncClient(
        timeout=timeout,
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        limits=limits,
    )
