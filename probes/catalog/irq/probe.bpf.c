/* irq: hard interrupt handlers and softirqs, counted and timed, by handler and by vector.
 *
 * Traces: irq:irq_handler_entry/irq_handler_exit (one pair per handler call; the handler name
 *   comes from the entry's name string, so shared IRQ lines show each handler), and
 *   irq:softirq_entry/softirq_exit (per vector: HI, TIMER, NET_TX, NET_RX, BLOCK, IRQ_POLL,
 *   TASKLET, SCHED, HRTIMER, RCU). Entry time is kept per CPU (handlers do not nest on a CPU;
 *   a hardirq inside a softirq uses its own slot).
 * Output: per (irq, handler) and per softirq vector: count, total and max time; log2 histograms
 *   of handler time and of softirq time (ns); softirq time per interrupted task (the task whose
 *   context the softirq ran in: a process after its own syscall, ksoftirqd when deferred).
 * Overhead: low to medium. Interrupt and softirq rates are usually thousands per second; each
 *   event is a per-CPU array access and a small hash update. Nothing is streamed.
 * Caveats: pid/comm filters select the interrupted task (current at entry), which is rarely the
 *   cause of an interrupt; use them to see what a process suffers, not what it raises. Events in
 *   flight when the probe starts or stops are not counted. Time inside a softirq includes any
 *   hardirq that interrupted it.
 */

#define BS_IRQ_NAME_LEN 32
#define BS_MAX_VEC 16

struct hard_start_t {
    u64 ts;
    u32 skip;
    char name[BS_IRQ_NAME_LEN];
};

struct hard_key_t {
    s32 irq;
    char name[BS_IRQ_NAME_LEN];
};

struct stat_t {
    u64 count;
    u64 total_ns;
    u64 max_ns;
};

struct ctx_key_t {
    u32 vec;
    u32 pid;
    char comm[BPFS_COMM_LEN];
};

BPF_PERCPU_ARRAY(hard_start, struct hard_start_t, 1);
BPF_PERCPU_ARRAY(soft_start, u64, 1);
BPF_HASH(hard, struct hard_key_t, struct stat_t, 1024);
BPF_ARRAY(soft, struct stat_t, BS_MAX_VEC);
BPF_HASH(soft_ctx, struct ctx_key_t, u64, 2048);
/* Histograms use atomic_increment: bcc's increment() is a plain `+=`, which loses counts when
 * both CPUs finish a softirq in the same bucket at once (the totals above are atomic). */
BPF_HISTOGRAM(hard_hist, int, 64);
BPF_HISTOGRAM(soft_hist, int, 64);

static __always_inline void add(struct stat_t *stat, u64 delta)
{
    __sync_fetch_and_add(&stat->count, 1);
    __sync_fetch_and_add(&stat->total_ns, delta);
    if (delta > stat->max_ns)
        stat->max_ns = delta;
}

TRACEPOINT_PROBE(irq, irq_handler_entry)
{
    int zero = 0;
    struct hard_start_t *start = hard_start.lookup(&zero);
    if (!start)
        return 0;
    start->skip = bs_skip();
    if (start->skip)
        return 0;
    TP_DATA_LOC_READ_STR(start->name, name, BS_IRQ_NAME_LEN);
    start->ts = bpf_ktime_get_ns();
    return 0;
}

TRACEPOINT_PROBE(irq, irq_handler_exit)
{
    int zero = 0;
    struct hard_start_t *start = hard_start.lookup(&zero);
    if (!start || start->skip || start->ts == 0)
        return 0;
    u64 delta = bpf_ktime_get_ns() - start->ts;
    start->ts = 0;
    struct hard_key_t key = {.irq = args->irq};
    __builtin_memcpy(key.name, start->name, sizeof(key.name));
    struct stat_t empty = {};
    struct stat_t *stat = hard.lookup_or_try_init(&key, &empty);
    if (!stat) {
        bs_count_drop();
        return 0;
    }
    add(stat, delta);
    hard_hist.atomic_increment(bpf_log2l(delta));
    return 0;
}

TRACEPOINT_PROBE(irq, softirq_entry)
{
    int zero = 0;
    u64 *start = soft_start.lookup(&zero);
    if (!start)
        return 0;
    *start = bs_skip() ? 0 : bpf_ktime_get_ns();
    return 0;
}

TRACEPOINT_PROBE(irq, softirq_exit)
{
    int zero = 0;
    u64 *start = soft_start.lookup(&zero);
    if (!start || *start == 0)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *start;
    *start = 0;
    u32 vec = args->vec;
    if (vec >= BS_MAX_VEC)
        return 0;
    struct stat_t *stat = soft.lookup(&vec);
    if (!stat)
        return 0;
    add(stat, delta);
    soft_hist.atomic_increment(bpf_log2l(delta));
    struct ctx_key_t ckey = {.vec = vec, .pid = bs_tgid()};
    bpf_get_current_comm(&ckey.comm, sizeof(ckey.comm));
    u64 none = 0;
    u64 *spent = soft_ctx.lookup_or_try_init(&ckey, &none);
    if (spent)
        __sync_fetch_and_add(spent, delta);
    else
        bs_count_drop();
    return 0;
}
