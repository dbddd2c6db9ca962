"""HTTP status of each wire error, and the transport's own (non-protocol) errors."""

from __future__ import annotations

from typing import Dict, Optional, Type

import mimi_signaling as ms

__all__ = [
    "HTTP_STATUS_BY_CODE",
    "http_status_for",
    "TransportError",
    "PeerVerificationError",
]

# The one table of wire error code -> HTTP status (PROFILE.md section 7 lists the codes; the
# statuses are this project's choice).  When the core's error classes carry ``http_status``,
# that value wins; this table is the fallback and the documentation.
#   bad_signature 400: a verdict on the request's content; 401 would announce an HTTP
#       authentication challenge (WWW-Authenticate) that does not exist here.
#   not_hub 421 Misdirected Request: the request reached a server that is not the one that
#       can answer it (the room's hub).
#   unauthorized 401: the TLS peer is not the server the request speaks for (as the core).
HTTP_STATUS_BY_CODE: Dict[int, int] = {
    1: 400,  # malformed
    2: 400,  # bad_signature
    3: 400,  # bad_content_hash
    4: 403,  # policy_rejected
    5: 404,  # unknown_room
    6: 404,  # not_found
    7: 421,  # not_hub
    8: 413,  # too_large
    9: 429,  # rate_limited
    10: 401,  # unauthorized
    11: 400,  # unsupported_version
    12: 500,  # internal
}


def http_status_for(error: "ms.MimiError | Type[ms.MimiError]") -> int:
    """HTTP status for a MimiError (instance or class): the core's ``http_status`` if set."""
    cls = error if isinstance(error, type) else type(error)
    status: Optional[int] = getattr(cls, "http_status", None)
    if isinstance(status, int) and 400 <= status <= 599:
        return status
    return HTTP_STATUS_BY_CODE.get(getattr(cls, "code", 12), 500)


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
