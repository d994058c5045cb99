"""A model backend that replays replies from a JSON file: deterministic, instant, offline.

Set `BPFSLEUTH_SCRIPTED_REPLIES=/path/replies.json` on the control worker to use it instead of
the configured model (tests and `bench/celery_loop.py` do, to measure the loop and not a model).
The file holds a JSON list of protocol objects (diagnostics and resolutions, as the model would
send them); turn N gets item N-1, and the last item answers every later turn. Each item is
validated like a real model's reply, so a bad script fails the way a bad model would. An item
may carry `"delay_s": <seconds>` (at most 60) to stand for a slow model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from worker.backends.base import ModelAnswer, ModelReplyInvalid, ModelRequest
from worker.flows.loader import flow_problem
from worker.protocol import ReplyError, parse_model_object


class ScriptedBackend:
    name = "scripted"

    def __init__(self, replies: list[object]) -> None:
        if not replies:
            raise ValueError("a scripted backend needs at least one reply")
        self.replies = replies

    @classmethod
    def from_file(cls, path: Path) -> ScriptedBackend:
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of replies")
        return cls(data)

    def ask(self, request: ModelRequest) -> ModelAnswer:
        index = min(max(request.evidence.step, 1), len(self.replies)) - 1
        raw = self.replies[index]
        if isinstance(raw, dict) and "delay_s" in raw:
            time.sleep(min(max(float(raw["delay_s"]), 0.0), 60.0))
        try:
            reply = parse_model_object(raw, flow_problem)
        except ReplyError as exc:
            raise ModelReplyInvalid(f"scripted reply {index + 1}: {exc}", raw=str(raw)) from exc
        return ModelAnswer(reply=reply, raw=json.dumps(raw), model="scripted")
