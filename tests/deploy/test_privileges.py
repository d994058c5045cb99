"""A host worker without the privileges eBPF needs says so (doctor, hosts) instead of failing
each probe: `missing_privileges` reads the process's effective capabilities."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.support.paths import BPFSLEUTH
from worker.distributed.registry import HostRecord, host_rows, missing_privileges


@pytest.mark.parametrize(
    ("cap_eff", "missing"),
    [
        ("000001ffffffffff", []),  # privileged container / root on the host
        ("0000000000200000", []),  # CAP_SYS_ADMIN alone
        ("000000c000000000", []),  # CAP_BPF + CAP_PERFMON (kernel >= 5.8)
        ("00000000a80425fb", ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"]),  # docker's default
        ("0000008000000000", ["CAP_PERFMON", "CAP_SYS_ADMIN"]),  # CAP_BPF only
        ("0000000000000000", ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"]),
    ],
)
def test_missing_privileges_reads_the_effective_set(cap_eff: str, missing: list[str]) -> None:
    status = f"Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t{cap_eff}\n"
    assert missing_privileges(status) == missing


def test_hosts_rows_carry_what_the_worker_published() -> None:
    from probes.capabilities import HostCapabilities

    caps = HostCapabilities(
        hostname="h1", kernel="6.1.0", arch="x86_64", is_root=True, tracefs=False, btf=False
    )
    record = HostRecord(name="h1", capabilities=caps, missing_privileges=["CAP_BPF"])
    # Stored and read back as the registry does.
    again = HostRecord.model_validate_json(record.model_dump_json())
    assert host_rows([again])[0].missing_privileges == ["CAP_BPF"]
    old = json.loads(record.model_dump_json())
    del old["missing_privileges"]  # a record from a worker of the previous release
    assert HostRecord.model_validate(old).missing_privileges == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root, setpriv")
def test_doctor_run_without_ebpf_capabilities_says_which_and_how_to_fix() -> None:
    drop = "-sys_admin,-bpf,-perfmon"
    done = subprocess.run(
        [
            "setpriv",
            f"--bounding-set={drop}",
            f"--inh-caps={drop}",
            str(BPFSLEUTH),
            "doctor",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [check] = [c for c in json.loads(done.stdout)["checks"] if c["name"] == "privileges"]
    assert check["status"] == "missing"
    assert "CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN" in check["detail"]
    assert "privileged: true" in check["fix"] and "--cap-add" in check["fix"]
