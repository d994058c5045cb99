/* bpfsleuth common prelude, prepended by the runner to every probe's C (not #included, so that
 * bcc rewrites the map calls below like any in the probe's own file).
 *
 * Per-request values are run-time map values, not defines: the runner validates them (numbers
 * and the bytes of a comm, never text), and the probe's process writes them into `bs_config`
 * after loading and before attaching. So one compiled object serves every pid, comm and
 * run-time parameter (a host worker compiles each catalog probe once and keeps it).
 *   - filters: pid (a tgid) and comm, tested by bs_skip(), bs_skip_pid(), bs_skip_comm();
 *   - the probe's own process (self_pid), left out by bs_skip() and bs_skip_pid(), so a probe
 *     never counts its own map reads and polls;
 *   - parameters a spec marks `runtime: true`: the runner defines their macro as
 *     `bs_param(<slot>)`, so `SAMPLE_LIMIT` in the C reads the map (use it in expressions, not
 *     in `#if` or array sizes). Other parameters stay `-D<define>=<number>`.
 * Until the values are written (`armed` == 0) every bs_skip*() skips: nothing is counted with
 * filters not yet in force.
 * Use bs_skip() in task context (not in softirq, where current is unrelated).
 *
 * Comm buffers are BPFS_COMM_LEN bytes. Not TASK_COMM_LEN: the kernel defines that one itself
 * (an enum in <linux/sched.h>), and a macro of the same name breaks any probe that includes a
 * kernel header pulling it in.
 */
#include <uapi/linux/ptrace.h>


#define BPFS_COMM_LEN 16
#define BS_MAX_PARAMS 16

#ifndef BPF_RB_NO_WAKEUP
#define BPF_RB_NO_WAKEUP 1
#endif

/* Events the kernel side could not hand over (ring buffer full), index 0. */
BPF_ARRAY(bs_dropped, u64, 1);

/* This run's filters and run-time parameters, index 0 (probes.params.RuntimeConfig). */
struct bs_config_t {
    u32 armed;      /* 1 once the runner wrote this run's values */
    u32 self_pid;   /* the probe's own process */
    u32 filter_pid; /* 0: any process */
    u32 comm_set;   /* 1: only tasks whose comm is `comm` */
    char comm[BPFS_COMM_LEN];
    s64 params[BS_MAX_PARAMS];
};
BPF_ARRAY(bs_config, struct bs_config_t, 1);

static __always_inline void bs_count_drop(void)
{
    int zero = 0;
    u64 *value = bs_dropped.lookup(&zero);
    if (value)
        __sync_fetch_and_add(value, 1);
}

static __always_inline struct bs_config_t *bs_cfg(void)
{
    int zero = 0;
    return bs_config.lookup(&zero);
}

/* A run-time parameter's value by slot (0 before the runner wrote it). */
static __always_inline s64 bs_param(int slot)
{
    struct bs_config_t *config = bs_cfg();
    if (!config || slot < 0 || slot >= BS_MAX_PARAMS)
        return 0;
    return config->params[slot];
}

static __always_inline u32 bs_self_pid(void)
{
    struct bs_config_t *config = bs_cfg();
    return config ? config->self_pid : 0;
}
#define SELF_PID bs_self_pid()

static __always_inline u32 bs_tgid(void)
{
    return bpf_get_current_pid_tgid() >> 32;
}

/* 1 when a pid or comm filter is in force (or the values are not written yet). */
static __always_inline int bs_filtering(void)
{
    struct bs_config_t *config = bs_cfg();
    return !config || !config->armed || config->filter_pid || config->comm_set;
}

/* 1 when a pid filter is in force (or the values are not written yet). */
static __always_inline int bs_filtering_pid(void)
{
    struct bs_config_t *config = bs_cfg();
    return !config || !config->armed || config->filter_pid;
}

/* 1 when `comm` (NUL-terminated within BPFS_COMM_LEN) is not the filter's comm. */
static __always_inline int bs_comm_differs(struct bs_config_t *config, const char *comm)
{
#pragma unroll
    for (int i = 0; i < BPFS_COMM_LEN; i++) {
        if (comm[i] != config->comm[i])
            return 1;
        if (config->comm[i] == 0)
            break;
    }
    return 0;
}

/* 1 when the current task does not match the request's filters, or is this probe's process. */
static __always_inline int bs_skip(void)
{
    struct bs_config_t *config = bs_cfg();
    if (!config || !config->armed)
        return 1;
    u32 tgid = bs_tgid();
    if (config->self_pid && tgid == config->self_pid)
        return 1;
    if (config->filter_pid && tgid != config->filter_pid)
        return 1;
    if (config->comm_set) {
        char comm[BPFS_COMM_LEN] = {};
        bpf_get_current_comm(&comm, sizeof(comm));
        return bs_comm_differs(config, comm);
    }
    return 0;
}

/* Same test for a comm read from an event (e.g. a tracepoint's comm field). */
static __always_inline int bs_skip_comm(const char *comm)
{
    struct bs_config_t *config = bs_cfg();
    if (!config || !config->armed)
        return 1;
    return config->comm_set ? bs_comm_differs(config, comm) : 0;
}

static __always_inline int bs_skip_pid(u32 tgid)
{
    struct bs_config_t *config = bs_cfg();
    if (!config || !config->armed)
        return 1;
    if (config->self_pid && tgid == config->self_pid)
        return 1;
    return config->filter_pid && tgid != config->filter_pid;
}
