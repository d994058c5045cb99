/* file_sync: fsync-family system calls per process: how many, how long, how many failed.
 *
 * Traces: syscalls:sys_enter/sys_exit of fsync, fdatasync, sync_file_range, syncfs, sync and
 *   msync (each pair optional but fsync's): the start time per thread at entry; at exit the
 *   latency and the result, summed per (pid, comm, call) in the kernel, plus a log2 histogram.
 * Output: in-kernel sums only, read after detaching.
 * Overhead: low: only these narrow tracepoints, never the syscalls of the host in general.
 * Caveats: the time is the caller's wait for its data to reach the device: slow calls mean a
 *   slow or busy device (see block_io_latency), many fast calls mean a writer that syncs too
 *   often. Calls started before the probe are not timed.
 */

struct key_t {
    u32 pid;
    u32 call;
    char comm[BPFS_COMM_LEN];
};

struct val_t {
    u64 count;
    u64 errors;
    u64 total_ns;
    u64 max_ns;
};

BPF_TABLE("lru_hash", u32, u64, starts, 16384);
BPF_HASH(calls, struct key_t, struct val_t, 2048);
BPF_HISTOGRAM(lat_hist, int, 64);

static __always_inline int on_enter(void)
{
    if (bs_skip())
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 now = bpf_ktime_get_ns();
    starts.update(&tid, &now);
    return 0;
}

static __always_inline int on_exit(u32 call, long ret)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = (u32)id;
    u64 *start = starts.lookup(&tid);
    if (!start)
        return 0;
    u64 lat = bpf_ktime_get_ns() - *start;
    starts.delete(&tid);
    struct key_t key = {};
    key.pid = id >> 32;
    key.call = call;
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    struct val_t zero = {};
    struct val_t *val = calls.lookup_or_try_init(&key, &zero);
    if (!val) {
        bs_count_drop();
        return 0;
    }
    __sync_fetch_and_add(&val->count, 1);
    __sync_fetch_and_add(&val->total_ns, lat);
    if (ret < 0)
        __sync_fetch_and_add(&val->errors, 1);
    if (lat > val->max_ns)
        val->max_ns = lat;
    lat_hist.atomic_increment(bpf_log2l(lat / 1000));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_fsync)
{
    return on_enter();
}

TRACEPOINT_PROBE(syscalls, sys_exit_fsync)
{
    return on_exit(0, args->ret);
}

#ifdef HAVE_TP_SYSCALLS_SYS_EXIT_FDATASYNC
TRACEPOINT_PROBE(syscalls, sys_enter_fdatasync)
{
    return on_enter();
}

TRACEPOINT_PROBE(syscalls, sys_exit_fdatasync)
{
    return on_exit(1, args->ret);
}
#endif

#ifdef HAVE_TP_SYSCALLS_SYS_EXIT_SYNC_FILE_RANGE
TRACEPOINT_PROBE(syscalls, sys_enter_sync_file_range)
{
    return on_enter();
}

TRACEPOINT_PROBE(syscalls, sys_exit_sync_file_range)
{
    return on_exit(2, args->ret);
}
#endif

#ifdef HAVE_TP_SYSCALLS_SYS_EXIT_SYNCFS
TRACEPOINT_PROBE(syscalls, sys_enter_syncfs)
{
    return on_enter();
}

TRACEPOINT_PROBE(syscalls, sys_exit_syncfs)
{
    return on_exit(3, args->ret);
}
#endif

#ifdef HAVE_TP_SYSCALLS_SYS_EXIT_SYNC
TRACEPOINT_PROBE(syscalls, sys_enter_sync)
{
    return on_enter();
}

TRACEPOINT_PROBE(syscalls, sys_exit_sync)
{
    return on_exit(4, args->ret);
}
#endif

#ifdef HAVE_TP_SYSCALLS_SYS_EXIT_MSYNC
TRACEPOINT_PROBE(syscalls, sys_enter_msync)
{
    return on_enter();
}

TRACEPOINT_PROBE(syscalls, sys_exit_msync)
{
    return on_exit(5, args->ret);
}
#endif
