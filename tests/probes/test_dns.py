"""dns, live: queries to a UDP server on 127.0.0.1 that never answers, one that does, dig, and
getaddrinfo through libc."""

from __future__ import annotations

import random
import secrets
import shutil
import subprocess

import pytest

from tests.support.live_probe import Workload, run_around, save_example

pytestmark = pytest.mark.ebpf

SCRIPT = r"""
import json, socket, struct, sys, threading, time

def query(name, qtype, ident):
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return header + labels + b"\0" + struct.pack("!HH", qtype, 1)

silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); silent.bind(("127.0.0.1", 0))
port = silent.getsockname()[1]
print(json.dumps({"port": port}), flush=True)
sys.stdin.readline()
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(0.3)
for i in range(3):                                   # sendto, no answer: timeouts
    client.sendto(query("db.internal.example", 1, 0x100 + i), ("127.0.0.1", port))
    try:
        client.recvfrom(512)
    except socket.timeout:
        pass
connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # connect() then send()
connected.connect(("127.0.0.1", port))
connected.send(query("cache.internal.example", 28, 0x200))
print(json.dumps({"port": port}), flush=True)
"""

ANSWERING = r"""
import json, socket, struct, sys, threading
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(("127.0.0.1", 0))
port = server.getsockname()[1]
def serve():
    while True:
        data, peer = server.recvfrom(512)
        flags = 0x8183                                   # answer, NXDOMAIN
        server.sendto(data[:2] + struct.pack("!H", flags) + data[4:], peer)
threading.Thread(target=serve, daemon=True).start()
print(json.dumps({"port": port}), flush=True)
sys.stdin.readline()
def query(name, ident):
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return header + labels + b"\0" + struct.pack("!HH", 1, 1)
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); client.settimeout(1)
for i in range(4):
    client.sendto(query("api.internal.example", 0x300 + i), ("127.0.0.1", port))
    client.recvfrom(512)
socket.getaddrinfo("localhost", 80)
print(json.dumps({}), flush=True)
"""


def test_unanswered_queries_name_server_query_and_process() -> None:
    workload = Workload(SCRIPT)
    port = workload.setup["port"]
    result = run_around("dns", workload, duration_s=2.5, params={"port": port})
    workload.finish()
    totals = result.aggregates.totals
    assert totals["queries"] == 4
    assert totals["answered"] == 0
    assert totals["unanswered"] == 4
    unanswered = {e.key: e.count for e in result.aggregates.top["unanswered"]}
    key = f"db.internal.example A to 127.0.0.1:{port} by {workload.label}"
    assert unanswered.get(key) == 3, unanswered
    names = {e.key for e in result.aggregates.top["names"]}
    assert "cache.internal.example AAAA" in names  # the connected socket's send()
    assert f"3 unanswered db.internal.example A to 127.0.0.1:{port}" in result.summary
    save_example(result)


def test_answered_queries_have_latency_rcode_and_getaddrinfo() -> None:
    workload = Workload(ANSWERING)
    port = workload.setup["port"]
    result = run_around("dns", workload, duration_s=2.5, params={"port": port})
    workload.finish()
    totals = result.aggregates.totals
    assert totals["queries"] == 4 == totals["answered"]
    assert totals["rcode_NXDOMAIN"] == 4
    latency = result.aggregates.latency["dns"]
    assert latency.count == 4
    assert latency.p99 is not None and 0 < latency.p99 < 500  # ms, loopback
    assert totals["getaddrinfo"] >= 1  # uprobe on libc
    assert "getaddrinfo" in result.aggregates.latency


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig not installed")
def test_dig_query_is_parsed() -> None:
    import threading

    from probes.engine.runner import run_probe
    from probes.models import ProbeRequest

    workload = Workload(SCRIPT)
    port = workload.setup["port"]

    attached = threading.Event()
    box = {}
    request = ProbeRequest(probe="dns", duration_s=3, params={"port": port})
    thread = threading.Thread(
        target=lambda: box.update(
            r=run_probe(request, on_progress=lambda p: p.phase == "attached" and attached.set())
        )
    )
    thread.start()
    assert attached.wait(60)
    subprocess.run(
        ["dig", "+tries=1", "+time=1", "@127.0.0.1", "-p", str(port), "orders.example", "MX"],
        capture_output=True,
    )
    thread.join(60)
    workload.kill()
    result = box["r"]
    names = {e.key for e in result.aggregates.top["names"]}
    assert "orders.example MX" in names


FAILING_AND_SLOW = r"""
import json, socket, struct, sys, threading, time
missing, slow_name, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(("127.0.0.1", 0))
port = server.getsockname()[1]
def answer(data, peer):
    slow = slow_name.encode().split(b".")[0] in data
    if slow:
        time.sleep(delay)
    flags = 0x8180 if slow else 0x8183                   # NOERROR after a delay, or NXDOMAIN
    server.sendto(data[:2] + struct.pack("!H", flags) + data[4:], peer)
def serve():
    while True:
        data, peer = server.recvfrom(512)
        threading.Thread(target=answer, args=(data, peer), daemon=True).start()
threading.Thread(target=serve, daemon=True).start()
print(json.dumps({"port": port}), flush=True)
sys.stdin.readline()
def query(name, ident):
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return header + labels + b"\0" + struct.pack("!HH", 1, 1)
for i, name in enumerate([missing] * 3 + [slow_name] * 2):
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); client.settimeout(5)
    client.sendto(query(name, 0x400 + i), ("127.0.0.1", port))
    client.recvfrom(512)
    client.close()
print(json.dumps({}), flush=True)
"""


def test_error_and_slow_answers_are_tabled_by_asker_server_and_name() -> None:
    missing = f"db-{secrets.token_hex(3)}.internal.example"
    slow_name = f"slow{secrets.token_hex(3)}.internal.example"
    delay = random.uniform(0.6, 0.9)
    workload = Workload(FAILING_AND_SLOW, missing, slow_name, f"{delay:.2f}")
    port = workload.setup["port"]
    result = run_around("dns", workload, duration_s=4, params={"port": port})
    workload.finish()
    server = f"127.0.0.1:{port}"
    failed = result.aggregates.top["failed"]
    assert failed[0].count == 3, failed
    assert failed[0].labels["rcode"] == "NXDOMAIN" and failed[0].labels["name"] == missing
    assert failed[0].labels["server"] == server and failed[0].labels["pid"] == workload.pid
    slow = result.aggregates.top["slow"]
    assert len(slow) == 1 and slow[0].labels["server"] == server, slow
    assert slow[0].labels["answered_slowly"] == 2 and slow[0].labels["name"] == f"{slow_name} A"
    assert slow[0].value is not None and delay * 1000 * 0.9 <= slow[0].value < delay * 1000 + 500
    assert "slow answers" in result.summary and "3 NXDOMAIN" in result.summary
