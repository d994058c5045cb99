/* cpu_profile: on-CPU sampling profile with kernel and user stacks, ready for a flame graph.
 *
 * Traces: a software perf event (PERF_COUNT_SW_CPU_CLOCK; no hardware PMU needed) on every CPU
 *   at FREQUENCY Hz. Each sample records the interrupted task (tgid, comm) and the ids of its
 *   user stack and kernel stack (BPF_STACK_TRACE), counted in a hash. The first sample of each
 *   process is also sent on a small ring buffer so user space loads that process's symbols
 *   while it is still alive.
 * Output: sample counts per (process, user stack, kernel stack); user space symbolises them
 *   into folded stacks ("comm;main;f;g 42"), hottest functions and busiest processes.
 * Overhead: low at 49-99 Hz (one stack walk per sample per CPU). Higher frequencies cost more;
 *   the spec caps them.
 * Caveats: user stacks are walked with frame pointers: code built without them (most distro
 *   libraries, -O2 without -fno-omit-frame-pointer) shows truncated stacks but a correct leaf.
 *   Processes that start and exit between two ring polls (100 ms) may stay unsymbolised
 *   ([unknown]). Stack-table collisions are counted as drops. The idle task is left out unless
 *   INCLUDE_IDLE.
 */
/* The context is struct bpf_perf_event_data, whose first member is the registers; it is taken
 * as pt_regs here because <uapi/linux/bpf_perf_event.h> pulls in kernel headers that clash with
 * the prelude's BPFS_COMM_LEN. */

#define BS_EEXIST 17

struct key_t {
    u32 pid;
    s32 user_stack;
    s32 kernel_stack;
    char comm[BPFS_COMM_LEN];
};

struct new_pid_t {
    u32 pid;
    char comm[BPFS_COMM_LEN];
};

BPF_HASH(counts, struct key_t, u64, 16384);
BPF_STACK_TRACE(stacks, 16384);
BPF_HASH(seen, u32, u8, 8192);
BPF_RINGBUF_OUTPUT(new_pids, 4);

int on_cpu_clock(struct pt_regs *ctx)
{
    u32 pid = bs_tgid();
    if (!INCLUDE_IDLE && pid == 0)
        return 0;
    if (bs_skip())
        return 0;
    struct key_t key = {.pid = pid};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    key.user_stack = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    key.kernel_stack = stacks.get_stackid(ctx, 0);
    if (key.user_stack == -BS_EEXIST || key.kernel_stack == -BS_EEXIST)
        bs_count_drop();
    counts.atomic_increment(key);

    if (pid != 0 && key.user_stack >= 0) {
        u8 one = 1;
        if (seen.insert(&pid, &one) == 0) {
            struct new_pid_t ev = {.pid = pid};
            __builtin_memcpy(ev.comm, key.comm, sizeof(ev.comm));
            if (new_pids.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
                bs_count_drop();
        }
    }
    return 0;
}
