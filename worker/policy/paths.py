"""Paths whose contents are secrets, raw memory or devices with side effects.

See docs/architecture.md §5 and docs/secrets.md.

`path_verdict(arg)` says whether reading `arg` (a path, or an option carrying one) must be denied
or needs a human's approval, and why. A path is judged in several views, and the worst finding
wins:

- as written, normalised by component (so `//etc/shadow`, `/etc/./shadow` and `/x/../etc/shadow`
  are `/etc/shadow`; commands run with `/` as working directory, `~` is root's home);
- inside every other root the path passes through: `/proc/<pid>/root/REST` and
  `/proc/<pid>/cwd/REST` (also under `task/<tid>/`) are judged as `/REST` as well, with the `..`
  in REST taken inside that root, not lexically before it;
- resolved on this host, component by component as the kernel does (symlinks, `..` after a
  symlink, `/proc/<pid>/root|cwd` links), with the command's own `/proc/self` taken as a
  process whose root and working directory are `/`.

Every rule matches at any depth: `root/*/**` catches `/root/.config/x`, `/host/root/.ssh/id_rsa`
(a host root mounted in a container) and `/var/lib/docker/overlay2/ID/merged/root/.bashrc`. An
unexpanded glob is judged as the set of names it may match (`/etc/shad*` may be `/etc/shadow`).

The verdicts: `deny` for what no responder should read through a chat bot or what does harm by
being opened (password hashes, private keys, process environments, kernel and physical memory,
the kernel log ring that reading consumes, watchdogs that opening arms, terminals and input
devices); `needs_approval` for trees that hold secrets among useful configuration (home
directories, Kubernetes, container runtime, Vault, cloud-init, raw disks, other processes' roots).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

PathVerdictKind = Literal["deny", "needs_approval"]

_RANK = {"needs_approval": 1, "deny": 2}
_MAGIC = re.compile(r"[*?[]")
_MAX_LINKS = 40
_MAX_COMPONENTS = 256
_MAX_ROOT_DEPTH = 4


class PathFinding(NamedTuple):
    """Why a path must not be read unattended: `deny`, or `needs_approval`, and the reason."""

    verdict: PathVerdictKind
    reason: str


@dataclass(frozen=True)
class _Rule:
    pattern: tuple[str, ...]
    verdict: PathVerdictKind
    why: str
    bare: bool  # also judged when the argument is a bare word (`cat id_rsa`)
    raw_device: bool  # only when the program reads a device's content
    specificity: int  # literal components: among equal verdicts, the most specific rule speaks
    literal_head: bool  # the first component is a plain name


# Pattern syntax: components separated by `/`, fnmatch within a component, `**` for zero or more
# components, `<pid>` for a number, `self` or `thread-self`, `<other>` for a number only (another
# process). Rules match at any depth and case-insensitively. Order matters only for which reason
# is shown when several rules of the same verdict match.
_DENY: tuple[tuple[str, str], ...] = (
    # password hashes
    ("shadow*", "password hashes"),
    ("gshadow*", "password hashes"),
    ("opasswd", "old password hashes"),
    ("master.passwd", "password hashes"),
    ("*htpasswd*", "password hashes"),
    ("passdb.tdb", "Samba password hashes"),
    ("secrets.tdb", "Samba machine secrets"),
    # private keys
    ("id_rsa", "an SSH private key"),
    ("id_dsa", "an SSH private key"),
    ("id_ecdsa", "an SSH private key"),
    ("id_ecdsa_sk", "an SSH private key"),
    ("id_ed25519", "an SSH private key"),
    ("id_ed25519_sk", "an SSH private key"),
    ("id_xmss", "an SSH private key"),
    ("ssh_host_*_key", "an SSH host private key"),
    ("etc/ssh/ssh_host_*_key", "an SSH host private key"),
    ("*.key", "a private key"),
    ("*[-_]key.pem", "a private key"),
    ("privkey*.pem", "a private key"),
    ("private_key*", "a private key"),
    ("*.ppk", "a PuTTY private key"),
    ("private-keys-v1.d/**", "PGP private keys"),
    ("secring.*", "PGP private keys"),
    ("ssl/private/*/**", "a private key directory"),
    ("pki/tls/private/*/**", "a private key directory"),
    ("pki/*/private/*/**", "a private key directory"),
    ("*.keytab", "Kerberos keys"),
    ("etc/ppp/*secrets", "PPP passwords"),
    ("ipsec.secrets", "IPsec keys"),
    # systemd credentials handed to services
    ("run/credentials/*/*/**", "systemd service credentials"),
    ("etc/credstore/*/**", "systemd service credentials"),
    ("etc/credstore.encrypted/*/**", "systemd service credentials"),
    ("run/credstore/*/**", "systemd service credentials"),
    ("run/credstore.encrypted/*/**", "systemd service credentials"),
    # process environments and memory
    ("proc/<pid>/environ", "a process's environment (often holds secrets)"),
    ("proc/<pid>/task/<pid>/environ", "a process's environment (often holds secrets)"),
    ("proc/<pid>/mem", "process memory"),
    ("proc/<pid>/task/<pid>/mem", "process memory"),
    ("proc/<pid>/pagemap", "physical page mappings (process memory layout)"),
    ("proc/<pid>/task/<pid>/pagemap", "physical page mappings (process memory layout)"),
    ("proc/kcore", "kernel memory"),
    ("proc/vmcore", "kernel memory (crash dump)"),
    ("proc/kpage*", "physical memory page data (kernel memory)"),
    ("dev/mem", "physical memory"),
    ("dev/kmem", "kernel memory"),
    ("dev/port", "I/O port memory"),
    ("dev/crash", "kernel memory"),
    # devices where opening or reading has an effect
    ("proc/kmsg", "the kernel log ring (reading it consumes messages other readers need)"),
    ("dev/watchdog*", "a watchdog device (opening it arms a reboot)"),
    ("dev/tty*", "a terminal (reading steals keystrokes)"),
    ("dev/pts/*", "a terminal (reading steals keystrokes)"),
    ("dev/ptmx", "a terminal multiplexer"),
    ("dev/console", "the console terminal"),
    ("dev/hvc*", "a hypervisor console terminal"),
    ("dev/vcs*", "a virtual console's screen contents"),
    ("dev/input/*/**", "an input device (keystrokes)"),
    ("dev/uinput", "an input injection device"),
    ("dev/uhid", "an input injection device"),
    ("dev/hidraw*", "a raw input device (keystrokes)"),
    ("dev/usb/hiddev*", "a raw input device (keystrokes)"),
    ("dev/snd/*", "an audio device (capture)"),
    ("dev/video*", "a video capture device"),
)

_APPROVAL: tuple[tuple[str, str], ...] = (
    # passages into another process's files
    ("proc/<other>/root/*/**", "another process's root filesystem"),
    ("proc/<other>/task/<pid>/root/*/**", "another process's root filesystem"),
    ("proc/<other>/cwd/*/**", "another process's working directory"),
    ("proc/<other>/task/<pid>/cwd/*/**", "another process's working directory"),
    ("proc/<other>/fd/*/**", "another process's open files"),
    ("proc/<other>/task/<pid>/fd/*/**", "another process's open files"),
    ("proc/<other>/map_files/*/**", "another process's mapped files"),
    ("proc/<other>/task/<pid>/map_files/*/**", "another process's mapped files"),
    # names that hold secrets wherever they are
    ("id_rsa*", "an SSH private key"),
    ("id_dsa*", "an SSH private key"),
    ("id_ecdsa*", "an SSH private key"),
    ("id_ed25519*", "an SSH private key"),
    ("*.pem", "a key or certificate file (may hold a private key)"),
    ("*.p12", "a key store"),
    ("*.pfx", "a key store"),
    ("*.jks", "a key store"),
    ("*.keystore", "a key store"),
    ("*.kubeconfig", "a Kubernetes config with credentials"),
    ("*kubeconfig*", "a Kubernetes config with credentials"),
    ("k3s.yaml", "a Kubernetes config with credentials"),
    ("admin.conf", "a Kubernetes admin config"),
    ("kubelet.conf", "a Kubernetes config with credentials"),
    ("sudoers", "sudo rules"),
    ("sudoers.d/**", "sudo rules"),
    ("environ", "a process's environment (often holds secrets)"),
    ("mem", "process or physical memory"),
    ("pagemap", "physical page mappings"),
    (".env", "an environment file (often holds secrets)"),
    (".env.*", "an environment file (often holds secrets)"),
    ("*.env", "an environment file (often holds secrets)"),
    (".netrc", "stored credentials"),
    ("_netrc", "stored credentials"),
    (".pgpass", "stored database passwords"),
    (".my.cnf", "stored database passwords"),
    ("debian.cnf", "stored database passwords"),
    (".git-credentials", "stored credentials"),
    (".vault-token", "a Vault token"),
    (".npmrc", "registry tokens"),
    (".pypirc", "registry tokens"),
    (".dockercfg", "registry credentials"),
    ("auth.json", "registry credentials"),
    ("docker-config.json", "registry credentials"),
    ("apt/auth.conf*/**", "package repository credentials"),
    ("credentials", "cloud credentials"),
    ("*credential*", "stored credentials"),
    ("token", "an access token"),
    ("master.key", "an encryption key"),
    ("secrets.yml", "application secrets"),
    ("secrets.yaml", "application secrets"),
    ("secrets.json", "application secrets"),
    ("*secret*", "a secrets file"),
    ("*password*", "a password file"),
    ("*-secrets", "stored secrets"),
    ("wp-config.php", "database credentials"),
    ("*.ovpn", "a VPN profile with keys"),
    ("*.gpg", "encrypted secrets"),
    # shell and client histories
    ("*_history", "shell or client history (often holds secrets)"),
    (".history", "shell history (often holds secrets)"),
    ("history", "shell history (often holds secrets)"),
    (".histfile", "shell history (often holds secrets)"),
    (".lesshst", "pager history"),
    (".viminfo", "editor history and registers"),
    # directories of secrets, at any depth
    (".ssh/**", "SSH keys"),
    (".aws/**", "AWS credentials"),
    (".kube/**", "Kubernetes credentials"),
    (".gnupg/**", "PGP keys"),
    (".docker/**", "registry credentials"),
    (".azure/**", "Azure credentials"),
    ("gcloud/**", "Google Cloud credentials"),
    (".oci/**", "Oracle Cloud credentials"),
    (".password-store/**", "passwords"),
    ("private/**", "private keys"),
    ("secrets/**", "mounted secrets"),
    ("system-connections/**", "network (Wi-Fi/VPN) secrets"),
    ("wireguard/**", "VPN keys"),
    # Kubernetes, etcd, container runtimes
    ("etc/kubernetes/pki/*/**", "the Kubernetes PKI (keys)"),
    ("etc/kubernetes/*.conf", "a Kubernetes config with credentials"),
    ("etc/kubernetes/*encryption*", "Kubernetes secret encryption keys"),
    ("var/lib/kubelet/*/**", "kubelet state (pod secrets, tokens, keys)"),
    ("var/lib/etcd/*/**", "etcd data (holds every Kubernetes secret)"),
    ("var/lib/rancher/k3s/server/*/**", "k3s server state (tokens, keys)"),
    ("etc/rancher/node/password", "a k3s node password"),
    ("var/lib/docker/swarm/*/**", "Docker swarm state (keys, secrets)"),
    ("var/lib/docker/containers/*/config.v2.json", "a container's config (with its environment)"),
    ("var/lib/containerd/io.containerd.metadata.v1.bolt/*/**", "containerd metadata (specs)"),
    ("var/lib/containers/storage/secrets/*/**", "podman secrets"),
    ("overlay-containers/*/userdata/config.json", "a container's spec (with its environment)"),
    ("run/containerd/**/config.json", "a container's spec (with its environment)"),
    ("run/user/*/*/**", "a user's runtime directory (keyrings, registry credentials)"),
    # Vault, Consul
    ("var/lib/vault/*/**", "Vault data"),
    ("opt/vault/*/**", "Vault data"),
    ("vault/data/*/**", "Vault data"),
    ("vault/file/*/**", "Vault data"),
    ("etc/vault.d/*/**", "Vault configuration (tokens, keys)"),
    ("var/lib/consul/*/**", "Consul data (ACL tokens, keys)"),
    ("opt/consul/*/**", "Consul data (ACL tokens, keys)"),
    ("etc/consul.d/*/**", "Consul configuration (ACL tokens, keys)"),
    # TLS, cloud-init, firmware variables
    ("letsencrypt/live/*/**", "Let's Encrypt certificates and keys"),
    ("letsencrypt/archive/*/**", "Let's Encrypt certificates and keys"),
    ("letsencrypt/accounts/*/**", "Let's Encrypt account keys"),
    ("var/lib/cloud/instance/user-data*", "cloud-init user data (often holds secrets)"),
    ("var/lib/cloud/instance/vendor-data*", "cloud-init vendor data (may hold secrets)"),
    ("var/lib/cloud/instances/*/user-data*", "cloud-init user data (often holds secrets)"),
    ("var/lib/cloud/instances/*/vendor-data*", "cloud-init vendor data (may hold secrets)"),
    ("sys/firmware/efi/efivars/*", "EFI variables (may hold firmware secrets)"),
    ("sys/firmware/efi/vars/*/**", "EFI variables (may hold firmware secrets)"),
    # home directories
    ("root/*/**", "root's home directory (keys, histories, tool credentials)"),
    ("home/*/*/**", "a home directory (keys, histories, tool credentials)"),
)

_RAW: tuple[tuple[str, str], ...] = tuple(
    (f"dev/{name}", "a raw device or memory")
    for name in (
        "sd*",
        "hd*",
        "vd*",
        "xvd*",
        "nvme*",
        "mmcblk*",
        "dm-*",
        "md*",
        "loop*",
        "sr*",
        "nbd*",
        "rbd*",
        "zd*",
        "mapper/*",
        "disk/*/*",
        "zvol/**",
        "block/*",
        "sg*",
        "bsg/*",
    )
)

# Programs that read a device's metadata (partition tables, superblocks, SMART data, RAID
# state), never its content: the policy may pass `raw_devices=False` for these, and only these
# (a program merely "not a filter" can still copy a disk: `gzip -c /dev/sda`).
METADATA_ONLY_PROGRAMS = frozenset(
    {
        "blkid",
        "lsblk",
        "df",
        "findmnt",
        "ls",
        "stat",
        "du",
        "smartctl",
        "nvme",
        "mdadm",
        "tune2fs",
        "dumpe2fs",
        "xfs_info",
        "fdisk",
        "sfdisk",
        "parted",
        "hdparm",
        "lvs",
        "pvs",
        "vgs",
        "multipath",
        "udevadm",
    }
)

_BARE = ("id_*", "*.pem", "*.key", "*.kubeconfig", "*.p12", "*.pfx", "*.ppk", "ssh_host_*_key")


def _compile(
    table: tuple[tuple[str, str], ...], verdict: PathVerdictKind, *, raw: bool = False
) -> list[_Rule]:
    rules: list[_Rule] = []
    for text, why in table:
        pattern = tuple(text.split("/"))
        bare = len(pattern) == 1 and any(fnmatch.fnmatchcase(text, b) for b in _BARE)
        literal = sum(1 for piece in pattern if not _MAGIC.search(piece) and piece != "**")
        plain = not _MAGIC.search(pattern[0]) and pattern[0] not in {"**", "<pid>", "<other>"}
        rules.append(_Rule(pattern, verdict, why, bare, raw, literal, plain))
    return rules


_RULES: tuple[_Rule, ...] = (
    *_compile(_DENY, "deny"),
    *_compile(_APPROVAL, "needs_approval"),
    *_compile(_RAW, "needs_approval", raw=True),
)


# -- matching ------------------------------------------------------------------------------------


def _has_magic(text: str) -> bool:
    return _MAGIC.search(text) is not None


def _sample(glob: str) -> str:
    """The shortest name a glob matches: `shadow*` -> `shadow`, `*[-_]key.pem` -> `-key.pem`."""
    return re.sub(r"\[!?([^]])[^]]*\]", r"\1", glob).replace("*", "").replace("?", "x")


@lru_cache(maxsize=8192)
def _component_matches(pattern: str, component: str) -> bool:
    magic = _has_magic(component)
    if pattern == "<pid>":
        return component.isdigit() or component in {"self", "thread-self"} or magic
    if pattern == "<other>":
        return component.isdigit() or (magic and _could_match_digits(component))
    if not magic:
        return fnmatch.fnmatchcase(component, pattern)
    if not pattern.strip("*"):
        return True
    # a glob in the path: could it name what the rule names?
    return fnmatch.fnmatchcase(_sample(pattern) if _has_magic(pattern) else pattern, component)


def _could_match_digits(glob: str) -> bool:
    return any(fnmatch.fnmatchcase(sample, glob) for sample in ("1", "12", "123", "1234", "99999"))


def _matches_at(pattern: tuple[str, ...], parts: tuple[str, ...], p: int, i: int) -> bool:
    """Whether `pattern[p:]` matches all of `parts[i:]`."""
    while p < len(pattern):
        piece = pattern[p]
        if piece == "**":
            return any(_matches_at(pattern, parts, p + 1, j) for j in range(i, len(parts) + 1))
        if i >= len(parts) or not _component_matches(piece, parts[i]):
            return False
        p += 1
        i += 1
    return i == len(parts)


def _anchors(head: str, parts: tuple[str, ...], start: int) -> bool:
    """Whether a rule whose first piece is `head` may start at `parts[start]`.

    A bare `*` directory could be any directory, so it anchors no rule (or every path under a
    glob would be judged as every secret tree); it still matches inside a rule (`/home/*/x`),
    and as the last component it may be any secret file name.
    """
    part = parts[start]
    if start < len(parts) - 1 and not part.strip("*?"):
        return False
    return _component_matches(head, part)


def _rule_matches(rule: _Rule, parts: tuple[str, ...], literal: frozenset[str] | None) -> bool:
    """Whether the rule matches the path, anchored at any depth and running to its end.

    `literal`: the path's components when none holds a wildcard (None otherwise), so a rule
    whose first component is a literal name can be skipped when that name is absent.
    """
    head = rule.pattern[0]
    if literal is not None and rule.literal_head and head not in literal:
        return False
    if "**" not in rule.pattern:
        start = len(parts) - len(rule.pattern)
        return (
            start >= 0
            and _anchors(head, parts, start)
            and _matches_at(rule.pattern, parts, 0, start)
        )
    return any(
        _anchors(head, parts, start) and _matches_at(rule.pattern, parts, 0, start)
        for start in range(len(parts))
    )


# -- views of a path -----------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [part for part in text.split("/") if part and part != "."]


def _collapse(parts: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out:
                out.pop()
        else:
            out.append(part)
    return tuple(out)


def _root_passage(stack: list[str]) -> bool:
    """Whether the lexical stack ends at `/proc/<pid>[/task/<tid>]/(root|cwd)`."""
    for length in (3, 5):
        if len(stack) < length:
            continue
        tail = stack[-length:]
        if tail[0] != "proc" or tail[-1] not in {"root", "cwd"}:
            continue
        pids = [tail[1]] if length == 3 else [tail[1], tail[3]]
        if length == 5 and tail[2] != "task":
            continue
        if all(_component_matches("<pid>", pid) for pid in pids):
            return True
    return False


def _textual_views(parts: list[str], depth: int = 0) -> Iterator[tuple[tuple[str, ...], str]]:
    """The path collapsed lexically, and the path inside each other root it passes through."""
    yield _collapse(parts), ""
    if depth >= _MAX_ROOT_DEPTH:
        return
    stack: list[str] = []
    for index, part in enumerate(parts):
        if part == "..":
            if stack:
                stack.pop()
            continue
        stack.append(part)
        if _root_passage(stack) and index + 1 < len(parts):
            root = "/" + "/".join(stack)
            for inner, _ in _textual_views(parts[index + 1 :], depth + 1):
                yield inner, root


def _expand_home(text: str) -> str:
    if not text.startswith("~"):
        return text
    user, slash, rest = text[1:].partition("/")
    home = "/root" if user in {"", "root"} else f"/home/{user}"
    return home + slash + rest


def resolve(path: str) -> str | None:
    """Where `path` (relative to `/`) leads on this host, as the kernel would walk it.

    Symlinks are followed (at most 40), `..` is taken after them, the part that does not exist
    is kept as written. `/proc/self` and `/proc/thread-self` stand for the command's own process
    (root and working directory `/`), so they are not resolved against this process; its
    `fd/` are left unresolved. None when the walk fails (a loop, a component that is not a
    directory, a magic link with no path such as `socket:[...]`).
    """
    pending = _split(_expand_home(path))[:_MAX_COMPONENTS]
    pending.reverse()
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        if done == ["proc"] and part in {"self", "thread-self"}:
            done.append(part)
            continue
        if len(done) >= 2 and done[0] == "proc" and done[1] in {"self", "thread-self"}:
            own = done[2:]
            if part in {"root", "cwd"} and (not own or (len(own) == 2 and own[0] == "task")):
                done = []
                continue
            done.append(part)
            if part in {"fd", "map_files"}:
                done.extend(reversed(pending))
                return "/" + "/".join(done)
            continue
        candidate = "/" + "/".join([*done, part])
        try:
            info = os.lstat(candidate)
        except (OSError, ValueError):
            done.append(part)
            done.extend(reversed(pending))
            return "/" + "/".join(done)
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > _MAX_LINKS:
                return None
            try:
                target = os.readlink(candidate)
            except OSError:
                return None
            if not target.startswith("/"):
                if len(done) >= 2 and done[0] == "proc":
                    return None  # `socket:[123]`, `pipe:[..]`, `anon_inode:...`
            else:
                done = []
            pending.extend(reversed(_split(target)))
            continue
        if pending and not stat.S_ISDIR(info.st_mode):
            return None
        done.append(part)
    return "/" + "/".join(done)


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.startswith((".", "~"))


def _candidates(arg: str) -> list[str]:
    """The argument and the path-like values hidden in it (`--file=/x`, `-f/x`, `if=/x`, `@/x`)."""
    out = [arg]
    if "=" in arg:
        out.append(arg.split("=", 1)[1])
    if arg.startswith("-") and len(arg) > 2 and not arg.startswith("--"):
        out.append(arg[2:])
    if arg.startswith("@") and len(arg) > 1:
        out.append(arg[1:])
    return out


def _is_plain(piece: str) -> bool:
    return not _MAGIC.search(piece) and piece not in {"**", "<pid>", "<other>"}


def _index_rules() -> tuple[dict[str, list[int]], dict[str, list[int]], list[int]]:
    """Rules by the literal name a plain path must hold for them to match: fixed-length rules by
    their last component, `**` rules by their first; the rest are always tried."""
    by_last: dict[str, list[int]] = {}
    by_head: dict[str, list[int]] = {}
    always: list[int] = []
    for index, rule in enumerate(_RULES):
        if "**" not in rule.pattern and _is_plain(rule.pattern[-1]):
            by_last.setdefault(rule.pattern[-1], []).append(index)
        elif "**" in rule.pattern and rule.literal_head:
            by_head.setdefault(rule.pattern[0], []).append(index)
        else:
            always.append(index)
    return by_last, by_head, always


_BY_LAST, _BY_HEAD, _ALWAYS = _index_rules()


def _judge_parts(parts: tuple[str, ...], *, raw_devices: bool, bare: bool) -> _Rule | None:
    """The most severe rule that matches; among equals the most specific (most literal
    components: `dev/pts/*` says more about `/dev/pts/*` than `shadow*` does), then the first."""
    lowered = tuple(part.lower() for part in parts)
    if not lowered:
        return None
    if any(_has_magic(part) for part in lowered):
        literal = None
        candidates: list[int] | range = range(len(_RULES))
    else:
        literal = frozenset(lowered)
        picked = set(_ALWAYS)
        picked.update(_BY_LAST.get(lowered[-1], ()))
        for part in literal:
            picked.update(_BY_HEAD.get(part, ()))
        candidates = sorted(picked)
    best: _Rule | None = None
    for index in candidates:
        rule = _RULES[index]
        if bare and not rule.bare:
            continue
        if rule.raw_device and not raw_devices:
            continue
        if best is not None and (_RANK[rule.verdict], rule.specificity) <= (
            _RANK[best.verdict],
            best.specificity,
        ):
            continue
        if _rule_matches(rule, lowered, literal) and not _is_public_key(rule, lowered[-1]):
            best = rule
    return best


def _is_public_key(rule: _Rule, name: str) -> bool:
    return rule.pattern[0].startswith("id_") and name.endswith(".pub")


def _judge_text(text: str, *, raw_devices: bool) -> PathFinding | None:
    if not text:
        return None
    best: PathFinding | None = None

    def consider(parts: tuple[str, ...], shown: str, *, bare: bool = False) -> None:
        nonlocal best
        rule = _judge_parts(parts, raw_devices=raw_devices, bare=bare)
        if rule is None:
            return
        # a bare word is mostly a pattern (`grep id_rsa auth.log`); as a name that does not
        # exist in `/` it can be read only once someone creates it, so it asks, never denies
        verdict: PathVerdictKind = "needs_approval" if bare else rule.verdict
        if best is None or _RANK[verdict] > _RANK[best.verdict]:
            best = PathFinding(verdict, f"{shown}: {rule.why}")

    if not _looks_like_path(text):
        if _has_magic(text):
            return None
        if not os.path.lexists("/" + text):
            consider((text,), text, bare=True)
            return best
        text = "/" + text  # an existing name in the working directory `/`: judge it as a path
    expanded = _expand_home(text)
    for parts, root in _textual_views(_split(expanded)[:_MAX_COMPONENTS]):
        shown = text if not root else f"{text} (inside {root}: /{'/'.join(parts)})"
        consider(parts, shown)
    real = resolve(text)
    if real is not None and real.rstrip("/") != "/" + "/".join(_collapse(_split(expanded))):
        consider(_collapse(_split(real)), f"{text} (resolves to {real})")
    return best


def path_verdict(arg: str, *, raw_devices: bool = True) -> PathFinding | None:
    """Whether reading `arg` must be denied or needs approval, and why; None when it is fine.

    `arg` is one argv element: a path (absolute, or relative to `/`), a glob, or an option that
    carries a path (`--file=/x`, `-f/x`, `if=/x`, `@/x`). `raw_devices=False` for programs that
    only read a device's metadata (blkid, lsblk, df): raw disks are then fine, but memory devices,
    watchdogs, terminals and input devices are judged whatever the program.
    """
    best: PathFinding | None = None
    for candidate in _candidates(arg):
        found = _judge_text(candidate, raw_devices=raw_devices)
        if found is not None and (best is None or _RANK[found.verdict] > _RANK[best.verdict]):
            best = found
            if found.verdict == "deny":
                break
    return best


def sensitive_path_reason(arg: str, *, raw_devices: bool = True) -> str | None:
    """Why reading `arg` must not happen unattended (deny or approval alike), or None.

    Kept for callers that only need a reason; `path_verdict` also says which verdict.
    """
    found = path_verdict(arg, raw_devices=raw_devices)
    return None if found is None else found.reason


def contains_secret_tree(path: str) -> str | None:
    """Why a recursive read of `path` (grep -r, diff -r, du) would reach a secret tree, or None.

    True when `path` is itself judged, or lies above a tree that a rule anchors at the top of
    the file system (`/etc` above `/etc/kubernetes/pki`, `/` above everything, `/proc` above
    every environment). Files with secret names under an ordinary tree (a `.pgpass` somewhere in
    `/var/lib/postgresql`) cannot be known without walking it; redaction is the net there.
    """
    found = path_verdict(path)
    if found is not None:
        return found.reason
    for text in {path, resolve(path) or path}:
        parts = tuple(p.lower() for p in _collapse(_split(_expand_home(text))))
        for rule in _RULES:
            if len(rule.pattern) < 2 or rule.raw_device or rule.pattern[0] in {"**", "<pid>"}:
                continue
            if len(parts) < len(rule.pattern) and all(
                piece != "**" and _component_matches(piece, part)
                for piece, part in zip(rule.pattern, parts, strict=False)
            ):
                shown = "/" + "/".join(rule.pattern).replace("<pid>", "*").replace("<other>", "*")
                return f"{path} holds {shown}: {rule.why}"
    return None


def worst_path_finding(args: Iterable[str], *, raw_devices: bool = True) -> PathFinding | None:
    """The most severe finding over `args` (deny first, then the first approval), or None.

    For a re-check just before a command runs (the executor): paths are resolved again, so a
    symlink created or swapped after the policy judged the text is judged by what it leads to
    now.
    """
    worst: PathFinding | None = None
    for arg in args:
        found = path_verdict(arg, raw_devices=raw_devices)
        if found is not None and (worst is None or _RANK[found.verdict] > _RANK[worst.verdict]):
            worst = found
            if found.verdict == "deny":
                break
    return worst
