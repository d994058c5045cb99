"""The catalog as data: every probe folder is complete and valid; bad specs are rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from probes.catalog import CATALOG_DIR, load_catalog, load_catalog_from
from probes.models import ProbeResult
from probes.spec import ProbeSpec

BUDGETED = {
    "tcp_connect",
    "dns",
    "file_opens",
    "exec",
    "tcp_retransmits",
    "oom_kills",
    "tracepoint",
}
PROBE_DIRS = sorted(p for p in CATALOG_DIR.iterdir() if (p / "probe.yaml").exists())


def test_no_probe_folder_is_broken() -> None:
    catalog = load_catalog()
    assert catalog.broken == {}
    assert set(catalog.names()) >= BUDGETED


@pytest.mark.parametrize("directory", PROBE_DIRS, ids=[p.name for p in PROBE_DIRS])
def test_probe_folder_is_complete(directory: Path) -> None:
    source = (directory / "probe.bpf.c").read_text()
    assert source.lstrip().startswith("/*"), "the C starts with a header comment"
    header = source[: source.index("*/")].lower()
    assert "overhead" in header and "caveat" in header and "traces" in header
    assert (directory / "reader.py").exists()
    assert (directory / "__init__.py").exists()


@pytest.mark.parametrize("directory", PROBE_DIRS, ids=[p.name for p in PROBE_DIRS])
def test_example_is_a_small_real_result(directory: Path) -> None:
    example = directory / "example.json"
    if not example.exists():
        pytest.skip(f"{directory.name} has no example.json yet")
    result = ProbeResult.model_validate_json(example.read_text())
    assert result.probe == directory.name
    assert result.error is None and result.attach_points and result.summary
    # the budget is a few hundred tokens: under 3,000 characters of JSON for every probe
    # (probes.engine.budget enforces it; the busy-host tests in test_engine_live check it live)
    assert len(result.model_dump_json()) < 3000


def test_no_kernel_struct_is_dereferenced() -> None:
    for directory in PROBE_DIRS:
        source = (directory / "probe.bpf.c").read_text()
        for banned in (
            "struct task_struct",
            "struct sock *",
            "struct sk_buff",
            "->sk_",
            "bpf_get_current_task",
        ):
            assert banned not in source, f"{directory.name} uses {banned}"


def _spec(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "demo",
        "description": "A demo probe for the spec tests.",
        "attach": [
            {"role": "r", "any_of": [{"kind": "tracepoint", "target": "sched:sched_switch"}]}
        ],
        "duration": {"default": 5, "max": 10},
        "overhead": "low",
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "Bad-Name"},
        {"description": "two\nlines of text here"},
        {"duration": {"default": 20, "max": 10}},
        {"duration": {"default": 5, "max": 3600}},
        {"overhead": "tiny"},
        {"params": {"n": {"type": "int", "description": "no bounds", "define": "N"}}},
        {
            "params": {
                "n": {"type": "int", "min": 0, "max": 9, "description": "x", "define": "n; x"}
            }
        },
        {"attach": [{"role": "r", "any_of": [{"kind": "tracepoint", "target": "sched/bad"}]}]},
        {"attach": [{"role": "r", "any_of": [{"kind": "uprobe", "target": "c:getaddrinfo"}]}]},
        {
            "attach": [
                {"role": "r", "any_of": [{"kind": "tracepoint", "target": "a:b", "fn": "x()"}]}
            ]
        },
        {"answer_params": {"kprobe:x": {"n": 1}}},
    ],
)
def test_bad_specs_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ProbeSpec.model_validate(_spec(**overrides))


def test_answers_are_normalised() -> None:
    spec = ProbeSpec.model_validate(
        _spec(answers=["kprobe:tcp_connect", "sched:sched_switch", "tracepoint:irq/x"])
    )
    assert spec.answers == ["kprobe:tcp_connect", "sched/sched_switch", "irq/x"]


def test_a_broken_folder_does_not_hide_the_others(tmp_path: Path) -> None:
    good = tmp_path / "demo"
    good.mkdir()
    (good / "probe.yaml").write_text(yaml.safe_dump(_spec()))
    (good / "probe.bpf.c").write_text("/* demo */\n")
    bad = tmp_path / "other"
    bad.mkdir()
    (bad / "probe.yaml").write_text(yaml.safe_dump(_spec(name="mismatch")))
    (bad / "probe.bpf.c").write_text("")
    catalog = load_catalog_from(tmp_path)
    assert catalog.names() == ["demo"]
    assert "folder is 'other'" in catalog.broken["other"]
