#!/usr/bin/env bash
# scripts/pg.sh — a throwaway PostgreSQL for tests and benchmarks: a primary and, on request, a
# synchronous standby, in a directory of their own on loopback ports. PostgreSQL refuses to run
# as root, so as root the clusters run as the `postgres` user (Debian's package creates it).
#
#   scripts/pg.sh start DIR PORT [STANDBY_PORT]   initdb + start; with STANDBY_PORT a streaming
#                                                 standby that every commit waits for
#                                                 (synchronous_commit=on, synchronous_standby_names)
#   scripts/pg.sh url DIR                         the libpq URL: both hosts, target_session_attrs=read-write
#   scripts/pg.sh kill-primary DIR                the primary stops at once (pg_ctl -m immediate)
#   scripts/pg.sh promote DIR                     the standby becomes the primary
#   scripts/pg.sh stop DIR                        stops whatever runs, keeps DIR
# Needs the Debian packages postgresql (server binaries) and postgresql-client.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,13p' "$0" >&2; exit 2; }

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
ctl() { as_pg "$bin/pg_ctl" -D "$1" -l "$1.log" -w "${@:2}" >/dev/null; }
sql() { psql -h 127.0.0.1 -p "$1" -U anvil -d postgres -X -q -A -t -c "$2"; }

case "$cmd" in
start)
  port=${3:?PORT}
  standby_port=${4:-}
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/primary" -A trust -U anvil >/dev/null
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$dir'"
    echo "max_connections = 200"
    echo "wal_level = replica"
    echo "synchronous_commit = on"
    echo "autovacuum_naptime = 1s" # queue tables churn: look at them every second
    [ -n "$standby_port" ] && echo "synchronous_standby_names = 'standby'"
  } >>"$dir/primary/postgresql.conf"
  echo "host replication anvil 127.0.0.1/32 trust" >>"$dir/primary/pg_hba.conf"
  ctl "$dir/primary" start
  echo "$port" >"$dir/primary.port"
  if [ -n "$standby_port" ]; then
    as_pg pg_basebackup -h 127.0.0.1 -p "$port" -U anvil -D "$dir/standby" -R -X stream \
      -d "application_name=standby"
    {
      echo "port = $standby_port"
      echo "synchronous_standby_names = ''"
    } >>"$dir/standby/postgresql.conf"
    ctl "$dir/standby" start
    echo "$standby_port" >"$dir/standby.port"
    for _ in $(seq 100); do # commits wait for the standby from here on
      [ "$(sql "$port" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'")" = sync ] && break
      sleep 0.1
    done
    [ "$(sql "$port" "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'")" = sync ] ||
      { echo "pg.sh: the standby did not become synchronous" >&2; exit 1; }
  fi
  ;;
url)
  hosts="127.0.0.1:$(cat "$dir/primary.port")"
  [ -f "$dir/standby.port" ] && hosts="$hosts,127.0.0.1:$(cat "$dir/standby.port")"
  echo "postgres://anvil@$hosts/postgres?target_session_attrs=read-write&connect_timeout=2"
  ;;
kill-primary)
  ctl "$dir/primary" -m immediate stop
  ;;
promote)
  ctl "$dir/standby" promote
  ;;
stop)
  for node in primary standby; do
    [ -f "$dir/$node/postmaster.pid" ] && ctl "$dir/$node" -m fast stop || true
  done
  ;;
*)
  sed -n '2,13p' "$0" >&2
  exit 2
  ;;
esac
