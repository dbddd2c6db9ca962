"""The room's state over time, kept as a list of changes (memory ~ number of state events).

Positions are indexes in the room's chain: the create event is 0.  "The state at position p"
is the state current when the event at p was checked, i.e. after events 0..p-1: it is what
that event's auth events were selected from.

``RoomStateHistory`` records, per ``(type, state_key)``, the positions where it changed and the
new event ID, plus what history visibility needs: each user's participation timeline and the
history-visibility timeline.  Non-state events are not recorded at all.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Dict, Iterable, List, Optional, Set, Tuple

from ..content import Participation, Visibility

__all__ = ["RoomStateHistory", "StateKey"]

StateKey = Tuple[str, str]  # (type, state_key)


class _Timeline:
    """Parallel lists of (position, value), positions strictly increasing."""

    __slots__ = ("positions", "values")

    def __init__(self) -> None:
        self.positions: List[int] = []
        self.values: List[object] = []

    def append(self, position: int, value: object) -> None:
        self.positions.append(position)
        self.values.append(value)

    def before(self, position: int) -> Optional[object]:
        """The value current at ``position`` (the last change at a position < ``position``)."""
        index = bisect_left(self.positions, position)
        return self.values[index - 1] if index else None

    def copy(self) -> _Timeline:
        other = _Timeline()
        other.positions = self.positions.copy()
        other.values = self.values.copy()
        return other


class RoomStateHistory:
    """Every state change of one room, by position."""

    def __init__(self, known_from: int = 0) -> None:
        #: The first position this history can decide about: 0 when it was recorded from the
        #: create event on.  One begun from a snapshot (``RoomState.start_history``) records
        #: the snapshot's state as one change just below ``known_from`` and knows nothing of
        #: the positions before: who saw an event there cannot be decided.
        self.known_from = known_from
        self._changes: Dict[StateKey, _Timeline] = {}
        # event ID -> (type, state_key, position) for every state event ever accepted, so an
        # auth event can be told "non-current" rather than "unknown".
        self._state_events: Dict[str, Tuple[str, str, int]] = {}
        self._membership: Dict[str, _Timeline] = {}
        self._last_join: Dict[str, int] = {}
        self._users_by_server: Dict[str, Set[str]] = {}
        self._visibility = _Timeline()
        self._state_positions: List[int] = []  # increasing
        self.count = 0  # positions recorded so far (the next event's position)

    # --- recording --------------------------------------------------------------------------

    def record_state(
        self,
        position: int,
        event_type: str,
        state_key: str,
        event_id: str,
        participation: Optional[int] = None,
        server_name: Optional[str] = None,
        visibility: Optional[int] = None,
    ) -> None:
        """One accepted state event at ``position`` (``participation``/``visibility`` decoded)."""
        key = (event_type, state_key)
        timeline = self._changes.get(key)
        if timeline is None:
            timeline = self._changes[key] = _Timeline()
        timeline.append(position, event_id)
        self._state_events[event_id] = (event_type, state_key, position)
        self._state_positions.append(position)
        if participation is not None:
            members = self._membership.get(state_key)
            if members is None:
                members = self._membership[state_key] = _Timeline()
                if server_name is not None:
                    self._users_by_server.setdefault(server_name, set()).add(state_key)
            members.append(position, Participation(participation))
            if participation == Participation.JOIN:
                self._last_join[state_key] = position
        if visibility is not None:
            self._visibility.append(position, Visibility(visibility))
        self.count = position + 1

    def advance(self, position: int) -> None:
        """A non-state event at ``position`` (only the count moves)."""
        self.count = position + 1

    # --- queries ----------------------------------------------------------------------------

    def state_at(self, position: int) -> Dict[StateKey, str]:
        """``(type, state_key) -> event ID`` of the state current at ``position``."""
        result: Dict[StateKey, str] = {}
        for key, timeline in self._changes.items():
            event_id = timeline.before(position)
            if event_id is not None:
                result[key] = event_id  # type: ignore[assignment]
        return result

    def event_id_at(self, event_type: str, state_key: str, position: int) -> Optional[str]:
        timeline = self._changes.get((event_type, state_key))
        return None if timeline is None else timeline.before(position)  # type: ignore[return-value]

    def changes(self, event_type: str, state_key: str) -> List[Tuple[int, str]]:
        """Every ``(position, event_id)`` change of one state key, oldest first."""
        timeline = self._changes.get((event_type, state_key))
        return [] if timeline is None else list(zip(timeline.positions, timeline.values))  # type: ignore[arg-type]

    def state_event(self, event_id: str) -> Optional[Tuple[str, str, int]]:
        """``(type, state_key, position)`` of an accepted state event, current or not."""
        return self._state_events.get(event_id)

    def is_state_position(self, position: int) -> bool:
        positions = self._state_positions
        index = bisect_left(positions, position)
        return index < len(positions) and positions[index] == position

    def participation_at(self, user_id: str, position: int) -> Optional[Participation]:
        timeline = self._membership.get(user_id)
        return None if timeline is None else timeline.before(position)  # type: ignore[return-value]

    def membership_changes(self, user_id: str) -> List[Tuple[int, Participation]]:
        timeline = self._membership.get(user_id)
        return [] if timeline is None else list(zip(timeline.positions, timeline.values))  # type: ignore[arg-type]

    def last_join_position(self, user_id: str) -> Optional[int]:
        return self._last_join.get(user_id)

    def iter_users_of_server(self, server_name: str) -> Iterable[str]:
        """Users of ``server_name`` that ever had an ``m.room.user`` event in the room (the
        live set, not a copy: do not apply events while iterating)."""
        return self._users_by_server.get(server_name, ())

    def visibility_at(self, position: int) -> Visibility:
        value = self._visibility.before(position)
        return Visibility.SHARED if value is None else value  # type: ignore[return-value]

    def state_keys(self) -> Iterable[StateKey]:
        return list(self._changes)

    def copy(self) -> RoomStateHistory:
        other = RoomStateHistory(self.known_from)
        other._changes = {key: t.copy() for key, t in self._changes.items()}
        other._state_events = dict(self._state_events)
        other._membership = {key: t.copy() for key, t in self._membership.items()}
        other._last_join = dict(self._last_join)
        other._users_by_server = {key: set(users) for key, users in self._users_by_server.items()}
        other._visibility = self._visibility.copy()
        other._state_positions = self._state_positions.copy()
        other.count = self.count
        return other
