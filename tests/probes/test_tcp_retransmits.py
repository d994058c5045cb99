"""tcp_retransmits, live: honest SYN retransmits (a listener whose accept queue is full drops
SYNs, so the client retransmits after the 1 s initial RTO) and resets (a connect to a closed
port: the kernel sends a RST, the client receives it)."""

from __future__ import annotations

import pytest

from probes.engine.tracefs import tracepoint_fields
from tests.support.live_probe import UNANSWERED_CONNECTS, Workload, run_around, save_example

pytestmark = pytest.mark.ebpf

CLOSED_PORT = r"""
import json, socket, sys
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
print(json.dumps({"port": port}), flush=True)
sys.stdin.readline()
for _ in range(3):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        pass
    s.close()
print(json.dumps({}), flush=True)
"""


def test_syn_retransmits_to_a_full_listener_are_attributed() -> None:
    workload = Workload(UNANSWERED_CONNECTS, "4", "2.2")
    port = workload.setup["port"]
    result = run_around("tcp_retransmits", workload, duration_s=3.0)
    workload.finish()
    assert result.aggregates.totals["retransmit"] >= 1
    endpoints = {e.key: e for e in result.aggregates.top["endpoints"]}
    top = endpoints[f"retransmits to 127.0.0.1:{port}"]
    assert top.labels["owner"] == workload.label
    assert f"retransmits to 127.0.0.1:{port}" in result.summary
    assert any(e["data"]["state"] == "SYN_SENT" for e in result.events)
    save_example(result)


def test_resets_for_a_closed_port() -> None:
    workload = Workload(CLOSED_PORT)
    port = workload.setup["port"]
    # no pid filter: the RST is sent by the kernel for a port nobody owns
    result = run_around("tcp_retransmits", workload, duration_s=2.0, by_pid=False)
    workload.finish()
    endpoints = {e.key: e for e in result.aggregates.top["endpoints"]}
    received = endpoints.get(f"resets received from 127.0.0.1:{port}")
    assert received is not None and received.count == 3, endpoints
    assert received.labels["owner"] == workload.label
    # tcp:tcp_send_reset fires without a socket (a reset for a closed port) only on kernels whose
    # tracepoint has a `reason` field; on older ones (6.1: measured in the kernel matrix, no
    # event) only resets of existing sockets are seen
    sk_less_resets = "reason" in tracepoint_fields("tcp", "tcp_send_reset")
    if "tracepoint:tcp:tcp_send_reset" in result.attach_points and sk_less_resets:
        sent = endpoints.get(f"resets sent for 127.0.0.1:{port}")
        assert sent is not None and sent.count == 3, endpoints
