"""Inside a matrix VM, as root: every check of the kernel matrix, results to OUT/result.json.

Standard library only at the top (the runner must report even when the tree cannot import).
Each step runs in a subprocess with its own timeout; a step that fails or hangs is recorded with
its reason and the next step still runs. `result.json` is rewritten after every step, so a VM
killed by the host's timeout still leaves the steps it finished.

Steps: facts about the kernel; `bpfsleuth doctor --json` as-is (and its sandbox section, when it
has one); every catalog probe compiled and attached once (compile time, attach points picked);
`pytest tests/probes` (the live tests with their workloads and assertions on numbers, plus the
resolver's seed request forms); the resolver on the seed forms, recorded; three incident scenarios
end to end with the offline planner (`tests/scenarios`); the command sandbox on this kernel
(`sandbox`: the Landlock ABI or why there is none, the layers the exec helper applies, and the
live sandbox tests, `tests/sandbox` and the executor's).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SRC = Path(sys.argv[1])
OUT = Path(sys.argv[2])
PY = sys.executable
SCENARIOS = os.environ.get(
    "BPFSLEUTH_KERNELS_SCENARIOS", "connection_refused or exec_storm or dns_timeouts"
).strip()
PROBE_TESTS_TIMEOUT = float(os.environ.get("BPFSLEUTH_KERNELS_PROBE_TESTS_TIMEOUT", "2400"))
# The steps to run (comma-separated; all by default): doctor, probe_smoke, resolver, scenarios,
# sandbox, probe_tests. Fewer while iterating on one failure.
STEPS = {
    s.strip()
    for s in os.environ.get(
        "BPFSLEUTH_KERNELS_STEPS", "doctor,probe_smoke,resolver,scenarios,sandbox,probe_tests"
    ).split(",")
    if s.strip()
}
# The sandbox step's live tests: every test that runs commands through the real exec helper.
SANDBOX_TESTS = os.environ.get(
    "BPFSLEUTH_KERNELS_SANDBOX_TESTS",
    "tests/sandbox tests/worker/test_executor.py tests/worker/test_policy_runs_do_not_write.py",
).split()
SANDBOX_TIMEOUT = float(os.environ.get("BPFSLEUTH_KERNELS_SANDBOX_TIMEOUT", "2400"))

result: dict[str, Any] = {"started_uptime_s": float(Path("/proc/uptime").read_text().split()[0])}


def save() -> None:
    tmp = OUT / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=str))
    tmp.replace(OUT / "result.json")
    os.sync()


def run(
    name: str, cmd: list[str], timeout: float, *, stream: bool = False
) -> subprocess.CompletedProcess[str] | None:
    """Run one step; record its time, exit code and the tail of its output under steps[name].
    Its output goes to OUT/<name>.log as it comes, so a step that hangs leaves what it printed."""
    started = time.monotonic()
    step: dict[str, Any] = {"cmd": cmd}
    result.setdefault("steps", {})[name] = step
    save()
    log = OUT / f"{name}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            cmd,
            stdout=sink if stream else subprocess.PIPE,
            stderr=sink,
            text=True,
            cwd=SRC,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            out = out or ""
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            step.update(rc=None, error=f"timed out after {timeout:.0f} s", seconds=timeout)
            step["output_tail"] = log.read_text(errors="replace")[-3000:]
            save()
            return None
    step.update(rc=proc.returncode, seconds=round(time.monotonic() - started, 1))
    with log.open("a") as sink:
        sink.write("\n--- stdout ---\n" + out)
    if proc.returncode != 0:
        step["output_tail"] = (log.read_text(errors="replace"))[-3000:]
    save()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def kernel_facts() -> dict[str, Any]:
    release = platform.release()
    config = Path(f"/boot/config-{release}")
    flags: dict[str, str] = {}
    wanted = (
        "CONFIG_KPROBES",
        "CONFIG_KPROBE_EVENTS",
        "CONFIG_BPF_LSM",
        "CONFIG_DEBUG_INFO_BTF",
        "CONFIG_SECURITY_LANDLOCK",
        "CONFIG_FUNCTION_TRACER",
        "CONFIG_LOCKDEP",
        "CONFIG_LOCK_STAT",
    )
    if config.is_file():
        for line in config.read_text().splitlines():
            key, _, value = line.partition("=")
            if key in wanted:
                flags[key] = value
    kallsyms = read("/proc/kallsyms")
    symbols = {line.split()[2] for line in kallsyms.splitlines() if len(line.split()) >= 3}
    events = Path("/sys/kernel/tracing/events")
    return {
        "release": release,
        "version": read("/proc/version"),
        "config": flags,
        "lsm": read("/sys/kernel/security/lsm"),
        "btf": Path("/sys/kernel/btf/vmlinux").exists(),
        "headers": Path(f"/lib/modules/{release}/build/Makefile").exists(),
        "kprobe_symbols": {s: s in symbols for s in ("tcp_connect", "kernel_clone", "_do_fork")},
        "tracepoints": {
            tp: (events / tp / "format").is_file()
            for tp in (
                "lock/contention_begin",
                "block/block_rq_issue",
                "block/block_io_start",
                "sock/inet_sock_set_state",
                "oom/mark_victim",
                "kmem/mm_page_alloc",
            )
        },
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "mem_kb": read("/proc/meminfo").splitlines()[0],
    }


PROBE_SMOKE = r"""
import json, os, sys, time
from probes.catalog import load_catalog
from probes.models import ProbeRequest
from probes.params import ProbeRequestError
from probes.engine.runner import prepare, run_probes
EXTRA = {"tracepoint": {"tracepoint": "sched:sched_switch"}}
# how many probes compile and attach at once (the smoke run: 2, one per vCPU; the matrix: 1, so
# that each probe's compile time is its own)
batch = max(1, int(os.environ.get("BPFSLEUTH_KERNELS_SMOKE_PARALLEL", "1") or 1))
out = {}
requests = []
for name in sorted(load_catalog().probes):
    request = ProbeRequest(probe=name, duration_s=1, params=EXTRA.get(name, {}))
    try:
        prepare(request)
    except ProbeRequestError as exc:
        out[name] = {"status": "unavailable", "reason": str(exc)}
        print(name, "unavailable", file=sys.stderr, flush=True)
    else:
        requests.append(request)
for first in range(0, len(requests), batch):
    group = requests[first : first + batch]
    started = time.monotonic()
    try:
        results = run_probes(group)
    except Exception as exc:
        for request in group:
            out[request.probe] = {"status": "fail", "reason": f"{type(exc).__name__}: {exc}"}
        continue
    wall = round(time.monotonic() - started, 2)
    for res in results:
        out[res.probe] = {
            "status": "fail" if res.error else "pass",
            "reason": res.error or "",
            "compile_s": round(res.compile_s, 2),
            "wall_s": wall,
            "attach_points": res.attach_points,
            "warnings": res.warnings,
            "event_count": res.event_count,
        }
        print(res.probe, out[res.probe]["status"], file=sys.stderr, flush=True)
print(json.dumps(dict(sorted(out.items()))))
"""


RESOLVE = r"""
import json
from probes.catalog import load_catalog
from probes.resolver import resolve_target
from tests.probes.test_resolver import SEED_FORMS
catalog = load_catalog()
rows = []
for kind, target, expected in SEED_FORMS:
    r = resolve_target(kind, target, catalog)
    rows.append({"kind": kind, "target": target, "expected": expected, "probe": r.probe,
                 "how": r.how, "reason": r.reason, "ok": r.ok and r.probe == expected})
print(json.dumps(rows))
"""


LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
LANDLOCK_CREATE_RULESET_VERSION = 1


def landlock_facts() -> dict[str, Any]:
    """The kernel's Landlock ABI, asked as the exec helper asks it (landlock_create_ruleset with
    the VERSION flag), and what says why it is missing: the errno (ENOSYS: no such syscall, the
    kernel predates 5.13 or lacks CONFIG_SECURITY_LANDLOCK; EOPNOTSUPP: built in but not enabled
    at boot), the kernel config and the active LSM list."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(
        ctypes.c_long(LANDLOCK_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
    )
    err = ctypes.get_errno() if abi < 0 else 0
    config = Path(f"/boot/config-{platform.release()}")
    setting = "unknown (no /boot/config)"
    if config.is_file():
        setting = "not set"
        for line in config.read_text().splitlines():
            if line.startswith("CONFIG_SECURITY_LANDLOCK="):
                setting = line.partition("=")[2]
    return {
        "abi": max(int(abi), 0),
        "errno": errno.errorcode.get(err, str(err)) if err else None,
        "config": setting,
        "lsm": read("/sys/kernel/security/lsm"),
    }


HELPER_CHECK = r"""
import json
from worker.cli.doctor import sandbox_check
from worker.sandbox import Profile
from worker.sandbox.helper import check
default = check()
print(json.dumps({
    "default": default.model_dump(),
    "doctor": sandbox_check(default).model_dump(),
    "network_tool": check(Profile(ip_sockets=True, tcp=True)).model_dump(),
    "process_reader": check(Profile(caps=frozenset({"dac_read_search", "sys_ptrace"}),
                                    landlock=False)).model_dump(),
}))
"""


def sandbox_step(pytest: list[str]) -> None:
    """The command sandbox on this kernel: the Landlock ABI (or why there is none), the layers the
    exec helper applies for three kinds of profile (the doctor's line among them), and the live
    sandbox tests (their Landlock-only assertions skip, naming the kernel's lack, where the
    kernel has no Landlock or a lower ABI; everything else must hold)."""
    result["sandbox_step"] = {"landlock": landlock_facts()}
    save()
    proc = run("sandbox_helper", [PY, "-c", HELPER_CHECK], 300)
    if proc is not None and proc.returncode == 0:
        result["sandbox_step"]["helper"] = json.loads(proc.stdout.strip().splitlines()[-1])
    save()
    run(
        "sandbox",
        [*pytest, *SANDBOX_TESTS, f"--junitxml={OUT}/sandbox.xml"],
        SANDBOX_TIMEOUT,
        stream=True,
    )
    result["sandbox_tests"] = junit(OUT / "sandbox.xml")
    save()


def probe_test_paths() -> list[str]:
    """Each catalog probe's live test file and the resolver's tests; all of tests/probes (the
    engine, custom probes, CLI...: 179 tests, about 25 min under TCG) with
    BPFSLEUTH_KERNELS_PROBE_TESTS=all; any other value: pytest's own arguments (test files or
    node ids, space-separated)."""
    chosen = os.environ.get("BPFSLEUTH_KERNELS_PROBE_TESTS", "").strip()
    if chosen == "all":
        return ["tests/probes"]
    if chosen and chosen != "none":
        return chosen.split()
    files = []
    for spec in sorted((SRC / "probes" / "catalog").glob("*/probe.yaml")):
        name = spec.parent.name
        test = (
            SRC
            / "tests"
            / "probes"
            / f"test_{'tracepoint_generic' if name == 'tracepoint' else name}.py"
        )
        if test.is_file():
            files.append(str(test.relative_to(SRC)))
    return [*files, "tests/probes/test_resolver.py"]


def junit(path: Path) -> list[dict[str, Any]]:
    """One row per test case of a junit file: file, name, outcome, message."""
    if not path.is_file():
        return []
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or child.text or "")[:500]
                break
        rows.append(
            {
                "file": (case.get("file") or case.get("classname", "")).split(".")[-1],
                "name": case.get("name"),
                "outcome": outcome,
                "message": message,
                "seconds": float(case.get("time") or 0),
            }
        )
    return rows


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    result["kernel"] = kernel_facts()
    result["packages"] = {
        line.split()[0]: line.split()[1]
        for line in read("/root/packages.txt").splitlines()
        if line.split()[0]
        in ("python3", "python3-bpfcc", "redis-server", "bpftool", "systemd", "gcc", "libbpfcc")
        or line.startswith("linux-image-")
    }
    save()

    proc = run("doctor", ["bpfsleuth", "doctor", "--json"], 300) if "doctor" in STEPS else None
    if proc is not None and proc.stdout.strip():
        try:
            doctor = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            result["doctor"] = {"unparsed": proc.stdout[-2000:], "error": str(exc)}
        else:
            result["doctor"] = doctor
            sandbox = {k: v for k, v in doctor.items() if "sandbox" in k.lower()}
            if sandbox:
                result["sandbox"] = sandbox
    save()

    proc = run("probe_smoke", [PY, "-c", PROBE_SMOKE], 900) if "probe_smoke" in STEPS else None
    if proc is not None and proc.returncode == 0:
        result["probe_smoke"] = json.loads(proc.stdout.strip().splitlines()[-1])
    save()

    proc = run("resolver", [PY, "-c", RESOLVE], 300) if "resolver" in STEPS else None
    if proc is not None and proc.returncode == 0:
        result["resolver"] = json.loads(proc.stdout.strip().splitlines()[-1])
    save()

    pytest = [PY, "-m", "pytest", "-p", "no:cacheprovider", "-rfEs", "--timeout=300", "-v"]
    # the scenarios first, on a fresh kernel log (the OOM probe's test leaves a kill in it, which
    # the offline planner would rightly report)
    if "scenarios" in STEPS and SCENARIOS:
        run(
            "scenarios",
            [*pytest, "tests/scenarios", "-k", SCENARIOS, f"--junitxml={OUT}/scenarios.xml"],
            1200,
            stream=True,
        )
        result["scenarios"] = junit(OUT / "scenarios.xml")
        save()

    if "sandbox" in STEPS:
        sandbox_step(pytest)

    if "probe_tests" not in STEPS or os.environ.get("BPFSLEUTH_KERNELS_PROBE_TESTS") == "none":
        result["finished_uptime_s"] = float(Path("/proc/uptime").read_text().split()[0])
        save()
        return 0
    run(
        "probe_tests",
        [*pytest, *probe_test_paths(), f"--junitxml={OUT}/probes.xml"],
        PROBE_TESTS_TIMEOUT,
        stream=True,
    )
    result["probe_tests"] = junit(OUT / "probes.xml")
    result["finished_uptime_s"] = float(Path("/proc/uptime").read_text().split()[0])
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
