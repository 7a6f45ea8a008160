#!/usr/bin/env bash
# tests/docker/test_docker.sh — end-to-end test of the Docker image (Dockerfile at the repo root).
# Builds anvil:test, runs it with --network host on a named volume, waits for the HEALTHCHECK,
# posts and reserves messages, stops it (exit code 0), starts a new container on the same volume
# and finds the messages again; then checks ANVIL_HOST=0.0.0.0 needs tokens and enforces them.
# Skips (exit 0) when no Docker engine answers. Needs curl and python3 on the host.
# Output: one `ok   name` / `FAIL name: why` line per check, then `RESULT passed=N failed=M`.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
image=${ANVIL_TEST_IMAGE:-anvil:test}

. "$repo/tests/docker/lib.sh"

tag="anvil-test-$$-$RANDOM"
vol="$tag-data"
containers=()
cleanup() {
    local c
    for c in "${containers[@]}"; do docker rm -f -v "$c" >/dev/null 2>&1; done
    docker volume rm -f "$vol" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}
# json EXPR: evaluates EXPR with the JSON on stdin as `j`; prints the result
json() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)" 2>/dev/null; }

run() { # run NAME ARGS... — detached container, remembered for cleanup
    local name=$1; shift
    containers+=("$name")
    docker run -d --name "$name" --network host "$@" "$image" >/dev/null
}
# wait_healthy NAME PORT: up to 60 s for the HEALTHCHECK to say healthy
wait_healthy() {
    local name=$1 status
    for _ in $(seq 1 120); do
        status=$(docker inspect --format '{{.State.Health.Status}}' "$name" 2>/dev/null)
        [ "$status" = healthy ] && return 0
        [ "$(docker inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || {
            why="container stopped: $(docker logs "$name" 2>&1 | tail -3 | tr '\n' ' ')"
            return 1
        }
        sleep 0.5
    done
    why="health status '$status' after 60 s"
    return 1
}
# req METHOD URL [BODY] [CURL-ARGS...]: sets $code and $body
req() {
    local method=$1 url=$2 data=${3-}; shift 3 2>/dev/null || shift $#
    local out
    if [ -n "$data" ]; then
        out=$(curl -sS -m 10 -X "$method" -H 'Content-Type: application/json' -d "$data" \
            -w '\n%{http_code}' "$@" "$url" 2>&1)
    else
        out=$(curl -sS -m 10 -X "$method" -w '\n%{http_code}' "$@" "$url" 2>&1)
    fi
    code=${out##*$'\n'}
    body=${out%$'\n'*}
}

# --- build -----------------------------------------------------------------------------
start=$(date +%s)
if build_log=$(docker build --network host -t "$image" "$repo" 2>&1); then
    ok "image builds ($(($(date +%s) - start)) s)"
else
    fail "image builds" "$(echo "$build_log" | tail -5 | tr '\n' ' ')"
    finish
fi

# the probe must run (a failing `docker run` is no proof) and find none of the compilers
probe=$(docker run --rm --entrypoint sh "$image" -c 'for c in gcc cc c99 clang; do command -v $c; done; echo probe-done' 2>&1)
check "image has no compiler" "probe said: $(echo "$probe" | tr '\n' ' ')" test "$probe" = probe-done

# --- first container: health, user, post + reserve, clean stop --------------------------
docker volume create "$vol" >/dev/null || { fail "volume create" "docker volume create $vol"; finish; }
port=$(free_port)
base="http://127.0.0.1:$port"
q="$base/3/projects/p/queues/q"
c1="$tag-1"
if ! run "$c1" -e ANVIL_PORT="$port" -v "$vol:/var/lib/anvil"; then
    fail "container starts" "docker run failed"
    finish
fi
start=$(date +%s)
if wait_healthy "$c1" "$port"; then
    ok "container becomes healthy ($(($(date +%s) - start)) s)"
else
    fail "container becomes healthy" "$why"
    finish
fi

req GET "$base/health"
check "GET /health" "got $code $body" \
    test "$code" = 200 -a "$(echo "$body" | json 'j["status"]')" = ok

page=$(curl -fsS --max-time 5 "$base/ui/" 2>&1)
check "the dashboard is compiled in (GET /ui/)" "got: ${page:0:120}" grep -q '<title>anvil</title>' <<<"$page"

uid=$(docker exec "$c1" id -u 2>&1)
puid=$(docker exec "$c1" sh -c "awk '/^Uid:/{print \$2}' /proc/1/status" 2>&1)
check "runs as a non-root user" "id -u=$uid, pid 1 uid=$puid" \
    test -n "$uid" -a "$uid" != 0 -a -n "$puid" -a "$puid" != 0

req POST "$q/messages" '{"messages":[{"body":"first"},{"body":"second"}]}'
ids=$(echo "$body" | json '" ".join(j["ids"])')
check "post two messages" "got $code $body" \
    test "$code" = 201 -a "$(echo "$ids" | wc -w)" = 2

req POST "$q/reservations" '{"n":1}'
reserved_id=$(echo "$body" | json 'j["messages"][0]["id"]')
reserved_body=$(echo "$body" | json 'j["messages"][0]["body"]')
check "reserve one message" "got $code $body" \
    test "$code" = 200 -a -n "$reserved_id" -a "$reserved_body" = first

# the SQS front in the image (its MD5s come from libcrypto): the queue's second message
out=$(curl -sS -m 10 -w '\n%{http_code}' -d 'Action=ReceiveMessage&Version=2012-11-05' \
    "$base/p/q" 2>&1)
code=${out##*$'\n'}
body=${out%$'\n'*}
check "SQS ReceiveMessage gets the second message with its MD5" "got $code $body" \
    test "$code" = 200 -a -n "$(echo "$body" | grep -o '<Body>second</Body>')" \
    -a -n "$(echo "$body" | grep -o '<MD5OfBody>a9f0e61a137d86aa9db53465e0801612</MD5OfBody>')"

docker stop -t 15 "$c1" >/dev/null 2>&1
exit_code=$(docker inspect --format '{{.State.ExitCode}}' "$c1" 2>&1)
check "docker stop exits 0" "exit code $exit_code; $(docker logs "$c1" 2>&1 | tail -2 | tr '\n' ' ')" \
    test "$exit_code" = 0

# --- second container on the same volume: the messages survived -------------------------
c2="$tag-2"
if run "$c2" -e ANVIL_PORT="$port" -v "$vol:/var/lib/anvil" && wait_healthy "$c2" "$port"; then
    ok "new container on the same volume becomes healthy"
else
    fail "new container on the same volume becomes healthy" "${why:-docker run failed}"
    finish
fi
req GET "$q"
check "queue size is 2 after restart" "got $code $body" \
    test "$code" = 200 -a "$(echo "$body" | json 'j["queue"]["size"]')" = 2

req POST "$q/reservations" '{"n":2}'
got=$(echo "$body" | json '" ".join(sorted(m["id"] for m in j["messages"]))')
again=$(echo "$body" | json "[m['reserved_count'] for m in j['messages'] if m['id']=='$reserved_id'][0]")
check "reserved message is reservable again after restart" "got $code $body" \
    test "$code" = 200 -a "$got" = "$(echo "$ids" | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')" \
    -a "$again" = 2
docker stop "$c2" >/dev/null 2>&1

# --- ANVIL_HOST=0.0.0.0: refused without tokens, enforced with them ---------------------
port2=$(free_port)
c3="$tag-notoken"
run "$c3" -e ANVIL_PORT="$port2" -e ANVIL_HOST=0.0.0.0
code3=$(timeout 20 docker wait "$c3" 2>/dev/null)
logs3=$(docker logs "$c3" 2>&1)
check "0.0.0.0 without tokens refuses to start" "exit code '${code3:-still running}', logs: $logs3" \
    bash -c '[ -n "$1" ] && [ "$1" != 0 ] && grep -qi token <<<"$2"' _ "$code3" "$logs3"

c4="$tag-token"
base4="http://127.0.0.1:$port2"
if run "$c4" -e ANVIL_PORT="$port2" -e ANVIL_HOST=0.0.0.0 -e 'ANVIL_TOKENS=tok:*' \
    && wait_healthy "$c4" "$port2"; then
    ok "0.0.0.0 with ANVIL_TOKENS becomes healthy"
    req GET "$base4/3/projects/p/queues"
    check "no token: 401" "got $code $body" test "$code" = 401
    req GET "$base4/3/projects/p/queues" "" -H 'Authorization: OAuth tok'
    check "Authorization: OAuth tok: 200" "got $code $body" test "$code" = 200
else
    fail "0.0.0.0 with ANVIL_TOKENS becomes healthy" "${why:-docker run failed}"
fi

finish
