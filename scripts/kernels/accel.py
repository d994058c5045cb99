"""KVM when it works on this machine, TCG otherwise: a bounded probe boot, its verdict cached.

`/dev/kvm` existing is not enough: on this repo's development host (an AMD EPYC VM, nested KVM)
it exists, yet a KVM guest hangs right after the BIOS hands over to the kernel (DESIGN.md §4a).
So the probe boots the real kernel under KVM with no root disk and no initrd: a kernel that runs
prints its banner and panics at once ("VFS: Unable to mount root fs"), and QEMU exits on the
panic (`panic=-1`, `-no-reboot`). Banner within the deadline: KVM works. Anything else (no
banner, QEMU refusing KVM, a hang): TCG, with the reason. The probe's QEMU is killed at the
deadline with its whole process group; nothing is left running.

The verdict is cached (`accel.json` in the cache directory) per QEMU version, host kernel and
CPU model, so only the first run on a machine pays the probe (a few seconds where KVM works,
the deadline where it hangs).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

PROBE_DEADLINE_S = float(os.environ.get("BPFSLEUTH_KERNELS_KVM_PROBE_S", "30"))
BANNER = "Linux version"


class Verdict(NamedTuple):
    accel: str  # "kvm" or "tcg"
    why: str


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _qemu_version() -> str:
    try:
        out = subprocess.run(
            ["qemu-system-x86_64", "--version"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


def machine_key() -> str:
    """What the verdict depends on: QEMU, the host kernel, the CPU."""
    return f"{_qemu_version()} | {platform.release()} | {_cpu_model()}"


def qemu_args(accel: str, console: Path, *, mem: str, smp: str) -> list[str]:
    """QEMU with no devices but a serial console to a file, exiting on the guest's panic."""
    cpu = "max" if accel == "tcg" else "host,-arch-capabilities"  # see DESIGN.md §4a
    return [
        *("qemu-system-x86_64", "-accel", accel, "-cpu", cpu, "-m", mem, "-smp", smp),
        *("-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none"),
        *("-serial", f"file:{console}"),
    ]


def start_qemu(cmd: list[str]) -> subprocess.Popen[bytes]:
    """QEMU in its own process group (killed with it), stderr kept for the reason it stopped."""
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def probe_kvm(vmlinuz: Path, deadline_s: float = PROBE_DEADLINE_S) -> Verdict:
    """Boot `vmlinuz` under KVM for at most `deadline_s`; KVM if its banner appears."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Verdict("tcg", "no usable /dev/kvm")
    with tempfile.TemporaryDirectory(prefix="bpfsleuth-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        cmd = [
            *qemu_args("kvm", console, mem="256", smp="1"),
            *("-kernel", str(vmlinuz), "-append", "console=ttyS0 panic=-1"),
        ]
        started = time.monotonic()
        proc = start_qemu(cmd)
        try:
            while time.monotonic() - started < deadline_s:
                text = console.read_text(errors="replace") if console.is_file() else ""
                if BANNER in text:
                    took = time.monotonic() - started
                    return Verdict("kvm", f"a KVM guest printed its banner in {took:.1f} s")
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    detail = err.strip().splitlines()[-1] if err.strip() else "no output"
                    return Verdict("tcg", f"QEMU refused KVM (exit {proc.returncode}: {detail})")
                time.sleep(0.25)
            return Verdict(
                "tcg",
                f"a KVM guest printed nothing in {deadline_s:.0f} s (hung; nested KVM, DESIGN.md "
                "§4a); killed",
            )
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def choose(
    requested: str, vmlinuz: Path, cache_dir: Path, deadline_s: float = PROBE_DEADLINE_S
) -> Verdict:
    """`requested` is tcg, kvm or auto; auto probes once per machine and caches the verdict."""
    if requested in ("tcg", "kvm"):
        return Verdict(requested, "asked for")
    cache = cache_dir / "accel.json"
    key = machine_key()
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key and cached.get("accel") in ("tcg", "kvm"):
            return Verdict(cached["accel"], f"{cached.get('why', '')} (cached {cached['at']})")
    except (OSError, ValueError, KeyError):
        pass
    verdict = probe_kvm(vmlinuz, deadline_s)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {"key": key, "accel": verdict.accel, "why": verdict.why, "at": stamp}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(record, indent=1) + "\n")
    except OSError:
        pass  # an unwritable cache costs the probe next time, never the run
    return verdict
