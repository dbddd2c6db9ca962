"""``mimi demo``: a hub and two followers as separate processes on loopback with mutual TLS,
a room, invites and joins across servers (alpha replays the whole history, beta follows with
``history = "recent"``: it joins from the hub's snapshot and fetches older events on demand),
messages, a follower stopped and restarted to show it catch up, and a summary. Exits 0 when
every server ends with the hub's latest event."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a hub and two followers locally and show a room working")
    p.add_argument("--export", metavar="FILE", help="also write the room's export file (section 9)")
    p.add_argument("--dir", help="keep the servers' files here (default: a temporary folder)")
    p.add_argument("--messages", type=int, default=5, help="messages per phase")
    p.set_defaults(handler=run)


def say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
        return demo(Path(args.dir), args)
    with tempfile.TemporaryDirectory(prefix="mimi-demo-") as tmp:
        return demo(Path(tmp), args)


def demo(directory: Path, args: argparse.Namespace) -> int:
    from ..testing.cluster import Cluster
    from ..config import Config

    started = time.monotonic()
    hub, alpha, beta = "hub.test", "alpha.test", "beta.test"
    alice, bob, carol = f"@alice:{hub}", f"@bob:{alpha}", f"@carol:{beta}"
    say(f"mimi demo: three servers in {directory}")
    def beta_keeps_recent(config: "Config") -> None:
        if config.server_name == beta:
            config.follower.history = "recent"
            config.follower.keep_recent = 100

    cluster = Cluster(directory, [hub, alpha, beta], configure=beta_keeps_recent)
    try:
        cluster.start()
        for name, s in cluster.servers.items():
            assert s.proc is not None  # started just above
            say(f"  started {name:<11} pid {s.proc.pid} on {s.config.listen} (mutual TLS, private CA)")
        room = cluster[hub].call("create_room", creator=alice, join_rule="invite", name="MIMI demo")["room_id"]
        say(f"1. {alice} created {room} on {hub} (join rule: invite)")
        for user in (bob, carol):
            cluster[hub].call("membership", room_id=room, sender=alice, target=user, participation="invite", reason="welcome")
        say(f"2. {alice} invited {bob} and {carol}")
        cluster[alpha].call("membership", room_id=room, sender=bob, target=bob, participation="join")
        say(f"3. {bob} joined through {alpha} (history = \"full\": the whole chain fetched and replayed)")
        for i in range(args.messages):
            for server, user in ((hub, alice), (alpha, bob)):
                cluster[server].call("send", room_id=room, sender=user, type="m.room.encrypted", text=f"hello {i} from {user}")
        say(f"4. {2 * args.messages} messages between {alice} and {bob}")
        joined = cluster[beta].call("membership", room_id=room, sender=carol, target=carol, participation="join")
        r = {r["room_id"]: r for r in cluster[beta].call("rooms")}[room]
        say(f"5. {carol} joined through {beta} (history = \"recent\"): from the hub's snapshot, every state and "
            f"auth-chain event checked; {beta} holds {r['events']} event(s) of the chain and keeps {r['kept']} "
            "state and auth-chain events")
        older = cluster[beta].call("history", room_id=room, limit=4, before=joined["event_id"])
        say(f"6. {carol} scrolled back: {beta} fetched the {len(older)} events before her join from {hub}, "
            "checked their hashes, signatures and links down from her join, and served them:")
        for e in older:
            say(f"     {e['event_id'][:16]}... {e['type']} from {e['sender']}")
        for i in range(args.messages):
            for server, user in ((hub, alice), (alpha, bob), (beta, carol)):
                cluster[server].call("send", room_id=room, sender=user, type="m.room.encrypted", text=f"hi {i} from {user}")
        cluster.wait_converged(room, [alpha, beta])
        say(f"7. {3 * args.messages} messages exchanged; all three servers agree")
        cluster[beta].stop()
        say(f"8. stopped {beta}")
        for i in range(args.messages):
            cluster[hub].call("send", room_id=room, sender=alice, type="m.room.encrypted", text=f"while beta was away {i}")
            cluster[alpha].call("send", room_id=room, sender=bob, type="m.room.encrypted", text=f"bob while beta away {i}")
        queued = cluster[hub].call("status")["queues"].get(beta, 0)
        say(f"   sent {2 * args.messages} more; {queued} events wait in {hub}'s durable queue for {beta}")
        cluster[beta].start()
        latest = cluster.wait_converged(room, [alpha, beta])
        say(f"9. restarted {beta}: it resumed from its partial history and caught up, in order, to {latest}")
        say("")
        say("summary:")
        for name in (hub, alpha, beta):
            rooms = {r["room_id"]: r for r in cluster[name].call("rooms")}
            r = rooms[room]
            how = f" ({r['history']} history: + {r['kept']} kept state events)" if "history" in r else ""
            say(f"  {name:<11} {r['role']:<8} {r['events']:>4} events{how}, latest {cluster.latest(name, room)}")
        if args.export:
            from ..roomfile import export_room
            from ..storage import open_store

            cfg = cluster[hub].config
            with open_store(cfg.storage) as store:
                n = export_room(store, room, Path(args.export), _hub_keys(cfg, store))
            say(f"  exported {n} events to {args.export} (check it with: mimi verify {args.export})")
        say(f"done in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        cluster.stop()


def _hub_keys(cfg, store):
    from ..node.keys import KeyStore

    return KeyStore(cfg.server_name, cfg.load_signing_key(), store)
