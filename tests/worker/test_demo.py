"""`bpfsleuth demo`, as `make run` runs it: the resolution names the workload's pid and port,
and the workload is gone afterwards, also after Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.paths import BPFSLEUTH

pytestmark = [pytest.mark.ebpf, pytest.mark.slow]
STARTED = re.compile(r"started orders-app \(pid (\d+)\).*?127\.0\.0\.1:(\d+)", re.DOTALL)


def test_the_demo_names_the_workload_and_stops_it() -> None:
    done = subprocess.run(
        [str(BPFSLEUTH), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    started = STARTED.search(done.stdout)
    assert started, done.stdout
    pid, port = started.groups()
    resolution = done.stdout.split("resolution: confidence", 1)[1]
    assert f"orders-app (pid {pid})" in resolution and f"127.0.0.1:{port}" in resolution
    assert f"the resolution named orders-app (pid {pid})" in done.stdout
    assert not Path(f"/proc/{pid}").exists()


def test_ctrl_c_stops_the_demo_workload() -> None:
    proc = subprocess.Popen(
        [str(BPFSLEUTH), "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "step 1" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    started = STARTED.search(seen)
    assert started, seen
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "workload stopped" in err
    assert not Path(f"/proc/{started.group(1)}").exists()
