/* memory_growth: which processes' resident memory grows during the window, and how fast.
 *
 * Traces: kmem:rss_stat, which the kernel emits when a process's RSS counter (file, anon, swap
 *   entries, shmem) changes; only events about the current task's own memory (curr=1) are kept,
 *   so the counter belongs to the current tgid.
 * Output: per (pid, counter) the first and last value seen, the highest, the bytes released
 *   (the sum of every decrease: what a process that allocates and frees over and over gives
 *   back) and the number of updates, in the kernel; the reader sums file + anon + shmem per
 *   process and tells growers (kept what they gained) from churners (freed as much as they
 *   gained: two points of a sawtooth are not growth).
 * Overhead: medium: the tracepoint fires on RSS changes (page-fault batches, unmaps); the handler
 *   does one hash lookup and a few stores.
 * Caveats: a process whose memory does not change in the window is not listed; the first value
 *   is the one at its first change in the window, so growth is a lower bound.
 */

struct key_t {
    u32 pid;
    s32 member;
};

struct val_t {
    s64 first;
    s64 last;
    s64 max;
    s64 freed;
    u64 first_ts;
    u64 last_ts;
    u64 updates;
    char comm[BPFS_COMM_LEN];
};

BPF_HASH(rss, struct key_t, struct val_t, 4096);

TRACEPOINT_PROBE(kmem, rss_stat)
{
    if (!args->curr || bs_skip())
        return 0;
    struct key_t key = {};
    key.pid = bs_tgid();
    key.member = args->member;
    s64 size = args->size;
    u64 now = bpf_ktime_get_ns();
    struct val_t *val = rss.lookup(&key);
    if (!val) {
        struct val_t init = {};
        init.first = size;
        init.last = size;
        init.max = size;
        init.first_ts = now;
        init.last_ts = now;
        init.updates = 1;
        bpf_get_current_comm(&init.comm, sizeof(init.comm));
        if (rss.update(&key, &init) != 0)
            bs_count_drop();
        return 0;
    }
    if (size < val->last)
        val->freed += val->last - size;
    val->last = size;
    val->last_ts = now;
    if (size > val->max)
        val->max = size;
    __sync_fetch_and_add(&val->updates, 1);
    return 0;
}
