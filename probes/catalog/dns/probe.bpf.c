/* dns: DNS queries by process (server, name, type), their responses or timeouts and latency,
 * plus resolver latency of libc getaddrinfo().
 *
 * Traces: syscalls sendto/sendmsg/sendmmsg to port DNS_PORT (the destination from the user's
 *   sockaddr, or for connected sockets from the connect() seen on that fd), and
 *   recvfrom/recvmsg on those fds for the answers; the first DNS_COPY bytes of each packet are
 *   copied from user memory and parsed in user space (id, name, type, rcode). A uprobe and a
 *   uretprobe on libc getaddrinfo() give the resolver's own latency and result (optional: only
 *   dynamically linked glibc programs; static/Go/musl ones are still seen at the syscalls).
 * Output: one ring-buffer record per query, answer and getaddrinfo call (drops counted).
 * Overhead: low for DNS itself; the send/recv syscall tracepoints run a map lookup on every
 *   sendto/sendmsg/recvfrom/recvmsg of the host, and any syscalls tracepoint slows every
 *   syscall a little.
 * Caveats: DNS over TCP (port 53/tcp), DoT/DoH and sockets connected before the probe started
 *   (for send() on connected sockets) are not parsed; write()/read() on connected UDP sockets
 *   are not traced. A query with no answer inside the window counts as unanswered (timeout).
 */

#ifndef DNS_PORT
#define DNS_PORT 53
#endif
#define DNS_COPY 128
#define NAME_LEN 64
#define BS_AF_INET 2
#define BS_AF_INET6 10

#define EV_QUERY 1
#define EV_ANSWER 2
#define EV_GAI 3

struct dest_t {
    u16 family;
    u16 port;
    u8 addr[16];
};

struct fdkey_t {
    u32 tgid;
    u32 fd;
};

struct event_t {
    u64 ts;
    u64 lat_ns;
    u32 kind;
    u32 pid;
    u32 fd;
    s32 ret;
    u32 len;
    u16 family;
    u16 port;
    u8 addr[16];
    char comm[BPFS_COMM_LEN];
    u8 data[DNS_COPY];
};

struct recv_t {
    u32 fd;
    u32 is_msg;
    u64 buf; /* recvfrom: buffer; recvmsg: user msghdr */
};

struct gai_t {
    u64 ts;
    char name[NAME_LEN];
};

struct bs_iovec {
    u64 base;
    u64 len;
};

struct bs_msghdr {
    u64 name;
    u32 namelen;
    u32 pad;
    u64 iov;
    u64 iovlen;
};

BPF_TABLE("lru_hash", struct fdkey_t, struct dest_t, dns_fds, 4096);
BPF_HASH(connecting, u32, struct fdkey_t, 1024);
BPF_HASH(connect_dest, u32, struct dest_t, 1024);
BPF_HASH(receiving, u32, struct recv_t, 4096);
BPF_HASH(gai_calls, u32, struct gai_t, 1024);
BPF_PERCPU_ARRAY(scratch, struct event_t, 1);
BPF_RINGBUF_OUTPUT(events, 16);

/* Read a sockaddr; 1 when it is an INET/INET6 address on DNS_PORT. */
static __always_inline int read_dest(struct dest_t *dest, u64 uaddr)
{
    u8 raw[24] = {};
    if (!uaddr || bpf_probe_read_user(&raw, sizeof(raw), (void *)uaddr) != 0)
        return 0;
    u16 family = raw[0] | (raw[1] << 8);
    u16 port = (raw[2] << 8) | raw[3];
    if (port != DNS_PORT)
        return 0;
    dest->family = family;
    dest->port = port;
    if (family == BS_AF_INET) {
        __builtin_memcpy(dest->addr, &raw[4], 4);
        return 1;
    }
    if (family == BS_AF_INET6) {
        __builtin_memcpy(dest->addr, &raw[8], 16);
        return 1;
    }
    return 0;
}

static __always_inline void emit_packet(u32 kind, u32 fd, struct dest_t *dest, u64 buf, u64 len,
                                        s32 ret)
{
    int zero = 0;
    struct event_t *ev = scratch.lookup(&zero);
    if (!ev)
        return;
    ev->ts = bpf_ktime_get_ns();
    ev->lat_ns = 0;
    ev->kind = kind;
    ev->pid = bs_tgid();
    ev->fd = fd;
    ev->ret = ret;
    ev->len = (u32)len;
    ev->family = dest->family;
    ev->port = dest->port;
    __builtin_memcpy(ev->addr, dest->addr, 16);
    bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
    __builtin_memset(ev->data, 0, DNS_COPY);
    u32 copy = (u32)len;
    if (copy > DNS_COPY)
        copy = DNS_COPY;
    if (copy >= 12)  /* ((copy - 1) & 127) + 1 is 1..128 for the verifier */
        bpf_probe_read_user(ev->data, ((copy - 1) & (DNS_COPY - 1)) + 1, (void *)buf);
    if (events.ringbuf_output(ev, sizeof(*ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
}

/* A query leaves on fd to dest (from the call, or from the fd's connect()). */
static __always_inline void on_query(u32 fd, u64 uaddr, u64 buf, u64 len)
{
    struct dest_t dest = {};
    struct fdkey_t key = {.tgid = bs_tgid(), .fd = fd};
    if (uaddr) {
        if (!read_dest(&dest, uaddr))
            return;
        dns_fds.update(&key, &dest);
    } else {
        struct dest_t *known = dns_fds.lookup(&key);
        if (!known)
            return;
        dest = *known;
    }
    if (bs_skip())
        return;
    emit_packet(EV_QUERY, fd, &dest, buf, len, 0);
}

static __always_inline void query_from_msghdr(u32 fd, u64 umsg)
{
    struct bs_msghdr msg = {};
    if (bpf_probe_read_user(&msg, sizeof(msg), (void *)umsg) != 0 || !msg.iov)
        return;
    struct bs_iovec iov = {};
    if (bpf_probe_read_user(&iov, sizeof(iov), (void *)msg.iov) != 0)
        return;
    on_query(fd, msg.name, iov.base, iov.len);
}

TRACEPOINT_PROBE(syscalls, sys_enter_connect)
{
    struct dest_t dest = {};
    if (!read_dest(&dest, (u64)args->uservaddr))
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct fdkey_t key = {.tgid = bs_tgid(), .fd = (u32)args->fd};
    connecting.update(&tid, &key);
    connect_dest.update(&tid, &dest);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_connect)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct fdkey_t *key = connecting.lookup(&tid);
    struct dest_t *dest = connect_dest.lookup(&tid);
    if (key && dest && args->ret == 0)
        dns_fds.update(key, dest);
    connecting.delete(&tid);
    connect_dest.delete(&tid);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_sendto)
{
    on_query((u32)args->fd, (u64)args->addr, (u64)args->buff, (u64)args->len);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_sendmsg)
{
    query_from_msghdr((u32)args->fd, (u64)args->msg);
    return 0;
}

#ifdef HAVE_TP_SYSCALLS_SYS_ENTER_SENDMMSG
TRACEPOINT_PROBE(syscalls, sys_enter_sendmmsg)
{
    /* struct mmsghdr = {struct msghdr (56 bytes), unsigned int msg_len} padded to 64 */
    u64 first = (u64)args->mmsg;
    query_from_msghdr((u32)args->fd, first);
    if (args->vlen > 1)
        query_from_msghdr((u32)args->fd, first + 64);
    return 0;
}
#endif

static __always_inline void on_recv_enter(u32 fd, u64 buf, u32 is_msg)
{
    struct fdkey_t key = {.tgid = bs_tgid(), .fd = fd};
    if (!dns_fds.lookup(&key))
        return;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct recv_t call = {.fd = fd, .is_msg = is_msg, .buf = buf};
    receiving.update(&tid, &call);
}

static __always_inline void on_recv_exit(long ret)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct recv_t *call = receiving.lookup(&tid);
    if (!call)
        return;
    struct recv_t local = *call;
    receiving.delete(&tid);
    if (ret <= 0 || bs_skip())
        return;
    struct fdkey_t key = {.tgid = bs_tgid(), .fd = local.fd};
    struct dest_t *dest = dns_fds.lookup(&key);
    if (!dest)
        return;
    struct dest_t copy = *dest;
    u64 buf = local.buf;
    if (local.is_msg) {
        struct bs_msghdr msg = {};
        struct bs_iovec iov = {};
        if (bpf_probe_read_user(&msg, sizeof(msg), (void *)buf) != 0 ||
            bpf_probe_read_user(&iov, sizeof(iov), (void *)msg.iov) != 0)
            return;
        buf = iov.base;
    }
    emit_packet(EV_ANSWER, local.fd, &copy, buf, (u64)ret, 0);
}

TRACEPOINT_PROBE(syscalls, sys_enter_recvfrom)
{
    on_recv_enter((u32)args->fd, (u64)args->ubuf, 0);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_recvfrom)
{
    on_recv_exit(args->ret);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_recvmsg)
{
    on_recv_enter((u32)args->fd, (u64)args->msg, 1);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_recvmsg)
{
    on_recv_exit(args->ret);
    return 0;
}

int on_gai_entry(struct pt_regs *ctx)
{
    if (bs_skip())
        return 0;
    struct gai_t call = {};
    call.ts = bpf_ktime_get_ns();
    bpf_probe_read_user_str(&call.name, sizeof(call.name), (void *)PT_REGS_PARM1(ctx));
    u32 tid = (u32)bpf_get_current_pid_tgid();
    gai_calls.update(&tid, &call);
    return 0;
}

int on_gai_return(struct pt_regs *ctx)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct gai_t *call = gai_calls.lookup(&tid);
    if (!call)
        return 0;
    int zero = 0;
    struct event_t *ev = scratch.lookup(&zero);
    if (!ev) {
        gai_calls.delete(&tid);
        return 0;
    }
    ev->ts = bpf_ktime_get_ns();
    ev->lat_ns = ev->ts - call->ts;
    ev->kind = EV_GAI;
    ev->pid = bs_tgid();
    ev->fd = 0;
    ev->ret = (s32)PT_REGS_RC(ctx);
    ev->len = 0;
    ev->family = 0;
    ev->port = 0;
    __builtin_memset(ev->addr, 0, 16);
    bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
    __builtin_memset(ev->data, 0, DNS_COPY);
    __builtin_memcpy(ev->data, call->name, NAME_LEN);
    gai_calls.delete(&tid);
    if (events.ringbuf_output(ev, sizeof(*ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
    return 0;
}
