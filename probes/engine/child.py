"""One probe run in its own process: `python -m probes.engine.child <parent-pid>`, job JSON on
stdin.

Why a process per probe: bcc (0.26) crashes when two threads compile at once, and a process per
probe compiles in parallel on every core, keeps libbcc's stderr noise away from the user, and
dies with its parent (PR_SET_PDEATHSIG), taking every attachment (an fd) with it.

The child imports everything heavy (bcc, pydantic, the engine) before it reads its job, so the
runner can start it ahead of time (`probes.engine.runner.keep_warm`); an empty stdin releases it.
The child prints JSON lines (`ChildMessage`) on stdout: `compiled`, `attached`, then `result`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from pydantic import BaseModel, Field

from probes.catalog import CATALOG_DIR
from probes.custom.loader import custom_reader, load_verified_spec
from probes.engine.budget import compact_attach_points, fit_to_budget
from probes.engine.compile import probe_text
from probes.engine.lifetime import die_with_parent
from probes.engine.plan import AttachChoice, AttachPlan
from probes.engine.reader import ProbeReader, RunInfo, load_reader
from probes.models import ParamValue, ProbeRequest, ProbeResult
from probes.params import RuntimeConfig
from probes.spec import ProbeSpec, load_spec

POLL_INTERVAL_S = 0.1
DETACH_SETTLE_S = 0.01
PREWARM_NICE = 10  # a compile ahead of need runs at this lower priority


class ChildJob(BaseModel):
    request: ProbeRequest
    params: dict[str, ParamValue] = Field(default_factory=dict)
    plan: AttachPlan
    cflags: list[str] = Field(default_factory=list)
    config: RuntimeConfig = Field(default_factory=RuntimeConfig)
    resolved_from: str = ""
    directory: str = ""  # a custom probe's folder; its content must still hash to sha256
    sha256: str = ""
    prewarm: bool = Field(
        default=False, description="Only compile and keep the probe loaded, for a later job."
    )


class ChildMessage(BaseModel):
    kind: Literal["prewarmed", "compiled", "attached", "result"]
    compile_s: float = 0.0
    fresh: bool = Field(default=False, description="This job compiled (no kept probe reused).")
    attach_points: list[str] = Field(default_factory=list)
    result: ProbeResult | None = None


# Set by SIGTERM/SIGINT: stop early, detach, report what was seen. A flag, not an exception: an
# exception raised while a ring-buffer callback runs would be lost inside ctypes.
_STOP: list[str] = []


def _die_with_parent(parent_pid: int) -> None:
    die_with_parent(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _send(message: ChildMessage) -> None:
    sys.stdout.write(message.model_dump_json() + "\n")
    sys.stdout.flush()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _STOP.append(signal.Signals(signum).name)


def _attach(bpf: Any, choice: AttachChoice, pid: int) -> None:
    from bcc import PerfSWConfig, PerfType

    if choice.kind == "tracepoint":
        bpf.attach_tracepoint(tp=choice.target, fn_name=choice.fn)
    elif choice.kind == "raw_tracepoint":
        bpf.attach_raw_tracepoint(tp=choice.target, fn_name=choice.fn)
    elif choice.kind in ("uprobe", "uretprobe"):
        library, _, symbol = choice.target.partition(":")
        attach = bpf.attach_uprobe if choice.kind == "uprobe" else bpf.attach_uretprobe
        attach(name=library, sym=symbol, fn_name=choice.fn, pid=pid)
    elif choice.kind == "perf_event":
        kind, _, config = choice.target.partition(":")
        if kind != "software":
            raise ValueError(f"perf_event target {choice.target!r}: only software events")
        bpf.attach_perf_event(
            ev_type=PerfType.SOFTWARE,
            ev_config=getattr(PerfSWConfig, config.upper()),
            fn_name=choice.fn,
            sample_freq=choice.sample_freq or 49,
        )


class _RingSink:
    """Where ring-buffer records go: the current job's reader (a kept probe serves several)."""

    def __init__(self) -> None:
        self.reader: ProbeReader | None = None
        self.errors: list[str] = []


class _Loaded:
    """A compiled probe kept loaded (detached, maps cleared on reuse) for the next identical job."""

    def __init__(self, key: str, bpf: Any, sink: _RingSink) -> None:
        self.key = key
        self.bpf = bpf
        self.sink = sink


def _callback(sink: _RingSink, ring: str, table: Any) -> Callable[[Any, Any, int], None]:
    """A ring-buffer callback that records reader errors instead of losing them in ctypes."""

    def on_record(_ctx: Any, data: Any, _size: int) -> None:
        try:
            if sink.reader is not None:
                sink.reader.on_event(ring, table.event(data))
        except BaseException as exc:  # SystemExit from bcc's type parser included
            sink.errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")

    return on_record


def _clear_maps(bpf: Any) -> None:
    """Every map of a kept probe emptied (hashes) or zeroed (arrays) before its next run."""
    import ctypes as ct

    from bcc import lib

    lib.bpf_num_tables.restype = ct.c_ulonglong
    lib.bpf_num_tables.argtypes = [ct.c_void_p]
    lib.bpf_table_name.restype = ct.c_char_p
    lib.bpf_table_name.argtypes = [ct.c_void_p, ct.c_ulonglong]
    from bcc.table import RingBuf

    for index in range(lib.bpf_num_tables(bpf.module)):
        table = bpf[lib.bpf_table_name(bpf.module, index).decode()]
        if not isinstance(table, RingBuf):  # drained after each run; nothing to clear
            table.clear()


def _attached_labels(bpf: Any, plan: AttachPlan) -> list[str]:
    labels = [f"tracepoint:{_text(tp)}" for tp in bpf.tracepoint_fds]
    labels += [f"raw_tracepoint:{_text(tp)}" for tp in bpf.raw_tracepoint_fds]
    explicit = [c.label for c in plan.chosen if c.kind not in ("tracepoint", "raw_tracepoint")]
    return sorted(set(labels)) + explicit


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _dropped(bpf: Any) -> int:
    try:
        table = bpf["bs_dropped"]
        return int(sum(int(v.value) for v in table.values()))
    except KeyError:
        return 0


def _stderr_tail(path: str, limit: int = 600) -> str:
    with contextlib.suppress(OSError):
        with open(path, "rb") as handle:
            data = handle.read()[-4000:].decode("utf-8", "replace")
        lines = [ln for ln in data.splitlines() if "error" in ln.lower()] or data.splitlines()
        return " | ".join(lines[-4:])[-limit:]
    return ""


def _job_spec(job: ChildJob) -> ProbeSpec:
    """Only this probe's spec (a faster start); a custom one only if still as approved."""
    if not job.directory:
        return load_spec(CATALOG_DIR / job.request.probe)
    return load_verified_spec(Path(job.directory), job.sha256)


def _job_reader(job: ChildJob, spec: ProbeSpec, run: RunInfo) -> ProbeReader:
    if not job.directory:
        return load_reader(spec, run)
    return custom_reader(spec, run)


def _detach_all(bpf: Any) -> None:
    """Stop every program running (tracepoints, raw tracepoints, uprobes, perf events) but keep
    the maps, so `collect` reads one snapshot that no event changes any more. `cleanup` later
    frees the rest; a detach that fails here is retried there."""
    detachers: list[tuple[dict[Any, Any], Callable[[Any], None]]] = [
        (bpf.tracepoint_fds, bpf.detach_tracepoint),
        (bpf.raw_tracepoint_fds, bpf.detach_raw_tracepoint),
        (bpf.uprobe_fds, bpf.detach_uprobe_event),
    ]
    for fds, detach in detachers:
        for key in list(fds):
            with contextlib.suppress(Exception):
                detach(key)
    for ev_type, ev_config in list(bpf.open_perf_events):
        with contextlib.suppress(Exception):
            bpf.detach_perf_event(ev_type, ev_config)
    # A program already running on another CPU when its link closed finishes within microseconds;
    # give it that before the maps are read.
    time.sleep(DETACH_SETTLE_S)


def _new_result(job: ChildJob, error: str | None = None) -> ProbeResult:
    request = job.request
    return ProbeResult(
        program_name=request.label or request.probe,
        probe=request.probe,
        resolved_from=job.resolved_from,
        warnings=list(job.plan.skipped),
        error=error,
    )


def _source_and_key(job: ChildJob, spec: ProbeSpec) -> tuple[str, str]:
    """The C as compiled (prelude + probe) and the compiled object's identity: source and
    compile-time flags only, no pid, filter or run-time parameter."""
    text = probe_text(spec.source_text())
    return text, hashlib.sha256("\0".join([text, *job.cflags]).encode()).hexdigest()


def _configure(bpf: Any, config: RuntimeConfig) -> None:
    """This run's filters, run-time parameters and own pid into `bs_config`, armed: until
    then every bs_skip*() skips (probes/common.h)."""
    table = bpf["bs_config"]
    leaf = table.Leaf()
    leaf.armed = 1
    leaf.self_pid = os.getpid()
    leaf.filter_pid = config.pid
    leaf.comm_set = 1 if config.comm else 0
    leaf.comm = config.comm
    for slot, value in enumerate(config.params):
        leaf.params[slot] = value
    table[table.Key(0)] = leaf


@contextlib.contextmanager
def _niced(increment: int) -> Iterator[None]:
    """Run the block at a lower CPU priority (a compile ahead of need yields to live work)."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, min(19, before + increment))
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # raising priority back needs root, which we are
            os.setpriority(os.PRIO_PROCESS, 0, before)


def _open_rings(bpf: Any, reader: ProbeReader) -> _RingSink:
    """Open the reader's ring buffers (before attaching: no record is lost to a late open)."""
    sink = _RingSink()
    for ring in reader.rings:
        bpf[ring].open_ring_buffer(_callback(sink, ring, bpf[ring]))
    return sink


def _reattach_autoloaded(bpf: Any) -> None:
    """Attach again the programs bcc attached by their names when it loaded the object
    (TRACEPOINT_PROBE, RAW_TRACEPOINT_PROBE), detached after a kept probe's last run.

    bcc (0.26, Debian's python3-bpfcc) has no public call for this: `BPF.__init__` calls its
    `_trace_autoload()`, and we call the same method here, in this one place, rather than
    re-deriving its naming conventions (tracepoint__, raw_tracepoint__, kprobe__, kfunc__...).
    """
    bpf._trace_autoload()


def prewarm(job: ChildJob, kept: list[_Loaded]) -> bool:
    """Compile the job's probe at low priority and keep it loaded, detached, for the next job
    with the same key (nothing attached, nothing counted meanwhile). False when it failed: the
    next job then compiles itself and reports why."""
    try:
        spec = _job_spec(job)
        reader = _job_reader(job, spec, RunInfo(probe=spec.name, params=job.params))
        from bcc import BPF
    except Exception:
        return False
    text, key = _source_and_key(job, spec)
    if kept and kept[-1].key == key:
        return True
    while kept:
        kept.pop().bpf.cleanup()
    try:
        with _niced(PREWARM_NICE):
            bpf = BPF(text=text, cflags=job.cflags)
    except Exception:
        return False
    _detach_all(bpf)  # bcc attached its TRACEPOINT_PROBEs while loading; a job re-attaches them
    sink = _open_rings(bpf, reader)  # no reader yet: records of that moment are dropped below
    if reader.rings:
        bpf.ring_buffer_consume()
    kept.append(_Loaded(key, bpf, sink))
    return True


def _attach_planned(bpf: Any, job: ChildJob, result: ProbeResult) -> bool:
    """Attach the plan's explicit programs; False (with `result.error`) when a required one
    fails, an optional failure is a warning."""
    pid = job.request.filters.pid or -1
    for choice in job.plan.chosen:
        if choice.fn is None:
            continue  # TRACEPOINT_PROBE: bcc attached it when loading
        try:
            _attach(bpf, choice, pid)
        except Exception as exc:
            message = f"{choice.role}: attach {choice.label} failed: {str(exc)[:160]}"
            if choice.required:
                result.error = message
                return False
            result.warnings.append(message)
    result.attach_points = compact_attach_points(_attached_labels(bpf, job.plan))
    return True


def _trace(bpf: Any, reader: ProbeReader, duration_s: float) -> float:
    """Let the probe run for `duration_s` (or until a stop signal), draining its rings; then
    detach everything and drain the last records. Returns the seconds it was attached."""
    attached_at = time.monotonic()
    deadline = attached_at + duration_s
    while (left := deadline - time.monotonic()) > 0 and not _STOP:
        time.sleep(min(POLL_INTERVAL_S, left))
        if reader.rings:
            bpf.ring_buffer_consume()
    _detach_all(bpf)
    elapsed = time.monotonic() - attached_at
    if reader.rings:
        bpf.ring_buffer_consume()  # the last records, now that nothing adds any
    return elapsed


def _collect(bpf: Any, reader: ProbeReader, elapsed: float, result: ProbeResult) -> None:
    """The reader's one snapshot of the (detached) maps, into `result`."""
    result.duration_s = round(elapsed, 3)
    output = reader.collect(bpf, elapsed)
    result.event_count = output.event_count
    result.events = output.events
    result.summary = output.summary
    result.aggregates = output.aggregates
    result.dropped = _dropped(bpf) + output.dropped


def _load(
    job: ChildJob,
    reuse: _Loaded | None,
    bpf_class: Any,
    text: str,
    key: str,
    reader: ProbeReader,
    stderr_path: str,
    result: ProbeResult,
) -> _Loaded | None:
    """The probe ready for this job: the kept one cleared, re-armed and re-attached, or a fresh
    compile (None, with `result.error`, when it fails)."""
    if reuse is not None:
        _clear_maps(reuse.bpf)  # bs_config too: disarmed until _configure
        _configure(reuse.bpf, job.config)
        _reattach_autoloaded(reuse.bpf)
        return reuse
    started = time.monotonic()
    try:
        bpf = bpf_class(text=text, cflags=job.cflags)
    except Exception as exc:
        detail = _stderr_tail(stderr_path)
        result.error = f"compile failed: {exc}" + (f" ({detail})" if detail else "")
        return None
    try:
        _configure(bpf, job.config)
        loaded = _Loaded(key, bpf, _open_rings(bpf, reader))
    except BaseException:
        bpf.cleanup()
        raise
    result.compile_s = round(time.monotonic() - started, 3)
    return loaded


def run_job(job: ChildJob, stderr_path: str, kept: list[_Loaded] | None = None) -> ProbeResult:
    """Compile, attach, trace for the request's duration, detach, read one snapshot.

    Everything Python needs (spec, reader and its imports) is ready before the first attach, so
    none of this process's own start-up shows in its tables; the kernel side leaves this process
    out altogether (`self_pid` in `bs_config`, see common.h).

    With `kept` (a process serving several jobs), a probe compiled earlier from the same source
    and compile-time defines is reused, whatever this job's filters and run-time parameters:
    maps cleared, this job's values written, programs re-attached, no compile; the probe of this
    job is kept there afterwards unless the job was stopped or failed.
    """
    request = job.request
    try:
        spec = _job_spec(job)
        run = RunInfo(
            probe=spec.name,
            params=job.params,
            filters=request.filters,
            duration_s=request.duration_s,
        )
        reader: ProbeReader = _job_reader(job, spec, run)
        from bcc import BPF
    except Exception as exc:
        return _new_result(job, str(exc)[:400])
    result = _new_result(job)
    text, key = _source_and_key(job, spec)
    reuse = kept.pop() if kept and kept[-1].key == key else None
    while kept:  # a different probe than last time: free the old one
        kept.pop().bpf.cleanup()
    loaded = reuse
    keep = False
    try:
        loaded = _load(job, reuse, BPF, text, key, reader, stderr_path, result)
        if loaded is None:
            return result
        loaded.sink.reader, loaded.sink.errors = reader, []
        if _STOP:
            result.error = f"stopped by {_STOP[0]} before the probe ran"
            return result
        _send(ChildMessage(kind="compiled", compile_s=result.compile_s, fresh=reuse is None))
        if not _attach_planned(loaded.bpf, job, result):
            return result
        _send(
            ChildMessage(
                kind="attached", compile_s=result.compile_s, attach_points=result.attach_points
            )
        )
        elapsed = _trace(loaded.bpf, reader, request.duration_s)
        if _STOP:
            result.warnings.append(f"stopped early by {_STOP[0]}")
        _collect(loaded.bpf, reader, elapsed, result)
        reader_errors = loaded.sink.errors
        if reader_errors:
            result.warnings.append(
                f"{len(reader_errors)} events could not be read: {reader_errors[0]}"
            )
        keep = kept is not None and not _STOP and not reader_errors
        if keep:
            assert kept is not None
            kept.append(loaded)
        return fit_to_budget(result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        return result
    finally:
        if loaded is not None and not keep:
            loaded.bpf.cleanup()  # explicit: a BPF object is falsy until a table is touched


def main() -> None:
    parent_pid = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    import bcc  # noqa: F401  # before the job: a warm process (runner.keep_warm) has it ready

    kept: list[_Loaded] = []
    # libbcc writes warnings straight to fd 2; keep them for error messages only.
    with tempfile.NamedTemporaryFile(prefix="bpfsleuth-bcc-", suffix=".log") as log:
        os.dup2(log.fileno(), 2)
        try:
            # One job per line; end of input ends the process (a warm one may get none).
            while not _STOP and (line := sys.stdin.readline()).strip():
                job = ChildJob.model_validate_json(line)
                if job.prewarm:
                    ok = prewarm(job, kept)
                    _send(ChildMessage(kind="prewarmed", fresh=ok))
                    continue
                result = run_job(job, log.name, kept)
                _send(
                    ChildMessage(
                        kind="result",
                        compile_s=result.compile_s,
                        attach_points=result.attach_points,
                        result=result,
                    )
                )
        finally:
            for loaded in kept:
                loaded.bpf.cleanup()


if __name__ == "__main__":
    main()
