#!/usr/bin/env bash
# Fuzz smoke test: build every cargo-fuzz target of fuzz/ and run each for a bounded time.
# Exits non-zero when a target crashes, panics (a broken invariant), times out on one input,
# runs out of memory, or when the build fails.
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_JOBS      targets run at the same time (default 2: this project's machines have 2 cores)
#   FUZZ_TARGETS   space-separated subset of targets (default: all of `cargo fuzz list`)
#   FUZZ_RUNS      also stop a target after this many executions (default: time only)
#   FUZZ_WORKDIR   where the growing corpora and logs go (default: a fresh temporary folder)
#   MIMI_FUZZ_KNOWN  comma-separated tags of reported, unfixed findings to step over (F1,F2);
#                  for long campaigns only, never in CI (docs/FUZZING.md, "Findings")
#
# Works on stable Rust: cargo-fuzz needs `-Zsanitizer=address`, which stable rustc accepts
# with RUSTC_BOOTSTRAP=1 (the standard workaround). Installs cargo-fuzz (pinned) if missing.
# The checked-in seeds (fuzz/corpus/<target>/) are only read, never written.
set -euo pipefail

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
FUZZ_JOBS="${FUZZ_JOBS:-2}"
CARGO_FUZZ_VERSION="0.13.2"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1

log() { printf '[fuzz-smoke] %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
# libfuzzer-sys compiles libFuzzer (C++).
if ! command -v c++ >/dev/null 2>&1; then
    log "installing a C++ compiler for libFuzzer"
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq g++ >/dev/null
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq g++ >/dev/null
    fi
fi

if [ -n "${MIMI_FUZZ_KNOWN:-}" ]; then
    log "WARNING: stepping over known findings $MIMI_FUZZ_KNOWN (MIMI_FUZZ_KNOWN); not for CI"
    export MIMI_FUZZ_KNOWN
fi
extra=()
if [ -n "${FUZZ_RUNS:-}" ]; then
    extra+=("-runs=$FUZZ_RUNS")
fi

cd "$FUZZ_DIR"
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi
log "building ${#targets[@]} targets: ${targets[*]}"
start=$SECONDS
cargo fuzz build
log "build took $((SECONDS - start)) s"

host="$(rustc -vV | sed -n 's/^host: //p')"
bindir="$FUZZ_DIR/target/$host/release"
work="${FUZZ_WORKDIR:-$(mktemp -d -t mimi-fuzz.XXXXXX)}"
mkdir -p "$work" "$FUZZ_DIR/artifacts"

run_target() {
    local t="$1"
    set +e
    mkdir -p "$work/$t" "$FUZZ_DIR/artifacts/$t"
    # First corpus folder is written to (new inputs), the seeds folder only read.
    "$bindir/$t" "$work/$t" "$FUZZ_DIR/corpus/$t" \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -dict="$FUZZ_DIR/mimi.dict" -print_final_stats=1 "${extra[@]}" \
        -artifact_prefix="$FUZZ_DIR/artifacts/$t/" >"$work/$t.log" 2>&1
    echo $? >"$work/$t.rc"
}

failed=()
start=$SECONDS
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$FUZZ_JOBS" ]; do
        wait -n || true
    done
    log "running $t for ${FUZZ_SECONDS} s${FUZZ_RUNS:+ or $FUZZ_RUNS runs}"
    run_target "$t" &
done
wait

for t in "${targets[@]}"; do
    if [ "$(cat "$work/$t.rc" 2>/dev/null)" = 0 ]; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)" || true
        cov="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$t.log" | tail -1 | sed -E 's/.*(cov: [0-9]+ ft: [0-9]+).*/\1/')" || true
        log "ok      $t: ${runs:-?} runs, ${cov:-?}"
    else
        failed+=("$t")
        log "FAILED  $t (log: $work/$t.log)"
        grep -E "panicked at|^SUMMARY|Test unit written|ERROR: libFuzzer" -A2 "$work/$t.log" | head -20 || true
    fi
done
log "fuzzing took $((SECONDS - start)) s; logs and grown corpora in $work"

if [ "${#failed[@]}" -gt 0 ]; then
    log "${#failed[@]} of ${#targets[@]} targets failed: ${failed[*]}"
    log "reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET artifacts/TARGET/crash-...)"
    exit 1
fi
log "all ${#targets[@]} targets ran clean"
