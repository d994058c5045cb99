"""The pure parts of the alert receiver: host labels to live hosts, the symptom, the payload."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from bot.alerts.models import WebhookPayload
from bot.alerts.service import map_hosts, strip_port, symptom_of


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("web-1:9100", "web-1"),
        ("web-1", "web-1"),
        ("10.0.0.5:9100", "10.0.0.5"),
        ("[::1]:9100", "::1"),
        ("fe80::1", "fe80::1"),
        ("db.prod.example.com:5432", "db.prod.example.com"),
    ],
)
def test_strip_port(value: str, host: str) -> None:
    assert strip_port(value) == host


def test_hosts_map_by_name_case_and_short_name_and_unknowns_are_kept() -> None:
    alpha = "alpha-" + secrets.token_hex(2)
    ghost = "ghost-" + secrets.token_hex(2)
    live = [alpha, "beta.prod.example"]
    found, unknown = map_hosts(
        [f"{alpha.upper()}:9100", f"{alpha}.prod.example:9100", "beta:1", f"{ghost}:9100"], live
    )
    assert found == [alpha, "beta.prod.example"]
    assert unknown == [ghost]


def _payload(**extra: object) -> dict[str, object]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="X"}',
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighErrors", "instance": "a:1"},
                "annotations": {"summary": "errors are high", "description": "5xx over 5%"},
            }
        ],
        **extra,
    }


def test_symptom_takes_name_summary_and_description() -> None:
    payload = WebhookPayload.model_validate(_payload(groupLabels={"alertname": "HighErrors"}))
    assert symptom_of(payload) == "Alert HighErrors firing: errors are high. 5xx over 5%"


@pytest.mark.parametrize(
    "bad",
    [
        {"version": "3"},
        {"alerts": []},
        {"status": "pending"},
        {"groupKey": ""},
        {"alerts": [{"status": "firing", "labels": {"a": 1}}]},
    ],
)
def test_malformed_payloads_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WebhookPayload.model_validate(_payload(**bad))
