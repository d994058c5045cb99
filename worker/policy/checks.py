"""Program-specific checks that need more than an option list (verbs, counts, scripts)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from worker.policy.invocation import (
    Finding,
    Invocation,
    approval,
    deny,
    long_option_matches,
    worst,
)
from worker.policy.paths import contains_secret_tree
from worker.policy.rules import Check, option_int
from worker.policy.scripts import awk_program_finding, sed_script_finding
from worker.policy.spec import words

# -- iproute2 (ip, tc, bridge): `prog [-opts] object [verb ...]`, abbreviations by prefix --------


@dataclass(frozen=True)
class IprouteGrammar:
    objects: Sequence[str]  # in the program's own matching order
    options_with_arg: frozenset[str]
    follow_objects: frozenset[str] = frozenset({"monitor"})
    secret_objects: frozenset[str] = frozenset()


_READ_VERBS = ("show", "list", "lst", "get", "help", "identify", "pids")
_EXACT_READ_VERBS = frozenset({"show", "list", "ls", "lst", "get"})
_WRITE_VERBS = (
    "add",
    "append",
    "attach",
    "allocate",
    "change",
    "chg",
    "deallocate",
    "del",
    "delete",
    "detach",
    "exec",
    "flush",
    "link",
    "prepend",
    "replace",
    "reset",
    "restore",
    "save",
    "set",
    "test",
    "update",
)

IP_GRAMMAR = IprouteGrammar(
    objects=(
        "address",
        "addrlabel",
        "maddress",
        "route",
        "rule",
        "neighbor",
        "neighbour",
        "ntable",
        "ntbl",
        "link",
        "l2tp",
        "fou",
        "ila",
        "macsec",
        "tunnel",
        "tuntap",
        "tap",
        "token",
        "tcpmetrics",
        "tcp_metrics",
        "monitor",
        "xfrm",
        "mroute",
        "mrule",
        "netns",
        "netconf",
        "vrf",
        "sr",
        "nexthop",
        "mptcp",
        "ioam",
        "stats",
        "help",
    ),
    options_with_arg=frozenset({"-f", "-family", "-n", "-netns", "-rc", "-rcvbuf", "-l", "-loops"}),
    secret_objects=frozenset({"xfrm"}),
)
TC_GRAMMAR = IprouteGrammar(
    objects=("qdisc", "class", "filter", "chain", "actions", "action", "monitor", "exec", "help"),
    options_with_arg=frozenset({"-n", "-netns", "-nm", "-cf", "-conf"}),
)
BRIDGE_GRAMMAR = IprouteGrammar(
    objects=("link", "fdb", "mdb", "vlan", "vni", "monitor", "help"),
    options_with_arg=frozenset({"-n", "-netns"}),
)


# Short forms everyone types, resolved here exactly as iproute2 resolves them (first match in
# its table order); any other abbreviation must be written in full.
_OBJECT_ALIASES = frozenset({"a", "addr", "r", "ro", "l", "n", "neigh", "ru", "q", "cl", "f"})


def _prefix_of(word: str, candidates: Sequence[str]) -> list[str]:
    return [c for c in candidates if c.startswith(word)]


def iproute_check(grammar: IprouteGrammar) -> Check:
    def check(inv: Invocation) -> Finding | None:
        args = inv.args
        index = 0
        while index < len(args) and args[index].startswith("-"):
            option = args[index].lstrip("-")
            if (option and "-batch".startswith("-" + option)) or option in {"batch", "b"}:
                return deny(f"{inv.program} -batch runs commands read from a file")
            if "-" + option in grammar.options_with_arg or args[index] in grammar.options_with_arg:
                index += 1
            index += 1
        if index >= len(args):
            return None  # `ip -V`, `ip -br` alone: usage or version
        word = args[index]
        matches = _prefix_of(word, grammar.objects)
        if not matches:
            return approval(f"{inv.program} {word}: unknown object")
        obj = matches[0]
        if word != obj and word not in _OBJECT_ALIASES:
            return approval(f"{inv.program} {word}: an abbreviation; write {obj!r} in full")
        if obj == "exec":
            return deny(f"{inv.program} exec runs another command")
        if obj in grammar.follow_objects:
            return approval(f"{inv.program} {obj} follows events until the timeout")
        if obj in grammar.secret_objects:
            return approval(f"{inv.program} {obj} can print IPsec keys")
        rest = args[index + 1 :]
        if not rest or rest[0].startswith("-"):
            return None  # the object alone means `show`
        verb = rest[0]
        reads = _prefix_of(verb, _READ_VERBS)
        writes = _prefix_of(verb, _WRITE_VERBS)
        if obj == "netns" and writes and "exec".startswith(verb):
            return deny(f"{inv.program} netns exec runs another command in a namespace")
        if reads and not writes:
            if verb in _EXACT_READ_VERBS:
                return None
            return approval(
                f"{inv.program} {obj} {verb}: an abbreviation; write {reads[0]!r} in full"
            )
        if writes and not reads:
            return deny(f"{inv.program} {obj} {verb}: changes network configuration")
        if writes and reads:
            return approval(
                f"{inv.program} {obj} {verb}: ambiguous abbreviation ({', '.join(reads + writes)});"
                " spell out `show`"
            )
        if obj in {"route", "address", "link", "neighbor", "neighbour", "rule"} and verb in {
            "dev",
            "table",
            "to",
            "from",
            "type",
            "up",
            "scope",
            "vrf",
            "master",
            "proto",
        }:
            return None  # selectors after an implicit `show`
        return approval(f"{inv.program} {obj} {verb}: not a known read-only form")

    return check


# -- netfilter ------------------------------------------------------------------------------------

_IPTABLES_WRITE_SHORT = {
    "A": "append",
    "D": "delete",
    "I": "insert",
    "R": "replace",
    "F": "flush",
    "Z": "zero counters",
    "N": "new chain",
    "X": "delete chain",
    "P": "policy",
    "E": "rename chain",
}
_IPTABLES_WRITE_LONG = (
    "--append",
    "--delete",
    "--insert",
    "--replace",
    "--flush",
    "--zero",
    "--new-chain",
    "--delete-chain",
    "--policy",
    "--rename-chain",
    "--modprobe",
    "--jump",
    "--goto",
)
_IPTABLES_READ_SHORT = set("LSnvxtwWC46hV")
_IPTABLES_READ_LONG = (
    "--list",
    "--list-rules",
    "--numeric",
    "--verbose",
    "--exact",
    "--line-numbers",
    "--table",
    "--wait",
    "--wait-interval",
    "--check",
    "--help",
    "--version",
    "--ipv4",
    "--ipv6",
)


def iptables_check(inv: Invocation) -> Finding | None:
    listing = False
    for arg in inv.args:
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            if any(w.startswith(name) for w in _IPTABLES_WRITE_LONG) and len(name) > 2:
                return deny(f"{inv.program} {arg}: changes or loads firewall rules")
            if not any(r.startswith(name) for r in _IPTABLES_READ_LONG):
                return approval(f"{inv.program} {arg}: not a known listing option")
            listing = listing or name in {"--list", "--list-rules"} or "--list".startswith(name)
        elif arg.startswith("-") and len(arg) > 1:
            for letter in arg[1:]:
                if letter in _IPTABLES_WRITE_SHORT:
                    return deny(
                        f"{inv.program} -{letter} ({_IPTABLES_WRITE_SHORT[letter]}) changes "
                        "firewall rules"
                    )
                if letter in "jgm":
                    return deny(f"{inv.program} -{letter}: rule-building option; changes rules")
                if letter not in _IPTABLES_READ_SHORT:
                    return approval(f"{inv.program} -{letter}: not a known listing option")
                listing = listing or letter in "LSC"
                if letter == "t":
                    break
    if not listing:
        return approval(f"{inv.program}: only listing (-L, -S) is known read-only")
    return None


def nft_check(inv: Invocation) -> Finding | None:
    if inv.has("-f", "--file", "-i", "--interactive"):
        return deny(f"{inv.program} -f/-i runs a ruleset script or an interactive shell")
    if not inv.positionals:
        return approval(f"{inv.program} with no command reads commands from stdin")
    verb = inv.positionals[0]
    if verb in {"list", "describe"}:
        return None
    if verb == "monitor":
        return approval("nft monitor follows events until the timeout")
    return deny(f"nft {verb}: changes firewall rules")


# -- process and resource viewers ----------------------------------------------------------------


def top_check(inv: Invocation) -> Finding | None:
    if not inv.has("-b"):
        return deny(f"{inv.program} without -b is interactive (no terminal here); use `-b -n 1`")
    iterations = option_int(inv, "-n")
    if iterations is None:
        return approval(f"{inv.program} -b without -n runs until the timeout; add `-n 1`")
    if iterations > 5 or iterations < 1:
        return approval(f"{inv.program} -n {iterations:g}: more than 5 iterations")
    delay = option_int(inv, "-d") or 3.0
    if delay * iterations > 60:
        return approval(f"{inv.program}: {iterations:g} iterations x {delay:g} s exceeds 60 s")
    return None


def ping_check(inv: Invocation) -> Finding | None:
    if inv.has("-f"):
        return deny("ping -f floods the network")
    interval = option_int(inv, "-i")
    if interval is not None and interval < 0.2:
        return deny(f"ping -i {interval:g}: an interval below 0.2 s floods the network")
    preload = option_int(inv, "-l")
    if preload is not None and preload > 3:
        return deny(f"ping -l {preload:g}: preloading sends a burst of packets")
    findings: list[Finding | None] = []
    count = option_int(inv, "-c")
    if count is None:
        findings.append(approval("ping without -c runs until the timeout; use -c 3"))
    elif count < 1 or count > 5:
        findings.append(approval(f"ping -c {count:g}: at most 5 packets without approval"))
    deadline = option_int(inv, "-w")
    if deadline is not None and deadline > 30:
        findings.append(approval(f"ping -w {deadline:g}: deadline above 30 s"))
    if inv.has("-b"):
        findings.append(approval("ping -b pings a broadcast address"))
    if len(inv.positionals) != 1:
        findings.append(approval("ping takes exactly one destination"))
    return worst(findings)


def arping_check(inv: Invocation) -> Finding | None:
    if inv.has("-U", "-A"):
        return deny("arping -U/-A sends unsolicited ARP that rewrites neighbours' caches")
    count = option_int(inv, "-c")
    if count is None or count > 5 or count < 1:
        return approval("arping needs -c of at most 5")
    return None


def mtr_check(inv: Invocation) -> Finding | None:
    report = inv.has("-r", "--report", "-w", "--report-wide", "-j", "--json", "-C", "--csv")
    report = report or inv.has("-x", "--xml", "-l", "--raw", "--split", "-p")
    if not report:
        return deny("mtr without --report is interactive (no terminal here); use `mtr -r -c 5`")
    cycles = option_int(inv, "-c", "--report-cycles")
    if cycles is not None and cycles > 10:
        return approval(f"mtr -c {cycles:g}: more than 10 cycles")
    return None


def free_check(inv: Invocation) -> Finding | None:
    if inv.has("-s", "--seconds") and not inv.has("-c", "--count"):
        return approval("free -s without -c repeats until the timeout")
    return None


def iotop_check(inv: Invocation) -> Finding | None:
    if not inv.has("-b", "--batch"):
        return deny("iotop without -b is interactive (no terminal here); use `-b -n 1`")
    iterations = option_int(inv, "-n", "--iter")
    if iterations is None or iterations > 5:
        return approval("iotop -b needs -n of at most 5")
    return None


def slabtop_check(inv: Invocation) -> Finding | None:
    if not inv.has("-o", "--once"):
        return deny("slabtop without -o is interactive (no terminal here); use `slabtop -o`")
    return None


# -- text filters with embedded programs ---------------------------------------------------------


def sed_check(inv: Invocation) -> Finding | None:
    scripts = inv.values("-e", "--expression")
    if inv.has("-f", "--file"):
        return approval("sed -f: the script file's commands cannot be checked")
    if not scripts:
        if not inv.positionals:
            return approval("sed without a script")
        scripts = [inv.positionals[0]]
    return sed_script_finding("\n".join(scripts))


def awk_check(inv: Invocation) -> Finding | None:
    if any(o.name == "-W" or o.name.startswith("-W") for o in inv.options):
        return deny(
            "awk -W passes implementation options (source=, load=, exec=, dump-variables=) "
            "that run unchecked code or write files; write the program as the operand"
        )
    programs = inv.values("-e", "--source")
    if inv.has("-f", "--file", "-E", "--exec"):
        return approval("awk -f: the program file cannot be checked")
    if not programs:
        if not inv.positionals:
            return approval("awk without a program")
        programs = [inv.positionals[0]]
    return worst(awk_program_finding(program) for program in programs)


_FIND_ACTIONS = {
    "-delete": "deletes files",
    "-exec": "runs a command per file",
    "-execdir": "runs a command per file",
    "-ok": "runs a command per file",
    "-okdir": "runs a command per file",
    "-fprint": "writes a file",
    "-fprint0": "writes a file",
    "-fprintf": "writes a file",
    "-fls": "writes a file",
}


def find_check(inv: Invocation) -> Finding | None:
    for arg in inv.args:
        if arg in _FIND_ACTIONS:
            return deny(f"find {arg} {_FIND_ACTIONS[arg]}")
        if arg.startswith(("-exec", "-ok", "-fprint", "-fls", "-delete")):
            return deny(f"find {arg}: a find action that runs commands, writes or deletes")
    return None


# -- system state: read forms only ---------------------------------------------------------------


def sysctl_check(inv: Invocation) -> Finding | None:
    if any("=" in p for p in inv.positionals):
        return deny("sysctl key=value sets a kernel parameter")
    return None


def date_check(inv: Invocation) -> Finding | None:
    for operand in inv.positionals:
        if not operand.startswith("+"):
            return deny(f"date {operand}: a date operand sets the system clock")
    return None


def mount_check(inv: Invocation) -> Finding | None:
    listing = {"-l", "--show-labels", "-t", "--types", "-h", "--help", "-V", "--version"}
    if inv.positionals or any(o.name not in listing for o in inv.options):
        return deny("mount with arguments mounts or remounts a filesystem; use `findmnt`")
    return None


def list_only_check(*allowed: str, reason: str) -> Check:
    def check(inv: Invocation) -> Finding | None:
        if not inv.options or any(o.name not in allowed for o in inv.options):
            return deny(f"{inv.program}: {reason}")
        return None

    return check


def crontab_check(inv: Invocation) -> Finding | None:
    if inv.has("-l") and not inv.positionals and all(o.name in {"-l", "-u"} for o in inv.options):
        return None
    return deny("crontab other than -l installs, edits or removes scheduled jobs")


def hostnamectl_check(inv: Invocation) -> Finding | None:
    if not inv.positionals:
        return None
    verb, rest = inv.positionals[0], inv.positionals[1:]
    if verb == "status":
        return None
    if verb in {"hostname", "icon-name", "chassis", "deployment", "location"} and not rest:
        return None
    return deny(f"hostnamectl {verb}: changes the host's identity")


def service_check(inv: Invocation) -> Finding | None:
    if inv.has("--status-all") and not inv.positionals:
        return None
    if inv.positionals and ("/" in inv.positionals[0] or ".." in inv.positionals[0]):
        return deny(f"service {inv.positionals[0]}: the service script is run by path")
    if len(inv.positionals) == 2 and inv.positionals[1] == "status":
        return None
    if len(inv.positionals) >= 2:
        return deny(f"service {inv.positionals[1]}: starts, stops or changes a service")
    return approval("service: only `service NAME status` and `--status-all` are read-only")


_ETHTOOL_READ = {
    "-a",
    "-c",
    "-d",
    "-e",
    "-g",
    "-i",
    "-k",
    "-l",
    "-m",
    "-n",
    "-P",
    "-S",
    "-T",
    "-u",
    "-x",
    "--show-pause",
    "--show-coalesce",
    "--register-dump",
    "--eeprom-dump",
    "--show-ring",
    "--driver",
    "--show-features",
    "--show-offload",
    "--show-channels",
    "--dump-module-eeprom",
    "--module-info",
    "--show-nfc",
    "--show-ntuple",
    "--show-permaddr",
    "--statistics",
    "--show-time-stamping",
    "--show-rxfh-indir",
    "--show-rxfh",
    "--show-eee",
    "--show-fec",
    "--show-priv-flags",
    "--phy-statistics",
    "--json",
    "--debug",
    "-h",
    "--help",
    "--version",
    "--all-groups",
    "--groups",
}


def ethtool_check(inv: Invocation) -> Finding | None:
    for option in inv.options:
        if option.name not in _ETHTOOL_READ:
            return deny(f"ethtool {option.name}: changes, resets or tests the interface")
    if len(inv.positionals) > 1:
        return approval("ethtool: extra arguments after the device")
    return None


def ifconfig_check(inv: Invocation) -> Finding | None:
    if len(inv.positionals) > 1:
        return deny("ifconfig with settings changes an interface")
    return None


def route_check(inv: Invocation) -> Finding | None:
    if inv.positionals and inv.positionals[0] in {"add", "del", "delete", "flush"}:
        return deny(f"route {inv.positionals[0]} changes the routing table")
    if inv.positionals:
        return approval("route: only listing (`route -n`) is known read-only")
    return None


def arp_check(inv: Invocation) -> Finding | None:
    if inv.has("-s", "--set", "-d", "--delete", "-f", "--file"):
        return deny("arp -s/-d/-f changes the neighbour table")
    return None


def conntrack_check(inv: Invocation) -> Finding | None:
    if inv.has("-D", "--delete", "-F", "--flush", "-I", "--create", "-U", "--update"):
        return deny("conntrack -D/-F/-I/-U changes connection tracking state")
    if inv.has("-E", "--event"):
        return approval("conntrack -E follows events until the timeout")
    if inv.has("-L", "--dump", "-S", "--stats", "-C", "--count", "-G", "--get"):
        return None
    return approval("conntrack: only -L, -S, -C and -G are known read-only")


_CONTAINER_READ = {"ps", "images", "info", "version", "top", "stats", "logs", "events", "port"}
_CONTAINER_WRITE = {
    "run",
    "exec",
    "rm",
    "rmi",
    "kill",
    "stop",
    "start",
    "restart",
    "pause",
    "unpause",
    "cp",
    "commit",
    "build",
    "push",
    "pull",
    "load",
    "save",
    "import",
    "export",
    "create",
    "update",
    "prune",
    "attach",
    "rename",
    "tag",
    "login",
    "logout",
    "system",
    "volume",
    "network",
    "container",
    "image",
    "compose",
    "swarm",
    "service",
    "stack",
    "secret",
    "plugin",
    "wait",
}


def container_check(inv: Invocation) -> Finding | None:
    if not inv.positionals:
        return approval(f"{inv.program} without a subcommand")
    verb = inv.positionals[0]
    if verb in _CONTAINER_WRITE:
        return deny(f"{inv.program} {verb}: runs, changes or moves containers or images")
    if verb not in _CONTAINER_READ:
        return approval(f"{inv.program} {verb}: not a known read-only subcommand")
    if verb in {"logs", "events"} and inv.has("-f", "--follow"):
        return approval(f"{inv.program} {verb} -f follows until the timeout")
    if verb == "events" and not inv.has("--until"):
        return approval(f"{inv.program} events without --until follows until the timeout")
    if verb == "stats" and not inv.has("--no-stream"):
        return approval(f"{inv.program} stats without --no-stream runs until the timeout")
    return None


_KUBECTL_WRITE = {
    "exec",
    "delete",
    "apply",
    "create",
    "replace",
    "patch",
    "edit",
    "scale",
    "rollout",
    "drain",
    "cordon",
    "uncordon",
    "taint",
    "label",
    "annotate",
    "run",
    "cp",
    "port-forward",
    "proxy",
    "attach",
    "debug",
    "set",
    "autoscale",
    "expose",
    "certificate",
}


def kubectl_check(inv: Invocation) -> Finding | None:
    verb = inv.positionals[0] if inv.positionals else ""
    if verb in _KUBECTL_WRITE:
        return deny(f"kubectl {verb}: changes the cluster or runs code in it")
    return approval("kubectl reaches the cluster API with this host's credentials")


def trace_check(inv: Invocation) -> Finding | None:
    if inv.has("-o", "--output"):
        return deny(f"{inv.program} -o writes a file")
    if any(token in v for v in inv.values("-e") for token in ("inject", "fault", "kill")):
        return deny(f"{inv.program} -e inject/fault tampers with the traced process")
    if inv.positionals:
        return deny(f"{inv.program} COMMAND runs another command (wrapper)")
    return approval(f"{inv.program} -p slows the traced process a lot and shows its data")


def tcpdump_check(inv: Invocation) -> Finding | None:
    if inv.has("-w", "-z", "-W", "-C", "-G"):
        return deny("tcpdump -w/-z writes capture files or runs a command on them")
    return approval("tcpdump captures packet contents (may include secrets)")


def perf_check(inv: Invocation) -> Finding | None:
    verb = inv.positionals[0] if inv.positionals else ""
    if verb in {"record", "script", "probe", "inject", "archive", "buildid-cache", "daemon"}:
        return deny(f"perf {verb}: writes files, creates probes or runs scripts")
    if inv.has("-o", "--output"):
        return deny("perf -o writes a file")
    if len(inv.positionals) > 1 and verb not in {"list", "help", "report", "annotate"}:
        return deny(f"perf {verb} COMMAND runs another command (wrapper)")
    return approval("perf samples or wraps processes; needs a human's approval")


def bpftrace_check(inv: Invocation) -> Finding | None:
    if inv.has("--unsafe", "-c", "-o"):
        return deny("bpftrace --unsafe/-c/-o runs commands or writes files")
    return approval("bpftrace runs an arbitrary kernel program; use the probe catalog instead")


def openssl_check(inv: Invocation) -> Finding | None:
    if any(o.name in {"-out", "-keyout"} for o in inv.options) or "-out" in inv.args:
        return deny("openssl -out writes a file")
    return approval("openssl can connect out and handle keys; needs a human's approval")


def compression_check(inv: Invocation) -> Finding | None:
    if inv.has("-c", "--stdout", "--to-stdout", "-t", "--test", "-l", "--list"):
        return None
    return deny(f"{inv.program} without -c compresses or decompresses in place (writes, deletes)")


_TAR_WRITE_LETTERS = set("xcruA")
_TAR_DANGEROUS_LONG = (
    "--to-command",
    "--use-compress-program",
    "--checkpoint-action",
    "--info-script",
    "--new-volume-script",
    "--rsh-command",
    "--rmt-command",
    "--extract",
    "--get",
    "--create",
    "--append",
    "--update",
    "--delete",
    "--concatenate",
    "--catenate",
)


def tar_check(inv: Invocation) -> Finding | None:
    for index, arg in enumerate(inv.args):
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            if any(long_option_matches(name, known) for known in _TAR_DANGEROUS_LONG):
                return deny(f"tar {name} writes files or runs a command")
        elif arg.startswith("-") or index == 0:
            letters = set(arg.lstrip("-"))
            if letters & _TAR_WRITE_LETTERS:
                return deny("tar extract/create/append writes files")
            if letters & set("IFM"):
                return deny("tar -I/-F runs a compression or volume script")
    return approval("tar: reading archives is not a first-minutes diagnostic")


def zstd_like_check(inv: Invocation) -> Finding | None:
    if inv.has("-o", "--output"):
        return deny(f"{inv.program} -o writes a file")
    return compression_check(inv)


def dpkg_check(inv: Invocation) -> Finding | None:
    read = {"-l", "--list", "-L", "--listfiles", "-s", "--status", "-S", "--search", "-p"}
    read |= {"--print-avail", "--get-selections", "--print-architecture", "--version", "-V"}
    read |= {"--verify", "--audit", "-C", "--help"}
    if inv.options and all(o.name in read for o in inv.options):
        return None
    return deny("dpkg other than listing or querying installs, removes or configures packages")


_RPM_QUERY_LONG = {
    "--query",
    "--all",
    "--info",
    "--list",
    "--file",
    "--configfiles",
    "--docfiles",
    "--requires",
    "--provides",
    "--whatprovides",
    "--whatrequires",
    "--changelog",
    "--last",
    "--verify",
    "--state",
    "--package",
}
_RPM_QUERY_SHORT = set("qailfcdRpVvs")


def rpm_check(inv: Invocation) -> Finding | None:
    first = inv.args[0] if inv.args else ""
    if not (first.startswith("-q") or first in {"--query", "-V", "--verify"}):
        return deny("rpm other than -q installs, erases or changes packages")
    for arg in inv.args:
        if arg.startswith("--"):
            if arg.split("=", 1)[0] not in _RPM_QUERY_LONG:
                return deny(f"rpm {arg}: not a plain query option (macros can run commands)")
        elif arg.startswith("-") and not set(arg[1:]) <= _RPM_QUERY_SHORT:
            return deny(f"rpm {arg}: not a plain query option")
    return None


def prlimit_check(inv: Invocation) -> Finding | None:
    if inv.positionals:
        return deny("prlimit COMMAND runs another command (wrapper)")
    reading = {"-p", "--pid", "-o", "--output"}
    if any(o.value is not None for o in inv.options if o.name not in reading):
        return deny("prlimit with a value changes a process's limits")
    return None


def numactl_check(inv: Invocation) -> Finding | None:
    if inv.has("-H", "--hardware", "-s", "--show") and not inv.positionals:
        return None
    return deny("numactl with a command runs another command (wrapper)")


def lsof_check(inv: Invocation) -> Finding | None:
    if inv.has("-r") or any(p.startswith("+r") for p in inv.positionals):
        return approval("lsof -r/+r repeats until the timeout")
    return None


def hwclock_check(inv: Invocation) -> Finding | None:
    read = {"-r", "--show", "--get", "--verbose", "-v", "--test", "--utc", "-u", "--localtime"}
    read |= {"--help", "-h", "-V", "--version", "--debug"}
    if all(o.name in read for o in inv.options):
        return None
    return deny("hwclock other than --show sets the hardware or system clock")


def firewall_cmd_check(inv: Invocation) -> Finding | None:
    for option in inv.options:
        name = option.name
        if name.startswith(("--list-", "--get-", "--query-", "--info-")) or name in {
            "--state",
            "--zone",
            "--permanent",
            "--help",
            "--version",
        }:
            continue
        return deny(f"firewall-cmd {name}: changes the firewall")
    return None


def ufw_check(inv: Invocation) -> Finding | None:
    if inv.positionals and inv.positionals[0] in {"status", "show", "version"}:
        return None
    verb = inv.positionals[0] if inv.positionals else ""
    return deny(f"ufw {verb}: changes the firewall")


# -- recursive readers over trees that hold secrets ----------------------------------------------


def _contains_secret_tree(path: str) -> bool:
    return contains_secret_tree(path) is not None


def grep_check(inv: Invocation) -> Finding | None:
    recursive = inv.has("-r", "-R", "--recursive", "--dereference-recursive") or any(
        v == "recurse" for v in inv.values("-d", "--directories")
    )
    if inv.program == "rg":
        recursive = True
    if not recursive:
        return None
    patterns_given = inv.has("-e", "--regexp", "-f", "--file")
    paths = inv.positionals if patterns_given else inv.positionals[1:]
    for path in paths or ["."]:
        if _contains_secret_tree(path):
            return approval(
                f"{inv.program} -r {path}: a recursive read of a tree that holds secrets; "
                "narrow it to the directory you need"
            )
    return None


def diff_check(inv: Invocation) -> Finding | None:
    if inv.has("-r", "--recursive"):
        for path in inv.positionals:
            if _contains_secret_tree(path):
                return approval(f"diff -r {path}: a recursive read of a tree that holds secrets")
    return None


def swapon_check(inv: Invocation) -> Finding | None:
    listing = {"--show", "-s", "--summary", "--noheadings", "--raw", "--bytes", "-h", "--help"}
    if inv.positionals or any(o.name not in listing for o in inv.options):
        return deny("swapon with a device or flags activates swap")
    return None


def tune2fs_check(inv: Invocation) -> Finding | None:
    if [o.name for o in inv.options] == ["-l"]:
        return None
    return deny("tune2fs other than -l changes filesystem parameters")


def coredumpctl_check(inv: Invocation) -> Finding | None:
    if inv.has("-o", "--output"):
        return deny("coredumpctl -o writes a core file")
    verb = inv.positionals[0] if inv.positionals else "list"
    if verb in {"list", "info"}:
        return None
    if verb in {"debug", "gdb", "dump"}:
        return deny(f"coredumpctl {verb} runs a debugger or dumps a core")
    return approval(f"coredumpctl {verb}: not a known read-only subcommand")


def cgtop_check(inv: Invocation) -> Finding | None:
    if not inv.has("-b", "--batch"):
        return deny("systemd-cgtop without -b is interactive (no terminal here); use `-b -n 1`")
    iterations = option_int(inv, "-n", "--iterations")
    if iterations is None or iterations > 5:
        return approval("systemd-cgtop -b needs -n of at most 5")
    return None


def zramctl_check(inv: Invocation) -> Finding | None:
    if inv.positionals or inv.has("-s", "--size", "-a", "--algorithm", "-r", "--reset", "-f"):
        return deny("zramctl with a device or settings configures or resets zram")
    return None


_SMARTCTL_WRITE = {
    "-t": "starts a self-test",
    "--test": "starts a self-test",
    "-X": "aborts a self-test",
    "--abort": "aborts a self-test",
    "-s": "changes SMART settings",
    "--smart": "changes SMART settings",
    "-o": "changes offline testing",
    "--offlineauto": "changes offline testing",
    "-S": "changes attribute autosave",
    "--saveauto": "changes attribute autosave",
    "--set": "changes device settings",
}


def smartctl_check(inv: Invocation) -> Finding | None:
    for option in inv.options:
        for known, why in _SMARTCTL_WRITE.items():
            if long_option_matches(option.name, known):
                return deny(f"smartctl {option.name} {why}")
    return None


def ps_check(inv: Invocation) -> Finding | None:
    for bsd in inv.positionals:  # BSD-style option clusters: `aux`, `axe`
        if bsd.isalpha() and "e" in bsd:
            return approval("ps e shows every process's environment (often holds secrets)")
    return None


_RESOLVECTL_LINK_SETTINGS = {
    "dns",
    "domain",
    "llmnr",
    "mdns",
    "dnssec",
    "dnsovertls",
    "nta",
    "default-route",
}
_RESOLVECTL_READ = {
    "status",
    "query",
    "service",
    "openpgp",
    "tlsa",
    "statistics",
    "show-cache",
    "show-server-state",
}


def resolvectl_check(inv: Invocation) -> Finding | None:
    if not inv.positionals:
        return None
    verb, rest = inv.positionals[0], inv.positionals[1:]
    if verb in _RESOLVECTL_READ:
        return None
    if verb in _RESOLVECTL_LINK_SETTINGS:
        if len(rest) <= 1:
            return None  # shows the setting of one link (or of all)
        return deny(f"resolvectl {verb} LINK VALUE changes the link's resolver settings")
    if verb in {"revert", "log-level"}:
        return deny(f"resolvectl {verb} changes resolver settings")
    return approval(f"resolvectl {verb}: not a known read-only subcommand")


# -- storage, firmware, D-Bus and data stores: the destructive verbs are denied outright ----------


def verb_check(
    deny_verbs: frozenset[str],
    reason: str,
    *,
    case_insensitive: bool = False,
    anywhere: bool = False,
) -> Check:
    """Deny when the verb (the first operand, or with `anywhere` any operand) is destructive."""

    def check(inv: Invocation) -> Finding | None:
        words = inv.positionals if anywhere else inv.positionals[:1]
        for word in words:
            key = word.upper() if case_insensitive else word
            if key in deny_verbs:
                return deny(f"{inv.program} {word}: {reason}")
        return None

    return check


DMSETUP_DESTRUCTIVE = words(
    "remove remove_all clear load reload suspend resume create rename message wipe_table "
    "mknodes udevcomplete udevcomplete_all udevcookies setgeometry splitname"
)
ZFS_DESTRUCTIVE = words(
    "destroy rollback rename promote set inherit mount unmount umount send receive recv create "
    "clone snapshot snap upgrade allow unallow share unshare hold release redact change-key "
    "load-key unload-key bookmark"
)
ZPOOL_DESTRUCTIVE = words(
    "destroy export import labelclear offline online clear detach attach replace remove add "
    "create split scrub trim set upgrade reguid resilver initialize reopen checkpoint sync "
    "wait"
)
REDIS_DESTRUCTIVE = words(
    "FLUSHALL FLUSHDB CONFIG SHUTDOWN DEBUG SLAVEOF REPLICAOF MIGRATE MODULE SCRIPT EVAL EVALSHA "
    "EVAL_RO FCALL FUNCTION DEL UNLINK SET SETEX MSET HSET LPUSH RPUSH SADD ZADD EXPIRE RENAME "
    "MOVE SWAPDB RESTORE BGSAVE SAVE BGREWRITEAOF ACL CLIENT FAILOVER CLUSTER"
)
ETCD_DESTRUCTIVE = words(
    "del put txn compact compaction defrag lease member snapshot auth user role move-leader "
    "alarm downgrade elect lock make-mirror"
)
_BUS_POWER_OR_UNIT = (
    "poweroff",
    "reboot",
    "halt",
    "suspend",
    "hibernate",
    "kexec",
    "startunit",
    "stopunit",
    "restartunit",
    "killunit",
    "reloadunit",
    "enableunitfiles",
    "disableunitfiles",
    "maskunitfiles",
    "sethostname",
    "settime",
    "setntp",
    "terminate",
)


def busctl_check(inv: Invocation) -> Finding | None:
    verb = inv.positionals[0] if inv.positionals else ""
    text = " ".join(inv.positionals).lower()
    if verb in {"call", "set-property", "emit"} or any(w in text for w in _BUS_POWER_OR_UNIT):
        return deny(f"busctl {verb}: calls methods or sets properties (power, units, clock)")
    if verb in {"capture", "monitor"}:
        return approval(f"busctl {verb} follows bus traffic until the timeout")
    return None


def efibootmgr_check(inv: Invocation) -> Finding | None:
    listing = {"-v", "--verbose", "-u", "--unicode", "-q", "--quiet"}
    if inv.positionals or any(o.name not in listing for o in inv.options):
        return deny("efibootmgr other than listing changes or deletes boot entries")
    return None


def sgdisk_check(inv: Invocation) -> Finding | None:
    listing = {"-p", "--print", "-i", "--info", "-v", "--verify", "-O", "--print-mbr"}
    if any(o.name not in listing for o in inv.options) or not inv.options:
        return deny("sgdisk other than -p/-i/-v zaps, creates or changes partitions")
    return None


def getent_check(inv: Invocation) -> Finding | None:
    database = inv.positionals[0] if inv.positionals else ""
    if database in {"shadow", "gshadow"}:
        return deny(f"getent {database} prints password hashes")
    if database and database not in {
        "passwd",
        "group",
        "hosts",
        "ahosts",
        "ahostsv4",
        "ahostsv6",
        "services",
        "protocols",
        "networks",
        "netgroup",
        "initgroups",
        "ethers",
        "rpc",
        "aliases",
    }:
        return approval(f"getent {database}: not a known database")
    return None


def nft_joined_check(inv: Invocation) -> Finding | None:
    """nft joins its arguments into one script: judge the joined text, not the words."""
    joined = " ".join(inv.positionals)
    for mark in (";", "\n", "{", "}", "include", "define", "$"):
        if mark in joined:
            return deny(f"nft joins its arguments into one script; {mark!r} in it starts more")
    return nft_check(inv)


def nstat_check(inv: Invocation) -> Finding | None:
    if not inv.has("-s", "--noupdate"):
        return approval("nstat without -s updates its history file (/tmp/.nstat.u*); add -s")
    return None


_JQ_BUILTINS = words(
    "select map map_values keys keys_unsorted length has in type to_entries from_entries "
    "with_entries values sort sort_by group_by unique unique_by min max min_by max_by add any "
    "all first last reverse contains inside test startswith endswith tostring tonumber not and "
    "or if then elif else end as empty null true false flatten index rindex indices join split "
    "utf8bytelength del paths leaf_paths tojson fromjson floor ceil round sqrt fabs abs "
    "objects arrays strings numbers booleans nulls iterables scalars tostream isempty error "
    "ascii_downcase ascii_upcase ltrimstr rtrimstr todate fromdate now strftime mktime gmtime "
    "dateadd datesub date capture match sub gsub splits getpath has_key label reduce foreach "
    "try catch"
)
_JQ_WORD = re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*|@[A-Za-z0-9_]+")


def jq_check(inv: Invocation) -> Finding | None:
    """jq filters: field access and a fixed set of builtins; no env, inputs, loops or formats."""
    program = inv.positionals[0] if inv.positionals else "."
    if "\\(" in program:
        return approval("jq string interpolation `\\(...)` is outside the allowed subset")
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', '""', program)
    for match in _JQ_WORD.finditer(stripped):
        word = match.group()
        start = match.start()
        if start > 0 and stripped[start - 1] == ".":
            continue  # `.name`: a field, not a builtin
        if word.startswith("@"):
            return approval(f"jq {word}: an output format (encodes, defeats redaction)")
        if word.startswith("$"):
            if word in {"$ENV", "$__loc__", "$__prog_args"}:
                return approval(f"jq {word}: reads the environment or the program")
            continue
        if word not in _JQ_BUILTINS:
            return approval(
                f"jq {word}: outside the allowed builtins (env, input, range, repeat, recurse, "
                "limit, until, while and friends can read more or run unbounded)"
            )
    return None
