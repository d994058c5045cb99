"""The adversarial suite by class and verdict: `python -m tests.worker.adversarial_summary`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml
from pydantic import BaseModel

SUITE = Path(__file__).parent / "data" / "adversarial_policy.yaml"


class Group(BaseModel):
    """One class of attack (or of everyday use) and the verdict all its commands must get."""

    model_config = {"extra": "forbid", "populate_by_name": True}

    klass: str
    verdict: str
    destinations: str = ""
    commands: list[str]


def load_suite(path: Path = SUITE) -> list[Group]:
    raw = yaml.safe_load(path.read_text())
    return [
        Group(
            klass=item["class"],
            verdict=item["verdict"],
            destinations=item.get("destinations", ""),
            commands=[line for line in item["commands"].splitlines() if line.strip()],
        )
        for item in raw
    ]


def summary(groups: list[Group]) -> str:
    by_verdict: Counter[str] = Counter()
    lines = [f"{'class':<62} {'verdict':<15} commands"]
    for group in groups:
        by_verdict[group.verdict] += len(group.commands)
        lines.append(f"{group.klass[:62]:<62} {group.verdict:<15} {len(group.commands):>8}")
    total = sum(by_verdict.values())
    lines.append("")
    lines.append(
        f"{total} commands in {len(groups)} classes: "
        + ", ".join(f"{count} {verdict}" for verdict, count in sorted(by_verdict.items()))
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(load_suite()))
