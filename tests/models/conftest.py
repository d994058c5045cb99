from __future__ import annotations

from worker.backends.base import Evidence, ModelRequest


def request(
    prompt: str = "Step 1 of 6. Symptom: app cannot reach the database.", **kw
) -> ModelRequest:
    return ModelRequest(
        system=kw.pop("system", "You are bpfsleuth. Reply with one JSON object."),
        prompt=prompt,
        evidence=Evidence(
            symptom="app cannot reach the database", hosts=["web-1"], step=1, max_steps=6
        ),
        **kw,
    )
