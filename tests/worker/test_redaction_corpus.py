"""Redaction corpus: every format we claim, with secret values drawn at random on each run, and a
corpus of ordinary diagnostic output that must come back byte for byte.

The seed is printed in every failure message, so a failing run can be replayed with
`BPFSLEUTH_REDACT_SEED=<seed>`.
"""

from __future__ import annotations

import base64
import os
import random
import string
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.host.redact import MARK, redact

SEED = int(os.environ.get("BPFSLEUTH_REDACT_SEED") or int.from_bytes(os.urandom(4), "big"))
CORPUS = Path(__file__).parent / "redaction_corpus"
ORDINARY = [
    block.strip("\n")
    for block in (CORPUS / "ordinary.txt").read_text().split("=====\n")
    if block.strip()
]

BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"
Sample = tuple[str, list[str]]  # (text, the secret values that must not survive)


def _rng(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _hex(rng: random.Random, n: int, *, upper: bool = False) -> str:
    digits = "0123456789ABCDEF" if upper else "0123456789abcdef"
    return "".join(rng.choice(digits) for _ in range(n))


def _b64(rng: random.Random, nbytes: int) -> str:
    return base64.b64encode(rng.randbytes(nbytes)).decode()


def _password(rng: random.Random, n: int = 0) -> str:
    """A password as people write them: letters, digits and symbols (not `/` or `*` first;
    never whitespace, quotes, `$`, `&`, `;`, `,`, `<`, `>`, `\\`, which end or change an
    unquoted value, see docs/secrets.md)."""
    symbols = "!#%+=:.-_~^()[]{}@/"
    n = n or rng.randint(10, 24)
    body = [rng.choice(string.ascii_letters + string.digits + symbols) for _ in range(n - 2)]
    return rng.choice(string.ascii_letters) + "".join(body) + rng.choice(string.digits)


def _pem_lines(rng: random.Random, nbytes: int) -> list[str]:
    body = _b64(rng, nbytes)
    return [body[i : i + 64] for i in range(0, len(body), 64)]


# -- one generator per format --------------------------------------------------------------------


def env_keys(rng: random.Random) -> Sample:
    names = ["DB_PASS", "MYSQL_PWD", "PGPASSWORD", "NPM_AUTH", "STRIPE_KEY", "CI_JOB_TOKEN"]
    names += ["APP_SECRET", "REDIS_PASSWORD", "SMTP_PASSWD", "RAILS_SECRET_KEY_BASE"]
    values = [_password(rng) for _ in names]
    lines = [f"{name}={value}" for name, value in zip(names, values, strict=True)]
    return "\n".join(["PATH=/usr/bin:/bin", *lines, "HOME=/root"]), values


def env_nul_dump(rng: random.Random) -> Sample:
    # /proc/<pid>/environ and `env -0`: NUL-separated, values may hold spaces
    secret = f"{_password(rng, 8)} {_password(rng, 8)}"
    token = _alnum(rng, 32)
    text = f"PATH=/usr/bin\0DB_PASS={secret}\0HOME=/root\0DEPLOY_TOKEN={token}\0LANG=C\0"
    return text, [secret, secret.split()[1], token]


def env_export(rng: random.Random) -> Sample:
    secret = f"{_password(rng, 9)} {_password(rng, 9)}"
    return f"export DB_PASS='{secret}'\ndeclare -x API_KEY=\"{secret}\"", [secret]


def ps_environment(rng: random.Random) -> Sample:
    secret = _password(rng)
    return f"4242 ?  S  0:00 app PATH=/usr/bin MYSQL_PWD={secret} HOME=/srv", [secret]


def yaml_keys(rng: random.Random) -> Sample:
    values = [_password(rng) for _ in range(4)]
    text = (
        f"db:\n  host: db-1\n  pass: {values[0]}\n  pwd: {values[1]}\n"
        f"  passwd: {values[2]}\n  - password: '{values[3]}'\n"
    )
    return text, values


def pgpass(rng: random.Random) -> Sample:
    raw = _password(rng).replace(":", "x")
    escaped = raw[:4] + "\\:" + raw[4:]
    return f"db-1.internal:5432:orders:app:{escaped}\n*:*:*:replicator:{raw}", [raw, raw[4:]]


def netrc(rng: random.Random) -> Sample:
    one, two = _password(rng), _password(rng)
    text = (
        f"machine api.example.com login bob password {one}\n"
        f"machine git.example.com\n  login deploy\n  password {two}\n"
    )
    return text, [one, two]


def htpasswd(rng: random.Random) -> Sample:
    apr1 = f"$apr1${_alnum(rng, 8)}${_alnum(rng, 22)}"
    bcrypt = f"$2y$05${_alnum(rng, 53)}"
    sha = "{SHA}" + _b64(rng, 20)
    des = _alnum(rng, 13)
    text = f"alice:{apr1}\nbob:{bcrypt}\ncarol:{sha}\ndave:{des}\n"
    return text, [apr1[6:], bcrypt[7:], sha[5:], des]


def shadow_lines(rng: random.Random) -> Sample:
    sha512 = _alnum(rng, 86)
    yescrypt = _alnum(rng, 43)
    des = _alnum(rng, 13)
    text = (
        f"root:$6$rounds=5000${_alnum(rng, 16)}${sha512}:19000:0:99999:7:::\n"
        f"bob:$y$j9T${_alnum(rng, 22)}${yescrypt}:19001:0:99999:7:::\n"
        f"old:{des}:18000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n"
    )
    return text, [sha512, yescrypt, des]


def database_hashes(rng: random.Random) -> Sample:
    mysql = _hex(rng, 40, upper=True)
    sha2 = _alnum(rng, 63)
    django = f"{rng.randint(100000, 999999)}${_alnum(rng, 22)}${_b64(rng, 32)}"
    ssha = _b64(rng, 24)
    argon = f"v=19$m=65536,t=3,p=4${_b64(rng, 16)}${_b64(rng, 32)}"
    text = (
        f"| app | %  | *{mysql} |\n"
        f"| svc | %  | $A$005${sha2} |\n"
        f"pbkdf2_sha256${django}\n"
        f"userPassword:: {{SSHA}}{ssha}\n"
        f"$argon2id${argon}\n"
    )
    return text, [mysql, sha2, django, ssha, argon]


def command_lines(rng: random.Random) -> Sample:
    values = [_password(rng) for _ in range(8)]
    text = "\n".join(
        [
            f"curl -u deploy:{values[0]} https://api.example.com/x",
            f"curl --user=deploy:{values[1]} https://api.example.com/x",
            f"curl -sS -udeploy:{values[2]} https://api.example.com/x",
            f"mysql -uroot -p{values[3]} -h db-1 orders",
            f"mysqldump --password={values[4]} orders",
            f"sshpass -p {values[5]} ssh deploy@10.0.0.9",
            f"redis-cli -h cache-1 -p 6379 -a {values[6]} INFO",
            f"/usr/bin/mysql\0-uroot\0-p{values[7]}\0orders\0",
        ]
    )
    return text, values


def config_directives(rng: random.Random) -> Sample:
    one, two, three = _password(rng), _password(rng), _password(rng)
    text = (
        f"requirepass {one}\nmasterauth {two}\n"
        f"CREATE USER 'app'@'%' IDENTIFIED BY '{three}';\n"
        f"ALTER ROLE app WITH PASSWORD '{three}';\n"
    )
    return text, [one, two, three]


def docker_auth(rng: random.Random) -> Sample:
    auth = base64.b64encode(f"deploy:{_password(rng)}".encode()).decode()
    token = _alnum(rng, 40)
    text = (
        '{\n  "auths": {\n    "registry.example.com": {\n'
        f'      "auth": "{auth}",\n      "identitytoken": "{token}"\n    }}\n  }}\n}}'
    )
    return text, [auth, token]


def kubeconfig(rng: random.Random) -> Sample:
    key = _b64(rng, 300)
    token = _alnum(rng, 40)
    text = (
        "users:\n- name: admin\n  user:\n"
        f"    client-certificate-data: LS0tLS1CRUdJTiBDRVJU\n    client-key-data: {key}\n"
        f"- name: sa\n  user:\n    token: {token}\n"
    )
    return text, [key, token]


def azure(rng: random.Random) -> Sample:
    account_key = _b64(rng, 64)
    bus_key = _b64(rng, 32)
    sig = _b64(rng, 32).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    text = (
        "DefaultEndpointsProtocol=https;AccountName=logs;"
        f"AccountKey={account_key};EndpointSuffix=core.windows.net\n"
        f"Endpoint=sb://bus.servicebus.windows.net/;SharedAccessKeyName=Root;"
        f"SharedAccessKey={bus_key};\n"
        f"https://logs.blob.core.windows.net/c/x.log?sv=2022-11-02&ss=b&srt=o&sp=r&sig={sig}"
    )
    return text, [account_key, bus_key, sig]


def aws_signed(rng: random.Random) -> Sample:
    signature = _hex(rng, 64)
    key_id = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    session = _b64(rng, 60).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    text = (
        "https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={key_id}%2F20261206%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date=20261206T044356Z&X-Amz-Expires=300&X-Amz-Security-Token={session}"
        f"&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}\n"
        f"Authorization: AWS4-HMAC-SHA256 Credential={key_id}/20261206/us-east-1/s3/aws4_request,"
        f" SignedHeaders=host;x-amz-date, Signature={signature}"
    )
    return text, [signature, key_id, session]


def token_prefixes(rng: random.Random) -> Sample:
    tokens = [
        "shpat_" + _hex(rng, 32),
        "shpss_" + _hex(rng, 32),
        "glrt-" + _alnum(rng, 20),
        "gldt-" + _alnum(rng, 20),
        "glpat-" + _alnum(rng, 20),
        "SK" + _hex(rng, 32),
        "dop_v1_" + _hex(rng, 64),
        "xoxe.xoxp-1-" + _alnum(rng, 40),
        "xoxb-" + _alnum(rng, 30),
        "dapi" + _hex(rng, 32),
        "hf_" + _alnum(rng, 34),
        "AGE-SECRET-KEY-1" + "".join(rng.choice(BECH32) for _ in range(58)),
        "ya29." + _alnum(rng, 60),
        "glsa_" + _alnum(rng, 32) + "_" + _hex(rng, 8),
        "ghp_" + _alnum(rng, 36),
        "github_pat_" + _alnum(rng, 60),
        "sk-ant-api03-" + _alnum(rng, 40),
        "sk-proj-" + _alnum(rng, 40),
        "npm_" + _alnum(rng, 36),
        "hvs." + _alnum(rng, 30),
        "AIza" + _alnum(rng, 35),
    ]
    text = "\n".join(f"found {token} in the output" for token in tokens)
    return text, tokens


def url_passwords(rng: random.Random) -> Sample:
    tails = [_password(rng, 8) for _ in range(3)]
    one = _password(rng, 10) + "/" + tails[0]
    two = _password(rng, 8) + "@" + tails[1]
    three = _password(rng, 6) + "/" + _password(rng, 6) + "@" + tails[2]
    text = (
        f"postgres://app:{one}@db-1:5432/orders\n"
        f"mongodb://root:{two}@mongo-1,mongo-2/admin?replicaSet=rs0\n"
        f"DATABASE_URL=mysql://app:{three}@db-2/orders\n"
    )
    return text, [one, two, three, *tails]


def pem_blocks(rng: random.Random) -> Sample:
    rsa = _pem_lines(rng, 600)
    headless = _pem_lines(rng, 400)
    openssh = _pem_lines(rng, 300)
    text = (
        "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(rsa) + "\n-----END RSA PRIVATE KEY-----\n"
        "log line before the cut key\n"
        + "\n".join(headless[2:])
        + "\n-----END PRIVATE KEY-----\n"
        + "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "\n".join(openssh)
        + "\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    return text, [rsa[3], headless[3], headless[-1], openssh[2]]


def pem_cut_at_the_start(rng: random.Random) -> Sample:
    lines = _pem_lines(rng, 400)
    first = lines[1][17:]  # the output began in the middle of a line
    text = first + "\n" + "\n".join(lines[2:]) + "\n-----END EC PRIVATE KEY-----\nafter"
    return text, [first, lines[4]]


def kubernetes_secret(rng: random.Random) -> Sample:
    pem = (
        "-----BEGIN RSA PRIVATE KEY-----\n"
        + "\n".join(_pem_lines(rng, 300))
        + "\n-----END RSA PRIVATE KEY-----\n"
    )
    tls_key = base64.b64encode(pem.encode()).decode()
    password = base64.b64encode(_password(rng).encode()).decode()
    text = (
        "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\ndata:\n"
        "  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM4akNDQWRxZ0F3SUJBZ0lJ\n"
        f"  tls.key: {tls_key}\n  password: {password}\n"
    )
    return text, [tls_key[40:100], password]


def putty(rng: random.Random) -> Sample:
    public = _pem_lines(rng, 200)
    private = _pem_lines(rng, 400)
    mac = _hex(rng, 64)
    text = (
        "PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: deploy\n"
        f"Public-Lines: {len(public)}\n" + "\n".join(public) + "\n"
        f"Private-Lines: {len(private)}\n" + "\n".join(private) + f"\nPrivate-MAC: {mac}\n"
    )
    return text, [private[0], private[-1], mac]


def json_and_connection_strings(rng: random.Random) -> Sample:
    one = _password(rng) + '\\"' + _password(rng, 6)
    two = f"{_password(rng, 8)} {_password(rng, 8)}"
    three = _password(rng)
    text = (
        f'{{"user": "app", "password": "{one}", "port": 5432}}\n'
        f"Server=db-1;Database=orders;User Id=app;Password={two};Encrypt=true\n"
        f"Driver={{ODBC}};Uid=app;Pwd={three};\n"
    )
    return text, [one, one.split('\\"')[1], two, two.split()[1], three]


def headers_and_bearer(rng: random.Random) -> Sample:
    one, two, three = _alnum(rng, 40), _alnum(rng, 32), _b64(rng, 24)
    text = (
        f"Authorization: Bearer {one}\nX-Upstream: bearer {two}\n"
        f"proxy-authorization: Basic {three}\nCookie: session={_alnum(rng, 8)}{two}\n"
    )
    return text, [one, two, three]


GENERATORS: list[Callable[[random.Random], Sample]] = [
    env_keys,
    env_nul_dump,
    env_export,
    ps_environment,
    yaml_keys,
    pgpass,
    netrc,
    htpasswd,
    shadow_lines,
    database_hashes,
    command_lines,
    config_directives,
    docker_auth,
    kubeconfig,
    azure,
    aws_signed,
    token_prefixes,
    url_passwords,
    pem_blocks,
    pem_cut_at_the_start,
    kubernetes_secret,
    putty,
    json_and_connection_strings,
    headers_and_bearer,
]


@pytest.mark.parametrize("generate", GENERATORS, ids=lambda g: g.__name__)
def test_every_format_loses_its_secret(generate: Callable[[random.Random], Sample]) -> None:
    for round_ in range(5):  # five random draws per format
        text, secrets = generate(_rng(f"{generate.__name__}:{round_}"))
        out = redact(text)
        for secret in secrets:
            assert secret not in out, f"seed {SEED}: {secret!r} survived in {out!r}"
        assert MARK in out
        assert redact(out) == out, f"seed {SEED}: not idempotent on {out!r}"


@pytest.mark.parametrize("generate", GENERATORS, ids=lambda g: g.__name__)
def test_a_secret_inside_ordinary_output_leaves_the_rest_alone(
    generate: Callable[[random.Random], Sample],
) -> None:
    rng = _rng(f"embed:{generate.__name__}")
    text, secrets = generate(rng)
    blocks = rng.sample(ORDINARY, 4)
    out = redact("\n".join([blocks[0], blocks[1], text, blocks[2], blocks[3]]))
    for secret in secrets:
        assert secret not in out, f"seed {SEED}"
    for block in blocks:
        assert block in out, f"seed {SEED}: ordinary text changed next to {generate.__name__}"


def test_names_hosts_and_structure_stay() -> None:
    rng = _rng("structure")
    secret = _password(rng)
    assert redact(f"postgres://app:{secret}@db-1:5432/x") == "postgres://app:[REDACTED]@db-1:5432/x"
    assert redact(f"DB_PASS={secret}") == "DB_PASS=[REDACTED]"
    assert redact(f"PATH=/bin\0DB_PASS={secret}\0HOME=/root") == (
        "PATH=/bin\0DB_PASS=[REDACTED]\0HOME=/root"
    )
    assert redact(f"curl -u deploy:{secret} https://x") == "curl -u deploy:[REDACTED] https://x"
    assert redact(f'"password": "{secret}"') == '"password": "[REDACTED]"'
    plain = secret.replace(":", "x")
    assert redact(f"db:5432:orders:app:{plain}") == "db:5432:orders:app:[REDACTED]"


@pytest.mark.parametrize("block", ORDINARY, ids=lambda b: b.split("\n")[0][:40])
def test_ordinary_output_is_unchanged(block: str) -> None:
    assert redact(block) == block


def test_the_ordinary_corpus_is_large_enough() -> None:
    assert len(ORDINARY) >= 25
    assert sum(block.count("\n") + 1 for block in ORDINARY) >= 100


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ORDINARY), min_size=1, max_size=6), st.sampled_from(["\n", "\0"]))
def test_any_mix_of_ordinary_output_is_unchanged(blocks: list[str], joiner: str) -> None:
    text = joiner.join(blocks)
    assert redact(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_redact_is_idempotent_and_ordinary_text_never_grows(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    if MARK not in once:
        assert once == text


def test_speed_on_a_64_kb_mixed_log() -> None:
    """Not a benchmark (see docs/secrets.md for figures): a guard against a pathological rule.
    64 KB of mixed output with a secret every few lines must redact well inside 0.5 s even on a
    loaded 2-core CI machine."""
    rng = _rng("speed")
    parts: list[str] = []
    while sum(map(len, parts)) < 64 * 1024:
        parts.append(rng.choice(ORDINARY))
        parts.append(rng.choice(GENERATORS)(rng)[0])
    text = "\n".join(parts)[: 64 * 1024]
    started = time.process_time()  # CPU time: other load on the host does not count
    redact(text)
    assert time.process_time() - started < 2.0  # a backtracking regex took 5-11 s here


_N = 64 * 1024
ADVERSARIAL = {
    "url-no-at": "a://b:c/" * (_N // 8),
    "url-many-at": "://a:" + "@x" * (_N // 2),
    "base64-then-end": ("A" * 64 + "\n") * (_N // 65) + "zz\n-----END PRIVATE KEY-----",
    "password=": "password=" * (_N // 9),
    "connection-string": "password=" + "a " * (_N // 2),
    "redis-cli": "redis-cli " * (_N // 10),
    "mysql": "mysql " * (_N // 6),
    "sshpass": "sshpass " * (_N // 8),
    "-u": "-ua" * (_N // 3),
    "netrc": "login a password " * (_N // 17),
    "eyJ": "eyJ" * (_N // 3),
    "quotes": '"password": "' + "\\\\" * (_N // 2),
    "identified-by": "identified by '" * (_N // 15),
    "env-nul": "\0DB_PASS=" * (_N // 9),
    "pgpass": "a:1:b:c:d\n" * (_N // 10),
    "spaces-after-key": "authorization" + " " * _N,
    "putty": "Private-Lines: 3\n" + ("A" * 60 + "\n") * (_N // 61) + "x y",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_no_input_makes_redaction_slow(name: str) -> None:
    """Text an attacker controls must not stall every output: each shape that made a regex
    backtrack quadratically (found by trying) takes a few ms; 0.5 s is a generous ceiling."""
    started = time.process_time()  # CPU time: other load on the host does not count
    redact(ADVERSARIAL[name])
    assert time.process_time() - started < 2.0  # a backtracking regex took 5-11 s here
