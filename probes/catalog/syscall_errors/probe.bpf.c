/* syscall_errors: system calls by process: counts, errors by errno, and the slowest calls.
 *
 * Traces: raw_syscalls:sys_enter (start time per thread; for x86_64 path-taking calls such as
 *   open, openat, openat2, execve, stat-family, access, unlink, readlink, also the user pointer
 *   to the path; for connect, bind and sendto the user pointer to the socket address) and
 *   raw_syscalls:sys_exit (syscall number and return value).
 * Output: in-kernel sums per (pid, comm, syscall): calls, errors, total and longest time; error
 *   counts per (pid, comm, syscall, errno); failing objects per (pid, syscall, errno, object):
 *   the path prefix, or the socket address read from user memory at exit (unix path, IPv4/IPv6
 *   address and port: what a refused, timed-out or missing-socket connect was aimed at);
 *   a log2 latency histogram per syscall; the first SAMPLE_LIMIT unusual errors as samples.
 *   Names for syscall numbers and errnos are added in user space.
 * Overhead: medium to high. Both tracepoints fire on every system call of the host and each
 *   call costs two hash operations and an update; no per-call streaming. errors_only=true keeps
 *   nothing per call except for path-taking calls, and touches the maps only on failures. Use
 *   the pid/comm filters on a busy host.
 * Caveats: calls that block (poll, futex, read on a socket, nanosleep) are slow by design; the
 *   "slowest" list says where time is spent waiting, not what is broken. Some errors are normal
 *   (EAGAIN from non-blocking I/O, ETIMEDOUT from timed waits, ENOENT from search paths).
 *   Calls started before the probe are not timed. 32-bit (compat) tasks use other numbers.
 *   The kernel-internal ERESTART* codes show when a signal interrupted a call. The probe's own
 *   process (which reads the maps with bpf() calls) is left out in the kernel (SELF_PID).
 */

#ifndef SAMPLE_LIMIT
#define SAMPLE_LIMIT 16
#endif
#ifndef ERRORS_ONLY
#define ERRORS_ONLY 0
#endif
#define MAX_ERRNO 4095
#define PATH_LEN 64

struct start_t {
    u64 ts;
    u64 path; /* user pointer: a path, or a sockaddr when kind == OBJ_SOCKADDR */
    u32 nr;
    u32 kind;
};

#define OBJ_PATH 0
#define OBJ_SOCKADDR 1

struct key_t {
    u32 pid;
    u32 nr;
    char comm[BPFS_COMM_LEN];
};

struct val_t {
    u64 count;
    u64 errors;
    u64 total_ns;
    u64 max_ns;
};

struct ekey_t {
    u32 pid;
    u32 nr;
    u32 err;
    u32 pad;
    char comm[BPFS_COMM_LEN];
};

struct pkey_t {
    u32 pid;
    u32 nr;
    u32 err;
    u32 kind; /* OBJ_PATH: a NUL-terminated path; OBJ_SOCKADDR: the sockaddr's first bytes */
    char path[PATH_LEN];
};

struct hkey_t {
    u32 nr;
    u32 slot;
};

struct event_t {
    u64 ts;
    u64 lat_ns;
    u32 pid;
    u32 tid;
    u32 nr;
    u32 err;
    u32 kind;
    u32 pad;
    char comm[BPFS_COMM_LEN];
    char path[PATH_LEN];
};

/* LRU: threads that exit inside a call (exit_group) never reach sys_exit */
BPF_TABLE("lru_hash", u32, struct start_t, starts, 16384);
BPF_HASH(calls, struct key_t, struct val_t, 8192);
BPF_HASH(errors, struct ekey_t, u64, 4096);
/* LRU: on a busy host, search paths that fail once each must not fill it before a loop
 * that fails on one object over and over (which stays fresh) */
BPF_TABLE("lru_hash", struct pkey_t, u64, error_paths, 8192);
BPF_HISTOGRAM(lat_hist, struct hkey_t, 4096);
BPF_ARRAY(sampled, u64, 1);
BPF_RINGBUF_OUTPUT(events, 8);

/* Which argument holds a user path, for x86_64 syscall numbers; -1 for none. */
static __always_inline int path_arg(long nr)
{
#if defined(__TARGET_ARCH_x86) || defined(__x86_64__)
    switch (nr) {
    case 2:   /* open */
    case 4:   /* stat */
    case 6:   /* lstat */
    case 21:  /* access */
    case 59:  /* execve */
    case 80:  /* chdir */
    case 83:  /* mkdir */
    case 84:  /* rmdir */
    case 87:  /* unlink */
    case 89:  /* readlink */
    case 90:  /* chmod */
    case 92:  /* chown */
    case 188: /* setxattr */
    case 191: /* getxattr */
        return 0;
    case 257: /* openat */
    case 258: /* mkdirat */
    case 262: /* newfstatat */
    case 263: /* unlinkat */
    case 267: /* readlinkat */
    case 269: /* faccessat */
    case 322: /* execveat */
    case 332: /* statx */
    case 437: /* openat2 */
    case 439: /* faccessat2 */
        return 1;
    }
#endif
    return -1;
}

/* Which argument holds a user sockaddr (x86_64): connect, bind, sendto; -1 for none. */
static __always_inline int sockaddr_arg(long nr)
{
#if defined(__TARGET_ARCH_x86) || defined(__x86_64__)
    switch (nr) {
    case 42: /* connect */
    case 49: /* bind */
        return 1;
    case 44: /* sendto */
        return 4;
    }
#endif
    return -1;
}

TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{
    int arg = path_arg(args->id);
    int sarg = arg < 0 ? sockaddr_arg(args->id) : -1;
    if (ERRORS_ONLY && arg < 0 && sarg < 0)
        return 0; /* errors only: nothing to keep for calls without a path or an address */
    if (bs_skip())
        return 0;
    struct start_t start = {};
    start.ts = bpf_ktime_get_ns();
    start.nr = args->id;
    if (arg >= 0 || sarg >= 0) {
        /* copied out: the verifier refuses ctx loads at a computed offset */
        u64 argv[5] = {};
        bpf_probe_read_kernel(argv, sizeof(argv), (void *)args->args);
        if (arg == 0)
            start.path = argv[0];
        else if (arg == 1)
            start.path = argv[1];
        else if (sarg == 1)
            start.path = argv[1];
        else if (sarg == 4)
            start.path = argv[4];
        start.kind = arg >= 0 ? OBJ_PATH : OBJ_SOCKADDR;
    }
    u32 tid = (u32)bpf_get_current_pid_tgid();
    starts.update(&tid, &start);
    return 0;
}

TRACEPOINT_PROBE(raw_syscalls, sys_exit)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = (u32)id;
    long ret = args->ret;
    u32 err = (ret < 0 && ret >= -MAX_ERRNO) ? (u32)-ret : 0;
    u64 lat = 0;
    u64 path = 0;
    u32 kind = OBJ_PATH;
    struct start_t *start = starts.lookup(&tid);
    if (ERRORS_ONLY) {
        /* only failures: the enter side kept just the paths; apply the filters here */
        if (!err || bs_skip())
            return 0;
        if (start && start->nr == (u32)args->id) {
            path = start->path;
            kind = start->kind;
            starts.delete(&tid);
        }
    } else {
        if (!start)
            return 0;
        lat = bpf_ktime_get_ns() - start->ts;
        path = start->path;
        kind = start->kind;
        starts.delete(&tid);
    }

    struct key_t key = {};
    key.pid = id >> 32;
    key.nr = (u32)args->id;
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    struct val_t zero = {};
    struct val_t *val = calls.lookup_or_try_init(&key, &zero);
    if (!val) {
        bs_count_drop();
        return 0;
    }
    __sync_fetch_and_add(&val->count, 1);
    /* not with errors only (lat is 0 there): clang turns an atomic add of a constant 0 into an
       atomic OR, which 5.10's verifier refuses ("BPF_STX uses reserved fields": it knows only
       atomic add; the other atomic operations came in 5.12) */
    if (!ERRORS_ONLY)
        __sync_fetch_and_add(&val->total_ns, lat);
    if (lat > val->max_ns)
        val->max_ns = lat;
    if (!ERRORS_ONLY) {
        struct hkey_t hkey = {};
        hkey.nr = key.nr;
        hkey.slot = bpf_log2l(lat);
        lat_hist.atomic_increment(hkey);
    }
    if (!err)
        return 0;

    __sync_fetch_and_add(&val->errors, 1);
    struct ekey_t ekey = {};
    ekey.pid = key.pid;
    ekey.nr = key.nr;
    ekey.err = err;
    __builtin_memcpy(ekey.comm, key.comm, sizeof(ekey.comm));
    u64 one = 0;
    u64 *count = errors.lookup_or_try_init(&ekey, &one);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bs_count_drop();

    struct pkey_t pkey = {};
    if (path) {
        pkey.pid = key.pid;
        pkey.nr = key.nr;
        pkey.err = err;
        pkey.kind = kind;
        if (kind == OBJ_PATH) {
            bpf_probe_read_user_str(&pkey.path, sizeof(pkey.path), (void *)path);
        } else {
            /* only the address's own bytes, so that one address is one key */
            u16 family = 0;
            bpf_probe_read_user(&family, sizeof(family), (void *)path);
            if (family == 1) { /* AF_UNIX: family, then sun_path (abstract: a NUL first) */
                pkey.path[0] = 1;
                bpf_probe_read_user_str(&pkey.path[2], PATH_LEN - 3, (void *)(path + 2));
                if (!pkey.path[2])
                    bpf_probe_read_user_str(&pkey.path[3], PATH_LEN - 4, (void *)(path + 3));
            } else if (family == 2) { /* AF_INET: family, port, address */
                bpf_probe_read_user(&pkey.path, 8, (void *)path);
            } else if (family == 10) { /* AF_INET6: family, port, flowinfo, address */
                bpf_probe_read_user(&pkey.path, 24, (void *)path);
            } else {
                pkey.path[0] = family & 0xff;
                pkey.path[1] = family >> 8;
            }
        }
        u64 *pcount = error_paths.lookup_or_try_init(&pkey, &one);
        if (pcount)
            __sync_fetch_and_add(pcount, 1);
    }

    /* samples skip the routine errnos: EINTR, EAGAIN, ENOTTY, ETIMEDOUT, EINPROGRESS, ERESTART* */
    if (err == 4 || err == 11 || err == 25 || err == 110 || err == 115 || err >= 512)
        return 0;
    int idx = 0;
    u64 *n = sampled.lookup(&idx);
    if (!n || *n >= SAMPLE_LIMIT)
        return 0;
    __sync_fetch_and_add(n, 1);
    struct event_t ev = {};
    ev.ts = bpf_ktime_get_ns();
    ev.lat_ns = lat;
    ev.pid = key.pid;
    ev.tid = tid;
    ev.nr = key.nr;
    ev.err = err;
    ev.kind = pkey.kind;
    __builtin_memcpy(ev.comm, key.comm, sizeof(ev.comm));
    __builtin_memcpy(ev.path, pkey.path, sizeof(ev.path));
    if (events.ringbuf_output(&ev, sizeof(ev), BPF_RB_NO_WAKEUP) != 0)
        bs_count_drop();
    return 0;
}
