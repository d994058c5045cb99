#!/bin/sh
# Host packages the kernel matrix needs (idempotent; apt-get only installs what is missing).
set -eu
need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
command -v qemu-img >/dev/null 2>&1 || need="$need qemu-utils"
command -v mmdebstrap >/dev/null 2>&1 || need="$need mmdebstrap"
command -v debugfs >/dev/null 2>&1 || need="$need e2fsprogs"
command -v mkfs.ext4 >/dev/null 2>&1 || need="$need e2fsprogs"
command -v timeout >/dev/null 2>&1 || need="$need coreutils"
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need="$need debian-archive-keyring"
command -v dpkg-deb >/dev/null 2>&1 || need="$need dpkg"
if [ -n "$need" ]; then
    echo "kernels: installing host packages:$need" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get -o DPkg::Lock::Timeout=600 update -qq || { echo "kernels: apt-get update failed" >&2; exit 1; }
    # shellcheck disable=SC2086
    timeout 1200 apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $need \
        || { echo "kernels: cannot install:$need" >&2; exit 1; }
fi
