"""The Matrix-style event pipeline a Python hub would otherwise use: ``canonicaljson`` +
``signedjson`` + PyNaCl, written as Synapse does it (``synapse/crypto/event_signing.py``,
``synapse/events/utils.py:prune_event_dict`` with the room-version-11 redaction rules,
``synapse/federation/federation_base.py:_check_sigs_and_hash``).

Each event is the JSON equivalent of a MIMI ``m.room.encrypted`` event of the same payload
size: the ciphertext (base64 in JSON), the same number of auth events, one prev event, a
content hash and two signatures: the origin server's and the hub's (as Linearized Matrix,
MIMI signaling's ancestor, has them).

Steps (one event):

* ``receive``: parse the wire JSON, check the content hash (canonical JSON without
  ``signatures``/``hashes``/``unsigned``), redact (``prune_event_dict``), reference hash of the
  redacted canonical JSON (the event ID), ``verify_signed_json`` for the origin and the hub.
* ``pipeline``: ``receive`` then ``sign_json`` of the redacted event (what the issue names
  "content hash, redaction, reference hash, verify, sign").
* ``accept``: the hub's side for a limited event from an origin: parse, content hash check,
  redact + verify the origin signature, fill ``auth_events``/``prev_events``/``depth``, redact
  + ``sign_json`` as the hub, reference hash (event ID), serialise.  No policy, no storage.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Dict, List, Tuple

from canonicaljson import encode_canonical_json
from signedjson.key import generate_signing_key, get_verify_key
from signedjson.sign import sign_json, verify_signed_json
from unpaddedbase64 import decode_base64, encode_base64

JsonDict = Dict[str, Any]

# Room version 11 (``updated_redaction_rules``): no ``origin``/``membership``/``prev_state``.
_ALLOWED_KEYS = frozenset(
    [
        "event_id",
        "sender",
        "room_id",
        "hashes",
        "signatures",
        "content",
        "type",
        "state_key",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    ]
)


def prune_event_dict(event_dict: JsonDict) -> JsonDict:
    """Synapse's ``prune_event_dict`` for room version 11 (the redaction algorithm)."""
    event_type = event_dict["type"]
    content = event_dict["content"]
    new_content: JsonDict = {}

    def add_fields(*fields: str) -> None:
        for f in fields:
            if f in content:
                new_content[f] = content[f]

    if event_type == "m.room.member":
        add_fields("membership", "join_authorised_via_users_server")
        if "third_party_invite" in content and "signed" in content["third_party_invite"]:
            new_content["third_party_invite"] = {"signed": content["third_party_invite"]["signed"]}
    elif event_type == "m.room.create":
        new_content = content
    elif event_type == "m.room.join_rules":
        add_fields("join_rule", "allow")
    elif event_type == "m.room.power_levels":
        add_fields("users", "users_default", "events", "events_default", "state_default", "ban", "kick",
                   "redact", "invite")
    elif event_type == "m.room.history_visibility":
        add_fields("history_visibility")
    elif event_type == "m.room.redaction":
        add_fields("redacts")

    allowed = {k: v for k, v in event_dict.items() if k in _ALLOWED_KEYS}
    allowed["content"] = new_content
    unsigned: JsonDict = {}
    allowed["unsigned"] = unsigned
    event_unsigned = event_dict.get("unsigned", {})
    if "age_ts" in event_unsigned:
        unsigned["age_ts"] = event_unsigned["age_ts"]
    if "replaces_state" in event_unsigned:
        unsigned["replaces_state"] = event_unsigned["replaces_state"]
    return allowed


def compute_content_hash(event_dict: JsonDict) -> bytes:
    """``synapse.crypto.event_signing.compute_content_hash``."""
    event_dict = dict(event_dict)
    event_dict.pop("age_ts", None)
    event_dict.pop("unsigned", None)
    event_dict.pop("signatures", None)
    event_dict.pop("hashes", None)
    event_dict.pop("outlier", None)
    event_dict.pop("destinations", None)
    return hashlib.sha256(encode_canonical_json(event_dict)).digest()


def compute_event_reference_hash(event_dict: JsonDict) -> bytes:
    """``compute_event_reference_hash``: SHA-256 of the redacted event's canonical JSON."""
    pruned = prune_event_dict(event_dict)
    pruned.pop("signatures", None)
    pruned.pop("age_ts", None)
    pruned.pop("unsigned", None)
    return hashlib.sha256(encode_canonical_json(pruned)).digest()


def event_id_of(event_dict: JsonDict) -> str:
    """Room versions 4+: ``"$"`` + URL-safe unpadded base64 of the reference hash."""
    return "$" + encode_base64(compute_event_reference_hash(event_dict), urlsafe=True)


def check_event_content_hash(event_dict: JsonDict) -> bool:
    expected = compute_content_hash(event_dict)
    message_hash = event_dict.get("hashes", {}).get("sha256")
    if message_hash is None:
        return False
    return decode_base64(message_hash) == expected


def compute_event_signature(event_dict: JsonDict, signature_name: str, signing_key: Any) -> JsonDict:
    """``compute_event_signature``: sign the redacted event; returns the signatures dict."""
    redact_json = prune_event_dict(event_dict)
    redact_json.pop("age_ts", None)
    redact_json.pop("unsigned", None)
    return sign_json(redact_json, signature_name, signing_key)["signatures"]


def add_hashes_and_signatures(event_dict: JsonDict, signature_name: str, signing_key: Any) -> None:
    """``add_hashes_and_signatures`` (what the origin does before sending)."""
    event_dict.setdefault("hashes", {})["sha256"] = encode_base64(compute_content_hash(event_dict))
    event_dict["signatures"] = compute_event_signature(event_dict, signature_name, signing_key)


class SignatureError(Exception):
    pass


class MatrixStyle:
    """A hub (``hub_name``) and an origin server, with their Ed25519 keys (signedjson)."""

    def __init__(self, hub_name: str = "hub.example", origin_name: str = "s1.example") -> None:
        self.hub_name = hub_name
        self.origin_name = origin_name
        self.hub_key = generate_signing_key("k1")
        self.origin_key = generate_signing_key("k1")
        # The key ring: server -> key ID -> VerifyKey (Synapse's keyring, already fetched).
        self.ring: Dict[str, Dict[str, Any]] = {
            hub_name: {"ed25519:k1": get_verify_key(self.hub_key)},
            origin_name: {"ed25519:k1": get_verify_key(self.origin_key)},
        }
        self.room_id = f"!bench:{hub_name}"
        self.sender = f"@u1:{origin_name}"

    # --- building the workload ----------------------------------------------------------------

    def limited_event(self, ciphertext: bytes, ts: int) -> JsonDict:
        """What the origin sends to the hub: content, content hash, origin signature."""
        event: JsonDict = {
            "type": "m.room.encrypted",
            "room_id": self.room_id,
            "sender": self.sender,
            "origin_server_ts": ts,
            "content": {"algorithm": "org.mimi.generated-ciphertext", "ciphertext": encode_base64(ciphertext)},
        }
        add_hashes_and_signatures(event, self.origin_name, self.origin_key)
        return event

    def full_event(self, limited: JsonDict, auth_events: List[str], prev: str, depth: int) -> JsonDict:
        """What the hub makes of it: auth and prev events filled, hub signature added.  The
        origin signature stays as it was (it covers the redacted limited event)."""
        event = dict(limited)
        event["auth_events"] = list(auth_events)
        event["prev_events"] = [prev]
        event["depth"] = depth
        hub_sig = compute_event_signature(event, self.hub_name, self.hub_key)
        event["signatures"] = {**limited["signatures"], **hub_sig}
        return event

    def make_events(self, count: int, payload: int = 256, auth_count: int = 4, seed: int = 7) -> Tuple[
            List[bytes], List[bytes]]:
        """``count`` wire events: (limited events as the origin sends them, full events as a
        follower receives them), each as JSON bytes, chained by ``prev_events``."""
        rnd = _Rand(seed)
        auth = ["$" + encode_base64(rnd.bytes(32), urlsafe=True) for _ in range(auth_count)]
        prev = "$" + encode_base64(rnd.bytes(32), urlsafe=True)
        limited_out: List[bytes] = []
        full_out: List[bytes] = []
        ts = 1_700_000_000_000
        for i in range(count):
            limited = self.limited_event(rnd.bytes(payload), ts + i)
            full = self.full_event(limited, auth, prev, depth=10 + i)
            prev = event_id_of(full)
            limited_out.append(json.dumps(limited).encode())
            full_out.append(json.dumps(full).encode())
        return limited_out, full_out

    # --- the pipeline -------------------------------------------------------------------------

    def _verify_server(self, redacted: JsonDict, server: str) -> None:
        """``verify_json_for_server``: every signature by a key of ``server`` we know."""
        keys = self.ring.get(server)
        sigs = redacted.get("signatures", {}).get(server)
        if not keys or not sigs:
            raise SignatureError(f"no signature of {server}")
        for key_id in sigs:
            key = keys.get(key_id)
            if key is None:
                continue
            try:
                verify_signed_json(redacted, server, key)
            except Exception as exc:
                raise SignatureError(str(exc)) from exc
            return
        raise SignatureError(f"no signature of {server} under a known key")

    @staticmethod
    def _limited_form(event: JsonDict) -> JsonDict:
        """The origin hashed and signed the limited event: the event without the fields the
        hub fills (as in Linearized Matrix; MIMI's content hash and origin signature alike)."""
        return {k: v for k, v in event.items() if k not in ("auth_events", "prev_events", "depth")}

    def receive(self, raw: bytes) -> str:
        """Check one received event; return its event ID (raises on any failure)."""
        event = json.loads(raw)
        redacted = prune_event_dict(event)
        event_id = event_id_of(event)
        # _check_sigs_on_pdu: the sender's server, then the hub, over the redacted event.
        self._verify_server(self._limited_form(redacted), event["sender"].split(":", 1)[1])
        self._verify_server(redacted, self.hub_name)
        # _check_hashes: content hash over the full event.
        if not check_event_content_hash(self._limited_form(event)):
            raise SignatureError("bad content hash")
        return event_id

    def pipeline(self, raw: bytes) -> str:
        """``receive`` and sign: content hash, redaction, reference hash, verify, sign."""
        event = json.loads(raw)
        redacted = prune_event_dict(event)
        event_id = event_id_of(event)
        self._verify_server(self._limited_form(redacted), event["sender"].split(":", 1)[1])
        self._verify_server(redacted, self.hub_name)
        if not check_event_content_hash(self._limited_form(event)):
            raise SignatureError("bad content hash")
        compute_event_signature(event, self.hub_name, self.hub_key)
        return event_id

    def accept(self, raw: bytes, auth_events: List[str], prev: str, depth: int) -> Tuple[str, bytes]:
        """The hub accepts a limited event: check, fill, sign, ID; returns (event ID, bytes)."""
        event = json.loads(raw)
        if not check_event_content_hash(event):
            raise SignatureError("bad content hash")
        self._verify_server(prune_event_dict(event), event["sender"].split(":", 1)[1])
        event["auth_events"] = auth_events
        event["prev_events"] = [prev]
        event["depth"] = depth
        hub_sig = compute_event_signature(event, self.hub_name, self.hub_key)
        event["signatures"] = {**event["signatures"], **hub_sig}
        event_id = event_id_of(event)
        return event_id, json.dumps(event).encode()


class _Rand:
    """Deterministic bytes without importing random's global state (reproducible workloads)."""

    def __init__(self, seed: int) -> None:
        self._state = hashlib.sha256(seed.to_bytes(8, "big")).digest()

    def bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            self._state = hashlib.sha256(self._state).digest()
            out += self._state
        return out[:n]


def run_receive(ms: MatrixStyle, events: List[bytes]) -> float:
    """Seconds to receive all events."""
    started = time.perf_counter()
    for raw in events:
        ms.receive(raw)
    return time.perf_counter() - started


if __name__ == "__main__":  # a quick self-check: python benches/matrix_style.py
    m = MatrixStyle()
    limited, full = m.make_events(200, auth_count=4)
    ids = [m.receive(r) for r in full]
    assert len(set(ids)) == len(ids)
    bad = json.loads(full[0])
    bad["content"]["ciphertext"] = encode_base64(os.urandom(256))
    try:
        m.receive(json.dumps(bad).encode())
    except SignatureError:
        pass
    else:
        raise AssertionError("tampered content accepted")
    print("ok", len(full[0]), "bytes per event;", run_receive(m, full) / len(full) * 1e6, "us per receive")
