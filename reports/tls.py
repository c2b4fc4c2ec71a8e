"""A private CA and the collector's TLS certificate, made with `cryptography` by `baomi server init`.

Agents pin the CA file (`baomi audit enroll --ca DATA/tls/ca.pem`), so no public PKI is involved.
ECDSA P-256 keys: every TLS stack agents may use speaks it.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "baomi"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


#: Certificates are valid from this long before they are made: an agent whose clock is behind
#: (hours, on an office PC without NTP) must still accept a collector certificate issued or
#: re-issued just now (with 5 minutes, an agent 1 h slow refused it as "not yet valid").
BACKDATE = dt.timedelta(days=1)


def make_ca_and_server_cert(tls_dir: Path, names: list[str], days: int = 3650) -> None:
    """Write ca.pem/ca.key and server.pem/server.key; `names` are DNS names or IP addresses."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - BACKDATE
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("baomi audit collector CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    _write_key(ca_key, tls_dir / "ca.key")
    (tls_dir / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    issue_server_cert(tls_dir, names, days)


def issue_server_cert(tls_dir: Path, names: list[str], days: int = 825) -> None:
    """(Re)issue server.pem/server.key for `names` (DNS names or IPs), signed by the existing CA in
    `tls_dir`: agents that trust ca.pem keep trusting the collector under its new names."""
    ca_key = serialization.load_pem_private_key((tls_dir / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{tls_dir / 'ca.key'} is not the collector CA's EC key")
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.pem").read_bytes())
    now = dt.datetime.now(dt.UTC) - BACKDATE
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(min(now + dt.timedelta(days=days), ca.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    tmp = tls_dir / "server.key.new"
    if tmp.exists():
        tmp.unlink()
    _write_key(key, tmp)
    pem = tls_dir / "server.pem.new"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, tls_dir / "server.key")
    os.replace(pem, tls_dir / "server.pem")


def certificate_names(pem_path: Path) -> list[str]:
    """The DNS names and IP addresses the server certificate is valid for."""
    try:
        cert = x509.load_pem_x509_certificate(pem_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def client_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """A verifying client context trusting `ca_file` (or the system store when None)."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
