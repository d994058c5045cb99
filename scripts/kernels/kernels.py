#!/usr/bin/env python3
"""The kernel matrix on the host: build and cache each kernel's VM base, boot it, fold the results.

    kernels.py run [--kernels 5.10,6.1,6.12] [--accel auto|tcg|kvm] [--boot-timeout S] [--timeout S]
    kernels.py table [--results bench/results/kernels.json]

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

import accel  # a sibling module: this script's directory is first on sys.path
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
VM_SETTINGS = (
    "BPFSLEUTH_KERNELS_SCENARIOS",
    "BPFSLEUTH_KERNELS_PROBE_TESTS",
    "BPFSLEUTH_KERNELS_PROBE_TESTS_TIMEOUT",
    "BPFSLEUTH_KERNELS_STEPS",
    "BPFSLEUTH_KERNELS_SMOKE_PARALLEL",
    "BPFSLEUTH_TEST_TIME_SCALE",
    "BPFSLEUTH_PROBE_COMPILE_BUDGET_S",
)
# Tools that only lint or type-check: not needed in the VM.
NOT_IN_VM = ("ruff", "mypy", "types-")
# Test files whose name is not test_<probe>.py.
TEST_FILE_OF = {"tracepoint": "test_tracepoint_generic"}


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
    for step, key in (("probe_tests", "probe_tests"), ("scenarios", "scenarios")):
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
        "sandbox": res.get("sandbox"),
        "resolver": res.get("resolver", []),
        "scenarios": [{k: t[k] for k in ("name", "outcome", "message", "seconds")} for t in scen],
        "probe_tests": {
            o: sum(1 for t in tests if t["outcome"] == o)
            for o in ("passed", "failed", "error", "skipped")
        },
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


def fold(results_path: Path, kernel: str, entry: dict[str, Any], cells: dict[str, Any]) -> None:
    """Merge one kernel's results into the file (other kernels' entries are kept)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _fold(results_path, kernel, entry, cells)


def _fold(results_path: Path, kernel: str, entry: dict[str, Any], cells: dict[str, Any]) -> None:
    data: dict[str, Any] = {}
    if results_path.is_file():
        with contextlib.suppress(json.JSONDecodeError):
            data = json.loads(results_path.read_text())
    data["generated_before"] = data.get("generated")
    data["generated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    data["userland"] = (
        "Debian bookworm on every kernel: Python 3.11, bcc 0.26 (python3-bpfcc), redis 7.0; "
        "the kernel and its exact headers from the kernel's own suite"
    )
    # a narrowed run (BPFSLEUTH_KERNELS_STEPS, _PROBE_TESTS) updates what it ran and keeps the
    # rest of the kernel's last results, saying which parts are carried over and from when
    earlier = data.setdefault("kernels", {}).get(kernel, {})
    carried = []
    for key in ("doctor", "doctor_checks", "sandbox", "resolver", "scenarios", "probe_smoke"):
        if not entry.get(key) and earlier.get(key):
            entry[key] = earlier[key]
            carried.append(key)
    if carried:
        entry["carried_over"] = {
            "keys": carried,
            "from": earlier.get("carried_over", {}).get("from") or data.get("generated_before"),
        }
    data["kernels"][kernel] = entry
    matrix = data.setdefault("matrix", {})
    for probe, cell in cells.items():
        old = matrix.setdefault(probe, {}).get(kernel)
        if old and cell["status"] == "not run":
            continue  # not part of this run: the last result stands
        if old and cell["status"] == "attached" and old["status"] in ("pass", "fail"):
            # compiled and attached only (a smoke run): the live tests' last verdict stands
            old.update(compile_s=cell["compile_s"], attach_points=cell["attach_points"])
            continue
        if old and cell.get("compile_s") is None and old.get("compile_s") is not None:
            cell.update(compile_s=old["compile_s"], attach_points=old.get("attach_points", []))
        cell["measured"] = data["generated"]
        matrix[probe][kernel] = cell
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def table(results_path: Path) -> str:
    data = json.loads(results_path.read_text())
    kernels = [k for k in KERNELS if k in data.get("kernels", {})]
    head = (
        "| probe | "
        + " | ".join(
            f"{k} ({data['kernels'][k].get('kernel', {}).get('release', '?')})" for k in kernels
        )
        + " |"
    )
    lines = [head, "|---" * (len(kernels) + 1) + "|"]
    for probe in sorted(data.get("matrix", {})):
        row = [probe]
        for k in kernels:
            cell = data["matrix"][probe].get(k)
            if cell is None:
                row.append("not run")
                continue
            text = cell["status"]
            if cell.get("compile_s") is not None:
                text += f" ({cell['compile_s']:.1f} s)"
            if cell["status"] != "pass":
                text += f": {cell['reason'][:120]}"
            elif cell.get("without"):
                text += f"; without {', '.join(cell['without'])}"
            if "measured" not in cell and cell["status"] != "not run":
                text += " [earlier run]"
            row.append(text.replace("|", "/").replace("\n", " "))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "| kernel | accel | base cached | base build s | boot to runner s | compile+attach all s "
        "| scenarios | probe tests | VM wall s | load before / after |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for k in kernels:
        entry = data["kernels"][k]
        t = entry.get("timings", {})
        steps = t.get("steps_s", {})
        scen = entry.get("scenarios", [])
        tests = entry.get("probe_tests", {})
        lines.append(
            f"| {k} | {entry.get('accel')} | {t.get('base_cached')} | "
            f"{t.get('base_build_s', '-')} | {t.get('boot_s', '-')} | "
            f"{steps.get('probe_smoke', '-')} | "
            f"{sum(s['outcome'] == 'passed' for s in scen)}/{len(scen)} | "
            f"{tests.get('passed', 0)} passed, {tests.get('failed', 0) + tests.get('error', 0)} "
            f"failed | {t.get('vm_wall_s', '-')} | "
            f"{t.get('load_before', '-')} / {t.get('load_after', '-')} |"
        )
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
    if args.results:
        fold(Path(args.results), kernel, entry, cells)
    bad = [p for p, c in cells.items() if c["status"] == "fail"]
    scen_bad = [s["name"] for s in entry["scenarios"] if s["outcome"] != "passed"]
    other_bad = [t["name"] for t in entry["failed_tests"]]
    say(
        f"{kernel}: {sum(c['status'] == 'pass' for c in cells.values())} probes pass, "
        f"{sum(c['status'] == 'attached' for c in cells.values())} compiled and attached "
        "(no live tests), "
        f"{len(bad)} fail {bad}, "
        f"{sum(c['status'] == 'unavailable' for c in cells.values())} unavailable; "
        f"scenarios {len(entry['scenarios']) - len(scen_bad)}/{len(entry['scenarios'])}; "
        f"tests {entry['probe_tests']}; {timings}"
    )
    wanted = ["doctor", "probe_smoke", "resolver", "scenarios", "probe_tests"]
    if os.environ.get("BPFSLEUTH_KERNELS_PROBE_TESTS") == "none":
        wanted.remove("probe_tests")
    missing = [
        s for s in wanted if entry["steps"].get(s, {}).get("error") or s not in entry["steps"]
    ]
    if missing:
        say(f"{kernel}: steps that timed out or did not run: {missing}")
    if status != "ran":
        return 2
    return 1 if bad or scen_bad or other_bad or missing or not entry["scenarios"] else 0


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
    args = parser.parse_args()
    if args.cmd == "table":
        print(table(Path(args.results)))
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
