#!/usr/bin/env bash
# scripts/run.sh [anvil options] — installs what is missing, builds, and runs the server:
# http://127.0.0.1:8080, database in ./anvil-data, durability fsync, dev mode (any token).
# Options and ANVIL_* variables are passed through; see `scripts/run.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh release >/dev/null
exec build/anvil "$@"
