"""Real endpoints: uvicorn in a thread, HTTPS verified with the local CA, stable ports, stop and restart."""

from __future__ import annotations

import socket
import ssl
import stat
from pathlib import Path

import pytest
import requests
from cryptography import x509

from openmwaa.webserver.manager import WebServerConfig, WebServerManager
from openmwaa.webserver.port_registry import PortRegistry
from openmwaa.webserver.tls import ensure_local_tls
from tests.unit.webserver.webtest_support import Harness, make_record


def _free_range(count: int = 20) -> tuple[int, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        first = int(probe.getsockname()[1])
    return first, min(first + count, 65535)


def test_local_ca_signs_a_server_cert_for_loopback(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    assert files.ca_file is not None
    assert stat.S_IMODE((tmp_path / "tls" / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(files.keyfile.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    cert = x509.load_pem_x509_certificate(files.certfile.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    # A second call keeps both (clients that trusted the CA keep working).
    again = ensure_local_tls(tmp_path)
    assert again.certfile.read_bytes() == files.certfile.read_bytes()
    assert files.ca_file.read_bytes() in (tmp_path / "tls" / "ca-bundle.pem").read_bytes()


def test_https_endpoint_verifies_with_the_local_ca(tmp_path: Path, harness: Harness) -> None:
    first, last = _free_range()
    manager = WebServerManager(tmp_path, WebServerConfig(port_first=first, port_last=last), harness.deps)
    record = make_record("af2", "2.11.0")
    try:
        hostname = manager.ensure(record)
        assert manager.ensure(record) == hostname  # idempotent
        ca = tmp_path / "tls" / "ca.pem"
        page = requests.get(f"https://{hostname}/aws_mwaa/aws-console-sso", verify=str(ca), timeout=10)
        assert page.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"https://{hostname}/aws_mwaa/aws-console-sso", timeout=10)
        # The documented session flow, over real HTTPS.
        login = requests.post(
            f"https://{hostname}/aws_mwaa/login",
            data={"token": harness.web_token("af2")},
            verify=str(ca),
            timeout=10,
        )
        assert login.status_code == 200 and login.cookies["session"]
        context = ssl.create_default_context(cafile=str(ca))
        host, port = hostname.rsplit(":", 1)
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        manager.shutdown()


def test_ports_are_stable_across_restarts_and_released_on_forget(tmp_path: Path, harness: Harness) -> None:
    first, last = _free_range()
    config = WebServerConfig(port_first=first, port_last=last, tls=False)
    record_a, record_b = make_record("af2", "2.11.0"), make_record("af3", "3.3.1")
    manager = WebServerManager(tmp_path, config, harness.deps)
    try:
        host_a, host_b = manager.ensure(record_a), manager.ensure(record_b)
        assert host_a != host_b
        assert requests.get(f"http://{host_a}/aws_mwaa/login", timeout=10).status_code == 200
        manager.stop(str(record_a.key))
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://{host_a}/aws_mwaa/login", timeout=10)
        assert manager.hostname(str(record_a.key)) == host_a  # remembered while stopped
    finally:
        manager.shutdown()
    restarted = WebServerManager(tmp_path, config, harness.deps)
    try:
        assert restarted.ensure(record_b) == host_b
        restarted.forget(str(record_b.key))
        assert restarted.hostname(str(record_b.key)) is None
    finally:
        restarted.shutdown()


def test_taken_port_moves_the_environment(tmp_path: Path) -> None:
    first, last = _free_range(5)
    registry = PortRegistry(tmp_path / "ports.json", first=first, last=last)
    sock = registry.bind("a", "127.0.0.1")
    port = sock.getsockname()[1]
    sock.close()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen(1)
    try:
        moved = registry.bind("a", "127.0.0.1")
        assert moved.getsockname()[1] != port
        assert registry.port("a") == moved.getsockname()[1]
        moved.close()
    finally:
        squatter.close()
