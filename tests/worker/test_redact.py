"""Secret redaction: a corpus of what must go and what must stay, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from worker.host.redact import MARK, redact

# (text, the secret that must not survive)
MUST_REDACT = [
    ("postgres://app:hunter2@db-1:5432/orders", "hunter2"),
    ("redis://:s3cr3tpass@localhost:6379/0", "s3cr3tpass"),
    ("amqp://guest:Gu3st!pw@rabbit:5672//", "Gu3st!pw"),
    ("https://deploy:tok3n-value@git.example.com/repo.git", "tok3n-value"),
    ("Authorization: Bearer eyJraWQiOi.abc.def-123456789", "eyJraWQiOi.abc.def-123456789"),
    ("authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("curl -H 'Authorization: token 0123456789abcdef0123'", "0123456789abcdef0123"),
    ("X-Upstream: bearer AbCdEf0123456789xyz", "AbCdEf0123456789xyz"),
    ("SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp", "xoxb-1234"),
    ("token xoxp-1234567890-1234567890-abcdefabcdef", "xoxp-1234567890"),
    ("app token: xapp-1-A0123456789-1234567890123-abcdef0123456789", "xapp-1-A0123"),
    ("https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX", "XXXXXXXX"),
    ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("found ASIAY34FZKBOKMUTVV7A in env", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("GITHUB_TOKEN ghp_" + "A1b2C3d4E5" * 4, "ghp_A1b2"),
    ("gho_" + "z" * 36, "gho_zzzz"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF", "github_pat_11"),
    ("ANTHROPIC_API_KEY=sk-ant-api03-" + "x1" * 20, "sk-ant-api03"),
    ("key sk-ant-admin01-" + "Q" * 40, "sk-ant-admin01"),
    ("OPENAI_API_KEY=sk-proj-" + "Ab3" * 15, "sk-proj-Ab3"),
    ("using sk-" + "a1B2" * 12 + " for requests", "sk-a1B2"),
    ("glpat-abcdefghij0123456789", "glpat-abcdefghij"),
    ("stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39"),
    ("maps key AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-1234567890"),
    ("vault hvs.CAESIJ0123456789abcdefghijklmnop", "hvs.CAESIJ0123"),
    (
        "cookie: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    (
        "jwt=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrOHMifQ.c2lnbmF0dXJlLWJ5dGVz",
        "c2lnbmF0dXJlLWJ5dGVz",
    ),
    ("DB_PASSWORD=hunter2", "hunter2"),
    ("export PGPASSWORD='p@ss w0rd'", "p@ss w0rd"),
    ('{"password": "correct-horse"}', "correct-horse"),
    ("password: Tr0ub4dor&3", "Tr0ub4dor"),
    ("client_secret=abc123def456", "abc123def456"),
    ("api_key=abcd1234&user=bob", "abcd1234"),
    ("GET /cb?access_token=ya29.a0AfH6SMB&state=1", "ya29.a0AfH6SMB"),
    ('secret="quoted secret value"', "quoted secret value"),
    ("mysql --password=S3cure! -h db", "S3cure!"),
    ("session_id: 5f2b9c0e7d", "5f2b9c0e7d"),
    (
        "root:$6$rounds=5000$saltsalt$JQmO5Q1j3kU5fIuYwVw0aTQw6o9vQ6Rz2N6mA1:19000:0:99999:7:::",
        "JQmO5Q1j3kU5fIuYwVw0aTQw6o9vQ6Rz2N6mA1",
    ),
    ("bob:$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd:1:", "ABCDEFGHIJKLMNOP"),
    ("admin:$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", "abcdefghijklmnopq"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1c7vN0\nxyz\n"
        "-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA1c7vN0",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
    ),
    (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B (output cut)",
        "MIIEvQIBADANBgkqhkiG9w0B",
    ),
    (
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA\n-----END EC PRIVATE KEY-----",
        "MHcCAQEEIIrYSSNQFaA",
    ),
    (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0123\n-----END PGP PRIVATE KEY BLOCK-----",
        "lQOYBF0123",
    ),
]

# Ordinary diagnostic output that must come back unchanged.
MUST_KEEP = [
    "  PID TTY          TIME CMD\n 4242 ?        00:00:01 postgres",
    'LISTEN 0 244 127.0.0.1:5432 0.0.0.0:* users:(("postgres",pid=812,fd=5))',
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "d41d8cd98f00b204e9800998ecf8427e  /etc/hosts",
    "550e8400-e29b-41d4-a716-446655440000",
    "container 4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b running",
    "/proc/4242/status /var/lib/postgresql/16/main /etc/ssl/certs/ca-certificates.crt",
    "token_file=/var/run/secrets/kubernetes.io/serviceaccount/token",
    "password_file=/etc/app/db.pass",
    "max_tokens=4096 tokens_used=1200",
    "ssh: PasswordAuthentication no",
    "Password:",
    "token expired for user bob",
    "Nov 21 23:11:02 web-1 kernel: Out of memory: Killed process 4242 (java)",
    "MemTotal:        8039212 kB\nMemFree:          312004 kB",
    "inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0",
    "link/ether 02:42:ac:11:00:02 brd ff:ff:ff:ff:ff:ff",
    "https://example.com:443/health returned 200",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9wZW5zc2gta2V5LXY= root@web-1",
    "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n"
    "-----END CERTIFICATE-----",
    "disk-usage-report-for-the-month-of-november",
    "task-scheduler-worker-pool-size=8",
    "ask-questions-later: 3",
    "price is $5$ per unit",
    "author=alice keyring=/etc/apt/trusted.gpg",
    "",
]


@pytest.mark.parametrize(("text", "secret"), MUST_REDACT)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out, out
    assert MARK in out


@pytest.mark.parametrize("text", MUST_KEEP)
def test_ordinary_output_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_a_key_block_cut_by_the_output_cap_is_redacted_to_the_end() -> None:
    text = "ok\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r\nZXktdjEAAAA\n…[output cut]"
    out = redact(text)
    assert out.startswith("ok\n-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]")
    assert "b3BlbnNzaC1r" not in out and "ZXktdjEAAAA" not in out


def test_url_keeps_its_user_and_host_for_context() -> None:
    assert redact("postgres://app:hunter2@db-1:5432/x") == "postgres://app:[REDACTED]@db-1:5432/x"


def test_private_key_block_keeps_its_type_and_nothing_else() -> None:
    text = (
        "before\n-----BEGIN RSA PRIVATE KEY-----\nAAAA\nBBBB\n-----END RSA PRIVATE KEY-----\nafter"
    )
    assert redact(text) == (
        "before\n-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----\nafter"
    )


def test_secrets_inside_a_long_mixed_output_all_go() -> None:
    unterminated = [t for t, _ in MUST_REDACT if "BEGIN" in t and "END" not in t]
    terminated = [t for t, _ in MUST_REDACT if t not in unterminated]
    # a key block cut before its END line swallows the rest of the text, so it goes last
    out = redact("\n".join(terminated + MUST_KEEP + unterminated))
    for _, secret in MUST_REDACT:
        assert secret not in out
    for kept in MUST_KEEP:
        if kept and "\n" not in kept:
            assert kept in out


@pytest.mark.parametrize("text", [t for t, _ in MUST_REDACT] + MUST_KEEP)
def test_redaction_is_idempotent_on_the_corpus(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


_FRAGMENTS = st.sampled_from(
    [t for t, _ in MUST_REDACT] + MUST_KEEP + [" ", "\n", "=", ":", "'", '"', "@", "/", MARK]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=20)), max_size=8).map("".join))
def test_redaction_is_idempotent_on_any_mix(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(
        alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
        min_size=8,
        max_size=40,
    ),
    key=st.sampled_from(["password", "DB_PASSWORD", "api_key", "secret", "auth_token", "apikey"]),
    sep=st.sampled_from(["=", ": ", " = ", "="]),
    before=st.text(alphabet=" \n\t", max_size=2),
)
def test_any_secret_assignment_loses_its_value(
    secret: str, key: str, sep: str, before: str
) -> None:
    # words that mean "no secret here" (`password: none`, `auth: required`) are kept on purpose
    assume(secret.lower() not in {"required", "optional", "disabled", "enabled", "compat"})
    out = redact(f"{before}{key}{sep}{secret} trailing")
    assert out == f"{before}{key}{sep}{MARK} trailing"
