"""Run the probes of one plan concurrently and bounded, one child process per probe.

`prepare` validates a request against its spec and this host before anything is loaded;
`run_probes` starts a child (`probes.engine.child`) per valid request, follows their progress, stops
them at their deadline and always returns one `ProbeResult` per request, in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, Field, ValidationError

from probes.catalog import Catalog, load_catalog
from probes.custom.loader import is_custom, runnable_hash
from probes.engine.child import ChildJob, ChildMessage
from probes.engine.plan import AttachPlan, plan_attach
from probes.models import ParamValue, ProbeRequest, ProbeResult
from probes.params import (
    ProbeRequestError,
    RuntimeConfig,
    param_defines,
    runtime_config,
    validate_params,
)
from probes.resolver import nearest_names
from probes.settings import probe_settings
from probes.spec import ProbeSpec

PROBES_DIR = Path(__file__).resolve().parents[1]  # the `probes` package
# Seconds a probe may take to compile and attach before it is stopped. 30 s suits a real host
# (most probes take 1-5 s); an emulated or heavily loaded one (the kernel matrix's TCG guests,
# docs/kernels.md) raises it with BPFSLEUTH_PROBE_COMPILE_BUDGET_S (probes/settings.py).
COMPILE_BUDGET_S = 30.0
STOP_GRACE_S = 5.0

Phase = Literal["starting", "compiled", "attached", "done", "failed"]


class ProbeProgress(BaseModel):
    """A progress report: which probe, which phase, and when it will end."""

    label: str
    probe: str
    phase: Phase
    detail: str = ""
    ends_at: float | None = Field(default=None, description="time.time() when it will stop.")


ProgressCallback = Callable[[ProbeProgress], None]


class PreparedProbe(BaseModel):
    """A request checked against its spec and this host, ready for a child."""

    request: ProbeRequest
    spec_name: str
    params: dict[str, ParamValue]
    plan: AttachPlan
    cflags: list[str] = Field(description="Compile-time only: the compiled object's identity.")
    config: RuntimeConfig = Field(default_factory=RuntimeConfig)
    resolved_from: str = ""
    directory: str = Field(default="", description="A custom probe's folder (else built-in).")
    sha256: str = Field(default="", description="A custom probe's approved content hash.")


def _check_bounds(spec: ProbeSpec, request: ProbeRequest) -> None:
    if request.duration_s > spec.duration.max:
        raise ProbeRequestError(
            f"probe {spec.name} runs at most {spec.duration.max:g}s, "
            f"asked for {request.duration_s:g}s"
        )


def prepare(
    request: ProbeRequest, *, catalog: Catalog | None = None, resolved_from: str = ""
) -> PreparedProbe:
    """Validate `request` fully (spec, parameters, filters, host) or raise ProbeRequestError."""
    catalog = catalog or load_catalog()
    spec = catalog.get(request.probe)
    if spec is None and request.probe in catalog.blocked:
        raise ProbeRequestError(catalog.blocked[request.probe])
    if spec is None:
        near = nearest_names(request.probe, catalog.names())
        hint = f"; nearest: {', '.join(near)}" if near else ""
        raise ProbeRequestError(f"no catalog probe named {request.probe!r}{hint}")
    _check_bounds(spec, request)
    directory, sha256 = "", ""
    if is_custom(spec):
        sha256 = runnable_hash(spec)  # approval checked again now: files may have changed
        directory = str(spec.directory)
    params = validate_params(spec, request.params)
    plan = plan_attach(spec, params)
    if not plan.available:
        raise ProbeRequestError(f"probe {spec.name} cannot run on this host: {plan.reason}")
    cflags = [
        "-Wno-macro-redefined",
        "-Wno-unused-function",
        *param_defines(spec, params),
        *plan.defines,
    ]
    return PreparedProbe(
        request=request,
        spec_name=spec.name,
        params=params,
        plan=plan,
        cflags=cflags,
        config=runtime_config(spec, params, request.filters),
        resolved_from=resolved_from,
        directory=directory,
        sha256=sha256,
    )


def _error_result(request: ProbeRequest, error: str, resolved_from: str = "") -> ProbeResult:
    return ProbeResult(
        program_name=request.label or request.probe,
        probe=request.probe,
        error=error,
        resolved_from=resolved_from,
        summary=f"{request.probe} did not run: {error}",
    )


def _spawn() -> subprocess.Popen[bytes]:
    """A probe process: it starts Python, imports bcc and the engine, then waits for its job."""
    return subprocess.Popen(
        [sys.executable, "-m", "probes.engine.child", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=str(PROBES_DIR.parent),
        env={**os.environ, "PYTHONPATH": _pythonpath()},
    )


class _WarmPool:
    """Probe processes started ahead of the next plan (see `keep_warm`)."""

    def __init__(self) -> None:
        self.size = 0
        self.procs: list[subprocess.Popen[bytes]] = []

    def take(self) -> subprocess.Popen[bytes] | None:
        while self.procs:
            proc = self.procs.pop(0)
            if proc.poll() is None:
                return proc
            _release(proc)
        return None

    def refill(self) -> None:
        self.procs = [p for p in self.procs if p.poll() is None]
        while len(self.procs) < self.size:
            self.procs.append(_spawn())
        while len(self.procs) > self.size:
            _release(self.procs.pop())


def _release(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError, ValueError):
        if proc.stdin is not None:
            proc.stdin.close()  # an empty job: the process exits
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stdin):
        if stream is not None:
            stream.close()


_POOL = _WarmPool()


class _KeptProbes:
    """Probe processes that finished a job and keep its compiled probe, by job key (see
    `keep_compiled`)."""

    def __init__(self) -> None:
        self.limit = 0
        self.idle: dict[str, subprocess.Popen[bytes]] = {}
        # precompiles not yet confirmed (`wait_precompiled`): key -> (process, partial line)
        self.warming: dict[str, tuple[subprocess.Popen[bytes], bytes]] = {}

    def finished(self, key: str) -> bool:
        """Whether the precompile under `key` (if any) is done: reads what its process printed
        (one `prewarmed` line), without waiting."""
        entry = self.warming.get(key)
        if entry is None:
            return True
        proc, partial = entry
        if proc.stdout is None or self.idle.get(key) is not proc:
            del self.warming[key]
            return True
        os.set_blocking(proc.stdout.fileno(), False)
        try:
            chunk = os.read(proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return False
        partial += chunk
        if not chunk or b"\n" in partial:  # its line, or it died (take() then drops it)
            del self.warming[key]
            return True
        self.warming[key] = (proc, partial)
        return False

    def take(self, key: str) -> subprocess.Popen[bytes] | None:
        """The kept process for `key`; none while its precompile still runs (at low priority, a
        request compiling for itself is faster; the precompile stays for later requests)."""
        if not self.finished(key):
            return None
        proc = self.idle.pop(key, None)
        if proc is not None and proc.poll() is not None:
            _release(proc)
            return None
        return proc

    def put(self, key: str, proc: subprocess.Popen[bytes]) -> None:
        if self.limit <= 0 or proc.poll() is not None:
            _release(proc)
            return
        old = self.idle.get(key)
        if old is not None and old.poll() is None:
            _release(proc)  # one per key; the other (maybe still precompiling) stays
            return
        self.idle.pop(key, None)
        self.idle[key] = proc  # newest last
        while len(self.idle) > self.limit:
            _release(self.idle.pop(next(iter(self.idle))))


_KEPT = _KeptProbes()


def keep_compiled(limit: int) -> None:
    """Keep up to `limit` probe processes alive after their run, each with its compiled probe
    loaded but detached; a later request with the same probe, parameters, filters and attach
    plan runs there without compiling (maps cleared, programs re-attached). For long-lived
    callers (a worker) that repeat plans; `keep_compiled(0)` releases them. Each process dies
    with this one (PR_SET_PDEATHSIG), taking its probe with it."""
    _KEPT.limit = max(0, limit)
    while len(_KEPT.idle) > _KEPT.limit:
        _release(_KEPT.idle.pop(next(iter(_KEPT.idle))))
    _KEPT.warming = {k: v for k, v in _KEPT.warming.items() if _KEPT.idle.get(k) is v[0]}


def _child_job(prepared: PreparedProbe) -> ChildJob:
    return ChildJob(
        request=prepared.request,
        params=prepared.params,
        plan=prepared.plan,
        cflags=prepared.cflags,
        config=prepared.config,
        resolved_from=prepared.resolved_from,
        directory=prepared.directory,
        sha256=prepared.sha256,
    )


def precompilable(names: list[str] | None = None) -> list[PreparedProbe]:
    """The built-in probes (of `names`, else all) that can be compiled ahead here: each with
    its default parameters and no filter. Not the generic tracepoint probe (its target has no
    default), not a custom probe, not one this host cannot run."""
    catalog = load_catalog()
    out = []
    for name in names if names is not None else catalog.names():
        spec = catalog.get(name)
        if spec is None or is_custom(spec):
            continue
        try:
            request = ProbeRequest(probe=name, duration_s=spec.duration.default)
            out.append(prepare(request, catalog=catalog))
        except ProbeRequestError:
            continue
    return out


def precompile_catalog(names: list[str] | None = None) -> list[str]:
    """Compile the built-in catalog ahead of need (`precompilable`): per probe, a process that
    compiles it at low priority (default compile-time parameters) and keeps it loaded, nothing
    attached, under its key; a later request of that probe, whatever its filters and run-time
    parameters, runs there with no compile. Returns the probes started. Needs
    `keep_compiled(n)` with n at least that many; call it from the long-lived thread that runs
    plans, like `keep_warm`. The compiles run in the background; `wait_precompiled` waits."""
    started = []
    for prepared in precompilable(names):
        if _KEPT.limit <= len(_KEPT.idle):
            break
        job = _child_job(prepared).model_copy(update={"prewarm": True})
        key = _job_key(job)
        if key in _KEPT.idle:
            continue
        proc = _spawn()
        try:
            assert proc.stdin is not None
            proc.stdin.write(job.model_dump_json().encode() + b"\n")
            proc.stdin.flush()
        except (OSError, ValueError):
            _release(proc)
            continue
        _KEPT.put(key, proc)
        _KEPT.warming[key] = (proc, b"")
        _Compiles.count += 1
        started.append(prepared.spec_name)
    return started


def wait_precompiled(timeout_s: float) -> bool:
    """Wait until every precompile started by `precompile_catalog` has finished (compiled and
    loaded, or failed: a failed one compiles again for its request and says why). True when
    none is left within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        pending = [key for key in list(_KEPT.warming) if not _KEPT.finished(key)]
        if not pending:
            return True
        with selectors.DefaultSelector() as selector:
            for key in pending:
                stdout = _KEPT.warming[key][0].stdout
                assert stdout is not None
                selector.register(stdout, selectors.EVENT_READ)
            selector.select(timeout=min(left, 1.0))
    return all(_KEPT.finished(key) for key in list(_KEPT.warming))


def _job_key(job: ChildJob) -> str:
    """The compiled object's identity: probe, custom folder and hash, compile-time flags (which
    hold the attach plan's HAVE_* defines). Not the filters, the run-time parameters or the
    attach targets: one compiled probe serves them all."""
    parts = [job.request.probe, job.directory, job.sha256, *job.cflags]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class _Compiles:
    """How many compiles this process's probe processes did (jobs and precompiles)."""

    count = 0


def compile_count() -> int:
    """Compiles started by this process's runs and precompiles so far (a kept probe reused
    does not count): tests and benchmarks read it to prove a request compiled nothing."""
    return _Compiles.count


def keep_warm(count: int) -> None:
    """Keep `count` probe processes started ahead (Python, bcc and the engine imported, waiting
    for a job), refilled after each plan, so a plan's probes skip that start (~0.2 CPU-s and
    0.3-0.4 s each on this host). For long-lived callers (a worker); `keep_warm(0)` releases
    them. Each process dies with this one (PR_SET_PDEATHSIG) like any probe process."""
    _POOL.size = max(0, count)
    _POOL.refill()


HOST_KEEP_WARM = 2  # probe processes started ahead in each pool process of a host worker
# compiled probes kept per pool process: the catalog (precompiled at start) and other compiles
HOST_KEEP_COMPILED = 24


def keep_ready_as_a_host_worker(*, precompile: bool = True) -> list[str]:
    """What a host worker's pool process does at start (worker.distributed.roles), and what the
    eval does to measure what a user of a running worker sees: keep compiled probes and warm
    probe processes, and compile the catalog in the background. Returns the probes compiling."""
    keep_compiled(HOST_KEEP_COMPILED)
    keep_warm(HOST_KEEP_WARM)
    return precompile_catalog() if precompile else []


class _Child:
    def __init__(self, index: int, prepared: PreparedProbe) -> None:
        self.index = index
        self.prepared = prepared
        self.request = prepared.request
        self.started = time.monotonic()
        compile_budget = probe_settings().compile_budget_s or COMPILE_BUDGET_S
        self.deadline = self.started + compile_budget + self.request.duration_s + STOP_GRACE_S
        self.result: ProbeResult | None = None
        self.buffer = b""
        job = _child_job(prepared)
        self.key = _job_key(job)
        self.kept = _KEPT.limit > 0  # the process stays for a later identical job
        self.proc = self._start(job.model_dump_json().encode() + b"\n")

    def _start(self, job: bytes) -> subprocess.Popen[bytes]:
        # Lazily: a kept process for this exact job first, and only without one a warm one
        # (taking both would drop the warm process for nothing).
        takers: list[Callable[[], subprocess.Popen[bytes] | None]] = [_POOL.take]
        if self.kept:
            takers.insert(0, lambda: _KEPT.take(self.key))
        for take in takers:
            proc = take()
            if proc is None:
                continue
            try:
                self._send(proc, job)
                return proc
            except (OSError, ValueError):  # it died while waiting: try the next
                _release(proc)
        proc = _spawn()
        self._send(proc, job)
        return proc

    def _send(self, proc: subprocess.Popen[bytes], job: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(job)
        proc.stdin.flush()
        if not self.kept:
            proc.stdin.close()  # end of input: the process exits after this job

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def lines(self, chunk: bytes) -> list[ChildMessage]:
        self.buffer += chunk
        *complete, self.buffer = self.buffer.split(b"\n")
        messages = []
        for line in complete:
            with contextlib.suppress(ValidationError, ValueError):
                messages.append(ChildMessage.model_validate_json(line))
        return messages

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # no next job: a kept process exits after this one
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _pythonpath() -> str:
    root = str(PROBES_DIR.parent)
    existing = probe_settings().pythonpath
    return f"{root}{os.pathsep}{existing}" if existing else root


def _report(on_progress: ProgressCallback | None, child: _Child, phase: Phase, detail: str) -> None:
    if on_progress is None:
        return
    ends_at = None
    if phase == "attached":
        ends_at = time.time() + child.request.duration_s
    on_progress(
        ProbeProgress(
            label=child.request.label or child.request.probe,
            probe=child.request.probe,
            phase=phase,
            detail=detail,
            ends_at=ends_at,
        )
    )


def _handle(child: _Child, message: ChildMessage, on_progress: ProgressCallback | None) -> None:
    if message.kind == "compiled":
        if message.fresh:
            _Compiles.count += 1
        _report(on_progress, child, "compiled", f"compiled in {message.compile_s:.2f}s")
    elif message.kind == "attached":
        _report(on_progress, child, "attached", ", ".join(message.attach_points))
    elif message.result is not None:
        child.result = message.result
        phase: Phase = "failed" if message.result.error else "done"
        _report(on_progress, child, phase, message.result.error or message.result.summary)


def _follow(children: list[_Child], on_progress: ProgressCallback | None) -> None:
    selector = selectors.DefaultSelector()
    for child in children:
        os.set_blocking(child.stdout.fileno(), False)
        selector.register(child.stdout, selectors.EVENT_READ, child)
    open_children = set(range(len(children)))
    while open_children:
        now = time.monotonic()
        for child in children:
            if child.index in open_children and now > child.deadline:
                child.stop()
        timeout = max(0.05, min(c.deadline for c in children if c.index in open_children) - now)
        for key, _ in selector.select(timeout=min(timeout, 1.0)):
            child = key.data
            try:
                chunk = os.read(child.stdout.fileno(), 65536)  # b"" only at end of file
            except BlockingIOError:
                continue
            for message in child.lines(chunk):
                _handle(child, message, on_progress)
            if not chunk:
                selector.unregister(child.stdout)
                open_children.discard(child.index)
                child.proc.wait()
            elif child.kept and child.result is not None:  # it stays, waiting for a next job
                selector.unregister(child.stdout)
                open_children.discard(child.index)
    selector.close()


def run_prepared(
    prepared: list[PreparedProbe], *, on_progress: ProgressCallback | None = None
) -> list[ProbeResult]:
    children: list[_Child] = []
    try:
        for index, item in enumerate(prepared):
            children.append(_Child(index, item))
            _report(on_progress, children[-1], "starting", item.spec_name)
        _follow(children, on_progress)
    finally:
        for child in children:
            if child.kept and child.result is not None and not child.result.error:
                _KEPT.put(child.key, child.proc)
            else:
                child.stop()
        if _POOL.size:
            _POOL.refill()  # the next plan's processes start now, between plans
    results = []
    for child in children:
        if child.result is None:
            code = child.proc.returncode
            child.result = _error_result(
                child.request,
                f"probe process ended without a result (exit {code})",
                child.prepared.resolved_from,
            )
        results.append(child.result)
    return results


def run_probes(
    requests: list[ProbeRequest], *, on_progress: ProgressCallback | None = None
) -> list[ProbeResult]:
    """Run every request concurrently; one result per request, in order, errors included."""
    catalog = load_catalog()
    slots: list[ProbeResult | PreparedProbe] = []
    for request in requests:
        try:
            slots.append(prepare(request, catalog=catalog))
        except ProbeRequestError as exc:
            slots.append(_error_result(request, str(exc)))
    ready = [slot for slot in slots if isinstance(slot, PreparedProbe)]
    ran = iter(run_prepared(ready, on_progress=on_progress))
    return [next(ran) if isinstance(slot, PreparedProbe) else slot for slot in slots]


def run_probe(request: ProbeRequest, *, on_progress: ProgressCallback | None = None) -> ProbeResult:
    """Run one probe; a request that cannot run raises ProbeRequestError before anything loads."""
    prepared = prepare(request)
    return run_prepared([prepared], on_progress=on_progress)[0]
