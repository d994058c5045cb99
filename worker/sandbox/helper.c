/*
 * bpfsleuth-sandbox: apply the sandbox to itself, then execve the command (docs/sandbox.md).
 *
 *   bpfsleuth-sandbox --report-fd N --parent PID [--caps a,b] [--ip] [--tcp] [--fork]
 *                     [--unix] [--dev-ioctl] [--no-landlock] [--rdwr] [--as BYTES] [--cpu SECONDS] [--nofile N] [--nproc N]
 *                     [--check] -- PATH ARGV0 [ARG...]
 *
 * Single-threaded and started by posix_spawn/fork+exec from Python, so nothing here runs in a
 * forked copy of a threaded process (no preexec_fn). Order: parent-death signal, session,
 * rlimits, capabilities (securebits, bounding, capset, ambient), no_new_privs, Landlock (best
 * effort, by ABI), seccomp (raw BPF: only libc is needed), then one line on the report fd
 * (close-on-exec) and execve. A required layer that cannot be set is refused: the line says
 * "refused <why>" and the exit code is 121. A failed execve writes "exec <errno> <text>" and
 * exits 127. With --check, it reports and exits 0 instead of running anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXIT_REFUSED 121
#define EXIT_EXEC 127

#if defined(__x86_64__)
#define ARCH_NR AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NR AUDIT_ARCH_AARCH64
#else
#error "bpfsleuth-sandbox: only x86_64 and aarch64 are supported"
#endif

/* Syscalls newer than the build host's headers: numbers from 424 on are the same on every arch. */
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif
#ifndef __NR_open_tree
#define __NR_open_tree 428
#define __NR_move_mount 429
#define __NR_fsopen 430
#define __NR_fsconfig 431
#define __NR_fsmount 432
#define __NR_fspick 433
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_openat2
#define __NR_openat2 437
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_process_madvise
#define __NR_process_madvise 440
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif
#ifndef __NR_quotactl_fd
#define __NR_quotactl_fd 443
#endif
#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif
#ifndef __NR_process_mrelease
#define __NR_process_mrelease 448
#endif
#define NR_fchmodat2 452
#define NR_lsm_set_self_attr 460
#define NR_setxattrat 463
#define NR_removexattrat 466
#define NR_open_tree_attr 467
#define NR_file_setattr 469

/* Landlock UAPI (linux/landlock.h of 6.x; defined here so old headers build it). */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};
struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));
#define LL_CREATE_RULESET_VERSION (1U << 0)
#define LL_RULE_PATH_BENEATH 1
#define LL_FS_EXECUTE (1ULL << 0)
#define LL_FS_READ_FILE (1ULL << 2)
#define LL_FS_READ_DIR (1ULL << 3)
#define LL_FS_IOCTL_DEV (1ULL << 15)
#define LL_NET_BIND_TCP (1ULL << 0)
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define SECBIT_NOROOT_ (1 << 0)
#define SECBIT_NOROOT_LOCKED_ (1 << 1)
#define SECBIT_KEEP_CAPS_LOCKED_ (1 << 5)

static int report_fd = -1;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    if (report_fd >= 0) {
        ssize_t ignored = write(report_fd, line, (size_t)n);
        (void)ignored;
    } else {
        ssize_t ignored = write(2, line, (size_t)n);
        (void)ignored;
    }
}

static _Noreturn void refuse(const char *what) {
    int saved = errno;
    report("refused %s: %s", what, saved ? strerror(saved) : "failed");
    _exit(EXIT_REFUSED);
}

/* ---- seccomp: a small BPF assembler ------------------------------------------------------ */

#define MAX_INSNS 1024
#define T_NEXT 0  /* fall through to the next instruction */
#define T_DENY -1 /* the block's RET ERRNO(EPERM) */
#define T_ALLOW -2 /* the block's RET ALLOW */
#define T_NOSYS -3 /* RET ERRNO(ENOSYS) */
#define T_LABEL 1000 /* T_LABEL + n: label n inside the block */

static struct sock_filter prog[MAX_INSNS];
static int jt_sym[MAX_INSNS], jf_sym[MAX_INSNS];
static int n_insns, block_start;
static int labels[16];

static void emit(uint16_t code, uint32_t k, int jt, int jf) {
    if (n_insns >= MAX_INSNS) { errno = E2BIG; refuse("seccomp filter too long"); }
    prog[n_insns] = (struct sock_filter)BPF_STMT(code, k);
    jt_sym[n_insns] = jt;
    jf_sym[n_insns] = jf;
    n_insns++;
}
static void ld_nr(void) { emit(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0); }
static void ld_arg(int i) { /* low 32 bits: the kernel reads int/unsigned int arguments so */
    emit(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + 8 * i, 0, 0);
}
static void ld_arg_hi(int i) {
    emit(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args) + 8 * i + 4, 0, 0);
}
static void jeq(uint32_t k, int jt, int jf) { emit(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf); }
static void jset(uint32_t k, int jt, int jf) { emit(BPF_JMP | BPF_JSET | BPF_K, k, jt, jf); }
static void and_(uint32_t k) { emit(BPF_ALU | BPF_AND | BPF_K, k, 0, 0); }
static void ret(uint32_t k) { emit(BPF_RET | BPF_K, k, 0, 0); }
static void label(int n) { labels[n] = n_insns; }

/* A block handles one syscall: `if (nr == N) { body }`; the body ends in RET. */
static int block_jeq;
static void begin_block(long nr) {
    ld_nr();
    block_jeq = n_insns;
    jeq((uint32_t)nr, T_NEXT, 0); /* jf patched to skip the block */
    block_start = n_insns;
    for (int i = 0; i < 16; i++) labels[i] = -1;
}
static void end_block(void) {
    int deny = n_insns;
    ret(SECCOMP_RET_ERRNO | EPERM);
    int allow = n_insns;
    ret(SECCOMP_RET_ALLOW);
    int nosys = n_insns;
    ret(SECCOMP_RET_ERRNO | ENOSYS);
    for (int i = block_start; i < n_insns; i++) {
        if (BPF_CLASS(prog[i].code) != BPF_JMP) continue;
        int *syms[2] = {&jt_sym[i], &jf_sym[i]};
        uint8_t *offs[2] = {&prog[i].jt, &prog[i].jf};
        for (int s = 0; s < 2; s++) {
            int sym = *syms[s], target;
            if (sym == T_NEXT) target = i + 1;
            else if (sym == T_DENY) target = deny;
            else if (sym == T_ALLOW) target = allow;
            else if (sym == T_NOSYS) target = nosys;
            else target = labels[sym - T_LABEL];
            int off = target - i - 1;
            if (off < 0 || off > 255) { errno = ERANGE; refuse("seccomp jump out of range"); }
            *offs[s] = (uint8_t)off;
        }
    }
    int skip = n_insns - block_jeq - 1;
    if (skip > 255) { errno = ERANGE; refuse("seccomp block too long"); }
    prog[block_jeq].jt = 0;
    prog[block_jeq].jf = (uint8_t)skip;
}

static void deny_always(long nr, int err) {
    begin_block(nr);
    ret(SECCOMP_RET_ERRNO | (uint32_t)err);
    end_block();
}
/* Deny when args[i] (low 32 bits) has any bit of `mask`. */
static void deny_flags(long nr, int i, uint32_t mask) {
    begin_block(nr);
    ld_arg(i);
    jset(mask, T_DENY, T_ALLOW);
    end_block();
}
/* Deny when args[i] (low 32 bits, masked) equals one of `vals`. */
static void deny_values(long nr, int i, uint32_t mask, const uint32_t *vals, int n) {
    begin_block(nr);
    ld_arg(i);
    if (mask != 0xffffffffU) and_(mask);
    for (int v = 0; v < n; v++) jeq(vals[v], T_DENY, T_NEXT);
    ret(SECCOMP_RET_ALLOW);
    end_block();
}
/* Signals: allowed with signal 0, or when the target (args[target]) is this process, its group
 * (0 or -pid) and nothing else. The pid is the program's: execve keeps it. */
static void signal_rule(long nr, int target, int sig, uint32_t self, int group_ok) {
    begin_block(nr);
    if (sig >= 0) {
        ld_arg(sig);
        jeq(0, T_ALLOW, T_NEXT);
    }
    ld_arg(target);
    jeq(self, T_ALLOW, T_NEXT);
    if (group_ok) {
        jeq(0, T_ALLOW, T_NEXT);
        jeq((uint32_t)(-(int32_t)self), T_ALLOW, T_NEXT);
    }
    ret(SECCOMP_RET_ERRNO | EPERM);
    end_block();
}
/* Scheduling and priority setters: only for itself (0 or its own pid). */
static void self_only(long nr, int i, uint32_t self) {
    begin_block(nr);
    ld_arg(i);
    jeq(0, T_ALLOW, T_NEXT);
    jeq(self, T_ALLOW, T_DENY);
    end_block();
}

#define O_WRITE_MASK (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | 020000000 /* __O_TMPFILE */)
#define CLONE_NS_MASK 0x7e020000U /* NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define CLONE_THREAD_ 0x00010000U

struct options {
    int ip, tcp, unix_, fork, dev_ioctl, check, no_landlock, rdwr;
    uint64_t caps;
    long long as_bytes, cpu_s, nofile, nproc;
    pid_t parent;
};

static void build_filter(const struct options *o, uint32_t self) {
    n_insns = 0;
    emit(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
    emit(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NR, 0, 0);
    prog[1].jt = 1; /* arch ok: skip the kill */
    prog[1].jf = 0;
    ret(SECCOMP_RET_KILL_PROCESS);
#if defined(__x86_64__)
    ld_nr();
    emit(BPF_JMP | BPF_JGE | BPF_K, 0x40000000U, 0, 0); /* x32 syscalls: not ours */
    prog[n_insns - 1].jt = 0;
    prog[n_insns - 1].jf = 1;
    ret(SECCOMP_RET_KILL_PROCESS);
#endif

    /* Files: opening to write, create or truncate; everything that changes names or metadata. */
    /* --rdwr lets O_RDWR through (never create, truncate or append): for programs that open
     * /dev/null read-write and give up without it. Writes to regular files still fail: RLIMIT_FSIZE
     * is 0. */
    uint32_t write_mask = o->rdwr ? (O_WRITE_MASK & ~(uint32_t)O_RDWR) : O_WRITE_MASK;
#ifdef __NR_open
    deny_flags(__NR_open, 1, write_mask);
#endif
    deny_flags(__NR_openat, 2, write_mask);
    deny_always(__NR_openat2, ENOSYS); /* flags are behind a pointer; ENOSYS makes libc fall back */
    deny_always(__NR_open_by_handle_at, EPERM);
    static const long always[] = {
#ifdef __NR_creat
        __NR_creat,
#endif
#ifdef __NR_link
        __NR_link, __NR_symlink, __NR_unlink, __NR_rename, __NR_mkdir, __NR_rmdir, __NR_mknod,
        __NR_chmod, __NR_chown, __NR_lchown, __NR_utime, __NR_utimes, __NR_futimesat,
#endif
        __NR_truncate, __NR_linkat, __NR_symlinkat, __NR_unlinkat, __NR_renameat,
        __NR_renameat2, __NR_mkdirat, __NR_mknodat, __NR_fchmod, __NR_fchmodat, NR_fchmodat2,
        __NR_fchown, __NR_fchownat, __NR_utimensat, __NR_setxattr, __NR_lsetxattr,
        __NR_fsetxattr, NR_setxattrat, __NR_removexattr, __NR_lremovexattr, __NR_fremovexattr,
        NR_removexattrat, NR_file_setattr, __NR_flock,
        /* mounts and namespaces */
        __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_unshare, __NR_setns,
        __NR_fsopen, __NR_fsconfig, __NR_fsmount, __NR_fspick, __NR_move_mount, __NR_open_tree,
        NR_open_tree_attr, __NR_mount_setattr,
        /* other processes */
        __NR_pidfd_send_signal, __NR_ptrace, __NR_process_vm_readv, __NR_process_vm_writev,
        __NR_pidfd_getfd, __NR_process_madvise, __NR_process_mrelease, __NR_migrate_pages,
        __NR_move_pages, __NR_setsid, __NR_setpgid,
        /* the kernel and the machine */
        __NR_reboot, __NR_kexec_load, __NR_kexec_file_load, __NR_swapon, __NR_swapoff,
        __NR_init_module, __NR_finit_module, __NR_delete_module, __NR_bpf, __NR_perf_event_open,
        __NR_clock_settime, __NR_settimeofday, __NR_adjtimex, __NR_clock_adjtime,
        __NR_sethostname, __NR_setdomainname, __NR_setrlimit, __NR_keyctl, __NR_add_key,
        __NR_request_key, __NR_acct, __NR_quotactl, __NR_quotactl_fd, __NR_vhangup,
        __NR_userfaultfd, __NR_fanotify_init, __NR_fanotify_mark, NR_lsm_set_self_attr,
        __NR_mq_unlink,
#ifdef __NR_iopl
        __NR_iopl, __NR_ioperm,
#endif
#ifdef __NR_uselib
        __NR_uselib,
#endif
    };
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++) deny_always(always[i], EPERM);
    deny_always(__NR_io_uring_setup, ENOSYS); /* io_uring would run opens past this filter */
    deny_always(__NR_io_uring_enter, ENOSYS);
    deny_always(__NR_io_uring_register, ENOSYS);
    deny_always(__NR_clone3, ENOSYS); /* flags behind a pointer; libc falls back to clone */

    /* Processes: no namespaces; new processes only for programs that need them. */
    begin_block(__NR_clone);
    ld_arg(0);
    jset(CLONE_NS_MASK, T_DENY, T_NEXT);
    if (!o->fork) jset(CLONE_THREAD_, T_ALLOW, T_DENY);
    ret(SECCOMP_RET_ALLOW);
    end_block();
    if (!o->fork) {
#ifdef __NR_fork
        deny_always(__NR_fork, EPERM);
        deny_always(__NR_vfork, EPERM);
#endif
    }

    /* Signals only to itself or its own group; sig 0 (does it exist?) anywhere. */
    signal_rule(__NR_kill, 0, 1, self, 1);
    signal_rule(__NR_tkill, 0, 1, self, 0);
    signal_rule(__NR_tgkill, 0, 2, self, 0);
    signal_rule(__NR_rt_sigqueueinfo, 0, 1, self, 0);
    signal_rule(__NR_rt_tgsigqueueinfo, 0, 2, self, 0);
    self_only(__NR_setpriority, 1, self);
    self_only(__NR_sched_setaffinity, 0, self);
    self_only(__NR_sched_setscheduler, 0, self);
    self_only(__NR_sched_setparam, 0, self);
    self_only(__NR_sched_setattr, 0, self);
    self_only(__NR_ioprio_set, 1, self);

    /* prlimit64 may read any limit, set none. */
    begin_block(__NR_prlimit64);
    ld_arg(2);
    jeq(0, T_NEXT, T_DENY);
    ld_arg_hi(2);
    jeq(0, T_ALLOW, T_DENY);
    end_block();

    /* syslog: read, never clear or change the console level. */
    static const uint32_t syslog_bad[] = {4, 5, 6, 7, 8};
    deny_values(__NR_syslog, 0, 0xffffffffU, syslog_bad, 5);

    /* ioctl: terminal injection and settings, inode flags (chattr). */
    static const uint32_t ioctl_bad[] = {
        0x5412 /* TIOCSTI */,     0x541C /* TIOCLINUX */,  0x541D /* TIOCCONS */,
        0x5423 /* TIOCSETD */,    0x540E /* TIOCSCTTY */,  0x5410 /* TIOCSPGRP */,
        0x5457 /* TIOCSLCKTRMIOS */, 0x5437 /* TIOCVHANGUP */, 0x541F /* TIOCSSERIAL */,
        0x5402, 0x5403, 0x5404 /* TCSETS* */, 0x5406, 0x5407, 0x5408 /* TCSETA* */,
        0x402C542B, 0x402C542C, 0x402C542D /* TCSETS2* */,
        0x40086602 /* FS_IOC_SETFLAGS */, 0x40046602 /* FS_IOC32_SETFLAGS */,
        0x401C5820 /* FS_IOC_FSSETXATTR */, 0x40087602, 0x40047602 /* FS_IOC*_SETVERSION */,
    };
    deny_values(__NR_ioctl, 1, 0xffffffffU, ioctl_bad, (int)(sizeof ioctl_bad / sizeof ioctl_bad[0]));

    /* fcntl: no leases (they stall every other opener). Record locks stay: on read-only
     * descriptors they can only be read locks, which utmp readers (last, lslogins) take. */
    static const uint32_t fcntl_bad[] = {1024 /* F_SETLEASE */};
    deny_values(__NR_fcntl, 1, 0xffffffffU, fcntl_bad, 1);

    /* System V IPC and POSIX queues: nothing created, removed or changed. */
    static const uint32_t ipc_bad[] = {0 /* IPC_RMID */, 1 /* IPC_SET */, 11, 12 /* SHM_(UN)LOCK */,
                                       16, 17 /* SETVAL, SETALL */};
    deny_values(__NR_shmctl, 1, 0xff, ipc_bad, 6);
    deny_values(__NR_msgctl, 1, 0xff, ipc_bad, 6);
    deny_values(__NR_semctl, 2, 0xff, ipc_bad, 6);
    begin_block(__NR_shmget);
    ld_arg(0);
    jeq(0, T_DENY, T_NEXT); /* IPC_PRIVATE always creates */
    ld_arg(2);
    jset(01000 /* IPC_CREAT */, T_DENY, T_ALLOW);
    end_block();
    begin_block(__NR_semget);
    ld_arg(0);
    jeq(0, T_DENY, T_NEXT);
    ld_arg(2);
    jset(01000, T_DENY, T_ALLOW);
    end_block();
    begin_block(__NR_msgget);
    ld_arg(0);
    jeq(0, T_DENY, T_NEXT);
    ld_arg(1);
    jset(01000, T_DENY, T_ALLOW);
    end_block();
    deny_flags(__NR_mq_open, 1, O_WRONLY | O_RDWR | O_CREAT);

    /* Sockets: netlink; unix ones (local daemons: systemd, container engines) and IP ones (not
     * raw) only for programs that need them; never packet sockets. IP programs without --tcp
     * (interface tools: datagram sockets for ioctls) get no stream or seqpacket socket at all:
     * Landlock refuses TCP connect/bind only from ABI 4 (Linux 6.7) on, and never SCTP. */
    begin_block(__NR_socket);
    ld_arg(0);
    jeq(16 /* AF_NETLINK */, T_ALLOW, T_NEXT);
    if (o->unix_) jeq(1 /* AF_UNIX */, T_ALLOW, T_NEXT);
    if (o->ip) {
        jeq(2 /* AF_INET */, T_LABEL + 0, T_NEXT);
        jeq(10 /* AF_INET6 */, T_LABEL + 0, T_DENY);
        label(0);
        ld_arg(1);
        and_(0xf);
        jeq(3 /* SOCK_RAW */, T_DENY, T_NEXT);
        if (!o->tcp) {
            jeq(1 /* SOCK_STREAM */, T_DENY, T_NEXT);
            jeq(5 /* SOCK_SEQPACKET */, T_DENY, T_NEXT);
        }
        jeq(10 /* SOCK_PACKET */, T_DENY, T_ALLOW);
    } else {
        ret(SECCOMP_RET_ERRNO | EPERM);
    }
    end_block();
    if (!o->unix_ && !o->fork) deny_always(__NR_socketpair, EPERM);
    if (!o->unix_) {
        /* bind() to a unix path creates a file (Landlock refuses it where the kernel has it).
         * Without unix sockets only netlink (12) and IP (16, 28) address sizes bind. */
        begin_block(__NR_bind);
        ld_arg(2);
        jeq(12, T_ALLOW, T_NEXT);
        jeq(16, T_ALLOW, T_NEXT);
        jeq(28, T_ALLOW, T_DENY);
        end_block();
    }

    ret(SECCOMP_RET_ALLOW);
}

/* ---- Landlock ---------------------------------------------------------------------------- */

/* The kernel's Landlock ABI, 0 when it has none; `why` says which kind of none: no such syscall
 * (before Linux 5.13, or built without it) or built in but not enabled at boot (`lsm=`). */
static int landlock_abi(const char **why) {
    long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    if (abi >= 0) return (int)abi;
    *why = errno == EOPNOTSUPP
               ? "not enabled at boot (built in, but not in the kernel's lsm= list)"
               : "not in this kernel (Landlock came in Linux 5.13)";
    return 0;
}

/* Returns the ruleset fd, or -1 with `why` set. */
static int landlock_prepare(const struct options *o, int abi, const char **why) {
    static const uint64_t fs_by_abi[] = {0, 0x1fff, 0x3fff, 0x7fff, 0x7fff, 0xffff, 0xffff, 0xffff};
    int a = abi > 7 ? 7 : abi;
    struct ll_ruleset_attr attr = {.handled_access_fs = fs_by_abi[a]};
    size_t size = offsetof(struct ll_ruleset_attr, handled_access_net);
    if (abi >= 4 && !o->tcp) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        size = offsetof(struct ll_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    int fd = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
    if (fd < 0) { *why = "landlock_create_ruleset"; return -1; }
    struct ll_path_beneath_attr rule = {
        .allowed_access = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR,
    };
    if (o->dev_ioctl && abi >= 5) rule.allowed_access |= LL_FS_IOCTL_DEV;
    rule.parent_fd = open("/", O_PATH | O_CLOEXEC);
    if (rule.parent_fd < 0) { *why = "open /"; close(fd); return -1; }
    if (syscall(__NR_landlock_add_rule, fd, LL_RULE_PATH_BENEATH, &rule, 0) != 0) {
        *why = "landlock_add_rule";
        close(rule.parent_fd);
        close(fd);
        return -1;
    }
    close(rule.parent_fd);
    return fd;
}

/* ---- capabilities ------------------------------------------------------------------------ */

static const struct { const char *name; int cap; } cap_names[] = {
    {"dac_read_search", CAP_DAC_READ_SEARCH}, {"sys_ptrace", CAP_SYS_PTRACE},
    {"syslog", 34 /* CAP_SYSLOG */},           {"net_admin", CAP_NET_ADMIN},
};

static uint64_t parse_caps(const char *list) {
    uint64_t caps = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++) {
            if (strcmp(tok, cap_names[i].name) == 0) { caps |= 1ULL << cap_names[i].cap; found = 1; }
        }
        if (!found) { errno = EINVAL; report("refused unknown capability %s", tok); _exit(EXIT_REFUSED); }
    }
    return caps;
}

static void drop_caps(uint64_t keep) {
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT_ | SECBIT_NOROOT_LOCKED_ | SECBIT_KEEP_CAPS_LOCKED_) != 0)
        refuse("securebits (noroot)");
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_READ, cap) < 0) break; /* past the last capability */
        if (!(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap) != 0) refuse("capability bounding set");
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) refuse("ambient capabilities");
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    for (int w = 0; w < 2; w++) {
        uint32_t bits = (uint32_t)(keep >> (32 * w));
        data[w].effective = data[w].permitted = data[w].inheritable = bits;
    }
    if (syscall(SYS_capset, &hdr, data) != 0) refuse("capset");
    for (int cap = 0; cap < 64; cap++) {
        if ((keep & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0)
            refuse("ambient capability raise");
    }
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) != 0) refuse("capget");
    uint64_t perm = data[0].permitted | ((uint64_t)data[1].permitted << 32);
    uint64_t eff = data[0].effective | ((uint64_t)data[1].effective << 32);
    if (perm != keep || eff != keep) { errno = EPERM; refuse("capabilities not trimmed"); }
}

/* ---- main -------------------------------------------------------------------------------- */

static void set_limit(int resource, rlim_t soft, rlim_t hard, const char *name) {
    struct rlimit current;
    if (getrlimit(resource, &current) != 0) refuse(name);
    if (current.rlim_max != RLIM_INFINITY && hard > current.rlim_max) hard = current.rlim_max;
    if (soft > hard) soft = hard;
    struct rlimit lim = {.rlim_cur = soft, .rlim_max = hard};
    if (setrlimit(resource, &lim) != 0) refuse(name);
}

static long long number(const char *s, const char *what) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) { errno = EINVAL; refuse(what); }
    return v;
}

int main(int argc, char **argv) {
    struct options o = {.as_bytes = 4LL << 30, .cpu_s = 61, .nofile = 1024, .nproc = 64};
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) { i++; break; }
        if (strcmp(a, "--ip") == 0) o.ip = 1;
        else if (strcmp(a, "--tcp") == 0) o.tcp = 1;
        else if (strcmp(a, "--fork") == 0) o.fork = 1;
        else if (strcmp(a, "--dev-ioctl") == 0) o.dev_ioctl = 1;
        else if (strcmp(a, "--check") == 0) o.check = 1;
        else if (strcmp(a, "--no-landlock") == 0) o.no_landlock = 1;
        else if (strcmp(a, "--rdwr") == 0) o.rdwr = 1;
        else if (strcmp(a, "--unix") == 0) o.unix_ = 1;
        else if (i + 1 < argc && strcmp(a, "--report-fd") == 0) report_fd = (int)number(argv[++i], "--report-fd");
        else if (i + 1 < argc && strcmp(a, "--parent") == 0) o.parent = (pid_t)number(argv[++i], "--parent");
        else if (i + 1 < argc && strcmp(a, "--caps") == 0) o.caps = parse_caps(argv[++i]);
        else if (i + 1 < argc && strcmp(a, "--as") == 0) o.as_bytes = number(argv[++i], "--as");
        else if (i + 1 < argc && strcmp(a, "--cpu") == 0) o.cpu_s = number(argv[++i], "--cpu");
        else if (i + 1 < argc && strcmp(a, "--nofile") == 0) o.nofile = number(argv[++i], "--nofile");
        else if (i + 1 < argc && strcmp(a, "--nproc") == 0) o.nproc = number(argv[++i], "--nproc");
        else { errno = EINVAL; report("refused usage: unknown option %s", a); _exit(EXIT_REFUSED); }
    }
    if (report_fd >= 0 && fcntl(report_fd, F_SETFD, FD_CLOEXEC) != 0) refuse("report fd");
    if (!o.check && i + 1 >= argc) { errno = EINVAL; refuse("usage: -- PATH ARGV0 [ARG...]"); }

    /* 1. Die with the parent; own session (the executor kills the whole group). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) refuse("parent-death signal");
    if (o.parent > 0 && getppid() != o.parent) { errno = ESRCH; refuse("parent gone"); }
    if (getsid(0) != getpid() && setsid() < 0) refuse("setsid");
    signal(SIGXFSZ, SIG_IGN); /* writes past RLIMIT_FSIZE fail with EFBIG instead of killing */

    /* 2. rlimits. */
    set_limit(RLIMIT_FSIZE, 0, 0, "RLIMIT_FSIZE");
    set_limit(RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
    set_limit(RLIMIT_AS, (rlim_t)o.as_bytes, (rlim_t)o.as_bytes, "RLIMIT_AS");
    set_limit(RLIMIT_CPU, (rlim_t)o.cpu_s, (rlim_t)o.cpu_s + 1, "RLIMIT_CPU");
    set_limit(RLIMIT_NOFILE, (rlim_t)o.nofile, (rlim_t)o.nofile, "RLIMIT_NOFILE");
    set_limit(RLIMIT_NPROC, (rlim_t)o.nproc, (rlim_t)o.nproc, "RLIMIT_NPROC");

    /* 3. Landlock ruleset (applied after no_new_privs). */
    const char *ll_why = "not in this kernel";
    int abi = landlock_abi(&ll_why);
    if (o.no_landlock) {
        ll_why = "off for this program (Landlock forbids reading other processes' /proc/<pid>/fd)";
        abi = -abi;
    }
    int ll_fd = abi > 0 ? landlock_prepare(&o, abi, &ll_why) : -1;
    int ll_errno = errno;

    /* 4. Capabilities, 5. no_new_privs. */
    drop_caps(o.caps);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) refuse("no_new_privs");
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) { errno = EPERM; refuse("no_new_privs not set"); }

    char landlock[96];
    if (ll_fd >= 0 && syscall(__NR_landlock_restrict_self, ll_fd, 0) == 0) {
        snprintf(landlock, sizeof landlock, "+landlock(abi %d)", abi);
    } else {
        if (ll_fd >= 0) { ll_why = "landlock_restrict_self"; ll_errno = errno; }
        snprintf(landlock, sizeof landlock, " (no landlock: %s%s%s)", ll_why,
                 abi > 0 ? ": " : "", abi > 0 ? strerror(ll_errno) : "");
    }
    if (ll_fd >= 0) close(ll_fd);

    /* 6. seccomp, last: from here on this process obeys it too. */
    build_filter(&o, (uint32_t)getpid());
    struct sock_fprog fprog = {.len = (unsigned short)n_insns, .filter = prog};
    if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) refuse("seccomp filter");

    char caps[128] = "";
    for (size_t c = 0; c < sizeof cap_names / sizeof cap_names[0]; c++) {
        if (!(o.caps & (1ULL << cap_names[c].cap))) continue;
        size_t used = strlen(caps);
        snprintf(caps + used, sizeof caps - used, "%s%s", used ? "," : "", cap_names[c].name);
    }
    report("ok seccomp%s+caps(%s)+rlimits+nnp%s%s%s%s", landlock[0] == '+' ? landlock : "",
           caps[0] ? caps : "none", o.ip ? "+ip" : "", o.unix_ ? "+unix" : "", o.fork ? "+fork" : "",
           o.rdwr ? "+rdwr" : "");
    if (landlock[0] != '+') report("note%s", landlock);
    if (o.check) _exit(0);
    execv(argv[i], argv + i + 1);
    report("exec %d %s", errno, strerror(errno));
    _exit(EXIT_EXEC);
}
