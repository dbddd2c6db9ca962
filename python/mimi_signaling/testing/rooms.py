"""``generate_room`` writes a valid room of N events quickly (for tests and benchmarks), with
optional faults of each kind at chosen indices: the hub's sequencing without the hub."""

from __future__ import annotations

import logging
import os
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import (
    Deque,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .._core import (
    parse_user_id,
    Event,
    LimitedEvent,
    Permission,
    RoleConfig,
    RoleContent,
    RoleMapContent,
    ServerKeys,
    SigningKey,
    base64url_encode,
    encode_room_file_record,
    sha256,
)
from ..content import (
    M_ROOM_AVATAR,
    M_ROOM_CREATE,
    M_ROOM_ENCRYPTED,
    M_ROOM_HISTORY_VISIBILITY,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    M_ROOM_TOPIC,
    M_ROOM_USER,
    JoinRule,
    Participation,
    PermissionKind,
    Visibility,
    create_content,
    decode_content,
    history_visibility_content,
    join_rules_content,
    text_content,
    user_content,
)
from ..node.chain import RoomChain
from ..roomfile.writer import RECORD_EVENT, RoomFileWriter

log = logging.getLogger(__name__)

#: Faults ``generate_room`` can inject, and the check that must reject them.
FAULT_KINDS: Dict[str, str] = {
    "wrong_prev": "prev_event names an earlier event, not the one just before (re-signed)",
    "missing_auth": "one auth event of the selection is left out (re-signed)",
    "extra_auth": "a current state event outside the selection is added (re-signed)",
    "non_current_auth": "the sender's m.room.user auth event is a superseded one (re-signed)",
    "bad_hub_signature": "hub signature by another key under the hub's key ID",
    "bad_origin_signature": "origin signature by another key under the origin's key ID",
    "tampered_content": "a message's ciphertext changed after signing (bad_content_hash)",
    "truncated_record": "the file ends in the middle of the event's record",
    "bad_record_varint": "the record's length prefix starts with the reserved bits 11",
    "bad_event_varint": "a non-minimal varint inside the encoded event",
    "not_joined": "a message from a user who never joined (policy)",
    "kick_without_permission": "a member without the kick permission kicks another user (policy)",
}
#: Faults whose failing check comes before the policy: buildable with any sender, and at
#: index 0 (on the create event).
_SENDER_FREE_FAULTS = frozenset({
    "wrong_prev", "bad_hub_signature", "bad_origin_signature", "tampered_content",
    "truncated_record", "bad_record_varint", "bad_event_varint",
})


@dataclass(frozen=True)
class Fault:
    kind: str
    index: int

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if self.index < 0:
            raise ValueError("a fault index must not be negative")


@dataclass
class GeneratedRoom:
    path: str
    room_id: str
    events: int  # event records written (faulty ones included)
    hub: str
    servers: List[str]
    users: List[str]
    #: (fault, event ID or None when the faulty event does not decode), in index order
    faults: List[Tuple[Fault, Optional[str]]] = field(default_factory=list)
    elapsed: float = 0.0


ENCRYPTION_ALGORITHM = "org.mimi.generated-ciphertext"


class _RoomGenerator:
    """Builds the room event by event: the hub's sequencing without the hub (auth events from
    the m.0 selection on a ``RoomState`` that advances with every accepted event)."""

    def __init__(
        self,
        writer: RoomFileWriter,
        rng: random.Random,
        *,
        servers: int,
        users_per_server: int,
        message_size: int,
        state_every: int,
        check: bool,
        deterministic_keys: bool,
    ) -> None:
        if servers < 1:
            raise ValueError("a room needs at least one server")
        if users_per_server < 1:
            raise ValueError("at least one user per server")
        self.writer = writer
        self.rng = rng
        self.message_size = message_size
        self.state_every = max(1, state_every)
        self.check = check
        self.hub = "hub.example"
        self.server_names = [self.hub] + [f"s{i}.example" for i in range(1, servers)]

        def key_for(server: str, tag: str) -> SigningKey:
            key_id = f"ed25519:{tag}"
            if deterministic_keys:
                return SigningKey(sha256(f"{rng.random()!r}:{server}:{tag}".encode()), key_id)
            return SigningKey.generate(key_id)

        self.keys = {s: key_for(s, "k1") for s in self.server_names}
        # Same key IDs, other keys: signatures that name a published key ID but fail.
        self.impostors = {s: key_for(s, "k1") for s in self.server_names}
        self.room_id = f"!gen{rng.randrange(1 << 40):x}:{self.hub}"
        self.creator = f"@u0:{self.hub}"
        self.users = [f"@u{j}:{s}" for s in self.server_names for j in range(users_per_server)]
        self.members = [u for u in self.users if u != self.creator]
        self.outsiders = [f"@outsider:{s}" for s in self.server_names]
        self.chain: Optional[RoomChain] = None
        self.joined: List[str] = []
        self.superseded_user_event: Dict[str, str] = {}
        self.recent_ids: Deque[str] = deque(maxlen=2)
        self.last_id = ""
        self.index = 0
        self.left: List[str] = []
        self.faults: List[Tuple[Fault, Optional[str]]] = []
        self._state_turn = 0

    # -- state --------------------------------------------------------------------------------

    @property
    def state(self):  # -> RoomState
        assert self.chain is not None
        return self.chain.state

    def _limited(self, event_type: str, state_key: Optional[str], sender: str, content: bytes,
                 origin_key: Optional[SigningKey] = None) -> LimitedEvent:
        key = origin_key or self.keys[parse_user_id(sender)[1]]
        return LimitedEvent.create(self.room_id, event_type, state_key, sender, content, key)

    def _auth(self, event_type: str, state_key: Optional[str], sender: str, content: bytes) -> List[str]:
        if self.chain is None:
            return []
        state = self.state
        return state.policy.select_auth_events(state, event_type, state_key, sender, decode_content(event_type, content))

    def _accept(self, event: Event) -> None:
        """Write a valid event and advance the room with it."""
        header = event.header()
        event_id = header.event_id
        if self.chain is None:
            self.chain = RoomChain.open(event, header=header, track_history=False)
        else:
            if header.type == M_ROOM_USER and header.state_key is not None:
                old = self.state.get_event_id(M_ROOM_USER, header.state_key)
                if old is not None:
                    self.superseded_user_event[header.state_key] = old
            if self.check:
                self.chain.append(event, header=header)
            else:
                self.chain.apply_trusted(event, header=header)
        self.writer.write_event(event.encode())
        self._advance(event_id)
        if header.type == M_ROOM_USER and header.state_key is not None:
            joined = self.state.is_joined(header.state_key)
            if joined and header.state_key not in self.joined:
                self.joined.append(header.state_key)
            elif not joined and header.state_key in self.joined:
                self.joined.remove(header.state_key)

    def _advance(self, event_id: str) -> None:
        self.recent_ids.append(event_id)
        self.last_id = event_id
        self.index += 1

    def send(self, event_type: str, state_key: Optional[str], sender: str, content: bytes) -> None:
        auth = self._auth(event_type, state_key, sender, content)
        event = self._limited(event_type, state_key, sender, content).to_event(auth, self.last_id, self.keys[self.hub])
        self._accept(event)

    # -- the room's story ---------------------------------------------------------------------

    def setup_events(self) -> Iterable[Tuple[str, Optional[str], str, bytes]]:
        """Create, creator join, settings, invites and joins, roles and the role map (ends
        the creator phase), public join rules."""
        c = self.creator
        yield M_ROOM_CREATE, "", c, create_content("m.0", ENCRYPTION_ALGORITHM)
        yield M_ROOM_USER, c, c, user_content(Participation.JOIN)
        yield M_ROOM_NAME, "", c, text_content(b"Generated room")
        yield M_ROOM_HISTORY_VISIBILITY, "", c, history_visibility_content(Visibility.SHARED)
        yield M_ROOM_JOIN_RULES, "", c, join_rules_content(JoinRule.INVITE)
        for user in self.members:
            yield M_ROOM_USER, user, c, user_content(Participation.INVITE, b"welcome")
            yield M_ROOM_USER, user, user, user_content(Participation.JOIN)
        state_types = [M_ROOM_NAME, M_ROOM_TOPIC, M_ROOM_AVATAR, M_ROOM_JOIN_RULES, M_ROOM_HISTORY_VISIBILITY,
                       M_ROOM_ROLE, M_ROOM_ROLE_MAP, M_ROOM_ENCRYPTED]
        admin = RoleContent([
            Permission.boolean(int(PermissionKind.INVITE), True),
            Permission.boolean(int(PermissionKind.KICK), True),
            Permission.boolean(int(PermissionKind.BAN), True),
            Permission.boolean(int(PermissionKind.REDACT), True),
            Permission.events([(t, True) for t in state_types]),
            Permission.roles(["admin", "member"]),
        ]).encode()
        member = RoleContent([Permission.events([(M_ROOM_ENCRYPTED, True)])]).encode()
        yield M_ROOM_ROLE, "admin", c, admin
        yield M_ROOM_ROLE, "member", c, member
        role_map = RoleMapContent([
            RoleConfig("admin", [c], 100),
            RoleConfig("member", list(self.members), 10),
        ]).encode()
        yield M_ROOM_ROLE_MAP, "", c, role_map
        yield M_ROOM_JOIN_RULES, "", c, join_rules_content(JoinRule.PUBLIC)
        yield M_ROOM_TOPIC, "", c, text_content(b"generated by mimi generate-room")

    def state_change(self) -> Tuple[str, Optional[str], str, bytes]:
        """A periodic state change: topic or name by the creator, a member leaving or rejoining."""
        self._state_turn += 1
        turn = self._state_turn % 4
        if turn == 1 and self.left:
            user = self.left.pop(0)
            return M_ROOM_USER, user, user, user_content(Participation.JOIN)
        if turn == 2:
            candidates = [u for u in self.joined if u != self.creator]
            if len(candidates) > 1:  # keep a member around to send messages
                user = self.rng.choice(candidates)
                self.left.append(user)
                return M_ROOM_USER, user, user, user_content(Participation.LEAVE, b"brb")
        if turn == 3:
            return M_ROOM_NAME, "", self.creator, text_content(f"Room #{self._state_turn}".encode())
        return M_ROOM_TOPIC, "", self.creator, text_content(f"topic {self._state_turn}".encode())

    def message(self) -> None:
        sender = self.rng.choice(self.joined)
        self.send(M_ROOM_ENCRYPTED, None, sender, self.rng.randbytes(self.message_size))

    # -- faults -----------------------------------------------------------------------------

    def _fault_sender(self, kind: str) -> str:
        """A joined user, preferably of another server than the hub (so that origin and hub
        signatures are made by different keys)."""
        if kind == "not_joined":
            return self.outsiders[-1]
        need_old = kind == "non_current_auth"
        joined = [u for u in self.joined if not need_old or u in self.superseded_user_event]
        if kind == "kick_without_permission":
            joined = [u for u in joined if u != self.creator]
        remote = [u for u in joined if not u.endswith(":" + self.hub)]
        pool = remote or joined
        if pool:
            return pool[0]
        if kind in _SENDER_FREE_FAULTS:  # the check that fails comes before the policy
            return self.creator
        raise ValueError(f"fault {kind} at index {self.index}: no suitable joined sender yet (use a later index)")

    def inject(self, fault: Fault) -> bool:
        """Write the faulty event at the current index; False when the file must end here."""
        kind = fault.kind
        hub_key = self.keys[self.hub]
        at_create = self.chain is None
        auth: List[str]
        if at_create:
            if kind not in _SENDER_FREE_FAULTS:
                raise ValueError(f"fault {kind} cannot be built at index 0 (m.room.create)")
            event_type, state_key, sender, content = next(iter(self.setup_events()))
            auth = []
        else:
            sender = self._fault_sender(kind)
            event_type, state_key, content = M_ROOM_ENCRYPTED, None, self.rng.randbytes(self.message_size)
            if kind == "kick_without_permission":
                targets = [u for u in self.joined if u != sender]
                if not targets:
                    raise ValueError(f"fault {kind} at index {self.index}: needs another joined user to kick")
                event_type, state_key, content = M_ROOM_USER, targets[0], user_content(Participation.LEAVE, b"out")
            auth = self._auth(event_type, state_key, sender, content)
        prev = self.last_id
        limited = self._limited(event_type, state_key, sender, content)
        sign_with = hub_key

        if kind == "wrong_prev":
            prev = self.recent_ids[0] if len(self.recent_ids) == 2 else "$" + base64url_encode(sha256(b"nowhere"))
        elif kind == "missing_auth":
            auth = auth[:-1]
        elif kind == "extra_auth":
            extra = [self.state.get_event_id(t) for t in (M_ROOM_NAME, M_ROOM_TOPIC, M_ROOM_JOIN_RULES,
                                                          M_ROOM_HISTORY_VISIBILITY)]
            extra = [e for e in extra if e is not None and e not in auth]
            if not extra:
                raise ValueError(f"fault {kind} at index {self.index}: no current state event to add yet")
            auth = auth + [extra[0]]
        elif kind == "non_current_auth":
            current = self.state.get_event_id(M_ROOM_USER, sender)
            auth = [self.superseded_user_event[sender] if a == current else a for a in auth]
        elif kind == "bad_hub_signature":
            sign_with = self.impostors[self.hub]
        elif kind == "bad_origin_signature":
            origin = parse_user_id(sender)[1]
            limited = self._limited(event_type, state_key, sender, content, origin_key=self.impostors[origin])
        event = limited.to_event(auth, prev, sign_with)
        good_create = self._limited(event_type, state_key, sender, content).to_event([], "", hub_key) if at_create else None
        if kind == "tampered_content":
            event = event.with_content(bytes([content[0] ^ 0xFF]) + content[1:])
        body = event.encode()

        if kind == "truncated_record":
            record = encode_room_file_record(RECORD_EVENT, body)
            self.writer.write_raw(record[: len(record) // 2])
            self.faults.append((fault, None))
            return False
        if kind in ("bad_record_varint", "bad_event_varint"):
            if kind == "bad_record_varint":
                raw = bytes([RECORD_EVENT, 0xC0, 0x00, 0x00, len(body) & 0xFF]) + body
            else:
                # The first field is room_id<V>: its 1-byte length prefix, re-encoded in 2 bytes.
                if body[0] >= 64:
                    raise ValueError("bad_event_varint needs a room ID shorter than 64 bytes")
                raw = encode_room_file_record(RECORD_EVENT, bytes([0x40, body[0]]) + body[1:])
            self.writer.write_raw(raw)
            self.faults.append((fault, None))
            event_id = None
        else:
            # A decodable faulty event; the chain goes on from it (as a rogue hub's would).
            self.writer.write_event(body)
            event_id = event.event_id
            self.faults.append((fault, event_id))
        if good_create is not None:  # the room state starts from the create event it should be
            self.chain = RoomChain.open(good_create, track_history=False)
        if event_id is not None:
            self._advance(event_id)
        else:
            self.index += 1  # later events chain on from the last good one
        return True


def generate_room(
    path: Union[str, "os.PathLike[str]"],
    n_events: int,
    *,
    seed: Optional[int] = None,
    servers: int = 2,
    users_per_server: int = 3,
    message_size: int = 64,
    state_every: int = 500,
    faults: Sequence[Fault] = (),
    check: bool = False,
) -> GeneratedRoom:
    """Write a room file of ``n_events`` events: a valid m.0 room with real Ed25519 keys.

    The room: create, the creator's join, name, history visibility, invite-only join rules,
    every other user (``users_per_server`` on each of ``servers`` servers) invited and
    joining, two roles and a role map (ending the creator phase), public join rules, a topic;
    then ``m.room.encrypted`` messages from joined users, with a state change (topic, name,
    a member leaving or rejoining) every ``state_every`` events.  Auth events come from the
    m.0 selection on a ``RoomState`` advanced with every event; ``check=True`` also runs the
    full policy check on each event while generating (slower; ``mimi verify`` checks anyway).

    ``seed`` makes the file byte-for-byte reproducible (keys included).  ``faults``: events
    to break, each at its index (see ``FAULT_KINDS``); the faulty event takes the place of the
    event that would have been there.
    """
    if n_events < 1:
        raise ValueError("a room has at least one event (m.room.create)")
    started = time.perf_counter()
    rng = random.Random(seed)
    pending = sorted(faults, key=lambda f: f.index)
    if len({f.index for f in pending}) != len(pending):
        raise ValueError("at most one fault per index")
    if pending and pending[-1].index >= n_events:
        raise ValueError(f"fault index {pending[-1].index} is past the room's {n_events} events")
    with RoomFileWriter(path) as writer:
        gen = _RoomGenerator(
            writer, rng, servers=servers, users_per_server=users_per_server, message_size=message_size,
            state_every=state_every, check=check, deterministic_keys=seed is not None,
        )
        for name in gen.server_names:
            writer.write_server_keys(ServerKeys(name, [gen.keys[name].verify_key()]))
        faults_left: Deque[Fault] = deque(pending)
        setup = iter(gen.setup_events())
        in_setup = True
        while gen.index < n_events:
            if faults_left and faults_left[0].index == gen.index:
                if not gen.inject(faults_left.popleft()):
                    break
                continue
            if in_setup:
                item = next(setup, None)
                if item is not None:
                    gen.send(*item)
                    continue
                in_setup = False
            if gen.index % gen.state_every == 0:
                gen.send(*gen.state_change())
            else:
                gen.message()
        events = writer.events_written
    room = GeneratedRoom(
        path=os.fspath(path), room_id=gen.room_id, events=events, hub=gen.hub, servers=list(gen.server_names),
        users=list(gen.users), faults=gen.faults, elapsed=time.perf_counter() - started,
    )
    log.info("generated %s: %d events in %.1f s", room.path, events, room.elapsed)
    return room
