"""What each program may keep inside the sandbox: capabilities, IP sockets, new processes.

The seam the policy extends: a program not named here gets `DEFAULT` (read files, nothing
else). Everything a profile grants is still refused by the policy first; a profile only says
what the kernel will let the program do when the policy let it run. docs/sandbox.md explains
each capability.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Capability = Literal["dac_read_search", "sys_ptrace", "syslog", "net_admin"]


class Profile(BaseModel):
    """One program's allowances. Fields map one-to-one to the helper's options."""

    model_config = ConfigDict(frozen=True)

    caps: frozenset[Capability] = frozenset({"dac_read_search"})
    ip_sockets: bool = False
    """AF_INET/AF_INET6 sockets (never raw or packet ones)."""
    tcp: bool = False
    """TCP connect/bind not restricted by Landlock (only with `ip_sockets`)."""
    unix_sockets: bool = False
    """AF_UNIX sockets: talking to local daemons (systemd, container engines, nscd). Without
    them a program cannot reach docker.sock or systemd's private socket whatever its argv."""
    fork: bool = False
    """New processes (fork, vfork, clone without CLONE_THREAD). Threads are always allowed."""
    device_ioctls: bool = False
    """ioctl on device files (Landlock ABI >= 5 refuses them otherwise)."""
    open_read_write: bool = False
    """O_RDWR opens (never create, truncate, append): lsof opens /dev/null so and exits without
    it. Writes to regular files still fail with EFBIG (RLIMIT_FSIZE 0)."""
    landlock: bool = True
    """Off only where Landlock breaks the job: a Landlock domain may not look into processes
    outside it (`/proc/<pid>/fd` of others), which `ss -p`, `lsof` and `fuser` exist to do."""


DEFAULT = Profile()
_READ = frozenset({"dac_read_search"})
# /proc/<pid>/fd, /io, /maps, /cwd, /wchan (ps's WCHAN: where a D-state process waits) of
# other root processes need ptrace read access, which a
# trimmed root process only has with CAP_SYS_PTRACE (ptrace itself stays refused by seccomp).
# Landlock forbids exactly that (ptrace access checks across domains), so it is off for them:
# seccomp still refuses every write, and their argv is the policy's.
_PROCESS_FDS = Profile(caps=_READ | {"sys_ptrace"}, landlock=False)
# nfnetlink (nft, iptables-nft, conntrack) answers even dumps only with CAP_NET_ADMIN; with it
# the same socket could change rules, which only the policy prevents (docs/sandbox.md).
_NETFILTER = Profile(caps=_READ | {"net_admin"})
# Interface ioctls (SIOCGIF*) go through an AF_INET datagram socket; Landlock still denies TCP.
_INTERFACE_IOCTLS = Profile(ip_sockets=True)
# Tools whose job is to ask another host: IP sockets, TCP too. Where they may go is the policy's.
_NETWORK = Profile(ip_sockets=True, tcp=True)

PROFILES: dict[str, Profile] = {
    "dmesg": Profile(caps=_READ | {"syslog"}),
    **dict.fromkeys(
        ("ss", "netstat", "fuser", "pidstat", "pmap", "pwdx", "lslocks", "lsns", "ps"),
        _PROCESS_FDS,
    ),
    "lsof": Profile(caps=_READ | {"sys_ptrace"}, open_read_write=True, fork=True, landlock=False),
    **dict.fromkeys(
        (
            "nft",
            "iptables",
            "ip6tables",
            "iptables-nft",
            "ip6tables-nft",
            "iptables-save",
            "ip6tables-save",
            "conntrack",
            "ebtables",
        ),
        _NETFILTER,
    ),
    "ethtool": Profile(caps=_READ | {"net_admin"}, ip_sockets=True),
    **dict.fromkeys(("ifconfig", "arp", "route", "iwconfig"), _INTERFACE_IOCTLS),
    **dict.fromkeys(
        (
            "dig",
            "delv",
            "host",
            "nslookup",
            "drill",
            "openssl",
            "kubectl",
            "tracepath",
            "traceroute",
            "traceroute6",
            "mtr",
            "ping",
            "ping6",
        ),
        _NETWORK,
    ),
    # Clients of local daemons (D-Bus, systemd's and container engines' sockets).
    **dict.fromkeys(
        (
            "systemctl",
            "journalctl",
            "loginctl",
            "timedatectl",
            "hostnamectl",
            "localectl",
            "systemd-analyze",
            "systemd-cgtop",
            "coredumpctl",
            "resolvectl",
            "busctl",
            "docker",
            "podman",
            "crictl",
            "nerdctl",
            "firewall-cmd",
        ),
        Profile(unix_sockets=True),
    ),
    "chronyc": Profile(unix_sockets=True, ip_sockets=True, tcp=True),
    "getent": Profile(unix_sockets=True, ip_sockets=True, tcp=True),
    "service": Profile(unix_sockets=True, fork=True),
    # Shell-script wrappers and programs that run helpers (tar -z runs gzip).
    # sar runs sadc.
    **dict.fromkeys(("zgrep", "tar", "sar"), Profile(fork=True)),
    **dict.fromkeys(
        ("hwclock", "blkid", "tune2fs", "dumpe2fs", "smartctl", "nvme"), Profile(device_ioctls=True)
    ),
}


def profile_for(program: str) -> Profile:
    """The profile of `program` (a name or a path; its basename decides)."""
    return PROFILES.get(program.rsplit("/", 1)[-1], DEFAULT)
