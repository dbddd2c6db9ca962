"""TLS material and contexts for the MIMI transport (PROFILE.md section 7).

Every server's certificate names its server name in subjectAltName (dNSName, or iPAddress
for IP literals); the same certificate serves as TLS server certificate and as TLS client
certificate (mutual TLS), so it carries both extended key usages.

``make_ca`` / ``issue_server_cert`` build a private CA for local deployments and tests.
A real deployment may use any CA; only the subjectAltName rule matters.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path
from typing import Optional, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "make_ca",
    "issue_server_cert",
    "server_ssl_context",
    "client_ssl_context",
    "peer_server_names",
    "names_in_certificate",
    "server_name_host",
    "ssl_hostname",
    "peer_matches_server",
]


# --- server names --------------------------------------------------------------------------



def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Key usage of our certificates: the key signs (TLS handshakes); a CA key also signs
    certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )

def server_name_host(server_name: str) -> str:
    """The host part of a server name, in the form certificates are compared with.

    Strips an optional ``:port``; DNS names are lower-cased (DNS is case-insensitive);
    IPv4 literals stay as they are; IPv6 literals keep their brackets (``[::1]``), the form
    they take inside room and user IDs.  A certificate cannot name a port, so two servers on
    one host with different ports cannot be told apart by TLS: they share an identity.
    """
    name = server_name.strip()
    if name.startswith("["):
        end = name.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 literal in server name {server_name!r}")
        addr = ipaddress.IPv6Address(name[1:end])
        return f"[{addr.compressed}]"
    host = name.rsplit(":", 1)[0] if ":" in name else name
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        return host.lower()


def ssl_hostname(server_name: str) -> str:
    """The value for ``server_hostname`` (SNI and hostname check): no port, no brackets."""
    host = server_name_host(server_name)
    return host[1:-1] if host.startswith("[") else host


def peer_matches_server(peer: str, server_name: str) -> bool:
    """True when a verified TLS ``peer`` (from :func:`peer_server_names`) is ``server_name``.

    Compares hosts only: the port of ``server_name`` is ignored (certificates name no ports).
    """
    try:
        return server_name_host(peer) == server_name_host(server_name)
    except ValueError:
        return False


def _san_for(server_name: str) -> x509.GeneralName:
    host = ssl_hostname(server_name)
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


# --- a private CA ------------------------------------------------------------------------------


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Private keys are created 0600 from the start, never world-readable for a moment.
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def make_ca(
    directory: PathLike, common_name: str = "mimi-signaling private CA", days: int = 3650
) -> Tuple[Path, Path]:
    """Create a CA key and self-signed certificate in ``directory``.

    Returns ``(ca_cert_path, ca_key_path)`` (``ca.pem``, ``ca.key``).  ECDSA P-256.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(signs_certificates=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path, key_path


def issue_server_cert(
    ca: Tuple[PathLike, PathLike],
    server_name: str,
    directory: PathLike,
    days: int = 825,
    file_stem: Optional[str] = None,
) -> Tuple[Path, Path]:
    """Issue a certificate for ``server_name`` signed by ``ca = (ca_cert_path, ca_key_path)``.

    The subjectAltName is the server name's host (a ``:port`` is stripped): an iPAddress for
    IP literals, else a dNSName.  Usable for serverAuth and clientAuth.
    Returns ``(cert_path, key_path)``; files are named after the host unless ``file_stem``.
    """
    ca_cert_path, ca_key_path = (Path(p) for p in ca)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)

    host = ssl_hostname(server_name)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_san_for(server_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _key_usage(signs_certificates=False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    stem = file_stem or host.replace(":", "_")
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path, key_path


# --- contexts ----------------------------------------------------------------------------------


def _harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.3 is negotiated whenever both ends have it (the default maximum); for 1.2 only
    # forward-secret AEAD suites.
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)


def server_ssl_context(cert: PathLike, key: PathLike, ca: PathLike) -> ssl.SSLContext:
    """Server side: presents ``cert``, requires a client certificate issued under ``ca``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(ca))
    ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return ctx


def client_ssl_context(cert: PathLike, key: PathLike, ca: PathLike) -> ssl.SSLContext:
    """Client side: presents ``cert``; verifies the server under ``ca`` and its host name.

    The client passes the *server name* it means to reach as ``server_hostname``, so the
    hostname check compares the server's subjectAltName with that name even when the
    connection goes to an address from the peer map (e.g. ``hub.test`` at 127.0.0.1).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    ctx.load_verify_locations(cafile=str(ca))
    ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return ctx


# --- peer identity -----------------------------------------------------------------------------


def names_in_certificate(der: bytes) -> list:
    """subjectAltName entries of a DER certificate as server-name hosts, in certificate order.

    dNSName values are lower-cased; iPAddress values become ``1.2.3.4`` or ``[::1]``.
    Other entry kinds (e-mail, URI, ...) are ignored.  No SAN extension: no names (the
    subject common name is deliberately not used, as in RFC 6125).
    """
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list = []
    for entry in san:
        if isinstance(entry, x509.DNSName):
            value = entry.value.lower().rstrip(".")
        elif isinstance(entry, x509.IPAddress):
            addr = entry.value
            if isinstance(addr, ipaddress.IPv6Address):
                value = f"[{addr.compressed}]"
            elif isinstance(addr, ipaddress.IPv4Address):
                value = str(addr)
            else:  # a network, not an address: names no single server
                continue
        else:
            continue
        if value and value not in names:
            names.append(value)
    return names


def peer_server_names(ssl_object: Optional[ssl.SSLObject]) -> set:
    """Server names (hosts, see :func:`server_name_host`) named by the verified peer certificate.

    Empty when there is no TLS or no peer certificate.  The TLS layer has already verified
    the chain (``CERT_REQUIRED``); this only reads the names.
    """
    if ssl_object is None:
        return set()
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return set()
    return set(names_in_certificate(der))
