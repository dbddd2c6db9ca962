"""Where a process's CPU goes, by kind of work: ``perf record --call-graph dwarf`` samples put
in the first category their stack matches (SQLite, Ed25519 signing, verification, the Python
interpreter, ...).  Native frames only (CPython 3.11 has no perf trampoline), which is what
tells the protocol's own work (Rust, SQLite) from the interpreter and the kernel.

    python benches/perfcat.py perf.data [perf.data ...]   # a table of shares per file

``https_e2e.py --perf`` records each server process and reports these shares as µs/event.
Needs Linux ``perf`` (Debian's ``linux-perf``); the software clock event works in containers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

Stack = List[str]  # leaf first, each "symbol (object)"


def _any(pattern: str, depth: Optional[int] = None) -> Callable[[Stack], bool]:
    rx = re.compile(pattern)
    return lambda stack: any(rx.search(frame) for frame in stack[:depth])


#: First match wins, so the order matters: rayon's idle spinning before anything it runs.
CATEGORIES: List[Tuple[str, Callable[[Stack], bool]]] = [
    ("rayon idle spin", _any(r"sched_yield", 12)),
    ("Ed25519 signing", _any(r"sign_event|sign_with_label")),
    ("signature verification", _any(r"zebra|verif|decompress|pippenger|straus")),
    ("SHA-2", _any(r"sha2::", 3)),
    ("SQLite (incl. its I/O)", _any(r"libsqlite3|_sqlite3\.", 25)),
    ("TLS", _any(r"libssl|libcrypto|_ssl\.", 25)),
    ("page faults", _any(r"clear_page|page_fault", 6)),
    ("GC", _any(r"gc_collect")),
    ("scheduling, futexes", _any(r"futex|finish_task_switch|schedule", 10)),
    ("socket I/O", _any(r"sock_send|sock_recv|sock_call", 30)),
    ("Rust, other", lambda s: bool(s) and "_core.abi3" in s[0]),
    ("Python interpreter", lambda s: bool(s) and ("libpython" in s[0] or "pymalloc" in s[0])),
]
OTHER = "rest (kernel, libc, allocator)"
NAMES = [name for name, _ in CATEGORIES] + [OTHER]


def stacks(script: str) -> Iterator[Stack]:
    """The samples of ``perf script`` output."""
    stack: Optional[Stack] = None
    for line in script.splitlines():
        if not line.strip():
            if stack is not None:
                yield stack
            stack = None
        elif not line[0].isspace():
            stack = []
        elif stack is not None:
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                stack.append(re.sub(r"\+0x[0-9a-f]+", "", parts[1]))
    if stack is not None:
        yield stack


def shares(script: str) -> Dict[str, float]:
    """Fraction of the samples per category (``NAMES``); empty when there are none."""
    counts = dict.fromkeys(NAMES, 0)
    total = 0
    for stack in stacks(script):
        total += 1
        counts[next((name for name, match in CATEGORIES if match(stack)), OTHER)] += 1
    return {name: n / total for name, n in counts.items()} if total else {}


def perf_script(data: Path) -> str:
    return subprocess.run(["perf", "script", "-i", str(data)], capture_output=True, text=True, check=True).stdout


def record_command(pid: int, output: Path) -> List[str]:
    """``perf record`` of one process until SIGINT (dwarf unwinding: Rust and SQLite have no
    frame pointers)."""
    return ["perf", "record", "-q", "-F", "299", "--call-graph", "dwarf,16384", "-p", str(pid), "-o", str(output)]


def markdown(rows: Dict[str, Dict[str, float]], scale: Dict[str, float], unit: str) -> List[str]:
    """A table, one row per process: each category's share times ``scale[process]``."""
    lines = [f"| process ({unit}) | " + " | ".join(NAMES) + " |", "|---|" + "---:|" * len(NAMES)]
    for process, share in rows.items():
        if share:
            cells = [f"{share[name] * scale.get(process, 100.0):.1f}" for name in NAMES]
            lines.append(f"| {process} ({scale.get(process, 100.0):.0f}) | " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    missing = [path for path in argv if not Path(path).is_file()]
    if missing:
        print(f"perfcat: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows = {Path(path).name: shares(perf_script(Path(path))) for path in argv}
    print("\n".join(markdown(rows, {}, "% of samples")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
