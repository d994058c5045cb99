"""Firewall, routes and interfaces: nothing changes inside a network namespace the test made,
whether the command tries to enter it from outside or already runs inside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.conftest import require_sandbox, sandboxed
from tests.support.ebpf import scaled
from tests.support.paths import REPO
from worker.policy import evaluate
from worker.sandbox import PipelineOutcome, Profile, profile_for


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=20).stdout


class Netns:
    def __init__(self) -> None:
        self.name = f"bpfs-{os.urandom(4).hex()}"
        self.token = f"t{os.urandom(3).hex()}"
        self.subnet = f"10.{os.urandom(1)[0]}.{os.urandom(1)[0]}"
        _sh("ip", "netns", "add", self.name)
        self.exec("ip", "link", "set", "lo", "up")
        self.exec("ip", "route", "add", f"{self.subnet}.0/24", "dev", "lo")
        self.exec("nft", "add", "table", "inet", self.token)
        self.exec("nft", "add", "chain", "inet", self.token, "input")
        self.exec("iptables", "-N", self.token.upper())

    def exec(self, *argv: str) -> str:
        return _sh("ip", "netns", "exec", self.name, *argv)

    def state(self) -> dict[str, str]:
        return {
            "routes": self.exec("ip", "route", "show", "table", "all"),
            "links": self.exec("ip", "-d", "link", "show"),
            "nft": self.exec("nft", "list", "ruleset"),
            "iptables": "".join(
                line for line in self.exec("iptables-save").splitlines(True) if line[:1] != "#"
            ),
            "qdisc": self.exec("tc", "qdisc", "show"),
            "forward": self.exec("sysctl", "-n", "net.ipv4.ip_forward"),
        }

    def run_inside(self, argv: list[str], profile: Profile | None = None) -> PipelineOutcome:
        """Run `argv` in the sandbox, inside this namespace."""
        args = [sys.executable, "-m", "tests.sandbox.inside", json.dumps([argv])]
        if profile is not None:
            args.append(profile.model_dump_json())
        out = subprocess.run(
            ["ip", "netns", "exec", self.name, *args],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=scaled(30),
        ).stdout
        return PipelineOutcome.model_validate_json(out)

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False, timeout=20)


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    require_sandbox()
    namespace = Netns()
    yield namespace
    namespace.delete()


FROM_OUTSIDE = [
    ["ip", "netns", "exec", "{ns}", "ip", "route", "add", "blackhole", "{net}.9/32"],
    ["ip", "-n", "{ns}", "route", "add", "blackhole", "{net}.9/32"],
    ["ip", "netns", "exec", "{ns}", "nft", "flush", "ruleset"],
    ["ip", "netns", "exec", "{ns}", "iptables", "-F"],
    ["ip", "netns", "exec", "{ns}", "ifconfig", "lo", "-arp"],
    ["ip", "netns", "exec", "{ns}", "sysctl", "-w", "net.ipv4.ip_forward=1"],
    ["ip", "netns", "delete", "{ns}"],
    ["nsenter", "--net=/run/netns/{ns}", "nft", "flush", "ruleset"],
    ["/usr/bin/python3", "-c", "import os; os.setns(os.open('/run/netns/{ns}', 0), 0)"],
]


@pytest.mark.parametrize("form", FROM_OUTSIDE, ids=[" ".join(f[:6])[:40] for f in FROM_OUTSIDE])
def test_entering_the_namespace_is_refused(form: list[str], netns: Netns) -> None:
    before = netns.state()
    argv = [a.replace("{ns}", netns.name).replace("{net}", netns.subnet) for a in form]
    outcome = sandboxed(argv, profile=profile_for(argv[0]))
    assert netns.state() == before, (argv, outcome.stderr)
    assert Path("/run/netns", netns.name).exists()


INSIDE = [
    ["ip", "route", "add", "blackhole", "{net}.9/32"],
    ["ip", "route", "flush", "table", "main"],
    ["ip", "link", "set", "lo", "down"],
    ["ip", "link", "add", "{tok}", "type", "dummy"],
    ["ifconfig", "lo", "-arp"],
    ["ifconfig", "lo", "mtu", "1280"],
    ["route", "add", "-host", "{net}.7", "reject"],
    ["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "100ms"],
    ["sysctl", "-w", "net.ipv4.ip_forward=1"],
    ["bash", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
    ["arp", "-s", "{net}.5", "00:11:22:33:44:55"],
    ["ip", "neigh", "add", "{net}.5", "lladdr", "00:11:22:33:44:55", "dev", "lo"],
]


@pytest.mark.parametrize("form", INSIDE, ids=[" ".join(f)[:40] for f in INSIDE])
def test_changes_from_inside_are_refused(form: list[str], netns: Netns) -> None:
    before = netns.state()
    argv = [a.replace("{net}", netns.subnet).replace("{tok}", netns.token) for a in form]
    outcome = netns.run_inside(argv)
    assert outcome.ran, outcome.note
    assert netns.state() == before, (argv, outcome.stderr)


@pytest.mark.parametrize(
    "argv", [["nft", "flush", "ruleset"], ["iptables", "-F"], ["iptables", "-X"]]
)
def test_netfilter_changes_fail_without_the_netfilter_profile(
    argv: list[str], netns: Netns
) -> None:
    before = netns.state()
    outcome = netns.run_inside(argv, Profile())
    assert netns.state() == before, outcome.stderr


def test_netfilter_listing_tools_hold_net_admin_so_only_the_policy_guards_them() -> None:
    """nfnetlink answers even a dump only with CAP_NET_ADMIN, so nft and iptables keep it, and
    the kernel would let them change rules: the policy must never let such a form run
    unattended. This pins both halves: the profile, and the policy's verdict."""
    assert "net_admin" in profile_for("nft").caps
    for line in ("nft flush ruleset", "iptables -F", "nft delete table inet filter"):
        assert evaluate(line).verdict != "allow", line


def test_listing_inside_the_namespace_still_works(netns: Netns) -> None:
    nft = netns.run_inside(["nft", "list", "ruleset"])
    assert f"table inet {netns.token}" in nft.stdout.decode(), nft
    iptables = netns.run_inside(["iptables", "-L", "-n"])
    assert f"Chain {netns.token.upper()}" in iptables.stdout.decode(), iptables
    routes = netns.run_inside(["ip", "route"])
    assert f"{netns.subnet}.0/24 dev lo" in routes.stdout.decode(), routes
