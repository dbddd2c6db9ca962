"""Shared helpers for the transport tests: a PKI in tmp_path, fake handlers, raw TLS I/O."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Dict, List, Optional, Tuple, TypeVar

import mimi_signaling as ms
from mimi_signaling.transport import tls

T = TypeVar("T")

TEST_DEADLINE = 60.0  # seconds any one async test may take


def run(coro: Awaitable[T], deadline: float = TEST_DEADLINE) -> T:
    """Run a coroutine in a fresh event loop, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, deadline)

    return asyncio.run(bounded())


async def wait_until(predicate: Callable[[], bool], deadline: float = 20.0, step: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail after ``deadline`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"condition not met within {deadline} s")
        await asyncio.sleep(step)


@dataclass
class PKI:
    directory: Path
    ca: Tuple[Path, Path]
    certs: Dict[str, Tuple[Path, Path]] = field(default_factory=dict)

    def cert(self, server_name: str) -> Tuple[Path, Path]:
        if server_name not in self.certs:
            self.certs[server_name] = tls.issue_server_cert(self.ca, server_name, self.directory)
        return self.certs[server_name]

    def server_context(self, server_name: str) -> ssl.SSLContext:
        cert, key = self.cert(server_name)
        return tls.server_ssl_context(cert, key, self.ca[0])

    def client_context(self, server_name: str) -> ssl.SSLContext:
        cert, key = self.cert(server_name)
        return tls.client_ssl_context(cert, key, self.ca[0])


def make_pki(directory: Path, name: str = "ca") -> PKI:
    d = directory / name
    return PKI(d, tls.make_ca(d))


class RecordingHandler:
    """A SignalingHandler that records its calls and answers from a function."""

    def __init__(self, answer: Optional[Callable[[str, bytes, str], bytes]] = None) -> None:
        self.calls: List[Tuple[str, bytes, str]] = []
        self.answer = answer or (lambda t, p, peer: b"reply:" + p)

    async def handle(self, transaction_type: str, payload: bytes, peer: str) -> bytes:
        self.calls.append((transaction_type, payload, peer))
        return self.answer(transaction_type, payload, peer)


def envelope(transaction_type: str, payload: bytes, version: int = 1) -> bytes:
    """Hand-built TransactionEnvelope bytes (so tests can build bad ones too)."""
    t = transaction_type.encode()
    return version.to_bytes(2, "big") + ms.wire.encode_varint(len(t)) + t + ms.wire.encode_varint(len(payload)) + payload


@dataclass
class RawResponse:
    status: int
    headers: Dict[str, str]
    body: bytes

    def error(self) -> Tuple[int, str]:
        return ms.wire.decode_error_body(self.body)


def parse_response(data: bytes) -> RawResponse:
    """One HTTP/1.1 response read to its end (chunked, Content-Length or the end of the stream)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return RawResponse(status, headers, body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


async def open_raw(port: int, ctx: ssl.SSLContext, server_hostname: str):
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_hostname)


async def read_response(reader: asyncio.StreamReader, deadline: float = 20.0) -> RawResponse:
    """Read one HTTP response (the server closes after error responses, or Content-Length)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    data = b""
    while True:
        if b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    if len(rest) >= int(line.split(b":", 1)[1]):
                        return parse_response(data)
        remaining = end - loop.time()
        if remaining <= 0:
            raise AssertionError("no complete response in time")
        chunk = await asyncio.wait_for(reader.read(65536), remaining)
        if not chunk:
            return parse_response(data)
        data += chunk


def issue_custom_cert(pki: PKI, sans: List, stem: str) -> Tuple[Path, Path]:
    """A leaf certificate from ``pki``'s CA with exactly the given subjectAltName entries
    (none at all when empty), for tests of unusual certificates."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(pki.ca[0].read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca[1].read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = pki.directory / f"{stem}.pem", pki.directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
