"""A per-lab certificate authority: CA, server and client certificates (ECDSA P-256).

Used by both backends, so the compose stack and the local broker trust the same kind of
material. ECDSA keeps TLS handshakes cheap for the broker (about 40 % less CPU than RSA).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class CertPair:
    """Paths of a PEM certificate and its private key."""

    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CertificateAuthority:
    """A lab CA stored as ``ca.pem`` / ``ca.key`` in a directory, created on first use."""

    def __init__(self, directory: Path, name: str = "mqttlab dev CA") -> None:
        self.directory = directory
        self.cert_path = directory / "ca.pem"
        self.key_path = directory / "ca.key"
        if not self.cert_path.exists() or not self.key_path.exists():
            self._create(name)
        self._cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{self.key_path} is not an EC key")
        self._key = loaded

    def _create(self, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.key_path, _key_pem(key))
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _issue(self, common_name: str, *, server: bool, hosts: list[str]) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def server_cert(self, directory: Path, hosts: list[str] | None = None, name: str = "server") -> CertPair:
        """Issue (or reuse) a server certificate valid for ``hosts`` (default: this machine's loopback names)."""
        pair = CertPair(directory / f"{name}.pem", directory / f"{name}.key")
        if pair.cert.exists() and pair.key.exists():
            return pair
        hosts = hosts or ["localhost", "127.0.0.1", "::1", socket.gethostname()]
        cert, key = self._issue(hosts[0], server=True, hosts=hosts)
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(pair.key, key)
        pair.cert.write_bytes(cert)
        return pair

    def client_cert(self, directory: Path, common_name: str) -> CertPair:
        """Issue a client certificate whose CN is ``common_name`` (the broker's username for it)."""
        directory.mkdir(parents=True, exist_ok=True)
        pair = CertPair(directory / f"{common_name}.pem", directory / f"{common_name}.key")
        if pair.cert.exists() and pair.key.exists():
            return pair
        cert, key = self._issue(common_name, server=False, hosts=[])
        _write_private(pair.key, key)
        pair.cert.write_bytes(cert)
        return pair
