"""The probe's own process is invisible to its tables (self_pid in bs_config, in the kernel), and
a probe may include kernel headers next to common.h (comm buffers are BPFS_COMM_LEN, not
TASK_COMM_LEN)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from probes.engine.child import ChildJob, ChildMessage
from probes.engine.compile import COMMON_PRELUDE
from probes.engine.runner import PROBES_DIR, prepare
from probes.models import ProbeFilters, ProbeRequest

pytestmark = pytest.mark.ebpf


def test_a_probe_filtered_on_its_own_process_counts_nothing_of_it() -> None:
    """The child sleeps in clock_nanosleep every 100 ms while it traces; filtered on its own pid
    it would count ~20 of them in 2 s if it did not leave itself out."""
    child = subprocess.Popen(
        [sys.executable, "-m", "probes.engine.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=str(PROBES_DIR.parent),
    )
    request = ProbeRequest(
        probe="tracepoint",
        duration_s=2,
        filters=ProbeFilters(pid=child.pid),
        params={"tracepoint": "syscalls:sys_enter_clock_nanosleep"},
    )
    prepared = prepare(request)
    job = ChildJob(
        request=request,
        params=prepared.params,
        plan=prepared.plan,
        cflags=prepared.cflags,
        config=prepared.config,
    )
    out, _ = child.communicate(job.model_dump_json().encode(), timeout=60)
    messages = [ChildMessage.model_validate_json(line) for line in out.splitlines() if line]
    result = messages[-1].result
    assert result is not None and result.error is None, result
    assert result.duration_s >= 1.9
    assert result.event_count == 0, result.summary


def test_a_probe_may_include_a_kernel_header_that_defines_task_comm_len() -> None:
    from bcc import BPF

    with open(COMMON_PRELUDE) as handle:
        source = handle.read()
    source += """
#line 1
#include <uapi/linux/bpf_perf_event.h>
struct key_t { char comm[BPFS_COMM_LEN]; char kernel_comm[TASK_COMM_LEN]; };
BPF_HASH(seen, struct key_t, u64, 16);
int on_sample(struct bpf_perf_event_data *ctx)
{
    struct key_t key = {};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    seen.increment(key);
    return 0;
}
"""
    bpf = BPF(text=source, cflags=["-Wno-macro-redefined", "-Wno-unused-function"])
    try:
        assert bpf.load_func("on_sample", BPF.PERF_EVENT).fd > 0
    finally:
        bpf.cleanup()
