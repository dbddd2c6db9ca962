"""The server's Prometheus/OpenMetrics metrics (``prometheus_client``).

Each ``ServerNode`` owns one :class:`NodeMetrics` with a registry of its own (tests run
several nodes in one process).  Counters that the request path updates are
``prometheus_client`` counters and histograms, moved by one-line hooks in ``service.py``;
what the server already counts or stores (fan-out queues, delivery totals, rate-limit
refusals, rooms) is read when scraped, by :class:`_NodeCollector`, so the hot paths carry
no extra work for it.

Labels are kept to small, bounded sets: error names (one per wire code), transaction types
(the ones the server accepts), room roles, and destinations (the peer servers this hub fans
out to).  No label ever carries a room, user or event ID.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Dict, Iterator, Optional, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import MimiError
from ..transport.names import SUBMIT

if TYPE_CHECKING:  # pragma: no cover
    from ..server import ServerNode

__all__ = ["NodeMetrics", "METRIC_NAMES"]

#: Seconds: a submit answered from a group commit takes one fsync at least.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
VERIFY_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)

#: Every metric this module exports (without the _total/_bucket suffixes), for the README.
METRIC_NAMES = (
    "mimi_submits_received_total",
    "mimi_submits_accepted_total",
    "mimi_submits_refused_total",
    "mimi_accept_latency_seconds",
    "mimi_accept_group_size",
    "mimi_transactions_received_total",
    "mimi_events_stored",
    "mimi_rooms",
    "mimi_fanout_queue_depth",
    "mimi_fanout_oldest_age_seconds",
    "mimi_deliveries_sent_total",
    "mimi_deliveries_refused_total",
    "mimi_delivery_failures_total",
    "mimi_verify_seconds",
    "mimi_verified_events_total",
    "mimi_key_fetches_total",
    "mimi_rate_limited_total",
    "mimi_store_up",
)


class NodeMetrics:
    """The metrics of one server node."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.submits_received = Counter("mimi_submits_received", "Submits received from peers", registry=r)
        self.submits_accepted = Counter("mimi_submits_accepted", "Submits accepted and stored", registry=r)
        self.submits_refused = Counter(
            "mimi_submits_refused", "Submits refused, by error name (one per wire code)", ["error"], registry=r
        )
        self.accept_latency = Histogram(
            "mimi_accept_latency_seconds", "From a submit's arrival to its answer", buckets=LATENCY_BUCKETS, registry=r
        )
        self.group_size = Histogram(
            "mimi_accept_group_size", "Submits accepted together in one group commit", buckets=GROUP_BUCKETS, registry=r
        )
        self.transactions = Counter(
            "mimi_transactions_received", "Signaling transactions received, by type", ["type"], registry=r
        )
        self.verify_seconds = Histogram(
            "mimi_verify_seconds", "Batch verification of origin signatures (one call per group)",
            buckets=VERIFY_BUCKETS, registry=r,
        )
        self.verified_events = Counter("mimi_verified_events", "Origin signatures verified by the hub", registry=r)
        self.key_fetches = Counter(
            "mimi_key_fetches", "Fetches of a peer's server keys, by outcome", ["outcome"], registry=r
        )
        from .status import QueueAges

        self.queue_ages = QueueAges()
        self._process = [ProcessCollector(registry=r), PlatformCollector(registry=r), GCCollector(registry=r)]

    def attach(self, node: "ServerNode") -> None:
        """Export what ``node`` counts and stores (read at each scrape)."""
        self.registry.register(_NodeCollector(node))
        node.hub.on_verified = self.observe_verify

    # --- hooks ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def submit(self) -> Iterator[None]:
        """Around one submit: counts it received, then accepted or refused (by error name),
        and observes its latency."""
        started = time.perf_counter()
        self.submits_received.inc()
        try:
            yield
        except MimiError as exc:
            self.submits_refused.labels(getattr(exc, "name", type(exc).__name__)).inc()
            raise
        except BaseException:
            self.submits_refused.labels("internal").inc()
            raise
        else:
            self.submits_accepted.inc()
        finally:
            self.accept_latency.observe(time.perf_counter() - started)

    def submitted(self, answers: Sequence[object], seconds: float) -> None:
        """The submits of one batch transaction, answered together after ``seconds``: each an
        error or the accepted event."""
        self.transactions.labels(SUBMIT).inc(len(answers))
        self.submits_received.inc(len(answers))
        refused: Dict[str, int] = {}
        for answer in answers:
            if isinstance(answer, MimiError):
                name = getattr(answer, "name", type(answer).__name__)
                refused[name] = refused.get(name, 0) + 1
        for name, count in refused.items():
            self.submits_refused.labels(name).inc(count)
        accepted = len(answers) - sum(refused.values())
        if accepted:
            self.submits_accepted.inc(accepted)
        for _ in answers:  # one observation per submit (a histogram takes no count)
            self.accept_latency.observe(seconds)

    def observe_verify(self, events: int, seconds: float) -> None:
        if events:
            self.verify_seconds.observe(seconds)
            self.verified_events.inc(events)

    @contextlib.contextmanager
    def key_fetch(self) -> Iterator[None]:
        """Around one fetch of a peer's keys: counted by outcome."""
        try:
            yield
        except BaseException:
            self.key_fetches.labels("error").inc()
            raise
        self.key_fetches.labels("ok").inc()


class _NodeCollector(Collector):
    """Gauges and counters read from the node when scraped."""

    def __init__(self, node: "ServerNode") -> None:
        self.node = node

    def describe(self):  # no samples at registration: the node may not be started yet
        return []

    def collect(self):
        from .status import snapshot

        node = self.node
        up = GaugeMetricFamily("mimi_store_up", "1 when the store answered this scrape's reads, else 0")
        try:
            snap = snapshot(node)
        except Exception:  # noqa: BLE001 - the store is down: the other metrics still count
            up.add_metric([], 0)
            yield up
            yield from self._counted(node)
            return
        up.add_metric([], 1)
        yield up
        rooms = GaugeMetricFamily("mimi_rooms", "Rooms on this server, by role", labels=["role"])
        events = GaugeMetricFamily("mimi_events_stored", "Events stored (latest index + 1, summed over rooms)",
                                   labels=["role"])
        for role in ("hub", "follower"):
            mine = [r for r in snap.rooms if r.role == role]
            rooms.add_metric([role], len(mine))
            events.add_metric([role], sum(r.events for r in mine))
        yield rooms
        yield events
        depth = GaugeMetricFamily("mimi_fanout_queue_depth", "Events queued for a destination",
                                  labels=["destination"])
        age = GaugeMetricFamily(
            "mimi_fanout_oldest_age_seconds",
            "How long the oldest queued event has waited (since this process first saw it queued)",
            labels=["destination"],
        )
        for d in snap.destinations:
            depth.add_metric([d.name], d.backlog)
            age.add_metric([d.name], d.oldest_age)
        yield depth
        yield age
        yield from self._counted(node)

    @staticmethod
    def _counted(node: "ServerNode"):
        """What the server counts in memory (no store read)."""
        worker = node.delivery
        sent = CounterMetricFamily("mimi_deliveries_sent", "Events delivered to followers")
        refused = CounterMetricFamily("mimi_deliveries_refused", "Queued events a destination refused with a verdict")
        failures = CounterMetricFamily("mimi_delivery_failures", "Failed delivery attempts (retried after a backoff)")
        sent.add_metric([], worker.delivered if worker else 0)
        refused.add_metric([], worker.rejected if worker else 0)
        failures.add_metric([], worker.failed_attempts if worker else 0)
        yield sent
        yield refused
        yield failures
        limiter = node.server.rate_limiter if node.server is not None else None
        limited = CounterMetricFamily("mimi_rate_limited", "Requests refused by the per-peer rate limit")
        limited.add_metric([], limiter.refused if limiter is not None else 0)
        yield limited


def render_latest(registry: CollectorRegistry, accept: Optional[str]) -> "tuple[bytes, str]":
    """The exposition in the format the scraper asked for (OpenMetrics or Prometheus text)."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
