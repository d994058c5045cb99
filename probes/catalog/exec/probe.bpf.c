/* exec: process execs with argv and parent, failed execs with errno, and process exits with
 * exit code and lifetime.
 *
 * Traces: syscalls:sys_enter_execve (filename and the first MAX_ARGS argv strings, from user
 *   memory, kept by thread id), syscalls:sys_exit_execve (errno of failed execs),
 *   sched:sched_process_exec (a successful exec: pid, and the argv kept at entry),
 *   sched:sched_process_fork (parent pid and start time of new processes),
 *   sched:sched_process_exit (whole-process exits) with the exit code from the tracepoint when
 *   this kernel has an exit_code field, else from syscalls:sys_enter_exit_group's error_code.
 * Output: exact counts of execs, failed execs and exits (in the kernel), plus one ring-buffer
 *   record per exec/failed exec/exit (drops counted; bounded by the ring, polled every 100 ms).
 * Overhead: low for normal hosts; an exec storm of thousands per second streams one record per
 *   exec and exit. The execve/exit_group syscall tracepoints slow every syscall a little.
 * Caveats: argv strings in pages the caller never touched (string literals of a freshly forked
 *   child) cannot be read without faulting; they show as "<argv unreadable>" with the filename
 *   from sched_process_exec. Processes killed by a signal never call exit_group: their exit code shows as
 *   "signal" (unknown). Parents of processes forked before the probe started come from /proc in
 *   user space (0 when already gone). Lifetime needs the fork or exec inside the window.
 */

#ifndef MAX_ARGS
#define MAX_ARGS 6
#endif
#define ARG_LEN 48
#define FNAME_LEN 96

#define EV_EXEC 1
#define EV_EXEC_FAIL 2
#define EV_EXIT 3

struct argv_t {
    u64 ts;
    u32 argc;
    char filename[FNAME_LEN];
    char args[MAX_ARGS * ARG_LEN]; /* flat: bcc cannot cast 2-D arrays */
};

struct event_t {
    u64 ts;
    u64 lifetime_ns;
    u32 kind;
    u32 pid;
    u32 ppid;
    s32 code;  /* errno for EV_EXEC_FAIL, exit code for EV_EXIT, -1 unknown */
    u32 argc;
    char comm[BPFS_COMM_LEN];
    char filename[FNAME_LEN];
    char args[MAX_ARGS * ARG_LEN]; /* flat: bcc cannot cast 2-D arrays */
};

BPF_HASH(pending, u32, struct argv_t, 4096);         /* tid -> argv at execve entry */
BPF_TABLE("lru_hash", u32, u64, starts, 16384);      /* tgid -> fork/exec time */
BPF_TABLE("lru_hash", u32, u32, parents, 16384);     /* tgid -> parent tgid (fork) */
BPF_TABLE("lru_hash", u32, s32, exit_codes, 16384);  /* tgid -> exit_group code */
BPF_ARRAY(totals, u64, 4); /* 1 execs, 2 failed execs, 3 exits */
BPF_PERCPU_ARRAY(scratch, struct event_t, 1);
BPF_PERCPU_ARRAY(argv_scratch, struct argv_t, 1);
BPF_RINGBUF_OUTPUT(events, 64);

static __always_inline void count(int idx)
{
    u64 *value = totals.lookup(&idx);
    if (value)
        __sync_fetch_and_add(value, 1);
}

TRACEPOINT_PROBE(syscalls, sys_enter_execve)
{
    /* comm filters apply at sched_process_exec (the new comm) and to failures (the old one) */
    if (bs_filtering_pid() && bs_skip())
        return 0;
    int zero = 0;
    struct argv_t *rec = argv_scratch.lookup(&zero); /* too big for the BPF stack */
    if (!rec)
        return 0;
    __builtin_memset(rec, 0, sizeof(*rec));
    bpf_probe_read_user_str(&rec->filename, sizeof(rec->filename), args->filename);
    u64 argv = (u64)args->argv;
    u32 argc = 0;
#pragma unroll
    for (int i = 0; i < MAX_ARGS; i++) {
        const char *arg = NULL;
        if (bpf_probe_read_user(&arg, sizeof(arg), (void *)(argv + i * sizeof(arg))) != 0 || !arg)
            break;
        bpf_probe_read_user_str(&rec->args[i * ARG_LEN], ARG_LEN, arg);
        argc++;
    }
    rec->argc = argc;
    rec->ts = bpf_ktime_get_ns();
    u32 tid = (u32)bpf_get_current_pid_tgid();
    pending.update(&tid, rec);
    return 0;
}

static __always_inline void emit_from(struct argv_t *rec, u32 kind, u32 pid, s32 code)
{
    int zero = 0;
    struct event_t *ev = scratch.lookup(&zero);
    if (!ev)
        return;
    ev->ts = bpf_ktime_get_ns();
    ev->lifetime_ns = 0;
    ev->kind = kind;
    ev->pid = pid;
    u32 *parent = parents.lookup(&pid);
    ev->ppid = parent ? *parent : 0;
    ev->code = code;
    bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
    if (rec) {
        ev->argc = rec->argc;
        __builtin_memcpy(ev->filename, rec->filename, FNAME_LEN);
        __builtin_memcpy(ev->args, rec->args, sizeof(ev->args));
    } else {
        ev->argc = 0;
        __builtin_memset(ev->filename, 0, FNAME_LEN);
        __builtin_memset(ev->args, 0, sizeof(ev->args));
    }
    if (events.ringbuf_output(ev, sizeof(*ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
}

TRACEPOINT_PROBE(syscalls, sys_exit_execve)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct argv_t *rec = pending.lookup(&tid);
    if (!rec)
        return 0;
    if (args->ret < 0 && !bs_skip()) {
        count(2);
        emit_from(rec, EV_EXEC_FAIL, bs_tgid(), (s32)-args->ret);
    }
    pending.delete(&tid);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    u32 tgid = bs_tgid();
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u32 old = (u32)args->old_pid;
    if (bs_skip())
        return 0;
    struct argv_t *rec = pending.lookup(&tid);
    if (!rec)
        rec = pending.lookup(&old); /* a non-leader thread exec'd: it took the leader's pid */
    if (!rec) {
        int zero = 0;
        rec = argv_scratch.lookup(&zero);
        if (rec)
            __builtin_memset(rec, 0, sizeof(*rec));
    }
    /* Strings in pages the exec'ing process never touched (e.g. .rodata after fork) cannot be
     * read at sys_enter_execve; the tracepoint's own filename is kernel memory. */
    if (rec && rec->filename[0] == 0)
        TP_DATA_LOC_READ_STR(&rec->filename, filename, sizeof(rec->filename));
    count(1);
    u64 now = bpf_ktime_get_ns();
    if (!starts.lookup(&tgid))
        starts.update(&tgid, &now);
    emit_from(rec, EV_EXEC, tgid, 0);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u32 child = (u32)args->child_pid;
    u32 parent = (u32)args->parent_pid;
    u64 now = bpf_ktime_get_ns();
    /* threads also fire this; their entries age out of the LRU maps */
    starts.update(&child, &now);
    parents.update(&child, &parent);
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

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
#ifdef HAVE_FIELD_SCHED_SCHED_PROCESS_EXIT_GROUP_DEAD
    if (!args->group_dead)
        return 0;
#else
    if ((u32)id != tgid)
        return 0;
#endif
    if (bs_skip())
        return 0;
    count(3);
    s32 code = -1;
#ifdef HAVE_FIELD_SCHED_SCHED_PROCESS_EXIT_EXIT_CODE
    code = (s32)((args->exit_code >> 8) & 0xff);
#else
    s32 *saved = exit_codes.lookup(&tgid);
    if (saved) {
        code = *saved & 0xff;
        exit_codes.delete(&tgid);
    }
#endif
    u64 *start = starts.lookup(&tgid);
    int zero = 0;
    struct event_t *ev = scratch.lookup(&zero);
    if (!ev)
        return 0;
    ev->ts = bpf_ktime_get_ns();
    ev->lifetime_ns = start ? ev->ts - *start : 0;
    ev->kind = EV_EXIT;
    ev->pid = tgid;
    u32 *parent = parents.lookup(&tgid);
    ev->ppid = parent ? *parent : 0;
    ev->code = code;
    ev->argc = 0;
    bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
    __builtin_memset(ev->filename, 0, FNAME_LEN);
    __builtin_memset(ev->args, 0, sizeof(ev->args));
    if (events.ringbuf_output(ev, sizeof(*ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
    starts.delete(&tgid);
    parents.delete(&tgid);
    return 0;
}
