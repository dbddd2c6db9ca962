"""Federation over HTTPS, end to end: a hub and two followers as real ``mimi serve`` processes
on 127.0.0.1 with mutual TLS and SQLite, the users of both followers submitting to the hub;
the single-transaction path and the batch path (``mimi.signaling.batch``) side by side in
one run, with the hub's in-process ``accept_many`` figure of the same run for reference.

    python benches/https_e2e.py            # 100,000 events on the batch path (~1-2 minutes)
    python benches/https_e2e.py --quick    # a smoke run (a few seconds; targets not meaningful)
    python benches/https_e2e.py --profile  # also sample each server process (py-spy)
    python benches/https_e2e.py --perf     # and where each process's CPU goes (Linux perf)

The single-transaction path is that of servers that do not batch (``http.batches = false``):
one HTTPS request per event and destination, submits and deliveries alike, on a cluster of
its own; the 10x target is checked against it.  Single submits to servers that batch their
fan-out are reported too (a row and a ratio that is not a target).

Reported per path: accepted events/s while submitting, p50/p99 submit latency (an event's
latency is its request's: sent -> answered, so after the hub's commit), the time after the
last answer until both followers hold the last event, the end-to-end rate (events / (submit
time + that wait): accepted, durable and held by both followers), and the CPU microseconds
per event of each process (Linux /proc, over the submit loop and the wait).  The targets of
issue 12 are checked and printed PASS/FAIL; ``results/https_e2e.md`` and ``.json`` keep the
run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import perfcat  # noqa: E402
import workloads as w  # noqa: E402

#: Events per batch request (the fan-out sends 256 too) and batches in flight per sender.
BATCH = 256
IN_FLIGHT = 2
#: Submits per batch in the paced run at half the peak: a client sending at a steady rate
#: batches what it has queued, fewer events than when it floods the hub (docs in README).
PACED_BATCH = 32
#: Submits in flight on the single-transaction path (as bench_https.py's concurrency 8).
SINGLE_IN_FLIGHT = 8
#: In-process reference: hub accept_many over this many events, groups of 256.
ACCEPT_EVENTS = 16_384
ACCEPT_GROUP = 256


def say(text: str) -> None:
    print(text, flush=True)


def accept_many_reference(workdir: Path, events: int) -> Dict[str, float]:
    """The hub's in-process group accept (policy, durable SQLite): events/s and CPU us/event
    of this process (all threads), as compare.py's P8 row measures it."""
    from compare import accept_grouped

    hub = w.HubWorkload(Path(tempfile.mkdtemp(prefix="accept-", dir=workdir)), rooms=1)
    try:
        batch = hub.limited_events(0, events)
        started, cpu = time.perf_counter(), time.process_time()
        accept_grouped(hub, batch, ACCEPT_GROUP)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        hub.close()
    return {"events": events, "events_per_second": events / wall, "cpu_us_per_event": cpu / events * 1e6}


def summary(stats: w.SubmitStats) -> Dict[str, Any]:
    total = stats.elapsed + stats.converge_seconds
    out: Dict[str, Any] = {
        "events": stats.submits,
        "accepted_per_second": round(stats.events_per_second, 1),
        "end_to_end_per_second": round(stats.submits / total, 1) if total > 0 else 0.0,
        "p50_ms": round(stats.percentile(50) * 1000, 2),
        "p99_ms": round(stats.percentile(99) * 1000, 2),
        "submit_seconds": round(stats.elapsed, 3),
        "converge_seconds": round(stats.converge_seconds, 3),
    }
    for name, ms in stats.cpu_ms_per_event.items():
        out[f"cpu_us_{name}"] = round(ms * 1000, 1)
    return out


class _Sampler:
    """A sampling profiler attached to each server process while a path runs: ``command``
    makes the recording, ``summary`` reads it after the profiler is stopped with SIGINT
    (which makes it write what it has)."""

    prefix, extension = "", ""  # the recording's file name: PREFIX-LABEL-SERVER.EXTENSION
    wait_seconds = 30.0

    def __init__(self, cluster: w.HttpsCluster, out: Path) -> None:
        self.cluster, self.out, self.procs = cluster, out, []  # type: ignore[var-annotated]

    def command(self, pid: int, path: Path) -> List[str]:
        raise NotImplementedError

    def summary(self, path: Path) -> Any:
        raise NotImplementedError

    def start(self, label: str) -> None:
        self.procs = []
        for name, server in self.cluster.cluster.servers.items():
            path = self.out / f"{self.prefix}-{label}-{name.split('.')[0]}.{self.extension}"
            cmd = self.command(server.proc.pid, path)
            self.procs.append((name, path, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))

    def stop(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for name, path, proc in self.procs:
            proc.send_signal(2)
            try:
                proc.wait(self.wait_seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
            out[name] = self.summary(path)
        return out


class Profiler(_Sampler):
    """``py-spy record`` (raw collapsed stacks), summarised as the functions with the most
    samples (self and total)."""

    prefix, extension = "pyspy", "txt"

    def command(self, pid: int, path: Path) -> List[str]:
        return ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                "--nonblocking", "--gil", "--output", str(path)]

    def summary(self, path: Path) -> List[Tuple[str, float, float]]:
        return top_functions(path)


class PerfProfiler(_Sampler):
    """``perf record``, summarised by kind of work (``perfcat.py``), as µs of that process's
    CPU per event."""

    prefix, extension = "perf", "data"
    wait_seconds = 60.0

    def command(self, pid: int, path: Path) -> List[str]:
        return perfcat.record_command(pid, path)

    def summary(self, path: Path) -> Dict[str, float]:
        return perfcat.shares(perfcat.perf_script(path)) if path.exists() else {}


def top_functions(path: Path, limit: int = 12) -> List[Tuple[str, float, float]]:
    """(function, self %, total %) from py-spy's raw output (``frame;frame;... count``)."""
    if not path.exists():
        return []
    self_count: Dict[str, int] = {}
    total_count: Dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1] if " (" in f else f for f in stack.split(";")]
        for frame in set(frames):
            total_count[frame] = total_count.get(frame, 0) + n
        self_count[frames[-1]] = self_count.get(frames[-1], 0) + n
    if not samples:
        return []
    ranked = sorted(self_count, key=lambda f: self_count[f], reverse=True)[:limit]
    return [(f, 100.0 * self_count[f] / samples, 100.0 * total_count[f] / samples) for f in ranked]


def targets(single: Dict[str, Any], batch: Dict[str, Any], paced: Dict[str, Any],
            accept: Dict[str, float]) -> List[Tuple[str, str, Optional[bool]]]:
    e2e, e2e_single = batch["end_to_end_per_second"], single["end_to_end_per_second"]
    hub_cpu, ref_cpu = batch.get("cpu_us_hub", 0.0), accept["cpu_us_per_event"]
    followers = [batch.get("cpu_us_alpha", 0.0), batch.get("cpu_us_beta", 0.0)]
    return [
        ("end to end >= 5,000 events/s (accepted, durable, held by both followers)",
         f"{e2e:,.0f} events/s", e2e >= 5000),
        ("end to end >= 10x the single-transaction path of the same run",
         f"{e2e / e2e_single:.1f}x ({e2e:,.0f} vs {e2e_single:,.0f})" if e2e_single else "n/a",
         e2e >= 10 * e2e_single if e2e_single else None),
        ("hub CPU per event <= 2x accept_many in process (same run)",
         f"{hub_cpu:.0f} us vs {ref_cpu:.0f} us ({hub_cpu / ref_cpu:.2f}x)", hub_cpu <= 2 * ref_cpu),
        ("follower CPU per event <= 150 us", f"{max(followers):.0f} us (alpha {followers[0]:.0f}, beta {followers[1]:.0f})",
         max(followers) <= 150),
        ("p99 submit latency < 100 ms at half the peak rate",
         f"{paced['p99_ms']:.1f} ms at {paced['accepted_per_second']:,.0f} events/s", paced["p99_ms"] < 100),
    ]


def mixed_ratio(results: Dict[str, Any]) -> str:
    """The batch path against single submits whose fan-out is batched (what a submitter that
    does not batch gets from servers that do): shown beside the target, not instead of it."""
    e2e, mixed = results["batch"]["end_to_end_per_second"], results["single_submits"]["end_to_end_per_second"]
    return (f"end to end vs single submits with batched deliveries: {e2e / mixed:.1f}x ({e2e:,.0f} vs {mixed:,.0f})"
            if mixed else "n/a")


def table(rows: Dict[str, Dict[str, Any]]) -> List[str]:
    cols = [("end_to_end_per_second", "end to end events/s"), ("accepted_per_second", "accepted events/s"),
            ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("converge_seconds", "followers +s"),
            ("cpu_us_hub", "hub us/ev"), ("cpu_us_alpha", "alpha us/ev"), ("cpu_us_beta", "beta us/ev"),
            ("cpu_us_client", "load gen us/ev")]
    lines = ["| path | events | " + " | ".join(label for _, label in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    for label, row in rows.items():
        cells = []
        for key, _ in cols:
            value = row.get(key)
            cells.append("" if value is None else (f"{value:,.0f}" if isinstance(value, float) and value >= 100 else f"{value}"))
        lines.append(f"| {label} | {row['events']:,} | " + " | ".join(cells) + " |")
    return lines


def measure(events: int, single_events: int, *, batch_size: int = BATCH, paced_batch: int = PACED_BATCH,
            accept_events: int = ACCEPT_EVENTS,
            accept: Optional[Dict[str, float]] = None, profile: bool = False, perf: bool = False) -> Dict[str, Any]:
    """The single-transaction path on a cluster that does not batch; single submits with
    batched deliveries, the batch path and the paced run on one cluster; then (unless
    ``accept`` is given: compare.py passes its own figure of the same run) the in-process
    ``accept_many`` reference; the results and the targets checked."""
    workdir = Path(tempfile.mkdtemp(prefix="mimi-https-e2e-"))
    results: Dict[str, Any] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                               "load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    profiles: Dict[str, Dict[str, List[Tuple[str, float, float]]]] = {}
    # The single-transaction path: servers that do not batch (http.batches = false), so one
    # HTTPS request per event and destination, submits and deliveries alike (issue 12's
    # baseline).  A cluster of its own: the setting is read when a server starts.
    say(f"single-transaction path: a cluster that does not batch (http.batches = false); {single_events:,} "
        f"single submits, {SINGLE_IN_FLIGHT} in flight; single deliveries")
    single_cluster = w.HttpsCluster(workdir / "single", batches=False)
    single_cluster.start()
    try:
        single_profiler = Profiler(single_cluster, workdir) if profile else None
        single_input = single_cluster.limited_events(single_events + 10)
        if single_profiler:
            single_profiler.start("single")
        single = summary(single_cluster.submit(single_input, concurrency=SINGLE_IN_FLIGHT, warmup=10))
        if single_profiler:
            profiles["single"] = single_profiler.stop()
        fanout = single_cluster.cluster[w.CLUSTER_HUB].call("status")["delivery"]
        if fanout["batches"] or fanout["delivered"] < single_events:  # what this row claims to measure
            raise RuntimeError(f"the single-transaction path's fan-out was not single deliveries: {fanout}")
        say(f"  {single}")
    finally:
        single_cluster.stop()

    say(f"cluster in {workdir}: hub + 2 followers (mimi serve, mutual TLS, SQLite)")
    cluster = w.HttpsCluster(workdir / "cluster")
    cluster.start()
    profiler = Profiler(cluster, workdir) if profile else None  # raw samples: summarised, then removed
    perf_profiler = PerfProfiler(cluster, workdir) if perf else None
    perf_shares: Dict[str, Dict[str, Dict[str, float]]] = {}
    try:
        say(f"single submits, batched deliveries: {single_events:,} submits, {SINGLE_IN_FLIGHT} in flight")
        single_submits = summary(cluster.submit(cluster.limited_events(single_events + 10),
                                                concurrency=SINGLE_IN_FLIGHT, warmup=10))
        say(f"  {single_submits}")

        half = events // 2
        say(f"batch path: {events:,} submits from both followers' users, batches of {batch_size}, "
            f"{IN_FLIGHT} in flight per sender")
        alpha, beta = cluster.limited_events(half + batch_size), cluster.limited_events(half + batch_size, beta=True)
        fanout_before = cluster.cluster[w.CLUSTER_HUB].call("status")["delivery"]
        if profiler:
            profiler.start("batch")
        if perf_profiler:
            perf_profiler.start("batch")
        batch = summary(cluster.submit_batches(alpha, beta, batch=batch_size, in_flight=IN_FLIGHT))
        if profiler:
            profiles["batch"] = profiler.stop()
        if perf_profiler:
            perf_shares["batch"] = perf_profiler.stop()
        fanout = cluster.cluster[w.CLUSTER_HUB].call("status")["delivery"]
        requests = fanout["batches"] - fanout_before["batches"]
        batch["fanout_events_per_request"] = round(
            (fanout["delivered"] - fanout_before["delivered"]) / requests, 1) if requests else 0.0
        say(f"  {batch}")

        rate = batch["accepted_per_second"] / 2
        paced_count = max(2 * paced_batch, events // 5) // 2
        say(f"batch path paced at half that peak ({rate:,.0f} events/s): {2 * paced_count:,} submits, "
            f"batches of {paced_batch}")
        alpha = cluster.limited_events(paced_count + paced_batch)
        beta = cluster.limited_events(paced_count + paced_batch, beta=True)
        paced = summary(cluster.submit_batches(alpha, beta, batch=paced_batch, in_flight=IN_FLIGHT, rate=rate))
        say(f"  {paced}")
    finally:
        cluster.stop()

    if accept is None:
        say(f"in-process reference: hub accept_many over {accept_events:,} events, groups of {ACCEPT_GROUP}")
        accept = accept_many_reference(workdir, accept_events)
        say(f"  {accept}")
    shutil.rmtree(workdir, ignore_errors=True)
    checked = targets(single, batch, paced, accept)
    results.update({"single": single, "single_submits": single_submits, "batch": batch, "paced": paced,
                    "accept_many": accept, "batch_size": batch_size, "paced_batch": paced_batch,
                    "targets": [{"target": t, "measured": m, "passed": p} for t, m, p in checked],
                    "profiles": profiles, "perf": perf_shares, "load_after": os.getloadavg()[0]})
    return results


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results = measure(args.events, args.single, batch_size=args.batch, paced_batch=args.paced_batch,
                      accept_events=args.accept,
                      profile=args.profile, perf=args.perf)
    results["command"] = " ".join(["python benches/https_e2e.py", *sys.argv[1:]])
    rows = {"single transactions (submits and deliveries)": results["single"],
            "single submits, batched deliveries": results["single_submits"],
            f"batches of {args.batch}": results["batch"],
            f"batches of {args.paced_batch}, paced at half the peak": results["paced"]}
    lines = table(rows)
    accept = results["accept_many"]
    say("\n" + "\n".join(lines))
    say(f"\nin process: hub accept_many {accept['events_per_second']:,.0f} events/s, "
        f"{accept['cpu_us_per_event']:.0f} us CPU per event")
    for lines_of_perf in perf_tables(results):
        say("\n" + "\n".join(lines_of_perf))
    for t in results["targets"]:
        verdict = "PASS" if t["passed"] else ("FAIL" if t["passed"] is not None else "n/a")
        say(f"  [{verdict}] {t['target']}: {t['measured']}")
    say(f"  (not a target) {mixed_ratio(results)}")
    if not args.quick:
        write_markdown(out / "https_e2e.md", results, lines)
        (out / "https_e2e.json").write_text(json.dumps(results, indent=2) + "\n")
        say(f"\nwritten: {out / 'https_e2e.md'}, {out / 'https_e2e.json'}")
    return 0 if args.quick or all(t["passed"] for t in results["targets"] if t["passed"] is not None) else 1


def perf_tables(results: Dict[str, Any]) -> List[List[str]]:
    """The ``--perf`` shares of each path as µs of each process's CPU per event."""
    tables = []
    for label, per_process in results.get("perf", {}).items():
        row = results[label]
        scale = {name: row.get(f"cpu_us_{name.split('.')[0]}", 0.0) for name in per_process}
        tables.append(perfcat.markdown(per_process, scale, "µs/event"))
    return tables


def write_markdown(path: Path, results: Dict[str, Any], lines: List[str]) -> None:
    md = [f"# HTTPS end to end ({results['date']})", "", f"`{results['command']}` on {results['cpus']} CPUs, "
          f"load average {results['load_before']:.2f} before and {results['load_after']:.2f} after "
          "(the machine is shared).", "", *lines, "",
          f"In process, the same run: hub `accept_many` {results['accept_many']['events_per_second']:,.0f} events/s, "
          f"{results['accept_many']['cpu_us_per_event']:.0f} us CPU per event.", "", "| target | measured | |", "|---|---|---|"]
    for t in results["targets"]:
        md.append(f"| {t['target']} | {t['measured']} | {'PASS' if t['passed'] else 'FAIL'} |")
    md += ["", f"Not a target: {mixed_ratio(results)}."]
    for perf_lines in perf_tables(results):
        md += ["", "## Where the CPU goes, batch path (perf, µs per event by kind of work)", "", *perf_lines]
    for label, per_process in results["profiles"].items():
        md += ["", f"## Profile, {label} path (py-spy, % of samples)"]
        for name, top in per_process.items():
            md += ["", f"{name}:", "", "| function | self % | total % |", "|---|---:|---:|"]
            md += [f"| `{f}` | {s:.1f} | {t:.1f} |" for f, s, t in top]
    path.write_text("\n".join(md) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, targets not meaningful")
    parser.add_argument("--events", type=int, help="submits on the batch path (default 100,000; quick 4,096)")
    parser.add_argument("--single", type=int, help="submits on the single path (default 2,000; quick 200)")
    parser.add_argument("--accept", type=int, help=f"events of the in-process accept_many figure (default {ACCEPT_EVENTS:,})")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"submits per batch request (default {BATCH})")
    parser.add_argument("--paced-batch", type=int, default=PACED_BATCH,
                        help=f"submits per batch in the run paced at half the peak (default {PACED_BATCH})")
    parser.add_argument("--profile", action="store_true", help="sample every server process with py-spy")
    parser.add_argument("--perf", action="store_true",
                        help="record every server process with Linux perf on the batch path (perfcat.py)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where the results go (full runs only)")
    args = parser.parse_args(argv)
    args.events = args.events or (4_096 if args.quick else 100_000)
    args.single = args.single or (200 if args.quick else 2_000)
    args.accept = args.accept or (2_048 if args.quick else ACCEPT_EVENTS)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
