"""A local fake of Anthropic's Messages API with scripted replies.

The real `anthropic` SDK talks to it through `base_url`. Every call is checked against the
published shape of `POST /v1/messages` (headers, model, max_tokens, alternating messages that
start with a user turn, content blocks, tool_use/tool_result pairing, tools and tool_choice,
system blocks); a call that breaks a rule is answered 400 `invalid_request_error`, as the real
API does, and the problem is kept in `violations` for the test to assert on. Replies have the
real response shape, with usage including the prompt-cache fields.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

from tests.support.fakes._server import Handled, JsonApiServer

TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
TOP_LEVEL_KEYS = {
    "model",
    "max_tokens",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_k",
    "top_p",
    "thinking",
    "service_tier",
}
TOOL_CHOICE_TYPES = {"auto", "any", "tool", "none"}


class Text:
    """A scripted reply made of one text block instead of a tool call."""

    def __init__(self, text: str) -> None:
        self.text = text


class Status:
    """A scripted HTTP error (e.g. 529 overloaded) instead of a reply."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        self.status = status
        self.error_type = error_type
        self.message = message


ScriptItem = dict[str, Any] | Text | Status | Callable[[dict[str, Any]], Any]


def _tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


def _check_block(block: Any, role: str, where: str) -> list[str]:
    if not isinstance(block, dict) or "type" not in block:
        return [f"{where}: a content block must be an object with a type"]
    kind = block["type"]
    problems = []
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            problems.append(f"{where}: text block needs non-empty text")
    elif kind == "tool_use":
        if role != "assistant":
            problems.append(f"{where}: tool_use only in assistant messages")
        if not TOOL_ID_RE.match(str(block.get("id", ""))):
            problems.append(f"{where}: tool_use.id must match {TOOL_ID_RE.pattern}")
        if not isinstance(block.get("input"), dict):
            problems.append(f"{where}: tool_use.input must be an object")
        if not isinstance(block.get("name"), str):
            problems.append(f"{where}: tool_use.name required")
    elif kind == "tool_result":
        if role != "user":
            problems.append(f"{where}: tool_result only in user messages")
        if not isinstance(block.get("tool_use_id"), str):
            problems.append(f"{where}: tool_result.tool_use_id required")
        content = block.get("content", "")
        if not isinstance(content, str | list):
            problems.append(f"{where}: tool_result.content must be a string or blocks")
        if "is_error" in block and not isinstance(block["is_error"], bool):
            problems.append(f"{where}: tool_result.is_error must be a boolean")
    else:
        problems.append(f"{where}: unknown content block type {kind!r}")
    extra = set(block) - {
        "type",
        "text",
        "id",
        "name",
        "input",
        "tool_use_id",
        "content",
        "is_error",
        "cache_control",
        "citations",
    }
    if extra:
        problems.append(f"{where}: unknown block fields {sorted(extra)}")
    return problems


def check_messages_request(headers: dict[str, str], body: Any) -> list[str]:
    """Every way `body` breaks the published Messages API shape (empty when it is fine)."""
    problems = []
    # The API takes the key as x-api-key; SDK 2.x sends it as a bearer token, also accepted.
    if not headers.get("x-api-key") and not headers.get("authorization", "").startswith("Bearer "):
        problems.append("missing credentials: x-api-key or Authorization: Bearer")
    if not headers.get("anthropic-version"):
        problems.append("missing anthropic-version header")
    if not isinstance(body, dict):
        return [*problems, "body must be a JSON object"]
    unknown = set(body) - TOP_LEVEL_KEYS
    if unknown:
        problems.append(f"unknown top-level fields {sorted(unknown)}")
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model: required string")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        problems.append("max_tokens: required integer >= 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages: required non-empty list"]
    previous_tool_ids: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in {"user", "assistant"}:
            problems.append(f"{where}.role must be user or assistant")
            continue
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            problems.append(f"{where}: roles must alternate starting with user (got {role})")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list) or not blocks:
            problems.append(f"{where}.content: a string or a non-empty list of blocks")
            continue
        for b_index, block in enumerate(blocks):
            problems += _check_block(block, role, f"{where}.content.{b_index}")
        results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if previous_tool_ids:
            answered = {b.get("tool_use_id") for b in results}
            if answered != previous_tool_ids:
                problems.append(
                    f"{where}: tool_use ids {sorted(previous_tool_ids)} must each get a "
                    f"tool_result in the next user message (got {sorted(map(str, answered))})"
                )
            leading = blocks[: len(results)]
            if any(b.get("type") != "tool_result" for b in leading):
                problems.append(f"{where}: tool_result blocks must come first")
        elif results:
            problems.append(f"{where}: tool_result without a tool_use in the previous message")
        previous_tool_ids = {
            b["id"] for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"
        }
    if messages[-1].get("role") != "user" and not previous_tool_ids:
        pass  # a trailing assistant turn is a prefill: allowed
    system = body.get("system")
    if system is not None:
        if isinstance(system, list):
            for s_index, block in enumerate(system):
                if not isinstance(block, dict) or block.get("type") != "text":
                    problems.append(f"system.{s_index}: system blocks must be text blocks")
                    continue
                control = block.get("cache_control")
                if control is not None and control.get("type") != "ephemeral":
                    problems.append(f"system.{s_index}.cache_control.type must be ephemeral")
        elif not isinstance(system, str):
            problems.append("system: a string or a list of text blocks")
    tools = body.get("tools") or []
    names = set()
    for t_index, tool in enumerate(tools):
        if not TOOL_NAME_RE.match(str(tool.get("name", ""))):
            problems.append(f"tools.{t_index}.name must match {TOOL_NAME_RE.pattern}")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            problems.append(f"tools.{t_index}.input_schema: JSON Schema with type 'object'")
        names.add(tool.get("name"))
    choice = body.get("tool_choice")
    if choice is not None:
        if choice.get("type") not in TOOL_CHOICE_TYPES:
            problems.append(f"tool_choice.type must be one of {sorted(TOOL_CHOICE_TYPES)}")
        if choice.get("type") == "tool" and choice.get("name") not in names:
            problems.append("tool_choice.name must name one of the tools")
        if choice.get("type") in {"tool", "any"} and not tools:
            problems.append("tool_choice requires tools")
    return problems


class FakeAnthropic(JsonApiServer):
    """Scripted Messages API. `script` items: a tool input dict, `Text`, `Status`, or a callable
    that receives the request body and returns one of those."""

    def __init__(self, script: list[ScriptItem] | None = None, *, repeat_last: bool = False):
        super().__init__()
        self.script = list(script or [])
        self.repeat_last = repeat_last
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.violations: list[str] = []
        self._ids = itertools.count(1)
        self._cached_systems: set[str] = set()

    def _next_item(self, body: dict[str, Any]) -> ScriptItem:
        if not self.script:
            raise AssertionError("the fake Anthropic API ran out of scripted replies")
        item = (
            self.script[0] if (self.repeat_last and len(self.script) == 1) else self.script.pop(0)
        )
        if callable(item) and not isinstance(item, dict | Text | Status):
            return item(body)
        return item

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        system = body.get("system")
        cached = ""
        if isinstance(system, list):
            cached = "".join(
                b.get("text", "") for b in system if isinstance(b, dict) and b.get("cache_control")
            )
        creation = read = 0
        if cached:
            if cached in self._cached_systems:
                read = _tokens(cached)
            else:
                creation = _tokens(cached)
                self._cached_systems.add(cached)
        return {
            "input_tokens": _tokens(body.get("messages")),
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
        }

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Handled:
        if path.rstrip("/") != "/v1/messages":
            return Handled(
                404,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": f"no route {path}"},
                },
            )
        self.requests.append(body)
        self.headers.append(headers)
        problems = check_messages_request(headers, body)
        if problems:
            self.violations += problems
            return Handled(
                400,
                {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "; ".join(problems)},
                },
            )
        item = self._next_item(body)
        if isinstance(item, Status):
            return Handled(
                item.status,
                {"type": "error", "error": {"type": item.error_type, "message": item.message}},
            )
        tool_name = (body.get("tool_choice") or {}).get("name") or (
            (body.get("tools") or [{}])[0].get("name", "tool")
        )
        if isinstance(item, Text):
            content = [{"type": "text", "text": item.text}]
            stop = "end_turn"
        else:
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{next(self._ids):04d}",
                    "name": tool_name,
                    "input": item,
                }
            ]
            stop = "tool_use"
        usage = self._usage(body) | {"output_tokens": _tokens(content)}
        return Handled(
            200,
            {
                "id": f"msg_fake{next(self._ids):04d}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            },
        )

    # helpers for tests ---
    def api_key(self, request_index: int = -1) -> str:
        headers = self.headers[request_index]
        return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")

    # -----------------------------------------------------------------
    def user_texts(self, request_index: int = -1) -> list[str]:
        """The text blocks of the last user message of one recorded request."""
        last = self.requests[request_index]["messages"][-1]
        content = last["content"]
        if isinstance(content, str):
            return [content]
        return [b["text"] for b in content if b.get("type") == "text"]

    def system_text(self, request_index: int = -1) -> str:
        system = self.requests[request_index].get("system")
        if isinstance(system, str):
            return system
        return "".join(b["text"] for b in system or [])
