"""Redact secrets from any text before it leaves the host (docs/architecture.md §5).

`redact(text)` replaces what it recognises with `[REDACTED]`: private key blocks (also cut off
before their END line, or with their BEGIN line cut off), PuTTY keys, credentials in URLs (also
passwords holding `/` or `@`), well-known token formats, authorisation headers, password hashes
(crypt(3), htpasswd, LDAP `{SSHA}`, MySQL, Django, shadow lines), `.pgpass` and `.netrc` lines,
passwords on command lines (`curl -u`, `mysql -p`, `sshpass -p`, `redis-cli -a`), docker `"auth"`,
kubeconfig keys, Azure keys and SAS signatures, signed AWS URLs, environment variables (also in
NUL-separated `/proc/*/environ` dumps) and `key=value` / `key: value` assignments whose key names
a secret. Names, hosts and keys stay, so the text keeps its meaning.

It is idempotent and leaves ordinary text alone (hex ids, sha256 sums, UUIDs, pids, paths,
`password_hash_algorithm=bcrypt`). It is a last net, not a control: the policy decides what is
read; this only catches known formats in what was read (docs/secrets.md).

Speed matters (it runs on every output): each rule carries needles, and runs only when one of
them occurs in the (ASCII lower-cased) text; rules whose case does not matter run on that
lower-cased copy, which has the same length, so spans map back to the original text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

MARK = "[REDACTED]"
_MAX_PASSES = 4
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")

# The mark as it appears in the text a pattern scans (original or lower-cased).
_M = r"\[REDACTED\]"
_m = r"\[redacted\]"

Guard = Callable[[str, re.Match[str]], bool]


@dataclass(frozen=True)
class _Rule:
    """A pattern whose group `secret` is replaced by the mark; the rest of the match stays.

    `lower`: the pattern scans the lower-cased text. `needles`: lower-case strings, one of
    which must occur for the rule to run. `guard(text, match)`: the match counts only when it
    returns True (checks a regex would make slow, like the character before the match).
    `mark`: the replacement for the secret (default: the mark, inside the value's quotes).
    """

    pattern: re.Pattern[str]
    needles: tuple[str, ...]
    lower: bool = False
    guard: Guard | None = None
    mark: Callable[[str], str] | None = None
    line_start: bool = False  # the pattern starts with `\n`; a line start is one too
    cut: Callable[[str, re.Match[str]], int] | None = None  # where the secret really ends


def _quoted_mark(value: str) -> str:
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return f"{value[0]}{MARK}{value[0]}"
    return MARK


def _word_start(text: str, match: re.Match[str]) -> bool:
    """The match does not continue a word (what `\\b` would say, without its cost)."""
    start = match.start()
    return start == 0 or text[start - 1] not in _WORD


def _option_start(text: str, match: re.Match[str]) -> bool:
    """The match starts an argv element (after whitespace, a NUL or a quote)."""
    start = match.start()
    return start == 0 or text[start - 1] in " \t\n\x00'\""


def _rule(
    pattern: str,
    *needles: str,
    lower: bool = False,
    guard: Guard | None = None,
    mark: Callable[[str], str] | None = None,
    line_start: bool = False,
    cut: Callable[[str, re.Match[str]], int] | None = None,
) -> _Rule:
    return _Rule(re.compile(pattern), needles, lower, guard, mark, line_start, cut)


# -- key blocks ---------------------------------------------------------------------------------

_KEY_KIND = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?"

# A block cut before its END line (output cap) is redacted to the end of the text.
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
    r"(?P<secret>.*?)(?:-----END \1PRIVATE KEY\2-----|\Z)",
    re.DOTALL,
)


def _block_mark(match: re.Match[str]) -> str:
    kind = f"{match.group(1)}PRIVATE KEY{match.group(2)}"
    return f"-----BEGIN {kind}-----{MARK}-----END {kind}-----"


_END_LINE = re.compile(rf"-----END {_KEY_KIND}-----")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+")


def _headless_key_bodies(text: str) -> str:
    """A key body whose BEGIN line was cut off: the base64 lines right above an END line.

    Walks back from each END line, line by line (linear, whatever the text): every line of
    the body is base64 of at least 16 characters, except the last one (a body's short tail) and
    the first line of the text (cut mid-line by whatever cut the output).
    """
    pieces: list[str] = []
    last = 0
    for match in _END_LINE.finditer(text):
        end = match.start()
        if end == 0 or text[end - 1] != "\n" or end <= last:
            continue
        start = end
        while start > last and text[start - 1] == "\n":
            begin = text.rfind("\n", last, start - 1) + 1 or last
            line = text[begin : start - 1].rstrip("\r")
            if not line or _BASE64.fullmatch(line) is None:
                break
            if len(line) < 16 and start != end and begin != 0:
                break
            start = begin
        if start < end:
            pieces += [text[last:start], MARK, "\n"]
            last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _encoded_private_key(text: str, match: re.Match[str]) -> bool:
    """A base64 run that decodes to `-----BEGIN ... PRIVATE KEY-----` (Kubernetes secrets'
    `tls.key`, Helm values, CI variables)."""
    head = match.group()[:96]
    try:
        decoded = base64.b64decode(head[: len(head) // 4 * 4], validate=True)
    except (binascii.Error, ValueError):
        return False
    return b"PRIVATE KEY-----" in decoded


_KEY_RULES: tuple[_Rule, ...] = (
    # a PEM private key, base64-encoded once more ("LS0tLS1CRUdJTi" is "-----BEGIN ")
    _rule(
        r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{40,}+={0,2}",
        "ls0tls1crudjti",
        guard=_encoded_private_key,
    ),
    # PuTTY keys: the private lines and their MAC
    _rule(
        r"Private-Lines:[ \t]*\d+[ \t]*\r?\n(?P<secret>(?:[A-Za-z0-9+/=]+(?:\r?\n|\Z))+)",
        "private-lines",
        mark=lambda value: MARK + ("\n" if value.endswith("\n") else ""),
    ),
    _rule(r"Private-MAC:[ \t]*(?P<secret>[0-9a-fA-F]{16,})", "private-mac"),
    _rule(r"Private-Hash:[ \t]*(?P<secret>[0-9a-fA-F]{16,})", "private-hash"),
)

# -- tokens with a recognisable shape: (pattern, needle); each pattern starts with a literal so
# the scan is fast, the whole match is the secret. A pattern that must find something after a
# run (JWT, SendGrid) refuses a start inside a run at once (the lookbehind after the literal),
# or `eyJeyJeyJ...` would rescan the run from every start. -------------------------------------

_TOKENS: tuple[tuple[str, str], ...] = (
    (r"xox[abposrce]-[A-Za-z0-9-]{10,}", "xox"),  # Slack
    (r"xoxe\.xox[a-z]-[A-Za-z0-9-]{10,}", "xoxe."),  # Slack refresh tokens
    (r"xapp-\d-[A-Za-z0-9-]{10,}", "xapp-"),
    (r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}(?![A-Z0-9])", "a"),  # AWS
    (r"gh[pousr]_[A-Za-z0-9]{36,}", "gh"),  # GitHub
    (r"github_pat_[A-Za-z0-9_]{22,}", "github_pat_"),
    (r"gl(?:pat|rt|dt|ptt|cbt|oas|ft|imt|soat|ffct|agent)-[A-Za-z0-9_-]{20,}", "gl"),  # GitLab
    (r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}", "glsa_"),  # Grafana service accounts
    (r"GR1348941[A-Za-z0-9_-]{20,}", "gr1348941"),  # GitLab runner registration
    (r"sk-ant-[A-Za-z0-9_-]{16,}", "sk-ant-"),  # Anthropic
    (r"sk-(?:proj-|svcacct-|admin-|live-)?[A-Za-z0-9_-]{20,}", "sk-"),  # OpenAI-style
    (r"rk_(?:live|test)_[A-Za-z0-9]{16,}", "rk_"),  # Stripe
    (r"sk_(?:live|test)_[A-Za-z0-9]{16,}", "sk_"),
    (r"AIza[0-9A-Za-z_-]{35}", "aiza"),  # Google API keys
    (r"ya29\.[A-Za-z0-9_-]{20,}", "ya29."),  # Google OAuth access tokens
    (r"1//0[A-Za-z0-9_-]{30,}", "1//0"),  # Google OAuth refresh tokens
    (r"SG\.(?<![A-Za-z0-9_.-]SG\.)[A-Za-z0-9_-]{16,}+\.[A-Za-z0-9_-]{16,}", "sg."),  # SendGrid
    (r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", "npm_"),
    (r"pypi-[A-Za-z0-9_-]{50,}", "pypi-"),
    (r"hv[sbr]\.[A-Za-z0-9_-]{24,}", "hv"),  # HashiCorp Vault
    (r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}(?![A-Za-z0-9])", "shp"),  # Shopify
    (r"SK[0-9a-fA-F]{32}(?![A-Za-z0-9])", "sk"),  # Twilio API keys
    (r"do[por]_v1_[a-f0-9]{64}(?![A-Za-z0-9])", "_v1_"),  # DigitalOcean
    (r"dapi[a-f0-9]{32}(?:-\d+)?(?![A-Za-z0-9])", "dapi"),  # Databricks
    (r"hf_[A-Za-z0-9]{30,}", "hf_"),  # Hugging Face
    (r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", "age-secret-key-1"),  # age
    # JSON Web Tokens
    (r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{5,}+\.eyJ[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]*", "eyj"),
)

# -- the rest, in order -------------------------------------------------------------------------

_VALUE_END = r"\s\"'`,;&<>\x00"
# a value that is not a secret: a path, a switch, an nsswitch source, a mask already applied
_NOT_SECRET = (
    rf"(?!{_m}|[\"']{_m}[\"'])"
    r"(?!\*+(?:[\s\"',;]|$))"
    r"(?!(?:true|false|yes|no|none|null|nil|on|off|required|optional|disabled|enabled|files"
    r"|compat|systemd|sss|ldap|nis|winbind)(?:[\s\"',;&\x00]|\)(?:[\s\x00]|$)|$))"
    r"(?!/[\w./-]*+(?:[\s\"',;&\x00]|$))"
)
_VALUE = rf"(?P<secret>\"(?:[^\"\\\n]|\\.)+\"|'[^'\n]++'|[^{_VALUE_END}]+)"
_SEP = r"[\"']?[ \t]*+(?:=>|[:=]:?)[ \t]*+"


def _after_separator_char(chars: str) -> Guard:
    """The keyword is preceded by one of `chars` (`db_pass=` but not `bypass=`)."""

    def guard(text: str, match: re.Match[str]) -> bool:
        start = match.start()
        return start > 0 and text[start - 1] in chars

    return guard


def _after_word(*words: str) -> Guard:
    """The keyword follows one of `words`, perhaps joined by `_` or `-` (`client_key`)."""
    suffixes = tuple(w + j for w in words for j in ("", "_", "-"))

    def guard(text: str, match: re.Match[str]) -> bool:
        return text.endswith(suffixes, max(0, match.start() - 16), match.start())

    return guard


def _not_after(*words: str) -> Guard:
    def guard(text: str, match: re.Match[str]) -> bool:
        return not text.endswith(words, max(0, match.start() - 16), match.start())

    return guard


def _after_char(chars: str) -> Guard:
    def guard(text: str, match: re.Match[str]) -> bool:
        return match.start() > 0 and text[match.start() - 1] in chars

    return guard


_NETRC_BEFORE = re.compile(
    r"(?:(?<![\w-])(?:machine|login|account)[ \t\r\n]+\S+|(?<![\w-])default)[ \t\r\n]+\Z"
)


def _netrc_guard(text: str, match: re.Match[str]) -> bool:
    """`password` follows `machine X`, `login X`, `account X` or `default` (a .netrc line)."""
    start = match.start()
    return _NETRC_BEFORE.search(text, max(0, start - 200), start) is not None


def _keyword(pattern: str, *needles: str, guard: Guard | None = None) -> _Rule:
    return _rule(pattern + _SEP + _NOT_SECRET + _VALUE, *needles, lower=True, guard=guard)


def _field_start(text: str, index: int) -> bool:
    """Whether the name ending at `index` starts a NUL-separated field or an `export`."""
    while index > 0 and text[index - 1] in _WORD:
        index -= 1
    head = text[max(0, index - 11) : index]
    return head[-1:] == "\x00" or head.endswith(("export ", "declare -x "))


def _env_cut(text: str, match: re.Match[str]) -> int:
    """A variable in a NUL-separated dump (`/proc/*/environ`, `env -0`) owns its whole field;
    elsewhere a value ends at whitespace or punctuation (`env`, `ps e`, a command line), so
    `KEY=value more text` keeps `more text`."""
    start, end = match.span("secret")
    if text[start] in "\"'" or _field_start(text, match.start()):
        return end
    stop = start
    while stop < end and text[stop] not in " \t\"'`,;&<>":
        stop += 1
    return stop


def _env_guard(long: bool) -> Guard:
    """An upper-case variable name ending in the keyword: the short keywords (`KEY`, `AUTH`,
    `PWD`, `PASS`) only after `_` (`MYSQL_PWD`, not `OLDPWD` or `PWD`)."""

    def guard(text: str, match: re.Match[str]) -> bool:
        start = match.start()
        before = text[start - 1] if start > 0 else ""
        if long:
            return (
                before == "" or before not in _WORD or before.isupper() or before in "_0123456789"
            )
        return before == "_" and start > 1 and text[start - 2] in _WORD

    return guard


def _url_guard(text: str, match: re.Match[str]) -> bool:
    start = match.start()
    return start > 0 and (text[start - 1] in _WORD or text[start - 1] in "+.-")


def _line_start_key(text: str, match: re.Match[str]) -> bool:
    """The key starts its line (YAML `pass:`), after indentation, a list dash or a quote."""
    index = match.start()
    while index > 0 and text[index - 1] in " \t-\"'":
        index -= 1
    return index == 0 or text[index - 1] == "\n"


def _env_rule(keyword: str, needle: str, *, long: bool) -> _Rule:
    return _rule(
        rf"{keyword}(?:_BASE|_B64)?="
        rf"(?!{_M}|[\"']{_M}[\"'])(?!/[\w./-]*+(?:[\s\x00]|$))"
        r"(?!(?:true|false|yes|no|none|null|on|off|0|1)(?:[\s\x00]|$))"
        r"(?P<secret>\"[^\"\n\x00]*+\"|'[^'\n\x00]*+'|[^\x00\n]+)",
        needle,
        guard=_env_guard(long),
        cut=_env_cut,
    )


def _trim_trailing_space(text: str, match: re.Match[str]) -> int:
    start, end = match.span("secret")
    while end > start and text[end - 1] in " \t":
        end -= 1
    return end


def _conn_rule(keyword: str) -> _Rule:
    return _rule(
        rf"{keyword}[ \t]*+=[ \t]*+(?!{_m})(?!/[\w./-]*+[ \t]*+;)"
        r"(?P<secret>[^;\r\n\x00]{1,512}+)(?=;)",
        keyword,
        lower=True,
        guard=_word_start,
        cut=_trim_trailing_space,
    )


_RULES: tuple[_Rule, ...] = (
    *_KEY_RULES,
    # credentials in URLs: scheme://user:password@host, the password may hold `/` or `@`
    _rule(
        r"://[^\s:/@'\"<>]{0,128}+:"
        rf"(?!{_M}@)(?!\d{{1,5}}(?:[/?#\s'\"<>]|$))"
        r"(?P<secret>[^\s'\"<>]{1,256})@(?=[^\s@/'\"<>]{0,256}+(?:[/?#\s'\"<>]|$))",
        "://",
        guard=_url_guard,
    ),
    *(_rule(pattern, needle, guard=_word_start) for pattern, needle in _TOKENS),
    _rule(
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9/_-]+)",
        "hooks.slack.com",
    ),
    # Authorization headers (any scheme), bearer tokens anywhere
    _rule(
        r"authorization[\"']?[ \t]*+[:=][ \t]*+[\"']?"
        r"(?:(?:bearer|basic|token|digest|negotiate|apikey|aws4-hmac-sha256)[ \t]+)?"
        rf"(?!{_m})(?!(?:bearer|basic|token|digest|negotiate|apikey)[ \t])"
        r"(?P<secret>[^\s\"',;]+)",
        "authorization",
        lower=True,
        guard=_word_start,
    ),
    _rule(
        rf"bearer[ \t]+(?!{_m})(?P<secret>[a-z0-9._~+/=-]{{8,}})",
        "bearer",
        lower=True,
        guard=_word_start,
    ),
    # password hashes: crypt(3) and friends, Django, LDAP, MySQL, DES crypt in shadow/htpasswd
    _rule(
        r"\$(?:1|2[abxy]|5|6|7|y|gy|apr1|md5|sha1|argon2(?:id|i|d)"
        r"|pbkdf2(?:-sha\d+)?|scrypt|bcrypt(?:-sha256)?)\$(?P<secret>[./A-Za-z0-9$,=+-]{8,})",
        "$",
    ),
    _rule(r"\$A\$\d{3}\$(?P<secret>[^\s:]{20,})", "$a$"),
    *(
        _rule(rf"{name}\$(?P<secret>[^\s:\"']{{20,}})", name + "$", guard=_word_start)
        for name in ("pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "scrypt")
    ),
    _rule(
        r"\{(?:s?sha(?:256|384|512)?|s?md5|crypt|pbkdf2(?:-sha\d+)?|argon2|bcrypt)\}"
        rf"(?!{_m})(?P<secret>[a-z0-9+/=.$]{{6,}})",
        "}",
        lower=True,
    ),
    _rule(r"\*(?P<secret>[0-9A-F]{40})(?![0-9A-Za-z])", "*", guard=_word_start),
    _rule(
        r"\n[A-Za-z0-9_.@-]++\$?:(?P<secret>[A-Za-z0-9./]{13})(?=:\d*:\d*:|[ \t]*(?:\r?\n|\Z))",
        ":",
        line_start=True,
    ),
    # .pgpass: host:port:database:user:password
    _rule(
        r"\n[^:\s#]++:(?:\d+|\*):[^:\s]++:[^:\s]++:"
        rf"(?!{_M}(?:\r?\n|\Z))(?P<secret>(?:[^:\n\\]|\\.)+)(?=\r?\n|\Z)",
        ":",
        line_start=True,
    ),
    # .netrc: machine x login y password z (also over several lines)
    _rule(
        rf"password[ \t\r\n]+(?!{_m})(?P<secret>[^\s]+)",
        "password",
        lower=True,
        guard=_netrc_guard,
    ),
    # passwords on command lines (argv joined by spaces, or NUL-separated cmdline)
    *(
        _rule(
            rf"{option}(?:[ \t=\x00]++|(?=[^\s\x00-]))"
            r"(?!\d++:\d++(?:[\s\x00]|$))[^\s\x00:'\"]{0,64}+:"
            rf"(?!{_M})(?P<secret>'[^'\n]*'|\"[^\"\n]*\"|[^\s\x00]+)",
            option.lower(),
            guard=_option_start,
        )
        for option in ("-u", "--user", "-U", "--proxy-user")
    ),
    *(
        _rule(
            rf"{program}[a-z-]*+(?=[\s\x00])[^\n]{{0,300}}?[\s\x00]-p"
            rf"(?!{_M})(?P<secret>'[^'\n]*'|\"[^\"\n]*\"|[^\s\x00]+)",
            program,
            guard=_word_start,
        )
        for program in ("mysql", "mariadb")
    ),
    _rule(
        rf"sshpass[^\n]{{0,300}}?[\s\x00]-p[ \t\x00]*+(?!{_M})(?P<secret>[^\s\x00]+)",
        "sshpass",
        guard=_word_start,
    ),
    _rule(
        r"redis-cli[^\n]{0,300}?[\s\x00](?:-a|--pass)(?:[ \t\x00=]++)"
        rf"(?!{_M})(?P<secret>[^\s\x00]+)",
        "redis-cli",
        guard=_word_start,
    ),
    *(
        _rule(
            rf"{directive}[ \t]+(?!{_m})(?P<secret>\"[^\"\n]*\"|\S+)",
            directive,
            lower=True,
            guard=_line_start_key,
        )
        for directive in ("requirepass", "masterauth")
    ),
    # SQL: IDENTIFIED BY 'x', PASSWORD 'x'
    *(
        _rule(
            rf"{keyword}[ \t]++(?!'{_m}')(?P<secret>'[^'\n]*+')",
            needle,
            lower=True,
            guard=_word_start,
        )
        for keyword, needle in (("identified[ \t]+by", "identified"), ("password", "password"))
    ),
    # docker config.json "auth", Azure SAS signatures
    _rule(rf"\"auth\"[ \t]*+:[ \t]*+(?!\"{_m}\")(?P<secret>\"[^\"\n]++\")", '"auth"', lower=True),
    _rule(rf"sig=(?!{_m})(?P<secret>[^&\s\"'<>]+)", "sig=", lower=True, guard=_after_char("?&;")),
    # connection strings: Password=...; (the value may hold spaces, up to the `;`)
    *(
        _conn_rule(keyword)
        for keyword in ("password", "pwd", "accountkey", "sharedaccesskey", "sharedaccesssignature")
    ),
    # environment variables: NAME_PASS=, NAME_KEY=, ... (whole value in NUL-separated dumps
    # such as `env -0` and /proc/*/environ)
    *(
        _env_rule(keyword, keyword.lower(), long=True)
        for keyword in ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIALS")
    ),
    *(
        _env_rule(keyword, "_" + keyword.lower(), long=False)
        for keyword in ("PASS", "PWD", "AUTH", "KEY", "APIKEY", "CREDENTIAL")
    ),
)

# key=value / key: value assignments whose key names a secret (keys may continue before the
# keyword: `db_password`, `aws_secret_access_key`); one literal-led pattern per keyword is far
# faster than one alternation
_ASSIGNMENTS: tuple[_Rule, ...] = (
    _keyword(r"pass(?:word|wd|phrase)", "pass"),
    _keyword(r"pass", "pass", guard=_after_separator_char("_.-")),
    _keyword(r"pwd", "pwd", guard=_after_separator_char("_.-")),
    _keyword(r"auth", "auth", guard=_after_separator_char("_.-")),
    _keyword(r"secret(?:[_-]?key)?", "secret"),
    _keyword(r"token", "token"),
    _keyword(r"api[_-]?key", "api"),
    _keyword(r"access[_-]?key", "access"),
    _keyword(
        r"key",
        "key",
        guard=_after_word("private", "encryption", "master", "signing", "client", "account"),
    ),
    _keyword(r"key[_-]data", "key"),
    # systemd's LoadCredential=NAME:PATH names a file; SetCredential=NAME:VALUE holds one
    _keyword(r"credentials?", "credential", guard=_not_after("load", "import")),
    _keyword(r"session[_-]?id", "session"),
    _keyword(r"cookie", "cookie"),
    _keyword(r"signature", "signature"),
    _keyword(r"x-amz-credential", "x-amz-credential"),
    # YAML `pass:` / `pwd:` keys at the start of a line
    _keyword(r"(?:pass|pwd)", "pass", "pwd", guard=_line_start_key),
)


def _apply(rule: _Rule, text: str, lowered: str) -> str:
    subject = lowered if rule.lower else text
    shift = 0
    if rule.line_start:
        subject, shift = "\n" + subject, 1
    whole = "secret" not in rule.pattern.groupindex
    pieces: list[str] = []
    last = 0
    for match in rule.pattern.finditer(subject):
        if rule.guard is not None and not rule.guard(subject, match):
            continue
        start, end = match.span("secret") if whole is False else match.span()
        if rule.cut is not None:
            end = rule.cut(subject, match)
        start, end = start - shift, end - shift
        if start < last or end <= start:
            continue
        value = text[start:end]
        pieces.append(text[last:start])
        pieces.append(rule.mark(value) if rule.mark is not None else _quoted_mark(value))
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _one_pass(text: str) -> str:
    lowered = text.translate(_LOWER)
    if "private key" in lowered:
        changed = _PRIVATE_KEY_BLOCK.sub(_block_mark, text)
        if changed != text:
            text, lowered = changed, changed.translate(_LOWER)
    if "-----end" in lowered:
        changed = _headless_key_bodies(text)
        if changed is not text:
            text, lowered = changed, changed.translate(_LOWER)
    for rule in (*_RULES, *_ASSIGNMENTS):
        if rule.needles and not any(needle in lowered for needle in rule.needles):
            continue
        changed = _apply(rule, text, lowered)
        if changed is not text:
            text, lowered = changed, changed.translate(_LOWER)
    return text


def redact(text: str) -> str:
    """`text` with every secret we can recognise replaced by `[REDACTED]`."""
    if not text:
        return text
    # A replacement can expose a new match next to another secret, so repeat to a fixed point
    # (which also makes redact idempotent); a second pass is only needed when the first changed
    # something, and two are nearly always enough.
    for _ in range(_MAX_PASSES):
        before = text
        text = _one_pass(text)
        if text == before:
            break
    return text
