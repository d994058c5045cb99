#!/usr/bin/env bash
# Idempotent set-up for a Debian 12 host: system packages, kernel headers (exact or the
# fallback of DESIGN.md §4), tracefs/debugfs, and the .venv that can import bcc.
# A second run only checks and takes a few seconds.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
VENV=$ROOT_DIR/.venv
KERNEL=$(uname -r)
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
PACKAGES=(python3-bpfcc bpfcc-tools bpftool redis-server python3-venv procps iproute2 lsof dnsutils sysstat)
# The sandbox's exec helper is C built here (libc only: the seccomp filter is raw BPF);
# nftables gives `nft`, which the sandbox tests check still lists rules.
PACKAGES+=(gcc libc6-dev nftables)
PACKAGES+=(prometheus-alertmanager prometheus)  # tests: the alert receiver and metrics, end to end

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
    done
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root. Run 'sudo make setup' once (or install it by hand: $2), then run this again."
}

apt_updated=0
apt_install() {
    need_root "installing $*" "apt-get install $*"
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        apt-get update -qq || die "apt-get update failed: check the network or /etc/apt/sources.list"
        apt_updated=1
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "could not install $*: run 'apt-get install $*' to see why"
}

# 1. Debian packages.
mapfile -t todo < <(missing_packages "${PACKAGES[@]}")
if [ "${#todo[@]}" -gt 0 ]; then apt_install "${todo[@]}"; fi

# 2. Kernel headers: the exact package when Debian has it, else the fallback (linux-headers-$ARCH)
#    linked at /lib/modules/$KERNEL/{build,source}. Sound only for programs that read tracepoint
#    arguments, which is all our probes do.
modules=/lib/modules/$KERNEL
if [ ! -e "$modules/build/include/generated/autoconf.h" ] || [ ! -e "$modules/source/include/linux/kconfig.h" ] \
    && [ ! -e "$modules/build/include/linux/kconfig.h" ]; then
    if [ -n "$(missing_packages "linux-headers-$KERNEL")" ] && apt-cache show "linux-headers-$KERNEL" >/dev/null 2>&1; then
        apt_install "linux-headers-$KERNEL"
    fi
fi
if [ ! -e "$modules/build/include/linux/kconfig.h" ] && [ ! -e "$modules/source/include/linux/kconfig.h" ]; then
    if [ -n "$(missing_packages "linux-headers-$ARCH")" ]; then apt_install "linux-headers-$ARCH"; fi
    build=$(ls -d /usr/src/linux-headers-*-"$ARCH" 2>/dev/null | sort -V | tail -n 1)
    [ -n "$build" ] || die "no kernel headers under /usr/src after installing linux-headers-$ARCH"
    source=${build%-"$ARCH"}-common
    [ -d "$source" ] || source=$build
    need_root "linking fallback kernel headers" "ln -s $build $modules/build"
    mkdir -p "$modules"
    ln -sfn "$build" "$modules/build"
    ln -sfn "$source" "$modules/source"
    say "kernel headers: fallback $(basename "$build") linked for $KERNEL (tracepoint-only probes)"
fi

# 3. tracefs and debugfs.
if [ ! -e /sys/kernel/tracing/events ]; then
    need_root "mounting tracefs" "mount -t tracefs tracefs /sys/kernel/tracing"
    mount -t tracefs tracefs /sys/kernel/tracing || die "cannot mount tracefs at /sys/kernel/tracing"
fi
if ! mountpoint -q /sys/kernel/debug 2>/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || say "debugfs not mounted (optional)"; fi
fi

# 4. The venv: Debian's Python (the one python3-bpfcc is built for) and a path entry for just
#    the bcc package, so nothing else from the system site-packages leaks in.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    /usr/bin/python3 -m venv "$VENV" || die "/usr/bin/python3 -m venv failed: install python3-venv"
fi
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$VENV/bcc-path"
ln -sfn /usr/lib/python3/dist-packages/bcc "$VENV/bcc-path/bcc"
echo "$VENV/bcc-path" > "$site/bcc-path.pth"
"$VENV/bin/python" -c 'import bcc' 2>/dev/null || die "the venv cannot import bcc: is python3-bpfcc installed?"

stamp=$VENV/.installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x "$VENV/bin/bpfsleuth" ]; then
    say "installing bpfsleuth into $VENV"
    log=$VENV/pip-install.log
    "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[dev]" >"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; die "pip install -e .[dev] failed (full log: $log)"; }
    echo "$want" > "$stamp"
fi
# 5. The sandbox exec helper (worker/sandbox/helper.c): every command runs through it; without
#    it the host runs no commands. Rebuilt when the source changes.
helper_src=$ROOT_DIR/worker/sandbox/helper.c
helper_bin=$VENV/libexec/bpfsleuth-sandbox
helper_stamp=$VENV/libexec/.bpfsleuth-sandbox.sha256
helper_want=$(sha256sum "$helper_src" | cut -d' ' -f1)
if [ ! -x "$helper_bin" ] || [ ! -f "$helper_stamp" ] || [ "$(cat "$helper_stamp")" != "$helper_want" ]; then
    say "building the sandbox helper"
    mkdir -p "$VENV/libexec"
    # Static: no dynamic loader at each exec (about a millisecond less per command).
    gcc -O2 -Wall -Wextra -Werror -static -o "$helper_bin.tmp" "$helper_src" 2>/dev/null \
        || gcc -O2 -Wall -Wextra -Werror -o "$helper_bin.tmp" "$helper_src" \
        || die "could not build $helper_src: is gcc (and libc6-dev) installed?"
    mv -f "$helper_bin.tmp" "$helper_bin"
    echo "$helper_want" > "$helper_stamp"
fi
"$helper_bin" --check >/dev/null 2>&1 || say "WARNING: the sandbox helper cannot set up its layers here; commands will not run (see bpfsleuth doctor)"
say "ready ($(date +%T))"
