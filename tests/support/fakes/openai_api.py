"""A local fake of an OpenAI-compatible chat completions endpoint with scripted replies.

The real `openai` SDK talks to it through `base_url`. Each call is checked against the chat
completions request shape (bearer auth, model, messages with known roles and string content,
`response_format` of type text, json_object or json_schema with a name and a schema; JSON mode
needs the word "json" in the messages, as OpenAI requires). `reject` lists response_format
types this endpoint answers 400 to, like servers without structured outputs.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.support.fakes._server import Handled, JsonApiServer

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ROLES = {"system", "developer", "user", "assistant", "tool"}
TOP_LEVEL_KEYS = {
    "model",
    "messages",
    "response_format",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stream",
    "stop",
    "seed",
    "n",
    "tools",
    "tool_choice",
}


def _error(status: int, message: str, code: str = "invalid_request_error") -> Handled:
    return Handled(
        status, {"error": {"message": message, "type": code, "param": None, "code": None}}
    )


def check_chat_request(headers: dict[str, str], body: Any) -> list[str]:
    problems = []
    if not headers.get("authorization", "").startswith("Bearer "):
        problems.append("missing Authorization: Bearer header")
    if not isinstance(body, dict):
        return [*problems, "body must be a JSON object"]
    unknown = set(body) - TOP_LEVEL_KEYS
    if unknown:
        problems.append(f"unknown top-level fields {sorted(unknown)}")
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model: required string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: required non-empty list"]
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            problems.append(f"messages[{index}].role must be one of {sorted(ROLES)}")
        elif not isinstance(message.get("content"), str):
            problems.append(f"messages[{index}].content must be a string")
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type")
        if kind not in {"text", "json_object", "json_schema"}:
            problems.append("response_format.type must be text, json_object or json_schema")
        if kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            if not NAME_RE.match(str(spec.get("name", ""))):
                problems.append("response_format.json_schema.name must match ^[a-zA-Z0-9_-]{1,64}$")
            if not isinstance(spec.get("schema"), dict):
                problems.append("response_format.json_schema.schema must be an object")
        if kind == "json_object" and not any(
            "json" in str(m.get("content", "")).lower() for m in messages
        ):
            problems.append("'messages' must contain the word 'json' to use json_object")
    return problems


class FakeOpenAI(JsonApiServer):
    """Scripted chat completions. `script` items: reply text (str), or a callable that gets the
    request body and returns the reply text."""

    def __init__(
        self,
        script: list[str | Callable[[dict[str, Any]], str]] | None = None,
        *,
        reject: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.script = list(script or [])
        self.reject = reject or set()
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.rejected: list[str] = []
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Handled:
        if path.rstrip("/") != "/v1/chat/completions":
            return _error(404, f"no route {path}", "not_found")
        self.requests.append(body)
        problems = check_chat_request(headers, body)
        if problems:
            self.violations += problems
            return _error(400, "; ".join(problems))
        kind = (body.get("response_format") or {}).get("type", "text")
        if kind in self.reject:
            self.rejected.append(kind)
            return _error(400, f"response_format type {kind} is not supported by this server")
        if not self.script:
            raise AssertionError("the fake OpenAI API ran out of scripted replies")
        item = self.script.pop(0)
        text = item(body) if callable(item) else item
        prompt_tokens = max(1, len(json.dumps(body["messages"])) // 4)
        completion_tokens = max(1, len(text) // 4)
        return Handled(
            200,
            {
                "id": f"chatcmpl-fake{next(self._ids):04d}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                    "prompt_tokens_details": {"cached_tokens": 0},
                },
            },
        )
