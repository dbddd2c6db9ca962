"""Rooms broken at a known index are rejected naming exactly that event (index, and its ID
when it decodes), for each kind of fault, early, in the middle of a chunk and at chunk
boundaries.  Every fault is built so that only the intended check fails (the hub re-signs
after changing prev or auth events)."""

from __future__ import annotations

import json

import pytest
from support.roomfile_helpers import run_mimi

import mimi_signaling as m
from mimi_signaling.roomfile import verify_room_file
from mimi_signaling.testing.rooms import FAULT_KINDS, Fault, generate_room

CHUNK = 256
ROOM_EVENTS = 600

#: The wire error each fault must produce.
EXPECTED_CODE = {
    "wrong_prev": "malformed",
    "missing_auth": "policy_rejected",
    "extra_auth": "policy_rejected",
    "non_current_auth": "policy_rejected",
    "bad_hub_signature": "bad_signature",
    "bad_origin_signature": "bad_signature",
    "tampered_content": "bad_content_hash",
    "truncated_record": "malformed",
    "bad_record_varint": "malformed",
    "bad_event_varint": "malformed",
    "not_joined": "policy_rejected",
    "kick_without_permission": "policy_rejected",
}
#: A word the reason must carry, so the right check (not some other) rejected the event.
EXPECTED_REASON = {
    "wrong_prev": "prev_event",
    "missing_auth": "missing auth event",
    "extra_auth": "extra auth event",
    "non_current_auth": "non-current auth event",
    "bad_hub_signature": "hub_signature",
    "bad_origin_signature": "origin_signature",
    "tampered_content": "content",
    "truncated_record": "truncated",
    "bad_record_varint": "length prefix",
    "bad_event_varint": "non-minimal",
    "not_joined": "not joined",
    "kick_without_permission": "kick",
}
#: The earliest index each fault can be built at in a generated room (0 = on m.room.create;
#: the policy faults need a joined sender, a superseded m.room.user or a second member).
EARLIEST = {
    "wrong_prev": 0,
    "missing_auth": 2,
    "extra_auth": 3,
    "non_current_auth": 7,
    "bad_hub_signature": 0,
    "bad_origin_signature": 0,
    "tampered_content": 2,
    "truncated_record": 0,
    "bad_record_varint": 0,
    "bad_event_varint": 0,
    "not_joined": 2,
    "kick_without_permission": 7,
}


def test_every_fault_kind_is_covered():
    assert set(EXPECTED_CODE) == set(FAULT_KINDS) == set(EARLIEST)


def _check(tmp_path, kind: str, index: int, chunk: int = CHUNK):
    path = tmp_path / f"{kind}-{index}.room"
    room = generate_room(path, ROOM_EVENTS, seed=index, faults=[Fault(kind, index)])
    ((fault, event_id),) = room.faults
    report = verify_room_file(path, chunk=chunk)
    assert not report.ok
    failure = report.failure
    assert failure is not None
    assert failure.index == index, failure
    assert failure.event_id == event_id, failure
    assert failure.code_name == EXPECTED_CODE[kind], failure
    assert EXPECTED_REASON[kind] in failure.reason, failure
    assert report.events_checked == index
    return room, failure


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
@pytest.mark.parametrize("where", ["early", "last_of_chunk", "chunk_boundary", "mid_chunk", "later_boundary"])
def test_fault_is_named_at_its_index(tmp_path, kind, where):
    index = {
        "early": EARLIEST[kind],
        "last_of_chunk": CHUNK - 1,
        "chunk_boundary": CHUNK,
        "mid_chunk": CHUNK + 77,
        "later_boundary": 2 * CHUNK,
    }[where]
    room, _ = _check(tmp_path, kind, index)
    decodes = kind not in ("truncated_record", "bad_record_varint", "bad_event_varint")
    assert (room.faults[0][1] is not None) == decodes


def test_faults_with_the_default_chunk_and_no_pipeline(tmp_path):
    # One chunk for the whole room, and the sequential (non-pipelined) path.
    path = tmp_path / "seq.room"
    room = generate_room(path, 900, seed=5, faults=[Fault("not_joined", 640)])
    report = verify_room_file(path, pipeline=False)
    assert report.failure is not None and report.failure.index == 640
    assert report.failure.event_id == room.faults[0][1]


@pytest.mark.parametrize(
    "policy_at, crypto_at, expected",
    [
        (300, 310, 300),  # policy failure earlier in the same chunk wins over a later crypto failure
        (310, 300, 300),  # a crypto failure earlier wins
        (300, 520, 300),  # policy failure in an earlier chunk than the crypto failure
        (520, 300, 300),
    ],
)
def test_the_lowest_failing_index_wins(tmp_path, policy_at, crypto_at, expected):
    path = tmp_path / "two.room"
    room = generate_room(
        path, ROOM_EVENTS, seed=9,
        faults=[Fault("kick_without_permission", policy_at), Fault("bad_hub_signature", crypto_at)],
    )
    report = verify_room_file(path, chunk=CHUNK)
    assert report.failure is not None
    assert report.failure.index == expected
    ids = {f.index: event_id for f, event_id in room.faults}
    assert report.failure.event_id == ids[expected]


def _cli_index(kind: str) -> int:
    return max(EARLIEST[kind], 40) + sorted(FAULT_KINDS).index(kind) * 37  # vary the index per kind


@pytest.mark.parametrize("kind", sorted(FAULT_KINDS))
def test_cli_names_the_bad_event(tmp_path, kind):
    """``mimi verify`` in a separate process: exit 1, the index and the ID (when it decodes)."""
    index = _cli_index(kind)
    path = tmp_path / f"{kind}.room"
    room = generate_room(path, ROOM_EVENTS, seed=1, faults=[Fault(kind, index)])
    event_id = room.faults[0][1]
    result = run_mimi("verify", str(path), "--chunk", str(CHUNK))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"index {index}," in result.stdout
    assert EXPECTED_CODE[kind] in result.stdout
    if event_id is not None:
        assert event_id in result.stdout
    else:
        assert "does not decode" in result.stdout


@pytest.mark.parametrize("kind", ["bad_hub_signature", "bad_event_varint", "non_current_auth"])
def test_cli_json_names_the_bad_event(tmp_path, kind):
    index = _cli_index(kind)
    path = tmp_path / f"{kind}.room"
    room = generate_room(path, ROOM_EVENTS, seed=2, faults=[Fault(kind, index)])
    result = run_mimi("verify", str(path), "--json", "--threads", "1", "--chunk", "100")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["events_checked"] == index
    failure = report["failure"]
    assert failure["index"] == index and failure["event_id"] == room.faults[0][1]
    assert failure["code_name"] == EXPECTED_CODE[kind]
    assert failure["error"] == {"malformed": "MalformedError", "bad_signature": "BadSignatureError",
                                "policy_rejected": "PolicyRejectedError"}[EXPECTED_CODE[kind]]


def test_golden_room_with_a_tampered_event(tmp_path, golden, golden_room_file):
    """Flip one byte of the golden message's ciphertext: bad_content_hash at index 9."""
    reader = m.RoomFileReader(str(golden_room_file))
    blobs = reader.read_events(100)
    message = m.Event.decode(blobs[9])
    tampered = message.with_content(message.content[:-1] + b"X")
    path = tmp_path / "tampered.room"
    with open(path, "wb") as f:
        f.write(m.wire.encode_room_file_header())
        for sk in reader.server_keys:
            f.write(m.wire.encode_room_file_record(1, sk.encode()))
        for blob in blobs[:9] + [tampered.encode()]:
            f.write(m.wire.encode_room_file_record(2, blob))
    report = verify_room_file(path)
    assert report.failure is not None
    assert (report.failure.index, report.failure.code_name) == (9, "bad_content_hash")
    assert report.failure.event_id == golden["events"][9]["event_id"]


def test_generator_refuses_faults_it_cannot_build(tmp_path):
    with pytest.raises(ValueError):
        Fault("no_such_fault", 3)
    with pytest.raises(ValueError):
        generate_room(tmp_path / "x.room", 50, faults=[Fault("missing_auth", 0)])
    with pytest.raises(ValueError):
        generate_room(tmp_path / "x.room", 50, faults=[Fault("wrong_prev", 50)])
    assert not (tmp_path / "x.room").exists()  # nothing left behind
    assert not list(tmp_path.iterdir())
