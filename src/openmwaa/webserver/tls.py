"""HTTPS for the environments' web servers: a local certificate authority and the server certificate.

On first use openmwaa makes a CA in ``<data_dir>/tls/ca.pem`` (key ``ca-key.pem``, 0600) and signs a
server certificate for ``127.0.0.1`` / ``localhost`` (and any extra host names configured) with it.
Trust ``ca.pem`` once (``REQUESTS_CA_BUNDLE``, ``curl --cacert``, the OS or browser store) and every
environment's ``https://127.0.0.1:<port>`` verifies. ``ca-bundle.pem`` is ``ca.pem`` appended to the
public roots (certifi's, when installed), for tools that take one bundle for everything.
The server certificate is renewed when it nears expiry or no longer names every host.

The CA can sign for those hosts only: its critical NameConstraints extension permits exactly the
names and addresses it issues for, so clients refuse anything else its key signs (whoever
trusted ``ca.pem`` trusts it for loopback only, not for every site). A CA without them (made by
an older openmwaa) or not covering every host is replaced by a new one, which clients must trust
again.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openmwaa.auth.files import write_private_file

log = logging.getLogger(__name__)

CA_DAYS: Final = 3650
SERVER_DAYS: Final = 397
RENEW_BEFORE: Final = datetime.timedelta(days=30)
DEFAULT_HOSTS: Final = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """What uvicorn needs, and the CA file clients should trust (None for user-supplied certificates)."""

    certfile: Path
    keyfile: Path
    ca_file: Path | None


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _load_or_create_ca(
    tls_dir: Path, hosts: Sequence[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = tls_dir / "ca.pem", tls_dir / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        fresh = cert.not_valid_after_utc > _now() + RENEW_BEFORE
        if isinstance(key, ec.EllipticCurvePrivateKey) and fresh and _ca_permits(cert, hosts):
            return cert, key
        log.warning(
            "replacing the local CA %s (expiring, or not limited to %s); clients must trust the new one",
            cert_path,
            ", ".join(hosts),
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openmwaa"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"openmwaa local CA ({os.uname().nodename})"),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.NameConstraints(permitted_subtrees=_permitted(hosts), excluded_subtrees=None), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private_file(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _san(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _permitted(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """NameConstraints subtrees for exactly ``hosts``: each address alone, each name (and below it)."""
    subtrees: list[x509.GeneralName] = []
    for name in _san(hosts):
        if isinstance(name, x509.IPAddress):
            address = name.value
            subtrees.append(x509.IPAddress(ipaddress.ip_network(f"{address}/{address.max_prefixlen}")))
        else:
            subtrees.append(name)
    return subtrees


def _ca_permits(ca: x509.Certificate, hosts: Sequence[str]) -> bool:
    """True if ``ca`` is name-constrained (critically) and permits every host."""
    try:
        extension = ca.extensions.get_extension_for_class(x509.NameConstraints)
    except (x509.ExtensionNotFound, ValueError):
        return False
    permitted = set(extension.value.permitted_subtrees or ())
    return (
        extension.critical and not extension.value.excluded_subtrees and set(_permitted(hosts)) <= permitted
    )


def _server_cert_fits(path: Path, ca: x509.Certificate, hosts: Sequence[str]) -> bool:
    if not path.exists():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    if cert.issuer != ca.subject or cert.not_valid_after_utc <= _now() + RENEW_BEFORE:
        return False
    try:
        cert.verify_directly_issued_by(ca)
        present = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (x509.ExtensionNotFound, InvalidSignature, ValueError, TypeError):
        return False
    return set(_san(hosts)) <= present


def ensure_local_tls(data_dir: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> TlsFiles:
    """The local CA and a server certificate for ``hosts``, created or renewed as needed."""
    tls_dir = data_dir / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_cert, ca_key = _load_or_create_ca(tls_dir, hosts)
    cert_path, key_path = tls_dir / "server.pem", tls_dir / "server-key.pem"
    if not (_server_cert_fits(cert_path, ca_cert, hosts) and key_path.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_private_file(key_path, _key_pem(key))
        _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    _write_bundle(tls_dir, ca_cert)
    return TlsFiles(certfile=cert_path, keyfile=key_path, ca_file=tls_dir / "ca.pem")


def _write_bundle(tls_dir: Path, ca_cert: x509.Certificate) -> None:
    roots = b""
    try:
        import certifi  # optional: requests brings it

        roots = Path(certifi.where()).read_bytes()
    except (ImportError, OSError):
        pass
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    bundle = roots.rstrip(b"\n") + b"\n" + ca_pem if roots else ca_pem
    path = tls_dir / "ca-bundle.pem"
    if not path.exists() or path.read_bytes() != bundle:
        _write_public(path, bundle)
