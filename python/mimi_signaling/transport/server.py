"""The MIMI signaling HTTPS endpoint (PROFILE.md section 7), on aiohttp.

``POST /signaling`` takes a ``TransactionEnvelope`` over mutual TLS and hands its payload to
a :class:`SignalingHandler` together with the verified server name of the TLS peer.
``GET /.well-known/mimi/ds-domain`` answers the discovery request of the transport draft.

Order of checks for ``POST /signaling`` (cheapest first, nothing read that is not needed):
TLS peer names -> per-peer rate limit -> Content-Type / Content-Encoding -> Content-Length
bound -> body read with a size cap and a deadline -> envelope decode -> known transaction
type -> handler.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import ssl
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

from aiohttp import web
from aiohttp.web_log import AccessLogger
from aiohttp.web_protocol import RequestPayloadError

import mimi_signaling as ms

from .bounds import request_bound
from .errors import http_status_for
from .ratelimit import PeerRateLimiter
from .tls import names_in_certificate

log = logging.getLogger(__name__)

__all__ = [
    "SignalingHandler",
    "SignalingServer",
    "TRANSACTION_TYPES",
    "SIGNALING_PATH",
    "DS_DOMAIN_PATH",
    "DEFAULT_MAX_BODY_SIZE",
    "error_response",
]

SIGNALING_PATH = "/signaling"
DS_DOMAIN_PATH = "/.well-known/mimi/ds-domain"
CONTENT_TYPE = "application/octet-stream"

# PROFILE.md section 7: the core owns the list of transaction types.
TRANSACTION_TYPES = frozenset(ms.TRANSACTION_TYPES)

# The largest request is a submit or deliver carrying one event (at most 65,536 bytes);
# the envelope adds the version, the type and two length prefixes.
DEFAULT_MAX_BODY_SIZE = ms.MAX_EVENT_SIZE + 4_096
# mimi.signaling.batch (PROFILE.md section 7): "the body at most 16 MiB", plus its envelope.
DEFAULT_MAX_BATCH_BODY_SIZE = ms.MAX_BATCH_BODY + 64
# What the answers of one batch may add up to before its remaining entries are refused
# (too_large, each alone: "send it alone or in a later batch"): 1,024 reads of up to 64 MiB
# each must not make one request hold gigabytes (docs/DECISIONS.md).
MAX_BATCH_ANSWERS = 64 * 1024 * 1024
# The envelope around an entry's payload: version, type and payload length prefix.
ENTRY_ENVELOPE_OVERHEAD = 2 + 2 + 4
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_KEEPALIVE_TIMEOUT = 75.0
DEFAULT_LINGERING_TIME = 2.0
MAX_ERROR_MESSAGE = 1_000  # characters of an error message put on the wire


@runtime_checkable
class SignalingHandler(Protocol):
    """What the server dispatches each transaction to (the hub / follower node).

    ``peer`` is the verified server name of the TLS client: the first subjectAltName entry
    of its certificate (dNSName lower-cased, or an IP literal, IPv6 in brackets), without a
    port since certificates name none.  Compare it with a server name from an ID using
    :func:`mimi_signaling.transport.tls.peer_matches_server`.

    Return the 200 response body (``b""`` for an empty one); raise a
    :class:`mimi_signaling.MimiError` subclass for a verdict.  Only transaction types in
    ``SignalingServer.transaction_types`` reach the handler; a handler that does not
    serve one of them raises ``MalformedError("unknown transaction type ...")``.
    """

    async def handle(self, transaction_type: str, payload: bytes, peer: str) -> bytes: ...


def _error_body(error: ms.MimiError) -> bytes:
    message = str(error)
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 3] + "..."
    return ms.wire.encode_error_body(type(error).code, message)


def error_response(
    error: ms.MimiError, *, status: Optional[int] = None, close: bool = False
) -> web.Response:
    """An HTTP response carrying ``struct { uint16 code; opaque message<V>; } Error``."""
    resp = web.Response(
        status=status if status is not None else http_status_for(error),
        body=_error_body(error),
        content_type=CONTENT_TYPE,
    )
    if close:
        # The request body was not (fully) read: close instead of draining what is left.
        resp.force_close()
    return resp


def envelope_transaction_type(prefix: "bytes | bytearray") -> Optional[str]:
    """The transaction type named by the first bytes of a ``TransactionEnvelope`` (uint16
    version, then ``opaque transaction_type<V>``), or None while fewer bytes have arrived.
    Bytes that cannot start an envelope give "" (no row: the general bound applies, and the
    envelope decode refuses them)."""
    try:
        size, used = ms.wire.decode_varint(bytes(prefix[2:6]))
    except ms.MalformedError:
        return None if len(prefix) < 6 else ""
    end = 2 + used + size
    if len(prefix) < end:
        return None
    return bytes(prefix[2 + used:end]).decode("utf-8", "replace")


async def answer_in_order(
    entries: Sequence[Tuple[str, bytes]],
    handle: Callable[[str, bytes, str], Awaitable[Any]],
    peer: str,
    answered: int = 0,
) -> List[Any]:
    """Each entry through ``handle`` in order (an answer or the error it returned), until the
    answers (with ``answered`` bytes before them) pass ``MAX_BATCH_ANSWERS``: the entries
    after that are answered ``too_large`` without being handled."""
    out: List[Any] = []
    for transaction_type, payload in entries:
        if answered > MAX_BATCH_ANSWERS:
            out.append(ms.TooLargeError(
                f"the answers of this batch exceed {MAX_BATCH_ANSWERS} bytes: send {transaction_type[:100]} "
                "alone or in a later batch"
            ))
            continue
        answer = await handle(transaction_type, payload, peer)
        if isinstance(answer, (bytes, bytearray)):
            answered += len(answer)
        out.append(answer)
    return out


def _batch_result(result: Any) -> "tuple[int, bytes]":
    """One entry's ``BatchResult``: what ``error_response`` or the 200 answer would carry."""
    if isinstance(result, ms.MimiError):
        return http_status_for(result), _error_body(result)
    return 200, b"" if result is None else bytes(result)


class _BodyTimeout(Exception):
    pass


class _RequestDeadline:
    """Aborts a connection that spends more than ``timeout`` seconds without a request in
    progress: right after the TLS handshake, between requests, or while request headers
    trickle in (slowloris).  aiohttp alone only bounds idle time between requests (and, in
    recent versions only, before the first one), so this does not depend on its version.

    Armed when a connection opens and whenever a request finishes; disarmed while a request
    is being handled (the body then has its own deadline, ``body_timeout``).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.aborted = 0
        self._timers: Dict[Any, asyncio.TimerHandle] = {}

    def install(self, server: Any) -> None:
        # aiohttp's web.Server is told of every connection by its RequestHandler (stable
        # from aiohttp 3.9 on): wrap those two calls on this instance.
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self.arm(handler, transport)

        def connection_lost(handler: Any, exc: Optional[BaseException] = None) -> None:
            self.disarm(handler)
            lost(handler, exc)

        server.connection_made = connection_made
        server.connection_lost = connection_lost

    def arm(self, handler: Any, transport: Optional[asyncio.BaseTransport]) -> None:
        self.disarm(handler)
        if transport is None or transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        self._timers[handler] = loop.call_later(self.timeout, self._expire, handler, transport)

    def clear(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def disarm(self, handler: Any) -> None:
        timer = self._timers.pop(handler, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, handler: Any, transport: asyncio.BaseTransport) -> None:
        self._timers.pop(handler, None)
        if not transport.is_closing():
            self.aborted += 1
            log.info(
                "closing connection from %s: no complete request within %.1f s",
                transport.get_extra_info("peername"),
                self.timeout,
            )
            transport.close()  # TLS close_notify; asyncio aborts if that stalls

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        protocol = request.protocol
        self.disarm(protocol)
        try:
            return await handler(request)
        finally:
            self.arm(protocol, request.transport)


class _DebugAccessLogger(AccessLogger):
    """aiohttp's access log, written only when its logger is enabled for DEBUG (``-vv``):
    formatting and writing a line per request at INFO (``-v``) took 5-10 % of a follower's
    CPU samples under load."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)


@functools.lru_cache(maxsize=1024)
def _cached_names(der: bytes) -> tuple:
    # Peers reuse one certificate for many requests: parse each one once.
    return tuple(names_in_certificate(der))


class SignalingServer:
    """An aiohttp application serving the MIMI signaling endpoint over mutual TLS.

    Runs inside the caller's event loop: ``port = await server.start(host, port)`` (port 0
    picks a free one) and ``await server.stop()``.
    """

    def __init__(
        self,
        handler: SignalingHandler,
        ssl_context: ssl.SSLContext,
        *,
        ds_domain: str,
        rate_limiter: Optional[PeerRateLimiter] = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_batch_body_size: int = DEFAULT_MAX_BATCH_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        lingering_time: float = DEFAULT_LINGERING_TIME,
        transaction_types: Iterable[str] = TRANSACTION_TYPES,
    ) -> None:
        if not isinstance(ssl_context, ssl.SSLContext) or ssl_context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the signaling server needs an SSL context with CERT_REQUIRED")
        if max_body_size < 1 or body_timeout <= 0 or keepalive_timeout <= 0:
            raise ValueError("max_body_size, body_timeout and keepalive_timeout must be positive")
        self.handler = handler
        self.ssl_context = ssl_context
        self.ds_domain = ds_domain
        self.rate_limiter = rate_limiter
        self.max_body_size = max_body_size
        self.max_batch_body_size = max_batch_body_size
        self.body_timeout = body_timeout
        self.keepalive_timeout = keepalive_timeout
        self.lingering_time = lingering_time
        self.transaction_types = frozenset(transaction_types)

        self._deadline = _RequestDeadline(keepalive_timeout)
        self.app = web.Application(
            client_max_size=max_body_size, middlewares=[self._deadline.middleware]
        )
        self.app.router.add_post(SIGNALING_PATH, self._handle_signaling)
        self.app.router.add_get(DS_DOMAIN_PATH, self._handle_ds_domain)
        self._runner: Optional[web.AppRunner] = None
        self._tcp: Optional[asyncio.AbstractServer] = None
        self.host: Optional[str] = None
        self.port: Optional[int] = None

    @classmethod
    def from_config(cls, config: "object", handler: SignalingHandler, **overrides: object) -> "SignalingServer":
        """A server from a :class:`mimi_signaling.config.Config` (TLS, limits, rate limit)."""
        from .tls import server_ssl_context

        cfg = config  # duck-typed to avoid an import cycle with mimi_signaling.config
        kwargs: dict = dict(
            ds_domain=cfg.ds_domain,  # type: ignore[attr-defined]
            rate_limiter=PeerRateLimiter(cfg.rate_limit.rate, cfg.rate_limit.burst),  # type: ignore[attr-defined]
            max_body_size=cfg.http.max_body_size,  # type: ignore[attr-defined]
            body_timeout=cfg.http.body_timeout,  # type: ignore[attr-defined]
            keepalive_timeout=cfg.http.keepalive_timeout,  # type: ignore[attr-defined]
        )
        kwargs.update(overrides)
        tls = cfg.tls  # type: ignore[attr-defined]
        return cls(handler, server_ssl_context(tls.cert, tls.key, tls.ca), **kwargs)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port``; returns the port actually bound."""
        if self._runner is not None:
            raise RuntimeError("server already started")
        runner = web.AppRunner(
            self.app,
            # Lets us refuse compressed bodies instead of inflating them past the size cap.
            auto_decompress=False,
            # A fallback only: _RequestDeadline closes idle connections first.
            keepalive_timeout=self.keepalive_timeout + 1.0,
            # After refusing a body unread, read and discard what is in flight for at most
            # this long before closing (so the peer sees our answer, not a reset).
            lingering_time=self.lingering_time,
            access_log_class=_DebugAccessLogger,
        )
        await runner.setup()
        self._deadline.install(runner.server)
        # Not web.TCPSite: it passes no ssl_handshake_timeout, so a peer that connects and
        # never sends a ClientHello would hold the connection for asyncio's default 60 s.
        loop = asyncio.get_running_loop()
        assert runner.server is not None  # set by runner.setup() above
        try:
            tcp = await loop.create_server(
                runner.server, host, port, ssl=self.ssl_context, reuse_address=True,
                ssl_handshake_timeout=self.keepalive_timeout,
            )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._tcp = runner, tcp
        self.host = host
        self.port = int(tcp.sockets[0].getsockname()[1]) if tcp.sockets else port
        log.info("MIMI signaling server listening on %s:%s", host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner, tcp, self._tcp = self._runner, None, self._tcp, None
            if tcp is not None:
                tcp.close()  # stop accepting; runner.cleanup() then closes the connections
            await runner.cleanup()
            self._deadline.clear()

    @property
    def timed_out_connections(self) -> int:
        """Connections closed for not completing a request within ``keepalive_timeout``."""
        return self._deadline.aborted

    @property
    def url(self) -> str:
        if self.port is None or self.host is None:
            raise RuntimeError("server not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    async def __aenter__(self) -> "SignalingServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- endpoints ------------------------------------------------------------------------

    async def _handle_ds_domain(self, request: web.Request) -> web.Response:
        return web.Response(text=self.ds_domain, content_type="text/plain")

    async def _handle_signaling(self, request: web.Request) -> web.StreamResponse:
        peer_names = self._peer_names(request)
        if not peer_names:
            # A certificate from the trusted CA that names no server (no usable SAN).
            return error_response(
                ms.UnauthorizedError("the TLS client certificate names no server"), close=True
            )
        peer = peer_names[0]

        if self.rate_limiter is not None and not self.rate_limiter.allow(peer):
            resp = error_response(
                ms.RateLimitedError(f"too many requests from {peer}"), close=True
            )
            retry = self.rate_limiter.retry_after(peer)
            if math.isfinite(retry):
                resp.headers["Retry-After"] = str(max(1, math.ceil(retry)))
            return resp

        if request.content_type != CONTENT_TYPE:
            return error_response(
                ms.MalformedError(f"Content-Type must be {CONTENT_TYPE}"), status=415, close=True
            )
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return error_response(
                ms.MalformedError(f"Content-Encoding {encoding!r} is not accepted"),
                status=415,
                close=True,
            )

        try:
            body = await self._read_body(request)
        except ms.TooLargeError as exc:
            return error_response(exc, close=True)
        except RequestPayloadError as exc:
            return error_response(ms.MalformedError(f"bad request body: {exc}"), close=True)
        except _BodyTimeout:
            log.info("request body from %s not received within %.1f s", peer, self.body_timeout)
            return error_response(
                ms.MalformedError(f"request body not received within {self.body_timeout:g} s"),
                status=408,
                close=True,
            )

        try:
            envelope = ms.TransactionEnvelope.decode(body)
            if envelope.transaction_type not in self.transaction_types:
                raise ms.MalformedError(
                    f"unknown transaction type {envelope.transaction_type[:100]!r}"
                )
            if envelope.transaction_type == ms.BATCH_TRANSACTION:
                result = await self._handle_batch(envelope.payload, peer)
            else:
                result = await self.handler.handle(envelope.transaction_type, envelope.payload, peer)
        except ms.MimiError as exc:
            log.debug("%s from %s: %s", type(exc).__name__, peer, exc)
            return error_response(exc)
        except Exception:
            log.exception("internal error while handling a request from %s", peer)
            return error_response(ms.InternalError("internal error"))

        return web.Response(
            status=200, body=b"" if result is None else bytes(result), content_type=CONTENT_TYPE
        )

    async def _handle_batch(self, payload: bytes, peer: str) -> bytes:
        """``mimi.signaling.batch``: the batch is refused whole when it is malformed, too large
        or nested (raised); otherwise every entry gets the status and body it would have had
        alone: the same type and size checks, the rate limit counting each entry, then the
        handler (its ``handle_batch`` when it has one, to work on the entries together)."""
        entries = ms.wire.decode_batch_request(payload)
        allowed = len(entries)
        if self.rate_limiter is not None:  # the request took the first entry's token
            allowed = 1 + self.rate_limiter.allow_many(peer, len(entries) - 1)
        results: List[Any] = [None] * len(entries)
        todo: List[int] = []
        for i, (transaction_type, body) in enumerate(entries):
            if i >= allowed:
                results[i] = ms.RateLimitedError(f"too many transactions from {peer}")
            elif transaction_type not in self.transaction_types:
                results[i] = ms.MalformedError(f"unknown transaction type {transaction_type[:100]!r}")
            elif len(body) + len(transaction_type) + ENTRY_ENVELOPE_OVERHEAD > self._request_bound(transaction_type):
                # "each entry keeps the single-event limits": what it would be refused alone
                results[i] = ms.TooLargeError(
                    f"batch entry {i} exceeds {self._request_bound(transaction_type)} bytes"
                )
            else:
                todo.append(i)
        if todo:
            handle_batch = getattr(self.handler, "handle_batch", None)
            if handle_batch is not None:
                answers = await handle_batch([entries[i] for i in todo], peer)
            else:
                answers = await answer_in_order([entries[i] for i in todo], self._handle_entry, peer)
            for i, answer in zip(todo, answers):
                results[i] = answer
        return ms.wire.encode_batch_response([_batch_result(r) for r in results])

    async def _handle_entry(self, transaction_type: str, payload: bytes, peer: str) -> Any:
        try:
            return await self.handler.handle(transaction_type, payload, peer)
        except ms.MimiError as exc:
            return exc
        except Exception:
            log.exception("internal error in a batch entry from %s", peer)
            return ms.InternalError("internal error")

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _peer_names(request: web.Request) -> List[str]:
        transport = request.transport
        if transport is None:
            return []
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return []
        der = ssl_object.getpeercert(binary_form=True)
        return list(_cached_names(der)) if der else []

    def _request_bound(self, transaction_type: str) -> int:
        """Bytes a request of this type may have, its envelope included."""
        ceiling = self.max_batch_body_size if transaction_type == ms.BATCH_TRANSACTION else self.max_body_size
        bound = request_bound(transaction_type)
        return ceiling if bound is None else min(ceiling, bound)

    async def _read_body(self, request: web.Request) -> bytes:
        """The body, refused (TooLargeError) past its bound before reading it when
        Content-Length announces that, else as soon as the stream passes it; and cut off
        (_BodyTimeout) when it is not complete within ``body_timeout`` seconds in total.

        The bound is ``max_body_size`` (``max_batch_body_size`` for a batch) until the
        envelope's first bytes name the transaction type, then the smaller of that and the
        type's row in ``bounds.BOUNDS``: a peer cannot send a submit the size of the largest
        transaction."""
        limit = max(self.max_body_size, self.max_batch_body_size)
        typed = False
        length = request.content_length
        if length is not None and length > limit:
            raise ms.TooLargeError(f"request body of {length} bytes exceeds {limit} bytes")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        content = request.content
        body = bytearray()
        while True:
            # What has arrived already (usually the whole body, in the TLS record of the
            # headers) is taken without wait_for, which makes a task per call.
            chunk = content.read_nowait()
            if not chunk:
                if content.at_eof():
                    return bytes(body)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise _BodyTimeout()
                try:
                    chunk = await asyncio.wait_for(content.readany(), remaining)
                except asyncio.TimeoutError:
                    raise _BodyTimeout() from None
                if not chunk:
                    return bytes(body)
            body += chunk
            if not typed:
                transaction_type = envelope_transaction_type(body)
                if transaction_type is not None:
                    typed = True
                    limit = self._request_bound(transaction_type)
                    if length is not None and length > limit:
                        raise ms.TooLargeError(
                            f"{transaction_type[:100]} request of {length} bytes exceeds {limit} bytes"
                        )
            if len(body) > limit:
                raise ms.TooLargeError(f"request body exceeds {limit} bytes")
