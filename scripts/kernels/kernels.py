#!/usr/bin/env python3
"""The kernel matrix on the host: build and cache each kernel's VM base, boot it, fold the results.

    kernels.py run [--kernels 5.10,6.1,6.12] [--accel auto|tcg|kvm] [--boot-timeout S] [--timeout S]
    kernels.py table [--results bench/results/kernels.json]
    kernels.py merge FROM.json [--results bench/results/kernels.json]

Standard library only (bpfsleuth-independent). Caches live in $BPFSLEUTH_KERNELS_CACHE (default
/var/cache/bpfsleuth-kernels): the .deb files, the wheelhouse, and per kernel an ext4 base image
with its kernel and initrd; a missing or stale cache is rebuilt (time, never a failure). Each run
boots the cached base through a qcow2 overlay (the base is never written) with the project tree on
a second small ext4 disk (/dev/vdb) made fresh from the working tree; the VM's runner writes its
results there and the host reads them back with debugfs (nothing is mounted on the host).

Every wait has a deadline; QEMU runs in its own process group and is killed with it; the run
directory is removed whatever happens. Exit status: 0 when every kernel ran and nothing failed,
1 when a probe or check failed, 2 when a VM could not be built, booted or finish in time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # accel.py beside it, when imported too
import accel  # a sibling module, not a package
from accel import qemu_args, start_qemu

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
KERNELS = ("5.10", "6.1", "6.12")
KERNEL_SUITES = {"5.10": "bullseye", "6.1": "bookworm", "6.12": "bookworm-backports"}
CACHE = Path(os.environ.get("BPFSLEUTH_KERNELS_CACHE", "/var/cache/bpfsleuth-kernels"))
RESULTS = REPO / "bench" / "results" / "kernels.json"
STARTED_MARK = "bpfsleuth-vm-run: started"
FINISHED_MARK = "bpfsleuth-vm-run: finished"
POWEROFF_GRACE_S = 60.0
# A guest that has written nothing to either disk for this long is stuck: every in-VM step streams
# its log to the work disk (pytest -v: a line per test, each test <= 300 s; a probe compiles in
# <= 150 s) and journald writes the root disk. Seen: a 6.1 guest under TCG at load 6 livelocked
# (soft lockups in rcu_gp_kthread/__timer_delete_sync on both vCPUs) 3 min after boot, and sat
# there until the 90 min VM deadline.
IDLE_TIMEOUT_S = float(os.environ.get("BPFSLEUTH_KERNELS_IDLE_TIMEOUT", "900"))
VM_SETTINGS = (
    "BPFSLEUTH_KERNELS_SCENARIOS",
    "BPFSLEUTH_KERNELS_PROBE_TESTS",
    "BPFSLEUTH_KERNELS_PROBE_TESTS_TIMEOUT",
    "BPFSLEUTH_KERNELS_STEPS",
    "BPFSLEUTH_KERNELS_SANDBOX_TESTS",
    "BPFSLEUTH_KERNELS_SANDBOX_TIMEOUT",
    "BPFSLEUTH_KERNELS_SMOKE_PARALLEL",
    "BPFSLEUTH_TEST_TIME_SCALE",
    "BPFSLEUTH_PROBE_COMPILE_BUDGET_S",
)
# Tools that only lint or type-check: not needed in the VM.
NOT_IN_VM = ("ruff", "mypy", "types-")
# Test files whose name is not test_<probe>.py.
TEST_FILE_OF = {"tracepoint": "test_tracepoint_generic"}
DEFAULT_STEPS = "doctor,probe_smoke,resolver,scenarios,sandbox,probe_tests"
# What each Landlock ABI added (Documentation/userspace-api/landlock.rst): ABI -> (Linux, what).
LANDLOCK_ABI_ADDS = {
    1: ("5.13", "filesystem access"),
    2: ("5.19", "file reparenting (refer)"),
    3: ("6.2", "truncate"),
    4: ("6.7", "TCP bind and connect"),
    5: ("6.10", "device ioctls"),
    6: ("6.12", "signal and abstract unix socket scoping"),
    7: ("6.15", "audit logging"),
}
# The parts of a kernel's entry each in-VM step makes: a run that did not run the step keeps the
# kernel's earlier value, marked as carried over (with when it was measured).
KEY_STEP = {
    "doctor": "doctor",
    "doctor_checks": "doctor",
    "resolver": "resolver",
    "scenarios": "scenarios",
    "probe_smoke": "probe_smoke",
    "sandbox": "sandbox",
}


class KernelError(Exception):
    """A VM that could not be built, booted or finished: the message says which and why.
    `partial` holds what the VM's runner had written when it was stopped (may be empty)."""

    def __init__(self, message: str, partial: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.partial = partial or {}


def say(msg: str) -> None:
    print(f"kernels: {msg}", file=sys.stderr, flush=True)


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def sh(cmd: list[str], timeout: float, what: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a host command in its own process group; on timeout the whole group is killed."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kw,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise KernelError(f"{what}: timed out after {timeout:.0f} s") from None
    except BaseException:
        kill_group(proc)
        raise
    if proc.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise KernelError(f"{what}: exit {proc.returncode}\n{tail}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def kill_group(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------- caches


def requirements() -> str:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return "\n".join(d for d in deps if not d.startswith(NOT_IN_VM)) + "\n"


def digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def wheelhouse(reqs: str) -> Path:
    """The project's dependencies as wheels for the VM's CPython 3.11 (cached by requirements)."""
    dest = CACHE / f"wheelhouse-{digest(reqs.encode())}"
    if (dest / ".complete").exists():
        return dest
    tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix="wheelhouse-tmp-"))
    try:
        (tmp / "requirements.txt").write_text(reqs)
        pip = REPO / ".venv" / "bin" / "pip"
        cmd = [str(pip)] if pip.exists() else [sys.executable, "-m", "pip"]
        say(f"downloading the wheelhouse to {dest}")
        sh(
            [
                *cmd,
                "download",
                "-q",
                "--disable-pip-version-check",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                "--platform",
                "manylinux2014_x86_64",
                "--platform",
                "manylinux_2_17_x86_64",
                "--platform",
                "manylinux_2_28_x86_64",
                "-r",
                str(tmp / "requirements.txt"),
                "-d",
                str(tmp),
            ],
            900,
            "pip download (the project's dependencies for the VM)",
        )
        (tmp / ".complete").write_text("")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def base_key(kernel: str, reqs: str) -> str:
    files = [HERE / "build-base.sh", *sorted((HERE / "vm-files").rglob("*"))]
    parts = [f.read_bytes() for f in files if f.is_file()]
    extra = os.environ.get("BPFSLEUTH_KERNELS_EXTRA_PACKAGES", "")
    return digest(kernel.encode(), reqs.encode(), extra.encode(), *parts)


def ensure_base(kernel: str, timings: dict[str, Any]) -> Path:
    """The cached base of `kernel`, built when missing or stale."""
    reqs = requirements()
    key = base_key(kernel, reqs)
    base = CACHE / kernel
    wanted = ("base.ext4", "vmlinuz", "initrd.img", "kernel-release")
    current = (base / "key").is_file() and (base / "key").read_text().strip() == key
    if current and all((base / f).is_file() for f in wanted):
        timings["base_cached"] = True
        return base
    timings["base_cached"] = False
    started = time.monotonic()
    wheels = wheelhouse(reqs)
    timings["wheelhouse_s"] = round(time.monotonic() - started, 1)
    (base / "key").unlink(missing_ok=True)
    base.mkdir(parents=True, exist_ok=True)
    (CACHE / "requirements.txt").write_text(reqs)
    say(
        f"building the {kernel} base (bookworm userland, {KERNEL_SUITES[kernel]} kernel), "
        f"load {load()}"
    )
    started = time.monotonic()
    timeout = float(os.environ.get("BPFSLEUTH_KERNELS_BUILD_TIMEOUT", "1800"))
    sh(
        [
            "nice",
            "-n",
            "10",
            str(HERE / "build-base.sh"),
            kernel,
            str(base),
            str(CACHE / "requirements.txt"),
            str(wheels),
            str(CACHE / "debs"),
        ],
        timeout + 60,
        f"building the {kernel} base",
    )
    timings["base_build_s"] = round(time.monotonic() - started, 1)
    (base / "key").write_text(key + "\n")
    return base


# ---------------------------------------------------------------- one VM


def tree_files() -> list[str]:
    """The working tree as git sees it (tracked and untracked, not ignored)."""
    out = sh(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], 60, "git ls-files"
    )
    return [f for f in out.stdout.split("\0") if f and (REPO / f).is_file()]


def make_work_disk(run_dir: Path) -> Path:
    work = run_dir / "work"
    src = work / "src"
    for rel in tree_files():
        dest = src / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest)
    (work / "out").mkdir()
    # the in-VM runner's settings, passed on from the host's environment
    forwarded = [k for k in VM_SETTINGS if k in os.environ]
    (work / "env").write_text(
        "".join(f"export {k}={shlex.quote(os.environ[k])}\n" for k in forwarded)
    )
    disk = run_dir / "work.ext4"
    sh(
        ["mkfs.ext4", "-q", "-F", "-L", "bpfsleuth-work", "-d", str(work), str(disk), "512M"],
        120,
        "mkfs.ext4 (work disk)",
    )
    shutil.rmtree(work)
    return disk


def read_back(disk: Path, dest: Path) -> None:
    """Copy /out of the work disk to `dest` with debugfs (no mount)."""
    dest.mkdir(parents=True, exist_ok=True)
    sh(["debugfs", "-R", f"rdump /out {dest}", str(disk)], 120, "debugfs rdump /out")


def results_of(out: Path) -> dict[str, Any]:
    """The runner's result.json from a read-back /out, completed from its streamed pytest logs
    (a step killed at its deadline writes no junit file, but its -v log has every finished test)."""
    path = out / "result.json"
    if not path.is_file():
        return {}
    res: dict[str, Any] = json.loads(path.read_text())
    for step, key in (
        ("probe_tests", "probe_tests"),
        ("scenarios", "scenarios"),
        ("sandbox", "sandbox_tests"),
    ):
        if res.get(key) or not (out / f"{step}.log").is_file():
            continue
        rows = pytest_log_rows((out / f"{step}.log").read_text(errors="replace"))
        if rows:
            res[key] = rows
    return res


def pytest_log_rows(text: str) -> list[dict[str, Any]]:
    rows = []
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if "::" not in head or not rest:
            continue
        outcome = rest.split()[0]
        mapped = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error", "SKIPPED": "skipped"}
        if outcome not in mapped:
            continue
        path, _, name = head.partition("::")
        rows.append(
            {
                "file": Path(path).stem,
                "name": name,
                "outcome": mapped[outcome],
                "message": "(from the streamed log; the step was stopped before its report)",
                "seconds": 0.0,
            }
        )
    return rows


def salvage(disk: Path, run_dir: Path) -> dict[str, Any]:
    """What a stopped VM's runner had written, or {} when nothing can be read."""
    try:
        read_back(disk, run_dir / "salvage")
    except KernelError:
        return {}
    return results_of(run_dir / "salvage" / "out")


def qemu_cmd(base: Path, run_dir: Path, disk: Path, accel: str, append: str) -> list[str]:
    mem = os.environ.get("BPFSLEUTH_KERNELS_MEM", "2048")
    smp = os.environ.get("BPFSLEUTH_KERNELS_SMP", "2")
    return [
        *("nice", "-n", "10"),
        *qemu_args(accel, run_dir / "console.log", mem=mem, smp=smp),
        *("-kernel", str(base / "vmlinuz"), "-initrd", str(base / "initrd.img")),
        *("-append", f"root=/dev/vda rw console=ttyS0 panic=-1 {append}".strip()),
        *("-drive", f"file={run_dir / 'root.qcow2'},if=virtio,format=qcow2"),
        *("-drive", f"file={disk},if=virtio,format=raw"),
    ]


_WHY = re.compile(
    r"Kernel panic|not syncing|Attempted to kill init|Gave up waiting|ALERT!|Oops|BUG:|"
    r"Failed to start|emergency mode|bpfsleuth-vm-run"
)


def console_tail(run_dir: Path, lines: int = 10) -> str:
    """The console lines that say why a VM stopped (panics, failed units...) and the last ones."""
    path = run_dir / "console.log"
    if not path.is_file():
        return "(no console output)"
    text = path.read_text(errors="replace").replace("\r", "")
    kept = [ln for ln in text.splitlines() if ln.strip()]
    why = [ln for ln in kept[:-lines] if _WHY.search(ln)][-6:]
    shown = [*why, *(["    ..."] if why else []), *kept[-lines:]]
    return "\n".join("    " + ln for ln in shown) or "(no console output)"


def idle_for(paths: list[Path], now: float) -> float:
    """Seconds since the last write to any of `paths` (wall clock, from their mtimes)."""
    stamps = [p.stat().st_mtime for p in paths if p.exists()]
    return now - max(stamps) if stamps else 0.0


def lockups(run_dir: Path) -> int:
    """How many soft lockups and RCU stalls the guest's console reported."""
    path = run_dir / "console.log"
    if not path.is_file():
        return 0
    text = path.read_text(errors="replace")
    return text.count("soft lockup") + text.count("rcu_preempt self-detected stall")


def boot(
    kernel: str,
    base: Path,
    accel: str,
    boot_timeout: float,
    timeout: float,
    append: str,
    timings: dict[str, Any],
) -> dict[str, Any]:
    """Boot `kernel`, wait for its runner, return its result.json."""
    (CACHE / "runs").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(dir=CACHE / "runs", prefix=f"{kernel}-"))
    proc: subprocess.Popen[bytes] | None = None
    say(f"{kernel}: run directory {run_dir}")
    try:
        started = time.monotonic()
        sh(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(base / "base.ext4"),
                str(run_dir / "root.qcow2"),
            ],
            60,
            "qemu-img create",
        )
        disk = make_work_disk(run_dir)
        timings["image_prep_s"] = round(time.monotonic() - started, 1)
        cmd = qemu_cmd(base, run_dir, disk, accel, append)
        say(f"booting {kernel} ({accel}), load {load()}")
        started = time.monotonic()
        proc = start_qemu(cmd)
        booted_at = None
        finished_at = None
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if finished_at is None and booted_at is not None:
                log = run_dir / "console.log"
                if FINISHED_MARK in log.read_text(errors="replace"):
                    finished_at = elapsed
            if finished_at is not None and elapsed - finished_at > POWEROFF_GRACE_S:
                # the runner unmounted and synced the work disk before saying it finished
                say(
                    f"{kernel}: the VM did not power off {POWEROFF_GRACE_S:.0f} s after its "
                    "runner finished; stopping it"
                )
                kill_group(proc)
                break
            if booted_at is None:
                log = run_dir / "console.log"
                if log.is_file() and STARTED_MARK in log.read_text(errors="replace"):
                    booted_at = elapsed
                    timings["boot_s"] = round(elapsed, 1)
                    say(f"{kernel}: the runner started {elapsed:.0f} s after power-on")
                elif elapsed > boot_timeout:
                    kill_group(proc)
                    raise KernelError(
                        f"{kernel}: the VM did not boot to its runner within {boot_timeout:.0f} s "
                        f"(killed). Last console lines:\n{console_tail(run_dir)}"
                    )
            if elapsed > timeout:
                kill_group(proc)
                raise KernelError(
                    f"{kernel}: the VM did not finish within {timeout:.0f} s (killed). "
                    f"Last console lines:\n{console_tail(run_dir)}",
                    salvage(disk, run_dir),
                )
            idle = idle_for([run_dir / "root.qcow2", disk], time.time())
            if booted_at is not None and finished_at is None and idle > IDLE_TIMEOUT_S:
                kill_group(proc)
                raise KernelError(
                    f"{kernel}: the guest wrote nothing to its disks for {idle:.0f} s "
                    f"(limit {IDLE_TIMEOUT_S:.0f} s): stuck, killed {elapsed:.0f} s after "
                    f"power-on; {lockups(run_dir)} soft lockups/RCU stalls on its console "
                    f"(TCG starved by host load livelocks guests). Last console lines:\n"
                    f"{console_tail(run_dir)}",
                    salvage(disk, run_dir),
                )
            time.sleep(0.5)
        timings["vm_wall_s"] = round(time.monotonic() - started, 1)
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        out = run_dir / "out"
        read_back(disk, out)
        if not (out / "out" / "result.json").is_file():
            raise KernelError(
                f"{kernel}: the VM stopped (qemu exit {proc.returncode}) without results: it did "
                f"not boot or its runner did not start.{' qemu: ' + err if err else ''} "
                f"Last console lines:\n{console_tail(run_dir)}"
            )
        res = results_of(out / "out")
        rc = (
            (out / "out" / "runner-rc").read_text().strip()
            if (out / "out" / "runner-rc").is_file()
            else "missing"
        )
        res["runner_rc"] = rc
        keep = CACHE / "last-run" / kernel
        shutil.rmtree(keep, ignore_errors=True)
        keep.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(out / "out", keep)
        shutil.copy2(run_dir / "console.log", keep / "console.log")
        return res
    finally:
        if proc is not None:
            kill_group(proc)
        shutil.rmtree(run_dir, ignore_errors=True)


# ---------------------------------------------------------------- the matrix


def catalog_probes() -> list[str]:
    return sorted(p.parent.name for p in (REPO / "probes" / "catalog").glob("*/probe.yaml"))


def probe_cell(probe: str, res: dict[str, Any]) -> dict[str, Any]:
    smoke = res.get("probe_smoke", {}).get(probe, {})
    test_file = TEST_FILE_OF.get(probe, f"test_{probe}")
    tests = [t for t in res.get("probe_tests", []) if t["file"] == test_file]
    failed = [t for t in tests if t["outcome"] in ("failed", "error")]
    passed = [t for t in tests if t["outcome"] == "passed"]
    skipped = [t for t in tests if t["outcome"] == "skipped"]
    cell: dict[str, Any] = {
        "compile_s": smoke.get("compile_s"),
        "attach_points": smoke.get("attach_points", []),
        # optional attach points this kernel lacks (the probe runs without them)
        "without": sorted(
            set(re.findall(r"tracepoint (\S+) does not exist", " ".join(smoke.get("warnings", []))))
        ),
        "tests": {"passed": len(passed), "failed": len(failed), "skipped": len(skipped)},
        # a skipped test (or an xfail, which junit reports as skipped) is not a pass: say why
        "skipped_reason": skipped[0]["message"][:200] if skipped else "",
    }
    if not smoke and not tests:
        cell.update(status="not run", reason="neither compiled nor tested in this run")
    elif smoke.get("status") == "unavailable" and not passed:
        cell.update(status="unavailable", reason=smoke.get("reason", ""))
    elif failed:
        first = failed[0]
        cell.update(status="fail", reason=f"{first['name']}: {first['message']}"[:400])
    elif smoke.get("status") == "fail":
        cell.update(status="fail", reason=f"compile/attach: {smoke.get('reason', '')}"[:400])
    elif passed:
        cell.update(status="pass", reason="")
    elif not tests and smoke.get("status") == "pass" and "probe_tests" not in res.get("steps", {}):
        cell.update(status="attached", reason="compiled and attached; live tests not run (smoke)")
    elif not tests and smoke.get("status") == "pass":
        cell.update(status="not run", reason="the probe tests stopped before reaching it")
    else:
        reason = skipped[0]["message"] if skipped else "no live test ran"
        cell.update(status="unavailable", reason=reason)
    return cell


def summarise(kernel: str, res: dict[str, Any], timings: dict[str, Any], accel: str) -> dict:
    steps = res.get("steps", {})
    tests = res.get("probe_tests", [])
    scen = res.get("scenarios", [])
    doctor = res.get("doctor", {})
    checks = doctor.get("checks", []) if isinstance(doctor, dict) else []
    return {
        "status": "ran",
        "accel": accel,
        "suite": KERNEL_SUITES.get(kernel, ""),
        "kernel": res.get("kernel", {}),
        "packages": res.get("packages", {}),
        "timings": {
            **timings,
            "boot_to_runner_guest_s": res.get("started_uptime_s"),
            "steps_s": {k: v.get("seconds") for k, v in steps.items()},
        },
        "steps": {k: {"rc": v.get("rc"), "error": v.get("error")} for k, v in steps.items()},
        "doctor_checks": [{k: c.get(k) for k in ("name", "status", "detail")} for c in checks],
        "doctor": doctor,
        # the doctor's own sandbox section (its one line); the sandbox step's findings below
        "sandbox_doctor": res.get("sandbox"),
        "sandbox": sandbox_summary(res),
        "resolver": res.get("resolver", []),
        "scenarios": [{k: t[k] for k in ("name", "outcome", "message", "seconds")} for t in scen],
        "probe_tests": counts(tests),
        "failed_tests": [
            {k: t[k] for k in ("file", "name", "outcome", "message")}
            for t in tests
            if t["outcome"] in ("failed", "error")
        ],
        "skipped_tests": [
            {k: t[k] for k in ("file", "name", "message")}
            for t in tests
            if t["outcome"] == "skipped"
        ],
        "runner_rc": res.get("runner_rc"),
        "probe_smoke": res.get("probe_smoke", {}),
    }


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    outcomes = ("passed", "failed", "error", "skipped")
    return {o: sum(1 for t in rows if t["outcome"] == o) for o in outcomes}


def landlock_summary(facts: dict[str, Any]) -> str:
    """One line: the kernel's Landlock ABI and what it lacks of the newest, or why it has none."""
    abi = int(facts.get("abi") or 0)
    if abi > 0:
        lacks = [
            f"{what} (ABI {n}, Linux {linux})"
            for n, (linux, what) in LANDLOCK_ABI_ADDS.items()
            if n > abi
        ]
        return f"ABI {abi}" + (f"; without {', '.join(lacks)}" if lacks else "")
    err = facts.get("errno") or "no errno"
    config = facts.get("config", "unknown")
    if err == "ENOSYS":
        return (
            "absent: the kernel has no landlock_create_ruleset (ENOSYS; Landlock came in Linux "
            f"5.13; CONFIG_SECURITY_LANDLOCK {config})"
        )
    if err in ("EOPNOTSUPP", "ENOTSUP"):
        return (
            f"built in (CONFIG_SECURITY_LANDLOCK={config}) but not enabled at boot: "
            f"'landlock' is not among the active LSMs ({facts.get('lsm', '?')}; EOPNOTSUPP)"
        )
    return f"absent ({err}; CONFIG_SECURITY_LANDLOCK {config})"


def sandbox_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The sandbox step's findings: Landlock, the layers the helper applied per kind of profile,
    the doctor's line, and the live sandbox tests (counts, every failure, skips by reason).
    {} when the step did not run."""
    step = res.get("sandbox_step") or {}
    rows = res.get("sandbox_tests") or []
    if not step and not rows:
        return {}
    helper = step.get("helper") or {}
    default = helper.get("default") or {}
    reasons: dict[str, list[str]] = {}
    for t in rows:
        if t["outcome"] == "skipped":
            name = f"{t['file']}::{t['name']}"
            reasons.setdefault(t["message"] or "(no reason)", []).append(name)
    return {
        "landlock": step.get("landlock", {}),
        "landlock_summary": landlock_summary(step.get("landlock", {})),
        "available": default.get("available"),
        "layers": default.get("layers", ""),
        "note": default.get("reason", ""),
        "profiles": {
            name: (helper[name] or {}).get("layers") or (helper[name] or {}).get("reason", "")
            for name in ("default", "network_tool", "process_reader")
            if name in helper
        },
        "doctor": {k: (helper.get("doctor") or {}).get(k) for k in ("status", "detail")},
        "tests": counts(rows),
        "failed": [
            {k: t[k] for k in ("file", "name", "outcome")} | {"message": t["message"][:400]}
            for t in rows
            if t["outcome"] in ("failed", "error")
        ],
        "skipped": [
            {"reason": reason[:300], "count": len(names), "tests": names[:6]}
            for reason, names in sorted(reasons.items(), key=lambda kv: -len(kv[1]))
        ],
    }


def fold(results_path: Path, kernel: str, entry: dict[str, Any], cells: dict[str, Any]) -> None:
    """Merge one kernel's results into the file (other kernels' entries are kept)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        if results_path.is_file():
            with contextlib.suppress(json.JSONDecodeError):
                data = json.loads(results_path.read_text())
        fold_into(data, kernel, entry, cells)
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_record(entry: dict[str, Any], measured: str) -> dict[str, Any]:
    """What one VM run did and how long it took: the entry's history keeps one per run."""
    t = entry.get("timings", {})
    steps = sorted(entry.get("steps", {}))
    scope = os.environ.get("BPFSLEUTH_KERNELS_PROBE_TESTS", "").strip() or "default"
    return {
        "measured": measured,
        "status": entry.get("status"),
        "steps": steps,
        "probe_tests_scope": scope if "probe_tests" in steps else "",
        "probe_tests": entry.get("probe_tests", {}) if "probe_tests" in steps else {},
        "sandbox_tests": (entry.get("sandbox") or {}).get("tests", {}),
        "scenarios": [s["outcome"] for s in entry.get("scenarios", [])]
        if "scenarios" in steps
        else [],
        **{
            k: t.get(k)
            for k in (
                "base_cached",
                "base_build_s",
                "boot_s",
                "vm_wall_s",
                "steps_s",
                "load_before",
                "load_after",
            )
        },
    }


def fold_into(
    data: dict[str, Any], kernel: str, entry: dict[str, Any], cells: dict[str, Any]
) -> None:
    """Fold one kernel's entry and matrix cells into `data`. A narrowed run (BPFSLEUTH_KERNELS_
    STEPS, _PROBE_TESTS) updates what it ran; every part of the entry it did not run, and every
    probe it did not test, keeps the earlier value and its measurement time (`measured_keys`,
    a cell's `measured`), and the entry's `carried_over` names those parts. An entry or cells
    that carry their own `measured` (from `merge`) keep it."""
    measured = entry.get("measured") or now_utc()
    data["generated_before"] = data.get("generated")
    data["generated"] = now_utc()
    data["userland"] = (
        "Debian bookworm on every kernel: Python 3.11, bcc 0.26 (python3-bpfcc), redis 7.0; "
        "the kernel and its exact headers from the kernel's own suite"
    )
    earlier = data.setdefault("kernels", {}).get(kernel, {})
    legacy = earlier.get("carried_over", {})
    legacy_from = legacy.get("from") if isinstance(legacy.get("from"), str) else None
    ran = set(entry.get("steps", {}))
    own_times = entry.get("measured_keys", {})
    times: dict[str, str] = {}
    carried: dict[str, str] = {}
    for key, step in {
        **KEY_STEP,
        "sandbox_doctor": "doctor",
        "probe_tests": "probe_tests",
        "failed_tests": "probe_tests",
        "skipped_tests": "probe_tests",
    }.items():
        if step in ran and key in entry and key not in entry.get("carried_over", {}):
            times[key] = own_times.get(key, measured)
        elif key in earlier and earlier[key] not in (None, {}, []):
            entry[key] = earlier[key]
            when = (
                earlier.get("measured_keys", {}).get(key)
                or (legacy_from if key in legacy.get("keys", []) else None)
                or earlier.get("measured")
                or f"before {data['generated_before'] or 'this file'}"
            )
            times[key] = carried[key] = when
    entry["measured"] = measured
    entry["measured_keys"] = times
    entry["carried_over"] = carried
    history = list(earlier.get("runs", []))
    if not history and earlier.get("timings"):
        history.append(run_record(earlier, earlier.get("measured") or "earlier (time not kept)"))
        history[-1]["probe_tests_scope"] = "earlier run (scope not kept)"
    seen = {r.get("measured") for r in history}
    mine = entry.get("runs") or [run_record(entry, measured)]
    entry["runs"] = [*history, *(r for r in mine if r.get("measured") not in seen)][-10:]
    data["kernels"][kernel] = entry
    matrix = data.setdefault("matrix", {})
    for probe, new in cells.items():
        cell = dict(new)
        old = matrix.setdefault(probe, {}).get(kernel)
        if old and cell["status"] == "not run":
            continue  # not part of this run: the last result stands (with its own time)
        if old and cell["status"] == "attached" and old["status"] in ("pass", "fail"):
            # compiled and attached only (a smoke run): the live tests' last verdict stands
            old.update(compile_s=cell["compile_s"], attach_points=cell["attach_points"])
            continue
        if old and cell.get("compile_s") is None and old.get("compile_s") is not None:
            cell.update(compile_s=old["compile_s"], attach_points=old.get("attach_points", []))
            cell["compile_measured"] = old.get("compile_measured") or old.get("measured")
        cell["measured"] = cell.get("measured") or measured
        matrix[probe][kernel] = cell


def merge(source: Path, results_path: Path) -> list[str]:
    """Fold every kernel of another results file (a run written elsewhere with --results) into
    `results_path`, keeping the source's measurement times. Returns the kernels merged."""
    src = json.loads(source.read_text())
    done = []
    for kernel, entry in sorted(
        src.get("kernels", {}).items(), key=lambda kv: str(kv[1].get("measured", ""))
    ):
        cells = {
            probe: by_kernel[kernel]
            for probe, by_kernel in src.get("matrix", {}).items()
            if kernel in by_kernel
        }
        fold(results_path, kernel, dict(entry), cells)
        done.append(kernel)
    return done


def hhmm(stamp: str | None) -> str:
    """`2026-12-06T11:35:02+00:00` -> `11:35`; anything else as it is."""
    found = re.match(r"\d{4}-\d\d-\d\dT(\d\d:\d\d)", stamp or "")
    return found.group(1) if found else (stamp or "?")


def when(stamp: str | None) -> str:
    """`2026-12-06T11:35:02+00:00` -> `2026-12-06 11:35`; anything else as it is."""
    found = re.match(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)", stamp or "")
    return f"{found.group(1)} {found.group(2)}" if found else (stamp or "?")


def reference_run(entry: dict[str, Any]) -> str | None:
    """When the kernel's matrix column was last measured as a whole: its latest run with the
    default (or all) live probe tests."""
    full = [
        r["measured"]
        for r in entry.get("runs", [])
        if "probe_tests" in r.get("steps", []) and r.get("probe_tests_scope") in ("default", "all")
    ]
    return max(full) if full else None


def matrix_text(cell: dict[str, Any], reference: str | None, latest: str | None = None) -> str:
    """A cell as text; its time against the kernel's last full run (`reference`) and its last
    run of any scope (`latest`): measured in the full run, no mark; later, or in the latest run
    when no full run is recorded, `[re-run]`; earlier, `[carried over]`."""
    text = str(cell["status"])
    if cell.get("compile_s") is not None:
        text += f" ({cell['compile_s']:.1f} s)"
    if cell["status"] != "pass":
        text += f": {cell.get('reason', '')[:120]}"
    elif cell.get("without"):
        text += f"; without {', '.join(cell['without'])}"
    tests = cell.get("tests") or {}
    if cell["status"] == "pass" and tests.get("skipped"):
        total = sum(tests.get(k, 0) for k in ("passed", "failed", "skipped"))
        why = cell.get("skipped_reason") or ""
        text += f"; {tests['skipped']} of {total} tests skipped"
        text += f" ({why[:100]})" if why else ""
    measured = cell.get("measured")
    if not measured:
        text += " [earlier run, time not kept]" if cell["status"] != "not run" else ""
    elif measured == reference:
        pass
    elif (reference and measured > reference) or (reference is None and measured == latest):
        text += f" [re-run {hhmm(measured)} UTC]"
    else:
        text += f" [carried over: measured {measured[:10]} {hhmm(measured)} UTC]"
    return text.replace("|", "/").replace("\n", " ")


def sandbox_rows(data: dict[str, Any], kernels: list[str]) -> list[str]:
    lines = [
        "| kernel | Landlock | layers (default profile) | doctor | sandbox tests "
        "| skipped, and why | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in kernels:
        entry = data["kernels"][k]
        box = entry.get("sandbox") or {}
        when = (entry.get("measured_keys") or {}).get("sandbox")
        carried = "sandbox" in entry.get("carried_over", {})
        mark = f" [carried over: {hhmm(when)} UTC]" if carried else ""
        if "landlock_summary" not in box:
            # no sandbox step recorded: only the doctor's line (older entries kept it here)
            box = {} if "landlock_summary" in (entry.get("sandbox_doctor") or {}) else box
        if not box or "landlock_summary" not in box:
            doc = entry.get("sandbox_doctor") or box or {}
            doc = doc.get("sandbox", doc) if isinstance(doc, dict) else {}
            lines.append(
                f"| {k} | not measured | {doc.get('layers') or '-'} | "
                f"{doc.get('reason') or ('available' if doc.get('available') else '-')} "
                "| sandbox step not run | - | - |"
            )
            continue
        tests = box.get("tests", {})
        skipped = "; ".join(f"{s['count']}: {s['reason'][:160]}" for s in box.get("skipped", []))
        failed = "; ".join(
            f"{f['file']}::{f['name']}: {f['message'][:160]}" for f in box.get("failed", [])
        )
        doctor = box.get("doctor") or {}
        row = [
            k,
            box.get("landlock_summary", "?"),
            box.get("layers") or f"unavailable: {box.get('note', '')}",
            f"{doctor.get('status')}: {doctor.get('detail')}",
            f"{tests.get('passed', 0)} passed, {tests.get('failed', 0) + tests.get('error', 0)} "
            f"failed, {tests.get('skipped', 0)} skipped (at {hhmm(when)} UTC){mark}",
            skipped or "-",
            failed or "-",
        ]
        lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in row) + " |")
    return lines


def runs_rows(data: dict[str, Any], kernels: list[str]) -> list[str]:
    lines = [
        "| kernel | run (UTC) | steps | image | boot to runner s | doctor s | compile+attach s "
        "| scenarios s | probe tests s | sandbox tests s | VM wall s | load before / after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def sec(steps: dict[str, Any], name: str) -> str:
        value = steps.get(name)
        return "-" if value is None else f"{value:.0f}"

    for k in kernels:
        for r in data["kernels"][k].get("runs", []):
            steps = r.get("steps_s") or {}
            image = "cached" if r.get("base_cached") else f"built {r.get('base_build_s', '?')} s"
            probe = sec(steps, "probe_tests")
            if probe != "-":
                pt = r.get("probe_tests") or {}
                probe += (
                    f" ({pt.get('passed', 0)} passed, {pt.get('failed', 0) + pt.get('error', 0)}"
                    f" failed; {r.get('probe_tests_scope') or '?'})"
                )
            box = sec(steps, "sandbox")
            if box != "-":
                st = r.get("sandbox_tests") or {}
                box += (
                    f" ({st.get('passed', 0)} passed, {st.get('failed', 0) + st.get('error', 0)}"
                    f" failed, {st.get('skipped', 0)} skipped)"
                )
            lines.append(
                f"| {k} | {when(r.get('measured'))} "
                f"| {','.join(r.get('steps', []))} | {image} | {r.get('boot_s', '-')} "
                f"| {sec(steps, 'doctor')} | {sec(steps, 'probe_smoke')} "
                f"| {sec(steps, 'scenarios')} | {probe} | {box} | {r.get('vm_wall_s', '-')} "
                f"| {r.get('load_before', '-')} / {r.get('load_after', '-')} |"
            )
    return lines


def table(results_path: Path) -> str:
    """The matrix (probe x kernel), the sandbox per kernel and every run's times, as markdown."""
    data = json.loads(results_path.read_text())
    kernels = [k for k in KERNELS if k in data.get("kernels", {})]
    refs = {k: reference_run(data["kernels"][k]) for k in kernels}
    head = "| probe | " + " | ".join(
        f"{k} ({data['kernels'][k].get('kernel', {}).get('release', '?')}; "
        f"{'run ' + hhmm(refs[k]) + ' UTC' if refs[k] else 'no full run recorded'})"
        for k in kernels
    )
    lines = [head + " |", "|---" * (len(kernels) + 1) + "|"]
    for probe in sorted(data.get("matrix", {})):
        row = [probe]
        for k in kernels:
            cell = data["matrix"][probe].get(k)
            latest = data["kernels"][k].get("measured")
            row.append("not run" if cell is None else matrix_text(cell, refs[k], latest))
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", *sandbox_rows(data, kernels), "", *runs_rows(data, kernels)]
    return "\n".join(lines)


@contextlib.contextmanager
def cpu_lock() -> Any:
    """Hold $BPFSLEUTH_KERNELS_CPU_LOCK (a flock file shared with other heavy runs) while a VM
    runs, so its emulated CPUs do not overlap other timing-sensitive tests; no-op when unset."""
    path = os.environ.get("BPFSLEUTH_KERNELS_CPU_LOCK", "")
    if not path:
        yield
        return
    with open(path, "a") as fh:
        waited = time.monotonic()
        fcntl.flock(fh, fcntl.LOCK_EX)
        if time.monotonic() - waited > 1:
            say(f"waited {time.monotonic() - waited:.0f} s for {path}")
        yield


def run_kernel(kernel: str, args: argparse.Namespace) -> int:
    timings: dict[str, Any] = {"load_before": load()}
    started = time.monotonic()
    try:
        base = ensure_base(kernel, timings)
        if args.accel == "auto":  # decided once per run (and cached per machine): accel.py
            verdict = accel.choose("auto", base / "vmlinuz", CACHE)
            args.accel, args.accel_why = verdict.accel, verdict.why
            say(f"accelerator: {verdict.accel} ({verdict.why})")
        with cpu_lock():
            res = boot(
                kernel, base, args.accel, args.boot_timeout, args.timeout, args.append, timings
            )
    except KernelError as exc:
        say(f"FAILED: {exc}")
        if args.results and exc.partial:
            finish(kernel, exc.partial, timings, args, status=f"incomplete: {exc}")
        elif args.results:
            fold(
                Path(args.results),
                kernel,
                {"status": "error", "error": str(exc), "timings": timings},
                {},
            )
        return 2
    timings["total_s"] = round(time.monotonic() - started, 1)
    return finish(kernel, res, timings, args)


def finish(
    kernel: str,
    res: dict[str, Any],
    timings: dict[str, Any],
    args: argparse.Namespace,
    status: str = "ran",
) -> int:
    """Fold one kernel's results into the results file and say how it went."""
    timings["load_after"] = load()
    cells = {probe: probe_cell(probe, res) for probe in catalog_probes()}
    entry = summarise(kernel, res, timings, args.accel)
    entry["accel_why"] = getattr(args, "accel_why", "asked for")
    entry["status"] = status
    # this run's verdicts, before the fold carries earlier values into the parts it did not run
    bad = [p for p, c in cells.items() if c["status"] == "fail"]
    scenarios = list(entry["scenarios"])
    scen_bad = [s["name"] for s in scenarios if s["outcome"] != "passed"]
    other_bad = [t["name"] for t in entry["failed_tests"]]
    box = entry["sandbox"]
    box_bad = [f"{f['file']}::{f['name']}" for f in box.get("failed", [])]
    say(
        f"{kernel}: {sum(c['status'] == 'pass' for c in cells.values())} probes pass, "
        f"{sum(c['status'] == 'attached' for c in cells.values())} compiled and attached "
        "(no live tests), "
        f"{len(bad)} fail {bad}, "
        f"{sum(c['status'] == 'unavailable' for c in cells.values())} unavailable; "
        f"scenarios {len(scenarios) - len(scen_bad)}/{len(scenarios)}; "
        f"tests {entry['probe_tests']}; sandbox: {box.get('landlock_summary', 'not run')}, "
        f"{box.get('layers', '')}, tests {box.get('tests', {})} {box_bad}; {timings}"
    )
    if args.results:
        fold(Path(args.results), kernel, entry, cells)
    wanted = [
        s.strip()
        for s in os.environ.get("BPFSLEUTH_KERNELS_STEPS", DEFAULT_STEPS).split(",")
        if s.strip()
    ]
    if os.environ.get("BPFSLEUTH_KERNELS_PROBE_TESTS") == "none" and "probe_tests" in wanted:
        wanted.remove("probe_tests")
    missing = [
        s for s in wanted if entry["steps"].get(s, {}).get("error") or s not in entry["steps"]
    ]
    if missing:
        say(f"{kernel}: steps that timed out or did not run: {missing}")
    if status != "ran":
        return 2
    no_scenarios = "scenarios" in wanted and not scenarios
    failed = bad or scen_bad or other_bad or box_bad or missing or no_scenarios
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="build (when needed), boot and test kernels")
    run.add_argument("--kernels", default=",".join(KERNELS))
    run.add_argument(
        "--accel",
        default=os.environ.get("BPFSLEUTH_KERNELS_ACCEL", "auto"),
        choices=("auto", "tcg", "kvm"),
        help="auto: KVM when a bounded probe boot shows it works here, else TCG (accel.py)",
    )
    run.add_argument("--boot-timeout", type=float, default=300.0)
    run.add_argument("--timeout", type=float, default=5400.0, help="per VM, seconds")
    run.add_argument("--append", default="", help="extra kernel command line")
    run.add_argument("--results", default=str(RESULTS), help="'' to write no results")
    build = sub.add_parser("build", help="build the cached bases only")
    build.add_argument("--kernels", default=",".join(KERNELS))
    fo = sub.add_parser("fold", help="fold the results on a saved work disk into the file")
    fo.add_argument("--kernel", required=True, choices=KERNELS)
    fo.add_argument("--disk", required=True)
    fo.add_argument("--status", default="ran")
    fo.add_argument("--results", default=str(RESULTS))
    tab = sub.add_parser("table", help="print the matrix as a markdown table")
    tab.add_argument("--results", default=str(RESULTS))
    mer = sub.add_parser("merge", help="fold another results file's kernels into the file")
    mer.add_argument("source")
    mer.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()
    if args.cmd == "table":
        try:
            print(table(Path(args.results)))
        except (OSError, ValueError) as exc:
            say(f"cannot read the results {args.results}: {exc} (`kernels.py run` writes them)")
            return 2
        return 0
    if args.cmd == "merge":
        say(f"merged {merge(Path(args.source), Path(args.results))} into {args.results}")
        return 0
    if args.cmd == "fold":
        with tempfile.TemporaryDirectory() as tmp:
            read_back(Path(args.disk), Path(tmp))
            res = results_of(Path(tmp) / "out")
        args.accel = "tcg"
        return finish(args.kernel, res, {}, args, status=args.status)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))  # run the finally blocks
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        say(f"unknown kernels {unknown}; known: {', '.join(KERNELS)}")
        return 2
    sh([str(HERE / "install-deps.sh")], 1900, "installing the host packages")
    CACHE.mkdir(parents=True, exist_ok=True)
    worst = 0
    for kernel in kernels:
        with kernel_lock(kernel):
            if args.cmd == "build":
                try:
                    timings: dict[str, Any] = {}
                    ensure_base(kernel, timings)
                    say(f"{kernel}: base ready {timings}")
                except KernelError as exc:
                    say(f"FAILED: {exc}")
                    worst = 2
            else:
                worst = max(worst, run_kernel(kernel, args))
    return worst


@contextlib.contextmanager
def kernel_lock(kernel: str) -> Any:
    """One run per kernel cache at a time (a second run waits)."""
    with open(CACHE / f"{kernel}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another run holds {CACHE / f'{kernel}.lock'}; waiting")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


if __name__ == "__main__":
    sys.exit(main())
