"""The ``m.0`` policy: draft-ralston-mimi-policy-00 with PROFILE.md section 6's decisions.

One module per rule area, every check a function of the state passed in (the model is ruma's
``event_auth``):

* ``auth_selection`` -- which auth events an event carries, and their check;
* ``permissions``    -- role resolution and effective power levels;
* ``roles``          -- the creator phase and role / role-map change rules;
* ``sending``        -- the events permission for everything but ``m.room.user``;
* ``participation``  -- invite, join, knock, leave, kick, ban, unban;
* ``create``         -- the first two events of a room;
* ``visibility``     -- history visibility per user and per server, and who may read the room;
* ``fanout``         -- who receives an accepted event.

Decisions where the drafts and PROFILE.md are silent (each also noted at its rule):

* Creator phase: the creator's power level is ``CREATOR_LEVEL`` (2**32, above any ``uint32``
  order) for every permission and the creator may affect every role; other users have none.
  The phase ends with the first accepted ``m.room.role_map``, even one that gives the creator
  nothing (a careful creator lists herself first).
* Ban: exactly the draft's two conditions (sender joined, ``ban`` permission); no power check
  and any target, the sender included (PROFILE.md section 6).
* Kick and unban apply the power check whatever the target's state (invited, knocking too).
* Role map "changes the config of R": R is added, removed, or its order or *set* of users
  differs.  Reordering the list, or the user IDs inside one config, changes nothing (but the
  auth selection follows the new list order).  A user listed twice in one role, a user ID or
  role ID that breaks the grammar is malformed (PROFILE.md section 6; the core's
  ``RoleMapContent.decode``, which ``registry.check_shape`` calls on every path).
* A role named by the role map that has no ``m.room.role`` event defines nothing; its holders'
  auth events skip it.
* ``redact`` is resolved like the other booleans but gates nothing: the profile defines no
  redaction event.
* Joining while joined, re-inviting an invited user and knocking while invited are allowed (the
  draft forbids none of them).
* Auth-event mismatches name every duplicate, unknown, non-current, extra and missing ID;
  "non-current" needs the room's history, without it the reason says "unknown or non-current".
* A second ``m.room.create`` is malformed in ``check_shape`` and rejected by ``check`` too.
* An unknown, well-formed policy ID in ``m.room.create`` is ``PolicyRejectedError``; a policy ID
  that breaks the grammar is ``MalformedError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Set

from ...._core import PolicyRejectedError, RoleMapContent, UserContent
from ....content import M_ROOM_CREATE, M_ROOM_ROLE, M_ROOM_ROLE_MAP, M_ROOM_USER, DecodedContent
from . import auth_selection, participation, permissions, roles, sending, visibility
from .auth_selection import (
    _sender_selection,
    check_auth_events,
    describe_mismatch,
    participation_of,
    decoded_as,
    select_auth_events,
)
from .cache import invalidate, user_cache
from ...create import check_create
from .create import check_creator_join
from .fanout import fanout
from .participation import check_user_event
from .permissions import effective_power_level, user_permissions
from .roles import check_role_event, check_role_map_event, in_creator_phase
from .sending import send_verdict
from .visibility import may_read, served_redacted, serve_event, user_sees, visible_to_server

if TYPE_CHECKING:
    from ...fields import EventFields
    from ...history import RoomStateHistory
    from ...state import RoomState

__all__ = [
    "M0Policy",
    "M0_POLICY",
    "POLICY_ID",
    "select_auth_events",
    "check_auth_events",
    "check_create",
    "check_creator_join",
    "check_user_event",
    "effective_power_level",
    "user_permissions",
    "in_creator_phase",
    "fanout",
    "visible_to_server",
    "may_read",
    "served_redacted",
    "serve_event",
    "user_sees",
    "auth_selection",
    "participation",
    "permissions",
    "roles",
    "sending",
    "visibility",
]

POLICY_ID = "m.0"


class M0Policy:
    """The ``Policy`` object for ``m.0`` (stateless; the room's state is passed in)."""

    policy_id = POLICY_ID

    def select_auth_events(
        self,
        state: RoomState,
        type: str,
        state_key: Optional[str],
        sender: str,
        content: Optional[DecodedContent] = None,
    ) -> List[str]:
        return select_auth_events(state, type, state_key, sender, content)

    def check(self, state: RoomState, event: EventFields, *, content: Optional[DecodedContent] = None) -> None:
        """Auth events, then the permission / participation rules, against ``state`` (the state
        before ``event``).  Raises ``PolicyRejectedError`` (``MalformedError`` if an
        ``m.room.user``/``m.room.role_map`` content does not decode)."""
        event_type = event.type
        if state.count == 1:
            check_auth_events(event, state, content=content)
            check_creator_join(state, event, content)
            return
        if event_type == M_ROOM_USER:
            target = event.state_key
            if target is None:
                raise PolicyRejectedError("m.0: m.room.user needs the target as its state key")
            user_content = decoded_as(UserContent, event, content)
            check_auth_events(event, state, content=user_content)
            check_user_event(state, event.sender, target, participation_of(user_content))
            return
        if event_type == M_ROOM_CREATE:
            raise PolicyRejectedError("m.0: m.room.create is only valid as event 0")

        # The per-message path: memoised auth selection and sending verdict.
        sender = event.sender
        entry = user_cache(state, sender)
        expected = entry.auth
        if expected is None:
            expected = entry.auth = _sender_selection(state, sender)
        actual = event.auth_events
        if actual != expected:
            raise PolicyRejectedError(describe_mismatch(state, actual, expected))
        state_key = event.state_key
        verdict = entry.verdicts.get((event_type, state_key is not None))
        if verdict is None:
            verdict = send_verdict(state, sender, event_type, state_key is not None)
        if verdict:
            raise PolicyRejectedError(verdict)
        if event_type == M_ROOM_ROLE:
            check_role_event(state, sender, state_key, user_permissions(state, sender))  # type: ignore[arg-type]
        elif event_type == M_ROOM_ROLE_MAP:
            role_map = decoded_as(RoleMapContent, event, content)
            check_role_map_event(state, sender, role_map, user_permissions(state, sender))

    def fanout(self, state_after: RoomState, event: EventFields) -> Set[str]:
        return fanout(state_after, event)

    def visible_to_server(self, history: RoomStateHistory, position: int, server_name: str) -> bool:
        return visible_to_server(history, position, server_name)

    def may_read(self, state: RoomState, server_name: str) -> bool:
        return may_read(state, server_name)

    def on_apply(self, state: RoomState, event: EventFields) -> None:
        invalidate(state, event)

    def __repr__(self) -> str:
        return "<M0Policy m.0>"


M0_POLICY = M0Policy()
