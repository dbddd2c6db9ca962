"""The current state of one room, advanced one accepted event at a time.

``RoomState`` holds the state map ``(type, state_key) -> Event`` with each state event's content
decoded once, membership indexes (participation per user, joined users, joined servers), the
per-room kinds of unregistered event types, the event count and the last event ID, and
optionally a ``RoomStateHistory`` so that the state at any earlier position can be answered.

It checks nothing about policy: callers run ``registry.check_shape`` and ``policy.check``
against the state *before* an event, then ``apply`` it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple, cast

from .._core import (
    CreateContent,
    Event,
    MalformedError,
    NotFoundError,
    RoleMapContent,
    parse_room_id,
    parse_user_id,
)
from ..content import (
    M_ROOM_AVATAR,
    M_ROOM_CREATE,
    M_ROOM_HISTORY_VISIBILITY,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_ROLE_MAP,
    M_ROOM_TOPIC,
    M_ROOM_USER,
    DecodedContent,
    JoinRule,
    Participation,
    Visibility,
)
from .history import RoomStateHistory, StateKey
from .create import check_create
from .fields import EventFields
from .registry import DEFAULT_EVENT_TYPES, DEFAULT_POLICIES, EventTypeRegistry, PolicyRegistry

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["RoomState", "StateKey", "server_of"]

logger = logging.getLogger(__name__)

_JOIN = Participation.JOIN


def server_of(user_id: str) -> str:
    """The server name of a user ID."""
    return parse_user_id(user_id)[1]


class RoomState:
    """State of one room after ``count`` accepted events (positions ``0 .. count - 1``)."""

    def __init__(
        self,
        create_event: Event,
        create_content: CreateContent,
        policy: Policy,
        *,
        registry: Optional[EventTypeRegistry] = None,
        track_history: bool = True,
        header: Optional[EventFields] = None,
    ) -> None:
        """Install an already-checked create event; use ``from_create`` to check it too.
        ``header``: ``create_event.header()`` if the caller has it."""
        fields = header if header is not None else create_event.header()
        self.room_id: str = fields.room_id
        self.hub_server: str = parse_room_id(self.room_id)[1]
        self.registry: EventTypeRegistry = registry or DEFAULT_EVENT_TYPES
        self.policy: Policy = policy
        self.policy_id: str = create_content.policy_id
        self.create_event: Event = create_event
        self.create_event_id: str = fields.event_id
        self.create_content: CreateContent = create_content
        self.creator: str = fields.sender
        self.encryption_algorithm: str = create_content.encryption_algorithm

        self.count = 0  # number of accepted events = position of the next one
        self.last_event_id: Optional[str] = None
        self._events: Dict[StateKey, Event] = {}
        self._ids: Dict[StateKey, str] = {}
        self._content: Dict[StateKey, DecodedContent] = {}
        self._by_id: Dict[str, StateKey] = {}  # current state only
        #: Unregistered (or registered with ``is_state=None``) types: state or not, by first use.
        self.custom_type_kinds: Dict[str, bool] = {}
        self._participation: Dict[str, Participation] = {}
        self._joined: Set[str] = set()
        self._joined_servers: Dict[str, int] = {}
        self._servers: Dict[str, str] = {}  # user ID -> server name
        self._user_servers: Set[str] = set()  # servers with a user in any participation state
        #: The policy's memo of verdicts; the policy invalidates it in ``on_apply``.
        self.policy_cache: Dict[Any, Any] = {}
        #: Values derived from immutable events (keyed by event ID), shared by copies.
        self.derived: Dict[Any, Any] = {}
        self.history: Optional[RoomStateHistory] = RoomStateHistory() if track_history else None
        self.apply(create_event, content=create_content, header=fields)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_create(
        cls,
        create_event: Event,
        *,
        policies: Optional[PolicyRegistry] = None,
        registry: Optional[EventTypeRegistry] = None,
        track_history: bool = True,
        header: Optional[EventFields] = None,
    ) -> RoomState:
        """Check event 0 (PROFILE.md section 4 rule 1) and open the room's state with it
        (``header``: ``create_event.header()`` if the caller has it).

        Raises ``MalformedError`` for a bad shape and ``PolicyRejectedError`` for an unsupported
        policy ID or a broken create rule.
        """
        registry = registry or DEFAULT_EVENT_TYPES
        fields = header if header is not None else create_event.header()
        content = registry.check_shape(fields, None)
        if fields.type != M_ROOM_CREATE:
            raise MalformedError(f"event 0 must be m.room.create, got {fields.type}")
        check_create(fields, content)  # type: ignore[arg-type]  # narrowed by the type check above
        policy = (policies or DEFAULT_POLICIES).get(content.policy_id)  # type: ignore[union-attr]
        return cls(
            create_event,
            content,  # type: ignore[arg-type]
            policy,
            registry=registry,
            track_history=track_history,
            header=fields,
        )

    @classmethod
    def from_state_events(
        cls,
        create_event: Event,
        state_events: Iterable[Event],
        *,
        count: int,
        last_event_id: str,
        policies: Optional[PolicyRegistry] = None,
        registry: Optional[EventTypeRegistry] = None,
    ) -> RoomState:
        """Rebuild a state from a snapshot (no history: earlier positions are unknown).

        ``state_events`` are the current state events (the create event may be among them);
        ``count`` is the number of events in the room up to and including ``last_event_id``.
        """
        state = cls.from_create(create_event, policies=policies, registry=registry, track_history=False)
        for event in state_events:
            fields = event.header()
            if fields.type == M_ROOM_CREATE:
                continue
            state.apply(event, header=fields)
        state.count = count
        state.last_event_id = last_event_id
        return state

    # --- advancing --------------------------------------------------------------------------

    def apply(
        self,
        event: Event,
        content: Optional[DecodedContent] = None,
        *,
        header: Optional[EventFields] = None,
    ) -> None:
        """Advance by one accepted event (checked by the caller against this state).

        ``content``: the decoded content if the caller already has it (from ``check_shape``);
        ``header``: ``event.header()`` if the caller has it (the fields are read from it).  A
        state event whose content does not decode raises ``MalformedError`` and changes nothing.
        """
        fields = header if header is not None else event.header()
        position = self.count
        event_type = fields.type
        state_key = fields.state_key
        if event_type not in self.custom_type_kinds:
            spec = self.registry.get(event_type)
            if spec is None or spec.is_state is None:
                self.custom_type_kinds[event_type] = state_key is not None
        if state_key is None:
            self.count = position + 1
            self.last_event_id = fields.event_id
            if self.history is not None:
                self.history.advance(position)
            return

        if content is None:
            content = self._decode(event_type, fields.content)
        event_id = fields.event_id
        key = (event_type, state_key)

        participation: Optional[int] = None
        server_name: Optional[str] = None
        if event_type == M_ROOM_USER:
            participation = Participation(content.participation)  # type: ignore[union-attr]
            server_name = self._servers.get(state_key)
            if server_name is None:
                server_name = self._servers[state_key] = server_of(state_key)
                self._user_servers.add(server_name)
            self._set_participation(state_key, server_name, participation)

        old_id = self._ids.get(key)
        if old_id is not None:
            self._by_id.pop(old_id, None)
        self._events[key] = event
        self._ids[key] = event_id
        self._content[key] = content
        self._by_id[event_id] = key
        self.count = position + 1
        self.last_event_id = event_id
        if self.history is not None:
            self._record(self.history, position, key, event_id, content, participation, server_name)
        on_apply = getattr(self.policy, "on_apply", None)
        if on_apply is not None:
            on_apply(self, fields)

    @staticmethod
    def _record(
        history: RoomStateHistory,
        position: int,
        key: StateKey,
        event_id: str,
        content: DecodedContent,
        participation: Optional[int],
        server_name: Optional[str],
    ) -> None:
        visibility = (
            content.visibility  # type: ignore[union-attr]
            if key[0] == M_ROOM_HISTORY_VISIBILITY
            else None
        )
        history.record_state(position, key[0], key[1], event_id, participation, server_name, visibility)

    def start_history(self, known_from: int) -> None:
        """Begin a history now, for a state rebuilt without one (a follower that joined from a
        snapshot): the current state is recorded as of position ``count - 1`` and later events
        are recorded as they are applied.  Positions before ``known_from`` (and before the
        current position) stay undecidable (``RoomStateHistory.known_from``): the memberships
        before the snapshot are unknown."""
        history = RoomStateHistory(max(known_from, self.count))
        seed = self.count - 1
        for key, event_id in self._ids.items():
            participation = server_name = None
            if key[0] == M_ROOM_USER:
                participation, server_name = self._participation[key[1]], self.server_of(key[1])
            self._record(history, seed, key, event_id, self._content[key], participation, server_name)
        self.history = history

    def replace_event(self, event: Event) -> None:
        """Swap in another copy of a current state event with the same ID (the hub's group
        commit applies events before their hub signature is added)."""
        key = self._by_id.get(event.event_id)
        if key is not None:
            self._events[key] = event

    def _decode(self, event_type: str, content: bytes) -> DecodedContent:
        spec = self.registry.get(event_type)
        if spec is None or spec.content_codec is None:
            return bytes(content)
        return cast(DecodedContent, spec.content_codec.decode(content))

    def _set_participation(self, user_id: str, server_name: str, participation: Participation) -> None:
        was_joined = user_id in self._joined
        self._participation[user_id] = participation
        if participation == _JOIN and not was_joined:
            self._joined.add(user_id)
            self._joined_servers[server_name] = self._joined_servers.get(server_name, 0) + 1
        elif participation != _JOIN and was_joined:
            self._joined.discard(user_id)
            left = self._joined_servers[server_name] - 1
            if left:
                self._joined_servers[server_name] = left
            else:
                del self._joined_servers[server_name]

    def check_link(self, event: EventFields) -> None:
        """PROFILE.md section 4 rule 3: the room ID and ``prev_event`` of the next event."""
        if event.room_id != self.room_id:
            raise MalformedError(f"event for room {event.room_id} does not belong to room {self.room_id}")
        if event.prev_event != self.last_event_id:
            raise MalformedError(
                f"prev_event {event.prev_event or '(empty)'} is not the last accepted event {self.last_event_id}"
            )

    # --- lookups ----------------------------------------------------------------------------

    def get(self, event_type: str, state_key: str = "") -> Optional[Event]:
        return self._events.get((event_type, state_key))

    def get_event_id(self, event_type: str, state_key: str = "") -> Optional[str]:
        return self._ids.get((event_type, state_key))

    def content(self, event_type: str, state_key: str = "") -> Optional[DecodedContent]:
        """The decoded content of a current state event (raw bytes for opaque types)."""
        return self._content.get((event_type, state_key))

    def key_of(self, event_id: str) -> Optional[StateKey]:
        """``(type, state_key)`` when ``event_id`` is a *current* state event."""
        return self._by_id.get(event_id)

    def is_current(self, event_id: str) -> bool:
        return event_id in self._by_id

    def __contains__(self, key: object) -> bool:
        return key in self._events

    def __len__(self) -> int:
        return len(self._events)

    def keys(self) -> List[StateKey]:
        return list(self._events)

    def events(self) -> List[Event]:
        """The current state events (create first, then in order of first appearance)."""
        return list(self._events.values())

    def state_ids(self) -> Dict[StateKey, str]:
        return dict(self._ids)

    def items(self) -> Iterator[Tuple[StateKey, Event]]:
        return iter(list(self._events.items()))

    def is_state_type(self, event_type: str) -> Optional[bool]:
        return self.registry.is_state_type(event_type, self)

    # membership

    def participation(self, user_id: str) -> Optional[Participation]:
        return self._participation.get(user_id)

    def is_joined(self, user_id: str) -> bool:
        return user_id in self._joined

    def joined_users(self) -> Set[str]:
        return set(self._joined)

    def joined_servers(self) -> Set[str]:
        return set(self._joined_servers)

    def users(self) -> Dict[str, Participation]:
        """Every user with an ``m.room.user`` event, by current participation."""
        return dict(self._participation)

    def has_user_of(self, server_name: str) -> bool:
        """Whether ``server_name`` has a user with any participation state (invite, join,
        knock, leave, ban) in the room."""
        return server_name in self._user_servers

    def users_with(self, participation: Participation) -> Set[str]:
        return {user for user, value in self._participation.items() if value == participation}

    def server_of(self, user_id: str) -> str:
        server_name = self._servers.get(user_id)
        return server_name if server_name is not None else server_of(user_id)

    # room settings (defaults from the drafts)

    def join_rule(self) -> JoinRule:
        content = self._content.get((M_ROOM_JOIN_RULES, ""))
        return JoinRule.INVITE if content is None else JoinRule(content.rule)  # type: ignore[union-attr]

    def history_visibility(self) -> Visibility:
        content = self._content.get((M_ROOM_HISTORY_VISIBILITY, ""))
        if content is None:
            return Visibility.SHARED
        return Visibility(content.visibility)  # type: ignore[union-attr]

    def role_map(self) -> Optional[RoleMapContent]:
        return self._content.get((M_ROOM_ROLE_MAP, ""))  # type: ignore[return-value]

    def _text(self, event_type: str) -> Optional[bytes]:
        # A redacted name/avatar/topic has empty content: the same as none at all.
        content = self._content.get((event_type, ""))
        if content is None:
            return None
        value = content.value  # type: ignore[union-attr]
        return value if value else None

    def name(self) -> Optional[bytes]:
        return self._text(M_ROOM_NAME)

    def topic(self) -> Optional[bytes]:
        return self._text(M_ROOM_TOPIC)

    def avatar(self) -> Optional[bytes]:
        return self._text(M_ROOM_AVATAR)

    # --- snapshots --------------------------------------------------------------------------

    def copy(self, *, with_history: bool = True) -> RoomState:
        """An independent copy (O(state size); the history too unless ``with_history=False``)."""
        other = object.__new__(RoomState)
        other.__dict__.update(self.__dict__)
        other._events = dict(self._events)
        other._ids = dict(self._ids)
        other._content = dict(self._content)
        other._by_id = dict(self._by_id)
        other.custom_type_kinds = dict(self.custom_type_kinds)
        other._participation = dict(self._participation)
        other._joined = set(self._joined)
        other._joined_servers = dict(self._joined_servers)
        other._servers = dict(self._servers)
        other._user_servers = set(self._user_servers)
        other.policy_cache = {}
        other.derived = self.derived  # immutable values keyed by event ID
        other.history = self.history.copy() if (with_history and self.history is not None) else None
        return other

    def state_at(self, position: int) -> Dict[StateKey, str]:
        """``(type, state_key) -> event ID`` current at ``position`` (needs the history)."""
        if self.history is None:
            raise NotFoundError("this room state keeps no history")
        if not 0 <= position <= self.count:
            raise NotFoundError(f"position {position} is outside the room (0..{self.count})")
        return self.history.state_at(position)

    def __repr__(self) -> str:
        return f"<RoomState {self.room_id} count={self.count} state={len(self._events)} joined={len(self._joined)}>"
