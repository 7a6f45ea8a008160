"""systemd's readiness protocol (server/notify.c; anvil.service is Type=notify): with
$NOTIFY_SOCKET set, anvil sends READY=1 once it accepts requests, RELOADING=1 and READY=1
around a SIGHUP reload, STOPPING=1 when a graceful stop begins; to a path or an abstract
('@') socket. Without it, nothing is sent and nothing changes."""
import os
import signal
import socket
import uuid

from harness import Server, StartError, make_temp_dir


def listen(abstract=False):
    """A datagram socket like systemd's, and the NOTIFY_SOCKET value naming it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "@anvil-notify-" + uuid.uuid4().hex
        sock.bind("\0" + name[1:])
    else:
        name = os.path.join(make_temp_dir("anvil-notify-"), "notify.sock")
        sock.bind(name)
    sock.settimeout(10)
    return sock, name


def receive(sock):
    return sock.recv(4096).decode()


def check_lifecycle(abstract):
    sock, name = listen(abstract)
    try:
        with Server.start(env={"NOTIFY_SOCKET": name}) as s:
            assert receive(sock) == "READY=1"
            assert s.healthy()  # READY=1 came when it already answers
            s.signal(signal.SIGHUP)
            assert receive(sock) == "RELOADING=1"
            assert receive(sock) == "READY=1"
            assert s.healthy()
            s.signal(signal.SIGTERM)
            assert receive(sock) == "STOPPING=1"
            assert s.wait_exit(15) == 0
    finally:
        sock.close()


def test_ready_reload_and_stop_are_announced_to_a_socket_path():
    check_lifecycle(abstract=False)


def test_an_abstract_socket_name_works_too():
    check_lifecycle(abstract=True)


def test_a_server_that_cannot_start_never_says_ready():
    sock, name = listen()
    try:
        s = Server(["--durability", "sometimes"], env={"NOTIFY_SOCKET": name})
        try:
            s._launch()
            raise AssertionError("anvil started with bad settings")
        except StartError as e:
            assert "status 2" in str(e), e
        sock.settimeout(0.3)
        try:
            got = receive(sock)
        except socket.timeout:
            got = None
        assert got is None, got
    finally:
        sock.close()
