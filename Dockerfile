# bpfsleuth worker image: Debian 12's Python and bcc (python3-bpfcc), plus the package.
# One image for every role; the compose file picks the role with `bpfsleuth worker ...`.
FROM debian:12

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/bpfsleuth/bin:$PATH

# bcc and the read-only tools the command policy allows; no compilers beyond what bcc needs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-bpfcc bpfcc-tools bpftool \
        procps iproute2 lsof dnsutils sysstat ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A venv on Debian's Python with a path entry for just the bcc package (as scripts/setup.sh).
RUN python3 -m venv /opt/bpfsleuth \
    && mkdir -p /opt/bpfsleuth/bcc-path \
    && ln -s /usr/lib/python3/dist-packages/bcc /opt/bpfsleuth/bcc-path/bcc \
    && site=$(/opt/bpfsleuth/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && echo /opt/bpfsleuth/bcc-path > "$site/bcc-path.pth" \
    && /opt/bpfsleuth/bin/python -c 'import bcc'

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY worker ./worker
COPY probes ./probes
COPY prompts ./prompts
RUN /opt/bpfsleuth/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/bpfsleuth/bin/bpfsleuth schema --part reply >/dev/null

# Host workers need root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN) and the host's kernel mounts;
# see docker-compose.yml. The control worker runs the same image unprivileged.
ENTRYPOINT ["bpfsleuth"]
CMD ["worker", "--control"]
