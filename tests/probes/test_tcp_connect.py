"""tcp_connect, live: refused connects to a closed port, one established, one blocked by errno."""

from __future__ import annotations

import pytest

from probes.models import ProbeFilters
from tests.support.live_probe import UNANSWERED_CONNECTS, Workload, run_around, save_example

pytestmark = pytest.mark.ebpf

SCRIPT = r"""
import json, socket, sys
closed = socket.socket(); closed.bind(("127.0.0.1", 0))
port = closed.getsockname()[1]; closed.close()
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(8)
print(json.dumps({"closed_port": port, "open_port": listener.getsockname()[1]}), flush=True)
sys.stdin.readline()
for _ in range(5):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
    except ConnectionRefusedError:
        pass
    s.close()
s = socket.socket(); s.setblocking(False)           # non-blocking: EINPROGRESS, then RST
try:
    s.connect(("127.0.0.1", port))
except BlockingIOError:
    pass
import time; time.sleep(0.2); s.close()
ok = socket.create_connection(("127.0.0.1", listener.getsockname()[1])); ok.close()
print(json.dumps({}), flush=True)
"""


def test_refused_connects_are_attributed_to_the_process_and_port() -> None:
    workload = Workload(SCRIPT)
    result = run_around("tcp_connect", workload, duration_s=2.5)
    workload.finish()
    closed = workload.setup["closed_port"]
    totals = result.aggregates.totals
    assert totals["refused"] == 6  # 5 blocking + 1 non-blocking
    assert totals["established"] == 1
    culprit = result.aggregates.top["failures"][0]
    assert culprit.count == 6
    assert culprit.labels["destination"] == f"127.0.0.1:{closed}"
    assert culprit.labels["pid"] == workload.pid
    assert culprit.labels["outcome"] == "refused"
    assert f"6 refused to 127.0.0.1:{closed}" in result.summary
    assert f"pid {workload.pid}" in result.summary
    latency = result.aggregates.latency["connect"]
    assert latency.count == 7 == totals["attempts"]
    assert latency.p99 is not None and 0 < latency.p99 < 100  # ms, loopback
    assert result.event_count == totals["attempts"]
    assert any(e["data"]["outcome"] == "refused" for e in result.events)
    assert all(e["process_id"] == workload.pid for e in result.events)
    assert "tracepoint:sock:inet_sock_set_state" in result.attach_points
    assert totals["timeout"] == totals["error"] == 0
    save_example(result)


def test_comm_filter_keeps_other_processes_out() -> None:
    workload = Workload(SCRIPT)
    result = run_around(
        "tcp_connect", workload, duration_s=2.0, filters=ProbeFilters(comm="no-such-comm")
    )
    workload.finish()
    assert result.event_count == 0
    assert result.aggregates.totals["attempts"] == 0


def test_a_connect_that_gets_no_answer_is_a_timeout() -> None:
    # the first fill the accept queue; then SYNs are dropped; the client gives up after 1.5 s
    workload = Workload(UNANSWERED_CONNECTS, "3", "1.5", "close")
    port = workload.setup["port"]
    result = run_around("tcp_connect", workload, duration_s=2.5)
    workload.finish()
    totals = result.aggregates.totals
    assert totals["timeout"] >= 1
    assert totals["established"] + totals["timeout"] == 3
    failure = result.aggregates.top["failures"][0]
    assert failure.labels["outcome"] == "timeout"
    assert failure.labels["destination"] == f"127.0.0.1:{port}"
    assert failure.value is not None and failure.value >= 1000  # ms waited before giving up


def test_connects_still_waiting_at_the_end_are_reported_as_pending() -> None:
    workload = Workload(UNANSWERED_CONNECTS, "4", "6")  # still waiting when the probe ends
    port = workload.setup["port"]
    result = run_around("tcp_connect", workload, duration_s=2.0)
    workload.kill()
    totals = result.aggregates.totals
    assert totals["pending"] >= 1
    pending = result.aggregates.top["pending"][0]
    assert pending.key == f"127.0.0.1:{port} by {workload.label}"
    assert "still waiting for an answer" in result.summary
    assert f"to 127.0.0.1:{port} by {workload.label}" in result.summary
