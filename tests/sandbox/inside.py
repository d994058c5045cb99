"""Run one pipeline in the sandbox and print the outcome as JSON: started by the netns tests
through `ip netns exec NAME python -m tests.sandbox.inside ...` so the sandboxed command lives
in a network namespace the test made. argv: a JSON list of stages, optionally a profile JSON."""

from __future__ import annotations

import json
import sys

from tests.support.ebpf import scaled
from worker.sandbox import Profile, resolve, run_pipeline


def main() -> None:
    stages: list[list[str]] = json.loads(sys.argv[1])
    profile = Profile.model_validate_json(sys.argv[2]) if len(sys.argv) > 2 else None
    outcome = run_pipeline(
        [resolve(argv, profile) for argv in stages], timeout_s=scaled(10), output_cap=1 << 20
    )
    print(outcome.model_dump_json())


if __name__ == "__main__":
    main()
