"""Issue 2's figure: N events decoded, hashed, IDed and both signatures verified in ONE call.

    mimi generate-room /tmp/r100k.room --events 100000 --seed 1
    /usr/bin/time -v python benches/batch_100k.py /tmp/r100k.room
"""

from __future__ import annotations

import sys
import time

import mimi_signaling as m


def main(path: str) -> int:
    reader = m.RoomFileReader(path)
    ring = m.KeyRing()
    for keys in reader.server_keys:
        ring = ring.with_server_keys(keys)
    blobs = reader.read_events(10_000_000)
    start = time.perf_counter()
    result = m.check_events(blobs, ring)
    elapsed = time.perf_counter() - start
    print(f"{len(blobs)} events decoded, hashed, IDed and both signatures verified in one call: "
          f"{elapsed:.2f} s ({len(blobs) / elapsed:,.0f} events/s), failures={len(result.failures)}")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/r100k.room"))
