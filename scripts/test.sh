#!/usr/bin/env bash
# Install into a fresh virtualenv and run the whole test suite: the README's test command.
# PostgreSQL tests use $MIMI_TEST_PG_URL when set, else start a throwaway server themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
pip install --quiet --upgrade pip
pip install --quiet '.[test]'
python -m pytest -q -p no:cacheprovider "$@"
