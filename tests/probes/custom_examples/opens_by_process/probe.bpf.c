/* opens_by_process: counts openat() calls per process, in the kernel. Overhead: low. */
struct key_t {
    u32 pid;
    char comm[16];
};
BPF_HASH(opens, struct key_t, u64, 1024);

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    if (bs_skip())          /* the request's pid/comm filters (probes/common.h) */
        return 0;
    struct key_t key = {};
    key.pid = bs_tgid();
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    opens.increment(key);
    return 0;
}
