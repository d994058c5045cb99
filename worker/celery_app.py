"""The Celery application: `celery -A worker.celery_app worker -Q control` (or `bpfsleuth worker`).

Importing this module builds the app from `worker.celery_config`; importing `worker.tasks`
registers the tasks (names `worker.tasks.<name>`). Only this module and `worker.tasks` import
Celery, and only the distributed paths import them.
"""

from __future__ import annotations

from celery import Celery

from worker.celery_config import DistributedSettings, celery_settings
from worker.settings import WorkerSettings


def create_app(
    worker: WorkerSettings | None = None, dist: DistributedSettings | None = None
) -> Celery:
    app = Celery("bpfsleuth", include=["worker.tasks"])
    app.conf.update(celery_settings(worker or WorkerSettings(), dist or DistributedSettings()))
    return app


app = create_app()
celery = app
