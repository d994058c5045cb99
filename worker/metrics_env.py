"""Metrics set-up that must run before prometheus_client is imported (see `worker.metrics`).

`BPFSLEUTH_METRICS_PORT` (0: off) is where a bot or worker process serves /metrics. With it set,
`prepare()` points PROMETHEUS_MULTIPROC_DIR at a fresh directory (unless the deployment gave
one), so Celery's prefork children and the bot's HTTP workers write their samples there and the
exporter in the parent sums them: nothing is lost per child.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from worker.settings import MULTIPROC_ENV, MetricsSettings


def prepare(settings: MetricsSettings | None = None) -> MetricsSettings:
    """Call first in a bot or worker process. With a port set, make the multiprocess directory
    (a fresh temporary one, or the deployment's, emptied: samples of a previous run's dead
    processes must not be summed again) and export PROMETHEUS_MULTIPROC_DIR to children."""
    settings = settings or MetricsSettings()
    if not settings.port:
        return settings
    if settings.multiproc_dir:
        directory = Path(settings.multiproc_dir)
        if directory.exists():
            for item in directory.glob("*.db"):
                item.unlink()
        directory.mkdir(parents=True, exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="bpfsleuth-metrics-"))
    os.environ[MULTIPROC_ENV] = str(directory)
    return settings.model_copy(update={"multiproc_dir": str(directory)})


def cleanup(settings: MetricsSettings) -> None:
    """Remove a temporary multiprocess directory this process made."""
    if settings.multiproc_dir and Path(settings.multiproc_dir).name.startswith(
        "bpfsleuth-metrics-"
    ):
        shutil.rmtree(settings.multiproc_dir, ignore_errors=True)
