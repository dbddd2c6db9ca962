#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the golden vectors.

Seeds are the golden events, limited events, redacted events and room file of
shared/vectors/mimi_events.json, plus transport bodies, keys and contents built with the
Python API (mimi_signaling.encode_* and the content classes). Each target's seeds stay a few
KB so that they can be checked in. Targets whose first input byte picks a decoder (transport,
keys, content) get that byte in front of each seed; the tables are in fuzz/src/lib.rs.

Usage: python3 scripts/make-fuzz-corpus.py [--vectors PATH] [--out DIR]
Needs the built package (`import mimi_signaling`). Output is deterministic.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import struct
from pathlib import Path
from typing import Dict, List, Tuple

import mimi_signaling as m
from mimi_signaling.content import CONTENT_CLASSES, M_ROOM_ENCRYPTED

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent

# Must match TRANSPORT_DECODERS and content_type() in fuzz/src/lib.rs.
TRANSPORT = {
    "get_event_request": 0,
    "get_state_request": 1,
    "backfill_request": 2,
    "backfill_response": 3,
    "snapshot_request": 4,
    "snapshot_response": 5,
    "error_body": 6,
}
# The registry in the core's order (REGISTERED_TYPES), then the fuzz target's two extras.
CONTENT_TYPES = [*CONTENT_CLASSES, M_ROOM_ENCRYPTED, "org.example.thing", "m.room.unknown"]
KEYS_VERIFY_KEY = 0
KEYS_SERVER_KEYS = 1

Seeds = List[Tuple[str, bytes]]


def default_vectors() -> Path:
    for candidate in (ROOT.parent / "shared" / "vectors", ROOT / "shared" / "vectors"):
        if (candidate / "mimi_events.json").exists():
            return candidate / "mimi_events.json"
    return ROOT.parent / "shared" / "vectors" / "mimi_events.json"


def slug(note: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in note.lower())
    return "-".join(p for p in keep.split("-") if p)[:40]


def event_seeds(golden: dict) -> Tuple[Seeds, Seeds, Seeds]:
    """(events incl. the redacted ones that differ, limited events, the redacted ones alone)."""
    events: Seeds = []
    limited: Seeds = []
    redacted: Seeds = []
    for i, e in enumerate(golden["events"]):
        name = f"golden-{i:02d}-{slug(e['note'])}"
        events.append((name, bytes.fromhex(e["event"])))
        limited.append((name, bytes.fromhex(e["limited_event"])))
        if e["redacted_event"] != e["event"]:
            redacted.append((name + "-redacted", bytes.fromhex(e["redacted_event"])))
    return events, limited, redacted


def vec(data: bytes) -> bytes:
    return m.wire.encode_varint(len(data)) + data


def encode_event(ev: "m.Event", **changes: object) -> bytes:
    """Encode an Event field by field (PROFILE.md section 2) with some fields replaced, so that
    a seed can carry what the Python API would refuse to build (bad signatures, unknown keys)."""
    f = {
        "room_id": ev.room_id,
        "type": ev.type,
        "state_key": ev.state_key,
        "sender": ev.sender,
        "content": ev.content,
        "auth_events": ev.auth_events,
        "prev_event": ev.prev_event,
        "origin_content_hash": ev.origin_content_hash,
        "hub_signature": [(s.key_id, s.signature) for s in ev.hub_signature],
        "origin_signature": [(s.key_id, s.signature) for s in ev.origin_signature],
    }
    f.update(changes)

    def sigs(entries: list) -> bytes:
        return vec(b"".join(vec(k.encode()) + vec(sig) for k, sig in entries))

    state_key = b"\x00" if f["state_key"] is None else b"\x01" + vec(f["state_key"].encode())
    return (
        vec(f["room_id"].encode())
        + vec(f["type"].encode())
        + state_key
        + vec(f["sender"].encode())
        + vec(f["content"])
        + vec(b"".join(vec(a.encode()) for a in f["auth_events"]))
        + vec(f["prev_event"].encode())
        + f["origin_content_hash"]
        + sigs(f["hub_signature"])
        + sigs(f["origin_signature"])
    )


def regression_seeds(golden: dict) -> Dict[str, Seeds]:
    """The reproducers of the findings in docs/FUZZING.md, so every run replays them first."""
    evs = [m.Event.decode(bytes.fromhex(e["event"])) for e in golden["events"]]
    # F1: an m.room.user event whose content is not a UserContent decodes, but its redacted
    # form (and so its reference hash / event ID) cannot be computed.
    f1 = encode_event(evs[1], content=b"")
    # F2: bad origin signature and a hub signature under a key ID the hub does not publish:
    # verify_event says bad_signature (origin first), check_events says bad_content_hash.
    name_ev = evs[5]
    origin = [(k, sig[:-1] + bytes([sig[-1] ^ 1])) for k, sig in [(s.key_id, s.signature) for s in name_ev.origin_signature]]
    hub = [("ed25519:unknown", s.signature) for s in name_ev.hub_signature]
    f2 = encode_event(name_ev, content=m.TextContent(b"renamed").encode(), origin_signature=origin, hub_signature=hub)
    return {
        "event": [("regress-F1-user-content-empty", f1)],
        "pipeline": [("regress-F1-user-content-empty", f1), ("regress-F2-origin-bad-hub-unknown", f2)],
    }


def envelope(transaction_type: str, payload: bytes, version: int = 1) -> bytes:
    # Built by hand so that an unsupported version can be seeded too.
    t = transaction_type.encode()
    return struct.pack(">H", version) + m.wire.encode_varint(len(t)) + t + m.wire.encode_varint(len(payload)) + payload


def envelope_seeds(golden: dict) -> Seeds:
    ev0 = golden["events"][0]
    room_id, event_id = ev0["room_id"], golden["events"][-1]["event_id"]
    bodies = {
        "mimi.signaling.submit": bytes.fromhex(golden["events"][2]["limited_event"]),
        "mimi.signaling.deliver": bytes.fromhex(golden["events"][2]["event"]),
        "mimi.signaling.get_event": m.wire.encode_get_event_request(room_id, event_id),
        "mimi.signaling.get_state": m.wire.encode_get_state_request(room_id, "m.room.join_rules", ""),
        "mimi.signaling.backfill": m.wire.encode_backfill_request(room_id, event_id, 100),
        "mimi.signaling.snapshot": m.wire.encode_snapshot_request(room_id),
        "mimi.signaling.keys": b"",
        m.BATCH_TRANSACTION: m.wire.encode_batch_request([("mimi.signaling.keys", b"")]),
    }
    seeds = [(t.rsplit(".", 1)[1], m.TransactionEnvelope(t, body).encode()) for t, body in bodies.items()]
    seeds.append(("version-2", envelope("mimi.signaling.keys", b"", version=2)))
    return seeds


def batch_seeds(golden: dict) -> Seeds:
    """Request seeds (selector byte 0) and response seeds (selector 1, then the expected count)."""
    evs = golden["events"]
    submits = [("mimi.signaling.submit", bytes.fromhex(e["limited_event"])) for e in evs[1:4]]
    delivers = [("mimi.signaling.deliver", bytes.fromhex(e["event"])) for e in evs[1:4]]
    mixed = [*submits[:1], *delivers[:1], ("mimi.signaling.keys", b""),
             ("mimi.signaling.get_event", m.wire.encode_get_event_request(evs[0]["room_id"], evs[1]["event_id"]))]
    nested = m.wire.encode_varint(len(envelope(m.BATCH_TRANSACTION, b""))) + envelope(m.BATCH_TRANSACTION, b"")
    version_2 = m.wire.encode_varint(len(envelope("mimi.signaling.keys", b"", 2))) + envelope("mimi.signaling.keys", b"", 2)
    answers = [(200, bytes.fromhex(evs[1]["event"])), (200, b""), (403, m.wire.encode_error_body(4, "policy"))]
    return [
        ("submits", b"\x00" + m.wire.encode_batch_request(submits)),
        ("delivers", b"\x00" + m.wire.encode_batch_request(delivers)),
        ("mixed", b"\x00" + m.wire.encode_batch_request(mixed)),
        ("nested", b"\x00" + nested),
        ("version-2", b"\x00" + version_2),
        ("response", b"\x01\x03" + m.wire.encode_batch_response(answers)),
    ]


def transport_seeds(golden: dict) -> Seeds:
    evs = golden["events"]
    room_id = evs[0]["room_id"]
    decoded = [m.Event.decode(bytes.fromhex(e["event"])) for e in evs]
    bad_utf8 = struct.pack(">H", 12) + m.wire.encode_varint(2) + b"\xff\xfe"
    raw = {
        "get_event_request": [m.wire.encode_get_event_request(room_id, evs[3]["event_id"])],
        "get_state_request": [
            m.wire.encode_get_state_request(room_id, "m.room.user", evs[3]["state_key"]),
            m.wire.encode_get_state_request(room_id, "m.room.name", ""),
        ],
        "backfill_request": [
            m.wire.encode_backfill_request(room_id, evs[9]["event_id"], 2),
            m.wire.encode_backfill_request(room_id, evs[9]["event_id"], m.MAX_BACKFILL_LIMIT),
        ],
        "backfill_response": [
            m.wire.encode_backfill_response([decoded[2], decoded[1]]),
            m.wire.encode_backfill_response([]),
        ],
        "snapshot_request": [m.wire.encode_snapshot_request(room_id)],
        "snapshot_response": [
            m.wire.encode_snapshot_response([decoded[0], decoded[2]], [decoded[0], decoded[1]], evs[2]["event_id"]),
        ],
        "error_body": [
            m.wire.encode_error_body(4, "policy_rejected: sender may not send m.room.name"),
            m.wire.encode_error_body(11, ""),
            bad_utf8,
        ],
    }
    seeds: Seeds = []
    for name, bodies in raw.items():
        for i, body in enumerate(bodies):
            seeds.append((f"{name}-{i}", bytes([TRANSPORT[name]]) + body))
    return seeds


def keys_seeds(golden: dict) -> Seeds:
    seeds: Seeds = []
    keys = []
    for s in golden["servers"]:
        vk = m.VerifyKey(s["key_id"], bytes.fromhex(s["public_key"]))
        keys.append(vk)
        seeds.append((f"verify-key-{s['server_name']}", bytes([KEYS_VERIFY_KEY]) + vk.encode()))
        sk = m.ServerKeys(s["server_name"], [vk])
        seeds.append((f"server-keys-{s['server_name']}", bytes([KEYS_SERVER_KEYS]) + sk.encode()))
    expired = m.VerifyKey("ed25519:old_1", bytes.fromhex(golden["servers"][1]["public_key"]), 1_700_000_000_000)
    seeds.append(("verify-key-expired", bytes([KEYS_VERIFY_KEY]) + expired.encode()))
    two = m.ServerKeys("[::1]:8448", [keys[0], expired])
    seeds.append(("server-keys-ipv6-two-keys", bytes([KEYS_SERVER_KEYS]) + two.encode()))
    seeds.append(("server-keys-ipv4-none", bytes([KEYS_SERVER_KEYS]) + m.ServerKeys("127.0.0.1:1", []).encode()))
    return seeds


def content_seeds(golden: dict) -> Seeds:
    by_type: Dict[str, List[bytes]] = {t: [] for t in CONTENT_TYPES}
    for e in golden["events"]:
        c = bytes.fromhex(e["content"])
        if c not in by_type[e["type"]]:
            by_type[e["type"]].append(c)
    by_type["m.room.create"].append(m.CreateContent("m.0", "org.example.e2ee_v2").encode())
    by_type["m.room.user"] += [m.UserContent(p, b"why" if p == 3 else b"").encode() for p in range(5)]
    by_type["m.room.name"].append(b"")
    by_type["m.room.avatar"].append(m.TextContent(b"mxc://example.org/a").encode())
    by_type["m.room.topic"].append(m.TextContent(b"topic").encode())
    by_type["m.room.join_rules"] += [m.JoinRulesContent(r).encode() for r in range(3)]
    by_type["m.room.history_visibility"] += [m.HistoryVisibilityContent(v).encode() for v in range(4)]
    by_type["m.room.role"].append(
        m.RoleContent(
            [
                m.Permission.boolean(1, True),
                m.Permission.boolean(2, False),
                m.Permission.boolean(3, True),
                m.Permission.boolean(4, True),
                m.Permission.events([("m.room.name", True), ("org.example.x", False)]),
                m.Permission.roles(["admin", "mod.1"]),
            ]
        ).encode()
    )
    by_type["m.room.role_map"].append(
        m.RoleMapContent(
            [m.RoleConfig("admin", ["@alice:hub.test"], 100), m.RoleConfig("mod", ["@bob:follower.test", "@c:[::1]"], 50)]
        ).encode()
    )
    by_type["m.room.encrypted"].append(b"\x00\x01\x02ciphertext")
    by_type["org.example.thing"].append(b"anything at all")
    by_type["m.room.unknown"].append(b"")
    seeds: Seeds = []
    for sel, t in enumerate(CONTENT_TYPES):
        for i, c in enumerate(by_type[t]):
            seeds.append((f"{t.replace('.', '_')}-{i}", bytes([sel]) + c))
    return seeds


def room_file_seeds(golden: dict) -> Seeds:
    data = bytes.fromhex(golden["room_file"])
    header = m.wire.encode_room_file_header()
    keys = b"".join(
        m.wire.encode_room_file_record(1, m.ServerKeys(s["server_name"], [m.VerifyKey(s["key_id"], bytes.fromhex(s["public_key"]))]).encode())
        for s in golden["servers"]
    )
    first_three = b"".join(m.wire.encode_room_file_record(2, bytes.fromhex(e["event"])) for e in golden["events"][:3])
    return [
        ("golden-room", data),
        ("keys-and-three-events", header + keys + first_three),
        ("header-only", header),
        ("keys-after-event", header + first_three[: len(first_three) // 3 + 1] + keys),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=Path, default=default_vectors(), help="path of mimi_events.json")
    ap.add_argument("--out", type=Path, default=ROOT / "fuzz" / "corpus", help="corpus root (one folder per target)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    golden = json.loads(args.vectors.read_text())

    events, limited, redacted = event_seeds(golden)
    targets: Dict[str, Seeds] = {
        "event": events + redacted,
        "pipeline": events + redacted,
        "limited_event": limited,
        "envelope": envelope_seeds(golden),
        "transport": transport_seeds(golden),
        "batch": batch_seeds(golden),
        "keys": keys_seeds(golden),
        "content": content_seeds(golden),
        "room_file": room_file_seeds(golden),
    }
    for target, seeds in regression_seeds(golden).items():
        targets[target] = targets[target] + seeds
    for target, seeds in targets.items():
        folder = args.out / target
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, data in seeds:
            (folder / name).write_bytes(data)
        logger.info("%-14s %3d seeds %6d bytes", target, len(seeds), sum(len(d) for _, d in seeds))


if __name__ == "__main__":
    main()
