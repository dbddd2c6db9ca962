"""Certificates, server-name matching, rate limiter and discovery."""

from __future__ import annotations

import ipaddress
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from mimi_signaling.transport import PeerRateLimiter, SignalingClient, SignalingServer
from mimi_signaling.transport.discovery import PeerDirectory, normalize_base_url
from mimi_signaling.transport.tls import (
    names_in_certificate,
    peer_matches_server,
    server_name_host,
    ssl_hostname,
)
from support.transport_helpers import RecordingHandler, run


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.mark.parametrize(
    "server_name, san",
    [
        ("hub.test", x509.DNSName("hub.test")),
        ("hub.test:8448", x509.DNSName("hub.test")),
        ("Hub.Test", x509.DNSName("hub.test")),
        ("127.0.0.1:8448", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
        ("[::1]:8448", x509.IPAddress(ipaddress.ip_address("::1"))),
        ("[::1]", x509.IPAddress(ipaddress.ip_address("::1"))),
    ],
)
def test_certificate_names_the_server(pki, server_name, san):
    cert_path, key_path = pki.cert(server_name)
    cert = load(cert_path)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [san]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pki.ca[1]).st_mode) == 0o600
    der = cert.public_bytes(serialization.Encoding.DER)
    assert names_in_certificate(der) == [server_name_host(server_name)]


def test_server_name_host_and_matching():
    assert server_name_host("hub.test:8448") == "hub.test"
    assert server_name_host("HUB.test") == "hub.test"
    assert server_name_host("127.0.0.1:80") == "127.0.0.1"
    assert server_name_host("[0:0::1]:80") == "[::1]"
    assert ssl_hostname("[::1]:80") == "::1"
    assert peer_matches_server("hub.test", "hub.test:8448")
    assert peer_matches_server("[::1]", "[::1]:8448")
    assert not peer_matches_server("hub.test", "evil.test")
    assert not peer_matches_server("hub.test", "hub.test.evil")
    assert not peer_matches_server("127.0.0.1", "[::1]")


def test_rate_limiter_buckets():
    now = [0.0]
    rl = PeerRateLimiter(rate=1.0, burst=3, clock=lambda: now[0])
    assert [rl.allow("a") for _ in range(4)] == [True, True, True, False]
    assert rl.allow("b")
    now[0] += 1.0
    assert rl.allow("a") and not rl.allow("a")
    assert rl.retry_after("a") == pytest.approx(1.0)
    small = PeerRateLimiter(rate=1.0, burst=1, max_peers=4, clock=lambda: now[0])
    for i in range(100):
        small.allow(f"p{i}")
    assert len(small) <= 4


def test_normalize_base_url():
    assert normalize_base_url("https://127.0.0.1:8448/") == "https://127.0.0.1:8448"
    assert normalize_base_url("https://[::1]:1") == "https://[::1]:1"
    for bad in ("http://x", "https://", "https://x/path", "https://x:99999", "ftp://x"):
        with pytest.raises(ValueError):
            normalize_base_url(bad)


def test_discovery_through_well_known(pki):
    """A server name absent from the peer map is found through /.well-known/mimi/ds-domain."""

    async def main():
        handler = RecordingHandler()
        server = SignalingServer(handler, pki.server_context("localhost"), ds_domain="")
        port = await server.start("127.0.0.1", 0)
        server.ds_domain = f"127.0.0.1:{port}"  # the endpoint; certificate names localhost
        name = f"localhost:{port}"
        fetches = []
        directory = PeerDirectory()
        client = SignalingClient(pki.client_context("follower.test"), directory=directory, max_retries=0)
        original = client._fetch_text

        async def counting_fetch(url, server_name):
            fetches.append(url)
            return await original(url, server_name)

        client._fetch_text = counting_fetch  # type: ignore[method-assign]
        try:
            assert await client.request(name, "mimi.signaling.keys", b"1") == b"reply:1"
            assert await client.request(name, "mimi.signaling.keys", b"2") == b"reply:2"
        finally:
            await client.close()
            await server.stop()
        assert fetches == [f"https://localhost:{port}/.well-known/mimi/ds-domain"]  # cached
        assert [c[2] for c in handler.calls] == ["follower.test", "follower.test"]

    run(main())
