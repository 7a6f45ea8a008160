#!/usr/bin/env bash
# tests/docker/test_systemd.sh — anvil installed by `meson install` and run by a real systemd
# (PID 1 of a privileged Debian 12 container): conf/anvil.service as installed, with the
# installed /etc/anvil/anvil.conf (only its port changed). Checks that `systemctl start`
# returns once anvil answers (Type=notify), that it runs as a dynamic user with its database
# in /var/lib/anvil (StateDirectory), that `systemctl reload` keeps the process and applies
# the file, that a SIGKILL brings a restart that finds the messages again
# (Restart=on-failure), that bad settings fail without a restart loop
# (RestartPreventExitStatus=2), and that `systemctl stop` is clean.
# Skips (exit 0) when no Docker engine answers, or when this engine cannot run systemd.
# Output: one `ok   name` / `FAIL name: why` line per check, then `RESULT passed=N failed=M`.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

. "$repo/tests/docker/lib.sh"

tag="anvil-systemd-$$-$RANDOM"
image="$tag:latest"
box=""
ctx=""
cleanup() {
    [ -n "$box" ] && [ -z "${KEEP:-}" ] && docker rm -f -v "$box" >/dev/null 2>&1
    [ -n "${KEEP:-}" ] || docker rmi -f "$image" "$tag-build" >/dev/null 2>&1
    rm -rf "$ctx"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
in_box() { docker exec "$box" "$@"; }
url="http://127.0.0.1:$port"

# The image: the Dockerfile's build stage (the sources as the service image builds them),
# then systemd, and `meson install --prefix=/usr` with the man pages (the unit's
# Documentation= names one; the repository's .dockerignore keeps docs/ out of that stage, so
# they come from a context of their own).
ctx=$(mktemp -d)
cp -r "$repo/docs/man" "$ctx/man"
if ! docker build --network host -q --target build -t "$tag-build" "$repo" >/dev/null ||
   ! docker build --network host -q -t "$image" -f - "$ctx" >/dev/null <<EOF
FROM $tag-build
RUN apt-get update \\
 && apt-get install -y --no-install-recommends systemd systemd-sysv dbus procps curl man-db go-md2man \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY man docs/man
RUN meson configure build --prefix=/usr -Dman=enabled >/dev/null \\
 && ninja -C build >/dev/null && meson install -C build >/dev/null
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
EOF
then
    fail "image builds" "docker build failed"
    finish
fi
ok "image builds (the Dockerfile's build stage, meson install into /usr)"

# Unprivileged, as systemd supports in containers: the host's cgroups mounted writable.
box=$tag
docker run -d --name "$box" -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --network host "$image" >/dev/null 2>&1
booted=""
for _ in $(seq 1 60); do
    [ "$(docker inspect --format '{{.State.Running}}' "$box" 2>/dev/null)" = true ] || break
    state=$(in_box systemctl is-system-running 2>/dev/null)
    case "$state" in running|degraded) booted=1; break ;; esac
    sleep 0.5
done
if [ -z "$booted" ]; then
    echo "skipped: this Docker engine cannot run systemd in a container (state: ${state:-none})"
    echo "RESULT passed=$passed failed=$failed"
    [ "$failed" -eq 0 ]
    exit
fi
ok "systemd boots in the container"

in_box sed -i "s/^port = .*/port = $port/" /etc/anvil/anvil.conf
check "the unit is installed and passes systemd-analyze verify" "verify complained" \
    in_box systemd-analyze verify /usr/lib/systemd/system/anvil.service

# Type=notify: start returns after READY=1, so the very next request is answered.
start_answers() { docker exec "$box" systemctl start anvil && curl -fsS --max-time 5 "$url/health" >/dev/null; }
db=/var/lib/private/anvil/anvil.db # where DynamicUser's StateDirectory puts it
if ! start_answers 2>/dev/null &&
   in_box journalctl -u anvil --no-pager | grep -q 'status=226/NAMESPACE'; then
    # An unprivileged container cannot make the mount namespaces DynamicUser and the Protect*
    # settings need. Go on with the dedicated-user variant of docs/operations.md and those
    # settings off (a drop-in); Type=notify, the state directory, reload and the restart
    # rules are the installed unit's.
    echo "note: no mount namespaces in this container: DynamicUser and the Protect* sandbox are" \
         "turned off by a drop-in (User=anvil, as docs/operations.md describes)"
    in_box mkdir -p /etc/systemd/system/anvil.service.d
    printf '%s\n' '[Service]' DynamicUser=no User=anvil Group=anvil ProtectSystem=no ProtectHome=no \
        PrivateTmp=no PrivateDevices=no ProtectKernelTunables=no ProtectKernelModules=no \
        ProtectKernelLogs=no ProtectControlGroups=no ProtectProc=default ProcSubset=all \
        ProtectClock=no ProtectHostname=no |
        docker exec -i "$box" tee /etc/systemd/system/anvil.service.d/container.conf >/dev/null
    in_box useradd --system --home-dir /var/lib/anvil --shell /usr/sbin/nologin anvil
    in_box systemctl daemon-reload
    in_box systemctl reset-failed anvil
    db=/var/lib/anvil/anvil.db
fi
check "systemctl start returns once anvil says READY=1 (Type=notify: else it would time out) and it answers" "start failed or /health did not answer at once" \
    start_answers
main_pid() { in_box systemctl show -p MainPID --value anvil; }
pid=$(main_pid)
user=$(in_box ps -o user= -p "$pid" 2>/dev/null | tr -d ' ')
check "it runs as the user anvil" "user is '$user'" [ "$user" = anvil ]
check "its database is in its state directory" "no $db" in_box test -f "$db"
owner=$(in_box stat -c %U "$db")
check "owned by that user" "owner is '$owner'" [ "$owner" = anvil ]
curl -fsS --max-time 5 -X POST "$url/3/projects/svc/queues/q/messages" \
    -H 'Content-Type: application/json' -d '{"messages":[{"body":"kept"}]}' >/dev/null

in_box sed -i 's/^log_format = .*/log_format = json/' /etc/anvil/anvil.conf
in_box systemctl reload anvil
check "systemctl reload keeps the process" "MainPID changed" [ "$(main_pid)" = "$pid" ]
curl -fsS --max-time 5 "$url/health" >/dev/null
check "and applies the file (log format json)" "no JSON request line in the journal" \
    bash -c "docker exec $box journalctl -u anvil --no-pager -o cat | grep -q '^{.*\"path\":\"/health\"'"

in_box kill -KILL "$pid"
restarted=""
for _ in $(seq 1 40); do
    new=$(main_pid)
    if [ -n "$new" ] && [ "$new" != 0 ] && [ "$new" != "$pid" ] &&
       curl -fsS --max-time 2 "$url/health" >/dev/null 2>&1; then restarted=1; break; fi
    sleep 0.25
done
check "after SIGKILL systemd restarts it (Restart=on-failure)" "no new process answering" [ -n "$restarted" ]
peek=$(curl -fsS --max-time 5 "$url/3/projects/svc/queues/q/messages?n=1")
check "and the acknowledged message is still there" "peek: $peek" grep -q '"kept"' <<<"$peek"

in_box systemctl stop anvil
check "systemctl stop is clean" "result is not success" \
    [ "$(in_box systemctl show -p Result --value anvil)" = success ]

in_box sed -i 's/^durability = .*/durability = sometimes/' /etc/anvil/anvil.conf
restarts=$(in_box systemctl show -p NRestarts --value anvil)
check "bad settings: start fails" "start succeeded" bash -c "! docker exec $box systemctl start anvil 2>/dev/null"
sleep 3 # past RestartSec
check "and it is not restarted over and over (exit status 2)" "state is not failed with status 2" \
    bash -c "[ \"\$(docker exec $box systemctl show -p ExecMainStatus --value anvil)\" = 2 ] && \
             [ \"\$(docker exec $box systemctl is-active anvil)\" = failed ] && \
             [ \"\$(docker exec $box systemctl show -p NRestarts --value anvil)\" = $restarts ]"
finish
