"""HTTP status of each wire error, and the transport's own (non-protocol) errors."""

from __future__ import annotations

from typing import Optional, Type

import mimi_signaling as ms

__all__ = [
    "http_status_for",
    "TransportError",
    "PeerVerificationError",
]

# The HTTP status of each wire error is the core's (``MimiError.http_status`` on every class,
# one table in rust/src/error.rs).  Its choices, for the reader:
#   bad_signature 400: a verdict on the request's content; 401 would announce an HTTP
#       authentication challenge (WWW-Authenticate) that does not exist here.
#   not_hub 421 Misdirected Request: the request reached a server that is not the one that
#       can answer it (the room's hub).
#   unauthorized 401: the TLS peer is not the server the request speaks for.


def http_status_for(error: "ms.MimiError | Type[ms.MimiError]") -> int:
    """HTTP status for a MimiError (instance or class): the core's ``http_status``."""
    cls = error if isinstance(error, type) else type(error)
    return int(cls.http_status)


class TransportError(Exception):
    """No MIMI answer could be had from a peer: connection refused or reset, timeout,
    discovery failure, or an HTTP answer that is not a MIMI response.

    Not a protocol verdict (those are :class:`mimi_signaling.MimiError`): the same request
    may succeed later.  ``status`` is the HTTP status when one was received.
    """

    def __init__(self, message: str, *, server_name: Optional[str] = None, status: Optional[int] = None):
        super().__init__(message)
        self.server_name = server_name
        self.status = status


class PeerVerificationError(TransportError):
    """The peer's TLS certificate did not verify or does not name the server we meant to
    reach.  Never retried."""
