"""DeliveryWorker: ordered fan-out to followers, over real mutual TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from typing import AbstractSet, AsyncIterator, Dict, List, Tuple

import mimi_signaling as ms
from mimi_signaling.node.store import QueuedEvent
from mimi_signaling.storage import open_store
from mimi_signaling.transport import DELIVER, DeliveryWorker, SignalingClient, SignalingServer
from mimi_signaling.testing.cluster import free_port
from support.transport_helpers import RecordingHandler, run, wait_until

HUB = "hub.test"
F1 = "follower1.test"
F2 = "follower2.test"


class FakeStore:
    """In-memory stand-in for node/store.py's delivery queue (synchronous, thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: Dict[str, "OrderedDict[int, bytes]"] = {}
        self._next = 1
        self.acked: List[Tuple[str, List[int]]] = []  # one entry per ack_entries call

    def append(self, destination: str, event: bytes) -> int:
        with self._lock:
            qid = self._next
            self._next += 1
            self._queues.setdefault(destination, OrderedDict())[qid] = event
            return qid

    def destinations_with_pending(self) -> List[str]:
        with self._lock:
            return [d for d, q in self._queues.items() if q]

    def pending(self, destination: str, limit: int, exclude: AbstractSet[int] = frozenset()) -> List[QueuedEvent]:
        with self._lock:
            items = [(q, e) for q, e in self._queues.get(destination, {}).items() if q not in exclude][:limit]
        return [QueuedEvent(qid, "!room:hub.test", f"$e{qid}", event) for qid, event in items]

    def ack_entries(self, destination: str, queue_ids: List[int]) -> None:
        with self._lock:
            queue = self._queues.get(destination, OrderedDict())
            for q in queue_ids:
                queue.pop(q, None)
            self.acked.append((destination, list(queue_ids)))

    def insert_late(self, destination: str, queue_id: int, event: bytes) -> None:
        """An entry with a lower ID that becomes visible after higher ones (on PostgreSQL, a
        transaction that took its queue ID first but committed last)."""
        with self._lock:
            queue = self._queues.setdefault(destination, OrderedDict())
            queue[queue_id] = event
            for q in sorted(queue):
                queue.move_to_end(q)

    def size(self, destination: str) -> int:
        with self._lock:
            return len(self._queues.get(destination, {}))


def events(prefix: str, n: int) -> List[bytes]:
    return [f"{prefix}-event-{i:03d}".encode() for i in range(n)]


async def start_follower(pki, name: str, handler, port: int = 0) -> SignalingServer:
    server = SignalingServer(handler, pki.server_context(name), ds_domain=name)
    await server.start("127.0.0.1", port)
    return server


@contextlib.asynccontextmanager
async def one_follower(pki, handler, store: FakeStore, **worker_options) -> AsyncIterator[DeliveryWorker]:
    """Follower 1 served by ``handler`` and a delivery worker over ``store`` (not started:
    the test starts it when its queue is ready); everything stopped at the end."""
    f1 = await start_follower(pki, F1, handler)
    client = SignalingClient(pki.client_context(HUB), peers={F1: f1.url}, max_retries=0)
    worker = DeliveryWorker(store, client, **worker_options)
    try:
        yield worker
    finally:
        await worker.stop()
        await client.close()
        await f1.stop()


def test_down_follower_gets_everything_in_order_once_up_and_others_are_not_blocked(pki):
    async def main():
        store = FakeStore()
        f1_port = free_port()  # nothing listens here yet: follower 1 is down
        f2_handler = RecordingHandler(lambda t, p, peer: b"")
        f2 = await start_follower(pki, F2, f2_handler)
        client = SignalingClient(
            pki.client_context(HUB),
            peers={F1: f"https://127.0.0.1:{f1_port}", F2: f2.url},
            max_retries=0,
        )
        worker = DeliveryWorker(
            store, client, batch_size=7, backoff_base=0.05, backoff_max=0.3, poll_interval=60
        )
        f1_events, f2_events = events("one", 25), events("two", 25)
        for a, b in zip(f1_events, f2_events):
            store.append(F1, a)
            store.append(F2, b)
        await worker.start()
        f1 = None
        try:
            # Follower 2 is served completely while follower 1 keeps failing.
            await wait_until(lambda: len(f2_handler.calls) == len(f2_events))
            await wait_until(lambda: worker.failures.get(F1, 0) >= 3)
            assert store.size(F1) == len(f1_events)

            f1_handler = RecordingHandler(lambda t, p, peer: b"")
            f1 = await start_follower(pki, F1, f1_handler, port=f1_port)
            await wait_until(lambda: store.size(F1) == 0)

            assert [c[1] for c in f1_handler.calls] == f1_events
            assert [c[1] for c in f2_handler.calls] == f2_events
            assert {c[0] for c in f1_handler.calls + f2_handler.calls} == {DELIVER}
            assert {c[2] for c in f1_handler.calls + f2_handler.calls} == {HUB}
            assert worker.failures.get(F1, 0) == 0
            assert worker.delivered == 50

            # wake() delivers a new append promptly (poll_interval is 60 s).
            store.append(F1, b"late")
            worker.wake()
            await wait_until(lambda: store.size(F1) == 0, deadline=10)
            assert f1_handler.calls[-1][1] == b"late"

            # wake() from another thread works too.
            store.append(F2, b"from-thread")
            t = threading.Thread(target=worker.wake)
            t.start()
            t.join()
            await wait_until(lambda: store.size(F2) == 0, deadline=10)
            assert f2_handler.calls[-1][1] == b"from-thread"
        finally:
            await worker.stop()
            await client.close()
            await f2.stop()
            if f1 is not None:
                await f1.stop()

    run(main())


def test_rejected_event_is_dropped_and_the_queue_goes_on(pki):
    async def main():
        def answer(t, payload, peer):
            if payload == b"bad":
                raise ms.PolicyRejectedError("not for us")
            return b""

        store = FakeStore()
        handler = RecordingHandler(answer)
        rejected = []
        async with one_follower(
            pki, handler, store, backoff_base=0.05, backoff_max=0.2, poll_interval=60,
            on_rejected=lambda d, q, e, exc: rejected.append((d, e, type(exc))),
        ) as worker:
            for e in (b"a", b"bad", b"c"):
                store.append(F1, e)
            await worker.start()
            await wait_until(lambda: store.size(F1) == 0)
        assert [c[1] for c in handler.calls] == [b"a", b"bad", b"c"]
        assert rejected == [(F1, b"bad", ms.PolicyRejectedError)]
        assert worker.rejected == 1 and worker.delivered == 2

    run(main())


def test_rate_limited_delivery_is_retried_not_dropped(pki):
    async def main():
        state = {"n": 0}

        def answer(t, payload, peer):
            state["n"] += 1
            if state["n"] <= 2:
                raise ms.RateLimitedError("slow down")
            return b""

        store = FakeStore()
        handler = RecordingHandler(answer)
        async with one_follower(pki, handler, store, backoff_base=0.05, backoff_max=0.2, poll_interval=60) as worker:
            store.append(F1, b"only")
            await worker.start()
            await wait_until(lambda: store.size(F1) == 0)
        assert [c[1] for c in handler.calls] == [b"only"] * 3
        assert worker.rejected == 0 and worker.delivered == 1

    run(main())


def test_delivery_from_a_real_sqlite_store(pki, tmp_path):
    """The worker against the real SQLite store: a room's events reach a follower that was
    down at first, in chain order, and the queue ends empty."""

    async def main():
        store = open_store(f"sqlite:///{tmp_path}/hub.db")
        room = "!room:hub.test"
        blobs = events("chain", 30)
        prev = ""
        for i, blob in enumerate(blobs[:20]):
            store.append(room, i, f"$ev{i}", prev, blob, "org.example.msg", None, "@a:hub.test", [F1])
            prev = f"$ev{i}"
        port = free_port()
        client = SignalingClient(pki.client_context(HUB), peers={F1: f"https://127.0.0.1:{port}"}, max_retries=0)
        worker = DeliveryWorker(store, client, batch_size=8, backoff_base=0.05, backoff_max=0.3, poll_interval=60)
        await worker.start()
        handler = RecordingHandler(lambda t, p, peer: b"")
        f1 = None
        try:
            await wait_until(lambda: worker.failures.get(F1, 0) >= 2)
            f1 = await start_follower(pki, F1, handler, port=port)
            for i, blob in enumerate(blobs[20:], start=20):  # more arrive meanwhile
                await asyncio.to_thread(
                    store.append, room, i, f"$ev{i}", prev, blob, "org.example.msg", None, "@a:hub.test", [F1]
                )
                prev = f"$ev{i}"
                worker.wake()
            await wait_until(lambda: store.destinations_with_pending() == [] and len(handler.calls) == 30)
        finally:
            await worker.stop()
            await client.close()
            if f1 is not None:
                await f1.stop()
            store.close()
        assert [c[1] for c in handler.calls] == blobs

    run(main())


def test_backoff_is_bounded():
    worker = DeliveryWorker(FakeStore(), client=None, backoff_base=0.5, backoff_max=8.0)
    delays = [worker.backoff_delay(n) for n in range(1, 200)]
    assert all(0 < d <= 8.0 for d in delays)
    assert delays[0] <= 0.5
    assert min(delays[10:]) >= 4.0  # grows to the cap (equal jitter keeps at least half)


def test_peer_alive_ends_a_long_backoff_at_once(pki):
    """A destination that reaches us is up: its queue is retried now, not after the backoff."""

    async def main():
        store = FakeStore()
        port = free_port()  # down at first
        client = SignalingClient(pki.client_context(HUB), peers={F1: f"https://127.0.0.1:{port}"}, max_retries=0)
        # The first retry sleeps at least 30 s (equal jitter on a 60 s ceiling).
        worker = DeliveryWorker(store, client, backoff_base=60, backoff_max=60, poll_interval=60)
        store.append(F1, b"queued while down")
        await worker.start()
        follower = None
        try:
            await wait_until(lambda: worker.failures.get(F1, 0) >= 1)
            handler = RecordingHandler(lambda t, p, peer: b"")
            follower = await start_follower(pki, F1, handler, port=port)
            await asyncio.sleep(0.5)
            assert store.size(F1) == 1  # still backing off
            threading.Thread(target=worker.peer_alive, args=(F1,)).start()
            await wait_until(lambda: store.size(F1) == 0, deadline=10)
            assert [c[1] for c in handler.calls] == [b"queued while down"]
            assert F1 not in worker.failures
        finally:
            await worker.stop()
            await client.close()
            if follower is not None:
                await follower.stop()

    run(main())


# --- batched acknowledgements -------------------------------------------------------------


def test_acks_are_batched_every_n_events_and_flushed_on_stop(pki):
    """Events appended one by one are delivered at once, but acked only every ack_every
    events (ack_delay is an hour here); stop() acks the rest."""

    async def main():
        store = FakeStore()
        handler = RecordingHandler(lambda t, p, peer: b"")
        async with one_follower(pki, handler, store, poll_interval=60, ack_every=16, ack_delay=3600) as worker:
            sent = events("one", 40)
            await worker.start()
            for n, event in enumerate(sent, start=1):
                store.append(F1, event)
                worker.wake()
                await wait_until(lambda n=n: len(handler.calls) == n, deadline=10)
            # 40 delivered: acked at 16 and 32 (each ack in the hand-off of the next read).
            await wait_until(lambda: store.size(F1) == 40 - 32, deadline=10)
            assert [ids for _, ids in store.acked] == [list(range(1, 17)), list(range(17, 33))]
        assert store.size(F1) == 0 and [ids[-1] for _, ids in store.acked] == [16, 32, 40]
        assert [c[1] for c in handler.calls] == sent  # each once, in order
        assert worker.delivered == 40 and worker.acks == 3

    run(main())


def test_owed_acks_are_written_after_ack_delay_when_the_queue_runs_dry(pki):
    async def main():
        store = FakeStore()
        handler = RecordingHandler(lambda t, p, peer: b"")
        async with one_follower(pki, handler, store, poll_interval=60, ack_every=1000, ack_delay=0.2) as worker:
            await worker.start()
            for event in events("one", 5):
                store.append(F1, event)
            worker.wake()
            await wait_until(lambda: store.size(F1) == 0, deadline=10)  # no stop() needed
            assert len(handler.calls) == 5 and 1 <= len(store.acked) <= 2

    run(main())


def test_a_long_batch_is_acked_as_it_goes(pki):
    """One read of 40 entries, sent as batches of 4, that takes at least 0.4 s to deliver (the
    follower answers each entry after 10 ms) is acked every ack_delay (0.1 s) on the way, not
    only at its end."""

    async def main():
        store = FakeStore()

        class SlowHandler(RecordingHandler):
            async def handle(self, transaction_type, payload, peer):
                await asyncio.sleep(0.01)
                return await super().handle(transaction_type, payload, peer)

        handler = SlowHandler(lambda t, p, peer: b"")
        async with one_follower(pki, handler, store, poll_interval=60, ack_every=1000, ack_delay=0.1,
                                max_batch_events=4) as worker:
            sent = events("one", 40)
            for event in sent:
                store.append(F1, event)
            await worker.start()
            await wait_until(lambda: store.size(F1) == 0)
        acked = [q for _, ids in store.acked for q in ids]
        assert len(store.acked) >= 3 and acked == list(range(1, 41))  # >= 2 on the way, 1 at the end
        assert [c[1] for c in handler.calls] == sent

    run(main())


def test_an_entry_visible_late_is_delivered_not_acked_away(pki):
    """Entry 1 becomes visible only after 2 and 3 were delivered (PostgreSQL may commit
    queue IDs out of order): the acks name the delivered entries, so 1 is still delivered."""

    async def main():
        store = FakeStore()
        handler = RecordingHandler(lambda t, p, peer: b"")
        async with one_follower(pki, handler, store, poll_interval=60, ack_every=1, ack_delay=0) as worker:
            first, second, third = events("one", 3)
            store._next = 2  # ID 1 is taken by a transaction that commits later
            store.append(F1, second)
            store.append(F1, third)
            await worker.start()
            await wait_until(lambda: len(handler.calls) == 2, deadline=10)
            store.insert_late(F1, 1, first)
            worker.wake()
            await wait_until(lambda: store.size(F1) == 0, deadline=10)
        assert [c[1] for c in handler.calls] == [second, third, first]
        assert sorted(q for _, ids in store.acked for q in ids) == [1, 2, 3]

    run(main())


def test_crash_before_the_ack_redelivers_and_the_follower_keeps_one_chain(pki, tmp_path):
    """A hub whose worker dies after delivering but before acking (nothing acked) delivers
    everything again after the restart; the real follower ignores the repeats: its stored
    chain is the hub's, each event once, in order, and the hub's queue ends empty."""
    from mimi_signaling.content import JoinRule
    from support.nodekit import Network

    net = Network(tmp_path, HUB, [F1])
    hub_store, follower_store = net.stores[HUB], net.stores[F1]
    follower = net.followers[F1]
    public = [("m.room.join_rules", "", ms.JoinRulesContent(JoinRule.PUBLIC).encode())]
    room = net.hub.create_room(f"@ana:{HUB}", initial_state=public)[0].room_id
    bob = f"@bob:{F1}"
    net.join(room, bob)  # the follower follows the room (it refuses deliveries into others)
    sent = [net.submit(room, f"@ana:{HUB}", "m.room.encrypted", None, f"m{i}".encode()) for i in range(30)]
    queued = len(hub_store.pending(F1, 10_000))
    assert queued >= len(sent)

    async def receive(transaction_type, payload, peer):
        await asyncio.to_thread(follower.receive, ms.Event.decode(payload), peer=peer)
        return b""

    class FollowerHandler:
        async def handle(self, transaction_type, payload, peer):
            return await receive(transaction_type, payload, peer)

    async def main():
        server = await start_follower(pki, F1, FollowerHandler())
        client = SignalingClient(pki.client_context(HUB), peers={F1: server.url}, max_retries=0)
        try:
            first = DeliveryWorker(hub_store, client, poll_interval=60, ack_every=10_000, ack_delay=3600)
            await first.start()
            await wait_until(lambda: first.delivered == queued)
            assert len(hub_store.pending(F1, 10_000)) == queued  # delivered, nothing acked yet
            for state in first._states.values():  # a crash: the owed acks are never written
                state.owed.clear()
            await first.stop()
            assert first.acks == 0 and len(hub_store.pending(F1, 10_000)) == queued

            second = DeliveryWorker(hub_store, client, poll_interval=60)
            await second.start()
            await wait_until(lambda: hub_store.destinations_with_pending() == [])
            await second.stop()
            assert second.delivered == queued and second.rejected == 0  # all again, all accepted
        finally:
            await client.close()
            await server.stop()

    try:
        run(main())
        hub_chain = [ms.Event.decode(raw).event_id for _, raw in hub_store.iter_events(room)]
        follower_rows = list(follower_store.iter_events(room))
        assert [i for i, _ in follower_rows] == list(range(len(hub_chain)))
        assert [ms.Event.decode(raw).event_id for _, raw in follower_rows] == hub_chain
        assert hub_chain[-1] == sent[-1].event_id
    finally:
        net.close()


def test_a_follower_without_batches_gets_single_deliveries_in_order(pki):
    """A follower that does not know ``mimi.signaling.batch`` (it answers malformed, as to any
    unknown type) gets every event as a single delivery, in order; after ``batch_retry_after``
    batches are tried again."""

    async def main():
        store = FakeStore()
        handler = RecordingHandler(lambda t, p, peer: b"")
        f1 = SignalingServer(handler, pki.server_context(F1), ds_domain=F1,
                             transaction_types=[t for t in ms.TRANSACTION_TYPES if t != ms.BATCH_TRANSACTION])
        await f1.start("127.0.0.1", 0)
        client = SignalingClient(pki.client_context(HUB), peers={F1: f1.url}, max_retries=0)
        worker = DeliveryWorker(store, client, poll_interval=60, batch_retry_after=3600)
        try:
            sent = events("one", 30)
            for event in sent:
                store.append(F1, event)
            await worker.start()
            await wait_until(lambda: store.size(F1) == 0)
            assert [c for c in handler.calls] == [(DELIVER, e, HUB) for e in sent]
            assert worker.delivered == len(sent) and worker.batches == 0 and F1 in worker.singles_until
        finally:
            await worker.stop()
            await client.close()
            await f1.stop()

    run(main())


def test_batched_fan_out_retries_from_the_entry_that_asked_to_wait(pki):
    """Entries are settled one by one: a verdict drops that event alone, rate_limited makes
    the worker back off and resend from that entry on; the follower gets every event, in
    order, in batches no larger than max_batch_events."""

    async def main():
        store = FakeStore()
        busy = {"left": 1}
        seen: list = []

        class Follower:
            async def handle_batch(self, entries, peer):
                seen.append(len(entries))
                out = []
                for t, p in entries:
                    if p.endswith(b"007") and busy["left"]:
                        busy["left"] -= 1
                        out.append(ms.RateLimitedError("later"))
                    elif p.endswith(b"003"):
                        out.append(ms.PolicyRejectedError("never"))
                    else:
                        handler.calls.append((t, p, peer))
                        out.append(b"")
                return out

            async def handle(self, t, p, peer):
                raise AssertionError("every delivery should come in a batch")

        handler = RecordingHandler()
        async with one_follower(pki, Follower(), store, poll_interval=60, backoff_base=0.05, backoff_max=0.1,
                                max_batch_events=4) as worker:
            sent = events("one", 12)
            for event in sent:
                store.append(F1, event)
            await worker.start()
            await wait_until(lambda: store.size(F1) == 0)
        delivered = [p for _, p, _ in handler.calls]
        assert delivered == [e for e in sent if not e.endswith(b"003")]
        assert worker.rejected == 1 and max(seen) <= 4

    run(main())


def test_the_next_read_runs_while_the_last_batch_of_a_read_is_out(pki):
    """Reads of 8 entries sent as batches of 4, a queue that grows while it drains: each read
    after the first is made while the last batch of the one before is at the follower (so
    the next request can go out at once), and no entry is sent twice or out of order."""

    async def main():
        store = FakeStore()
        log: list = []  # ("read",) and ("answer", entries) in the order they happen
        real_pending = store.pending

        def logged_pending(destination, limit, exclude=frozenset()):
            log.append(("read",))
            return real_pending(destination, limit, exclude)

        store.pending = logged_pending  # type: ignore[method-assign]

        class Follower:
            async def handle_batch(self, entries, peer):
                await asyncio.sleep(0.05)  # the batch is at the follower for a while
                handler.calls.extend((t, p, peer) for t, p in entries)
                if len(handler.calls) == 8:  # more arrives while the queue drains
                    for event in sent[12:]:
                        store.append(F1, event)
                    worker.wake()
                log.append(("answer", len(entries)))
                return [b""] * len(entries)

            async def handle(self, t, p, peer):
                raise AssertionError("every delivery should come in a batch")

        handler = RecordingHandler()
        sent = events("one", 20)
        async with one_follower(pki, Follower(), store, poll_interval=60, batch_size=8, max_batch_events=4,
                                ack_every=1000, ack_delay=3600) as worker:
            for event in sent[:12]:
                store.append(F1, event)
            await worker.start()
            await wait_until(lambda: len(handler.calls) == len(sent))
        assert [p for _, p, _ in handler.calls] == sent  # once each, in order
        # Every read but the first comes before the answer to the batch before it: never two
        # answers in a row with a read due between them.
        kinds = [entry[0] for entry in log]
        assert kinds[0] == "read" and kinds.count("answer") == 5
        assert kinds[:4] == ["read", "answer", "read", "answer"], log  # read 2 while batch 2 was out
        assert kinds.count("read") >= 3 and kinds[-1] == "answer"

    run(main())


def test_entries_whose_ack_failed_are_delivered_again_then_acked(pki):
    """The store fails the first ack: those entries stay queued, so they are read and sent
    again (a follower ignores repeats) and acked then; the others go once."""

    async def main():
        store = FakeStore()
        real_ack = store.ack_entries
        failed: list = []

        def flaky_ack(destination, queue_ids):
            if not failed:
                failed.append(list(queue_ids))
                raise OSError("database is locked")
            real_ack(destination, queue_ids)

        store.ack_entries = flaky_ack  # type: ignore[method-assign]
        handler = RecordingHandler(lambda t, p, peer: b"")
        async with one_follower(pki, handler, store, poll_interval=60, ack_every=4, ack_delay=0.05,
                                max_batch_events=4) as worker:
            sent = events("one", 8)
            for event in sent[:4]:
                store.append(F1, event)
            await worker.start()
            await wait_until(lambda: failed and len(handler.calls) >= 4, deadline=10)
            for event in sent[4:]:
                store.append(F1, event)
            worker.wake()
            await wait_until(lambda: store.size(F1) == 0, deadline=10)
        delivered = [p for _, p, _ in handler.calls]
        assert failed == [[1, 2, 3, 4]]
        assert delivered[:4] == sent[:4] and sorted(set(delivered)) == sorted(sent)
        assert delivered.count(sent[0]) == 2 and delivered.count(sent[7]) == 1  # again, only those

    run(main())
