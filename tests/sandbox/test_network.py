"""Network: no connection from inside the sandbox reaches a listener the test runs, whether the
program may open IP sockets or not (seccomp refuses stream sockets to every program not marked as
a network tool, on every kernel; Landlock ABI >= 4 denies its TCP connect and bind as well); raw
and packet sockets are refused to all."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.sandbox.conftest import sandboxed
from worker.sandbox import Profile

PY = "/usr/bin/python3"


class Listener:
    """A TCP and a UDP socket on random local ports that count what reaches them."""

    def __init__(self) -> None:
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.tcp.settimeout(0.05)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.05)
        self.hits: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.tcp.getsockname()[1])

    @property
    def udp_port(self) -> int:
        return int(self.udp.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.tcp.accept()
                self.hits.append(f"tcp from {peer}")
                conn.close()
            except TimeoutError:
                pass
            try:
                data, peer = self.udp.recvfrom(4096)
                self.hits.append(f"udp {data[:20]!r} from {peer}")
            except TimeoutError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


ATTEMPTS = [
    ["bash", "-c", "echo hi > /dev/tcp/127.0.0.1/{port}"],
    ["bash", "-c", "echo hi > /dev/udp/127.0.0.1/{udp}"],
    ["curl", "-s", "-m", "2", "http://127.0.0.1:{port}/"],
    [PY, "-c", "import socket; socket.create_connection(('127.0.0.1', {port}), 2)"],
    [
        PY,
        "-c",
        "import socket; socket.socket(socket.AF_INET6).connect(('::ffff:127.0.0.1', {port}))",
    ],
    [PY, "-c", "import socket; socket.socket(2, 2).sendto(b'leak', ('127.0.0.1', {udp}))"],
]


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[" ".join(a)[:40] for a in ATTEMPTS])
def test_no_connection_reaches_the_listener(attempt: list[str], listener: Listener) -> None:
    argv = [
        a.replace("{port}", str(listener.port)).replace("{udp}", str(listener.udp_port))
        for a in attempt
    ]
    outcome = sandboxed(argv, timeout_s=5)
    assert listener.hits == [], (argv, outcome.stderr)
    assert outcome.exit_code != 0


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_no_tcp_for_a_program_with_ip_sockets_on_any_kernel(
    listener: Listener, family: int
) -> None:
    """Interface tools (ifconfig, arp) get IP sockets for ioctls: datagram ones only. seccomp
    refuses them stream sockets on every kernel (Landlock refuses TCP connect only from ABI 4,
    Linux 6.7: 5.10 and 6.1 would let them connect), while a datagram socket still opens."""
    code = (
        "import socket, sys\n"
        "socket.socket({family}, socket.SOCK_DGRAM).close()\n"
        "try: s = socket.socket({family}, socket.SOCK_STREAM)\n"
        "except OSError as e: sys.exit(e.errno)\n"
        "s.connect(('{host}', {port}))\n"
    )
    host = "127.0.0.1" if family == socket.AF_INET else "::ffff:127.0.0.1"
    code = code.format(family=int(family), host=host, port=listener.port)
    outcome = sandboxed([PY, "-c", code], profile=Profile(ip_sockets=True))
    assert outcome.exit_code == 1, outcome  # EPERM from seccomp, at socket()
    assert listener.hits == []


@pytest.mark.parametrize(
    "family, kind",
    [
        (socket.AF_INET, socket.SOCK_RAW),
        (socket.AF_INET6, socket.SOCK_RAW),
        (socket.AF_PACKET, socket.SOCK_RAW),
        (socket.AF_PACKET, socket.SOCK_DGRAM),
        (socket.AF_INET, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC),
        (socket.AF_UNIX, socket.SOCK_STREAM),
        (socket.AF_VSOCK, socket.SOCK_STREAM),
    ],
)
def test_raw_packet_and_unlisted_sockets_are_refused_even_to_network_tools(
    family: int, kind: int
) -> None:
    code = (
        f"import socket, sys\ntry: socket.socket({int(family)}, {int(kind)}, 0)\n"
        "except OSError as e: sys.exit(e.errno)\n"
    )
    outcome = sandboxed([PY, "-c", code], profile=Profile(ip_sockets=True, tcp=True))
    assert outcome.exit_code == 1, outcome  # EPERM


def test_docker_style_unix_socket_is_unreachable(tmp_path: os.PathLike[str]) -> None:
    """A program not marked as a daemon client cannot talk to a local socket (docker.sock)."""
    path = os.path.join(tmp_path, f"d{os.urandom(3).hex()}.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    server.settimeout(0.3)
    try:
        outcome = sandboxed(["curl", "-s", "-m", "2", "--unix-socket", path, "http://x/"])
        with pytest.raises(TimeoutError):
            server.accept()
        assert outcome.exit_code != 0
    finally:
        server.close()
