"""The one small interface every model backend implements, and what crosses it.

A backend gets a `ModelRequest` (the cached system prompt, the earlier exchanges, this step's
prompt, and the evidence as data for planners that do not read prose) and returns a
`ModelAnswer` holding exactly one valid protocol object. Backends do their own single repair
round, because how an error is sent back differs per API (a `tool_result` with `is_error` for
Anthropic, a user message for chat completions).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from worker.protocol import Diagnostic, PlanResult, Resolution, reply_json_schema

Reply = Annotated[Diagnostic | Resolution, Field(discriminator="response_type")]
REPLY_TOOL_NAME = "submit_reply"
REPLY_TOOL_DESCRIPTION = (
    "Submit your next move: a diagnostic (commands and eBPF programs to run) or a resolution "
    "(root cause, plan, confidence, eBPF evidence). Put it under the key 'reply'."
)


class TokenUsage(BaseModel):
    """Tokens one model call (or a sum of calls) used, as the APIs report them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    calls: int = 0

    @property
    def total(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_creation_input_tokens
        )

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            calls=self.calls + other.calls,
        )


class PriorExchange(BaseModel):
    """One earlier step: the prompt we sent and the reply we accepted."""

    prompt: str
    reply: Reply
    call_id: str = Field(default="", description="The API's id for the reply (tool_use id).")


class Evidence(BaseModel):
    """The investigation as data, for planners that reason over structure instead of prose."""

    symptom: str
    hosts: list[str] = Field(default_factory=list)
    step: int
    max_steps: int
    results: list[PlanResult] = Field(default_factory=list)


class ModelRequest(BaseModel):
    system: str
    history: list[PriorExchange] = Field(default_factory=list)
    prompt: str
    final: bool = Field(default=False, description="This step must end with a resolution.")
    evidence: Evidence
    max_output_tokens: int = 4096


class ModelAnswer(BaseModel):
    reply: Reply
    raw: str = Field(default="", description="What the model sent, as text, for the transcript.")
    call_id: str = ""
    usage: TokenUsage = Field(default_factory=TokenUsage)
    repaired: bool = False
    repair_error: str | None = Field(default=None, description="The first reply's error.")
    model: str = ""


class ModelError(RuntimeError):
    """The model could not give a valid reply; `usage` still counts against the budget."""

    def __init__(self, message: str, *, usage: TokenUsage | None = None, raw: str = "") -> None:
        super().__init__(message)
        self.usage = usage or TokenUsage()
        self.raw = raw


class ModelReplyInvalid(ModelError):
    """The reply was still invalid after the repair round."""


class ModelUnavailable(ModelError):
    """The API failed (after the SDK's own retries) or refused the request."""


class ModelBackend(Protocol):
    name: str

    def ask(self, request: ModelRequest) -> ModelAnswer: ...


@runtime_checkable
class TextWriter(Protocol):
    """A backend that can also write free text (handoff summaries); the offline one cannot."""

    name: str

    def write_text(self, system: str, prompt: str, *, max_output_tokens: int = 1500) -> str: ...


def _anyof(node: Any) -> Any:
    """`oneOf` -> `anyOf` and no OpenAPI `discriminator`: accepted by every schema consumer."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "discriminator":
                continue
            out["anyOf" if key == "oneOf" else key] = _anyof(value)
        return out
    if isinstance(node, list):
        return [_anyof(item) for item in node]
    return node


def reply_tool_schema(*, final: bool = False) -> dict[str, Any]:
    """The reply schema wrapped in an object (tool inputs and structured outputs must be objects).

    `$defs` move to the root so every `#/$defs/...` reference still resolves. With `final`, only
    a resolution is allowed (the last step).
    """
    schema = _anyof(copy.deepcopy(reply_json_schema()))
    defs = schema.pop("$defs", {})
    if final:
        schema = {"$ref": "#/$defs/Resolution"}
    return {
        "type": "object",
        "properties": {"reply": schema},
        "required": ["reply"],
        "$defs": defs,
    }


def unwrap_reply(obj: Any) -> Any:
    """The protocol object inside a tool input; models sometimes send it unwrapped."""
    if isinstance(obj, dict) and set(obj) == {"reply"}:
        return obj["reply"]
    return obj
