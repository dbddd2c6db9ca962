"""Rooms: event-type and policy registries, room state, and the ``m.0`` policy (pure logic).

Typical use, on the hub and on followers alike::

    state = RoomState.from_create(create_event)          # event 0
    for event in later_events:
        content = check_shape(event, state)               # MalformedError
        state.policy.check(state, event, content=content) # PolicyRejectedError
        state.apply(event, content)
"""

from __future__ import annotations

from .history import RoomStateHistory
from .policy import Policy
from .registry import (
    DEFAULT_EVENT_TYPES,
    DEFAULT_POLICIES,
    EventTypeRegistry,
    EventTypeSpec,
    PolicyRegistry,
    check_shape,
    register,
    register_policy,
)
from .state import RoomState

__all__ = [
    "DEFAULT_EVENT_TYPES",
    "DEFAULT_POLICIES",
    "EventTypeRegistry",
    "EventTypeSpec",
    "Policy",
    "PolicyRegistry",
    "RoomState",
    "RoomStateHistory",
    "check_shape",
    "register",
    "register_policy",
]
