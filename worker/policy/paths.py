"""Paths whose contents are secrets or raw memory/disks: reading them needs a human's approval.

The check is textual (the executor runs without a shell, so there is no expansion to predict),
tolerant of `..`, `//`, relative paths (commands run with `/` as working directory) and of
unexpanded globs (`/etc/shad*` is treated as if it could be `/etc/shadow`).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

# Exact file names that hold secrets wherever they are.
_SECRET_NAMES = {
    "shadow": "password hashes",
    "shadow-": "password hashes",
    "gshadow": "password hashes",
    "gshadow-": "password hashes",
    "opasswd": "old password hashes",
    "sudoers": "sudo rules",
    "environ": "a process's environment (often holds secrets)",
    "kcore": "kernel memory",
    "kmem": "kernel memory",
    "mem": "process or physical memory",
    "pagemap": "physical page mappings",
    ".env": "an environment file (often holds secrets)",
    ".netrc": "stored credentials",
    ".pgpass": "stored database passwords",
    ".my.cnf": "stored database passwords",
    ".git-credentials": "stored credentials",
    ".vault-token": "a Vault token",
    ".npmrc": "registry tokens",
    ".pypirc": "registry tokens",
    ".htpasswd": "password hashes",
    ".bash_history": "shell history (often holds secrets)",
    ".zsh_history": "shell history (often holds secrets)",
    ".mysql_history": "client history (often holds secrets)",
    ".psql_history": "client history (often holds secrets)",
    ".python_history": "interpreter history",
    "credentials": "cloud credentials",
    "kubeconfig": "a Kubernetes config with credentials",
    "admin.conf": "a Kubernetes admin config",
    "kubelet.conf": "a Kubernetes config with credentials",
    "krb5.keytab": "Kerberos keys",
    "token": "an access token",
    "master.key": "an encryption key",
    "secrets.yml": "application secrets",
    "secrets.yaml": "application secrets",
    "secrets.json": "application secrets",
    "wp-config.php": "database credentials",
    "docker-config.json": "registry credentials",
}

# File name patterns (lower-cased) that hold secrets.
_SECRET_NAME_PATTERNS = (
    ("shadow*", "password hashes"),
    ("gshadow*", "password hashes"),
    ("*secret*", "a secrets file"),
    ("*password*", "a password file"),
    ("*credential*", "stored credentials"),
    ("*-secrets", "stored secrets"),
    ("k3s.yaml", "a Kubernetes config with credentials"),
    ("id_rsa*", "an SSH private key"),
    ("id_dsa*", "an SSH private key"),
    ("id_ecdsa*", "an SSH private key"),
    ("id_ed25519*", "an SSH private key"),
    ("ssh_host_*_key", "an SSH host private key"),
    ("*.pem", "a key or certificate file (may hold a private key)"),
    ("*.key", "a private key"),
    ("*.p12", "a key store"),
    ("*.pfx", "a key store"),
    ("*.jks", "a key store"),
    ("*.keystore", "a key store"),
    ("*.keytab", "Kerberos keys"),
    ("*.kubeconfig", "a Kubernetes config with credentials"),
    (".env.*", "an environment file (often holds secrets)"),
    ("*.env", "an environment file (often holds secrets)"),
    ("*.ovpn", "a VPN profile with keys"),
    ("*.gpg", "encrypted secrets"),
)

# Directories whose contents are secrets.
_SECRET_DIRS = {
    ".ssh": "SSH keys",
    ".aws": "AWS credentials",
    ".kube": "Kubernetes credentials",
    ".gnupg": "PGP keys",
    ".docker": "registry credentials",
    ".azure": "Azure credentials",
    "gcloud": "Google Cloud credentials",
    ".password-store": "passwords",
    "sudoers.d": "sudo rules",
    "private": "private keys",
    "secrets": "mounted secrets",
    "system-connections": "network (Wi-Fi/VPN) secrets",
    "wireguard": "VPN keys",
}

# /proc/<pid>/<entry>/... gives access to another process's files or memory.
_PROC_PASSAGES = {
    "root": "another process's root filesystem",
    "cwd": "another process's working directory",
    "fd": "another process's open files",
    "map_files": "another process's mapped files",
    "mem": "process memory",
    "environ": "a process's environment (often holds secrets)",
}

_RAW_DEVICE = re.compile(
    r"^/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|dm-|md|loop|sr|nbd|rbd|zd|mapper/|disk/|port$|mem$|kmem$)"
)


def _glob_match(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or (
        any(c in name for c in "*?[") and fnmatch.fnmatchcase(pattern, name)
    )


def _name_reason(name: str) -> str | None:
    lowered = name.lower()
    for secret, why in _SECRET_NAMES.items():
        if _glob_match(lowered, secret):
            return why
    for pattern, why in _SECRET_NAME_PATTERNS:
        if fnmatch.fnmatchcase(lowered, pattern) or (
            any(c in lowered for c in "*?[") and fnmatch.fnmatchcase(pattern.lstrip("*"), lowered)
        ):
            return why
    return None


def _candidates(arg: str) -> list[str]:
    """The argument and the path-like values hidden in it (`--file=/x`, `-f/x`, `if=/x`)."""
    out = [arg]
    if "=" in arg:
        out.append(arg.split("=", 1)[1])
    if arg.startswith("-") and len(arg) > 2 and not arg.startswith("--"):
        out.append(arg[2:])
    return out


def sensitive_path_reason(arg: str, *, raw_devices: bool = True) -> str | None:
    """Why reading `arg` (a path, or an option carrying one) needs approval, or None.

    `raw_devices=False` for programs that only read metadata of a device (blkid, lsblk, df).
    """
    for candidate in _candidates(arg):
        reason = _path_reason(candidate, raw_devices=raw_devices)
        if reason:
            return reason
    return None


def _path_reason(text: str, *, raw_devices: bool) -> str | None:
    if not text:
        return None
    path = text
    if path.startswith("~"):
        path = "/home/user" + path[1:].partition("/")[1] + path[1:].partition("/")[2]
    looks_like_path = "/" in path or path.startswith(".")
    normal = posixpath.normpath(path if path.startswith("/") else "/" + path)
    parts = [p for p in normal.split("/") if p]
    if not parts:
        return None
    base = parts[-1]
    if looks_like_path:
        why = _name_reason(base)
        if why:
            return f"{text} looks like {why}"
        for part in parts:
            if not part.strip("*?"):
                continue  # a bare `*` directory could be anything; judge the rest of the path
            for secret_dir, why in _SECRET_DIRS.items():
                if _glob_match(part.lower(), secret_dir):
                    return f"{text} is under a directory of {why}"
        if parts[0] == "proc" and len(parts) >= 4:
            for part in parts[2:-1]:  # reading *through* root/, cwd/, fd/, map_files/
                for passage, why in _PROC_PASSAGES.items():
                    if _glob_match(part, passage):
                        return f"{text} reaches {why}"
        if (parts[0] == "run" or parts[:2] == ["var", "run"]) and "secrets" in parts:
            return f"{text} is a mounted secret"
        if raw_devices and (
            _RAW_DEVICE.match(normal) or (parts[0] == "dev" and any(c in base for c in "*?["))
        ):
            return f"{text} is a raw device or memory"
    else:
        # A bare word: only the unmistakable key file names count (a grep pattern like
        # 'shadow' is not a path, and `find -name '*.pem'` only lists names).
        lowered = base.lower()
        if any(c in lowered for c in "*?["):
            return None
        for pattern, why in _SECRET_NAME_PATTERNS:
            if pattern.startswith(("id_", "*.pem", "*.key", "*.kubeconfig", "*.p12", "*.pfx")) and (
                fnmatch.fnmatchcase(lowered, pattern)
            ):
                return f"{text} looks like {why}"
    return None
