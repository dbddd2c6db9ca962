"""One room's chain of accepted events with the checks of PROFILE.md sections 4-6.

Hub, follower and ``mimi verify`` all advance a room through ``RoomChain.append``: the prev
link, the shape (type registry, state key, content), then the policy against the state before
the event, then the state moves on.  Signatures and hashes are checked before (by the Rust
core, one event or a batch at a time).  The checks read the event's fields from its header
(``Event.header()``, or ``event_headers`` for a batch), taken once per event.

Hub and follower also serve a room through it, by the same rules (PROFILE.md section 6):
``require_reader`` (who may read the room) and ``served`` (whole or redacted).
"""

from __future__ import annotations

from typing import Optional, Set

from .._core import Event, EventHeader, PolicyRejectedError
from ..content import DecodedContent
from ..room.fields import EventFields
from ..room.registry import EventTypeRegistry, PolicyRegistry
from ..room.state import RoomState


class RoomChain:
    def __init__(self, state: RoomState) -> None:
        self.state = state

    @classmethod
    def open(
        cls,
        create_event: Event,
        *,
        header: Optional[EventHeader] = None,
        track_history: bool = True,
        registry: Optional[EventTypeRegistry] = None,
        policies: Optional[PolicyRegistry] = None,
    ) -> RoomChain:
        """Start a chain with event 0 (checked: create rules, known policy); ``header``:
        ``create_event.header()`` if the caller has it."""
        state = RoomState.from_create(
            create_event, policies=policies, registry=registry, track_history=track_history, header=header
        )
        return cls(state)

    @property
    def room_id(self) -> str:
        return self.state.room_id

    @property
    def count(self) -> int:
        return self.state.count

    @property
    def last_event_id(self) -> Optional[str]:
        return self.state.last_event_id

    def check(self, event: EventFields) -> DecodedContent:
        """Everything but signatures for the next event (an ``Event`` or its header); returns
        its decoded content."""
        state = self.state
        state.check_link(event)
        content = state.registry.check_shape(event, state)
        state.policy.check(state, event, content=content)
        return content

    def append(self, event: Event, *, header: Optional[EventHeader] = None) -> None:
        """Check and apply the next event; ``header``: ``event.header()`` if the caller has it."""
        fields = header if header is not None else event.header()
        content = self.check(fields)
        self.state.apply(event, content, header=fields)

    def apply_trusted(self, event: Event, *, header: Optional[EventHeader] = None) -> None:
        """Advance without policy work: for events this server already checked and stored."""
        self.state.apply(event, header=header)

    def fanout(self, event: EventFields, own_server: str) -> Set[str]:
        """Servers that receive ``event`` (already applied; an ``Event`` or its header),
        without this server."""
        return set(self.state.policy.fanout(self.state, event)) - {own_server}

    # --- serving --------------------------------------------------------------------------------

    def require_reader(self, server_name: Optional[str]) -> None:
        """PROFILE.md section 6, "Who may read a room": ``PolicyRejectedError`` unless
        ``server_name`` may read it now (None: this server itself, always)."""
        if server_name is not None and not self.state.policy.may_read(self.state, server_name):
            raise PolicyRejectedError(
                f"{server_name} may not read {self.room_id}: it has no user in the room and its "
                f"history visibility is not world"
            )

    def served(self, position: int, event: Event, server_name: Optional[str]) -> Event:
        """``event`` (the one at ``position``) in the form ``server_name`` may receive
        (PROFILE.md section 6): state events whole; a non-state event whole when one of the
        server's users sees it, else redacted.  None: this server itself (whole).  Where the
        state's history cannot decide (none kept, or a position before a follower's snapshot,
        ``RoomStateHistory.known_from``) non-state events are served redacted."""
        if server_name is None or event.is_state:
            return event
        history = self.state.history
        if (
            history is not None
            and history.known_from <= position < history.count
            and self.state.policy.visible_to_server(history, position, server_name)
        ):
            return event
        return event.redacted()
