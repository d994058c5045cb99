"""Network and DNS faults, all on loopback addresses."""

from __future__ import annotations

import subprocess
from typing import NamedTuple

from bench.eval.draw import port_free
from bench.eval.harness import Ctx, Fault, FaultSpec, pids
from tests.support.workloads import CONNECTOR
from tests.support.workloads.scenarios import Truth

# A listener that never accepts: its backlog is filled by its own connections, so later SYNs
# are dropped and clients time out.
DEAF_LISTENER = """
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(0)
held = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect((host, port))
    except OSError:
        pass
    held.append(c)
    time.sleep(0.05)
while True:
    time.sleep(3600)
"""
TIMEOUT_CLIENT = """
import socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
while True:
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        s.recv(100)
    except OSError:
        pass
    s.close()
"""


def connect_timeout(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    server_comm, _ = ctx.draw.service()
    port = ctx.draw.free_port()
    timeout = ctx.draw.uniform(0.5, 1.5)
    server = ctx.spawn([ctx.python(server_comm), ctx.script(DEAF_LISTENER), "127.0.0.1", str(port)])
    ctx.settle(0.6)
    proc = ctx.spawn(
        [ctx.python(comm), ctx.script(TIMEOUT_CLIENT), "127.0.0.1", str(port), str(timeout)]
    )
    addr = f"127.0.0.1:{port}"
    return Fault(
        truth=lambda: Truth(((comm, server_comm), (addr,))),
        facts=lambda: Truth(((comm,), (addr,))),
        processes=[proc, server],
        words={"svc": word},
        drawn={"comm": comm, "server": server_comm, "port": str(port), "timeout_s": str(timeout)},
    )


# A loopback server that closes every connection it accepts; with argv[2] "reset", after reading
# the request, with SO_LINGER 0: the client gets a RST.
CLOSING_SERVER = """
import socket, struct, sys
port, reset = int(sys.argv[1]), sys.argv[2:] == ["reset"]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
while True:
    c, _ = srv.accept()
    if reset:
        try:
            c.recv(64)
        except OSError:
            pass
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
"""
CALLER = """
import socket, sys, time
port, pause = int(sys.argv[1]), float(sys.argv[2])
while True:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /v1/charge HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        s.recv(4096)
        s.sendall(b"again")
        s.recv(4096)
    except OSError:
        pass
    s.close()
    time.sleep(pause)
"""


class _Pair(NamedTuple):
    comm: str
    word: str
    server_comm: str
    peer: str
    port: int
    pause: float
    proc: subprocess.Popen[bytes]
    server: subprocess.Popen[bytes]


def _server_then_client(
    ctx: Ctx, server: str, client: str, pauses: tuple[float, float], *server_args: str
) -> _Pair:
    """A server script on a free loopback port (given the port and `server_args`), then, once it
    is up, a client script (given the port and a pause drawn from `pauses`), each under a drawn
    service comm."""
    comm, word = ctx.draw.service()
    server_comm, peer = ctx.draw.service()
    port = ctx.draw.free_port()
    pause = ctx.draw.uniform(*pauses)
    server_proc = ctx.spawn([ctx.python(server_comm), ctx.script(server), str(port), *server_args])
    ctx.settle(0.4)
    proc = ctx.spawn([ctx.python(comm), ctx.script(client), str(port), str(pause)])
    return _Pair(comm, word, server_comm, peer, port, pause, proc, server_proc)


def conn_reset(ctx: Ctx) -> Fault:
    pair = _server_then_client(ctx, CLOSING_SERVER, CALLER, (0.05, 0.2), "reset")
    comm, server_comm, port = pair.comm, pair.server_comm, pair.port
    addr = f"127.0.0.1:{port}"
    return Fault(
        truth=lambda: Truth(((server_comm, comm), (addr, f"port {port}"))),
        facts=lambda: Truth(
            ((comm, server_comm), (addr, f"port {port}"), ("ECONNRESET", "Connection reset"))
        ),
        processes=[pair.proc, pair.server],
        words={"svc": pair.word, "peer": pair.peer},
        drawn={"comm": comm, "server": server_comm, "port": str(port), "pause_s": str(pair.pause)},
    )


DNS_SERVER = """
import socket, sys, time
host, rcode, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, 53))
while True:
    data, peer = s.recvfrom(512)
    if len(data) < 12:
        continue
    if delay:
        time.sleep(delay)
    flags = 0x8180 | rcode
    answer = data[:2] + flags.to_bytes(2, "big") + data[4:6] + bytes(6) + data[12:]
    s.sendto(answer, peer)
"""
DNS_CLIENT = """
import random, socket, struct, sys, time
server, timeout, pause, names = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]

def query(name):
    head = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return head + labels + b"\\0" + struct.pack(">HH", 1, 1)

while True:
    for name in names:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        s.sendto(query(name), (server, 53))
        try:
            s.recvfrom(512)
        except OSError:
            pass
        s.close()
        time.sleep(pause)
"""


def _dns(
    ctx: Ctx,
    rcode: int,
    delay: float,
    timeout: float,
    pause: float,
    outcome: tuple[tuple[str, ...], ...] = (),
) -> Fault:
    comm, word = ctx.draw.service()
    server_comm, _ = ctx.draw.service()
    name = ctx.draw.hostname()
    for _ in range(10):
        host = ctx.draw.loopback()
        server = ctx.spawn(
            [ctx.python(server_comm), ctx.script(DNS_SERVER), host, str(rcode), str(delay)]
        )
        ctx.settle(0.4)
        if server.poll() is None:
            break
    proc = ctx.spawn(
        [ctx.python(comm), ctx.script(DNS_CLIENT), host, str(timeout), str(pause), name]
    )
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (f"{host}:53", name))),
        facts=lambda: Truth(((comm,), (f"{host}:53", host), (name,), *outcome)),
        processes=[proc, server],
        words={"svc": word},
        drawn={"comm": comm, "server": f"{host}:53", "name": name, "rcode": str(rcode)},
    )


def nxdomain(ctx: Ctx) -> Fault:
    return _dns(ctx, 3, 0.0, 1.0, ctx.draw.uniform(0.05, 0.2), (("NXDOMAIN", "rcode 3"),))


def slow_dns(ctx: Ctx) -> Fault:
    return _dns(ctx, 0, ctx.draw.uniform(1.8, 2.5), 5.0, 0.0)


LISTENER = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(64)
while True:
    c, _ = srv.accept()
    c.close()
"""


def wrong_address(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    server_comm, _ = ctx.draw.service()
    listen = ctx.draw.loopback()
    port = ctx.draw.free_port(listen)
    while not port_free("127.0.0.1", port):
        port = ctx.draw.free_port(listen)
    server = ctx.spawn([ctx.python(server_comm), ctx.script(LISTENER), listen, str(port)])
    ctx.settle(0.4)
    pause = ctx.draw.uniform(0.05, 0.25)
    proc = ctx.spawn([ctx.python(comm), ctx.script(CONNECTOR), str(port), str(pause)])
    addr = f"127.0.0.1:{port}"
    return Fault(
        truth=lambda: Truth(((comm,), (addr,), (f"{listen}:{port}", listen))),
        facts=lambda: Truth(((comm,), (addr,), (f"{listen}:{port}",))),
        processes=[proc, server],
        words={"svc": word},
        drawn={"comm": comm, "server": server_comm, "connects": addr, "listens": listen},
    )


UNIX_CLIENT = """
import socket, sys, time
path, pause = sys.argv[1], float(sys.argv[2])
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        pass
    s.close()
    time.sleep(pause)
"""


def missing_unix_socket(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    run = ctx.dir("run", ctx.draw.choice(("sockets", "svc", word)))
    path = run / f"{ctx.draw.service()[1]}.sock"
    pause = ctx.draw.uniform(0.02, 0.2)
    proc = ctx.spawn([ctx.python(comm), ctx.script(UNIX_CLIENT), path, str(pause)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (str(path),))),
        facts=lambda: Truth(((comm,), (str(path),))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "path": str(path), "pause_s": str(pause)},
    )


STALE_SOCKET = """
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.close()  # the file stays; nothing listens on it
"""


def stale_unix_socket(ctx: Ctx) -> Fault:
    comm, word = ctx.draw.service()
    path = ctx.dir("var", "run") / f"{ctx.draw.service()[1]}.sock"
    ctx.spawn([ctx.python(ctx.draw.comm()), ctx.script(STALE_SOCKET), path]).wait(timeout=10)
    pause = ctx.draw.uniform(0.02, 0.2)
    proc = ctx.spawn([ctx.python(comm), ctx.script(UNIX_CLIENT), path, str(pause)])
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), (str(path),))),
        facts=lambda: Truth(((comm,), (str(path),), ("ECONNREFUSED", "Connection refused"))),
        processes=[proc],
        words={"svc": word},
        drawn={"comm": comm, "path": str(path), "pause_s": str(pause)},
    )


STREAMER = """
import socket, sys, time
port, pause = int(sys.argv[1]), float(sys.argv[2])
while True:
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        s.recv(1)  # the server has closed (FIN): every write from here on hits a closed peer
        for _ in range(20):
            s.send(b"x" * 512)
            time.sleep(0.01)
    except OSError:
        pass
    s.close()
    time.sleep(pause)
"""


def epipe_writer(ctx: Ctx) -> Fault:
    pair = _server_then_client(ctx, CLOSING_SERVER, STREAMER, (0.05, 0.2))
    comm, proc = pair.comm, pair.proc
    return Fault(
        truth=lambda: Truth(((comm,), pids(proc.pid), ("EPIPE", "broken pipe", "Broken pipe"))),
        facts=lambda: Truth(((comm,), ("EPIPE", "Broken pipe", "broken pipe"))),
        processes=[proc, pair.server],
        words={"svc": pair.word},
        drawn={
            "comm": comm,
            "server": pair.server_comm,
            "port": str(pair.port),
            "pause_s": str(pair.pause),
        },
    )


BINDER = """
import socket, sys, time
port, pause = int(sys.argv[1]), float(sys.argv[2])
while True:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        s.listen(16)
        time.sleep(3600)
    except OSError:
        pass
    s.close()
    time.sleep(pause)
"""
HOLDER = """
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket()
s.bind(("127.0.0.1", port))
s.listen(16)
while True:
    time.sleep(3600)
"""


def addr_in_use(ctx: Ctx) -> Fault:
    pair = _server_then_client(ctx, HOLDER, BINDER, (0.05, 0.3))
    comm, holder_comm, holder, port = pair.comm, pair.server_comm, pair.server, pair.port
    addr = f"127.0.0.1:{port}"
    return Fault(
        truth=lambda: Truth(((comm,), (addr, f"port {port}"), (holder_comm, f"pid {holder.pid}"))),
        facts=lambda: Truth(((comm,), (addr, f"port {port}"), ("EADDRINUSE",))),
        processes=[pair.proc, holder],
        words={"svc": pair.word},
        drawn={"comm": comm, "holder": holder_comm, "port": str(port)},
    )


FAULTS = [
    FaultSpec(
        "connect_timeout",
        "network",
        "a client's connects time out: the listener's accept queue is full and it never accepts",
        (
            "{svc} requests hang and then time out",
            "calls from {svc} just sit there until the timeout",
            "{svc} is timing out talking to its backend, nothing in the backend logs",
        ),
        connect_timeout,
    ),
    FaultSpec(
        "connection_reset",
        "network",
        "a server resets every connection (SO_LINGER 0); its client retries",
        (
            "{svc} calls to {peer} die in the middle of the request",
            "{svc} -> {peer} calls failing randomly since this morning",
            "lots of 502s from {svc}, something upstream dropping us?",
        ),
        conn_reset,
    ),
    FaultSpec(
        "nxdomain",
        "dns",
        "a client queries a local DNS server that answers NXDOMAIN for its backend name",
        (
            "{svc} says it can't resolve its backend",
            "{svc} can't find the db host since the migration",
            "{svc} logs say unknown host",
        ),
        nxdomain,
    ),
    FaultSpec(
        "slow_dns",
        "dns",
        "a client's DNS server answers every query after ~2 s",
        (
            "every request from {svc} takes 2 seconds extra",
            "{svc} is slow, the first byte always takes ages",
            "weird fixed ~2s delay on {svc} calls",
        ),
        slow_dns,
    ),
    FaultSpec(
        "wrong_address",
        "network",
        "a server listens on 127.x.y.z:P, its client connects to 127.0.0.1:P and is refused",
        (
            "{svc} can't connect, but the backend is up, I checked",
            "{svc} connection refused even though the server is running",
            "after the config change {svc} can't reach its backend",
        ),
        wrong_address,
    ),
    FaultSpec(
        "missing_unix_socket",
        "network",
        "a client connects to a unix socket path that does not exist",
        (
            "{svc} can't talk to its local agent",
            "{svc} errors on startup, something about the socket?",
            "{svc} is down, says it can't connect",
        ),
        missing_unix_socket,
    ),
    FaultSpec(
        "stale_unix_socket",
        "network",
        "a client connects to a unix socket file nothing listens on (ECONNREFUSED)",
        (
            "{svc} can't reach the local daemon after its restart",
            "{svc} failing to connect locally since the daemon crashed",
            "{svc} is erroring out, local connection refused?",
        ),
        stale_unix_socket,
    ),
    FaultSpec(
        "epipe_writer",
        "network",
        "a client keeps writing to connections the server has already closed (EPIPE)",
        (
            "{svc} uploads keep failing halfway",
            "{svc} logs full of broken pipe",
            "{svc} can't push data to its sink anymore",
        ),
        epipe_writer,
    ),
    FaultSpec(
        "addr_in_use",
        "network",
        "a service retries binding a port another process holds (EADDRINUSE)",
        (
            "{svc} won't start after the restart",
            "{svc} keeps crashing on boot",
            "new {svc} build can't come up on this box",
        ),
        addr_in_use,
    ),
]
