/* tcp_connect: TCP connect attempts and their outcomes, by process and destination.
 *
 * Traces: sock:inet_sock_set_state (CLOSE->SYN_SENT runs in the connecting task: pid, comm and
 *   start time are stored by socket address; SYN_SENT->ESTABLISHED/CLOSE runs later, often in
 *   softirq with pid 0, and is joined back on skaddr), tcp:tcp_receive_reset (a RST while in
 *   SYN_SENT means refused), and syscalls:sys_enter/exit_connect (errors that fail before any SYN
 *   is sent: ENETUNREACH, EADDRNOTAVAIL, EACCES..., with the destination read from the user's
 *   sockaddr). Non-blocking connects return EINPROGRESS; their outcome comes from the state
 *   change, like blocking ones.
 * Output: in-kernel counts per (pid, comm, destination, outcome) with latency sums, a log2
 *   histogram of connect latency, and the first SAMPLE_LIMIT outcomes as samples (ring buffer).
 * Overhead: low. The state tracepoint fires a few times per connection. The connect syscall
 *   tracepoints put every syscall of the host on the slower traced path (getpid ~1.3x); turn
 *   them off with syscall_errors=false.
 * Caveats: "timeout" means the socket closed with no answer at all (no SYN-ACK, no RST): a SYN
 *   timeout or the application giving up. Attempts still in SYN_SENT when the probe ends are
 *   reported as pending, with their age (read from the start map). Connects started before the
 *   probe are not seen.
 */

#define BS_TCP_ESTABLISHED 1
#define BS_TCP_SYN_SENT 2
#define BS_TCP_CLOSE 7
#define BS_IPPROTO_TCP 6
#define BS_AF_INET 2
#define BS_AF_INET6 10
#define BS_EINPROGRESS 115

#define OUT_ESTABLISHED 0
#define OUT_REFUSED 1
#define OUT_TIMEOUT 2
#define OUT_ERROR 3

#ifndef SAMPLE_LIMIT
#define SAMPLE_LIMIT 32
#endif

struct start_t {
    u64 ts;
    u32 pid;
    u32 reset;
    u16 dport;
    u16 family;
    u8 daddr[16];
    char comm[BPFS_COMM_LEN];
};

struct okey_t {
    u32 pid;
    u32 outcome;
    s32 err;
    u16 dport;
    u16 family;
    u8 daddr[16];
    char comm[BPFS_COMM_LEN];
};

struct oval_t {
    u64 count;
    u64 lat_sum_ns;
    u64 lat_max_ns;
};

struct event_t {
    u64 ts;
    u64 lat_ns;
    u32 pid;
    u32 outcome;
    s32 err;
    u16 dport;
    u16 family;
    u8 daddr[16];
    char comm[BPFS_COMM_LEN];
};

struct inflight_t {
    u64 ts;
    u32 syn;
    u16 family;
    u16 dport;
    u8 daddr[16];
};

BPF_HASH(starts, u64, struct start_t, 16384);
BPF_HASH(outcomes, struct okey_t, struct oval_t, 4096);
BPF_HASH(inflight, u32, struct inflight_t, 4096);
BPF_HISTOGRAM(latency, int, 64);
BPF_ARRAY(sampled, u64, 1);
BPF_RINGBUF_OUTPUT(events, 8);

static __always_inline void record(struct okey_t *key, u64 lat_ns)
{
    struct oval_t zero = {};
    struct oval_t *val = outcomes.lookup_or_try_init(key, &zero);
    if (!val) {
        bs_count_drop();
        return;
    }
    __sync_fetch_and_add(&val->count, 1);
    __sync_fetch_and_add(&val->lat_sum_ns, lat_ns);
    if (lat_ns > val->lat_max_ns)
        val->lat_max_ns = lat_ns;
    if (key->outcome != OUT_ERROR)
        latency.atomic_increment(bpf_log2l(lat_ns));

    int idx = 0;
    u64 *n = sampled.lookup(&idx);
    if (!n || *n >= SAMPLE_LIMIT)
        return;
    __sync_fetch_and_add(n, 1);
    struct event_t ev = {};
    ev.ts = bpf_ktime_get_ns();
    ev.lat_ns = lat_ns;
    ev.pid = key->pid;
    ev.outcome = key->outcome;
    ev.err = key->err;
    ev.dport = key->dport;
    ev.family = key->family;
    __builtin_memcpy(ev.daddr, key->daddr, sizeof(ev.daddr));
    __builtin_memcpy(ev.comm, key->comm, sizeof(ev.comm));
    if (events.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
}

TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != BS_IPPROTO_TCP)
        return 0;
    u64 sk = (u64)args->skaddr;
    if (args->newstate == BS_TCP_SYN_SENT) {
        if (bs_skip())
            return 0;
        struct start_t start = {};
        start.ts = bpf_ktime_get_ns();
        start.pid = bs_tgid();
        start.dport = args->dport;
        start.family = args->family;
        if (args->family == BS_AF_INET6)
            __builtin_memcpy(start.daddr, args->daddr_v6, 16);
        else
            __builtin_memcpy(start.daddr, args->daddr, 4);
        bpf_get_current_comm(&start.comm, sizeof(start.comm));
        starts.update(&sk, &start);
        u32 tid = (u32)bpf_get_current_pid_tgid();
        struct inflight_t *call = inflight.lookup(&tid);
        if (call)
            call->syn = 1;
        return 0;
    }
    if (args->oldstate != BS_TCP_SYN_SENT)
        return 0;
    struct start_t *start = starts.lookup(&sk);
    if (!start)
        return 0;
    struct okey_t key = {};
    if (args->newstate == BS_TCP_ESTABLISHED)
        key.outcome = OUT_ESTABLISHED;
    else if (args->newstate == BS_TCP_CLOSE)
        key.outcome = start->reset ? OUT_REFUSED : OUT_TIMEOUT;
    else
        return 0;
    key.pid = start->pid;
    __builtin_memcpy(key.comm, start->comm, sizeof(key.comm));
    key.dport = args->dport;
    key.family = args->family;
    if (args->family == BS_AF_INET6)
        __builtin_memcpy(key.daddr, args->daddr_v6, 16);
    else
        __builtin_memcpy(key.daddr, args->daddr, 4);
    u64 lat = bpf_ktime_get_ns() - start->ts;
    starts.delete(&sk);
    record(&key, lat);
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_receive_reset)
{
    u64 sk = (u64)args->skaddr;
    struct start_t *start = starts.lookup(&sk);
    if (start)
        start->reset = 1;
    return 0;
}

#if defined(HAVE_TP_SYSCALLS_SYS_ENTER_CONNECT) && SYSCALL_ERRORS
struct bs_sockaddr_t {
    u16 family;
    u16 port; /* network order */
    u32 v4_or_flowinfo;
    u8 v6[16];
};

TRACEPOINT_PROBE(syscalls, sys_enter_connect)
{
    if (bs_skip())
        return 0;
    struct bs_sockaddr_t sa = {};
    if (bpf_probe_read_user(&sa, sizeof(sa.family) + sizeof(sa.port) + 4,
                            (void *)args->uservaddr) != 0)
        return 0;
    if (sa.family != BS_AF_INET && sa.family != BS_AF_INET6)
        return 0;
    struct inflight_t call = {};
    call.ts = bpf_ktime_get_ns();
    call.family = sa.family;
    call.dport = (sa.port >> 8) | ((sa.port & 0xff) << 8);
    if (sa.family == BS_AF_INET6) {
        if (bpf_probe_read_user(&sa, sizeof(sa), (void *)args->uservaddr) != 0)
            return 0;
        __builtin_memcpy(call.daddr, sa.v6, 16);
    } else {
        __builtin_memcpy(call.daddr, &sa.v4_or_flowinfo, 4);
    }
    u32 tid = (u32)bpf_get_current_pid_tgid();
    inflight.update(&tid, &call);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_connect)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct inflight_t *call = inflight.lookup(&tid);
    if (!call)
        return 0;
    long ret = args->ret;
    if (ret < 0 && ret != -BS_EINPROGRESS && !call->syn) {
        struct okey_t key = {};
        key.pid = bs_tgid();
        bpf_get_current_comm(&key.comm, sizeof(key.comm));
        key.outcome = OUT_ERROR;
        key.err = (s32)-ret;
        key.dport = call->dport;
        key.family = call->family;
        __builtin_memcpy(key.daddr, call->daddr, 16);
        record(&key, bpf_ktime_get_ns() - call->ts);
    }
    inflight.delete(&tid);
    return 0;
}
#endif
