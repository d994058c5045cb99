"""Redact secrets from any text before it leaves the host (DESIGN.md §6).

`redact(text)` replaces private key blocks, credentials in URLs, well-known token formats
(Slack, AWS, GitHub, Anthropic, OpenAI, Google, Stripe, JWTs), bearer/basic authorisation
values, crypt(3) password hashes and `password=`/`secret=`/`token=`-style assignments with
`[REDACTED]`. It is idempotent and leaves ordinary text (hex ids, pids, paths, hashes of files,
UUIDs) alone. Every layer that shows output to a model or a person calls it.
"""

from __future__ import annotations

import re

MARK = "[REDACTED]"
_MAX_PASSES = 4

# A block cut before its END line (output cap) is redacted to the end of the text.
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
    r".*?(?:-----END \1PRIVATE KEY\2-----|\Z)",
    re.DOTALL,
)

# (pattern, replacement) applied in order; replacements never match any pattern again.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # credentials in URLs: scheme://user:password@host
    (
        re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s:/@]*):(?!\[REDACTED\]@)([^\s@/]+)@"),
        r"\1\2:" + MARK + "@",
    ),
    # Slack tokens and webhooks
    (re.compile(r"\bxox[abposrce]-[A-Za-z0-9-]{10,}"), MARK),
    (re.compile(r"\bxapp-\d-[A-Za-z0-9-]{10,}"), MARK),
    (
        re.compile(r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]+"),
        r"\1" + MARK,
    ),
    # AWS access key ids
    (
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b"),
        MARK,
    ),
    # GitHub tokens
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), MARK),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}"), MARK),
    # GitLab personal tokens
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), MARK),
    # Anthropic, then OpenAI-style keys
    (re.compile(r"\bsk-ant-[A-Za-z0-9_-]{16,}"), MARK),
    (re.compile(r"\bsk-(?:proj-|svcacct-|admin-|live-)?[A-Za-z0-9_-]{20,}"), MARK),
    # Stripe, Google API keys, SendGrid, npm, PyPI, HashiCorp Vault
    (re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"), MARK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), MARK),
    (re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"), MARK),
    (re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), MARK),
    (re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}"), MARK),
    (re.compile(r"\bhvs\.[A-Za-z0-9_-]{24,}"), MARK),
    # JSON Web Tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MARK),
    # Authorization headers (any scheme) and bearer tokens anywhere
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?)"
            r"((?:bearer|basic|token|digest|negotiate|apikey)[ \t]+)?"
            r"(?!\[REDACTED\])(?!(?:bearer|basic|token|digest|negotiate|apikey)[ \t])"
            r"([^\s\"',;]+)"
        ),
        r"\1\2" + MARK,
    ),
    (re.compile(r"(?i)\b(bearer[ \t]+)(?!\[REDACTED\])([A-Za-z0-9._~+/=-]{8,})"), r"\1" + MARK),
    # crypt(3) password hashes ($1$, $5$, $6$, yescrypt $y$, bcrypt $2b$)
    (re.compile(r"\$(?:1|2[abxy]|5|6|7|y|gy)\$[./A-Za-z0-9$,=]{8,}"), MARK),
)


# key=value / key: value assignments whose key names a secret; quoted values whole
_ASSIGNMENT = re.compile(
    r"(?i)(\b[A-Za-z0-9_.-]*?"
    r"(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?token|credentials?"
    r"|session[_-]?id|sessionid|cookie)"
    r"[\"']?[ \t]*[:=][ \t]*)"
    r"(?!\[REDACTED\])(?![\"']\[REDACTED\][\"'])"
    r"(\"[^\"\n]+\"|'[^'\n]+'|(?!/[\w./-]*(?:[\s\"',;&]|$))[^\s\"'`,;&<>]+)"
)


def _assignment_mark(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match.group(1)}{quote}{MARK}{quote}"


def redact(text: str) -> str:
    """`text` with every secret we can recognise replaced by `[REDACTED]`."""
    if not text:
        return text
    # A replacement can expose a new word boundary next to another secret, so repeat to a
    # fixed point (which also makes redact idempotent); two passes are nearly always enough.
    for _ in range(_MAX_PASSES):
        before = text
        text = _PRIVATE_KEY_BLOCK.sub(_private_key_mark, text)
        for pattern, replacement in _RULES:
            text = pattern.sub(replacement, text)
        text = _ASSIGNMENT.sub(_assignment_mark, text)
        if text == before:
            break
    return text


def _private_key_mark(match: re.Match[str]) -> str:
    kind = f"{match.group(1)}PRIVATE KEY{match.group(2)}"
    return f"-----BEGIN {kind}-----{MARK}-----END {kind}-----"
