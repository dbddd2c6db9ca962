"""Per-peer token buckets: one flooding peer is slowed down, the others are still served."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict

__all__ = ["TokenBucket", "PeerRateLimiter"]


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; each transaction takes one token."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> bool:
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def take_up_to(self, now: float, count: int) -> int:
        """Take up to ``count`` whole tokens; how many were taken."""
        self.refill(now)
        taken = max(0, min(count, int(self.tokens)))
        self.tokens -= taken
        return taken

    def retry_after(self) -> float:
        """Seconds until the next token (inf when the rate is zero)."""
        missing = max(0.0, 1.0 - self.tokens)
        return missing / self.rate if self.rate > 0 else float("inf")


class PeerRateLimiter:
    """Token bucket per peer server name.

    ``rate`` transactions per second sustained (each entry of a batch counts), ``burst`` at
    once.  Peers are authenticated by mutual TLS, so the number of buckets is bounded by the
    number of certificate holders; still, past ``max_peers`` buckets the idle (full) ones are dropped so memory stays bounded.
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_peers: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate < 0:
            raise ValueError("rate must be >= 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_peers = max_peers
        self._clock = clock
        self._buckets: Dict[str, TokenBucket] = {}
        self.refused = 0  # transactions refused since start (a metric)

    def _bucket(self, peer: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= self.max_peers:
                self._evict_idle(now)
            bucket = TokenBucket(self.rate, self.burst, self.burst, now)
            self._buckets[peer] = bucket
        return bucket

    def allow(self, peer: str) -> bool:
        """Take a token for ``peer``; False when it is over its limit."""
        now = self._clock()
        allowed = self._bucket(peer, now).take(now)
        self.refused += not allowed
        return allowed

    def allow_many(self, peer: str, count: int) -> int:
        """Take up to ``count`` tokens for ``peer`` (the further entries of a batch: the limit
        counts transactions, not requests); how many it may send now."""
        now = self._clock()
        taken = self._bucket(peer, now).take_up_to(now, count)
        self.refused += count - taken
        return taken

    def retry_after(self, peer: str) -> float:
        bucket = self._buckets.get(peer)
        return 0.0 if bucket is None else bucket.retry_after()

    def _evict_idle(self, now: float) -> None:
        for name in list(self._buckets):
            bucket = self._buckets[name]
            bucket.refill(now)
            if bucket.tokens >= bucket.burst:
                del self._buckets[name]
        if len(self._buckets) >= self.max_peers:
            # Everyone is busy: forget the fullest half rather than grow without bound.
            ranked = sorted(self._buckets.items(), key=lambda kv: kv[1].tokens, reverse=True)
            for name, _ in ranked[: max(1, len(ranked) // 2)]:
                del self._buckets[name]

    def __len__(self) -> int:
        return len(self._buckets)
