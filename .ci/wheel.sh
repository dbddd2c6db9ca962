#!/usr/bin/env bash
# Build the wheel users install without Rust (manylinux, abi3) and the sdist, then install the
# wheel into a fresh virtualenv with no cargo/rustc on PATH and run `mimi demo` and a smoke
# test from it, outside the source tree.
#
#   bash .ci/wheel.sh            # uses .venv (made by scripts/test.sh) for maturin
#
# The manylinux tag is the oldest this machine's glibc allows (maturin's auditwheel checks
# fail the build on anything newer; Debian 12 links GLIBC_2.34 symbols, hence 2_34).  The
# wheel is built the way `pip install .` builds (maturin's PEP 517 backend, the tag passed in
# MATURIN_PEP517_ARGS), so the release build in ./target from the test step is reused (a
# direct `maturin build` fingerprints differently and compiles everything again).
set -euo pipefail
cd "$(dirname "$0")/.."
MANYLINUX="${MIMI_MANYLINUX:-manylinux_2_34}"
WHEEL_VENV="${MIMI_WHEEL_VENV:-/tmp/mimi-wheel-venv}"
log() { echo "wheel.sh: $*" >&2; }

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install --quiet 'maturin>=1.5,<2' auditwheel
rm -rf dist
MATURIN_PEP517_ARGS="--compatibility $MANYLINUX" .venv/bin/pip wheel --quiet --no-deps -w dist .
.venv/bin/maturin sdist --out dist 2>&1 | grep -E "Built|error" >&2
wheel="$(ls dist/*.whl)"
case "$wheel" in
    *-cp39-abi3-"$MANYLINUX"_x86_64.whl) ;;
    *) log "unexpected wheel name: $wheel"; exit 1 ;;
esac
report="$(.venv/bin/auditwheel show "$wheel")"
case "$report" in
    *"is consistent"*"platform tag: \"${MANYLINUX}_x86_64\""*) ;;
    *) echo "$report" >&2; log "auditwheel does not confirm $MANYLINUX"; exit 1 ;;
esac
ls -l dist >&2

# A PATH without any directory holding cargo or rustc: the wheel must not need them.
clean_path=""
IFS=: read -r -a dirs <<< "$PATH"
for d in "${dirs[@]}"; do
    [ -n "$d" ] || continue
    if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [[ "$d" == *"/.venv/"* ]]; then continue; fi
    clean_path="${clean_path:+$clean_path:}$d"
done
rm -rf "$WHEEL_VENV"
python3 -m venv "$WHEEL_VENV"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(
    cd "$work"  # not the source tree: the package must come from the wheel
    export PATH="$WHEEL_VENV/bin:$clean_path"
    if command -v cargo >/dev/null 2>&1 || command -v rustc >/dev/null 2>&1; then
        log "cargo or rustc still on PATH"; exit 1
    fi
    pip install --quiet --upgrade pip
    pip install --quiet --only-binary mimi-signaling "$OLDPWD/$wheel"
    python - <<'PY'
import mimi_signaling as m, mimi_signaling._core as core, pathlib
assert "site-packages" in core.__file__, core.__file__
key = m.SigningKey.generate("ed25519:hub1")
ring = m.KeyRing().with_key("hub.example", key.verify_key())
create = m.LimitedEvent.create("!r1:hub.example", "m.room.create", "", "@ana:hub.example",
                               m.CreateContent("m.0", "org.mimi.plaintext").encode(), key)
event = create.to_event(auth_events=[], prev_event="", hub_key=key)
again = m.Event.decode(event.encode()); again.verify(ring)
assert again.event_id == event.event_id
print("wheel smoke: sign, encode, decode, verify OK from", pathlib.Path(core.__file__).name)
PY
    mimi demo --export room.mimiroom
    mimi verify room.mimiroom
    mimi generate-room big.mimiroom --events 2000 --seed 1 >/dev/null
    mimi verify big.mimiroom
    mimi inspect big.mimiroom --html big.html >/dev/null
    # In a pipe whose reader leaves early: quiet, and the status of a process stopped by SIGPIPE.
    set +o pipefail
    mimi inspect big.mimiroom 2>err.txt | head -n 3
    status="${PIPESTATUS[0]}"
    set -o pipefail
    if [ "$status" != 141 ] || [ -s err.txt ]; then log "mimi inspect | head: status $status"; cat err.txt >&2; exit 1; fi
)
log "the wheel installs and runs without Rust: $wheel"
