/* process_exits: who spawns processes, and how processes end (exit code, or which fatal signal
 * and whether it dumped core).
 *
 * Traces: sched:sched_process_fork (forks counted per parent, in the kernel; the child's birth
 *   time and parent kept in LRU maps), syscalls:sys_enter_exit_group (the exit code),
 *   signal:signal_generate (fatal signals: the last one per target process, and counts per
 *   target/sender), sched:sched_process_exit (one exit per process, group_dead: counted per
 *   (parent, comm, how it ended) with lifetimes), and sys_enter/sys_exit_wait4: the parent's
 *   wait status read from user memory gives the terminating signal and the core-dump bit.
 * Output: in-kernel maps only, read after detaching (no per-event streaming, whatever the rate).
 * Overhead: low. Forks, exits, signals and waits are rare next to syscalls in general.
 * Caveats: a process forked before the probe started has no lifetime or parent here (the reader
 *   looks its parent up in /proc only while it lives). A child's death by signal is seen from the
 *   signal sent to it; "core dumped" needs its parent to reap it with wait4/waitpid during the
 *   window (a parent that uses waitid or ignores SIGCHLD leaves it unknown). Filters (pid, comm)
 *   match the parent at a fork, the process itself or its parent at an exit, the sender, the
 *   target or the target's parent (forked in the window) of a signal.
 */

#define FATAL_MASK ((1ULL << 1) | (1ULL << 2) | (1ULL << 3) | (1ULL << 4) | (1ULL << 5) | \
                    (1ULL << 6) | (1ULL << 7) | (1ULL << 8) | (1ULL << 9) | (1ULL << 11) | \
                    (1ULL << 13) | (1ULL << 14) | (1ULL << 15) | (1ULL << 24) | (1ULL << 25) | \
                    (1ULL << 31))

struct born_t {
    u64 ts;
    u32 ppid;
    u32 pad;
    char pcomm[BPFS_COMM_LEN];
};

struct fkey_t {
    u32 ppid;
    u32 pad;
    char comm[BPFS_COMM_LEN];
};

struct last_sig_t {
    u32 sig;
    s32 code;
    u32 sender;
    u32 pad;
};

/* how: 0 = exit code `value`; 1 = killed by signal `value`; 2 = unknown (no exit_group seen) */
struct xkey_t {
    u32 ppid;
    u32 how;
    u32 value;
    u32 pad;
    char comm[BPFS_COMM_LEN];
    char pcomm[BPFS_COMM_LEN];
};

struct xval_t {
    u64 count;
    u64 life_ns;
    u64 max_life_ns;
    u64 known_life;
    u32 last_pid;
    u32 pad;
};

struct skey_t {
    u32 sig;
    s32 code;
    u32 sender;
    u32 pad;
    char comm[BPFS_COMM_LEN];   /* target */
    char scomm[BPFS_COMM_LEN];  /* sender */
};

/* the parent's view: wait status (masked to 16 bits) per (parent, child comm) */
struct wkey_t {
    u32 ppid;
    u32 status;
    char comm[BPFS_COMM_LEN];
};

BPF_TABLE("lru_hash", u32, struct born_t, born, 16384);
BPF_TABLE("lru_hash", u32, s32, exit_codes, 16384);
BPF_TABLE("lru_hash", u32, struct last_sig_t, last_sig, 16384);
BPF_TABLE("lru_hash", u32, struct fkey_t, dead_comm, 16384); /* tgid -> comm at exit */
BPF_TABLE("lru_hash", u32, u64, wait_addr, 4096);              /* tid -> stat_addr */
BPF_HASH(forks, struct fkey_t, u64, 1024);
BPF_HASH(exits, struct xkey_t, struct xval_t, 1024);
BPF_HASH(signals, struct skey_t, u64, 1024);
BPF_HASH(waits, struct wkey_t, u64, 1024);

static __always_inline u32 filter_pid(void)
{
    struct bs_config_t *config = bs_cfg();
    return (config && config->armed) ? config->filter_pid : 0;
}

static __always_inline int skip_with_parent(u32 ppid)
{
    u32 want = filter_pid();
    if (want && ppid == want && !(SELF_PID && bs_tgid() == SELF_PID))
        return 0;
    return bs_skip();
}

TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u32 parent = bs_tgid();
    u32 child = (u32)args->child_pid;
    /* a thread shares the parent's tgid: pthread_create is not a spawn; child_pid is a tid, but
     * a new process's first tid is its tgid, so every process is kept, threads age out */
    if (bs_skip())
        return 0;
    struct born_t b = {};
    b.ts = bpf_ktime_get_ns();
    b.ppid = parent;
    bpf_get_current_comm(&b.pcomm, sizeof(b.pcomm));
    born.update(&child, &b);
    struct fkey_t key = {};
    key.ppid = parent;
    __builtin_memcpy(key.comm, b.pcomm, sizeof(key.comm));
    u64 zero = 0;
    u64 *count = forks.lookup_or_try_init(&key, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bs_count_drop();
    return 0;
}

#ifdef HAVE_TP_SYSCALLS_SYS_ENTER_EXIT_GROUP
TRACEPOINT_PROBE(syscalls, sys_enter_exit_group)
{
    u32 tgid = bs_tgid();
    s32 code = (s32)args->error_code;
    exit_codes.update(&tgid, &code);
    return 0;
}
#endif

#ifdef HAVE_TP_SIGNAL_SIGNAL_GENERATE
TRACEPOINT_PROBE(signal, signal_generate)
{
    int sig = args->sig;
    if (sig <= 0 || sig > 63 || !((FATAL_MASK >> sig) & 1))
        return 0;
    u32 sender = bs_tgid();
    if (SELF_PID && sender == SELF_PID)
        return 0;
    u32 target = (u32)args->pid;
    /* filtered: signals sent by a matching process, or to it or to a child it forked */
    if (bs_filtering() && bs_skip() && !born.lookup(&target)) {
        u32 want = filter_pid();
        if (!want || target != want)
            return 0;
    }
    struct last_sig_t last = {};
    last.sig = sig;
    last.code = args->code;
    last.sender = sender;
    /* keyed by the target task's id: for a process's main thread it is its tgid */
    last_sig.update(&target, &last);
    struct skey_t key = {};
    key.sig = sig;
    key.code = args->code;
    key.sender = sender;
    bpf_probe_read_kernel(&key.comm, sizeof(key.comm), args->comm);
    bpf_get_current_comm(&key.scomm, sizeof(key.scomm));
    u64 zero = 0;
    u64 *count = signals.lookup_or_try_init(&key, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}
#endif

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    u32 tid = (u32)id;
    struct last_sig_t *sig = last_sig.lookup(&tid);
    if (sig && tid != tgid) {
        /* a thread got the fatal signal: it ends the whole process */
        struct last_sig_t copy = *sig;
        last_sig.update(&tgid, &copy);
    }
#ifdef HAVE_FIELD_SCHED_SCHED_PROCESS_EXIT_GROUP_DEAD
    if (!args->group_dead)
        return 0;
#else
    if (tid != tgid)
        return 0;
#endif
    struct born_t *b = born.lookup(&tgid);
    u32 ppid = b ? b->ppid : 0;
    if (skip_with_parent(ppid))
        goto forget;
    struct xkey_t key = {};
    key.ppid = ppid;
    if (b)
        __builtin_memcpy(key.pcomm, b->pcomm, sizeof(key.pcomm));
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    s32 *code = exit_codes.lookup(&tgid);
    struct last_sig_t *fatal = last_sig.lookup(&tgid);
    if (code) {
        key.how = 0;
        key.value = (u32)(*code & 0xff);
    } else if (fatal) {
        key.how = 1;
        key.value = fatal->sig;
    } else {
        key.how = 2;
    }
    struct xval_t zero = {};
    struct xval_t *val = exits.lookup_or_try_init(&key, &zero);
    if (!val) {
        bs_count_drop();
        goto forget;
    }
    __sync_fetch_and_add(&val->count, 1);
    if (b) {
        u64 life = bpf_ktime_get_ns() - b->ts;
        __sync_fetch_and_add(&val->life_ns, life);
        __sync_fetch_and_add(&val->known_life, 1);
        if (life > val->max_life_ns)
            val->max_life_ns = life;
    }
    val->last_pid = tgid;
    struct fkey_t dead = {};
    dead.ppid = ppid;
    __builtin_memcpy(dead.comm, key.comm, sizeof(dead.comm));
    dead_comm.update(&tgid, &dead);
forget:
    born.delete(&tgid);
    exit_codes.delete(&tgid);
    last_sig.delete(&tgid);
    return 0;
}

#ifdef HAVE_TP_SYSCALLS_SYS_EXIT_WAIT4
TRACEPOINT_PROBE(syscalls, sys_enter_wait4)
{
    u64 addr = (u64)args->stat_addr;
    if (!addr || bs_skip())
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    wait_addr.update(&tid, &addr);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_wait4)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *addr = wait_addr.lookup(&tid);
    if (!addr)
        return 0;
    u64 where = *addr;
    wait_addr.delete(&tid);
    long ret = args->ret;
    if (ret <= 0)
        return 0;
    u32 child = (u32)ret;
    struct fkey_t *dead = dead_comm.lookup(&child);
    if (!dead)
        return 0; /* exited before the probe, or left out by the filters */
    s32 status = 0;
    if (bpf_probe_read_user(&status, sizeof(status), (void *)where) != 0)
        return 0;
    struct wkey_t key = {};
    key.ppid = bs_tgid();
    key.status = (u32)status & 0xffff;
    __builtin_memcpy(key.comm, dead->comm, sizeof(key.comm));
    dead_comm.delete(&child);
    u64 zero = 0;
    u64 *count = waits.lookup_or_try_init(&key, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}
#endif
