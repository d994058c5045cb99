/* file_opens: file opens by process with path, flags and errno, aggregated in the kernel.
 *
 * Traces: syscalls:sys_enter_openat/sys_exit_openat (and open, openat2 when present). The path
 *   pointer is saved at entry and the string copied from user memory at exit (first PATH_LEN-1
 *   bytes, as passed: relative paths stay relative): by then the kernel has faulted the page in,
 *   so strings in not-yet-touched .rodata pages are readable too.
 * Output: counts per (pid, comm, path, errno) in a bounded hash (overflow counted as dropped),
 *   plus exact totals of opens and failures, and the flags of the first open of each key.
 * Overhead: low to medium: any syscalls tracepoint puts every syscall on the slower traced path
 *   (getpid ~1.3x); opens themselves pay one hash update. With failures_only=true successful
 *   opens are counted but not keyed.
 * Caveats: the path is what the process passed, not the resolved file; long paths are cut.
 */

#ifndef PATH_LEN
#define PATH_LEN 128
#endif

struct inflight_t {
    const char *filename;
    u32 flags;
};

struct key_t {
    u32 pid;
    s32 err;
    char comm[BPFS_COMM_LEN];
    char path[PATH_LEN];
};

struct val_t {
    u64 count;
    u32 flags;
};

BPF_HASH(inflight, u32, struct inflight_t, 4096);
BPF_HASH(opens, struct key_t, struct val_t, 4096);
BPF_ARRAY(totals, u64, 2); /* 0: opens, 1: failures */
BPF_PERCPU_ARRAY(scratch, struct key_t, 1);

static __always_inline int on_enter(const char *filename, u32 flags)
{
    if (bs_skip())
        return 0;
    struct inflight_t call = {};
    call.flags = flags;
    call.filename = filename;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    inflight.update(&tid, &call);
    return 0;
}

static __always_inline int on_exit(long ret)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct inflight_t *call = inflight.lookup(&tid);
    if (!call)
        return 0;
    int idx = ret < 0 ? 1 : 0;
    u64 *total = totals.lookup(&idx);
    if (total)
        __sync_fetch_and_add(total, 1);
    if (idx == 1) {
        int zero = 0;
        u64 *all = totals.lookup(&zero);
        if (all)
            __sync_fetch_and_add(all, 1);
    }
    if (FAILURES_ONLY && ret >= 0) {
        inflight.delete(&tid);
        return 0;
    }
    int zero = 0;
    struct key_t *key = scratch.lookup(&zero);
    if (!key) {
        inflight.delete(&tid);
        return 0;
    }
    key->pid = bs_tgid();
    key->err = ret < 0 ? (s32)-ret : 0;
    bpf_get_current_comm(&key->comm, sizeof(key->comm));
    __builtin_memset(key->path, 0, sizeof(key->path));
    if (bpf_probe_read_user_str(&key->path, sizeof(key->path), call->filename) < 0)
        key->path[0] = '?';
    struct val_t init = {};
    init.flags = call->flags;
    struct val_t *val = opens.lookup_or_try_init(key, &init);
    if (val)
        __sync_fetch_and_add(&val->count, 1);
    else
        bs_count_drop();
    inflight.delete(&tid);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    return on_enter((const char *)args->filename, (u32)args->flags);
}

TRACEPOINT_PROBE(syscalls, sys_exit_openat)
{
    return on_exit(args->ret);
}

#ifdef HAVE_TP_SYSCALLS_SYS_ENTER_OPEN
TRACEPOINT_PROBE(syscalls, sys_enter_open)
{
    return on_enter((const char *)args->filename, (u32)args->flags);
}

TRACEPOINT_PROBE(syscalls, sys_exit_open)
{
    return on_exit(args->ret);
}
#endif

#ifdef HAVE_TP_SYSCALLS_SYS_ENTER_OPENAT2
TRACEPOINT_PROBE(syscalls, sys_enter_openat2)
{
    u64 flags = 0;
    bpf_probe_read_user(&flags, sizeof(flags), (void *)args->how);
    return on_enter((const char *)args->filename, (u32)flags);
}

TRACEPOINT_PROBE(syscalls, sys_exit_openat2)
{
    return on_exit(args->ret);
}
#endif
