# bpfsleuth image: Debian 12's Python and bcc (python3-bpfcc), plus the package, for every role
# (the compose file picks it: `bpfsleuth worker --control`, `worker --host NAME`, `bot --http`).
# Two stages: `build` makes the venv (pip, wheels, build tools stay there); the final image gets
# only the venv, Debian's Python, bcc and the read-only tools the command policy may run.
# Builds unchanged with Docker (`docker build -t bpfsleuth .`) or podman (`make images`, which
# first makes `debian:12` locally with mmdebstrap when no registry is reachable; docs/deploy.md).

# ---------------------------------------------------------------------------------------------
FROM debian:12 AS build

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_RETRIES=2 \
    PIP_DEFAULT_TIMEOUT=20

RUN (apt-get update && apt-get install -y --no-install-recommends python3 python3-venv) \
    || { echo "bpfsleuth image: step 'build: apt-get install python3-venv' needs Debian's package registry (deb.debian.org, or the mirror in /etc/apt/sources.list.d): is the build's network up?" >&2; exit 1; }

RUN python3 -m venv /opt/bpfsleuth

# Dependencies first (their layer is reused while pyproject.toml is unchanged), then the package.
WORKDIR /src
COPY pyproject.toml ./
# A TLS-intercepting proxy's CA, if the build needs one: `--secret id=pip-ca,src=BUNDLE` (scripts/
# images.sh passes the host's /etc/ssl/certs/ca-certificates.crt); not stored in any layer.
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt \
    && { /opt/bpfsleuth/bin/pip install -q -r /tmp/requirements.txt \
        || { echo "bpfsleuth image: step 'build: pip install the dependencies of pyproject.toml' needs PyPI (pypi.org and files.pythonhosted.org, or PIP_INDEX_URL): is the build's network up?" >&2; exit 1; }; }
COPY README.md ./
COPY bot ./bot
COPY worker ./worker
COPY probes ./probes
COPY prompts ./prompts
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && /opt/bpfsleuth/bin/pip install -q --no-deps . \
    || { echo "bpfsleuth image: step 'build: pip install .' needs setuptools and wheel from PyPI (pypi.org): is the build's network up?" >&2; exit 1; }
# pip and setuptools are not needed at run time.
RUN /opt/bpfsleuth/bin/pip uninstall -q -y pip setuptools

# The sandbox exec helper every command runs through (worker/sandbox/helper.c): a static binary
# next to the venv (worker.sandbox finds it at sys.prefix/libexec). gcc stays in this stage.
RUN (apt-get install -y --no-install-recommends gcc libc6-dev) \
    || { echo "bpfsleuth image: step 'build: apt-get install gcc libc6-dev (sandbox helper)' needs Debian's package registry: is the build's network up?" >&2; exit 1; } \
    && mkdir -p /opt/bpfsleuth/libexec \
    && gcc -O2 -static -o /opt/bpfsleuth/libexec/bpfsleuth-sandbox worker/sandbox/helper.c

# ---------------------------------------------------------------------------------------------
FROM debian:12

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/bpfsleuth/bin:$PATH

# bcc (python3-bpfcc pulls libbpfcc, LLVM and clang's libraries: most of the image) and the
# read-only tools the command policy allows. Kernel headers come from the host (/lib/modules,
# /usr/src mounted by the compose file), so none are installed here.
RUN (apt-get update \
        && apt-get install -y --no-install-recommends \
            python3 python3-bpfcc procps iproute2 lsof dnsutils sysstat nftables ca-certificates) \
    || { echo "bpfsleuth image: step 'final: apt-get install python3-bpfcc and the diagnostic tools' needs Debian's package registry (deb.debian.org, or the mirror in /etc/apt/sources.list.d): is the build's network up?" >&2; exit 1; } \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* \
        /usr/share/info/* /usr/share/locale/*

COPY --from=build /opt/bpfsleuth /opt/bpfsleuth
# A path entry for just the bcc package, as scripts/setup.sh makes for .venv.
RUN mkdir -p /opt/bpfsleuth/bcc-path \
    && ln -s /usr/lib/python3/dist-packages/bcc /opt/bpfsleuth/bcc-path/bcc \
    && site=$(/opt/bpfsleuth/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && echo /opt/bpfsleuth/bcc-path > "$site/bcc-path.pth" \
    && /opt/bpfsleuth/bin/python -c 'import bcc' \
    && bpfsleuth schema --part reply >/dev/null

# Host workers need root with CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN and the host's kernel mounts
# and namespaces (docker-compose.yml); the control worker and the bot need none of that.
WORKDIR /var/lib/bpfsleuth
ENTRYPOINT ["bpfsleuth"]
CMD ["worker", "--control"]
