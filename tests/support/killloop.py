"""The crash-safety run shared by ``test_rel_crash_loop.py`` (a few kills, in CI) and
``scripts/kill-loop.py`` (many kills): real ``mimi serve`` processes, a bounded load of
submits, and the hub killed with SIGKILL at random moments.

Load: alice and dave send through the hub's own local API (the hub's users), bob and erin
through alpha's and carol through beta's (follower submits over mutual TLS).  Each
``Sender`` records an event ID only once the API acknowledged it, which happens after the
event is durably stored.

After every restart: every event acknowledged before the kill is in the hub's chain, no
message is stored twice, and the chain exported from the hub's store passes ``mimi verify``.
At the end the followers hold exactly the hub's chain and their exports verify too.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from support.relkit import DAVE, ERIN, message_texts, missing, reap

from support.e2ekit import (
    ALICE,
    ALPHA,
    BETA,
    BOB,
    CAROL,
    HUB,
    Sender,
    event_ids,
    export_and_verify,
    room_with_members,
    wait_for,
    wait_same_history,
)
from mimi_signaling.testing.cluster import Cluster

log = logging.getLogger(__name__)

#: Sends per sender thread at most; the run stops them long before in practice.
SEND_LIMIT = 1_000_000
#: Upper bound for the load to resume after a restart, and for the followers to converge.
LOAD_DEADLINE = 120.0


@dataclass
class KillLoopReport:
    storage: str
    kills: int
    seed: int
    acked: int = 0  # events acknowledged to a sender (plus the room's setup events)
    lost: int = 0  # acknowledged events missing from the hub after a restart (must be 0)
    duplicates: int = 0  # messages stored more than once (must be 0)
    verify_failures: int = 0  # exports that `mimi verify` refused (must be 0)
    exports_verified: int = 0
    send_errors: int = 0  # sends that failed while the hub was down (not acknowledged)
    events: int = 0  # events in the hub's chain at the end
    follower_events: Dict[str, int] = field(default_factory=dict)
    restart_seconds_max: float = 0.0
    seconds: float = 0.0
    examples: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.verify_failures) and self.kills > 0

    def as_dict(self) -> Dict[str, object]:
        # Events the hub stored but could not acknowledge before it was killed.
        return {**asdict(self), "stored_not_acknowledged": self.events - self.acked, "ok": self.ok}


def run_kill_loop(
    directory: Path,
    *,
    kills: int,
    storage: str = "",
    seed: Optional[int] = None,
    delay: tuple = (0.05, 1.5),
    progress: Callable[[str], None] = log.info,
) -> KillLoopReport:
    """Run ``kills`` SIGKILL/restart cycles of the hub; ``storage``: the hub's storage URL
    ("" for SQLite in its data directory).  Returns the figures; raises only when the run
    itself cannot proceed (a server that does not start, load that does not resume)."""
    seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    report = KillLoopReport(storage="postgresql" if storage.startswith("postgres") else "sqlite", kills=0, seed=seed)
    started = time.monotonic()
    cluster = Cluster(directory, [HUB, ALPHA, BETA], storage={HUB: storage} if storage else None)
    senders: List[Sender] = []
    try:
        cluster.start()
        room = room_with_members(cluster, [(ALPHA, BOB), (ALPHA, ERIN), (BETA, CAROL), (HUB, DAVE)], name="kill loop")
        setup = event_ids(cluster[HUB], room)
        senders = [
            Sender(cluster[server], room, user, limit=SEND_LIMIT, tag=f"{user} kill-loop", stop_on_error=False)
            for server, user in ((HUB, ALICE), (HUB, DAVE), (ALPHA, BOB), (ALPHA, ERIN), (BETA, CAROL))
        ]
        for s in senders:
            s.start()
        for k in range(kills):
            marks = [len(s.acked) for s in senders]
            wait_for(lambda marks=marks: all(len(s.acked) > m for s, m in zip(senders, marks)), timeout=LOAD_DEADLINE,
                     what="every sender to get an acknowledgement since the last restart")
            time.sleep(rng.uniform(*delay))  # the fault's random moment, not a synchronisation
            cluster[HUB].kill()
            report.kills += 1
            acked = setup + [e for s in senders for e in list(s.acked)]
            restart = time.monotonic()
            cluster[HUB].start()
            report.restart_seconds_max = max(report.restart_seconds_max, time.monotonic() - restart)
            _check_hub(cluster, room, acked, report, directory / "export.mimiroom", label=f"kill {k + 1}")
            progress(f"kill {k + 1}/{kills}: {len(acked)} acknowledged, lost {report.lost}, "
                     f"duplicates {report.duplicates}, verify failures {report.verify_failures}")
        for s in senders:
            s.stop()
        acked = setup + [e for s in senders for e in s.acked]
        report.send_errors = sum(len(s.errors) for s in senders)
        _check_hub(cluster, room, acked, report, directory / "export.mimiroom", label="end")
        report.acked = len(acked)
        final = wait_same_history(cluster, room, [ALPHA, BETA], timeout=LOAD_DEADLINE)
        report.events = len(final)
        for name in (ALPHA, BETA):
            report.follower_events[name] = len(event_ids(cluster[name], room))
            _export(cluster, name, room, report, directory / f"{name}.mimiroom", label=f"{name} at the end")
    finally:
        for s in senders:
            try:
                s.stop()
            except AssertionError:
                pass  # a sender stuck in a call: its process is reaped next
        reap(cluster.servers.values())
        report.seconds = round(time.monotonic() - started, 1)
    return report


def _check_hub(cluster: Cluster, room: str, acked: List[str], report: KillLoopReport, path: Path, *, label: str) -> None:
    stored = event_ids(cluster[HUB], room)
    gone = missing(acked, stored)
    if gone:
        report.lost += len(gone)
        report.examples.append(f"{label}: {len(gone)} acknowledged events missing, e.g. {gone[:3]}")
    duplicated = {t: n for t, n in message_texts(cluster[HUB], room).items() if n > 1}
    if duplicated:
        extra = sum(n - 1 for n in duplicated.values())
        report.duplicates += extra
        report.examples.append(f"{label}: {extra} messages stored twice, e.g. {list(duplicated)[:2]}")
    _export(cluster, HUB, room, report, path, label=label)


def _export(cluster: Cluster, name: str, room: str, report: KillLoopReport, path: Path, *, label: str) -> None:
    """Export the room from the server's store and check it with ``mimi verify``."""
    try:
        export_and_verify(cluster[name], room, path)
        report.exports_verified += 1
    except AssertionError as exc:
        report.verify_failures += 1
        report.examples.append(f"{label}: export of {name} does not verify: {str(exc)[:500]}")
    finally:
        path.unlink(missing_ok=True)
