"""Event 0 of every room (PROFILE.md section 4 rule 1), whatever its policy.

"Event 0 is ``m.room.create``, state key ``""``, no auth events, empty ``prev_event``, sent by a
user whose server is the room ID's server. Its content names the policy [...] and the
encryption algorithm." These are signaling rules, so they live in the room layer; whether the
named policy is supported is the ``PolicyRegistry``'s call, and event 1 (rule 2) is checked by
the policy with the rest of its auth rules.

One verdict on every path (hub, follower, ``RoomChain``, ``mimi verify``): a create event of the
wrong type or state key, or with auth events or a ``prev_event``, does not have the shape of
event 0 and is ``MalformedError``; a create event sent from another server than the room's is
a well-formed event that the rule refuses, ``PolicyRejectedError``.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .._core import CreateContent, MalformedError, PolicyRejectedError, parse_room_id, parse_user_id
from ..content import M_ROOM_CREATE
from .fields import ShapeFields

__all__ = ["check_create"]


def check_create(event: ShapeFields, content: Optional[CreateContent] = None) -> CreateContent:
    """Rule 1 for an ``Event`` or its header (or a ``LimitedEvent``: no auth/prev fields to
    check); returns the decoded content."""
    if event.type != M_ROOM_CREATE:
        raise MalformedError(f"event 0 must be m.room.create, got {event.type}")
    if event.state_key != "":
        raise MalformedError(f"m.room.create: the state key must be empty, got {event.state_key!r}")
    if content is None:
        content = CreateContent.decode(event.content)
    auth_events: Sequence[str] = getattr(event, "auth_events", ())
    if auth_events:
        raise MalformedError(f"m.room.create: must have no auth events, has {len(auth_events)}")
    prev_event: str = getattr(event, "prev_event", "")
    if prev_event:
        raise MalformedError(f"m.room.create: prev_event must be empty, got {prev_event}")
    room_server = parse_room_id(event.room_id)[1]
    sender_server = parse_user_id(event.sender)[1]
    if sender_server != room_server:
        raise PolicyRejectedError(
            f"m.room.create: sender {event.sender} is not on the room's server {room_server}"
        )
    return content
