/* runq_latency: how long runnable tasks wait for a CPU, per process, and who holds the CPUs.
 *
 * Traces: sched:sched_wakeup and sched:sched_wakeup_new (a task becomes runnable: the time is
 *   stored by thread id, without overwriting an earlier one), sched:sched_switch (the previous
 *   task is re-enqueued when it leaves the CPU still runnable, i.e. preempted; the next task's
 *   wait ends: wakeup -> on CPU is the run-queue latency). The same switch events count, per
 *   process, switch-outs, preemptions and time on CPU: the context that names the hogs. Each
 *   measured wait is also charged to the task that was preempted to let the waiter run
 *   ("behind"): under starvation, the hog.
 * Output: a log2 histogram of run-queue latency (ns), per-process wait count/sum/max and a
 *   per-process log2 histogram (p99 per process), per-process on-CPU time, wait time charged
 *   per preceding process.
 * Overhead: medium. sched_switch fires on every context switch (thousands per second per CPU);
 *   each does a few hash updates. Nothing is streamed.
 * Caveats: prev_state "runnable" is (prev_state & 0xff) == 0 (TASK_REPORT mask of kernels
 *   >= 4.14; a preempted task also carries the 0x100 "+" bit). Tasks are keyed by thread id; the
 *   process id is learned when a thread leaves a CPU (its own context), so a thread never seen
 *   leaving a CPU during the run is reported under its thread id. Filters (pid, comm) choose whose
 *   waits are measured; the on-CPU table is always host-wide, because the culprit of a wait is
 *   another process. The idle task (pid 0) is ignored. "behind" is an approximation: the whole
 *   wait is charged to the task preempted for the waiter, though others may have run during
 *   it; waits that end when the previous task sleeps are charged to nobody.
 */

#define BS_TASK_REPORT_MASK 0xff
#define BS_PREEMPT_BIT 0x100

struct pstat_t {
    u64 count;
    u64 sum_ns;
    u64 max_ns;
    char comm[BPFS_COMM_LEN];
};

struct hkey_t {
    u32 pid;
    u32 slot;
};

struct cpu_t {
    u64 switch_outs;
    u64 preempted;
    u64 runtime_ns;
    char comm[BPFS_COMM_LEN];
};

struct behind_key_t {
    u32 pid;
    char comm[BPFS_COMM_LEN];
};

struct behind_t {
    u64 count;
    u64 wait_ns;
};

BPF_TABLE("lru_hash", u32, u64, enqueued, 16384);
BPF_HASH(behind, struct behind_key_t, struct behind_t, 4096);
BPF_TABLE("lru_hash", u32, u64, oncpu_since, 16384);
BPF_TABLE("lru_hash", u32, u32, tgid_of, 16384);
BPF_HISTOGRAM(latency, int, 64);
BPF_HASH(per_pid, u32, struct pstat_t, 4096);
BPF_HASH(per_pid_hist, struct hkey_t, u64, 16384);
BPF_HASH(oncpu, u32, struct cpu_t, 4096);

/* The process (tgid) of thread `tid`, when it has been seen leaving a CPU; else the tid. */
static __always_inline u32 process_of(u32 tid)
{
    u32 *tgid = tgid_of.lookup(&tid);
    return tgid ? *tgid : tid;
}

/* 1 when the waits of thread `tid` (comm `comm`) are not wanted by the filters. */
static __always_inline int skip_task(u32 tid, const char *comm)
{
    if (bs_skip_comm(comm))
        return 1;
    return bs_skip_pid(process_of(tid));
}

static __always_inline int on_wakeup(u32 tid, const char *comm)
{
    if (tid == 0 || skip_task(tid, comm))
        return 0;
    u64 ts = bpf_ktime_get_ns();
    enqueued.insert(&tid, &ts); /* keep the earliest: a second wakeup does not restart it */
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    return on_wakeup(args->pid, args->comm);
}

TRACEPOINT_PROBE(sched, sched_wakeup_new)
{
    return on_wakeup(args->pid, args->comm);
}

static __always_inline void record_wait(u32 tid, const char *comm, u64 delta)
{
    latency.atomic_increment(bpf_log2l(delta));
    u32 pid = process_of(tid);
    struct pstat_t zero = {};
    struct pstat_t *stat = per_pid.lookup_or_try_init(&pid, &zero);
    if (!stat) {
        bs_count_drop();
        return;
    }
    if (stat->count == 0)
        bpf_probe_read_kernel(&stat->comm, sizeof(stat->comm), comm);
    __sync_fetch_and_add(&stat->count, 1);
    __sync_fetch_and_add(&stat->sum_ns, delta);
    if (delta > stat->max_ns)
        stat->max_ns = delta;
    struct hkey_t hkey = {.pid = pid, .slot = bpf_log2l(delta)};
    u64 one = 0;
    u64 *slot = per_pid_hist.lookup_or_try_init(&hkey, &one);
    if (slot)
        __sync_fetch_and_add(slot, 1);
    else
        bs_count_drop();
}

/* The measured task got the CPU from the current (previous) task: charge it the wait. */
static __always_inline void record_behind(u64 delta)
{
    struct behind_key_t key = {.pid = bs_tgid()};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    struct behind_t zero = {};
    struct behind_t *val = behind.lookup_or_try_init(&key, &zero);
    if (!val) {
        bs_count_drop();
        return;
    }
    __sync_fetch_and_add(&val->count, 1);
    __sync_fetch_and_add(&val->wait_ns, delta);
}

static __always_inline void account_cpu(u32 tid, u64 now, int preempted)
{
    u64 *since = oncpu_since.lookup(&tid);
    if (!since)
        return;
    u64 ran = now - *since;
    u32 pid = bs_tgid(); /* current is still the previous task */
    struct cpu_t zero = {};
    struct cpu_t *cpu = oncpu.lookup_or_try_init(&pid, &zero);
    if (!cpu) {
        bs_count_drop();
        return;
    }
    if (cpu->switch_outs == 0)
        bpf_get_current_comm(&cpu->comm, sizeof(cpu->comm));
    __sync_fetch_and_add(&cpu->switch_outs, 1);
    __sync_fetch_and_add(&cpu->runtime_ns, ran);
    if (preempted)
        __sync_fetch_and_add(&cpu->preempted, 1);
}

TRACEPOINT_PROBE(sched, sched_switch)
{
    u64 now = bpf_ktime_get_ns();
    u32 prev = args->prev_pid;
    u32 next = args->next_pid;
    long state = args->prev_state;

    if (prev != 0) {
        u32 tgid = bs_tgid();
        tgid_of.update(&prev, &tgid);
        int runnable = (state & BS_TASK_REPORT_MASK) == 0;
        account_cpu(prev, now, runnable);
        if (runnable && !bs_skip())
            enqueued.update(&prev, &now); /* preempted: waits again from now */
        else
            enqueued.delete(&prev);
    }
    if (next != 0) {
        oncpu_since.update(&next, &now);
        u64 *ts = enqueued.lookup(&next);
        if (ts) {
            u64 delta = now - *ts;
            enqueued.delete(&next);
            record_wait(next, args->next_comm, delta);
            if (prev != 0 && (state & BS_TASK_REPORT_MASK) == 0)
                record_behind(delta); /* prev was preempted for it, not going to sleep */
        }
    }
    return 0;
}
