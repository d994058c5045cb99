"""Any OpenAI-compatible chat completions endpoint (TensorZero gateway, vLLM, Ollama, OpenAI).

Structured output first (`response_format` json_schema); an endpoint that answers 400 to it is
asked again in JSON mode, then with plain text and the tolerant parser. The mode that worked is
remembered. An invalid reply gets one repair round with the parser's error.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import openai

from worker.backends.base import (
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

OutputMode = Literal["json_schema", "json_object", "text"]
MODES: tuple[OutputMode, ...] = ("json_schema", "json_object", "text")


def _response_format(mode: OutputMode, *, final: bool) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {
                "name": "bpfsleuth_reply",
                "schema": reply_tool_schema(final=final),
                "strict": False,
            },
        }
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def parse_text(text: str) -> Diagnostic | Resolution:
    """A reply as text: a (possibly wrapped) JSON object, or prose around one."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return parse_model_reply(text, flow_problem)
    return parse_model_object(unwrap_reply(obj), flow_problem)


def build_messages(request: ModelRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": request.system}]
    for exchange in request.history:
        messages.append({"role": "user", "content": exchange.prompt})
        messages.append(
            {"role": "assistant", "content": exchange.reply.model_dump_json(exclude_defaults=False)}
        )
    messages.append({"role": "user", "content": request.prompt})
    return messages


def _usage(response: Any) -> TokenUsage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return TokenUsage(calls=1)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    return TokenUsage(
        input_tokens=(usage.prompt_tokens or 0) - cached,
        output_tokens=usage.completion_tokens or 0,
        cache_read_input_tokens=cached,
        calls=1,
    )


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        self.model = model
        self.mode: OutputMode = "json_schema"
        self._openai = openai
        self._client: Any = openai.OpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> OpenAIBackend:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(base_url=settings.openai_base_url, model=settings.openai_model, api_key=key)

    def _create(self, request: ModelRequest, messages: list[dict[str, Any]]) -> Any:
        while True:
            response_format = _response_format(self.mode, final=request.final)
            extra: dict[str, Any] = (
                {} if response_format is None else {"response_format": response_format}
            )
            try:
                return self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    max_tokens=request.max_output_tokens,
                    **extra,
                )
            except self._openai.BadRequestError as exc:
                if self.mode == "text":
                    raise ModelUnavailable(f"OpenAI-compatible API: {exc}") from exc
                self.mode = MODES[MODES.index(self.mode) + 1]
            except self._openai.APIError as exc:
                raise ModelUnavailable(
                    f"OpenAI-compatible API: {type(exc).__name__}: {exc}"
                ) from exc

    def write_text(self, system: str, prompt: str, *, max_output_tokens: int = 1500) -> str:
        """Free text (no response_format): a handoff summary, for example."""
        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": prompt},
                ],
                max_tokens=max_output_tokens,
            )
        except self._openai.APIError as exc:
            raise ModelUnavailable(f"OpenAI-compatible API: {type(exc).__name__}: {exc}") from exc
        text = (response.choices[0].message.content or "") if response.choices else ""
        return str(text).strip()

    def ask(self, request: ModelRequest) -> ModelAnswer:
        messages = build_messages(request)
        response = self._create(request, messages)
        usage = _usage(response)
        text = (response.choices[0].message.content or "") if response.choices else ""
        repair_error: str | None = None
        try:
            reply = parse_text(text)
        except ReplyError as exc:
            repair_error = str(exc)
            messages = [
                *messages,
                {"role": "assistant", "content": text or "(empty reply)"},
                {
                    "role": "user",
                    "content": f"That reply is invalid: {exc}. Reply again with exactly one "
                    "JSON object: a diagnostic or a resolution.",
                },
            ]
            try:
                response = self._create(request, messages)
            except ModelUnavailable as unavailable:
                unavailable.usage = usage + unavailable.usage
                raise
            usage = usage + _usage(response)
            text = (response.choices[0].message.content or "") if response.choices else ""
            try:
                reply = parse_text(text)
            except ReplyError as again:
                raise ModelReplyInvalid(
                    f"invalid after one repair: {again}", usage=usage, raw=text
                ) from None
        return ModelAnswer(
            reply=reply,
            raw=text,
            call_id=getattr(response, "id", "") or "",
            usage=usage,
            repaired=repair_error is not None,
            repair_error=repair_error,
            model=getattr(response, "model", self.model) or self.model,
        )
