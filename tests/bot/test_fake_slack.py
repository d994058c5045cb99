"""The fake Slack Web API holds real clients to Slack's published spec (so it can fail a test)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.support.fakes.slack_api import SPEC_PATH, FakeSlackApi, load_required_arguments


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(usergroups={"S0ONCALL": ["U0BOB"]}) as server:
        yield server


def test_the_spec_is_found_beside_the_repository() -> None:
    assert SPEC_PATH.exists(), SPEC_PATH
    required = load_required_arguments()
    assert required["chat.postMessage"] == {"channel"}
    assert required["chat.update"] == {"channel", "ts"}
    assert required["usergroups.users.list"] == {"usergroup"}
    assert required["files.completeUploadExternal"] == {"files"}


def test_a_valid_call_is_answered_and_recorded(fake: FakeSlackApi) -> None:
    client = WebClient(token="xoxb-1", base_url=fake.url)
    reply = client.chat_postMessage(channel="C1", text="hello")
    assert reply["ok"] and reply["ts"]
    assert fake.calls_to("chat.postMessage")[0].args["text"] == "hello"
    assert fake.calls_to("chat.postMessage")[0].token == "xoxb-1"
    assert fake.violations == []


def test_an_unknown_method_is_a_violation(fake: FakeSlackApi) -> None:
    client = WebClient(token="xoxb-1", base_url=fake.url)
    with pytest.raises(SlackApiError):
        client.api_call("chat.postMessagez", json={"channel": "C1"})
    assert fake.violations == ["unknown method chat.postMessagez"]


def test_a_missing_required_argument_is_a_violation(fake: FakeSlackApi) -> None:
    client = WebClient(token="xoxb-1", base_url=fake.url)
    with pytest.raises(SlackApiError):
        client.api_call("chat.update", json={"channel": "C1", "text": "x"})
    assert fake.violations == ["chat.update: missing required ts"]


def test_a_call_without_a_token_is_a_violation(fake: FakeSlackApi) -> None:
    reply = httpx.post(fake.url + "auth.test").json()
    assert reply == {"ok": False, "error": "not_authed"}
    assert fake.violations == ["auth.test: no token"]


def test_message_limits_are_enforced(fake: FakeSlackApi) -> None:
    client = WebClient(token="xoxb-1", base_url=fake.url)
    too_many = [{"type": "divider"}] * 51
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="x", blocks=too_many)
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}]
    with pytest.raises(SlackApiError), pytest.warns(UserWarning, match="`text` argument"):
        client.chat_postMessage(channel="C1", blocks=long_section)
    assert "chat.postMessage: 51 blocks (max 50)" in fake.violations
    assert "chat.postMessage: blocks without a text fallback" in fake.violations
    assert "chat.postMessage: section 0 text over 3000 chars" in fake.violations


def test_files_upload_v2_goes_through_the_two_new_methods(fake: FakeSlackApi) -> None:
    client = WebClient(token="xoxb-1", base_url=fake.url)
    posted = client.chat_postMessage(channel="C1", text="root")
    client.files_upload_v2(
        channel="C1", thread_ts=posted["ts"], content="x" * 5000, filename="o.txt", title="Out"
    )
    assert [c.method for c in fake.calls[-2:]] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    upload = next(iter(fake.uploads.values()))
    assert upload.content == b"x" * 5000
    assert (upload.channel, upload.thread_ts, upload.title) == ("C1", posted["ts"], "Out")
    assert fake.violations == []


def test_usergroup_members_come_from_the_fake(fake: FakeSlackApi) -> None:
    client = WebClient(token="xoxb-1", base_url=fake.url)
    assert client.usergroups_users_list(usergroup="S0ONCALL")["users"] == ["U0BOB"]
