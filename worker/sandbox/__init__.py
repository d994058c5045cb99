"""The kernel-enforced sandbox every command and pipeline stage runs in (docs/sandbox.md).

The policy decides; the sandbox enforces: no_new_privs, trimmed capabilities, rlimits, a
seccomp filter that fails state-changing syscalls with EPERM, and Landlock where the kernel has
it. `run_pipeline` runs argv stages through the exec helper; `host_status` says which layers
this host applies.
"""

from worker.sandbox.helper import Limits, SandboxStatus, host_status
from worker.sandbox.profiles import PROFILES, Profile, profile_for
from worker.sandbox.runner import PipelineOutcome, Stage, resolve, run_pipeline

__all__ = [
    "PROFILES",
    "Limits",
    "PipelineOutcome",
    "Profile",
    "SandboxStatus",
    "Stage",
    "host_status",
    "profile_for",
    "resolve",
    "run_pipeline",
]
