/* tracepoint: counts the events of any one tracepoint by process (the generic probe).
 *
 * Traces: the tracepoint named by the `tracepoint` parameter, validated against tracefs
 *   (category and name ^[a-z0-9_]+$ and present under /sys/kernel/tracing/events) and used only
 *   as an attach target: no C is generated from it. The program reads no tracepoint field, so
 *   it works on any tracepoint of any kernel.
 * Output: an exact total, and counts per (pid, comm) in a bounded hash (overflow counted).
 * Overhead: one hash update per event; tracepoints that fire millions of times per second
 *   (sched_switch on a busy host, irq) cost a few percent of CPU while attached.
 * Caveats: in interrupt or softirq context the "process" is whoever was interrupted (often pid 0,
 *   swapper). For meaning beyond counts, use a catalog probe.
 */

struct key_t {
    u32 pid;
    char comm[BPFS_COMM_LEN];
};

BPF_HASH(counts, struct key_t, u64, 4096);
BPF_ARRAY(total, u64, 1);

int on_event(void *ctx)
{
    if (bs_skip())
        return 0;
    int zero = 0;
    u64 *all = total.lookup(&zero);
    if (all)
        __sync_fetch_and_add(all, 1);
    struct key_t key = {};
    key.pid = bs_tgid();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    u64 init = 0;
    u64 *count = counts.lookup_or_try_init(&key, &init);
    if (!count) {
        bs_count_drop();
        return 0;
    }
    __sync_fetch_and_add(count, 1);
    return 0;
}
