#!/usr/bin/env bash
# podman-compose with this repo's podman settings (deploy/podman/containers.conf: runc,
# cgroupfs, no default ulimits) and the compose files to use:
#   scripts/compose.sh up -d                    # Redis, control worker, host worker
#   BPFSLEUTH_BOT=http scripts/compose.sh up -d # ... and the Slack bot in HTTP mode
#   BPFSLEUTH_BOT=socket scripts/compose.sh up -d # ... and the Slack bot in Socket Mode
# Anything else is passed to podman-compose (ps, logs, exec, restart, down ...). With Docker,
# use `docker compose` with the same -f/--profile arguments (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}
compose=.venv/bin/podman-compose
[ -x "$compose" ] || { echo "compose: $compose missing: run 'make images' first" >&2; exit 1; }
files=(-f docker-compose.yml)
case "${BPFSLEUTH_BOT:-}" in
    "") ;;
    http) files+=(-f deploy/compose.http.yml --profile slack) ;;
    socket) files+=(--profile slack) ;;
    *) echo "compose: BPFSLEUTH_BOT must be empty, http or socket" >&2; exit 2 ;;
esac
exec "$compose" "${files[@]}" "$@"
