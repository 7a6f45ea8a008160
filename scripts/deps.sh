#!/usr/bin/env bash
# scripts/deps.sh [build|test] — installs, with apt-get, the Debian 12 packages anvil needs:
# `build` for compiling and running the server, `test` for that plus everything the test
# suites use (Python with boto and boto3 for the SQS suites, Node.js and npm for the client
# suites, clang for the fuzzers, clang-tidy for the lint pass, PostgreSQL for the suites that
# run on the PostgreSQL back end; go-md2man, man-db and systemd for the install test: the man
# pages are built when go-md2man is there, which serving does not need, and the unit is
# checked with systemd-analyze; chromium and a font for the dashboard's browser test).
# Does nothing when every package is already installed; needs root otherwise.
set -euo pipefail

build_pkgs=(gcc meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
            libcurl4-openssl-dev libssl-dev libpq-dev)
test_pkgs=(python3 python3-boto python3-boto3 python3-prometheus-client nodejs npm clang clang-tidy
           libclang-rt-14-dev procps postgresql go-md2man man-db systemd chromium fonts-dejavu-core)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

# A tool already installed another way (Node.js from NodeSource brings its own npm, which
# Debian's npm package conflicts with) counts as present.
provided() {
  case "$1" in
    nodejs) command -v node >/dev/null ;;
    npm) command -v npm >/dev/null ;;
    *) return 1 ;;
  esac
}
missing=()
for pkg in "${want[@]}"; do
  provided "$pkg" && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: run as root (or install these packages yourself): ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
