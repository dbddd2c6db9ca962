"""Side-by-side comparison, in one run on one machine, on events of the same payload size
(256-byte ciphertext): the per-signature bound (PyNaCl/libsodium and ``cryptography``), the
Matrix-style pipeline (``canonicaljson`` + ``signedjson`` + PyNaCl, as Synapse does it) and this
project (single-event API, batch API, ``mimi verify`` as a whole process, the hub's accept on
durable SQLite, and a hub with two followers over HTTPS, single transactions and batches).  Prints a table of events/s with ratios, checks the targets of the
performance issue (PASS/FAIL each), and writes ``results/compare.md`` and
``results/compare.png``.

    python benches/compare.py            # the full run (a 1,000,000-event room; ~5 minutes,
                                         # plus ~2 to generate the room the first time)
    python benches/compare.py --quick    # a smoke run with small sizes (< 60 s)
    python benches/compare.py --quick --events 50000 --floor 0.35 --json benches/results/ci.json   # CI (.ci/bench.sh)

Needs the ``bench`` extra (``pip install -e '.[bench]'``).  Each figure is the best of
``--repeats`` rounds taken in turn (other load only ever slows a run down, and comes and goes
alike for all figures); the load average is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import mimi_signaling as m  # noqa: E402

import matrix_style  # noqa: E402
import workloads as w  # noqa: E402

#: Cores for the "2 cores" figures (the targets are stated for 2).
TARGET_CORES = 2
BATCH_SIZES = (1, 16, 256, 4096)
#: Events per hub ``accept_many`` call (group commit).
ACCEPT_GROUP = 256
MEMORY_TARGET_EVENTS = 1_000_000
MEMORY_TARGET_MB = 150.0
#: Events of the room the profile of ``verify_room_file`` runs on (--profile).
PROFILE_EVENTS = 100_000


#: Submits of the HTTPS end-to-end figures (batch path, single path): a shorter run than
#: ``benches/https_e2e.py``'s 100,000, in the same rounds as the rest.
HTTPS_FULL = (30_000, 1_000)
HTTPS_QUICK = (2_048, 100)


@dataclass(frozen=True)
class Sizes:
    room_events: int  # the room file (mimi verify)
    batch_events: int  # events of the in-process batch figures
    single_events: int  # single-event API
    bound_events: int  # per-signature bound
    matrix_events: int  # Matrix-style pipeline
    hub_sequential: int  # hub accept, one at a time
    hub_grouped: int  # hub accept_many
    small_batch_cap: int  # events run at batch sizes 1 and 16 (they are slow per event)
    repeats: int


FULL = Sizes(room_events=1_000_000, batch_events=65_536, single_events=20_000, bound_events=10_000,
             matrix_events=5_000, hub_sequential=1_000, hub_grouped=16_384, small_batch_cap=8_192, repeats=3)
QUICK = Sizes(room_events=4_000, batch_events=4_000, single_events=1_000, bound_events=1_000,
              matrix_events=500, hub_sequential=200, hub_grouped=1_024, small_batch_cap=1_024, repeats=2)


@dataclass
class Row:
    key: str
    group: str  # "bound", "matrix", "mimi"
    label: str
    events_per_second: float
    cores: int
    reference: str = "M1"  # the Matrix-style row this one is compared with
    notes: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    name: str
    measured: float
    required: float
    passed: Optional[bool]  # None: not checked in this run
    detail: str
    unit: str = ""  # "" : "x" (a ratio), or "MB" for the memory target


def say(text: str) -> None:
    print(text, flush=True)


# --- measurements -------------------------------------------------------------------------------


@dataclass
class Measure:
    """One in-process figure: ``run()`` handles ``events`` events; timed once per round."""

    key: str
    run: Callable[[], Any]
    events: int
    times: List[float] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)  # process CPU seconds (all threads) per round

    @property
    def best(self) -> float:
        return self.events / min(self.times)

    @property
    def cpu_us_per_event(self) -> float:
        return min(self.cpu) / self.events * 1e6


class Comparison:
    """Builds every workload, then times the in-process figures in interleaved rounds (each
    round runs every figure once; each figure keeps its best round), so that load which comes
    and goes during the run touches all of them alike.  ``mimi verify`` runs as a process
    afterwards."""

    def __init__(self, sizes: Sizes, workdir: Path, cores: int) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.cores = cores
        self.rows: Dict[str, Row] = {}
        self.measures: Dict[str, Measure] = {}
        self.row_specs: List[Tuple[str, str, str, int, str, str]] = []  # key, group, label, cores, reference, notes
        self.series_specs: Dict[str, Dict[int, str]] = {}  # chart: name -> batch size -> measure key
        self.series: Dict[str, Dict[int, float]] = {}  # chart: name -> batch size -> events/s
        self.core_bars: Dict[str, Dict[int, float]] = {}  # chart: name -> cores -> events/s
        self.facts: Dict[str, Any] = {}
        self._hub: Optional[w.HubWorkload] = None
        self._hub_dir = workdir
        self._aliases: Dict[str, str] = {}  # row key -> measure key, where they differ
        self._verify: Dict[str, Dict[str, Any]] = {}  # row key -> mimi verify result

    def measure(self, key: str, run: Callable[[], Any], events: int) -> None:
        self.measures[key] = Measure(key, run, events)

    def row(self, key: str, group: str, label: str, cores: int, *, reference: str = "M1", notes: str = "",
            run: Optional[Callable[[], Any]] = None, events: int = 0) -> None:
        if run is not None:
            self.measure(key, run, events)
        self.row_specs.append((key, group, label, cores, reference, notes))

    def threads_label(self, threads: int) -> str:
        return f"ChainValidator, {threads} thread{'s' if threads > 1 else ''}"

    # -- inputs --

    def prepare(self) -> None:
        s = self.sizes
        say(f"room file: {s.room_events:,} events of {w.PAYLOAD}-byte messages in {self.workdir}")
        started = time.perf_counter()
        self.room_path = w.room_file(self.workdir, s.room_events)
        self.facts["room_file_mb"] = round(self.room_path.stat().st_size / 1e6, 1)
        say(f"  ready in {time.perf_counter() - started:.1f} s ({self.facts['room_file_mb']} MB)")
        self.ring, self.blobs = w.load_room(self.room_path, limit=s.batch_events)
        messages = w.message_events(self.blobs[: max(s.bound_events, s.single_events) * 2])
        self.messages = messages
        self.bound_input = w.bound_inputs(messages[: s.bound_events], self.ring)
        self.facts["mimi_event_bytes"] = round(sum(map(len, messages)) / len(messages), 1)
        self.facts["fsync_per_second"] = round(w.fsync_rate(self.workdir), 0)

    # -- 1. the per-signature bound --

    def bounds(self) -> None:
        inputs, n = self.bound_input, len(self.bound_input)
        sk = w.libsodium_secret_key()
        self.row("B1", "bound", "libsodium (PyNaCl): 2 verify + 2 SHA-256", 1, notes="the bound of the targets",
                 run=lambda: w.bound_libsodium(inputs), events=n)
        self.row("B2", "bound", "libsodium (PyNaCl): 2 verify + 2 SHA-256 + 1 sign", 1,
                 run=lambda: w.bound_libsodium(inputs, sk), events=n)
        self.row("B3", "bound", "cryptography (OpenSSL): 2 verify + 2 SHA-256", 1,
                 run=lambda: w.bound_cryptography(inputs), events=n)
        self.row("B4", "bound", "cryptography (OpenSSL): 2 verify + 2 SHA-256 + 1 sign", 1,
                 run=lambda: w.bound_cryptography(inputs, sign=True), events=n)

    # -- 2. the Matrix-style pipeline --

    def matrix(self) -> None:
        s = self.sizes
        ms = matrix_style.MatrixStyle()
        limited, full = ms.make_events(s.matrix_events, payload=w.PAYLOAD, auth_count=4)
        self.facts["matrix_event_bytes"] = round(sum(map(len, full)) / len(full), 1)
        n = len(full)
        self.row("M1", "matrix", "receive: content hash, redaction, reference hash, verify origin + hub", 1,
                 notes="the Matrix-style reference of the validation targets",
                 run=lambda: [ms.receive(r) for r in full], events=n)
        self.row("M2", "matrix", "receive + sign_json (the whole pipeline)", 1,
                 run=lambda: [ms.pipeline(r) for r in full], events=n)
        auth = json.loads(full[0])["auth_events"]

        def accept_all() -> None:
            prev = "$" + "A" * 43
            for depth, raw in enumerate(limited):
                prev, _ = ms.accept(raw, auth, prev, depth)

        self.row("M3", "matrix", "hub accept: content hash, verify origin, fill, sign_json, reference hash", 1,
                 reference="M3", notes="no policy, no storage; the reference of the accept target",
                 run=accept_all, events=n)

    # -- 3. this project --

    def single_api(self) -> None:
        events = self.messages[: self.sizes.single_events]
        self.row("P1", "mimi", "single-event API: Event.decode + verify + event_id (Python loop)", 1,
                 run=lambda: w.single_event_api(events, self.ring), events=len(events))

    def batch_api(self) -> None:
        s, blobs, ring = self.sizes, self.blobs, self.ring
        for batch in BATCH_SIZES:
            part = blobs[: min(len(blobs), s.small_batch_cap)] if batch < 256 else blobs
            for threads in sorted({1, self.cores}):
                key = f"chain-{batch}-{threads}"
                self.measure(key, lambda p=part, b=batch, t=threads: w.chain_validate(p, ring, b, t), len(part))
                self.series_specs.setdefault(self.threads_label(threads), {})[batch] = key
            key = f"check-{batch}"
            self.measure(key, lambda p=part, b=batch: w.check_batches(p, ring, b), len(part))
            self.series_specs.setdefault(f"check_events ({self.cores} cores)", {})[batch] = key
        big = BATCH_SIZES[-1]
        self.row("P2", "mimi", f"batch: check_events, batches of {big}", self.cores,
                 notes="independent events: decode, hashes, IDs, batch Ed25519")
        self.row("P3", "mimi", f"batch: ChainValidator(threads=1), batches of {big}", 1)
        self.row("P4", "mimi", f"batch: ChainValidator(threads={self.cores}), batches of {big}", self.cores,
                 notes="decoding, hashes, links, all signatures; no policy")
        self._aliases = {"P2": f"check-{big}", "P3": f"chain-{big}-1", "P4": f"chain-{big}-{self.cores}"}

    def hub(self) -> None:
        s = self.sizes
        directory = self._hub_dir = Path(tempfile.mkdtemp(prefix="hub-", dir=self.workdir))
        hub = self._hub = w.HubWorkload(directory, rooms=1)
        # Fresh events for every round (a resubmit would be answered from the idempotency cache).
        sequential = [hub.limited_events(0, s.hub_sequential) for _ in range(s.repeats)]
        self.row("P7", "mimi", "hub accept, one event per call (policy, durable SQLite: a commit each)", 1,
                 reference="M3", notes=f"bound by the disk: {self.facts['fsync_per_second']:,.0f} fsync/s",
                 run=lambda: hub.accept_sequential(sequential.pop()), events=s.hub_sequential)
        if hasattr(hub.hub, "accept_many"):
            grouped = [hub.limited_events(0, s.hub_grouped) for _ in range(s.repeats)]
            self.row("P8", "mimi", f"hub accept_many, groups of {ACCEPT_GROUP} (policy, durable SQLite, group commit)",
                     self.cores, reference="M3", notes="decode + accept + encode per event; one commit per group",
                     run=lambda: accept_grouped(hub, grouped.pop(), ACCEPT_GROUP), events=s.hub_grouped)

    def run_rounds(self) -> None:
        rounds = self.sizes.repeats
        for r in range(rounds):
            load = os.getloadavg()[0]
            say(f"round {r + 1}/{rounds} (load {load:.2f}): {len(self.measures)} figures")
            for measure in self.measures.values():
                started, cpu = time.perf_counter(), time.process_time()
                measure.run()
                measure.times.append(time.perf_counter() - started)
                measure.cpu.append(time.process_time() - cpu)
        if self._hub is not None:
            self._hub.close()
            shutil.rmtree(self._hub_dir, ignore_errors=True)  # a hub database per run adds up
        for name, by_batch in self.series_specs.items():
            self.series[name] = {b: self.measures[k].best for b, k in by_batch.items()}
        one = self.measures[self._aliases["P3"]].best
        many = self.measures[self._aliases["P4"]].best
        self.core_bars["ChainValidator (batches of 4096)"] = {1: one, self.cores: many}

    def mimi_verify(self) -> None:
        s = self.sizes
        results = {}
        runs = min(2, s.repeats) if s.room_events >= 200_000 else s.repeats  # a large room: ~30-60 s a run
        for threads in sorted({1, self.cores}, reverse=True):
            say(f"mimi verify --threads {threads}: {s.room_events:,} events, {runs} run(s)")
            best: Optional[Dict[str, Any]] = None
            for _ in range(runs):
                result = run_mimi_verify(self.room_path, threads)
                if best is None or result["wall"] < best["wall"]:
                    best = result
            assert best is not None
            results[threads] = best
        two, one = results[self.cores], results[1]
        n = two["events"]
        self.row("P5", "mimi", f"mimi verify FILE --threads {self.cores}: whole process, {n:,} events", self.cores,
                 notes=f"peak RSS {two['max_rss_mb']:.0f} MB; read + Rust validation {two['crypto_seconds']:.2f} s "
                       f"(helper thread), policy pass {two['policy_seconds']:.2f} s (main thread), "
                       f"{two['wall']:.2f} s wall")
        self.row("P6", "mimi", f"mimi verify FILE --threads 1: whole process, {n:,} events", 1,
                 notes=f"{one['wall']:.2f} s wall")
        self._verify = {"P5": two, "P6": one}
        self.core_bars["mimi verify (whole process)"] = {1: n / one["wall"], self.cores: n / two["wall"]}

    def https(self, quick: bool) -> None:
        """Hub + two followers as ``mimi serve`` processes (benches/https_e2e.py): the single
        and the batch path end to end; the hub's CPU per event is compared with P8's
        in-process ``accept_many`` figure of this very run."""
        import https_e2e

        events, single = HTTPS_QUICK if quick else HTTPS_FULL
        p8 = self.measures.get("P8")
        accept = ({"events": p8.events, "events_per_second": p8.best, "cpu_us_per_event": p8.cpu_us_per_event}
                  if p8 is not None else None)
        self._https = https_e2e.measure(events, single, accept=accept)

    def https_rows(self) -> None:
        result = getattr(self, "_https", None)
        if result is None:
            return
        for key, path, label, reference in (
            ("H1", "single", "HTTPS end to end, single transactions: submits and deliveries (hub + 2 followers, "
             "mTLS, SQLite; http.batches = false)", ""),
            ("H2", "batch", f"HTTPS end to end, batches of {result['batch_size']} (hub + 2 followers, mTLS, SQLite)", "H1"),
            ("H3", "single_submits", "HTTPS end to end, single submits, batched deliveries (hub + 2 followers, mTLS, "
             "SQLite)", ""),
        ):
            r = result[path]
            notes = (f"accepted {r['accepted_per_second']:,.0f}/s, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms; "
                     f"followers +{r['converge_seconds']:.2f} s; CPU µs/event alpha {r.get('cpu_us_alpha', 0):.0f}, "
                     f"beta {r.get('cpu_us_beta', 0):.0f}; {r['events']:,} events")
            extra = {**r, "cpu_us_per_event": r.get("cpu_us_hub")}
            self.rows[key] = Row(key, "mimi", label, r["end_to_end_per_second"], TARGET_CORES, reference, notes, extra)

    def build_rows(self) -> None:
        order = {"bound": 0, "matrix": 1, "mimi": 2}
        specs = sorted(self.row_specs, key=lambda spec: (order[spec[1]], spec[0]))
        for key, group, label, cores, reference, notes in specs:
            if key in self._verify:
                result = self._verify[key]
                value, extra = result["events"] / result["wall"], result
                extra["cpu_us_per_event"] = result["cpu_seconds"] / result["events"] * 1e6
            else:
                measure = self.measures[self._aliases.get(key, key)]
                value = measure.best
                extra = {"rounds": [round(measure.events / t, 1) for t in measure.times],
                         "cpu_us_per_event": measure.cpu_us_per_event}
            self.rows[key] = Row(key, group, label, value, cores, reference, notes, extra)

    # -- targets --

    def targets(self) -> List[Target]:
        rows = self.rows
        out: List[Target] = []
        verify, mx = rows["P5"], rows["M1"]
        # The bound on the same cores as the numerator: B1 (one core) times P5's cores.
        bound = bound_on(verify.cores, rows)
        ratio = verify.events_per_second / bound
        out.append(Target(f"chain validation (mimi verify, {verify.cores} cores) >= 3x the libsodium bound on the same "
                          f"{verify.cores} cores ({verify.cores} x B1)", ratio, 3.0, ratio >= 3.0,
                          f"{verify.events_per_second:,.0f} vs {bound:,.0f} events/s = {verify.cores} x "
                          f"{rows['B1'].events_per_second:,.0f}; by CPU time "
                          f"{cpu_ratio(verify, rows['B1']):.2f}x: the ratio with its cores free and fully used"))
        ratio = verify.events_per_second / mx.events_per_second
        out.append(Target("chain validation (mimi verify, 2 cores) >= 4x the Matrix-style pipeline", ratio, 4.0, ratio >= 4.0,
                          f"{verify.events_per_second:,.0f} vs {mx.events_per_second:,.0f} events/s (M1, receive)"))
        accept = rows.get("P8") or rows["P7"]
        ratio = accept.events_per_second / rows["M3"].events_per_second
        out.append(Target(f"hub accept ({accept.key}, policy, durable SQLite) >= 1.5x the Matrix-style accept", ratio, 1.5,
                          ratio >= 1.5, f"{accept.events_per_second:,.0f} vs {rows['M3'].events_per_second:,.0f} events/s"))
        rss = verify.extra.get("max_rss_mb", 0.0)
        events = verify.extra.get("events", 0)
        checked = events >= MEMORY_TARGET_EVENTS
        out.append(Target(f"mimi verify of a {MEMORY_TARGET_EVENTS:,}-event room: peak memory < {MEMORY_TARGET_MB:.0f} MB",
                          rss, MEMORY_TARGET_MB, (rss < MEMORY_TARGET_MB) if checked else None,
                          f"{rss:.0f} MB peak RSS on {events:,} events" + ("" if checked else " (not checked: room too small; full run)")))
        if "H2" in rows:
            batch, single, r = rows["H2"], rows["H1"], self._https
            ratio = batch.events_per_second / single.events_per_second
            # Not named "X >= N x Y": a quick run's few thousand events are mostly warm-up and
            # wait, so this ratio gets no CI floor (check_floors); the full run checks it.
            out.append(Target("HTTPS batch path end to end: at least 10x the single-transaction path", ratio, 10.0,
                              ratio >= 10.0,
                              f"{batch.events_per_second:,.0f} vs {single.events_per_second:,.0f} events/s"))
            out.append(Target("HTTPS end to end (batch path): at least 5,000 events/s", batch.events_per_second, 5000.0,
                              batch.events_per_second >= 5000, "accepted, durable, held by both followers", " events/s"))
            hub, ref = r["batch"].get("cpu_us_hub", 0.0), r["accept_many"]["cpu_us_per_event"]
            out.append(Target("HTTPS hub CPU per event: at most 2x accept_many in process (P8)", hub / ref, 2.0,
                              hub <= 2 * ref, f"{hub:.0f} vs {ref:.0f} µs per event"))
            follower = max(r["batch"].get("cpu_us_alpha", 0.0), r["batch"].get("cpu_us_beta", 0.0))
            out.append(Target("HTTPS follower CPU per event: at most 150 µs", follower, 150.0, follower <= 150,
                              "the busier of the two followers", " µs"))
            p99 = r["paced"]["p99_ms"]
            out.append(Target("HTTPS p99 submit latency at half the peak rate: under 100 ms", p99, 100.0, p99 < 100,
                              f"paced at {r['paced']['accepted_per_second']:,.0f} events/s", " ms"))
        return out


def accept_grouped(hub: w.HubWorkload, events: Sequence[bytes], group: int) -> None:
    """The server's submit path with group commit: decode, ``accept_many``, encode."""
    for start in range(0, len(events), group):
        items = [(m.LimitedEvent.decode(raw), w.ORIGIN) for raw in events[start : start + group]]
        for result in hub.hub.accept_many(items):
            if isinstance(result, BaseException):
                raise result
            result.encode()


def run_mimi_verify(path: Path, threads: int) -> Dict[str, Any]:
    """``mimi verify --json --threads N FILE`` as its own process, pinned to ``threads`` CPUs
    when the machine has more: wall time (interpreter start included), CPU time and peak RSS.

    Peak RSS is the child's ``VmHWM`` read at its exit: ``ru_maxrss`` from ``wait4`` would
    also count this (large) parent's memory, which the child shares between fork and exec."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = cpus[:threads] if len(cpus) > threads else []
    argv = ["mimi", "verify", "--json", "--threads", str(threads), str(path)]
    with tempfile.TemporaryDirectory() as tmp:
        hwm_path = os.path.join(tmp, "hwm")
        # Pin inside the child before anything starts threads (no preexec_fn: unsafe with threads).
        code = (
            "import atexit, os, runpy, sys\n"
            "def _hwm():\n"
            "    with open('/proc/self/status') as f:\n"
            "        kb = [l.split()[1] for l in f if l.startswith('VmHWM:')]\n"
            f"    with open({hwm_path!r}, 'w') as out:\n"
            "        out.write(kb[0] if kb else '')\n"
            "if os.path.exists('/proc/self/status'): atexit.register(_hwm)\n"
            f"cpus = {pinned!r}\n"
            "if cpus: os.sched_setaffinity(0, cpus)\n"
            f"sys.argv = {argv!r}\n"
            "runpy.run_module('mimi_signaling.cli', run_name='__main__', alter_sys=True)\n"
        )
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        hwm = Path(hwm_path).read_text().strip() if os.path.exists(hwm_path) else ""
    if proc.returncode != 0:
        raise RuntimeError(f"mimi verify failed ({proc.returncode}): {stdout[-2000:]} {stderr[-2000:]}")
    report = json.loads(stdout)
    return {
        "events": report["events_checked"],
        "wall": wall,
        "elapsed_in_process": report["elapsed"],
        "crypto_seconds": report["crypto_seconds"],
        "policy_seconds": report["policy_seconds"],
        "max_rss_mb": (int(hwm) if hwm else usage.ru_maxrss) / 1024.0,  # KiB on Linux
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "threads": threads,
    }


# --- profiles (--profile) ----------------------------------------------------------------------


def _profile(fn: Callable[[], Any], limit: int = 14) -> str:
    """cProfile of one call, the top functions by own time (Rust calls show as one line each)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    text = out.getvalue()
    start = text.find("   ncalls")
    return text[start:].rstrip() if start >= 0 else text.rstrip()


def profiles(comparison: Comparison) -> str:
    """Where the time goes, for the README: cProfile of the Python side of each path."""
    from mimi_signaling.roomfile import verify_room_file

    s = comparison.sizes
    parts = ["# Profiles", "", "cProfile, sorted by own time; a Rust call is one line (its time includes the "
             "work it does on other threads).", ""]

    report_holder: List[Any] = []
    room = w.room_file(comparison.workdir, min(comparison.sizes.room_events, PROFILE_EVENTS))
    text = _profile(lambda: report_holder.append(verify_room_file(room, threads=comparison.cores)))
    report = report_holder[0]
    parts += [f"## verify_room_file ({report.events_checked:,} events, {comparison.cores} threads, in-process)", "",
              f"elapsed {report.elapsed:.2f} s: reading + Rust chain validation {report.crypto_seconds:.2f} s "
              f"(in the helper thread, overlapping), policy pass {report.policy_seconds:.2f} s (main thread).", "",
              "```", text, "```", ""]

    directory = Path(tempfile.mkdtemp(prefix="hub-profile-", dir=comparison.workdir))
    hub = w.HubWorkload(directory, rooms=1)
    try:
        events = hub.limited_events(0, min(s.hub_grouped, 4096))
        if hasattr(hub.hub, "accept_many"):
            text = _profile(lambda: accept_grouped(hub, events, ACCEPT_GROUP))
            parts += [f"## hub accept_many ({len(events):,} events, groups of {ACCEPT_GROUP}, durable SQLite)", "",
                      "```", text, "```", ""]
        few = hub.limited_events(0, min(200, s.hub_sequential))
        text = _profile(lambda: hub.accept_sequential(few))
        parts += [f"## hub accept, one event per call ({len(few)} events, durable SQLite)", "", "```", text, "```", ""]
    finally:
        hub.close()
        shutil.rmtree(directory, ignore_errors=True)

    ms = matrix_style.MatrixStyle()
    _, full = ms.make_events(min(2000, s.matrix_events), payload=w.PAYLOAD, auth_count=4)
    text = _profile(lambda: [ms.receive(r) for r in full])
    parts += [f"## Matrix-style receive ({len(full):,} events)", "", "```", text, "```", ""]
    return "\n".join(parts)


# --- the report -------------------------------------------------------------------------------


def environment(cores: int) -> Dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in ("nacl", "cryptography", "canonicaljson", "signedjson"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            versions[name] = "missing"
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cores_used": cores,
        "python": platform.python_version(),
        "mimi_signaling": m.__version__,
        **versions,
    }


def cpu_ratio(row: Row, bound: Row) -> float:
    """``row`` against ``bound`` (a one-core row) by CPU time per event, as if the row had its
    cores to itself: on a shared machine the wall-clock ratio of a multi-core row falls with
    other work, the CPU time per event does not. Information only: the targets are wall clock."""
    return bound.extra["cpu_us_per_event"] / row.extra["cpu_us_per_event"]


def bound_on(cores: int, rows: Dict[str, Row]) -> float:
    """The per-signature bound on ``cores`` cores: the one-core libsodium figure (B1) of the
    same run times the cores, as if each core ran its own libsodium loop (the loop shares
    nothing, so it scales at best linearly): the denominator that uses the same cores as the
    figure it is compared with."""
    return rows["B1"].events_per_second * cores


def ratio_columns(row: Row, rows: Dict[str, Row]) -> Tuple[str, str]:
    ref = rows.get(row.reference)
    to_bound = f"{row.events_per_second / bound_on(row.cores, rows):.2f}x" if "B1" in rows else ""
    to_ref = f"{row.events_per_second / ref.events_per_second:.2f}x ({row.reference})" if ref else ""
    return to_bound, to_ref


def table_lines(rows: Dict[str, Row]) -> List[str]:
    header = ["", "what", "events/s", "cores", "CPU µs/event", "vs libsodium bound, same cores (B1 x cores)", "vs Matrix-style", "notes"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    titles = {"bound": "**1. per-signature bound**", "matrix": "**2. Matrix-style pipeline**", "mimi": "**3. this project**"}
    group = None
    for row in rows.values():
        if row.group != group:
            group = row.group
            lines.append(f"| | {titles[group]} | | | | | | |")
        to_bound, to_ref = ratio_columns(row, rows)
        cpu = row.extra.get("cpu_us_per_event")
        cpu_text = f"{cpu:.1f}" if cpu is not None else ""
        lines.append(f"| {row.key} | {row.label} | {row.events_per_second:,.0f} | {row.cores} | {cpu_text} | {to_bound} | "
                     f"{to_ref} | {row.notes} |")
    return lines


def series_lines(series: Dict[str, Dict[int, float]]) -> List[str]:
    sizes = sorted({b for values in series.values() for b in values})
    lines = ["| batch size | " + " | ".join(str(b) for b in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for name, values in series.items():
        lines.append(f"| {name} | " + " | ".join(f"{values.get(b, 0):,.0f}" for b in sizes) + " |")
    return lines


def print_table(rows: Dict[str, Row]) -> None:
    say("")
    say(f"{'':4} {'what':76} {'events/s':>11} {'cores':>5} {'CPU us/ev':>9} {'xB1*cores':>9} {'x Matrix':>13}")
    for row in rows.values():
        to_bound, to_ref = ratio_columns(row, rows)
        cpu = row.extra.get("cpu_us_per_event", 0.0)
        say(f"{row.key:4} {row.label[:76]:76} {row.events_per_second:11,.0f} {row.cores:5} {cpu:9.1f} {to_bound:>9} {to_ref:>13}")


def print_targets(targets: List[Target]) -> None:
    say("")
    for t in targets:
        verdict = "n/a " if t.passed is None else ("PASS" if t.passed else "FAIL")
        unit = t.unit or ("MB" if "memory" in t.name else "x")
        say(f"{verdict}  {t.name}: {t.measured:.2f}{unit} (target {t.required:g}{unit}) - {t.detail}")


def write_markdown(path: Path, comparison: Comparison, targets: List[Target], env: Dict[str, Any],
                   load: Tuple[Tuple[float, float, float], Tuple[float, float, float]], command: str) -> None:
    lines = [
        "# mimi-signaling: side-by-side comparison",
        "",
        f"`{command}` on {env['date']}: {env['cpu']}, {env['cpus']} CPUs ({env['cores_used']} used for the "
        f"multi-core figures), Python {env['python']}, mimi-signaling {env['mimi_signaling']}, "
        f"PyNaCl {env.get('nacl')} (its bundled libsodium), cryptography {env.get('cryptography')}, "
        f"canonicaljson {env.get('canonicaljson')}, signedjson {env.get('signedjson')}.",
        f"Load average (1/5/15 min) at the start {load[0][0]:.2f} / {load[0][1]:.2f} / {load[0][2]:.2f}, "
        f"at the end {load[1][0]:.2f} / {load[1][1]:.2f} / {load[1][2]:.2f}.",
        "",
        f"Every event carries a {w.PAYLOAD}-byte ciphertext: this project's `m.room.encrypted` events average "
        f"{comparison.facts.get('mimi_event_bytes')} bytes encoded, the equivalent Matrix-style JSON events "
        f"{comparison.facts.get('matrix_event_bytes')} bytes. Each figure is the best of "
        f"{comparison.sizes.repeats} rounds, taken in turn (the whole-process `mimi verify` of a large room: best of two runs). "
        "Rows B and M run on one core (a Python loop); the cores column says what the others used, and the "
        "libsodium ratio of each row divides by the bound on the same number of cores (B1 x cores). "
        "CPU µs/event is the process's CPU time (all threads) per event, from the run's least costly round: "
        "the work each path does, whatever the load.",
        "",
        *table_lines(comparison.rows),
        "",
        "Throughput by batch size (events/s; batch sizes 1 and 16 on the first "
        f"{comparison.sizes.small_batch_cap:,} events, the others on {len(comparison.blobs):,}):",
        "",
        *series_lines(comparison.series),
        "",
        "## Targets",
        "",
        "| target | measured | required | result |",
        "|---|---|---|---|",
    ]
    for t in targets:
        unit = t.unit or (" MB" if "memory" in t.name else "x")
        verdict = "not checked" if t.passed is None else ("PASS" if t.passed else "FAIL")
        lines.append(f"| {t.name} | {t.measured:.2f}{unit} ({t.detail}) | {t.required:g}{unit} | {verdict} |")
    lines += [
        "",
        f"Disk: {comparison.facts.get('fsync_per_second', 0):,.0f} durable commits/s at best (4 KiB overwrite + fsync) "
        "in the work directory: the bound of any accept that commits every event on its own.",
        "",
        "![throughput by batch size and by cores](compare.png)",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_chart(path: Path, comparison: Comparison) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = comparison.rows
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    for name, values in comparison.series.items():
        sizes = sorted(values)
        left.plot(sizes, [values[b] for b in sizes], marker="o", label=name)
    for key, style in (("B1", "--"), ("M1", ":")):
        if key in rows:
            left.axhline(rows[key].events_per_second, linestyle=style, color="grey",
                         label=f"{key}: {rows[key].label.split(':')[0]} (1 core)")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    left.set_xlabel("events per call (batch size)")
    left.set_ylabel("events/s")
    left.set_title("Validation throughput by batch size")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)

    names = list(comparison.core_bars)
    core_counts = sorted({c for bars in comparison.core_bars.values() for c in bars})
    width = 0.8 / max(1, len(core_counts))
    for i, cores in enumerate(core_counts):
        xs = [j + i * width for j in range(len(names))]
        ys = [comparison.core_bars[n].get(cores, 0) for n in names]
        bars = right.bar(xs, ys, width=width, label=f"{cores} core{'s' if cores > 1 else ''}")
        right.bar_label(bars, labels=[f"{y:,.0f}" for y in ys], fontsize=8)
    if "B1" in rows:
        bound = rows["B1"].events_per_second
        right.axhline(bound, linestyle="--", color="grey", label="B1 libsodium bound, 1 core")
        right.axhline(TARGET_CORES * bound, linestyle=":", color="grey",
                      label=f"libsodium bound, {TARGET_CORES} cores ({TARGET_CORES} x B1)")
        right.axhline(3 * TARGET_CORES * bound, linestyle="-.", color="red", label=f"target: 3 x {TARGET_CORES} x B1")
    right.set_xticks([j + width * (len(core_counts) - 1) / 2 for j in range(len(names))])
    right.set_xticklabels(names, fontsize=9)
    right.set_ylabel("events/s")
    right.set_title("Chain validation by number of cores")
    right.legend(fontsize=8)
    fig.suptitle(f"mimi-signaling, {w.PAYLOAD}-byte payloads")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (< 60 s), targets not meaningful")
    parser.add_argument("--events", type=int, help="events of the room file for mimi verify (default: 1,000,000; quick: 4,000)")
    parser.add_argument("--repeats", type=int, help="runs per figure, the best is kept (default 3; quick 2)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mimi-bench",
                        help="room files (kept and reused between runs) and hub databases (default: %(default)s)")
    parser.add_argument("--out", type=Path,
                        help="where compare.md, compare.png and compare.json go (default: benches/results; "
                             "with --quick: WORKDIR/results-quick, so a smoke run never overwrites the full results)")
    parser.add_argument("--profile", action="store_true", help="also write results/profile.md (cProfile of each path)")
    parser.add_argument("--floor", type=float, metavar="FRACTION",
                        help="fail (also with --quick) when a ratio target measured in this run falls below FRACTION "
                             "of its target (CI: 0.35, far enough below the targets for a small, noisy run)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON results (and the floors) to FILE")
    parser.add_argument("--cores", type=int, default=min(TARGET_CORES, os.cpu_count() or 1),
                        help="cores of the multi-core figures (default: 2, or fewer if the machine has fewer)")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    if args.events is not None or args.repeats is not None:
        sizes = Sizes(**{**sizes.__dict__, **({"room_events": args.events} if args.events else {}),
                         **({"repeats": args.repeats} if args.repeats else {})})
    if sizes.room_events < sizes.batch_events:
        sizes = Sizes(**{**sizes.__dict__, "batch_events": sizes.room_events})
    if args.out is None:
        args.out = args.workdir / "results-quick" if args.quick else HERE / "results"
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benches/compare.py" + (" --quick" if args.quick else "") + \
        (f" --events {args.events}" if args.events else "")

    load_start = os.getloadavg()
    env = environment(args.cores)
    say(f"mimi-signaling comparison ({'quick' if args.quick else 'full'} run) on {env['cpu']}, "
        f"{env['cpus']} CPUs; load average {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}")
    if load_start[0] > 0.5 * (os.cpu_count() or 1):
        say(f"WARNING: the machine is busy (load {load_start[0]:.2f}); figures will be low and noisy: re-run when quiet")
    started = time.perf_counter()
    comparison = Comparison(sizes, args.workdir, args.cores)
    comparison.prepare()
    comparison.bounds()
    comparison.matrix()
    comparison.single_api()
    comparison.batch_api()
    comparison.hub()
    comparison.run_rounds()
    comparison.mimi_verify()
    comparison.https(args.quick)
    comparison.build_rows()
    comparison.https_rows()
    targets = comparison.targets()
    load_end = os.getloadavg()

    print_table(comparison.rows)
    print_targets(targets)
    if args.quick:
        say("(a quick run: the sizes are too small for the targets to mean anything; run without --quick)")
    md = args.out / "compare.md"
    png = args.out / "compare.png"
    write_markdown(md, comparison, targets, env, (load_start, load_end), command)
    write_chart(png, comparison)
    floors = check_floors(targets, args.floor) if args.floor is not None else []
    document = json.dumps({
        "environment": env, "load": [load_start, load_end], "sizes": sizes.__dict__, "facts": comparison.facts,
        "rows": {k: {**r.__dict__} for k, r in comparison.rows.items()}, "series": comparison.series,
        "targets": [t.__dict__ for t in targets], "floors": floors,
    }, indent=2, default=str)
    (args.out / "compare.json").write_text(document, encoding="utf-8")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(document, encoding="utf-8")
        say(f"wrote {args.json}")
    if args.profile:
        say("profiling ...")
        (args.out / "profile.md").write_text(profiles(comparison) + "\n", encoding="utf-8")
        say(f"wrote {args.out / 'profile.md'}")
    say(f"\nload average at the end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}; "
        f"{time.perf_counter() - started:.0f} s in all")
    say(f"wrote {md}, {png} and compare.json")
    failed = [t for t in targets if t.passed is False]
    below_floor = [f for f in floors if not f["passed"]]
    return 1 if (failed and not args.quick) or below_floor else 0


def check_floors(targets: Sequence[Target], fraction: float) -> List[Dict[str, Any]]:
    """The ratio targets ("X >= N x Y", both measured in this run) against ``fraction`` of
    their target: a regression shows as a ratio far below it, whatever the machine's speed
    and load (both sides slow down alike).  Printed, and returned for the JSON."""
    out = []
    for t in targets:
        if " >= " not in t.name:
            continue  # not a ratio (the memory target is checked by the full run)
        floor = t.required * fraction
        passed = t.measured >= floor
        out.append({"name": t.name, "measured": round(t.measured, 3), "target": t.required, "floor": round(floor, 3),
                    "passed": passed})
        say(f"{'ok   ' if passed else 'BELOW'} floor {floor:.2f}x ({fraction:g} of {t.required:g}x): "
            f"{t.measured:.2f}x  {t.name}")
    return out


if __name__ == "__main__":
    sys.exit(main())
