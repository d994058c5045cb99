/* block_io_latency: block I/O latency per disk, and the processes that issue the I/O.
 *
 * Traces: block:block_io_start (kernels >= 6.5; else block:block_bio_queue) in the submitting
 *   task's context: who submitted the request (tgid, comm) and when, by start sector;
 *   block:block_rq_issue (handed to the driver; often in a kworker, so the submitter comes from
 *   the previous event) and block:block_rq_complete (done), joined on (dev, sector).
 * Output: per (disk, op) counts, bytes, errors and time; a per-disk log2 histogram of device
 *   latency (issue -> complete, ns); a log2 histogram of queue time (submit -> issue); per
 *   (process, disk) I/O counts, bytes and latency sum/max.
 * Overhead: low. A few hash operations per I/O; I/O rates are rarely above 100k/s. Nothing is
 *   streamed.
 * Caveats: dev is the kernel's dev_t (major << 20 | minor), decoded in user space. Requests
 *   issued before the probe starts are not timed. Merged bios count as one request (the first
 *   submitter is named). An I/O with no recorded submitter is attributed to the task current at
 *   issue (possibly a kworker). With pid/comm filters only I/O whose submitter matches is timed.
 */

#define OP_READ 0
#define OP_WRITE 1
#define OP_DISCARD 2
#define OP_FLUSH 3
#define OP_OTHER 4

struct who_t {
    u64 ts;
    u32 pid;
    u32 pad;
    char comm[BPFS_COMM_LEN];
};

struct rq_key_t {
    u32 dev;
    u32 pad;
    u64 sector;
};

struct start_t {
    u64 ts;
    u32 pid;
    u32 bytes;
    u32 op;
    u32 pad;
    char comm[BPFS_COMM_LEN];
};

struct dev_key_t {
    u32 dev;
    u32 op;
};

struct stat_t {
    u64 count;
    u64 bytes;
    u64 errors;
    u64 total_ns;
    u64 max_ns;
};

struct slot_key_t {
    u32 dev;
    u32 slot;
};

struct proc_key_t {
    u32 pid;
    u32 dev;
    char comm[BPFS_COMM_LEN];
};

BPF_TABLE("lru_hash", u64, struct who_t, submitters, 16384);
BPF_TABLE("lru_hash", struct rq_key_t, struct start_t, started, 16384);
BPF_HASH(devices, struct dev_key_t, struct stat_t, 256);
BPF_HASH(dev_hist, struct slot_key_t, u64, 2048);
BPF_HASH(procs, struct proc_key_t, struct stat_t, 4096);
BPF_HISTOGRAM(queue_hist, int, 64);

static __always_inline u32 op_of(const char *rwbs)
{
    int flush = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        char c = rwbs[i];
        if (c == 'R')
            return OP_READ;
        if (c == 'W')
            return OP_WRITE;
        if (c == 'D')
            return OP_DISCARD;
        if (c == 'F')
            flush = 1;
        if (c == 0)
            break;
    }
    return flush ? OP_FLUSH : OP_OTHER;
}

static __always_inline void note_submitter(u64 sector)
{
    if (bs_skip())
        return;
    struct who_t who = {};
    who.ts = bpf_ktime_get_ns();
    who.pid = bs_tgid();
    bpf_get_current_comm(&who.comm, sizeof(who.comm));
    submitters.update(&sector, &who);
}

#ifdef HAVE_TP_BLOCK_BLOCK_IO_START
TRACEPOINT_PROBE(block, block_io_start)
{
    note_submitter(args->sector);
    return 0;
}
#endif

#ifdef HAVE_TP_BLOCK_BLOCK_BIO_QUEUE
TRACEPOINT_PROBE(block, block_bio_queue)
{
    note_submitter(args->sector);
    return 0;
}
#endif

TRACEPOINT_PROBE(block, block_rq_issue)
{
    u64 now = bpf_ktime_get_ns();
    u64 sector = args->sector;
    struct start_t start = {};
    start.ts = now;
    start.bytes = args->bytes;
    start.op = op_of(args->rwbs);
    struct who_t *who = submitters.lookup(&sector);
    if (who) {
        start.pid = who->pid;
        __builtin_memcpy(start.comm, who->comm, sizeof(start.comm));
        if (now > who->ts)
            queue_hist.atomic_increment(bpf_log2l(now - who->ts));
        submitters.delete(&sector);
    } else {
#if defined(HAVE_TP_BLOCK_BLOCK_IO_START) || defined(HAVE_TP_BLOCK_BLOCK_BIO_QUEUE)
        if (bs_filtering())
            return 0; /* filtered: only I/O whose submitter matched */
#endif
        if (bs_skip())
            return 0;
        start.pid = bs_tgid();
        bpf_get_current_comm(&start.comm, sizeof(start.comm));
    }
    struct rq_key_t key = {.dev = args->dev, .sector = sector};
    started.update(&key, &start);
    return 0;
}

static __always_inline void add(struct stat_t *stat, u64 bytes, u64 delta, int error)
{
    __sync_fetch_and_add(&stat->count, 1);
    __sync_fetch_and_add(&stat->bytes, bytes);
    __sync_fetch_and_add(&stat->total_ns, delta);
    if (error)
        __sync_fetch_and_add(&stat->errors, 1);
    if (delta > stat->max_ns)
        stat->max_ns = delta;
}

TRACEPOINT_PROBE(block, block_rq_complete)
{
    struct rq_key_t key = {.dev = args->dev, .sector = args->sector};
    struct start_t *start = started.lookup(&key);
    if (!start)
        return 0;
    u64 delta = bpf_ktime_get_ns() - start->ts;
    int error = args->error != 0;
    struct stat_t empty = {};

    struct dev_key_t dkey = {.dev = key.dev, .op = start->op};
    struct stat_t *dstat = devices.lookup_or_try_init(&dkey, &empty);
    if (dstat)
        add(dstat, start->bytes, delta, error);
    else
        bs_count_drop();

    struct slot_key_t skey = {.dev = key.dev, .slot = bpf_log2l(delta)};
    u64 zero = 0;
    u64 *slot = dev_hist.lookup_or_try_init(&skey, &zero);
    if (slot)
        __sync_fetch_and_add(slot, 1);

    struct proc_key_t pkey = {.pid = start->pid, .dev = key.dev};
    __builtin_memcpy(pkey.comm, start->comm, sizeof(pkey.comm));
    struct stat_t *pstat = procs.lookup_or_try_init(&pkey, &empty);
    if (pstat)
        add(pstat, start->bytes, delta, error);
    else
        bs_count_drop();

    started.delete(&key);
    return 0;
}
