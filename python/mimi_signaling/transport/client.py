"""The MIMI signaling HTTPS client (PROFILE.md section 7), on aiohttp.

``await client.request(server_name, transaction_type, payload)`` resolves the peer (peer map,
else discovery), POSTs the ``TransactionEnvelope`` over mutual TLS and returns the 200 body;
a 4xx/5xx answer raises the typed :class:`mimi_signaling.MimiError` decoded from its Error
body.  The peer's certificate must name ``server_name`` (SNI and hostname check use the
server name, whatever address the peer map gives), else :class:`PeerVerificationError`.

Retries (bounded, exponential backoff with jitter) happen only where repeating the request
cannot do harm:
- the connection could not be made (nothing was sent), or the answer was 429: always;
- the connection broke or timed out after sending, or the answer was 5xx: only for
  idempotent transactions (every type except ``mimi.signaling.submit``, which could be
  accepted twice);
- never for 4xx verdicts, nor for certificate or TLS handshake failures.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import aiohttp

import mimi_signaling as ms

from .bounds import ERROR_RESPONSE, batch_response, response_bound
from .discovery import PeerDirectory
from .errors import PeerVerificationError, TransportError
from .names import SUBMIT
from .tls import names_in_certificate, ssl_hostname

log = logging.getLogger(__name__)

__all__ = ["SignalingClient", "Answer", "NON_IDEMPOTENT_TYPES", "DEFAULT_MAX_RESPONSE_SIZE"]

SIGNALING_PATH = "/signaling"
CONTENT_TYPE = "application/octet-stream"
USER_AGENT = "mimi-signaling"

# aiohttp >= 3.10 tells a connect timeout apart from a read timeout.
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", ())

NON_IDEMPOTENT_TYPES = frozenset({SUBMIT})

# Per request, for the few peers a server talks to: parse and check each name once.
_ssl_hostname = functools.lru_cache(maxsize=1024)(ssl_hostname)


@functools.lru_cache(maxsize=1024)
def _validated_server_name(server_name: str) -> None:
    ms.validate_server_name(server_name)  # MalformedError (not cached): never contact a bad name

# Answers to transaction types without a row in bounds.BOUNDS (the local API); the others
# are bounded by their row (a keys answer by 1 MiB, a backfill page by its limit, ...).
DEFAULT_MAX_RESPONSE_SIZE = 256 * 1024 * 1024
MAX_ERROR_BODY = ERROR_RESPONSE

_certificate_names = functools.lru_cache(maxsize=256)(lambda der: tuple(names_in_certificate(der)))


class Answer(NamedTuple):
    """A 200 body and the server names of the verified certificate of the TLS peer that
    sent it (what a caller that must know who answered checks, e.g. a keys answer)."""

    body: bytes
    peer_names: Tuple[str, ...]


class _Retryable(Exception):
    """One attempt failed in a way that may be retried; carries what to raise at the end."""

    def __init__(self, final: BaseException, *, safe: bool, delay: float = 0.0) -> None:
        super().__init__(str(final))
        self.final = final
        self.safe = safe  # True: nothing was processed by the peer, retry even a submit
        self.delay = delay  # a lower bound for the next wait (Retry-After)


class SignalingClient:
    """Sends MIMI transactions to peer servers over mutual TLS.

    Use inside a running event loop; ``await client.close()`` (or ``async with``) at the end.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        peers: Optional[Mapping[str, str]] = None,
        directory: Optional[PeerDirectory] = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        backoff_base: float = 0.25,
        backoff_max: float = 10.0,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        limit_per_host: int = 8,
    ) -> None:
        if not ssl_context.check_hostname or ssl_context.verify_mode != ssl.CERT_REQUIRED:
            raise ValueError("the client SSL context must verify certificates and host names")
        if max_retries < 0 or backoff_base < 0 or backoff_max < 0:
            raise ValueError("max_retries, backoff_base and backoff_max must be >= 0")
        self.ssl_context = ssl_context
        self.directory = directory if directory is not None else PeerDirectory(peers)
        if directory is not None and peers:
            for name, url in peers.items():
                directory.add_peer(name, url)
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_response_size = max_response_size
        self.limit_per_host = limit_per_host
        self._session: Optional[aiohttp.ClientSession] = None

    # --- lifecycle ------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                ssl=self.ssl_context, limit=100, limit_per_host=self.limit_per_host
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # servers exchange no cookies
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> "SignalingClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- requests -------------------------------------------------------------------------

    async def request(
        self,
        server_name: str,
        transaction_type: str,
        payload: bytes,
        *,
        max_response: Optional[int] = None,
        max_retries: Optional[int] = None,
    ) -> bytes:
        """Send one transaction to ``server_name``; the 200 body, or a typed error (see
        :meth:`request_answer`)."""
        answer = await self.request_answer(
            server_name, transaction_type, payload, max_response=max_response, max_retries=max_retries
        )
        return answer.body

    async def request_answer(
        self,
        server_name: str,
        transaction_type: str,
        payload: bytes,
        *,
        max_response: Optional[int] = None,
        max_retries: Optional[int] = None,
    ) -> Answer:
        """Send one transaction to ``server_name``; the 200 body with the names of the
        verified TLS peer that sent it, or a typed error.

        The answer is refused (:class:`mimi_signaling.TooLargeError`) past ``max_response``
        bytes, by default the transaction type's row in ``bounds.BOUNDS``: before reading
        when Content-Length announces more, else as soon as the stream passes it.
        ``max_retries`` overrides the client's setting for this request.

        Raises a :class:`mimi_signaling.MimiError` subclass for the peer's verdict,
        :class:`PeerVerificationError` when the peer's certificate is not for ``server_name``,
        :class:`TransportError` when no MIMI answer could be had (after the retries).
        """
        body = ms.TransactionEnvelope(transaction_type, payload).encode()
        idempotent = transaction_type not in NON_IDEMPOTENT_TYPES
        return await self._send(server_name, transaction_type, body, idempotent, max_response, max_retries)

    async def request_batch(
        self, server_name: str, entries: Sequence[Tuple[str, bytes]], *, max_retries: Optional[int] = None
    ) -> List[Union[bytes, ms.MimiError]]:
        """Send 1 to 1,024 transactions as one ``mimi.signaling.batch`` (PROFILE.md section 7);
        per entry, in order, the 200 body or the peer's verdict on that entry (not raised).

        Raised, as for ``request``: the verdict on the batch as a whole (a peer that does not
        know the batch type answers ``MalformedError``), PeerVerificationError, TransportError.
        A batch holding a submit is retried only where nothing was sent, like a submit."""
        payload = ms.wire.encode_batch_request(entries)
        body = ms.TransactionEnvelope(ms.BATCH_TRANSACTION, payload).encode()
        types = [t for t, _ in entries]
        idempotent = NON_IDEMPOTENT_TYPES.isdisjoint(types)
        max_response = batch_response(types, self.max_response_size)
        answer = await self._send(server_name, ms.BATCH_TRANSACTION, body, idempotent, max_response, max_retries)
        return [
            bytes(data) if status == 200 else _entry_error(status, data, server_name)
            for status, data in ms.wire.decode_batch_response(answer.body, len(entries))
        ]

    async def _send(
        self,
        server_name: str,
        transaction_type: str,
        body: bytes,
        idempotent: bool,
        max_response: Optional[int],
        max_retries: Optional[int],
    ) -> Answer:
        _validated_server_name(server_name)  # MalformedError: never contact a bad name
        if max_response is None:
            max_response = response_bound(transaction_type)
        if max_response is None:
            max_response = self.max_response_size
        retries = self.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            try:
                return await self._attempt(server_name, body, max_response)
            except _Retryable as failure:
                if attempt >= retries or not (failure.safe or idempotent):
                    raise failure.final from failure.__cause__
                delay = max(self._backoff(attempt), min(failure.delay, self.backoff_max))
                log.debug(
                    "retrying %s to %s in %.2f s (attempt %d): %s",
                    transaction_type, server_name, delay, attempt + 1, failure.final,
                )
                attempt += 1
                await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        # "Equal jitter": at least half the ceiling, so waits still grow.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _attempt(self, server_name: str, body: bytes, max_response: int) -> Answer:
        base_url = await self._resolve(server_name)
        session = self._get_session()
        try:
            async with session.post(
                base_url + SIGNALING_PATH,
                data=body,
                headers={"Content-Type": CONTENT_TYPE},
                server_hostname=_ssl_hostname(server_name),
                allow_redirects=False,
            ) as resp:
                if resp.status == 200:
                    peer_names = self._peer_names(resp)
                    return Answer(await self._read_capped(resp, max_response, server_name), peer_names)
                raise self._error_for(resp.status, await self._read_error_body(resp), server_name, resp)
        except (_Retryable, ms.MimiError, TransportError):
            raise
        except Exception as exc:
            mapped = self._classify(exc, server_name)
            if mapped is exc:
                raise
            raise mapped from exc

    async def _resolve(self, server_name: str) -> str:
        try:
            return await self.directory.resolve(server_name, self._fetch_text)
        except (_Retryable, PeerVerificationError):
            raise
        except TransportError as exc:
            raise _Retryable(exc, safe=True) from exc

    async def _fetch_text(self, url: str, server_name: str) -> str:
        """GET ``url`` (discovery), certificate checked against ``server_name``."""
        session = self._get_session()
        try:
            async with session.get(
                url, server_hostname=ssl_hostname(server_name), allow_redirects=False
            ) as resp:
                data = await self._read_capped(resp, 1024, server_name)
                if resp.status != 200:
                    raise TransportError(
                        f"discovery at {url} answered HTTP {resp.status}",
                        server_name=server_name,
                        status=resp.status,
                    )
                return data.decode("utf-8", "replace")
        except (TransportError, ms.MimiError) as exc:
            if isinstance(exc, ms.MimiError):
                raise TransportError(f"discovery at {url}: {exc}", server_name=server_name) from exc
            raise
        except Exception as exc:
            mapped = self._classify(exc, server_name)
            if mapped is exc:
                raise
            # A discovery failure is retried by request() as a whole (the caller wraps it).
            raise (mapped.final if isinstance(mapped, _Retryable) else mapped) from exc

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _peer_names(resp: aiohttp.ClientResponse) -> Tuple[str, ...]:
        """Names of the certificate the TLS layer verified for this answer's connection.

        aiohttp hands a connection back to its pool as soon as a short answer has arrived
        whole (``resp.connection`` is then None), so the response's protocol, which keeps
        its transport, is asked too.  No certificate found: no names (fail closed)."""
        connection = resp.connection
        protocol = connection.protocol if connection is not None else getattr(resp, "_protocol", None)
        transport = getattr(protocol, "transport", None)
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        return _certificate_names(der) if der else ()

    @staticmethod
    async def _read_capped(resp: aiohttp.ClientResponse, limit: int, server_name: str) -> bytes:
        if resp.content_length is not None and resp.content_length > limit:
            resp.close()
            raise ms.TooLargeError(
                f"answer from {server_name} of {resp.content_length} bytes exceeds {limit} bytes"
            )
        data = bytearray()
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > limit:
                resp.close()
                raise ms.TooLargeError(f"answer from {server_name} exceeds {limit} bytes")

    @staticmethod
    async def _read_error_body(resp: aiohttp.ClientResponse) -> Optional[bytes]:
        try:
            return await SignalingClient._read_capped(resp, MAX_ERROR_BODY, "")
        except ms.TooLargeError:
            return None

    def _error_for(
        self, status: int, body: Optional[bytes], server_name: str, resp: aiohttp.ClientResponse
    ) -> BaseException:
        error: BaseException
        decoded = None
        if body is not None and resp.content_type == CONTENT_TYPE:
            try:
                decoded = ms.wire.decode_error_body(body)
            except ms.MimiError:
                decoded = None
        if decoded is not None:
            error = ms.error_from_code(decoded[0], decoded[1])
        else:
            error = TransportError(
                f"{server_name} answered HTTP {status} without a MIMI error body",
                server_name=server_name,
                status=status,
            )
        if status == 429:
            retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
            return _Retryable(error, safe=True, delay=retry_after)
        if status >= 500:
            return _Retryable(error, safe=False)
        return error

    @staticmethod
    def _classify(exc: BaseException, server_name: str) -> BaseException:
        """Map an aiohttp/asyncio/ssl exception to what ``request`` raises or retries."""
        if isinstance(exc, aiohttp.ClientConnectorCertificateError) or isinstance(
            exc, ssl.SSLCertVerificationError
        ):
            return PeerVerificationError(
                f"the certificate of the peer reached for {server_name} does not verify: {exc}",
                server_name=server_name,
            )
        if isinstance(exc, aiohttp.ClientConnectorSSLError):
            return TransportError(f"TLS handshake with {server_name} failed: {exc}", server_name=server_name)
        if isinstance(exc, aiohttp.ClientConnectorError):
            # Connecting failed: the request was never sent.
            return _Retryable(
                TransportError(f"cannot connect to {server_name}: {exc}", server_name=server_name),
                safe=True,
            )
        if isinstance(exc, _CONNECT_TIMEOUT):
            return _Retryable(
                TransportError(f"timed out connecting to {server_name}", server_name=server_name),
                safe=True,
            )
        if isinstance(exc, asyncio.TimeoutError):
            return _Retryable(
                TransportError(f"request to {server_name} timed out", server_name=server_name),
                safe=False,
            )
        if isinstance(exc, (aiohttp.ClientError, OSError, ssl.SSLError)):
            return _Retryable(
                TransportError(f"request to {server_name} failed: {exc!r}", server_name=server_name),
                safe=False,
            )
        return exc

    # --- configuration --------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> "SignalingClient":
        """A client from a :class:`mimi_signaling.config.Config`."""
        from .tls import client_ssl_context

        kwargs = dict(
            peers=config.peers,
            timeout=config.http.request_timeout,
            max_retries=config.http.max_retries,
        )
        kwargs.update(overrides)
        return cls(client_ssl_context(config.tls.cert, config.tls.key, config.tls.ca), **kwargs)


def _entry_error(status: int, body: bytes, server_name: str) -> ms.MimiError:
    """The typed error of a batch entry answered ``status`` with an ``Error`` body."""
    try:
        code, message = ms.wire.decode_error_body(body)
    except ms.MimiError:
        return ms.InternalError(f"{server_name} answered a batch entry with HTTP {status} and no MIMI error body")
    return ms.error_from_code(code, message)


def _parse_retry_after(value: Optional[str]) -> float:
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        return 0.0  # an HTTP date: ignore, our own backoff applies
