#!/usr/bin/env bash
# scripts/bench.sh [--quick | --smoke] [--depth-10m] — installs the peers (beanstalkd, Redis,
# PostgreSQL from Debian), builds anvil and the benchmark tools, and runs bench/run.py:
# anvil against a bare libmicrohttpd ceiling and its peers, side by side, in one run.
# Results: bench/results/latest.jsonl and the table printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
if ! command -v beanstalkd >/dev/null || ! command -v redis-server >/dev/null || ! command -v pgbench >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "bench: run as root to install the peers" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    beanstalkd redis-server postgresql python3 >/dev/null
  # Debian starts them as services on their default ports: the benchmark starts its own
  for svc in beanstalkd redis-server postgresql; do
    (service "$svc" stop || systemctl stop "$svc") >/dev/null 2>&1 || true
  done
fi
scripts/build.sh release >/dev/null
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec /usr/bin/python3 bench/run.py "$@"
