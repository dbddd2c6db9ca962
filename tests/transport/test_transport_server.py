"""SignalingServer + SignalingClient over real mutual TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import AsyncIterator

import aiohttp
import pytest

import mimi_signaling as ms
from mimi_signaling.transport import (
    PeerRateLimiter,
    PeerVerificationError,
    SignalingClient,
    SignalingServer,
    TransportError,
    http_status_for,
)
from mimi_signaling.transport.tls import client_ssl_context
from support.transport_helpers import (
    RecordingHandler,
    envelope,
    make_pki,
    open_raw,
    read_response,
    run,
)

HUB = "hub.test"
FOLLOWER = "follower.test"
OTHER = "other.test"
SUBMIT = "mimi.signaling.submit"
GET_EVENT = "mimi.signaling.get_event"

ALL_ERRORS = [
    ms.MalformedError,
    ms.BadSignatureError,
    ms.BadContentHashError,
    ms.PolicyRejectedError,
    ms.UnknownRoomError,
    ms.NotFoundError,
    ms.NotHubError,
    ms.TooLargeError,
    ms.RateLimitedError,
    ms.UnauthorizedError,
    ms.UnsupportedVersionError,
    ms.InternalError,
]


async def start_hub(pki, handler, **kwargs) -> SignalingServer:
    server = SignalingServer(handler, pki.server_context(HUB), ds_domain=HUB, **kwargs)
    await server.start("127.0.0.1", 0)
    return server


@contextlib.asynccontextmanager
async def hub_server(pki, handler, **kwargs) -> AsyncIterator[SignalingServer]:
    """``start_hub`` for the length of a block."""
    server = await start_hub(pki, handler, **kwargs)
    try:
        yield server
    finally:
        await server.stop()


def client_for(pki, server: SignalingServer, as_name: str = FOLLOWER, **kwargs) -> SignalingClient:
    kwargs.setdefault("max_retries", 0)
    return SignalingClient(pki.client_context(as_name), peers={HUB: server.url}, **kwargs)


async def raw_post(pki, server, body: bytes, headers: dict, as_name: str = FOLLOWER):
    """POST with full control of headers; returns (status, body)."""
    connector = aiohttp.TCPConnector(ssl=pki.client_context(as_name))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(
            server.url + "/signaling", data=body, headers=headers, server_hostname=HUB
        ) as resp:
            return resp.status, await resp.read()


OCTET = {"Content-Type": "application/octet-stream"}


# --- the happy path ------------------------------------------------------------------------


def test_request_reaches_handler_with_verified_peer(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler) as server:
            async with client_for(pki, server) as client:
                answer = await client.request(HUB, SUBMIT, b"limited-event-bytes")
                answer2 = await client.request(HUB, GET_EVENT, b"")
        assert answer == b"reply:limited-event-bytes"
        assert answer2 == b"reply:"
        assert handler.calls == [
            (SUBMIT, b"limited-event-bytes", FOLLOWER),
            (GET_EVENT, b"", FOLLOWER),
        ]

    run(main())


def test_server_reports_real_port_and_serves_ds_domain(pki):
    async def main():
        async with hub_server(pki, RecordingHandler()) as server:
            assert server.port and server.port > 0
            connector = aiohttp.TCPConnector(ssl=pki.client_context(FOLLOWER))
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get(
                    server.url + "/.well-known/mimi/ds-domain", server_hostname=HUB
                ) as resp:
                    assert resp.status == 200
                    assert (await resp.text()).strip() == HUB

    run(main())


def test_peer_is_ip_literal_for_ip_certificate(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler) as server:
            async with client_for(pki, server, as_name="127.0.0.1:9999") as client:
                await client.request(HUB, SUBMIT, b"x")
        assert handler.calls[0][2] == "127.0.0.1"

    run(main())


# --- who may connect -----------------------------------------------------------------------


def test_client_without_certificate_is_refused(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler) as server:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(cafile=str(pki.ca[0]))  # trusts the hub, has no cert
            async with SignalingClient(ctx, peers={HUB: server.url}, max_retries=0) as client:
                with pytest.raises(TransportError):
                    await client.request(HUB, SUBMIT, b"x")
            # And at the TLS level: no HTTP answer at all.
            with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
                reader, writer = await open_raw(server.port, ctx, HUB)
                writer.write(b"GET /.well-known/mimi/ds-domain HTTP/1.1\r\nHost: hub.test\r\n\r\n")
                await writer.drain()
                data = await asyncio.wait_for(reader.read(100), 10)
                writer.close()
                if not data:
                    raise ConnectionError("closed without an answer")
        assert handler.calls == []

    run(main())


def test_client_with_certificate_from_another_ca_is_refused(pki, tmp_path):
    async def main():
        handler = RecordingHandler()
        server = await start_hub(pki, handler)
        rogue = make_pki(tmp_path, "rogue-ca")
        cert, key = rogue.cert(FOLLOWER)
        ctx = client_ssl_context(cert, key, pki.ca[0])  # trusts the real CA, own cert is rogue
        try:
            async with SignalingClient(ctx, peers={HUB: server.url}, max_retries=0) as client:
                with pytest.raises(TransportError):
                    await client.request(HUB, SUBMIT, b"x")
        finally:
            await server.stop()
        assert handler.calls == []

    run(main())


def test_server_certificate_for_another_name_is_refused(pki):
    async def main():
        handler = RecordingHandler()
        # The server at this address presents other.test's certificate.
        server = SignalingServer(handler, pki.server_context(OTHER), ds_domain=OTHER)
        await server.start("127.0.0.1", 0)
        try:
            async with SignalingClient(
                pki.client_context(FOLLOWER), peers={HUB: server.url}, max_retries=3
            ) as client:
                with pytest.raises(PeerVerificationError):
                    await client.request(HUB, SUBMIT, b"x")
                # The same address is fine when it is the server we meant.
                client.directory.add_peer(OTHER, server.url)
                assert await client.request(OTHER, SUBMIT, b"y") == b"reply:y"
        finally:
            await server.stop()
        assert [c[1] for c in handler.calls] == [b"y"]

    run(main())


def test_server_certificate_from_another_ca_is_refused(pki, tmp_path):
    async def main():
        handler = RecordingHandler()
        rogue = make_pki(tmp_path, "rogue-ca")
        cert, key = rogue.cert(HUB)
        from mimi_signaling.transport.tls import server_ssl_context

        server = SignalingServer(handler, server_ssl_context(cert, key, pki.ca[0]), ds_domain=HUB)
        await server.start("127.0.0.1", 0)
        try:
            async with client_for(pki, server) as client:
                with pytest.raises(PeerVerificationError):
                    await client.request(HUB, SUBMIT, b"x")
        finally:
            await server.stop()
        assert handler.calls == []

    run(main())


# --- bad requests never reach the handler --------------------------------------------------


def test_bad_requests_get_the_right_code_and_status(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler) as server:
            good = envelope(SUBMIT, b"x")
            cases = [
                # (body, headers, http status, error code)
                (good, {"Content-Type": "text/plain"}, 415, 1),
                (good, {"Content-Type": "application/json"}, 415, 1),
                (good, {**OCTET, "Content-Encoding": "gzip"}, 415, 1),
                (b"\x00\x01\xff", OCTET, 400, 1),
                (b"", OCTET, 400, 1),
                (good + b"\x00", OCTET, 400, 1),  # trailing bytes
                (envelope(SUBMIT, b"x", version=2), OCTET, 400, 11),
                (envelope(SUBMIT, b"x", version=0), OCTET, 400, 11),
                (envelope("mimi.signaling.nope", b"x"), OCTET, 400, 1),
                (envelope("mimi.delivery-service.add", b"x"), OCTET, 400, 1),
            ]
            for body, headers, status, code in cases:
                got_status, got_body = await raw_post(pki, server, body, headers)
                assert (got_status, ms.wire.decode_error_body(got_body)[0]) == (status, code), (body, headers)
            assert http_status_for(ms.UnsupportedVersionError) == 400
        assert handler.calls == []

    run(main())


def test_oversized_body_with_honest_content_length_is_refused_unread(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler, max_body_size=4096) as server:
            reader, writer = await open_raw(server.port, pki.client_context(FOLLOWER), HUB)
            # Headers and the envelope's first bytes (a submit, not a batch, whose bound is
            # larger): the 413 must come without the server waiting for 10 MB.
            writer.write(
                b"POST /signaling HTTP/1.1\r\nHost: hub.test\r\n"
                b"Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
                + envelope(SUBMIT, b"")[:-1]
            )
            await writer.drain()
            resp = await read_response(reader)
            writer.close()
        assert resp.status == 413
        assert resp.error()[0] == 8
        assert handler.calls == []

    run(main())


def test_oversized_chunked_body_is_cut_off(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler, max_body_size=4096) as server:
            reader, writer = await open_raw(server.port, pki.client_context(FOLLOWER), HUB)
            writer.write(
                b"POST /signaling HTTP/1.1\r\nHost: hub.test\r\n"
                b"Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            body = envelope(SUBMIT, b"z" * 20000)
            try:
                for i in range(0, len(body), 1000):
                    part = body[i : i + 1000]
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                    # No terminating chunk: a well-behaved server answers before the end.
            except ConnectionError:
                pass  # the server may already have closed after its answer
            resp = await read_response(reader)
            writer.close()
        assert resp.status == 413
        assert resp.error()[0] == 8
        assert handler.calls == []

    run(main())


def test_body_at_the_limit_is_accepted(pki):
    async def main():
        handler = RecordingHandler(lambda t, p, peer: b"")
        async with hub_server(pki, handler, max_body_size=4096) as server:
            body = envelope(SUBMIT, b"")
            body = envelope(SUBMIT, b"a" * (4096 - len(body) - 1))  # 2-byte length prefix
            assert len(body) == 4096
            status, answer = await raw_post(pki, server, body, OCTET)
        assert (status, answer) == (200, b"")
        assert len(handler.calls) == 1

    run(main())


# --- verdicts travel back as typed errors --------------------------------------------------


def test_handler_errors_come_back_as_the_same_class(pki):
    async def main():
        def answer(t, payload, peer):
            index = payload[0]
            raise ALL_ERRORS[index](f"message for {ALL_ERRORS[index].__name__} ü")

        handler = RecordingHandler(answer)
        async with hub_server(pki, handler) as server:
            async with client_for(pki, server) as client:
                for i, cls in enumerate(ALL_ERRORS):
                    with pytest.raises(cls) as info:
                        await client.request(HUB, SUBMIT, bytes([i]))
                    assert type(info.value) is cls
                    assert str(info.value) == f"message for {cls.__name__} ü"
            for i, cls in enumerate(ALL_ERRORS):
                status, body = await raw_post(pki, server, envelope(SUBMIT, bytes([i])), OCTET)
                assert status == http_status_for(cls)
                assert ms.wire.decode_error_body(body)[0] == cls.code

    run(main())


def test_status_table():
    expected = {
        ms.MalformedError: 400,
        ms.BadContentHashError: 400,
        ms.PolicyRejectedError: 403,
        ms.UnknownRoomError: 404,
        ms.NotFoundError: 404,
        ms.TooLargeError: 413,
        ms.RateLimitedError: 429,
        ms.UnsupportedVersionError: 400,
        ms.InternalError: 500,
    }
    for cls, status in expected.items():
        assert http_status_for(cls) == status, cls
    assert http_status_for(ms.BadSignatureError) in (400, 401)
    assert http_status_for(ms.NotHubError) in (400, 421)
    assert http_status_for(ms.UnauthorizedError) in (401, 403)


def test_unexpected_handler_exception_is_internal_500(pki, caplog):
    async def main():
        def answer(t, payload, peer):
            raise KeyError("secret detail")

        handler = RecordingHandler(answer)
        async with hub_server(pki, handler) as server:
            status, body = await raw_post(pki, server, envelope(SUBMIT, b"x"), OCTET)
            async with client_for(pki, server) as client:
                with pytest.raises(ms.InternalError) as info:
                    await client.request(HUB, SUBMIT, b"x")
        assert status == 500
        assert ms.wire.decode_error_body(body)[0] == 12
        assert "secret detail" not in str(info.value)

    with caplog.at_level("ERROR", logger="mimi_signaling.transport.server"):
        run(main())
    assert any(r.exc_info and "secret detail" in str(r.exc_info[1]) for r in caplog.records)


def test_client_retries_5xx_for_idempotent_types_only(pki):
    async def main():
        attempts = {"n": 0}

        def answer(t, payload, peer):
            attempts["n"] += 1
            if attempts["n"] < 3:
                raise ms.InternalError("try again")
            return b"finally"

        handler = RecordingHandler(answer)
        async with hub_server(pki, handler) as server:
            async with client_for(pki, server, max_retries=4, backoff_base=0.01, backoff_max=0.05) as client:
                assert await client.request(HUB, GET_EVENT, b"") == b"finally"
                assert attempts["n"] == 3
                attempts["n"] = 0
                with pytest.raises(ms.InternalError):
                    await client.request(HUB, SUBMIT, b"")  # never repeated
                assert attempts["n"] == 1
                attempts["n"] = 10
                handler.answer = lambda t, p, peer: (_ for _ in ()).throw(ms.PolicyRejectedError("no"))
                with pytest.raises(ms.PolicyRejectedError):
                    await client.request(HUB, GET_EVENT, b"")
        assert len(handler.calls) == 3 + 1 + 1  # the 4xx verdict was asked once

    run(main())


def test_connection_refused_is_retried_then_transport_error(pki):
    from mimi_signaling.testing.cluster import free_port

    async def main():
        ctx = pki.client_context(FOLLOWER)
        async with SignalingClient(
            ctx,
            peers={HUB: f"https://127.0.0.1:{free_port()}"},
            max_retries=2,
            backoff_base=0.01,
            backoff_max=0.02,
        ) as client:
            with pytest.raises(TransportError):
                await client.request(HUB, SUBMIT, b"x")

    run(main())


# --- rate limiting and slow peers ----------------------------------------------------------


def test_flooding_peer_is_rate_limited_others_are_served(pki):
    async def main():
        handler = RecordingHandler()
        # Practically no refill during the test: the outcome does not depend on its speed.
        server = await start_hub(pki, handler, rate_limiter=PeerRateLimiter(rate=0.001, burst=5))
        served = limited = 0
        try:
            async with client_for(pki, server, FOLLOWER) as flooder:
                for i in range(200):
                    try:
                        await flooder.request(HUB, GET_EVENT, b"%d" % i)
                        served += 1
                    except ms.RateLimitedError:
                        limited += 1
            async with client_for(pki, server, OTHER) as other:
                assert await other.request(HUB, GET_EVENT, b"hello") == b"reply:hello"
        finally:
            await server.stop()
        assert served == 5
        assert limited == 195
        assert [c[2] for c in handler.calls] == [FOLLOWER] * 5 + [OTHER]

    run(main())


def test_rate_limited_answer_has_retry_after(pki):
    async def main():
        async with hub_server(pki, RecordingHandler(), rate_limiter=PeerRateLimiter(rate=0.5, burst=1)) as server:
            first = await raw_post(pki, server, envelope(GET_EVENT, b""), OCTET)
            connector = aiohttp.TCPConnector(ssl=pki.client_context(FOLLOWER))
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post(
                    server.url + "/signaling", data=envelope(GET_EVENT, b""), headers=OCTET, server_hostname=HUB
                ) as resp:
                    second = resp.status, resp.headers.get("Retry-After"), await resp.read()
        assert first[0] == 200
        assert second[0] == 429
        assert 1 <= int(second[1]) <= 2
        assert ms.wire.decode_error_body(second[2])[0] == 9

    run(main())


def test_slow_body_is_cut_off(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler, body_timeout=1.0) as server:
            reader, writer = await open_raw(server.port, pki.client_context(FOLLOWER), HUB)
            writer.write(
                b"POST /signaling HTTP/1.1\r\nHost: hub.test\r\n"
                b"Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n"
            )
            await writer.drain()
            started = time.monotonic()
            read = asyncio.ensure_future(read_response(reader, deadline=30))
            # Trickle one byte every 50 ms (bounded: at most 600 bytes / 30 s).
            for _ in range(600):
                if read.done():
                    break
                try:
                    writer.write(b"x")
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.05)
            resp = await read
            elapsed = time.monotonic() - started
            writer.close()
        assert resp.status == 408
        assert resp.error()[0] == 1
        assert elapsed < 1.0 + 10  # cut off at the configured bound, far before the trickle ends
        assert handler.calls == []

    run(main())


def test_slow_headers_are_cut_off(pki):
    async def main():
        async with hub_server(pki, RecordingHandler(), keepalive_timeout=1.0) as server:
            reader, writer = await open_raw(server.port, pki.client_context(FOLLOWER), HUB)
            closed = asyncio.ensure_future(reader.read())  # resolves when the server closes
            header = b"POST /signaling HTTP/1.1\r\nX-Slow: " + b"a" * 590
            for i in range(600):  # one header byte every 50 ms, never finishing
                if closed.done():
                    break
                try:
                    writer.write(header[i : i + 1])
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.05)
            assert closed.done(), "the server kept a connection with unfinished headers"
            assert server.timed_out_connections == 1
            writer.close()

    run(main())


def test_connection_closed_while_idle_does_not_break_the_next_submit(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler, keepalive_timeout=0.5) as server:
            async with client_for(pki, server) as client:
                assert await client.request(HUB, SUBMIT, b"1") == b"reply:1"
                # The server closes the idle keep-alive connection; wait until it has.
                for _ in range(200):
                    if server.timed_out_connections:
                        break
                    await asyncio.sleep(0.02)
                assert server.timed_out_connections == 1
                await asyncio.sleep(0.1)  # let the client see the close
                # A submit is never retried after a failure mid-request, so this only
                # passes when the client does not reuse the closed connection.
                assert await client.request(HUB, SUBMIT, b"2") == b"reply:2"
        assert [c[1] for c in handler.calls] == [b"1", b"2"]

    run(main())


def test_peer_is_first_name_of_a_multi_name_certificate_and_none_is_unauthorized(pki):
    from cryptography import x509

    from support.transport_helpers import issue_custom_cert

    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler) as server:
            cert, key = issue_custom_cert(
                pki, [x509.DNSName("Second.Test"), x509.DNSName("first.test")], "multi"
            )
            ctx = client_ssl_context(cert, key, pki.ca[0])
            async with SignalingClient(ctx, peers={HUB: server.url}, max_retries=0) as client:
                assert await client.request(HUB, SUBMIT, b"x") == b"reply:x"
            cert, key = issue_custom_cert(pki, [], "nameless")
            ctx = client_ssl_context(cert, key, pki.ca[0])
            async with SignalingClient(ctx, peers={HUB: server.url}, max_retries=0) as client:
                with pytest.raises(ms.UnauthorizedError):
                    await client.request(HUB, SUBMIT, b"y")
        assert handler.calls == [(SUBMIT, b"x", "second.test")]

    run(main())


# --- mimi.signaling.batch ----------------------------------------------------------------------


def test_batch_entries_reach_a_plain_handler_in_order_with_their_own_answers(pki):
    """A handler without ``handle_batch`` gets each entry through ``handle``, in order, with
    the TLS peer; a verdict answers that entry alone."""

    def answer(t, p, peer):
        if p == b"refuse":
            raise ms.PolicyRejectedError("not this one")
        return b"ok:" + p

    async def main():
        handler = RecordingHandler(answer)
        async with hub_server(pki, handler) as server:
            async with client_for(pki, server) as client:
                got = await client.request_batch(HUB, [(SUBMIT, b"a"), (SUBMIT, b"refuse"), (GET_EVENT, b"c")])
        assert got[0] == b"ok:a" and got[2] == b"ok:c"
        assert isinstance(got[1], ms.PolicyRejectedError) and "not this one" in str(got[1])
        assert handler.calls == [(SUBMIT, b"a", FOLLOWER), (SUBMIT, b"refuse", FOLLOWER), (GET_EVENT, b"c", FOLLOWER)]

    run(main())


def test_rate_limit_counts_batch_entries_not_requests(pki):
    async def main():
        handler = RecordingHandler()
        limiter = PeerRateLimiter(rate=0.001, burst=5)
        async with hub_server(pki, handler, rate_limiter=limiter) as server:
            async with client_for(pki, server) as client:
                got = await client.request_batch(HUB, [(SUBMIT, bytes([i])) for i in range(8)])
                assert [isinstance(g, bytes) for g in got] == [True] * 5 + [False] * 3
                assert all(isinstance(g, ms.RateLimitedError) for g in got[5:])
                with pytest.raises(ms.RateLimitedError):  # the bucket is empty now
                    await client.request(HUB, SUBMIT, b"single")
        assert [p for _, p, _ in handler.calls] == [bytes([i]) for i in range(5)]

    run(main())


def test_batch_request_over_16_mib_is_refused_before_it_is_read(pki):
    async def main():
        handler = RecordingHandler()
        async with hub_server(pki, handler) as server:
            reader, writer = await open_raw(server.port, pki.client_context(FOLLOWER), HUB)
            head = envelope(ms.BATCH_TRANSACTION, b"")[:-1]  # version and type, then nothing
            writer.write(
                b"POST /signaling HTTP/1.1\r\nHost: hub.test\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Length: {ms.MAX_BATCH_BODY + 4096 + 1_000}\r\n\r\n".encode() + head
            )
            await writer.drain()
            resp = await read_response(reader)
            writer.close()
        assert resp.status == 413 and resp.error()[0] == ms.TooLargeError.code
        assert handler.calls == []

    run(main())


def test_a_batch_of_reads_stops_answering_past_the_answers_bound(pki, monkeypatch):
    """Reads whose answers add up past MAX_BATCH_ANSWERS: the entries after that are refused
    too_large alone, unhandled, so that one request cannot make the server hold gigabytes."""
    import mimi_signaling.transport.server as server_module

    monkeypatch.setattr(server_module, "MAX_BATCH_ANSWERS", 10_000)

    async def main():
        handler = RecordingHandler(lambda t, p, peer: b"x" * 1_000)
        async with hub_server(pki, handler) as server:
            async with client_for(pki, server) as client:
                got = await client.request_batch(HUB, [(GET_EVENT, bytes([i])) for i in range(20)])
        assert [isinstance(g, bytes) for g in got] == [True] * 11 + [False] * 9
        assert all(isinstance(g, ms.TooLargeError) for g in got[11:])
        assert len(handler.calls) == 11

    run(main())
