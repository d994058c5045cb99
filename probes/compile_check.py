"""Compile and load a probe's C once, in its own process: `python -m probes.compile_check`.

Reads a `CompileJob` on stdin, prints one `CompileOutcome` JSON line. The C is compiled exactly
as the runner compiles it (`common.h` prelude, then `#line 1` and the probe's source), so
clang's `main.c:<line>` is the line in `probe.bpf.c`. Loading also runs the verifier; whatever
was attached while loading is detached by the explicit `cleanup()`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

COMMON_PRELUDE = Path(__file__).resolve().parent / "common.h"
_CLANG_ERROR_RE = re.compile(r"main\.c:(\d+):(\d+): (?:fatal )?error: (.*)")


class CompileJob(BaseModel):
    source: str
    cflags: list[str] = Field(default_factory=list)


def _first_error(log_text: str) -> tuple[int | None, str]:
    for line in log_text.splitlines():
        match = _CLANG_ERROR_RE.search(line)
        if match:
            return int(match.group(1)), f"error: {match.group(3)}"[:300]
    lines = [ln for ln in log_text.splitlines() if "error" in ln.lower()] or log_text.splitlines()
    return None, " | ".join(lines[-3:])[-300:]


def check(job: CompileJob, log_path: str) -> dict[str, Any]:
    from bcc import BPF

    text = COMMON_PRELUDE.read_text() + "\n#line 1\n" + Path(job.source).read_text()
    bpf: Any = None
    try:
        bpf = BPF(text=text, cflags=job.cflags)
    except Exception as exc:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            line, message = _first_error(handle.read())
        return {"ok": False, "error": message or f"{type(exc).__name__}: {exc}", "line": line}
    finally:
        if bpf is not None:
            bpf.cleanup()
    return {"ok": True}


def main() -> None:
    job = CompileJob.model_validate_json(sys.stdin.read())
    saved = os.dup(1)
    with tempfile.NamedTemporaryFile(prefix="bpfsleuth-cc-", suffix=".log") as log:
        os.dup2(log.fileno(), 2)
        os.dup2(log.fileno(), 1)  # libbcc may print to stdout too; keep ours clean
        try:
            outcome = check(job, log.name)
        except Exception as exc:  # bcc missing or broken: say so, do not claim a compile error
            outcome = {"ok": True, "checked": False, "error": f"not compiled: {exc}"}
        os.dup2(saved, 1)
    sys.stdout.write(json.dumps(outcome) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
