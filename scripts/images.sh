#!/usr/bin/env bash
# `make images`: build bpfsleuth's container images with podman from the repo's Dockerfiles.
#
#   1. podman (Debian's package) and podman-compose (PyPI, into .venv) if missing;
#   2. the base image `docker.io/library/debian:12`: pulled if a registry answers, else made here
#      from Debian's registry with mmdebstrap and imported under that very name, so the same
#      `FROM debian:12` builds unchanged with Docker on a machine that reaches Docker Hub;
#   3. `localhost/bpfsleuth:latest` (Dockerfile) and `localhost/bpfsleuth-redis:latest`
#      (deploy/redis/Dockerfile).
#
# Settings (environment): BPFSLEUTH_BASE=auto|pull|mmdebstrap (auto: pull, else mmdebstrap),
# DEBIAN_MIRROR (default http://deb.debian.org/debian), BPFSLEUTH_IMAGE_BUILD_ARGS (extra
# `podman build` arguments, e.g. --no-cache). Every failure names the step and what it needed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
BASE=docker.io/library/debian:12
IMAGE=localhost/bpfsleuth:latest
REDIS_IMAGE=localhost/bpfsleuth-redis:latest
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Hosts where podman's defaults fail (hybrid cgroups, no CAP_SYS_RESOURCE): deploy/podman.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT_DIR/deploy/podman/containers.conf}

say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: ERROR: %s\n' "$*" >&2; exit 1; }
step() { printf 'images: [%s] %s\n' "$(date +%T)" "$*"; }

[ "$(id -u)" -eq 0 ] || die "podman builds here run as root (host workers need privileged containers): sudo make images"

# 1. Tools.
missing=()
command -v podman >/dev/null || missing+=(podman runc)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
# Names of services (redis://redis:6379) resolve on a compose network only with a DNS plugin:
# CNI's dnsname (podman 4 on Debian 12 uses CNI; netavark's aardvark-dns does it otherwise).
if [ ! -x /usr/lib/cni/dnsname ] && [ ! -x /usr/lib/podman/aardvark-dns ]; then
    missing+=(golang-github-containernetworking-plugin-dnsname)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]} (Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "step 'tools': apt-get install ${missing[*]} failed; it needs Debian's package registry (run it by hand to see why)"
fi
if [ ! -x .venv/bin/podman-compose ]; then
    [ -x .venv/bin/pip ] || die "step 'tools': .venv missing; run 'make setup' first"
    step "installing podman-compose into .venv (PyPI)"
    .venv/bin/pip install -q --disable-pip-version-check 'podman-compose>=1.2' \
        || die "step 'tools': pip install podman-compose needs PyPI (pypi.org)"
fi

# 2. The base image.
base_from_mmdebstrap() {
    local work tar
    work=$(mktemp -d /var/tmp/bpfsleuth-base.XXXXXX)
    tar=$work/rootfs.tar
    step "base: mmdebstrap bookworm from $MIRROR (about 20 s, 45 MB download)"
    # apt variant (what Docker's debian images hold: essential + apt), no docs or man pages.
    if ! mmdebstrap --quiet --variant=apt --mode=root \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
        bookworm "$tar" \
        "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
        "deb $SECURITY_MIRROR bookworm-security main"; then
        rm -rf "$work"
        die "step 'base image': mmdebstrap needs Debian's package registry ($MIRROR; set DEBIAN_MIRROR for a mirror) and no container registry answered for $BASE"
    fi
    step "base: podman import as $BASE"
    podman import -q --change 'CMD ["bash"]' "$tar" "$BASE" >/dev/null \
        || { rm -rf "$work"; die "step 'base image': podman import $tar failed"; }
    rm -rf "$work"
}

if podman image exists "$BASE"; then
    say "base: $BASE present"
else
    case "${BPFSLEUTH_BASE:-auto}" in
        pull) podman pull -q "$BASE" >/dev/null || die "step 'base image': podman pull $BASE needs Docker Hub (docker.io)" ;;
        mmdebstrap) base_from_mmdebstrap ;;
        auto)
            step "base: trying podman pull $BASE (20 s at most)"
            if ! timeout 20 podman pull -q "$BASE" >/dev/null 2>&1; then
                say "base: no registry answered; making it locally"
                base_from_mmdebstrap
            fi
            ;;
        *) die "BPFSLEUTH_BASE must be auto, pull or mmdebstrap" ;;
    esac
fi

# 3. The images. A RUN step that cannot reach its registry prints which step needed what.
build() {
    local tag=$1 file=$2 context=$3 started
    started=$(date +%s)
    step "building $tag from $file"
    # shellcheck disable=SC2086
    podman build --pull=never --layers "${ca[@]}" ${BPFSLEUTH_IMAGE_BUILD_ARGS:-} -t "$tag" -f "$file" "$context" \
        || die "step 'build $tag' failed (the lines above say which step needed what)"
    say "$tag: $(podman image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}') ($(( $(date +%s) - started )) s)"
}
# The host's CA bundle, for pip behind a TLS-intercepting proxy (a build secret: in no layer).
ca=()
bundle=${BPFSLEUTH_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}
if [ -s "$bundle" ]; then ca=(--secret "id=pip-ca,src=$bundle"); fi
build "$IMAGE" Dockerfile .
build "$REDIS_IMAGE" deploy/redis/Dockerfile deploy/redis
# The build stage's layers stay (untagged) so the next build reuses them: no `image prune`.
say "done: $IMAGE, $REDIS_IMAGE (docs/deploy.md says how to run them)"
