"""A fake Slack: a real HTTP server on 127.0.0.1 that plays Slack's Web API, and Slack's signer.

`FakeSlackApi` answers the Web API methods the bot uses, checking every call against Slack's
published OpenAPI spec (`shared/specs/slack/slack_web_openapi_v2.json`): the method must exist and
its required arguments must be present. The spec models the token as a `token` parameter; real
clients send `Authorization: Bearer`, so either counts. Three methods newer than the 2021 spec
(`files.getUploadURLExternal`, `files.completeUploadExternal`, `apps.connections.open`) are
checked by hand. Slack's documented message limits (50 blocks, 3,000 characters in a section's
text, a `text` fallback next to `blocks`) are checked too. Anything wrong goes to `violations`
and is answered as Slack would (`ok: false`).

It records calls, keeps each channel's messages as chat.postMessage/chat.update leave them, takes
file uploads at the URL it hands out, records what is posted to `response_url`s
(`/commands/<n>`), answers `not_in_channel` for channels the bot was not invited to
(`not_member`), and can answer the next N calls of a method with 429 and a `Retry-After`.

`sign_request` and `SlackRequests` send requests to the bot signed exactly as Slack signs them.
`FakeSocketMode` is Slack's end of a Socket Mode WebSocket (RFC 6455 framing, a `hello`, then
envelopes whose acks it collects); apps.connections.open hands out its URL.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.paths import REPO

SHARED = REPO.parent / "shared"
SPEC_PATH = SHARED / "specs" / "slack" / "slack_web_openapi_v2.json"

# Methods newer than the 2021 spec: required arguments checked by hand.
HAND_CHECKED: dict[str, set[str]] = {
    "files.getUploadURLExternal": {"filename", "length"},
    "files.completeUploadExternal": {"files"},
    "apps.connections.open": set(),
}
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}


def load_required_arguments(spec_path: Path = SPEC_PATH) -> dict[str, set[str]]:
    """Method name -> required argument names (besides the token), from the OpenAPI spec."""
    spec = json.loads(spec_path.read_text())
    out: dict[str, set[str]] = {}
    for path, operations in spec["paths"].items():
        required: set[str] = set()
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("required") and parameter["name"] != "token":
                    required.add(parameter["name"])
        out[path.lstrip("/")] = required
    out.update(HAND_CHECKED)
    return out


@dataclass
class RecordedCall:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    status: int = 200


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    user: str
    updates: int = 0


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    content: bytes = b""
    title: str = ""
    channel: str | None = None
    thread_ts: str | None = None


@dataclass
class _RateLimit:
    remaining: int
    retry_after: int


def _decode_json_fields(args: dict[str, Any]) -> dict[str, Any]:
    for key in ("blocks", "attachments", "files"):
        value = args.get(key)
        if isinstance(value, str) and value.strip().startswith("["):
            with contextlib.suppress(json.JSONDecodeError):
                args[key] = json.loads(value)
    return args


def block_violations(method: str, args: dict[str, Any]) -> list[str]:
    """Slack's documented message limits, as the real API enforces (or warns about) them."""
    problems: list[str] = []
    blocks = args.get("blocks")
    if blocks is None:
        return problems
    if not isinstance(blocks, list):
        return [f"{method}: blocks is not a JSON array"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{method}: {len(blocks)} blocks (max {MAX_BLOCKS})")
    if not args.get("text"):
        problems.append(f"{method}: blocks without a text fallback")
    for index, block in enumerate(blocks):
        kind = block.get("type")
        text = block.get("text")
        if kind == "section":
            if isinstance(text, dict) and len(text.get("text", "")) > MAX_SECTION_TEXT:
                problems.append(f"{method}: section {index} text over {MAX_SECTION_TEXT} chars")
            for fld in block.get("fields") or []:
                if len(fld.get("text", "")) > 2000:
                    problems.append(f"{method}: section {index} field over 2000 chars")
            if not text and not block.get("fields"):
                problems.append(f"{method}: section {index} has neither text nor fields")
        if (
            kind == "header"
            and isinstance(text, dict)
            and len(text.get("text", "")) > MAX_HEADER_TEXT
        ):
            problems.append(f"{method}: header {index} over {MAX_HEADER_TEXT} chars")
        if kind == "actions" and len(block.get("elements") or []) > 25:
            problems.append(f"{method}: actions {index} has more than 25 elements")
        if kind == "context" and len(block.get("elements") or []) > 10:
            problems.append(f"{method}: context {index} has more than 10 elements")
    return problems


class FakeSlackApi:
    """Slack's Web API on a free port of 127.0.0.1; `url` is what SLACK_API_URL should be."""

    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T0001",
        channels: dict[str, str] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        spec_path: Path = SPEC_PATH,
        socket_mode: FakeSocketMode | None = None,
        not_member: set[str] | None = None,
        bind: str = "127.0.0.1",
    ) -> None:
        """`bind`: the address to listen on (tests/deploy: 0.0.0.0, so containers reach it)."""
        self.bind = bind
        self.socket_mode = socket_mode
        self.not_member: set[str] = set(not_member or ())
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.channels: dict[str, str] = dict(channels or {})
        self.usergroups: dict[str, list[str]] = dict(usergroups or {})
        self.required = load_required_arguments(spec_path)
        self.calls: list[RecordedCall] = []
        self.violations: list[str] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.uploads: dict[str, Upload] = {}
        self._rate_limits: dict[str, _RateLimit] = {}
        self._lock = threading.Condition()
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeSlackApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer((self.bind, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base}/api/"

    # -- test controls -----------------------------------------------------------------------

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429 and `Retry-After`."""
        with self._lock:
            self._rate_limits[method] = _RateLimit(remaining=times, retry_after=retry_after)

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[RecordedCall]:
        with self._lock:
            return [
                c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)
            ]

    def channel_calls(self, channel: str, method: str | None = None) -> list[RecordedCall]:
        """Successful calls about `channel` (its `channel` or `channel_id` argument)."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.status == 200
                and channel in (c.args.get("channel"), c.args.get("channel_id"))
                and (method is None or c.method == method)
            ]

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The replies in a thread (root excluded), in order of posting."""
        with self._lock:
            found = [
                m
                for (ch, _), m in self.messages.items()
                if ch == channel and m.thread_ts == thread_ts and m.ts != thread_ts
            ]
        return sorted(found, key=lambda m: float(m.ts))

    def channel_roots(self, channel: str) -> list[Message]:
        with self._lock:
            found = [
                m for (ch, _), m in self.messages.items() if ch == channel and m.thread_ts is None
            ]
        return sorted(found, key=lambda m: float(m.ts))

    def wait_for(
        self, predicate: Callable[[], Any], *, timeout: float = 60.0, what: str = "condition"
    ) -> Any:
        """Wait until `predicate()` is truthy (re-checked on every call) and return its value."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                self._lock.wait(min(left, 0.1))

    # -- request handling --------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlparse(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if parsed.path.startswith("/upload/"):
            self._take_upload(request, parsed.path.removeprefix("/upload/"), body)
            return
        if parsed.path.startswith(("/commands/", "/actions/")):  # response_url webhooks
            with self._lock:
                self.responses.append((parsed.path, json.loads(body or b"{}")))
                self._lock.notify_all()
            request.send_response(200)
            request.send_header("Content-Length", "2")
            request.end_headers()
            request.wfile.write(b"ok")
            return
        if not parsed.path.startswith("/api/"):
            self._send(request, 404, {"ok": False, "error": "not_found"})
            return
        method = parsed.path.removeprefix("/api/")
        args: dict[str, Any] = {
            k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()
        }
        content_type = request.headers.get("Content-Type", "")
        if body and content_type.startswith("application/json"):
            args.update(json.loads(body))
        elif body:
            args.update(
                {
                    k: v[-1]
                    for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()
                }
            )
        _decode_json_fields(args)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        token = token or args.pop("token", None)

        with self._lock:
            limit = self._rate_limits.get(method)
            if limit is not None and limit.remaining > 0:
                limit.remaining -= 1
                self.calls.append(RecordedCall(method, args, token, time.time(), status=429))
                self._lock.notify_all()
                self._send(
                    request,
                    429,
                    {"ok": False, "error": "ratelimited"},
                    headers={"Retry-After": str(limit.retry_after)},
                )
                return
        status, payload = self._answer(method, args, token)
        with self._lock:
            self.calls.append(RecordedCall(method, args, token, time.time(), status=status))
            self._lock.notify_all()
        self._send(request, status, payload)

    def _violation(self, message: str) -> None:
        with self._lock:
            self.violations.append(message)

    def _answer(self, method: str, args: dict[str, Any], token: str | None) -> tuple[int, Any]:
        if method not in self.required:
            self._violation(f"unknown method {method}")
            return 200, {"ok": False, "error": "unknown_method"}
        if not token:
            self._violation(f"{method}: no token")
            return 200, {"ok": False, "error": "not_authed"}
        missing = sorted(name for name in self.required[method] if args.get(name) in (None, ""))
        if missing:
            self._violation(f"{method}: missing required {', '.join(missing)}")
            return 200, {"ok": False, "error": "invalid_arguments", "missing": missing}
        if method in MESSAGE_METHODS and str(args.get("channel")) in self.not_member:
            return 200, {"ok": False, "error": "not_in_channel"}
        if method in MESSAGE_METHODS:
            problems = block_violations(method, args)
            if problems:
                for problem in problems:
                    self._violation(problem)
                return 200, {"ok": False, "error": "invalid_blocks"}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": True}
        result: tuple[int, Any] = handler(args, token)
        return result

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- methods -----------------------------------------------------------------------------

    def _m_auth_test(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        return 200, {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "bpfsleuth",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
        }

    def _m_apps_connections_open(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        if not token.startswith("xapp-"):
            return 200, {"ok": False, "error": "invalid_auth"}
        url = self.socket_mode.url if self.socket_mode else "ws://127.0.0.1:9/link"
        return 200, {"ok": True, "url": url}

    def _m_chat_postMessage(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        channel = str(args["channel"])
        ts = self._next_ts()
        message = Message(
            channel=channel,
            ts=ts,
            text=str(args.get("text") or ""),
            blocks=list(args.get("blocks") or []),
            thread_ts=args.get("thread_ts") or None,
            user=self.bot_user_id,
        )
        with self._lock:
            self.messages[(channel, ts)] = message
        return 200, {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"type": "message", "text": message.text, "ts": ts, "bot_id": self.bot_id},
        }

    def _m_chat_update(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        key = (str(args["channel"]), str(args["ts"]))
        with self._lock:
            message = self.messages.get(key)
            if message is None:
                return 200, {"ok": False, "error": "message_not_found"}
            message.text = str(args.get("text") or message.text)
            if "blocks" in args:
                message.blocks = list(args.get("blocks") or [])
            message.updates += 1
        return 200, {"ok": True, "channel": key[0], "ts": key[1], "text": message.text}

    def _m_chat_postEphemeral(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        with self._lock:
            self.ephemerals.append(dict(args))
        return 200, {"ok": True, "message_ts": self._next_ts()}

    def _m_conversations_info(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        channel = str(args["channel"])
        name = self.channels.get(channel)
        if name is None:
            return 200, {"ok": False, "error": "channel_not_found"}
        return 200, {"ok": True, "channel": {"id": channel, "name": name, "is_channel": True}}

    def _m_usergroups_users_list(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        group = str(args["usergroup"])
        if group not in self.usergroups:
            return 200, {"ok": False, "error": "no_such_subteam"}
        return 200, {"ok": True, "users": list(self.usergroups[group])}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        file_id = f"F{next(self._files):08d}"
        upload = Upload(file_id=file_id, filename=str(args["filename"]), length=int(args["length"]))
        with self._lock:
            self.uploads[file_id] = upload
        return 200, {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any], token: str) -> tuple[int, Any]:
        files = args["files"]
        if not isinstance(files, list) or not files:
            self._violation("files.completeUploadExternal: files is not a non-empty JSON array")
            return 200, {"ok": False, "error": "invalid_arguments"}
        out = []
        with self._lock:
            for item in files:
                upload = self.uploads.get(str(item.get("id")))
                if upload is None or not upload.content:
                    self.violations.append(
                        f"files.completeUploadExternal: {item.get('id')} was never uploaded"
                    )
                    return 200, {"ok": False, "error": "file_not_found"}
                upload.title = str(item.get("title") or upload.filename)
                upload.channel = args.get("channel_id") or None
                upload.thread_ts = args.get("thread_ts") or None
                out.append({"id": upload.file_id, "title": upload.title, "name": upload.filename})
        return 200, {"ok": True, "files": out}

    def _take_upload(self, request: BaseHTTPRequestHandler, file_id: str, body: bytes) -> None:
        with self._lock:
            upload = self.uploads.get(file_id)
            if upload is None:
                self.violations.append(f"upload to unknown file {file_id}")
            else:
                upload.content = body
                if len(body) != upload.length:
                    self.violations.append(
                        f"upload {file_id}: {len(body)} bytes, announced {upload.length}"
                    )
            self._lock.notify_all()
        request.send_response(200 if upload else 404)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Content-Length", "2")
        request.end_headers()
        request.wfile.write(b"OK")

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(data)


# -- requests from Slack to the bot, signed as Slack signs them ------------------------------


def sign_request(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Sent:
    status: int
    body: str
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class SlackRequests:
    """Slack's side of HTTP mode: slash commands, events and interactions, signed.

    Requests go over HTTP to `bot_url`, or, when `send` is given, to it instead (body and
    headers in, status and body out): tests/support/bolt.py hands them to a Bolt app in the
    test process that way."""

    bot_url: str
    signing_secret: str
    team_id: str = "T0001"
    response_base: str = "http://127.0.0.1:9"
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    send: Callable[[bytes, dict[str, str]], tuple[int, str]] | None = None

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
    ) -> Sent:
        headers = {
            "Content-Type": content_type,
            **sign_request(self.signing_secret, body, timestamp),
        }
        if signature is not None:
            headers["X-Slack-Signature"] = signature
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        started = time.perf_counter()
        if self.send is not None:
            status, text = self.send(body, headers)
            return Sent(status, text, time.perf_counter() - started)
        response = self.client.post(self.bot_url, content=body, headers=headers)
        return Sent(response.status_code, response.text, time.perf_counter() - started)

    def slash_command_body(
        self,
        text: str,
        *,
        channel_id: str = "C0INC",
        channel_name: str = "inc-42",
        user_id: str = "U0ALICE",
        command: str = "/diagnose",
    ) -> bytes:
        n = next(self._ids)
        return urllib.parse.urlencode(
            {
                "token": "legacy-verification-token",
                "team_id": self.team_id,
                "team_domain": "fake",
                "channel_id": channel_id,
                "channel_name": channel_name,
                "user_id": user_id,
                "user_name": user_id.lower(),
                "command": command,
                "text": text,
                "api_app_id": "A0BPF",
                "is_enterprise_install": "false",
                "response_url": f"{self.response_base}/commands/{n}",
                "trigger_id": f"trigger.{n}",
            }
        ).encode()

    def slash_command(self, text: str, **kwargs: Any) -> Sent:
        timestamp = kwargs.pop("timestamp", None)
        signature = kwargs.pop("signature", None)
        return self.post(
            self.slash_command_body(text, **kwargs),
            "application/x-www-form-urlencoded",
            timestamp=timestamp,
            signature=signature,
        )

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        timestamp: int | None = None,
    ) -> Sent:
        wrapper = {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": "A0BPF",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": self.team_id, "user_id": "UBOT", "is_bot": True, "enterprise_id": None}
            ],
        }
        body = json.dumps(wrapper).encode()
        return self.post(body, "application/json", retry_num=retry_num, timestamp=timestamp)

    def block_action(
        self,
        *,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str = "C0INC",
        message_ts: str = "",
        thread_ts: str | None = None,
    ) -> Sent:
        n = next(self._ids)
        message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": ""}
        if thread_ts:
            message["thread_ts"] = thread_ts
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "fake"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": self.team_id},
            "api_app_id": "A0BPF",
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": False,
            },
            "trigger_id": f"trigger.{n}",
            "channel": {"id": channel_id, "name": "inc-42"},
            "message": message,
            "response_url": f"{self.response_base}/actions/{n}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": f"b{n}",
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self.post(body, "application/x-www-form-urlencoded")


# -- Socket Mode: Slack's side of the WebSocket -----------------------------------------------

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    """A server frame (FIN set, unmasked)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 65536:
        head += bytes([126]) + size.to_bytes(2, "big")
    else:
        head += bytes([127]) + size.to_bytes(8, "big")
    return head + payload


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("socket closed")
        data += chunk
    return data


def _ws_read(sock: socket.socket) -> tuple[int, bytes]:
    """One client frame (masked, as RFC 6455 requires of clients): opcode and payload."""
    first, second = _recv_exact(sock, 2)
    opcode = first & 0x0F
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(_recv_exact(sock, 2), "big")
    elif size == 127:
        size = int.from_bytes(_recv_exact(sock, 8), "big")
    mask = _recv_exact(sock, 4) if second & 0x80 else b"\0\0\0\0"
    data = _recv_exact(sock, size)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class FakeSocketMode:
    """The WebSocket end of Socket Mode: a hello, envelopes to the app, its acks back.

    `FakeSlackApi(socket_mode=FakeSocketMode())` hands its URL out from apps.connections.open.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._lock = threading.Condition()
        self._connection: socket.socket | None = None
        self._send_lock = threading.Lock()
        self.acks: dict[str, dict[str, Any]] = {}
        self.handshakes = 0
        self._ids = itertools.count(1)
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        port = self._listener.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket=fake"

    def stop(self) -> None:
        self._stopped = True
        with contextlib.suppress(OSError):
            self._listener.close()
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = sock.recv(4096)
            if not chunk:
                return
            request += chunk
        headers = {}
        for line in request.decode().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(
            hashlib.sha1((headers["sec-websocket-key"] + _WS_GUID).encode()).digest()
        ).decode()
        sock.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0BPF"}}
        sock.sendall(_ws_frame(0x1, json.dumps(hello).encode()))
        with self._lock:
            self._connection = sock
            self.handshakes += 1
            self._lock.notify_all()
        try:
            while True:
                opcode, data = _ws_read(sock)
                if opcode == 0x9:  # ping -> pong with the same payload
                    with self._send_lock:
                        sock.sendall(_ws_frame(0xA, data))
                elif opcode == 0x1:
                    message = json.loads(data)
                    with self._lock:
                        self.acks[str(message.get("envelope_id"))] = message
                        self._lock.notify_all()
                elif opcode == 0x8:
                    return
        except (ConnectionError, OSError):
            return

    def wait_connected(self, timeout: float = 30.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._connection is not None, timeout):
                raise AssertionError("the app never opened the Socket Mode connection")

    def send(self, kind: str, payload: dict[str, Any], *, timeout: float = 10.0) -> Sent:
        """Deliver an envelope (`slash_commands`, `events_api`, `interactive`); wait for the ack."""
        self.wait_connected()
        envelope_id = f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        assert self._connection is not None
        started = time.perf_counter()
        with self._send_lock:
            self._connection.sendall(_ws_frame(0x1, json.dumps(envelope).encode()))
        with self._lock:
            if not self._lock.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(f"no ack for {kind} envelope {envelope_id}")
            ack = self.acks[envelope_id]
        elapsed = time.perf_counter() - started
        return Sent(200, json.dumps(ack.get("payload") or {}), elapsed)
