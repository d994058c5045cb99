#!/bin/sh
# Inside a matrix VM, as root: run tests/kernels/in_vm.py from the tree with the image's venv.
#   in_vm.sh SRC OUT
set -u
SRC=$1 OUT=$2
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
export PATH=/opt/bpfsleuth-venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PYTHONPATH=$SRC HOME=/root CI=true PYTHONDONTWRITEBYTECODE=1
# a `bpfsleuth` command for the tree (the image holds the dependencies, the work disk the code),
# where the tests look for it: next to the venv's python
cat > /opt/bpfsleuth-venv/bin/bpfsleuth <<EOS
#!/opt/bpfsleuth-venv/bin/python3
import sys
sys.path.insert(0, "$SRC")
from bot.cli import main
sys.exit(main())
EOS
chmod +x /opt/bpfsleuth-venv/bin/bpfsleuth
ln -sf /opt/bpfsleuth-venv/bin/bpfsleuth /usr/local/bin/bpfsleuth
# the command sandbox's exec helper, built from the tree as `make setup` does (the doctor reports
# its layers on this kernel: Landlock is absent before 5.13 or at a lower ABI)
mkdir -p /opt/bpfsleuth-venv/libexec
gcc -O2 -static -o /opt/bpfsleuth-venv/libexec/bpfsleuth-sandbox "$SRC/worker/sandbox/helper.c" \
    2>/dev/null || gcc -O2 -o /opt/bpfsleuth-venv/libexec/bpfsleuth-sandbox \
    "$SRC/worker/sandbox/helper.c" || echo "in_vm: the sandbox helper did not build" >&2
# settings the host passed on (BPFSLEUTH_KERNELS_SCENARIOS, _PROBE_TESTS, _PROBE_TESTS_TIMEOUT)
# shellcheck disable=SC1091
[ -f "$SRC/../env" ] && . "$SRC/../env"
# An emulated guest (TCG) runs the workloads 10-50x slower than a real host: the live tests stretch
# their probe windows and workload lifetimes (not their assertions) by this factor, and a probe
# gets longer to compile and attach (docs/kernels.md, "Time in the guest").
export BPFSLEUTH_TEST_TIME_SCALE="${BPFSLEUTH_TEST_TIME_SCALE:-5}"
export BPFSLEUTH_PROBE_COMPILE_BUDGET_S="${BPFSLEUTH_PROBE_COMPILE_BUDGET_S:-150}"
cd "$SRC" || exit 2
# python3, as on the host (the workloads are sys.executable: their comm is "python3")
exec /opt/bpfsleuth-venv/bin/python3 "$SRC/tests/kernels/in_vm.py" "$SRC" "$OUT"
