#!/bin/sh
# Build one kernel's cached base: a bookworm userland (Python 3.11, bcc 0.26, redis, gcc, bpftool)
# with a stock Debian kernel and its exact headers, as an ext4 image plus the kernel and initrd.
#
#   build-base.sh KERNEL OUT_DIR REQUIREMENTS WHEELHOUSE DEB_CACHE
#
# KERNEL: 5.10 (bullseye's kernel), 6.1 (bookworm's), 6.12 (bookworm-backports').
# Writes OUT_DIR/{base.ext4,vmlinuz,initrd.img,packages.txt}; nothing outside OUT_DIR and DEB_CACHE.
# bpfsleuth-independent: the project's Python dependencies come in as a wheelhouse.
set -eu
KERNEL=$1 OUT=$2 REQS=$3 WHEELS=$4 DEBS=$5
MIRROR=${BPFSLEUTH_KERNELS_MIRROR:-http://deb.debian.org/debian}
SEC_MIRROR=${BPFSLEUTH_KERNELS_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
EXTRA=${BPFSLEUTH_KERNELS_EXTRA_PACKAGES:-}

die() { echo "kernels: build $KERNEL: $*" >&2; exit 1; }
# the host's pip settings (find-links, indexes, constraints) must not leak into the chroot's pip
for v in $(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

case $KERNEL in
5.10) kernel_suite=bullseye ;;
6.1) kernel_suite=bookworm ;;
6.12) kernel_suite=bookworm-backports ;;
*) die "unknown kernel '$KERNEL' (known: 5.10 6.1 6.12)" ;;
esac

sources="deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SEC_MIRROR bookworm-security main"
case $kernel_suite in
bullseye) sources="$sources
deb $MIRROR bullseye main
deb $SEC_MIRROR bullseye-security main" ;;
bookworm-backports) sources="$sources
deb $MIRROR bookworm-backports main" ;;
esac

if [ "$kernel_suite" = bookworm ]; then
    kpkgs="linux-image-amd64 linux-headers-amd64"
else
    kpkgs="linux-image-amd64/$kernel_suite linux-headers-amd64/$kernel_suite"
fi
# the last line: programs the command sandbox's tests (tests/sandbox, the in-VM `sandbox` step)
# run inside the sandbox or set their fixtures up with (dbus: the systemd clients' tests ask it)
userland="systemd-sysv udev kmod util-linux e2fsprogs procps iproute2 lsof dnsutils sysstat \
python3 python3-venv python3-pip-whl python3-setuptools-whl python3-bpfcc bpfcc-tools bpftool \
redis-server gcc libc6-dev libseccomp2 python3-seccomp bubblewrap \
curl jq psmisc zstd bzip2 nftables iptables net-tools dbus"

mkdir -p "$OUT" "$DEBS"
work=$(mktemp -d "${TMPDIR:-/tmp}/bpfsleuth-kernels-build.XXXXXX")
cleanup() {
    # an interrupted mmdebstrap can leave /proc, /sys, /dev/pts... mounted in the rootfs:
    # unmount whatever is under $work (deepest first) before removing it
    awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM
rootfs=$work/rootfs

# shellcheck disable=SC2086
pkgs=$(echo $userland $kpkgs $EXTRA | tr ' ' ',')
printf '%s\n' "$sources" > "$work/sources.list"

echo "kernels: build $KERNEL: mmdebstrap bookworm userland + $kernel_suite kernel" >&2
# --foreground: timeout stays in our process group, so the driver's kill reaches mmdebstrap too
timeout --foreground "${BPFSLEUTH_KERNELS_BUILD_TIMEOUT:-1800}" mmdebstrap --mode=root --variant=apt \
    --include="$pkgs" \
    --aptopt='Acquire::Retries "3"' --aptopt='Acquire::http::Timeout "60"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in '$DEBS' /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives '$DEBS'" \
    --customize-hook="mkdir -p \"\$1\"/opt/wheelhouse && cp '$WHEELS'/* \"\$1\"/opt/wheelhouse/ && cp '$REQS' \"\$1\"/opt/requirements.txt" \
    --customize-hook='chroot "$1" python3 -m venv --system-site-packages /opt/bpfsleuth-venv' \
    --customize-hook='chroot "$1" /opt/bpfsleuth-venv/bin/pip install -q --no-index --find-links /opt/wheelhouse -r /opt/requirements.txt' \
    --customize-hook='rm -rf "$1"/opt/wheelhouse "$1"/var/cache/apt/archives/*.deb' \
    --customize-hook="cp -a '$(dirname "$0")/vm-files/.' \"\$1\"/" \
    --customize-hook='chroot "$1" systemctl enable bpfsleuth-kernels.service' \
    --customize-hook='chroot "$1" systemctl mask getty@tty1.service serial-getty@ttyS0.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer' \
    --customize-hook='echo "root:x" | chroot "$1" chpasswd -e; echo bpfsleuth-vm > "$1"/etc/hostname; printf "/dev/vda / ext4 rw,errors=remount-ro 0 1\n" > "$1"/etc/fstab' \
    --customize-hook='chroot "$1" dpkg-query -W -f="\${Package} \${Version}\n" > "$1"/root/packages.txt' \
    bookworm "$rootfs" "$work/sources.list" \
    || die "mmdebstrap failed (a package that cannot be fetched or installed? see the lines above)"

# mmdebstrap restores its own /etc/resolv.conf and /etc/hosts at the end: the VM has no network,
# so names resolve from /etc/hosts and DNS goes to 127.0.0.1 (fails at once instead of timing out)
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hosts"
cp "$(dirname "$0")/vm-files/etc/resolv.conf" "$(dirname "$0")/vm-files/etc/hosts" "$rootfs/etc/"

kver=$(ls "$rootfs/lib/modules" | sort -V | tail -n 1)
[ -n "$kver" ] || die "no kernel under /lib/modules in the rootfs"
chroot "$rootfs" test -e "/lib/modules/$kver/build/Makefile" || die "no headers at /lib/modules/$kver/build"
cp "$rootfs/boot/vmlinuz-$kver" "$work/vmlinuz" || die "no /boot/vmlinuz-$kver"
cp "$rootfs/boot/initrd.img-$kver" "$work/initrd.img" || die "no /boot/initrd.img-$kver"
cp "$rootfs/root/packages.txt" "$work/packages.txt"
echo "$kver" > "$work/kernel-release"

# Room for the tests: the used size plus 1.5 GiB.
used_mb=$(du -sm "$rootfs" | cut -f1)
size_mb=$((used_mb + 1536))
rm -f "$work/base.ext4"
mkfs.ext4 -q -F -L bpfsleuth-root -d "$rootfs" "$work/base.ext4" "${size_mb}M" \
    || die "mkfs.ext4 -d failed"
for f in base.ext4 vmlinuz initrd.img packages.txt kernel-release; do
    mv -f "$work/$f" "$OUT/$f"
done
echo "kernels: build $KERNEL: $kver, rootfs ${used_mb} MB" >&2
