"""The server: ``ServerNode`` (``node``), the signaling transactions it answers, one handler
each (``federation``), its group commit for submits (``batcher``) and the local
administration API with its client (``admin``)."""

from __future__ import annotations

from .admin import LocalClient, event_summary
from .batcher import SubmitBatcher
from .node import ServerNode

__all__ = ["LocalClient", "ServerNode", "SubmitBatcher", "event_summary"]
