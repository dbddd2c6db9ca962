"""Helpers of the operations tests: servers with the ops listener on, HTTP reads of it, and
metric samples parsed with prometheus_client's own parser."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from prometheus_client.parser import text_string_to_metric_families

from mimi_signaling.testing.cluster import Cluster, free_port
from mimi_signaling.config import Config


def ops_cluster(directory: Path, names: List[str], storage: Optional[Dict[str, str]] = None,
                more: Optional[Callable[[Config], None]] = None) -> Tuple[Cluster, Dict[str, str]]:
    """A cluster (not started) whose servers each have an ops listener (and whatever ``more``
    sets); returns it and the base URL of each listener."""
    ports = {n: free_port() for n in names}

    def configure(config: Config) -> None:
        config.ops.listen = f"127.0.0.1:{ports[config.server_name]}"
        if more is not None:
            more(config)

    cluster = Cluster(directory, names, storage=storage, configure=configure)
    return cluster, {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}


def get(url: str, *, timeout: float = 10.0, accept: Optional[str] = None) -> Tuple[int, str, str]:
    """(status, content type, body) of a GET; HTTP errors are answers too."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def scrape(base: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of one scrape of ``base``/metrics."""
    status, _, body = get(base + "/metrics")
    assert status == 200, body
    out = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
