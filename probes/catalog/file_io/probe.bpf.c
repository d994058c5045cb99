/* file_io: read/write system calls by process and file descriptor: calls, bytes, latency.
 *
 * Traces: syscalls:sys_enter/exit_{read,write,pread64,pwrite64,readv,writev} (the start time,
 *   fd and direction are kept per thread between enter and exit; the byte count is the return
 *   value), and, to name files that close before the probe ends, syscalls:sys_enter/exit_openat
 *   and sys_enter_close (the path as the process passed it, kept per open fd and copied into
 *   the row of its first read or write; rows are keyed by (pid, fd, time opened), so that I/O
 *   on a reused fd number goes to the right file).
 * Output: in-kernel sums per (pid, comm, fd, direction): calls, bytes, errors, total and longest
 *   time; log2 histograms of read and write latency; the first SAMPLE_LIMIT calls slower than
 *   SLOW_US as sample events. The reader names each fd from /proc/<pid>/fd when the process is
 *   opened before the probe and the process is alive, else from the openat map.
 * Overhead: medium. Every syscall takes the traced path while syscall tracepoints are attached
 *   (getpid ~1.3x) and each read/write costs two hash operations; nothing is streamed per call.
 * Caveats: these are system calls, not disk I/O: page-cache hits, pipes, sockets and terminals
 *   count too (the fd's path tells them apart), and mmap'd file access and io_uring are not seen.
 *   Calls that began before the probe are not counted. Paths from openat may be relative; fds
 *   made by dup2/fcntl, pipe, socket or accept have no openat name (named from /proc instead,
 *   while the process lives). The probe's own process is left out in the kernel (SELF_PID).
 */

#ifndef SAMPLE_LIMIT
#define SAMPLE_LIMIT 16
#endif
#ifndef SLOW_US
#define SLOW_US 10000
#endif
#ifndef OPS
#define OPS 0 /* 0 reads and writes, 1 reads only, 2 writes only */
#endif
#ifndef TRACK_OPENS
#define TRACK_OPENS 1
#endif

#define DIR_READ 0
#define DIR_WRITE 1
#define PATH_LEN 96

struct start_t {
    u64 ts;
    u32 fd;
    u32 dir;
};

struct key_t {
    u64 opened; /* when openat returned this fd during the probe (ns), 0 if before */
    u32 pid;
    u32 fd;
    u32 dir;
    u32 pad;
    char comm[BPFS_COMM_LEN];
};

struct path_t {
    char name[PATH_LEN];
};

struct val_t {
    u64 calls;
    u64 bytes;
    u64 errors;
    u64 total_ns;
    u64 max_ns;
    struct path_t path; /* the openat path when `opened` is set, copied when the row is made */
};

struct hkey_t {
    u32 dir;
    u32 slot;
};

struct fdkey_t {
    u32 pid;
    u32 fd;
};

/* An fd opened during the probe and still open: when, and its path. */
struct fdinfo_t {
    u64 opened;
    struct path_t path;
};

struct event_t {
    u64 ts;
    u64 lat_ns;
    s64 ret;
    u32 pid;
    u32 fd;
    u32 dir;
    u32 pad;
    char comm[BPFS_COMM_LEN];
};

BPF_HASH(starts, u32, struct start_t, 16384);
BPF_HASH(io, struct key_t, struct val_t, 8192);
BPF_HISTOGRAM(lat_hist, struct hkey_t, 128);
BPF_HASH(open_names, u32, u64, 4096);
/* Open fds opened during the probe (close removes them); when full, new opens go unnamed. */
BPF_HASH(fd_opened, struct fdkey_t, struct fdinfo_t, 16384);
BPF_ARRAY(sampled, u64, 1);
BPF_RINGBUF_OUTPUT(events, 8);

static __always_inline void io_enter(u32 fd, u32 dir)
{
    if (bs_skip())
        return;
    struct start_t start = {};
    start.ts = bpf_ktime_get_ns();
    start.fd = fd;
    start.dir = dir;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    starts.update(&tid, &start);
}

static __always_inline void io_exit(long ret)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct start_t *start = starts.lookup(&tid);
    if (!start)
        return;
    u64 lat = bpf_ktime_get_ns() - start->ts;
    struct key_t key = {};
    key.pid = bs_tgid();
    key.fd = start->fd;
    key.dir = start->dir;
#if TRACK_OPENS
    struct fdkey_t fdkey = {};
    fdkey.pid = key.pid;
    fdkey.fd = key.fd;
    struct fdinfo_t *info = fd_opened.lookup(&fdkey);
    if (info)
        key.opened = info->opened;
#endif
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    starts.delete(&tid);
    struct val_t *val = io.lookup(&key);
    if (!val) {
        /* a new row: name it once, from the open fd's path */
        struct val_t fresh = {};
#if TRACK_OPENS
        if (info)
            __builtin_memcpy(&fresh.path, &info->path, sizeof(fresh.path));
#endif
        io.insert(&key, &fresh); /* BPF_NOEXIST: another CPU may have made it first */
        val = io.lookup(&key);
        if (!val) {
            bs_count_drop();
            return;
        }
    }
    __sync_fetch_and_add(&val->calls, 1);
    if (ret < 0)
        __sync_fetch_and_add(&val->errors, 1);
    else
        __sync_fetch_and_add(&val->bytes, (u64)ret);
    __sync_fetch_and_add(&val->total_ns, lat);
    if (lat > val->max_ns)
        val->max_ns = lat;
    struct hkey_t hkey = {};
    hkey.dir = key.dir;
    hkey.slot = bpf_log2l(lat);
    lat_hist.atomic_increment(hkey);

    if (lat < (u64)SLOW_US * 1000)
        return;
    int idx = 0;
    u64 *n = sampled.lookup(&idx);
    if (!n || *n >= SAMPLE_LIMIT)
        return;
    __sync_fetch_and_add(n, 1);
    struct event_t ev = {};
    ev.ts = bpf_ktime_get_ns();
    ev.lat_ns = lat;
    ev.ret = ret;
    ev.pid = key.pid;
    ev.fd = key.fd;
    ev.dir = key.dir;
    __builtin_memcpy(ev.comm, key.comm, sizeof(ev.comm));
    if (events.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
}

#if OPS != 2
TRACEPOINT_PROBE(syscalls, sys_enter_read) { io_enter((u32)args->fd, DIR_READ); return 0; }
TRACEPOINT_PROBE(syscalls, sys_exit_read) { io_exit(args->ret); return 0; }
TRACEPOINT_PROBE(syscalls, sys_enter_pread64) { io_enter((u32)args->fd, DIR_READ); return 0; }
TRACEPOINT_PROBE(syscalls, sys_exit_pread64) { io_exit(args->ret); return 0; }
TRACEPOINT_PROBE(syscalls, sys_enter_readv) { io_enter((u32)args->fd, DIR_READ); return 0; }
TRACEPOINT_PROBE(syscalls, sys_exit_readv) { io_exit(args->ret); return 0; }
#endif
#if OPS != 1
TRACEPOINT_PROBE(syscalls, sys_enter_write) { io_enter((u32)args->fd, DIR_WRITE); return 0; }
TRACEPOINT_PROBE(syscalls, sys_exit_write) { io_exit(args->ret); return 0; }
TRACEPOINT_PROBE(syscalls, sys_enter_pwrite64) { io_enter((u32)args->fd, DIR_WRITE); return 0; }
TRACEPOINT_PROBE(syscalls, sys_exit_pwrite64) { io_exit(args->ret); return 0; }
TRACEPOINT_PROBE(syscalls, sys_enter_writev) { io_enter((u32)args->fd, DIR_WRITE); return 0; }
TRACEPOINT_PROBE(syscalls, sys_exit_writev) { io_exit(args->ret); return 0; }
#endif

#if TRACK_OPENS && defined(HAVE_TP_SYSCALLS_SYS_ENTER_OPENAT)
TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
    if (bs_skip())
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 name = (u64)args->filename;
    open_names.update(&tid, &name);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_openat)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *name = open_names.lookup(&tid);
    if (!name)
        return 0;
    u64 ptr = *name;
    open_names.delete(&tid);
    if (args->ret < 0)
        return 0;
    struct fdkey_t key = {};
    key.pid = bs_tgid();
    key.fd = (u32)args->ret;
    struct fdinfo_t info = {};
    info.opened = bpf_ktime_get_ns();
    bpf_probe_read_user_str(&info.path.name, sizeof(info.path.name), (void *)ptr);
    fd_opened.update(&key, &info);
    return 0;
}

#ifdef HAVE_TP_SYSCALLS_SYS_ENTER_CLOSE
TRACEPOINT_PROBE(syscalls, sys_enter_close)
{
    struct fdkey_t key = {};
    key.pid = bs_tgid();
    key.fd = (u32)args->fd;
    fd_opened.delete(&key);
    return 0;
}
#endif
#endif
