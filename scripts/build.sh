#!/usr/bin/env bash
# scripts/build.sh [release|asan] — configures (once) and builds anvil with meson:
# `release` in build/ (optimised, warnings are errors), `asan` in build-asan/
# (AddressSanitizer + UndefinedBehaviorSanitizer, every finding fatal).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) dir=build; opts=(--buildtype=debugoptimized) ;;
  asan) dir=build-asan
        opts=(--buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
              "-Dc_args=-fno-sanitize-recover=all -fno-omit-frame-pointer") ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir" >/dev/null
echo "build: $dir/anvil"
