#!/usr/bin/env bash
# The README's test command: install into a fresh virtualenv and run the whole test suite.
# PostgreSQL: uses $MIMI_TEST_PG_URL when set; otherwise (as root) installs Debian's package if
# needed and starts a throwaway server on 127.0.0.1 for the run (.ci/postgres.sh).
# Chromium (headless, for the status page and `mimi inspect --html` tests): as root, Debian's
# package is installed when missing.  Screenshots go to tmp/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "test.sh: installing chromium (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2
fi
if [ -z "${MIMI_TEST_PG_URL:-}" ] && [ "$(id -u)" -eq 0 ]; then
    MIMI_TEST_PG_URL="$(bash .ci/postgres.sh)"
    export MIMI_TEST_PG_URL
    trap 'bash .ci/postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi
python3 -m venv .venv
. .venv/bin/activate
pip install --quiet --upgrade pip
pip install --quiet '.[test]'
# Lint and types first (configured in pyproject.toml): cheap, and they name the line.
ruff check
mypy
python -m pytest -q -p no:cacheprovider "$@"
