"""irq, live: loopback TCP traffic from one process runs NET_RX softirqs in its context."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probes.engine.runner import run_probe
from probes.models import ProbeFilters, ProbeRequest, ProbeResult
from tests.support.ebpf import scaled
from tests.support.paths import example_json

EXAMPLE = example_json("irq")

# One process: a listener thread drains what the main thread sends over loopback, for argv[1] s at
# most.
TRAFFIC_PY = r"""
import socket, sys, threading, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
def drain():
    conn, _ = server.accept()
    while conn.recv(65536):
        pass
threading.Thread(target=drain, daemon=True).start()
client = socket.create_connection(server.getsockname())
chunk = b"x" * 16384
end = time.time() + float(sys.argv[1])
print("ready", flush=True)
while time.time() < end:
    client.sendall(chunk)
"""


def _save_example(result: ProbeResult) -> None:
    if os.environ.get("BPFSLEUTH_UPDATE_EXAMPLES") == "1":
        EXAMPLE.write_text(result.model_dump_json(indent=2) + "\n")


@pytest.mark.ebpf
def test_loopback_traffic_shows_net_rx_softirqs_in_the_sender(tmp_path: Path) -> None:
    script = tmp_path / f"w{secrets.token_hex(3)}.py"
    script.write_text(TRAFFIC_PY)
    traffic = subprocess.Popen(
        [sys.executable, str(script), str(scaled(60))], stdout=subprocess.PIPE
    )
    try:
        assert traffic.stdout is not None and traffic.stdout.readline() == b"ready\n"
        time.sleep(0.1)
        result = run_probe(
            ProbeRequest(probe="irq", duration_s=scaled(2.0), filters=ProbeFilters(pid=traffic.pid))
        )
    finally:
        traffic.kill()
        traffic.wait()

    assert result.error is None, result.error
    assert "tracepoint:irq:softirq_entry" in result.attach_points
    softirqs = {entry.key: entry for entry in result.aggregates.top["softirqs"]}
    assert "NET_RX" in softirqs, softirqs
    net_rx = softirqs["NET_RX"]
    assert net_rx.count >= 100
    assert net_rx.value is not None and net_rx.value > 0.0  # total ms
    assert 0.0 < float(net_rx.labels["max_us"]) < 1_000_000
    # Filtered on the sender: every softirq counted ran in its context.
    contexts = result.aggregates.top["softirq_contexts"]
    assert contexts and all(f"(pid {traffic.pid})" in c.key for c in contexts)
    assert any(c.key.startswith("NET_RX in ") for c in contexts)
    assert result.aggregates.totals["softirqs"] >= net_rx.count
    # The maps are read after detaching, as one snapshot: both tables count the same softirqs.
    assert result.aggregates.latency["softirq"].count == result.aggregates.totals["softirqs"]
    assert "NET_RX" in result.summary and f"pid {traffic.pid}" in result.summary
    assert len(result.model_dump_json()) < 3000
    _save_example(result)


def test_every_answer_resolves_to_irq() -> None:
    from probes.catalog import load_catalog
    from probes.resolver import resolve_key

    spec = load_catalog().probes["irq"]
    assert "kprobe:handle_irq_event" in spec.answers
    for asked in spec.answers:
        resolved = resolve_key(asked)
        assert (resolved.how, resolved.probe) == ("answers", "irq"), resolved.reason
