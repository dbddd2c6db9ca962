"""Event headers: an event's fields in one call into the core (issue 14, fewer crossings).

A header must say exactly what the getters say, whatever was read before it (the core reuses
the strings of recent headers), and the batch forms must equal the single ones."""

from __future__ import annotations

import pickle

import pytest

import mimi_signaling as m

HUB = m.SigningKey.generate("ed25519:hub")
OTHER = m.SigningKey.generate("ed25519:other")
EVENT_FIELDS = ("event_id", "room_id", "type", "state_key", "sender", "prev_event", "auth_events", "content")
LIMITED_FIELDS = ("room_id", "type", "state_key", "sender", "origin_server", "content")


def _room(room_id: str, creator: str, key: m.SigningKey, messages: int) -> list:
    create = m.LimitedEvent.create(room_id, "m.room.create", "", creator, m.CreateContent("m.0", "org.example.plain").encode(), key)
    events = [create.to_event([], "", key)]
    join = m.LimitedEvent.create(room_id, "m.room.user", creator, creator, m.UserContent(1).encode(), key)
    events.append(join.to_event([events[0].event_id], events[0].event_id, key))
    for i in range(messages):
        limited = m.LimitedEvent.create(room_id, "m.room.encrypted", None, creator, f"message {i}".encode(), key)
        events.append(limited.to_event([events[0].event_id, events[1].event_id], events[-1].event_id, key))
    return events


@pytest.fixture(scope="module")
def events() -> list:
    """Two rooms' events interleaved: every field changes from one event to the next."""
    first = _room("!one:hub.test", "@ana:hub.test", HUB, 20)
    second = _room("!two:other.test", "@ben:other.test", OTHER, 20)
    return [e for pair in zip(first, second) for e in pair]


def _fields(event, names):
    return tuple(getattr(event, name) for name in names)


def test_a_header_is_what_the_getters_say(events) -> None:
    for event in events:
        header = event.header()
        assert isinstance(header, m.EventHeader) and isinstance(header, tuple)
        assert tuple(header) == _fields(event, EVENT_FIELDS)
        assert _fields(header, EVENT_FIELDS) == _fields(event, EVENT_FIELDS)
    non_state = events[-1].header()
    assert non_state.state_key is None and non_state.auth_events == events[-1].auth_events


def test_a_limited_header_is_what_the_getters_say(events) -> None:
    for event in events:
        limited = event.limited()
        header = limited.header()
        assert isinstance(header, m.LimitedEventHeader)
        assert tuple(header) == _fields(limited, LIMITED_FIELDS)
    assert events[0].limited().header().origin_server == "hub.test"
    assert events[1].limited().header().origin_server == "other.test"


def test_the_batch_forms_equal_the_single_ones(events) -> None:
    assert m.event_headers(events) == [e.header() for e in events]
    limited = [e.limited() for e in events]
    assert m.limited_event_headers(limited) == [e.header() for e in limited]
    assert m.encode_events(events) == [e.encode() for e in events]
    assert m.limited_event_digests(limited) == [m.sha256(e.encode()) for e in limited]
    assert m.event_headers([]) == [] and m.encode_events([]) == []


def test_headers_of_decoded_events_compute_their_ids(events) -> None:
    """``decode_events`` gives events without their ID: the batch computes them (in parallel)."""
    decoded = m.decode_events([e.encode() for e in events])
    assert [h.event_id for h in m.event_headers(decoded)] == [e.event_id for e in events]


def test_a_run_of_one_room_shares_its_strings() -> None:
    run = m.event_headers(_room("!three:hub.test", "@cy:hub.test", HUB, 5))
    for before, after in zip(run, run[1:]):
        assert after.prev_event is before.event_id  # the one read before is the prev
        assert after.room_id is before.room_id
    assert run[3].auth_events[1] is run[2].auth_events[1]


def test_a_header_is_immutable_and_pickles(events) -> None:
    header = events[2].header()
    with pytest.raises(AttributeError):
        header.type = "m.room.name"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(header)) == header
    header.auth_events.append("$x")  # a new list per header: the event is not touched
    assert events[2].header().auth_events == events[2].auth_events
