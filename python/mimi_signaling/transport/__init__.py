"""HTTPS with mutual TLS between MIMI servers (PROFILE.md section 7).

- :mod:`.tls` — private CA, certificates naming server names, SSL contexts, peer names.
- :mod:`.server` — ``SignalingServer`` (``POST /signaling``) and the ``SignalingHandler``
  protocol the hub / follower node implements.
- :mod:`.client` — ``SignalingClient.request(server_name, transaction_type, payload)``.
- :mod:`.discovery` — peer map and ``/.well-known/mimi/ds-domain`` discovery.
- :mod:`.ratelimit` — per-peer token buckets.
- :mod:`.delivery` — ``DeliveryWorker``: ordered fan-out of queued events.
"""

from __future__ import annotations

from .client import NON_IDEMPOTENT_TYPES, SignalingClient
from .delivery import DELIVER, DeliveryWorker
from .discovery import PeerDirectory
from .errors import PeerVerificationError, TransportError, http_status_for
from .ratelimit import PeerRateLimiter
from .server import TRANSACTION_TYPES, SignalingHandler, SignalingServer
from .tls import (
    client_ssl_context,
    issue_server_cert,
    make_ca,
    peer_matches_server,
    peer_server_names,
    server_name_host,
    server_ssl_context,
)

__all__ = [
    "SignalingServer",
    "SignalingHandler",
    "SignalingClient",
    "DeliveryWorker",
    "PeerDirectory",
    "PeerRateLimiter",
    "TransportError",
    "PeerVerificationError",
    "http_status_for",
    "TRANSACTION_TYPES",
    "NON_IDEMPOTENT_TYPES",
    "DELIVER",
    "make_ca",
    "issue_server_cert",
    "server_ssl_context",
    "client_ssl_context",
    "peer_server_names",
    "peer_matches_server",
    "server_name_host",
]
