"""The Celery application, a composition root nothing imports:
`celery -A worker.distributed.app worker -Q control` (`bpfsleuth worker` builds its own the same
way, worker.distributed.roles). Settings come from the environment (`BPFSLEUTH_HOST` names the
host whose queue a host worker consumes)."""

from __future__ import annotations

from worker.distributed.config import create_app
from worker.distributed.roles import wire

app = create_app()
wire(app)
celery = app
