/* lock_contention: who waits on locks, on which lock, and for how long.
 *
 * Traces: user-space lock waits as futex syscalls (syscalls:sys_enter/exit_futex for the wait
 *   operations FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_WAIT_REQUEUE_PI,
 *   with or without FUTEX_PRIVATE_FLAG (glibc's pthread mutexes use op 128 = FUTEX_WAIT_PRIVATE);
 *   futex2's futex_wait and futex_waitv when this kernel has them, the first waiter's address read
 *   from user memory), and kernel lock waits (lock:contention_begin/end: mutexes, rwsems,
 *   spinlocks, rwlocks, per-CPU rwsems, with the lock's flags).
 * Output: in-kernel sums per (process, futex address, operation) and per (process, kernel lock,
 *   flags): count, total and longest wait; log2 histograms of futex and kernel-lock wait time;
 *   the first SAMPLE_LIMIT waits longer than MIN_WAIT_US as sample events.
 * Overhead: low to medium. The futex tracepoints put every syscall on the traced path (getpid
 *   ~1.3x) and cost a hash update per futex call; lock:contention_* fire only when a kernel lock
 *   is actually contended, which can be very often on a busy host.
 * Caveats: a futex wait is any sleep on a futex: condition variables and idle worker threads
 *   waiting for work look the same as a contended mutex (the operation helps: *_bitset is usually
 *   a condition variable). Waits that began before the probe, or are still going at its end,
 *   are not timed; those still going are counted as in-progress. Kernel lock addresses are
 *   kernel pointers; only statically allocated locks have a symbol. Kernel lock waits in
 *   interrupt context are charged to the interrupted task.
 */

#ifndef SAMPLE_LIMIT
#define SAMPLE_LIMIT 16
#endif
#ifndef MIN_WAIT_US
#define MIN_WAIT_US 100
#endif
#ifndef TRACE_FUTEX
#define TRACE_FUTEX 1
#endif
#ifndef TRACE_KERNEL_LOCKS
#define TRACE_KERNEL_LOCKS 1
#endif

#define BS_FUTEX_CMD_MASK 0x7f /* ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) */
#define BS_FUTEX_WAIT 0
#define BS_FUTEX_LOCK_PI 6
#define BS_FUTEX_WAIT_BITSET 9
#define BS_FUTEX_WAIT_REQUEUE_PI 11
#define BS_FUTEX_LOCK_PI2 13
#define BS_OP_FUTEX2_WAIT 100
#define BS_OP_FUTEX_WAITV 101
#define BS_ETIMEDOUT 110

#define KIND_FUTEX 0
#define KIND_KERNEL 1

struct fstart_t {
    u64 ts;
    u64 uaddr;
    u32 op;
};

struct fkey_t {
    u64 uaddr;
    u32 pid;
    u32 op;
    char comm[BPFS_COMM_LEN];
};

struct wval_t {
    u64 count;
    u64 total_ns;
    u64 max_ns;
    u64 timeouts;
};

struct kstart_key_t {
    u64 lock;
    u32 tid;
    u32 pad;
};

struct kstart_t {
    u64 ts;
    u32 flags;
};

struct kkey_t {
    u64 lock;
    u32 pid;
    u32 flags;
    char comm[BPFS_COMM_LEN];
};

struct event_t {
    u64 ts;
    u64 wait_ns;
    u64 addr;
    u32 pid;
    u32 tid;
    u32 kind;
    u32 op_or_flags;
    char comm[BPFS_COMM_LEN];
};

BPF_HASH(futex_starts, u32, struct fstart_t, 16384);
BPF_HASH(futex_waits, struct fkey_t, struct wval_t, 4096);
BPF_HISTOGRAM(futex_hist, int, 64);
BPF_HASH(kstarts, struct kstart_key_t, struct kstart_t, 16384);
BPF_HASH(klock_waits, struct kkey_t, struct wval_t, 4096);
BPF_HISTOGRAM(klock_hist, int, 64);
/* per-process wait histograms, so the top waiters get their own percentiles */
struct phist_key_t {
    u32 pid;
    u16 kind;
    u16 slot;
};
BPF_HISTOGRAM(proc_hist, struct phist_key_t, 8192);
BPF_ARRAY(sampled, u64, 1);
BPF_RINGBUF_OUTPUT(events, 8);

static __always_inline void add_wait(struct wval_t *val, u64 wait_ns, int timed_out)
{
    __sync_fetch_and_add(&val->count, 1);
    __sync_fetch_and_add(&val->total_ns, wait_ns);
    if (wait_ns > val->max_ns)
        val->max_ns = wait_ns;
    if (timed_out)
        __sync_fetch_and_add(&val->timeouts, 1);
}

static __always_inline void proc_hist_add(u32 pid, u16 kind, u64 wait_ns)
{
    struct phist_key_t key = {};
    key.pid = pid;
    key.kind = kind;
    key.slot = bpf_log2l(wait_ns);
    proc_hist.atomic_increment(key);
}

static __always_inline void sample(u32 kind, u64 addr, u32 op_or_flags, u64 wait_ns,
                                   const char *comm)
{
    if (wait_ns < (u64)MIN_WAIT_US * 1000)
        return;
    int idx = 0;
    u64 *n = sampled.lookup(&idx);
    if (!n || *n >= SAMPLE_LIMIT)
        return;
    __sync_fetch_and_add(n, 1);
    struct event_t ev = {};
    u64 id = bpf_get_current_pid_tgid();
    ev.ts = bpf_ktime_get_ns();
    ev.wait_ns = wait_ns;
    ev.addr = addr;
    ev.pid = id >> 32;
    ev.tid = (u32)id;
    ev.kind = kind;
    ev.op_or_flags = op_or_flags;
    __builtin_memcpy(ev.comm, comm, sizeof(ev.comm));
    if (events.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
}

#if TRACE_FUTEX
static __always_inline void futex_enter(u64 uaddr, u32 op)
{
    if (bs_skip())
        return;
    struct fstart_t start = {};
    start.ts = bpf_ktime_get_ns();
    start.uaddr = uaddr;
    start.op = op;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    futex_starts.update(&tid, &start);
}

static __always_inline void futex_exit(long ret)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct fstart_t *start = futex_starts.lookup(&tid);
    if (!start)
        return;
    u64 wait_ns = bpf_ktime_get_ns() - start->ts;
    struct fkey_t key = {};
    key.uaddr = start->uaddr;
    key.op = start->op;
    key.pid = bs_tgid();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    futex_starts.delete(&tid);
    struct wval_t zero = {};
    struct wval_t *val = futex_waits.lookup_or_try_init(&key, &zero);
    if (!val) {
        bs_count_drop();
        return;
    }
    add_wait(val, wait_ns, ret == -BS_ETIMEDOUT);
    futex_hist.atomic_increment(bpf_log2l(wait_ns));
    proc_hist_add(key.pid, KIND_FUTEX, wait_ns);
    sample(KIND_FUTEX, key.uaddr, key.op, wait_ns, key.comm);
}

TRACEPOINT_PROBE(syscalls, sys_enter_futex)
{
    u32 cmd = (u32)args->op & BS_FUTEX_CMD_MASK;
    if (cmd != BS_FUTEX_WAIT && cmd != BS_FUTEX_WAIT_BITSET && cmd != BS_FUTEX_LOCK_PI &&
        cmd != BS_FUTEX_LOCK_PI2 && cmd != BS_FUTEX_WAIT_REQUEUE_PI)
        return 0;
    futex_enter((u64)args->uaddr, cmd);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_futex)
{
    futex_exit(args->ret);
    return 0;
}

#ifdef HAVE_TP_SYSCALLS_SYS_ENTER_FUTEX_WAIT
TRACEPOINT_PROBE(syscalls, sys_enter_futex_wait)
{
    futex_enter((u64)args->uaddr, BS_OP_FUTEX2_WAIT);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_futex_wait)
{
    futex_exit(args->ret);
    return 0;
}
#endif

#ifdef HAVE_TP_SYSCALLS_SYS_ENTER_FUTEX_WAITV
/* uapi struct futex_waitv { __u64 val; __u64 uaddr; __u32 flags; __u32 __reserved; } */
TRACEPOINT_PROBE(syscalls, sys_enter_futex_waitv)
{
    u64 uaddr = 0;
    bpf_probe_read_user(&uaddr, sizeof(uaddr), (char *)args->waiters + 8);
    futex_enter(uaddr, BS_OP_FUTEX_WAITV);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_futex_waitv)
{
    futex_exit(args->ret);
    return 0;
}
#endif
#endif /* TRACE_FUTEX */

#if TRACE_KERNEL_LOCKS && defined(HAVE_TP_LOCK_CONTENTION_BEGIN)
TRACEPOINT_PROBE(lock, contention_begin)
{
    if (bs_skip())
        return 0;
    struct kstart_key_t skey = {};
    skey.lock = (u64)args->lock_addr;
    skey.tid = (u32)bpf_get_current_pid_tgid();
    struct kstart_t *pending = kstarts.lookup(&skey);
    if (pending) {
        /* a mutex reports begin twice (optimistic spin, then sleep): keep the first time */
        pending->flags |= args->flags;
        return 0;
    }
    struct kstart_t start = {};
    start.ts = bpf_ktime_get_ns();
    start.flags = args->flags;
    kstarts.update(&skey, &start);
    return 0;
}

TRACEPOINT_PROBE(lock, contention_end)
{
    struct kstart_key_t skey = {};
    skey.lock = (u64)args->lock_addr;
    skey.tid = (u32)bpf_get_current_pid_tgid();
    struct kstart_t *start = kstarts.lookup(&skey);
    if (!start)
        return 0;
    u64 wait_ns = bpf_ktime_get_ns() - start->ts;
    struct kkey_t key = {};
    key.lock = skey.lock;
    key.flags = start->flags;
    key.pid = bs_tgid();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    kstarts.delete(&skey);
    struct wval_t zero = {};
    struct wval_t *val = klock_waits.lookup_or_try_init(&key, &zero);
    if (!val) {
        bs_count_drop();
        return 0;
    }
    add_wait(val, wait_ns, 0);
    klock_hist.atomic_increment(bpf_log2l(wait_ns));
    proc_hist_add(key.pid, KIND_KERNEL, wait_ns);
    sample(KIND_KERNEL, key.lock, key.flags, wait_ns, key.comm);
    return 0;
}
#endif
