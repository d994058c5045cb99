/* tcp_retransmits: TCP retransmits and resets (sent and received) by connection and process.
 *
 * Traces: tcp:tcp_retransmit_skb, tcp:tcp_receive_reset, tcp:tcp_send_reset (read raw at the
 *   offsets tracefs gives, because its `enum sk_rst_reason` field is unknown to the fallback
 *   headers), and sock:inet_sock_set_state (CLOSE->SYN_SENT, in the connecting task) to learn
 *   which process owns a socket: retransmits and resets run in softirq/timer context with pid 0
 *   and are attributed by joining on skaddr.
 * Output: counts per (kind, tcp state, local, remote, owner) in the kernel; the first
 *   SAMPLE_LIMIT events as samples.
 * Overhead: low; these tracepoints fire per retransmit/reset, not per packet.
 * Caveats: owners are known only for connections opened during the run (else pid 0, "?"); a
 *   reset sent for a packet to a closed port has no socket at all, and kernels whose
 *   tcp_send_reset has no `reason` field (6.1, measured) do not trace such resets. With a pid/comm filter,
 *   events of unknown owner are left out.
 */

#define BS_AF_INET 2
#define BS_AF_INET6 10
#define BS_TCP_SYN_SENT 2
#define BS_IPPROTO_TCP 6

/* On kernels without `family` in tcp_retransmit_skb (5.10) the address arrays are copied with
 * bpf_probe_read_kernel: clang reuses a pointer into the record for several loads and the 5.10
 * verifier refuses a modified ctx pointer. Newer kernels keep the plain copy. */
#ifdef HAVE_FIELD_TCP_TCP_RETRANSMIT_SKB_FAMILY
#define BS_COPY_ARG(dst, src, n) __builtin_memcpy(dst, src, n)
#else
#define BS_COPY_ARG(dst, src, n) bpf_probe_read_kernel(dst, n, src)
#endif

/* Kernels before 5.11 have no `family` field in tcp:tcp_retransmit_skb; its saddr_v6 then holds an
 * IPv4 socket's address v4-mapped (::ffff:a.b.c.d), which tells the family. */
static __always_inline u16 family_of_v6(const u8 *v6)
{
#pragma unroll
    for (int i = 0; i < 10; i++)
        if (v6[i])
            return BS_AF_INET6;
    return (v6[10] == 0xff && v6[11] == 0xff) ? BS_AF_INET : BS_AF_INET6;
}

#define K_RETRANSMIT 1
#define K_RESET_SENT 2
#define K_RESET_RECEIVED 3

#ifndef SAMPLE_LIMIT
#define SAMPLE_LIMIT 32
#endif

struct owner_t {
    u32 pid;
    char comm[BPFS_COMM_LEN];
};

struct key_t {
    u32 kind;
    u32 pid;
    s32 state;
    u16 family;
    u16 sport;
    u16 dport;
    u16 pad;
    u8 saddr[16];
    u8 daddr[16];
    char comm[BPFS_COMM_LEN];
};

struct event_t { /* key_t's fields, flat (bcc cannot cast nested structs), then ts */
    u32 kind;
    u32 pid;
    s32 state;
    u16 family;
    u16 sport;
    u16 dport;
    u16 pad;
    u8 saddr[16];
    u8 daddr[16];
    char comm[BPFS_COMM_LEN];
    u64 ts;
};

BPF_TABLE("lru_hash", u64, struct owner_t, owners, 16384);
BPF_HASH(counts, struct key_t, u64, 4096);
BPF_ARRAY(totals, u64, 4);
BPF_ARRAY(sampled, u64, 1);
BPF_RINGBUF_OUTPUT(events, 8);

/* 1 when the event should be dropped by the filters; fills pid/comm from the owner. */
static __always_inline int owned(struct key_t *key, u64 sk)
{
    struct owner_t *owner = sk ? owners.lookup(&sk) : NULL;
    if (owner) {
        key->pid = owner->pid;
        __builtin_memcpy(key->comm, owner->comm, sizeof(key->comm));
    }
    if (bs_filtering()) {
        if (!owner)
            return 1;
        if (bs_skip_pid(owner->pid) || bs_skip_comm(owner->comm))
            return 1;
    }
    return 0;
}

static __always_inline void record(struct key_t *key)
{
    int idx = key->kind;
    u64 *total = totals.lookup(&idx);
    if (total)
        __sync_fetch_and_add(total, 1);
    u64 zero = 0;
    u64 *count = counts.lookup_or_try_init(key, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bs_count_drop();
    int first = 0;
    u64 *n = sampled.lookup(&first);
    if (!n || *n >= SAMPLE_LIMIT)
        return;
    __sync_fetch_and_add(n, 1);
    struct event_t ev = {};
    ev.ts = bpf_ktime_get_ns();
    __builtin_memcpy(&ev, key, sizeof(*key));
    if (events.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
}

TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != BS_IPPROTO_TCP || args->newstate != BS_TCP_SYN_SENT)
        return 0;
    u64 sk = (u64)args->skaddr;
    struct owner_t owner = {};
    owner.pid = bs_tgid();
    bpf_get_current_comm(&owner.comm, sizeof(owner.comm));
    owners.update(&sk, &owner);
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)
{
    struct key_t key = {};
    key.kind = K_RETRANSMIT;
    if (owned(&key, (u64)args->skaddr))
        return 0;
    key.state = args->state;
#ifdef HAVE_FIELD_TCP_TCP_RETRANSMIT_SKB_FAMILY
    key.family = args->family;
#else
    u8 v6[16];
    BS_COPY_ARG(v6, args->saddr_v6, sizeof(v6));
    key.family = family_of_v6(v6);
#endif
    key.sport = args->sport;
    key.dport = args->dport;
    if (key.family == BS_AF_INET6) {
        BS_COPY_ARG(key.saddr, args->saddr_v6, 16);
        BS_COPY_ARG(key.daddr, args->daddr_v6, 16);
    } else {
        BS_COPY_ARG(key.saddr, args->saddr, 4);
        BS_COPY_ARG(key.daddr, args->daddr, 4);
    }
    record(&key);
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_receive_reset)
{
    struct key_t key = {};
    key.kind = K_RESET_RECEIVED;
    if (owned(&key, (u64)args->skaddr))
        return 0;
    key.state = -1;
#ifdef HAVE_FIELD_TCP_TCP_RECEIVE_RESET_FAMILY
    key.family = args->family;
#else
    u8 v6[16];
    BS_COPY_ARG(v6, args->saddr_v6, sizeof(v6));
    key.family = family_of_v6(v6);
#endif
    key.sport = args->sport;
    key.dport = args->dport;
    if (key.family == BS_AF_INET6) {
        BS_COPY_ARG(key.saddr, args->saddr_v6, 16);
        BS_COPY_ARG(key.daddr, args->daddr_v6, 16);
    } else {
        BS_COPY_ARG(key.saddr, args->saddr, 4);
        BS_COPY_ARG(key.daddr, args->daddr, 4);
    }
    record(&key);
    return 0;
}

#ifdef HAVE_TP_TCP_TCP_SEND_RESET
/* sockaddr_in / sockaddr_in6 as the tracepoint stores them (28 bytes each) */
static __always_inline void read_sockaddr(void *src, u16 *family, u16 *port, u8 *addr)
{
    u8 raw[24] = {};
    bpf_probe_read_kernel(&raw, sizeof(raw), src);
    *family = raw[0] | (raw[1] << 8);
    *port = (raw[2] << 8) | raw[3];
    if (*family == BS_AF_INET6)
        __builtin_memcpy(addr, &raw[8], 16);
    else
        __builtin_memcpy(addr, &raw[4], 4);
}

int on_send_reset(void *ctx)
{
    struct key_t key = {};
    key.kind = K_RESET_SENT;
    u64 sk = 0;
    bpf_probe_read_kernel(&sk, sizeof(sk), ctx + TPOFF_TCP_TCP_SEND_RESET_SKADDR);
    if (owned(&key, sk))
        return 0;
    s32 state = -1;
    if (sk)
        bpf_probe_read_kernel(&state, sizeof(state), ctx + TPOFF_TCP_TCP_SEND_RESET_STATE);
    key.state = state;
    u16 dfamily = 0;
    read_sockaddr(ctx + TPOFF_TCP_TCP_SEND_RESET_SADDR, &key.family, &key.sport, key.saddr);
    read_sockaddr(ctx + TPOFF_TCP_TCP_SEND_RESET_DADDR, &dfamily, &key.dport, key.daddr);
    record(&key);
    return 0;
}
#endif
