/* oom_kills: OOM kills: the victim (pid, comm, memory at the kill, uid, oom_score_adj), the task
 * that triggered the kill and its cgroup.
 *
 * Traces: oom:mark_victim (the victim's numbers come from the tracepoint record; the current
 *   task is the one whose allocation failed, i.e. the trigger, and bpf_get_current_cgroup_id()
 *   gives its cgroup v2 id, resolved to a path in user space).
 * Output: one ring-buffer record per kill.
 * Overhead: none until an OOM kill happens.
 * Caveats: older kernels lack some fields (uid, pgtables, oom_score_adj): they read as 0 then;
 *   where mark_victim has no comm (5.10) it comes from the SIGKILL the OOM killer sends
 *   (signal:signal_generate).
 *   The cgroup path is resolved after the fact and is empty if the cgroup is gone.
 */

struct event_t {
    u64 ts;
    u64 total_vm;
    u64 anon_rss;
    u64 file_rss;
    u64 shmem_rss;
    u64 pgtables;
    u64 cgroup_id;
    u32 pid;
    u32 uid;
    u32 trigger_pid;
    s32 oom_score_adj;
    char comm[BPFS_COMM_LEN];
    char trigger_comm[BPFS_COMM_LEN];
    u32 has_memory; /* 0 where mark_victim has no memory fields (5.10): unknown, not zero */
};

BPF_RINGBUF_OUTPUT(events, 4);

#ifndef HAVE_FIELD_OOM_MARK_VICTIM_COMM
/* Older kernels (5.10): oom:mark_victim has no comm (6.1 has it). The OOM killer sends the victim
 * SIGKILL just before it marks it, so the victim's name comes from that signal:signal_generate. */
struct victim_comm_t {
    char comm[BPFS_COMM_LEN];
};
BPF_TABLE("lru_hash", u32, struct victim_comm_t, sigkilled, 256);

TRACEPOINT_PROBE(signal, signal_generate)
{
    if (args->sig != 9)
        return 0;
    struct victim_comm_t victim = {};
    __builtin_memcpy(victim.comm, args->comm, sizeof(victim.comm));
    u32 pid = args->pid;
    sigkilled.update(&pid, &victim);
    return 0;
}
#endif

TRACEPOINT_PROBE(oom, mark_victim)
{
    struct event_t ev = {};
    ev.ts = bpf_ktime_get_ns();
    ev.pid = args->pid;
#ifdef HAVE_FIELD_OOM_MARK_VICTIM_COMM
    TP_DATA_LOC_READ_STR(&ev.comm, comm, sizeof(ev.comm));
#else
    struct victim_comm_t *victim = sigkilled.lookup(&ev.pid);
    if (victim)
        __builtin_memcpy(ev.comm, victim->comm, sizeof(ev.comm));
#endif
    if (bs_skip_pid(ev.pid) || bs_skip_comm(ev.comm))
        return 0;
#ifdef HAVE_FIELD_OOM_MARK_VICTIM_TOTAL_VM
    ev.total_vm = args->total_vm;
    ev.anon_rss = args->anon_rss;
    ev.file_rss = args->file_rss;
    ev.shmem_rss = args->shmem_rss;
    ev.has_memory = 1;
#endif
#ifdef HAVE_FIELD_OOM_MARK_VICTIM_UID
    ev.uid = args->uid;
#endif
#ifdef HAVE_FIELD_OOM_MARK_VICTIM_PGTABLES
    ev.pgtables = args->pgtables;
#endif
#ifdef HAVE_FIELD_OOM_MARK_VICTIM_OOM_SCORE_ADJ
    ev.oom_score_adj = args->oom_score_adj;
#endif
    ev.trigger_pid = bs_tgid();
    bpf_get_current_comm(&ev.trigger_comm, sizeof(ev.trigger_comm));
    ev.cgroup_id = bpf_get_current_cgroup_id();
    if (events.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
    return 0;
}
