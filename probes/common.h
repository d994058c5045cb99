/* bpfsleuth common prelude, prepended by the runner to every probe's C (not #included, so that
 * bcc rewrites the map calls below like any in the probe's own file).
 *
 * Filters arrive only as -D defines built from validated numbers:
 *   FILTER_PID=<tgid>          FILTER_COMM={b0,b1,...,0} with FILTER_COMM_LEN=<n>
 * Use bs_skip() in task context (not in softirq, where current is unrelated).
 *
 * SELF_PID=<pid> is always defined by the probe's own process (probes.child): bs_skip() and
 * bs_skip_pid() leave that process out, so a probe never counts its own map reads and polls.
 *
 * Comm buffers are BPFS_COMM_LEN bytes. Not TASK_COMM_LEN: the kernel defines that one itself
 * (an enum in <linux/sched.h>), and a macro of the same name breaks any probe that includes a
 * kernel header pulling it in.
 */
#include <uapi/linux/ptrace.h>


#define BPFS_COMM_LEN 16

#ifndef SELF_PID
#define SELF_PID 0
#endif

#ifndef BPF_RB_NO_WAKEUP
#define BPF_RB_NO_WAKEUP 1
#endif

/* Events the kernel side could not hand over (ring buffer full), index 0. */
BPF_ARRAY(bs_dropped, u64, 1);

static __always_inline void bs_count_drop(void)
{
    int zero = 0;
    u64 *value = bs_dropped.lookup(&zero);
    if (value)
        __sync_fetch_and_add(value, 1);
}

static __always_inline u32 bs_tgid(void)
{
    return bpf_get_current_pid_tgid() >> 32;
}

/* 1 when the current task does not match the request's filters, or is this probe's process. */
static __always_inline int bs_skip(void)
{
    if (SELF_PID && bs_tgid() == SELF_PID)
        return 1;
#ifdef FILTER_PID
    if (bs_tgid() != FILTER_PID)
        return 1;
#endif
#ifdef FILTER_COMM
    char want[FILTER_COMM_LEN] = FILTER_COMM;
    char comm[BPFS_COMM_LEN] = {};
    bpf_get_current_comm(&comm, sizeof(comm));
#pragma unroll
    for (int i = 0; i < FILTER_COMM_LEN; i++) {
        if (comm[i] != want[i])
            return 1;
    }
#endif
    return 0;
}

/* Same test for a comm read from an event (e.g. a tracepoint's comm field). */
static __always_inline int bs_skip_comm(const char *comm)
{
#ifdef FILTER_COMM
    char want[FILTER_COMM_LEN] = FILTER_COMM;
#pragma unroll
    for (int i = 0; i < FILTER_COMM_LEN; i++) {
        if (comm[i] != want[i])
            return 1;
    }
#endif
    return 0;
}

static __always_inline int bs_skip_pid(u32 tgid)
{
    if (SELF_PID && tgid == SELF_PID)
        return 1;
#ifdef FILTER_PID
    if (tgid != FILTER_PID)
        return 1;
#endif
    return 0;
}
