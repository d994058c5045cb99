"""Compile and load a probe's C once, in its own process: `python -m probes.engine.compile`.

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

COMMON_PRELUDE = Path(__file__).resolve().parents[1] / "common.h"
_CLANG_ERROR_RE = re.compile(r"main\.c:(\d+):(\d+): (?:fatal )?error: (.*)")


def probe_text(source: str) -> str:
    """The C as bcc compiles it: the `common.h` prelude, then `#line 1` so that clang's line
    numbers are the probe's own. The runner's child and this compile check both use it."""
    return COMMON_PRELUDE.read_text() + "\n#line 1\n" + source


class CompileJob(BaseModel):
    source: str
    cflags: list[str] = Field(default_factory=list)


def _source_line(reported: int, snippet: str, source: list[str]) -> int:
    """The line of `probe.bpf.c` clang meant: bcc inserts tracepoint structs before each
    TRACEPOINT_PROBE, so a reported line can be past the real one; clang's quoted source line
    finds it (the nearest match at or before the reported line)."""
    wanted = snippet.strip()
    if not wanted:
        return reported
    matches = [n for n, text in enumerate(source, start=1) if text.strip() == wanted]
    before = [n for n in matches if n <= reported]
    if before:
        return before[-1]
    return matches[0] if matches else reported


def _first_error(log_text: str, source: list[str]) -> tuple[int | None, str]:
    lines = log_text.splitlines()
    for index, line in enumerate(lines):
        match = _CLANG_ERROR_RE.search(line)
        if match:
            snippet = lines[index + 1] if index + 1 < len(lines) else ""
            found = _source_line(int(match.group(1)), snippet, source)
            return found, f"error: {match.group(3)}"[:300]
    errors = [ln for ln in lines if "error" in ln.lower()] or lines
    return None, " | ".join(errors[-3:])[-300:]


def check(job: CompileJob, log_path: str) -> dict[str, Any]:
    from bcc import BPF

    source = Path(job.source).read_text()
    text = probe_text(source)
    bpf: Any = None
    try:
        bpf = BPF(text=text, cflags=job.cflags)
    except Exception as exc:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            line, message = _first_error(handle.read(), source.splitlines())
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
