"""Readiness follows the store: a real ``mimi serve`` on a PostgreSQL server of the test's own
(a separate throwaway cluster, never the shared one), which is stopped and started again
under the running server."""

from __future__ import annotations

import time

import pytest

from support.e2ekit import ALICE, HUB
from support.opskit import get, ops_cluster, scrape, value

pytestmark = pytest.mark.postgres


def _wait_status(url: str, want: int, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = get(url, timeout=15)
        if status == want:
            return body
        assert time.monotonic() < deadline, f"{url}: {status} {body!r}, want {want}"
        time.sleep(0.2)


def test_readiness_fails_while_postgresql_is_down(tmp_path):
    from support.pg import find_pg_bindir, start_postgres

    if find_pg_bindir() is None:
        pytest.skip("PostgreSQL binaries not installed")
    pg = start_postgres()
    try:
        cluster, urls = ops_cluster(tmp_path, [HUB], storage={HUB: pg.url})
        cluster.start()
        try:
            base = urls[HUB]
            assert _wait_status(base + "/health/ready", 200) == "ready\n"
            pg.pause()
            body = _wait_status(base + "/health/ready", 503)
            assert "store" in body
            assert get(base + "/health/live")[0] == 200  # alive: only not ready
            assert get(base + "/status")[0] == 503  # says so rather than hanging
            # Metrics go on: the store's gauge says it is down, the process is still measured.
            down = scrape(base)
            assert value(down, "mimi_store_up") == 0 and value(down, "process_resident_memory_bytes") > 0
            pg.resume()
            assert _wait_status(base + "/health/ready", 200) == "ready\n"  # reconnected
            assert value(scrape(base), "mimi_store_up") == 1
            room = cluster[HUB].call("create_room", creator=ALICE)["room_id"]
            assert room.endswith(":" + HUB)
        finally:
            cluster.stop()
    finally:
        pg.stop()
