"""Claude through the official `anthropic` SDK: a forced tool whose input is the reply.

The system prompt is one cached block; every earlier reply is replayed as the `tool_use` it was,
followed by a `tool_result` and the next step's prompt. An invalid reply gets one repair round:
a `tool_result` with `is_error` carrying the parser's error.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from worker.backends.base import (
    REPLY_TOOL_DESCRIPTION,
    REPLY_TOOL_NAME,
    ModelAnswer,
    ModelReplyInvalid,
    ModelRequest,
    ModelUnavailable,
    TokenUsage,
    reply_tool_schema,
    unwrap_reply,
)
from worker.flows.loader import flow_problem
from worker.protocol import (
    Diagnostic,
    ReplyError,
    Resolution,
    parse_model_object,
    parse_model_reply,
)
from worker.settings import WorkerSettings

RECORDED = "Recorded. The next message has what ran and what it found."


def _usage(response: Any) -> TokenUsage:
    usage = response.usage
    return TokenUsage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
        cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0,
        calls=1,
    )


def _content_params(response: Any) -> list[dict[str, Any]]:
    """The response's content as request params, to replay it in a repair round."""
    blocks: list[dict[str, Any]] = []
    for block in response.content:
        if block.type == "tool_use":
            blocks.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
        elif block.type == "text" and block.text:
            blocks.append({"type": "text", "text": block.text})
    return blocks or [{"type": "text", "text": "(empty reply)"}]


class _Parsed:
    def __init__(self, call_id: str, raw: str) -> None:
        self.call_id = call_id
        self.raw = raw
        self.reply: Diagnostic | Resolution | None = None
        self.error: str | None = None


def _parse(response: Any) -> _Parsed:
    tool = next(
        (b for b in response.content if b.type == "tool_use" and b.name == REPLY_TOOL_NAME), None
    )
    if tool is not None:
        parsed = _Parsed(tool.id, json.dumps(tool.input, ensure_ascii=False))
        try:
            parsed.reply = parse_model_object(unwrap_reply(tool.input), flow_problem)
        except ReplyError as exc:
            parsed.error = str(exc)
        if response.stop_reason == "max_tokens" and parsed.error:
            parsed.error += " (the reply was cut at max_tokens: make it shorter)"
        return parsed
    text = "".join(b.text for b in response.content if b.type == "text")
    parsed = _Parsed("", text)
    try:
        parsed.reply = parse_model_reply(text, flow_problem)
    except ReplyError as exc:
        parsed.error = f"no {REPLY_TOOL_NAME} tool call, and the text is not a reply: {exc}"
    return parsed


def build_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """Earlier steps as tool_use/tool_result pairs, then this step's prompt."""
    messages: list[dict[str, Any]] = []
    previous_call = ""
    for index, exchange in enumerate(request.history):
        messages.append({"role": "user", "content": _user_content(previous_call, exchange.prompt)})
        previous_call = exchange.call_id or f"toolu_bpfsleuth_{index}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": previous_call,
                        "name": REPLY_TOOL_NAME,
                        "input": {"reply": exchange.reply.model_dump(mode="json")},
                    }
                ],
            }
        )
    messages.append({"role": "user", "content": _user_content(previous_call, request.prompt)})
    return messages


def _user_content(previous_call: str, prompt: str) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if previous_call:
        content.append({"type": "tool_result", "tool_use_id": previous_call, "content": RECORDED})
    content.append({"type": "text", "text": prompt})
    return content


def _repair_message(parsed: _Parsed) -> dict[str, Any]:
    text = (
        f"That reply is invalid: {parsed.error}. Call {REPLY_TOOL_NAME} again with the "
        "corrected reply (a diagnostic or a resolution under 'reply')."
    )
    if parsed.call_id:
        return {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": parsed.call_id,
                    "is_error": True,
                    "content": text,
                }
            ],
        }
    return {"role": "user", "content": [{"type": "text", "text": text}]}


class AnthropicBackend:
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self._anthropic = anthropic
        self._client: Any = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> AnthropicBackend:
        if settings.anthropic_api_key is None:
            raise ModelUnavailable("ANTHROPIC_API_KEY is not set")
        return cls(
            api_key=settings.anthropic_api_key.get_secret_value(),
            model=settings.anthropic_model,
            base_url=settings.anthropic_base_url,
        )

    def _create(self, request: ModelRequest, messages: list[dict[str, Any]]) -> Any:
        try:
            return self._client.messages.create(
                model=self.model,
                max_tokens=request.max_output_tokens,
                system=[
                    {"type": "text", "text": request.system, "cache_control": {"type": "ephemeral"}}
                ],
                tools=[
                    {
                        "name": REPLY_TOOL_NAME,
                        "description": REPLY_TOOL_DESCRIPTION,
                        "input_schema": reply_tool_schema(final=request.final),
                    }
                ],
                tool_choice={
                    "type": "tool",
                    "name": REPLY_TOOL_NAME,
                    "disable_parallel_tool_use": True,
                },
                messages=messages,
            )
        except self._anthropic.APIError as exc:
            raise ModelUnavailable(f"Anthropic API: {type(exc).__name__}: {exc}") from exc

    def write_text(self, system: str, prompt: str, *, max_output_tokens: int = 1500) -> str:
        """Free text (no tool): a handoff summary, for example."""
        try:
            response = self._client.messages.create(
                model=self.model,
                max_tokens=max_output_tokens,
                system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": prompt}],
            )
        except self._anthropic.APIError as exc:
            raise ModelUnavailable(f"Anthropic API: {type(exc).__name__}: {exc}") from exc
        return "".join(b.text for b in response.content if b.type == "text").strip()

    def ask(self, request: ModelRequest) -> ModelAnswer:
        messages = build_messages(request)
        response = self._create(request, messages)
        usage = _usage(response)
        parsed = _parse(response)
        repair_error: str | None = None
        if parsed.reply is None:
            repair_error = parsed.error
            messages = [
                *messages,
                {"role": "assistant", "content": _content_params(response)},
                _repair_message(parsed),
            ]
            try:
                response = self._create(request, messages)
            except ModelUnavailable as exc:
                exc.usage = usage + exc.usage
                raise
            usage = usage + _usage(response)
            parsed = _parse(response)
            if parsed.reply is None:
                raise ModelReplyInvalid(
                    f"invalid after one repair: {parsed.error}", usage=usage, raw=parsed.raw
                )
        return ModelAnswer(
            reply=parsed.reply,
            raw=parsed.raw,
            call_id=parsed.call_id,
            usage=usage,
            repaired=repair_error is not None,
            repair_error=repair_error,
            model=getattr(response, "model", self.model),
        )
