"""Test certificates, made with the cryptography package: a CA, a server certificate for
127.0.0.1 / localhost, a client certificate from the same CA (mTLS) and a rogue CA with a
client certificate of its own (which the server must refuse)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_ORG = "Quiver Tests"
CLIENT_CN = "scorer"


@dataclass
class Certs:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca_cert: Path
    rogue_client_cert: Path
    rogue_client_key: Path
    #: The policy principal of the client certificate (RFC 2253 subject, most specific first).
    client_principal: str = f"cert:CN={CLIENT_CN},O={CLIENT_ORG}"


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str, org: str = CLIENT_ORG) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, *, cert=None, key=None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


def _ca(cn: str):
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(ca_cert, ca_key, cn: str, *, server: bool):
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
         .not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                        critical=False))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def make(dir: Path) -> Certs:
    ca, ca_key = _ca("Quiver Test CA")
    srv, srv_key = _leaf(ca, ca_key, "localhost", server=True)
    cli, cli_key = _leaf(ca, ca_key, CLIENT_CN, server=False)
    rogue, rogue_key = _ca("Rogue CA")
    rcli, rcli_key = _leaf(rogue, rogue_key, CLIENT_CN, server=False)
    return Certs(
        ca_cert=_write(dir / "ca.pem", cert=ca),
        server_cert=_write(dir / "server.pem", cert=srv),
        server_key=_write(dir / "server-key.pem", key=srv_key),
        client_cert=_write(dir / "client.pem", cert=cli),
        client_key=_write(dir / "client-key.pem", key=cli_key),
        rogue_ca_cert=_write(dir / "rogue-ca.pem", cert=rogue),
        rogue_client_cert=_write(dir / "rogue-client.pem", cert=rcli),
        rogue_client_key=_write(dir / "rogue-client-key.pem", key=rcli_key),
    )
