"""Joining a big room as a follower: ``history = "recent"`` (from the hub's snapshot) against
``"full"`` (the whole chain fetched and replayed), over mutual TLS against a real ``mimi serve``
hub on loopback.

For each room size the room is built once on the hub's SQLite store through the in-process
``Hub.accept_many`` (the same state for every size: an admin, 20 joined users, a name, a
topic, invite-only join rules and the follower's user invited; then messages of 200-byte
ciphertext), and kept in ``--workdir`` for later runs.  Then for each mode a fresh follower
(in this process, its own SQLite file) has its user join: the time of the join (the submit
to the hub, the snapshot or the history, every check, the follower's commit), the bytes of
the requests and answers it exchanged with the hub, and the size of its store after the
join are reported.

    python benches/partial_join.py                          # 10^4, 10^5, 10^6 (full mode up to 10^5)
    python benches/partial_join.py --sizes 10000 --modes recent,full     # one size
    python benches/partial_join.py --quick                  # 2,000 and 20,000 events: a smoke run

The hub loads the room before the timed join (a ``snapshot`` request: the hub process reads
the room from its store on first use), so the join measures the follower's path.  Results:
``benches/results/partial_join.md`` and ``.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import mimi_signaling as ms
from mimi_signaling.provisioning import init_server
from mimi_signaling.testing.cluster import ServerProcess, free_port
from mimi_signaling.config import Config
from mimi_signaling.content import JoinRule, Participation
from mimi_signaling.node.hub import Hub
from mimi_signaling.node.keys import KeyStore
from mimi_signaling.server import ServerNode
from mimi_signaling.storage import open_store

HUB, FOLLOWER = "hub.test", "fol.test"
ADMIN, READER = f"@admin:{HUB}", f"@reader:{FOLLOWER}"
MEMBERS = [f"@u{i}:{HUB}" for i in range(20)]
PAYLOAD = 200
GROUP = 256
DEFAULT_SIZES = [10_000, 100_000, 1_000_000]
#: Largest room joined in "full" mode by default: 10^6 would replay a million events (about
#: ten times the 10^5 figure; the machine is shared).
FULL_MAX = 100_000


def build_room(directory: Path, events: int, ports: Dict[str, int]) -> Dict[str, Any]:
    """The hub's directory with a room of ``events`` events (``room.json`` records it)."""
    meta_path = directory / "room.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text())
    ca = directory / "ca"
    urls = {n: f"https://127.0.0.1:{p}" for n, p in ports.items()}
    hub_cfg = init_server(HUB, directory / "hub", listen=f"127.0.0.1:{ports[HUB]}", ca_dir=ca,
                          peers={FOLLOWER: urls[FOLLOWER]}, rate=10_000, burst=10_000)
    init_server(FOLLOWER, directory / "follower-template", listen=f"127.0.0.1:{ports[FOLLOWER]}", ca_dir=ca,
                peers={HUB: urls[HUB]}, rate=10_000, burst=10_000)
    config = Config.load(hub_cfg)
    key = config.load_signing_key()
    started = time.perf_counter()
    with open_store(config.storage_url()) as store:
        hub = Hub(HUB, KeyStore(HUB, key, store), store)
        setup = [("m.room.join_rules", "", ms.JoinRulesContent(JoinRule.INVITE).encode()),
                 ("m.room.name", "", ms.TextContent(b"a big room").encode()),
                 ("m.room.topic", "", ms.TextContent(b"joined from a snapshot").encode())]
        room = hub.create_room(ADMIN, initial_state=setup)[0].room_id
        invite, join = ms.UserContent(Participation.INVITE).encode(), ms.UserContent(Participation.JOIN).encode()
        for user in MEMBERS:
            hub.send(room, ADMIN, "m.room.user", user, invite)
            hub.send(room, user, "m.room.user", user, join)
        hub.send(room, ADMIN, "m.room.user", READER, invite)
        count = store.count(room)
        rng = os.urandom
        while count < events:
            n = min(GROUP, events - count)
            batch = [(ms.LimitedEvent.create(room, "m.room.encrypted", None, MEMBERS[(count + i) % len(MEMBERS)],
                                             rng(PAYLOAD), key), None) for i in range(n)]
            for result in hub.accept_many(batch):
                if isinstance(result, BaseException):
                    raise result
            count += n
            if count % 100_000 < GROUP:
                print(f"  built {count:,} of {events:,} events", flush=True)
        queued = store.queue_length(FOLLOWER)
    meta = {"room_id": room, "events": count, "build_s": round(time.perf_counter() - started, 1),
            "hub_db_bytes": _db_size(Path(config.storage_url().split("sqlite://", 1)[1])), "queued": queued}
    meta_path.write_text(json.dumps(meta))
    return meta


def _db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _checkpointed_size(db: Path) -> int:
    """The store's size with its WAL folded in (another connection may checkpoint: the
    server is idle between requests)."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return _db_size(db)


def follower_config(directory: Path, run: str, history: str) -> Config:
    config = Config.load(directory / "follower-template" / "config.toml")
    data = directory / "runs" / run
    data.mkdir(parents=True, exist_ok=True)
    for leftover in data.glob("mimi.db*"):
        leftover.unlink()
    config.data_dir = data
    config.storage = f"sqlite:///{str(data / 'mimi.db').lstrip('/')}"
    config.follower.history = history
    return config.validate()


async def join_once(config: Config, room_id: str) -> Dict[str, Any]:
    node = ServerNode(config)
    moved = {"requests": 0, "bytes": 0}
    request = node.request

    async def counting(server_name: str, transaction_type: str, payload: bytes) -> bytes:
        answer = await request(server_name, transaction_type, payload)
        moved["requests"] += 1
        moved["bytes"] += len(payload) + len(answer)
        return answer

    node.request = counting  # type: ignore[method-assign]
    await node.start()
    try:
        # Warm-up: the hub process loads the room from its store on first use (a 10^6-event
        # room takes longer than one request's timeout: ask again until it answers).
        for attempt in range(20):
            try:
                await node.run(node._snapshot_blocking, room_id)
                break
            except Exception as exc:  # timeouts while the hub loads
                print(f"  hub still loading the room ({type(exc).__name__}), asking again", flush=True)
                if attempt == 19:
                    raise
        moved.update(requests=0, bytes=0)
        join = ms.UserContent(Participation.JOIN).encode()
        started = time.perf_counter()
        await node.run(node.submit_local, room_id, READER, "m.room.user", READER, join)
        elapsed = time.perf_counter() - started
        held = node.store.count(room_id)
        kept = len(node.store.kept_events(room_id))
        joined = node.store.latest(room_id)
        assert joined is not None
        store_bytes = _checkpointed_size(Path(str(config.data_dir)) / "mimi.db")
        # Scrolling back: the 1,000 events before our join (a "recent" follower fetches them).
        before = (moved["requests"], moved["bytes"])
        started = time.perf_counter()
        page = await node.run(node.follower.history_before, room_id, joined[1], 1000)
        scroll = time.perf_counter() - started
        assert len(page) == 1000
    finally:
        await node.stop()
    return {"join_s": elapsed, "requests": before[0], "bytes": before[1], "store_bytes": store_bytes,
            "rows": held, "kept": kept, "scroll_s": scroll, "scroll_bytes": moved["bytes"] - before[1]}


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    workdir = Path(args.workdir)
    results: List[Dict[str, Any]] = []
    for size in args.sizes:
        directory = workdir / f"room-{size}"
        ports_path = directory / "ports.json"
        directory.mkdir(parents=True, exist_ok=True)
        if ports_path.exists():
            ports = json.loads(ports_path.read_text())
        else:
            ports = {HUB: free_port(), FOLLOWER: free_port()}
            ports_path.write_text(json.dumps(ports))
        print(f"room of {size:,} events in {directory}", flush=True)
        meta = build_room(directory, size, ports)
        hub = ServerProcess(HUB, directory / "hub" / "config.toml", directory / "hub.log")
        hub.start(timeout=600)
        try:
            for mode in args.modes:
                if mode == "full" and size > args.full_max:
                    results.append({"size": size, "mode": mode, "skipped": True})
                    continue
                for attempt in range(args.repeats):
                    config = follower_config(directory, f"{mode}-{attempt}", mode)
                    figures = asyncio.run(join_once(config, meta["room_id"]))
                    row = {"size": size, "events": meta["events"], "mode": mode, "attempt": attempt, **figures}
                    print(f"  {mode:6} join {figures['join_s']:.3f} s, {figures['bytes']:,} bytes in "
                          f"{figures['requests']} requests, store {figures['store_bytes']:,} bytes; "
                          f"1,000 earlier events in {figures['scroll_s']:.3f} s", flush=True)
                    results.append(row)
        finally:
            hub.stop()
    return results


def best(results: List[Dict[str, Any]], size: int, mode: str) -> Optional[Dict[str, Any]]:
    runs = [r for r in results if r["size"] == size and r["mode"] == mode and not r.get("skipped")]
    return min(runs, key=lambda r: r["join_s"]) if runs else None


def report(results: List[Dict[str, Any]], sizes: List[int], out: Path, load: str) -> str:
    lines = [
        "| room events | mode | join time | bytes transferred (requests) | follower store after the join "
        "| rows + kept events | 1,000 events before the join |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for mode in ("recent", "full"):
            r = best(results, size, mode)
            skipped = any(x["size"] == size and x["mode"] == mode and x.get("skipped") for x in results)
            if r is None:
                if skipped:
                    lines.append(f"| {size:,} | {mode} | not run (see below) | | | | |")
                continue
            lines.append(f"| {r['events']:,} | {mode} | {r['join_s']:.3f} s | {r['bytes']:,} ({r['requests']}) "
                         f"| {r['store_bytes'] / 1e6:.2f} MB | {r['rows']:,} + {r['kept']:,} "
                         f"| {r['scroll_s']:.3f} s, {r['scroll_bytes']:,} bytes |")
    verdicts = []
    recent = [best(results, s, "recent") for s in sizes]
    if len(sizes) > 1 and all(recent):
        first, last = recent[0], recent[-1]
        assert first is not None and last is not None
        t_ratio = last["join_s"] / first["join_s"]
        s_ratio = last["store_bytes"] / first["store_bytes"]
        verdicts.append(f"- recent join time {sizes[-1]:,} / {sizes[0]:,}: {t_ratio:.2f}x "
                        f"({'PASS' if t_ratio <= 2 else 'FAIL'}, target within 2x)")
        verdicts.append(f"- recent follower store {sizes[-1]:,} / {sizes[0]:,}: {s_ratio:.2f}x "
                        f"({'PASS' if s_ratio <= 2 else 'FAIL'}, target within 2x)")
        if sizes[-1] >= 1_000_000:
            verdicts.append(f"- recent join of the {last['events']:,}-event room: {last['join_s']:.3f} s "
                            f"({'PASS' if last['join_s'] < 2 else 'FAIL'}, target under 2 s)")
    text = "\n".join(lines + [""] + verdicts + ["", f"load average: {load}", ""])
    out.mkdir(parents=True, exist_ok=True)
    (out / "partial_join.md").write_text(text)
    (out / "partial_join.json").write_text(json.dumps(results, indent=1))
    return text


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], default=None)
    p.add_argument("--modes", type=lambda t: t.split(","), default=["recent", "full"])
    p.add_argument("--repeats", type=int, default=2, help="joins per size and mode; the best is reported")
    p.add_argument("--full-max", type=int, default=FULL_MAX, help="largest room joined in full mode")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "mimi-bench-partial"))
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = [2_000, 20_000] if args.quick else DEFAULT_SIZES
    out = Path(args.out) if args.out else (
        Path(args.workdir) / "results-quick" if args.quick else Path(__file__).with_name("results"))
    load_before = os.getloadavg()
    results = run(args)
    load = f"{load_before[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (1-minute), {os.cpu_count()} CPUs"
    print(report(results, args.sizes, out, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
