"""The `ebpf` marker's hook (tests/conftest.py), run on a small suite of its own with pytester.

The host's measured capabilities are replaced by the case's problems: what is tested is the
rule (skip outside CI, fail under CI=true, skip marks first, fixtures only after the check),
not the measurement, which every live test exercises.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.support import ebpf

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
SUITE = """
import pytest
from pathlib import Path

@pytest.fixture
def workload():
    Path("{started}").write_text("started")
    yield

@pytest.mark.ebpf
def test_live(workload):
    pass

@pytest.mark.ebpf
@pytest.mark.skipif(True, reason="{skip_reason}")
def test_skipped_by_its_own_mark():
    pass

def test_pure():
    pass
"""


class Suite:
    """The suite's outcome per test (`passed`, `skipped`, `failed` for a setup that failed)
    and the message of each that did not pass; whether the fixture started."""

    def __init__(
        self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, problems: tuple[str, ...]
    ) -> None:
        monkeypatch.setattr(ebpf, "ebpf_problems", lambda: problems)
        self.started = pytester.path / f"started-{secrets.token_hex(4)}"
        self.skip_reason = f"no tool {secrets.token_hex(4)}"
        pytester.makeconftest(CONFTEST)
        pytester.makeini("[pytest]\nmarkers =\n    ebpf: needs root and a working bcc\n")
        pytester.makepyfile(SUITE.format(started=self.started, skip_reason=self.skip_reason))
        recorder = pytester.inline_run("-p", "no:cacheprovider")
        self.outcome: dict[str, str] = {}
        self.message: dict[str, str] = {}
        for report in recorder.getreports("pytest_runtest_logreport"):
            name = report.nodeid.split("::")[-1]
            if report.when == "setup" or report.outcome != "passed":
                self.outcome[name] = report.outcome
            if report.skipped:
                reason = str(report.longrepr[2])  # type: ignore[index]
                self.message[name] = reason.removeprefix("Skipped: ")
            elif report.failed:
                self.message[name] = str(report.longrepr)


def test_outside_ci_a_host_without_ebpf_skips_marked_tests_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    problem = f"not root {secrets.token_hex(3)}"
    suite = Suite(pytester, monkeypatch, (problem, "tracefs not mounted"))
    assert suite.outcome == {
        "test_live": "skipped",
        "test_skipped_by_its_own_mark": "skipped",
        "test_pure": "passed",
    }
    assert suite.message["test_live"] == f"eBPF unavailable: {problem}; tracefs not mounted"
    assert suite.message["test_skipped_by_its_own_mark"] == suite.skip_reason
    assert not suite.started.exists(), "the fixture ran before the check"


def test_in_ci_a_host_without_ebpf_fails_marked_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    suite = Suite(pytester, monkeypatch, ("not root",))
    assert suite.outcome == {
        "test_live": "failed",
        "test_skipped_by_its_own_mark": "skipped",
        "test_pure": "passed",
    }
    assert "eBPF unavailable: not root" in suite.message["test_live"]
    assert suite.message["test_skipped_by_its_own_mark"] == suite.skip_reason
    assert not suite.started.exists(), "the fixture ran before the check"


def test_a_host_with_ebpf_runs_marked_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    suite = Suite(pytester, monkeypatch, ())
    assert suite.outcome == {
        "test_live": "passed",
        "test_skipped_by_its_own_mark": "skipped",
        "test_pure": "passed",
    }
    assert suite.started.read_text() == "started"
