"""What the room layer reads of an event, as Protocols.

The core's ``Event`` and ``LimitedEvent`` satisfy them, and so do their headers
(``Event.header()``, ``LimitedEvent.header()``, and ``event_headers`` /
``limited_event_headers`` for a batch).  Each field of a core event is a call into the core
that makes a new Python object, and one event's fields are read a dozen times on its way
through the shape check, the policy, the state and the fan-out; so the per-event paths (the
hub's accept, the follower's receive, ``mimi verify``) take a header once and hand it on, and
everything after reads plain Python attributes.
"""

from __future__ import annotations

from typing import List, Optional, Protocol

__all__ = ["ShapeFields", "EventFields"]


class ShapeFields(Protocol):
    """What the shape check (``EventTypeRegistry.check_shape``, PROFILE.md section 4 rule 4) and
    event 0's rules read: an ``Event`` or a ``LimitedEvent``, or either's header."""

    @property
    def room_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def state_key(self) -> Optional[str]: ...
    @property
    def sender(self) -> str: ...
    @property
    def content(self) -> bytes: ...


class EventFields(ShapeFields, Protocol):
    """What the link check, the policy and the state read of a fully-formed event: an
    ``Event`` or its ``EventHeader``."""

    @property
    def event_id(self) -> str: ...
    @property
    def prev_event(self) -> str: ...
    @property
    def auth_events(self) -> List[str]: ...
