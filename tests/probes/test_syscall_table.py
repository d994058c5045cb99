"""The syscall_errors probe's number -> name table, now bcc's (`bcc.syscall`) completed with the
calls bcc lacks: it must name every x86_64 call exactly as the table bundled before did."""

from __future__ import annotations

import hashlib
import json
import platform
import random

import pytest

from probes.catalog.syscall_errors import syscall_table
from probes.catalog.syscall_errors.syscall_table import parse_unistd, syscall_name, syscall_names

# sha256 of the sorted (number, name) pairs 0..469 of the 421-line table this replaced.
BUNDLED_SHA256 = "2a1c9b3ad6d58f05da68091704c2351267f01ca08313fb95b89f21dca629b2bb"
# From Linux's arch/x86/entry/syscalls/syscall_64.tbl, across bcc's table and past its end.
KNOWN = {
    0: "read", 2: "open", 42: "connect", 59: "execve", 202: "futex", 257: "openat",
    334: "rseq", 335: "uretprobe", 424: "pidfd_send_signal", 435: "clone3",
    437: "openat2", 455: "futex_wait", 462: "mseal", 469: "file_setattr",
}  # fmt: skip

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 numbers")


def test_the_table_is_the_one_bundled_before() -> None:
    names = {nr: name for nr, name in syscall_names().items() if nr <= 469}
    digest = hashlib.sha256(json.dumps(sorted(names.items())).encode()).hexdigest()
    assert digest == BUNDLED_SHA256
    for nr, name in random.sample(sorted(KNOWN.items()), len(KNOWN)):
        assert syscall_name(nr) == name


def test_names_and_numbers_are_one_to_one_and_unknown_numbers_say_so() -> None:
    names = syscall_names()
    assert len(set(names.values())) == len(names)
    assert all(nr in names for nr in range(335))  # no gap where bcc's table runs
    unknown = random.randint(100_000, 10**6)
    assert syscall_name(unknown) == f"syscall_{unknown}"


def test_bcc_provides_the_bulk_and_the_host_headers_only_add(tmp_path, monkeypatch) -> None:
    assert len(syscall_table._BCC_SYSCALLS) >= 330
    extra_nr = random.randint(600, 900)
    header = tmp_path / "unistd_64.h"
    header.write_text(f"#define __NR_read 0\n#define __NR_future_call {extra_nr}\n")
    monkeypatch.setattr(syscall_table, "UNISTD_64", header)
    syscall_names.cache_clear()
    try:
        assert syscall_name(extra_nr) == "future_call" and syscall_name(0) == "read"
    finally:
        syscall_names.cache_clear()
    assert parse_unistd(header.read_text()) == {0: "read", extra_nr: "future_call"}
