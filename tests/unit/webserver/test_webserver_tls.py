"""The local CA: name-constrained to the hosts it issues for, so its key cannot vouch for any other site."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openmwaa.webserver.tls import DEFAULT_HOSTS, ensure_local_tls


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def leaf_signed_by_ca(tls_dir: Path, host: str) -> x509.Certificate:
    """What anyone holding ``ca-key.pem`` could sign: a server certificate for ``host``."""
    ca = load(tls_dir / "ca.pem")
    ca_key = serialization.load_pem_private_key((tls_dir / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def verify(tls_dir: Path, leaf: x509.Certificate, host: str) -> None:
    """Path validation as a client does it (RFC 5280, with NameConstraints)."""
    store = verification.Store([load(tls_dir / "ca.pem")])
    try:
        subject: x509.verification.Subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(subject)
    verifier.verify(leaf, [])


def test_the_ca_is_constrained_to_exactly_the_loopback_hosts_it_issues_for(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path)
    ca = load(tmp_path / "tls" / "ca.pem")
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees or ()) == {
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
        x509.IPAddress(ipaddress.ip_network("::1/128")),
    }
    for host in DEFAULT_HOSTS:
        verify(tmp_path / "tls", load(files.certfile), host)
    assert stat.S_IMODE((tmp_path / "tls" / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(files.keyfile.stat().st_mode) == 0o600


@pytest.mark.parametrize("host", ["www.example.com", "login.microsoftonline.com", "10.0.0.1", "127.0.0.2"])
def test_a_certificate_its_key_signs_for_another_host_is_refused(tmp_path: Path, host: str) -> None:
    ensure_local_tls(tmp_path)
    with pytest.raises(verification.VerificationError):
        verify(tmp_path / "tls", leaf_signed_by_ca(tmp_path / "tls", host), host)


def test_an_unconstrained_ca_from_before_is_replaced(tmp_path: Path) -> None:
    ensure_local_tls(tmp_path)
    tls_dir = tmp_path / "tls"
    old_key = serialization.load_pem_private_key((tls_dir / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(old_key, ec.EllipticCurvePrivateKey)
    old = load(tls_dir / "ca.pem")
    unconstrained = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.subject)
        .public_key(old_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(old.not_valid_before_utc)
        .not_valid_after(old.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(old_key, hashes.SHA256())
    )
    (tls_dir / "ca.pem").write_bytes(unconstrained.public_bytes(serialization.Encoding.PEM))
    files = ensure_local_tls(tmp_path)
    new = load(tls_dir / "ca.pem")
    assert new.serial_number != unconstrained.serial_number
    new.extensions.get_extension_for_class(x509.NameConstraints)
    verify(tls_dir, load(files.certfile), "127.0.0.1")  # the server certificate was re-issued too


def test_a_configured_host_widens_the_constraints_by_that_host_only(tmp_path: Path) -> None:
    first = load(ensure_local_tls(tmp_path).ca_file or Path())
    files = ensure_local_tls(tmp_path, (*DEFAULT_HOSTS, "airflow.internal"))
    ca = load(tmp_path / "tls" / "ca.pem")
    assert ca.serial_number != first.serial_number  # the old CA did not permit the new name
    verify(tmp_path / "tls", load(files.certfile), "airflow.internal")
    with pytest.raises(verification.VerificationError):
        verify(tmp_path / "tls", leaf_signed_by_ca(tmp_path / "tls", "example.com"), "example.com")
    assert ensure_local_tls(tmp_path, (*DEFAULT_HOSTS, "airflow.internal")).ca_file is not None
    assert load(tmp_path / "tls" / "ca.pem").serial_number == ca.serial_number  # kept while it fits
