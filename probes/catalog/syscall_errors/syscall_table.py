"""x86_64 system call numbers -> names: bcc's table (`bcc.syscall`), completed.

bcc's table stops at 334 (rseq, from strace's list) unless `ausyscall` is installed; the calls
added since (335 and 424 onwards, to 469 file_setattr) are listed here, and the host's
<asm/unistd_64.h>, when installed, adds any newer one. Other architectures get `syscall_<nr>`
(the numbers differ per architecture).
"""

from __future__ import annotations

import contextlib
import platform
import re
from functools import lru_cache
from pathlib import Path

try:
    from bcc.syscall import syscalls as _BCC_SYSCALLS
except Exception:  # no bcc, or bcc on another architecture without ausyscall (it raises)
    _BCC_SYSCALLS = {}

UNISTD_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
_DEFINE_RE = re.compile(r"^#define __NR_(\w+) (\d+)$", re.MULTILINE)

# Newer than bcc's table (Linux 4.19 to 6.17).
X86_64_NEWER: dict[int, str] = {
    335: "uretprobe",
    424: "pidfd_send_signal",
    425: "io_uring_setup",
    426: "io_uring_enter",
    427: "io_uring_register",
    428: "open_tree",
    429: "move_mount",
    430: "fsopen",
    431: "fsconfig",
    432: "fsmount",
    433: "fspick",
    434: "pidfd_open",
    435: "clone3",
    436: "close_range",
    437: "openat2",
    438: "pidfd_getfd",
    439: "faccessat2",
    440: "process_madvise",
    441: "epoll_pwait2",
    442: "mount_setattr",
    443: "quotactl_fd",
    444: "landlock_create_ruleset",
    445: "landlock_add_rule",
    446: "landlock_restrict_self",
    447: "memfd_secret",
    448: "process_mrelease",
    449: "futex_waitv",
    450: "set_mempolicy_home_node",
    451: "cachestat",
    452: "fchmodat2",
    453: "map_shadow_stack",
    454: "futex_wake",
    455: "futex_wait",
    456: "futex_requeue",
    457: "statmount",
    458: "listmount",
    459: "lsm_get_self_attr",
    460: "lsm_set_self_attr",
    461: "lsm_list_modules",
    462: "mseal",
    463: "setxattrat",
    464: "getxattrat",
    465: "listxattrat",
    466: "removexattrat",
    467: "open_tree_attr",
    468: "file_getattr",
    469: "file_setattr",
}


def parse_unistd(text: str) -> dict[int, str]:
    return {int(number): name for name, number in _DEFINE_RE.findall(text)}


@lru_cache(maxsize=1)
def syscall_names() -> dict[int, str]:
    """Number -> name for this host's architecture (empty when not x86_64)."""
    if platform.machine() != "x86_64":
        return {}
    names = {int(nr): name.decode() for nr, name in _BCC_SYSCALLS.items()}
    names.update(X86_64_NEWER)
    with contextlib.suppress(OSError):
        names.update(parse_unistd(UNISTD_64.read_text()))
    return names


def syscall_name(number: int) -> str:
    return syscall_names().get(number, f"syscall_{number}")
