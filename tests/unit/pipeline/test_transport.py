"""Which requests may receive secrets: HTTPS, or a loopback peer; anything doubtful is neither."""

from __future__ import annotations

import pytest

from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.transport import is_confidential, is_loopback


def _ctx(client_ip: str, scheme: str) -> RequestContext:
    return RequestContext("id", "POST", "/", "", [], client_ip, scheme, 0.0)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("192.0.2.2", False),
        ("::ffff:10.0.0.1", False),
        ("fd00::2", False),
        ("", False),
        ("localhost", False),  # a name is not an address: deny on doubt
        ("127.0.0.1 ", False),
        ("not-an-ip", False),
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize(
    ("client_ip", "scheme", "confidential"),
    [
        ("127.0.0.1", "http", True),
        ("10.0.0.1", "https", True),
        ("10.0.0.1", "http", False),
        ("", "http", False),
        ("", "https", True),
    ],
)
def test_confidential_transport(client_ip: str, scheme: str, confidential: bool) -> None:
    assert is_confidential(_ctx(client_ip, scheme)) is confidential
