/* exec_events: one record per exec, plus a log2 histogram of the gaps between execs. */
struct exec_event {
    u32 pid;
    char comm[BPFS_COMM_LEN];
};
BPF_RINGBUF_OUTPUT(execs, 16);
BPF_HISTOGRAM(gaps, int, 64);
BPF_ARRAY(last_ns, u64, 1);

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    if (bs_skip())
        return 0;
    int zero = 0;
    u64 now = bpf_ktime_get_ns();
    u64 *last = last_ns.lookup(&zero);
    if (last) {
        if (*last)
            gaps.increment(bpf_log2l(now - *last));
        *last = now;
    }
    struct exec_event ev = {};
    ev.pid = bs_tgid();
    bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
    if (execs.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
    return 0;
}
