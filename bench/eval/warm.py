"""Warm the probe runner the way a host worker does at start, before the eval's first run.

A host worker (`worker.distributed.roles`, `keep_probes_ready`, through the same
`probes.engine.runner.keep_ready_as_a_host_worker` this calls) keeps compiled probes per pool
process (`keep_compiled`), keeps probe processes started ahead (`keep_warm`) and compiles the
whole catalog in the background at start (`precompile_catalog`). The eval drives the loop in
this process; warmed the same way, its wall times are what a user of a running worker sees.
`--cold` skips this (what a fresh `bpfsleuth diagnose` process sees: every probe compiled on
its first request).
"""

from __future__ import annotations

import os
import time

from probes.engine.runner import (
    compile_count,
    keep_compiled,
    keep_ready_as_a_host_worker,
    keep_warm,
    wait_precompiled,
)

WARM_TIMEOUT_S = 600.0


def warm_up(timeout_s: float = WARM_TIMEOUT_S) -> dict[str, object]:
    """Keep probes as a host worker does, compile the catalog and wait for it; what it took."""
    load = os.getloadavg()[0]
    started = time.monotonic()
    probes = keep_ready_as_a_host_worker()
    ready = wait_precompiled(timeout_s)
    return {
        "probes": len(probes),
        "ready": ready,
        "ready_s": round(time.monotonic() - started, 1),
        "compiles": compile_count(),
        "loadavg_1m": round(load, 2),
    }


def cool_down() -> None:
    """Release the kept and warm probe processes."""
    keep_warm(0)
    keep_compiled(0)
