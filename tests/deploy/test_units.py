"""The systemd units of deploy/systemd: valid for systemd, and hardened as docs/deploy.md says.

`systemd-analyze verify` checks each unit (syntax, known options, an executable ExecStart) with
ExecStart pointed at this checkout's venv; without systemd-analyze the check is skipped (the
option checks below still run).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import BPFSLEUTH, REPO

UNITS = REPO / "deploy" / "systemd"
INSTALLED = "/opt/bpfsleuth/.venv/bin/bpfsleuth"
NAMES = ("bpfsleuth-host-worker", "bpfsleuth-control-worker", "bpfsleuth-bot")
EBPF_CAPS = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"}


def _service(name: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for raw in (UNITS / f"{name}.service").read_text().splitlines():
        line = raw.strip()
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            options.setdefault(key, []).append(value)
    return options


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    venv_bpfsleuth = BPFSLEUTH
    assert venv_bpfsleuth.exists()
    copies = []
    for name in NAMES:
        text = (UNITS / f"{name}.service").read_text()
        assert INSTALLED in text
        copy = tmp_path / f"{name}.service"
        copy.write_text(text.replace(INSTALLED, str(venv_bpfsleuth)))
        copies.append(str(copy))
    done = subprocess.run(
        ["systemd-analyze", "verify", *copies], capture_output=True, text=True, timeout=60
    )
    complaints = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "bpfsleuth" in line and "Failed to" not in line.split(":", 1)[0]
    ]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr


def test_the_host_worker_keeps_only_what_ebpf_needs() -> None:
    unit = _service("bpfsleuth-host-worker")
    caps = set(unit["CapabilityBoundingSet"][0].split())
    assert caps >= EBPF_CAPS
    assert caps <= EBPF_CAPS | {
        "CAP_SYS_RESOURCE",
        "CAP_SYS_PTRACE",
        "CAP_DAC_READ_SEARCH",
        "CAP_KILL",
    }
    for option, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "read-only",
        "PrivateTmp": "yes",
        "CacheDirectory": "bpfsleuth",
    }.items():
        assert unit[option] == [value], option
    assert "BPFSLEUTH_CACHE_DIR=/var/cache/bpfsleuth" in unit["Environment"][0]
    # eBPF would break with these: none is set.
    for option in (
        "PrivateDevices",
        "MemoryDenyWriteExecute",
        "SystemCallFilter",
        "ProtectKernelTunables",
        "PrivateNetwork",
        "ProtectProc",
    ):
        assert option not in unit, option
    assert "--host %H" in unit["ExecStart"][0]


@pytest.mark.parametrize("name", ["bpfsleuth-control-worker", "bpfsleuth-bot"])
def test_the_control_worker_and_the_bot_run_without_any_capability(name: str) -> None:
    unit = _service(name)
    assert unit["DynamicUser"] == ["yes"]
    assert unit["CapabilityBoundingSet"] == [""]
    for option in (
        "NoNewPrivileges",
        "PrivateDevices",
        "MemoryDenyWriteExecute",
        "ProtectKernelTunables",
        "ProtectKernelModules",
    ):
        assert unit[option] == ["yes"], option
    assert unit["ProtectSystem"] == ["strict"]
