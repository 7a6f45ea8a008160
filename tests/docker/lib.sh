# tests/docker/lib.sh — what the Docker tests share, sourced by each: the skip when no Docker
# engine answers, and the check/ok/fail/finish helpers that print `ok   name` /
# `FAIL name: why` lines and the `RESULT passed=N failed=M` line scripts/test.sh adds up.

if ! timeout 10 docker info >/dev/null 2>&1; then
    echo "skipped: no docker engine"
    echo "RESULT passed=0 failed=0"
    exit 0
fi

passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
check() { # check NAME WHY-IF-FAILED COMMAND...
    local name=$1 why=$2; shift 2
    if "$@"; then ok "$name"; else fail "$name" "$why"; fi
}
finish() {
    echo "RESULT passed=$passed failed=$failed"
    [ "$failed" -eq 0 ]
    exit
}
