"""Alertmanager's webhook payload, version 4 (prometheus.io/docs/alerting/latest/configuration,
`<webhook_config>`). Unknown fields are ignored; the ones we use are bounded."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Labels = dict[str, str]
MAX_ALERTS = 200


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    starts_at: datetime | None = Field(default=None, alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=2000)
    fingerprint: str = Field(default="", max_length=64)


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1, max_length=4096)
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str = Field(default="", max_length=256)
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Labels = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL", max_length=2000)
    alerts: list[Alert] = Field(min_length=1, max_length=MAX_ALERTS)

    def firing(self) -> list[Alert]:
        return [alert for alert in self.alerts if alert.status == "firing"]

    def alertname(self) -> str:
        return (
            self.group_labels.get("alertname")
            or self.common_labels.get("alertname")
            or self.alerts[0].labels.get("alertname", "alert")
        )
