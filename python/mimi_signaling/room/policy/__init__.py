"""The ``Policy`` protocol that the hub and the followers call.

A policy is a stateless object (one per policy ID, see ``registry.PolicyRegistry``); the room's
state is passed in, so every method is a pure function of its arguments.  Memoised verdicts live
in ``RoomState.policy_cache`` and the policy invalidates them in ``on_apply``.

Order of work for one event (hub and follower alike; ``fields`` is ``event.header()``, read
once, or the event itself: both satisfy ``room.fields.EventFields``)::

    content = registry.check_shape(fields, state)     # MalformedError
    state.policy.check(state, fields, content=content)  # PolicyRejectedError (state *before*)
    state.apply(event, content, header=fields)
    servers = state.policy.fanout(state, fields)        # state *after*; caller drops itself
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Protocol, Set

if TYPE_CHECKING:
    from ...content import DecodedContent
    from ..fields import EventFields
    from ..history import RoomStateHistory
    from ..state import RoomState

__all__ = ["Policy"]


class Policy(Protocol):
    #: The policy ID named by ``m.room.create`` (e.g. ``"m.0"``).
    policy_id: str

    def select_auth_events(
        self,
        state: RoomState,
        type: str,
        state_key: Optional[str],
        sender: str,
        content: Optional[DecodedContent],
    ) -> List[str]:
        """The auth event IDs, in their exact order, for an event sent now.

        ``content`` is the decoded content, as ``registry.check_shape`` (or
        ``content.decode_content``) returns it: the caller decodes once.
        """

    def check(self, state: RoomState, event: EventFields, *, content: Optional[DecodedContent] = None) -> None:
        """The policy's whole verdict on a fully-formed event against the state before it:
        auth events, then permission and participation rules.  Raises
        ``PolicyRejectedError`` naming the rule.  ``content``: the decoded content if known."""

    def fanout(self, state_after: RoomState, event: EventFields) -> Set[str]:
        """Servers that receive the accepted event (the caller removes its own server)."""

    def visible_to_server(self, history: RoomStateHistory, position: int, server_name: str) -> bool:
        """Whether ``server_name`` may see the event at ``position`` unredacted."""

    def may_read(self, state: RoomState, server_name: str) -> bool:
        """Whether ``server_name`` may read the room now (``snapshot``, ``get_state``,
        ``get_event``, ``backfill``); refused readers get ``PolicyRejectedError``."""

    def on_apply(self, state: RoomState, event: EventFields) -> None:
        """Called by ``RoomState.apply`` after a state event changed the state."""
