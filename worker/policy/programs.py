"""The tables: programs that are never run, and the read-only diagnostics with their argument rules.

Anything in neither table needs a human's approval. Reading order: DENIED_CLASSES (with the
reason given to the model), then PROGRAMS (allowlisted, per-program rules), then FILTERS (the
programs that may follow a `|`).
"""

from __future__ import annotations

import re
from dataclasses import replace

from worker.policy import checks
from worker.policy.allowlist import SPECS
from worker.policy.rules import ProgramRule, follow_mode, sampling, subcommands
from worker.policy.spec import spec, words

# -- never run -----------------------------------------------------------------------------------

DENIED_CLASSES: dict[str, str] = {
    "deletes or destroys data": (
        "rm rmdir unlink shred wipe wipefs dd mkfs mke2fs mkswap mkdosfs mkntfs fdformat "
        "badblocks blkdiscard truncate fallocate mv srm fsck e2fsck resize2fs xfs_repair "
        "lvcreate lvremove lvchange lvextend lvreduce lvresize lvrename lvconvert vgcreate "
        "vgremove vgchange vgextend vgreduce vgrename pvcreate pvremove pvchange pvmove pvresize "
        "ipcrm logrotate"
    ),
    "writes files": (
        "cp ln install touch mkdir mknod mkfifo tee sponge split csplit patch ldconfig "
        "update-alternatives update-grub grub-install systemd-tmpfiles"
    ),
    "kills or signals processes": "kill pkill killall killall5 skill snice xkill renice",
    "reboots or powers off the host": ("reboot shutdown poweroff halt init telinit kexec rtcwake"),
    "mounts, unmounts or attaches storage": (
        "umount losetup swapoff cryptsetup pivot_root switch_root eject"
    ),
    "changes permissions, ownership or security labels": (
        "chmod chown chgrp chattr setfacl setcap chcon setfattr restorecon semanage setenforce"
    ),
    "changes the firewall": "iptables-restore ip6tables-restore arptables ebtables",
    "installs or removes packages (package manager)": (
        "apt-get aptitude apt-key add-apt-repository dpkg-reconfigure yum dnf microdnf "
        "zypper apk pacman snap flatpak pip pip3 pipx npm npx yarn pnpm gem bundle cargo go conda "
        "mamba brew nix nix-env emerge port pkg opkg easy_install uv poetry"
    ),
    "is a shell or interpreter (runs arbitrary code)": (
        "sh bash dash zsh ksh mksh pdksh csh tcsh fish ash rbash yash elvish nu xonsh busybox "
        "toybox pwsh powershell node nodejs deno bun luajit wish expect java jshell jrunscript "
        "groovy scala kotlin Rscript R julia irb erl escript elixir iex guile racket sbcl clisp "
        "ghci runghc swift osascript gdb lldb make cmake gcc g++ cc c++ clang tcc as ld screen "
        "tmux script dtach jython ipython"
    ),
    "transfers data over the network or opens a remote session (exfiltration)": (
        "curl wget nc ncat netcat nc.openbsd nc.traditional socat telnet ssh scp sftp rsync ftp "
        "lftp tftp rclone mail mailx sendmail mutt aria2c axel http https httpie xh ssh-copy-id "
        "sshpass smbclient rcp rsh rlogin s3cmd gsutil"
    ),
    "changes privileges or identity": (
        "sudo su doas pkexec runuser setpriv chroot nsenter unshare capsh sg newgrp passwd "
        "chpasswd useradd usermod userdel adduser deluser groupadd groupmod groupdel gpasswd "
        "visudo vipw login machinectl"
    ),
    "runs another command (wrapper)": (
        "env xargs timeout nice ionice nohup watch stdbuf unbuffer setsid time command builtin "
        "exec eval source . flock chrt taskset cgexec systemd-run systemd-cat run-parts parallel "
        "firejail bwrap proot fakeroot faketime catchsegv setarch linux32 linux64 daemonize "
        "start-stop-daemon at batch tini dumb-init valgrind ssh-agent dbus-launch xvfb-run "
        "invoke-rc.d update-rc.d rc-service openrc chkconfig "
        "ltrace"
    ),
    # Interactive programs are denied rather than sent for approval: there is no terminal
    # (stdin is /dev/null), so they exit or hang until the timeout and an approver gains
    # nothing; pagers and editors also have shell escapes (`!cmd`, LESSOPEN) and editors write
    # files. The reason names the read-only alternative.
    "is interactive (no terminal here) and has shell escapes; use cat, head, tail or grep": (
        "less more most pg pager man info vi vim nvim view vimdiff nano pico emacs ed ex joe "
        "mcedit mc htop btop bpytop glances nethogs ncdu tig"
    ),
    "is shell syntax or a shell builtin (there is no shell here)": (
        "if then else elif fi for while until do done case esac function select coproc ! [[ ]] "
        "alias unalias export unset set declare typeset local readonly cd pushd popd trap ulimit "
        "umask shopt history fc jobs fg bg disown wait exit return break continue let read "
        "mapfile hash enable logout suspend type"
    ),
    "loads code into the kernel": "modprobe insmod rmmod depmod kmod",
    "freezes a filesystem (every write to it hangs until thawed)": "fsfreeze xfs_freeze",
    "sends D-Bus method calls (can power off the host, start or stop units)": (
        "dbus-send gdbus qdbus mdbus2"
    ),
    "is an interpreter with a shell escape (sqlite3 .shell, dc !, ed !)": (
        "sqlite3 sqlite dc bc.dc awka emacs-nox emacsclient vim.basic vim.tiny vim.nox gvim rvim "
        "rview nvi elvis vile evim"
    ),
    "sets the clock": "ntpdate rdate hwclock",
    # Each needs a write or a raw socket that the command sandbox (worker/sandbox) refuses to
    # every command, so it could only fail; the reason names what answers instead.
    "cannot work in the read-only command sandbox (use dpkg -l, ps, ss, or nft/iptables -L)": (
        "podman apt apt-cache iptables-legacy ip6tables-legacy"
    ),
}

_DENIED_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?:python|pypy|perl|ruby|php|lua|tclsh|node|ipython)\d*(?:\.\d+)*[a-z]?(?:-cli)?"
        ),
        "is a shell or interpreter (runs arbitrary code)",
    ),
    (re.compile(r"(?:mkfs|fsck|mkswap|mke2fs)(?:\..+)?"), "deletes or destroys data"),
    (re.compile(r"(?:gcc|g\+\+|clang|cc)-\d+(?:\.\d+)*"), "compiles code"),
    (re.compile(r"pip\d*(?:\.\d+)*"), "installs or removes packages (package manager)"),
)

_DENIED: dict[str, str] = {
    name: reason for reason, names in DENIED_CLASSES.items() for name in names.split()
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def denied_program_reason(name: str) -> str | None:
    """Why the program `name` (a basename) never runs, or None."""
    if name in _DENIED:
        return f"`{name}` {_DENIED[name]}"
    for pattern, reason in _DENIED_PATTERNS:
        if pattern.fullmatch(name):
            return f"`{name}` {reason}"
    return None


# -- allowlisted read-only diagnostics, with their argument rules ----------------------------------


def _simple(summary: str, **kwargs: object) -> ProgramRule:
    return ProgramRule(summary=summary, **kwargs)  # type: ignore[arg-type]


_WRITES_OUTPUT_FILE = "a second file operand is written to"
_GREP = ProgramRule(
    summary="search text", short_with_arg="efmABCdD", filter=True, check=checks.grep_check
)
_AWK = ProgramRule(
    summary="text processing (no system(), pipes or redirection)",
    short_with_arg="fvFWeil",
    long_with_arg=frozenset(
        {"--source", "--file", "--exec", "--include", "--load", "--assign", "--field-separator"}
    ),
    deny_options={
        "-l": "loads a compiled extension",
        "--load": "loads a compiled extension",
        "-p": "writes a profile file",
        "--profile": "writes a profile file",
        "-d": "writes a variables dump file",
        "--dump-variables": "writes a variables dump file",
        "-o": "writes a pretty-printed program file",
        "--pretty-print": "writes a pretty-printed program file",
    },
    approve_options={"-i": "includes a source file", "--include": "includes a source file"},
    filter=True,
    check=checks.awk_check,
)
_COMPRESSED_CAT = ProgramRule(summary="read compressed files", filter=True)
_COMPRESSOR = ProgramRule(summary="(de)compress to stdout", check=checks.compression_check)
_IPTABLES = ProgramRule(summary="list firewall rules", check=checks.iptables_check)
_IPTABLES_SAVE = ProgramRule(
    summary="print firewall rules",
    short_with_arg="tM",
    deny_options={"-M": "runs a modprobe program", "--modprobe": "runs a modprobe program"},
)
_PING = ProgramRule(
    summary="reachability (bounded)", short_with_arg="cilIsStwWpQMFmeTN", check=checks.ping_check
)
_CONTAINERS = ProgramRule(
    summary="list containers",
    short_with_arg="fnH",
    long_with_arg=frozenset({"--format", "--filter", "--tail", "--since", "--until"}),
    deny_options={
        "-H": "talks to a remote daemon (may run ssh)",
        "--host": "talks to a remote daemon (may run ssh)",
        "--context": "talks to another daemon (may run ssh)",
    },
    check=checks.container_check,
)
_SAMPLER = sampling()
_APT_CONFIG = {
    "-o": "sets configuration (hooks can run commands)",
    "--option": "sets configuration (hooks can run commands)",
    "-c": "loads a configuration file (hooks can run commands)",
    "--config-file": "loads a configuration file (hooks can run commands)",
}
_SHA = ProgramRule(summary="checksums", filter=True)

# Read only a device's metadata (partition table, superblock, SMART), never print its content.
METADATA_ONLY = words(
    "blkid lsblk df du ls stat file findmnt fdisk sfdisk parted tune2fs dumpe2fs xfs_info "
    "smartctl nvme mdadm pvs pvdisplay lsattr readlink realpath lsof fuser"
)
# Encode, compress or reverse their input: after a stage that read a file or /proc, the result
# would pass redaction unrecognised.
TRANSFORMERS = words("base64 base32 basenc rev od hexdump xxd tr gzip xz bzip2 zstd")

PROGRAMS: dict[str, ProgramRule] = {
    # host overview
    "uptime": _simple("load averages"),
    "uname": _simple("kernel version"),
    "hostname": _simple(
        "host name",
        short_with_arg="F",
        deny_options={
            "-F": "sets the host name",
            "--file": "sets the host name",
            "-b": "sets the host name",
            "--boot": "sets the host name",
        },
        max_positionals=0,
        extra_positional_reason="a name operand sets the host name",
    ),
    "hostnamectl": _simple("host identity", check=checks.hostnamectl_check),
    "date": _simple(
        "current time",
        short_with_arg="dfrI",
        deny_options={"-s": "sets the system clock", "--set": "sets the system clock"},
        check=checks.date_check,
    ),
    "timedatectl": _simple(
        "clock status",
        check=subcommands(
            allow={"status", "show", "list-timezones", "timesync-status", "show-timesync"},
            deny_verbs={
                "set-time",
                "set-timezone",
                "set-local-rtc",
                "set-ntp",
                "ntp-servers",
                "revert",
            },
            deny_reason="changes the clock or its configuration",
        ),
    ),
    "hwclock": _simple("hardware clock", check=checks.hwclock_check),
    "whoami": _simple("current user"),
    "id": _simple("user and groups"),
    "groups": _simple("groups"),
    "who": _simple("logged-in users"),
    "w": _simple("logged-in users and load"),
    "users": _simple("logged-in users"),
    "last": _simple("login history"),
    "lastb": _simple("failed logins"),
    "lastlog": _simple(
        "last logins",
        short_with_arg="bctu",
        deny_options={
            "-C": "clears login records",
            "--clear": "clears login records",
            "-S": "sets login records",
            "--set": "sets login records",
        },
    ),
    "runlevel": _simple("run level"),
    "nproc": _simple("CPU count"),
    "arch": _simple("architecture"),
    "getconf": _simple("system configuration values"),
    "locale": _simple("locale"),
    "printenv": _simple("environment (clean here)"),
    "echo": _simple("print text"),
    "printf": _simple("print text"),
    "true": _simple("no-op"),
    "false": _simple("no-op"),
    "seq": _simple("number sequence"),
    "which": _simple("locate a program"),
    "whereis": _simple("locate a program"),
    "tty": _simple("terminal name"),
    "pwd": _simple("working directory"),
    "basename": _simple("path manipulation"),
    "dirname": _simple("path manipulation"),
    # CPU, memory, I/O
    "vmstat": _simple("virtual memory statistics", short_with_arg="pSc", check=_SAMPLER),
    "free": _simple("memory usage", short_with_arg="sc", check=checks.free_check),
    "iostat": _simple("I/O statistics", short_with_arg="gjo", check=_SAMPLER),
    "mpstat": _simple("per-CPU statistics", short_with_arg="PIoN", check=_SAMPLER),
    "pidstat": _simple(
        "per-process statistics",
        short_with_arg="pCGTe",
        deny_options={"-e": "runs a program (wrapper)"},
        check=_SAMPLER,
    ),
    "sar": _simple(
        "system activity report",
        short_with_arg="fiIPnsem",
        deny_options={"-o": "writes a data file"},
        check=_SAMPLER,
    ),
    "nstat": _simple("network counters"),
    "top": _simple("process table (batch mode)", short_with_arg="dnopuUEe", check=checks.top_check),
    "iotop": _simple(
        "per-process I/O (batch mode)", short_with_arg="npud", check=checks.iotop_check
    ),
    "slabtop": _simple(
        "kernel slab caches (once)", short_with_arg="ds", check=checks.slabtop_check
    ),
    "ps": _simple(
        "process list",
        short_with_arg="oOpCGgUutqs",
        long_with_arg=frozenset(
            {
                "--sort",
                "--format",
                "--pid",
                "--ppid",
                "--user",
                "--group",
                "--cols",
                "--columns",
                "--lines",
                "--rows",
                "--width",
                "--tty",
                "--sid",
                "--quick-pid",
            }
        ),
        check=checks.ps_check,
    ),
    "pgrep": _simple("find processes", short_with_arg="dgGPsStuU"),
    "pidof": _simple("find processes"),
    "pstree": _simple("process tree"),
    "pmap": _simple("process memory map"),
    "pwdx": _simple("process working directory"),
    "prlimit": _simple(
        "process limits",
        short_with_arg="po",
        long_with_arg=frozenset({"--pid", "--output"}),
        check=checks.prlimit_check,
    ),
    "lscpu": _simple("CPU information"),
    "lsmem": _simple("memory blocks"),
    "lspci": _simple("PCI devices"),
    "lsusb": _simple("USB devices"),
    "lsblk": _simple("block devices"),
    "blkid": _simple(
        "block device attributes",
        short_with_arg="csmnoOStuUL",
        deny_options={"-c": "writes the cache file it is given", "--cache-file": "writes a file"},
    ),
    "findmnt": _simple("mounted filesystems", approve_options=follow_mode("-p", "--poll")),
    "df": _simple("filesystem usage"),
    "du": _simple("disk usage"),
    "mount": _simple(
        "mounted filesystems (listing only)", short_with_arg="tOoL", check=checks.mount_check
    ),
    "fdisk": _simple(
        "partition tables (listing only)",
        check=checks.list_only_check("-l", "--list", reason="edits partition tables"),
    ),
    "sfdisk": _simple(
        "partition tables (listing only)",
        check=checks.list_only_check(
            "-l", "--list", "-d", "--dump", reason="edits partition tables"
        ),
    ),
    "parted": _simple(
        "partition tables (listing only)",
        check=checks.list_only_check("-l", "--list", reason="edits partitions"),
    ),
    "pvs": _simple("LVM physical volumes"),
    "vgs": _simple("LVM volume groups"),
    "lvs": _simple("LVM logical volumes"),
    "pvdisplay": _simple("LVM physical volumes"),
    "vgdisplay": _simple("LVM volume groups"),
    "lvdisplay": _simple("LVM logical volumes"),
    "lsmod": _simple("kernel modules"),
    "modinfo": _simple("kernel module information"),
    "lsns": _simple("namespaces"),
    "lsipc": _simple("IPC facilities"),
    "ipcs": _simple("IPC facilities"),
    "lslocks": _simple("file locks"),
    "lslogins": _simple("user accounts"),
    "lsattr": _simple("file attributes"),
    "numastat": _simple("NUMA statistics"),
    "numactl": _simple("NUMA policy (show only)", check=checks.numactl_check),
    "dmidecode": _simple(
        "firmware tables",
        deny_options={"--dump-bin": "writes a file"},
    ),
    "lsof": _simple("open files", short_with_arg="acdgpsuiFkKTEDe", check=checks.lsof_check),
    "fuser": _simple(
        "processes using a file or port",
        deny_options={"-k": "kills processes", "--kill": "kills processes"},
    ),
    "stat": _simple("file status", short_with_arg="cf"),
    "file": _simple(
        "file type",
        short_with_arg="mfFeP",
        deny_options={"-C": "compiles a magic file (writes)", "--compile": "writes a file"},
    ),
    "ls": _simple("list directory"),
    "tree": _simple(
        "directory tree", short_with_arg="LPIo", deny_options={"-o": "writes the listing to a file"}
    ),
    "readlink": _simple("symlink target"),
    "realpath": _simple("canonical path"),
    "find": _simple("find files (no actions)", check=checks.find_check),
    "sysctl": _simple(
        "kernel parameters (read)",
        short_with_arg="r",
        deny_options={
            "-w": "sets a kernel parameter",
            "--write": "sets a kernel parameter",
            "-p": "loads parameters from a file",
            "--load": "loads parameters from a file",
            "-f": "loads parameters from a file",
            "--system": "loads parameters from the system files",
        },
        check=checks.sysctl_check,
    ),
    "dmesg": _simple(
        "kernel ring buffer",
        short_with_arg="fFKlns",
        deny_options={
            "-C": "clears the kernel ring buffer",
            "--clear": "clears the kernel ring buffer",
            "-c": "clears the kernel ring buffer after reading",
            "--read-clear": "clears the kernel ring buffer after reading",
            "-D": "disables console logging",
            "--console-off": "disables console logging",
            "-E": "enables console logging",
            "--console-on": "enables console logging",
            "-n": "sets the console log level",
            "--console-level": "sets the console log level",
        },
        approve_options=follow_mode("-w", "--follow", "-W", "--follow-new"),
    ),
    "journalctl": _simple(
        "system journal",
        short_with_arg="cDMutpgSUoF",
        deny_options={
            "--vacuum-size": "deletes journal files",
            "--vacuum-time": "deletes journal files",
            "--vacuum-files": "deletes journal files",
            "--rotate": "rotates (and archives) journal files",
            "--flush": "moves the journal to disk",
            "--sync": "writes the journal to disk",
            "--relinquish-var": "switches journal storage",
            "--smart-relinquish-var": "switches journal storage",
            "--setup-keys": "writes sealing keys",
            "--update-catalog": "writes the message catalog",
            "--cursor-file": "writes a cursor file",
        },
        approve_options=follow_mode("-f", "--follow"),
    ),
    "systemctl": _simple(
        "service status (read-only verbs)",
        short_with_arg="tpnosHM",
        long_with_arg=frozenset(
            {
                "--type",
                "--state",
                "--property",
                "--lines",
                "--output",
                "--signal",
                "--kill-whom",
                "--root",
                "--job-mode",
                "--what",
                "--host",
                "--machine",
                "--timestamp",
                "--image",
            }
        ),
        deny_options={"-H": "runs on a remote host over SSH", "--host": "runs over SSH"},
        check=subcommands(
            allow={
                "status",
                "show",
                "cat",
                "list-units",
                "list-unit-files",
                "list-sockets",
                "list-timers",
                "list-jobs",
                "list-dependencies",
                "list-machines",
                "list-automounts",
                "list-paths",
                "is-active",
                "is-enabled",
                "is-failed",
                "is-system-running",
                "get-default",
                "help",
            },
            deny_verbs=_words(
                "start stop restart reload try-restart reload-or-restart "
                "try-reload-or-restart condrestart force-reload kill clean freeze thaw "
                "isolate enable disable reenable preset preset-all mask unmask link revert "
                "add-wants add-requires edit set-default set-property set-environment "
                "unset-environment import-environment daemon-reload daemon-reexec reboot "
                "poweroff halt kexec suspend hibernate hybrid-sleep suspend-then-hibernate "
                "soft-reboot default rescue emergency exit switch-root log-level log-target "
                "service-log-level service-log-target reset-failed bind mount-image cancel "
                "service-watchdogs"
            ),
            deny_reason="starts, stops or changes units or the system",
        ),
    ),
    "service": _simple("service status", check=checks.service_check),
    "loginctl": _simple(
        "login sessions",
        check=subcommands(
            allow={
                "list-sessions",
                "list-users",
                "list-seats",
                "show-session",
                "show-user",
                "show-seat",
                "session-status",
                "user-status",
                "seat-status",
            },
            deny_verbs={
                "terminate-session",
                "terminate-user",
                "terminate-seat",
                "kill-session",
                "kill-user",
                "lock-session",
                "unlock-session",
                "lock-sessions",
                "unlock-sessions",
                "activate",
                "enable-linger",
                "disable-linger",
                "attach",
                "flush-devices",
            },
            deny_reason="ends, locks or changes sessions",
        ),
    ),
    "localectl": _simple(
        "locale settings",
        check=subcommands(
            allow={"status", "list-locales", "list-keymaps"},
            deny_verbs={"set-locale", "set-keymap", "set-x11-keymap"},
        ),
    ),
    "chronyc": _simple(
        "time sync status",
        short_with_arg="hp",
        deny_options={"-m": "runs every argument as a separate command"},
        check=subcommands(
            allow={
                "tracking",
                "sources",
                "sourcestats",
                "activity",
                "ntpdata",
                "serverstats",
                "clients",
                "selectdata",
                "authdata",
                "rtcdata",
                "smoothing",
                "sourcename",
            },
            deny_verbs={
                "makestep",
                "settime",
                "burst",
                "add",
                "delete",
                "offline",
                "online",
                "reload",
                "shutdown",
                "reselect",
                "refresh",
                "cyclelogs",
                "dump",
                "writertc",
                "trimrtc",
                "local",
                "manual",
                "allow",
                "deny",
                "maxpoll",
                "minpoll",
                "polltarget",
                "reset",
            },
            deny_reason="changes time synchronisation",
        ),
    ),
    "apt": _simple(
        "package information (query only)",
        short_with_arg="oct",
        deny_options=_APT_CONFIG,
        check=subcommands(
            allow={"list", "show", "policy", "search", "depends", "rdepends"},
            deny_reason="installs, removes or changes packages (package manager)",
            unknown_verdict="deny",
        ),
    ),
    "apt-cache": _simple(
        "package information (query only)",
        short_with_arg="oct",
        deny_options=_APT_CONFIG,
        check=subcommands(
            allow={
                "policy",
                "show",
                "showpkg",
                "search",
                "depends",
                "rdepends",
                "pkgnames",
                "stats",
                "madison",
                "showsrc",
            },
            deny_reason="changes the package cache",
            unknown_verdict="deny",
        ),
    ),
    "swapon": _simple("swap areas (listing only)", check=checks.swapon_check),
    "tune2fs": _simple("ext filesystem parameters (-l only)", check=checks.tune2fs_check),
    "dumpe2fs": _simple("ext filesystem superblock"),
    "xfs_info": _simple("XFS geometry"),
    "smartctl": _simple("disk health", check=checks.smartctl_check),
    "nvme": _simple(
        "NVMe health",
        check=subcommands(
            allow={
                "list",
                "list-subsys",
                "smart-log",
                "error-log",
                "id-ctrl",
                "id-ns",
                "fw-log",
                "show-regs",
                "version",
                "help",
            },
            deny_verbs={
                "format",
                "sanitize",
                "fw-download",
                "fw-commit",
                "delete-ns",
                "create-ns",
                "attach-ns",
                "detach-ns",
                "reset",
                "subsystem-reset",
                "write",
                "write-zeroes",
                "write-uncor",
                "dsm",
                "flush",
                "set-feature",
                "admin-passthru",
                "io-passthru",
                "security-send",
                "resv-acquire",
                "resv-register",
                "resv-release",
                "ns-rescan",
                "device-self-test",
            },
            deny_reason="writes to, formats or resets the device",
        ),
    ),
    "systemd-analyze": _simple(
        "boot and unit analysis",
        check=subcommands(
            allow={
                "time",
                "blame",
                "critical-chain",
                "dot",
                "plot",
                "unit-paths",
                "calendar",
                "timespan",
                "timestamp",
                "security",
                "cat-config",
                "syscall-filter",
                "exit-status",
                "capability",
                "condition",
                "verify",
                "dump",
            },
            deny_verbs={
                "set-log-level",
                "set-log-target",
                "log-level",
                "log-target",
                "service-watchdogs",
            },
            deny_reason="changes the service manager's settings",
        ),
    ),
    "coredumpctl": _simple("core dumps (list)", check=checks.coredumpctl_check),
    "systemd-cgtop": _simple(
        "per-cgroup resources (batch mode)", short_with_arg="nd", check=checks.cgtop_check
    ),
    "zramctl": _simple("zram devices", check=checks.zramctl_check),
    "mdadm": _simple(
        "software RAID (query only)",
        check=checks.list_only_check(
            "--detail",
            "-D",
            "--query",
            "-Q",
            "--examine",
            "-E",
            "--brief",
            "-b",
            "--scan",
            "-s",
            "--verbose",
            "-v",
            reason="assembles, changes or stops RAID arrays",
        ),
    ),
    "crontab": _simple(
        "scheduled jobs (list only)", short_with_arg="u", check=checks.crontab_check
    ),
    "dpkg": _simple("installed packages (query only)", check=checks.dpkg_check),
    "dpkg-query": _simple("installed packages"),
    "rpm": _simple("installed packages (query only)", check=checks.rpm_check),
    # network
    "ip": _simple(
        "network configuration (show verbs)", check=checks.iproute_check(checks.IP_GRAMMAR)
    ),
    "tc": _simple("traffic control (show verbs)", check=checks.iproute_check(checks.TC_GRAMMAR)),
    "bridge": _simple(
        "bridge configuration (show verbs)", check=checks.iproute_check(checks.BRIDGE_GRAMMAR)
    ),
    "ss": _simple(
        "socket statistics",
        short_with_arg="fAFDN",
        deny_options={
            "-K": "kills sockets",
            "--kill": "kills sockets",
            "-D": "dumps to a file",
            "--diag": "dumps to a file",
        },
        approve_options=follow_mode("-E", "--events"),
    ),
    "netstat": _simple("network statistics", approve_options=follow_mode("-c", "--continuous")),
    "ifconfig": _simple("interfaces", check=checks.ifconfig_check),
    "route": _simple("routing table", check=checks.route_check),
    "arp": _simple("neighbour table", short_with_arg="iHfA", check=checks.arp_check),
    "ethtool": _simple("NIC settings and counters", check=checks.ethtool_check),
    "conntrack": _simple(
        "connection tracking", short_with_arg="psdtfmuz", check=checks.conntrack_check
    ),
    "iptables": _IPTABLES,
    "ip6tables": _IPTABLES,
    "iptables-legacy": _IPTABLES,
    "ip6tables-legacy": _IPTABLES,
    "iptables-nft": _IPTABLES,
    "ip6tables-nft": _IPTABLES,
    "iptables-save": _IPTABLES_SAVE,
    "ip6tables-save": _IPTABLES_SAVE,
    "nft": _simple("firewall ruleset (list only)", check=checks.nft_check),
    "ufw": _simple("firewall status", check=checks.ufw_check),
    "firewall-cmd": _simple("firewall status", check=checks.firewall_cmd_check),
    "ping": _PING,
    "ping6": _PING,
    "arping": _simple(
        "ARP reachability (bounded)", short_with_arg="cwIsf", check=checks.arping_check
    ),
    "traceroute": _simple("network path"),
    "traceroute6": _simple("network path"),
    "tracepath": _simple("network path"),
    "mtr": _simple(
        "network path (report mode)",
        short_with_arg="cisfmBQaPIGZF",
        deny_options={
            "-F": "probes every host named in a file (exfiltration)",
            "--filename": "probes every host named in a file (exfiltration)",
        },
        check=checks.mtr_check,
    ),
    "dig": _simple(
        "DNS lookup",
        short_with_arg="bcfkmpqtxy",
        deny_options={"-f": "sends every line of a file as a query (exfiltration)"},
    ),
    "nslookup": _simple("DNS lookup"),
    "host": _simple("DNS lookup"),
    "drill": _simple(
        "DNS lookup",
        deny_options={"-f": "sends a packet read from a file", "-i": "reads a packet from a file"},
    ),
    "delv": _simple("DNS lookup"),
    "getent": _simple("name service lookup"),
    "resolvectl": _simple("resolver status", check=checks.resolvectl_check),
    "docker": _CONTAINERS,
    "podman": _CONTAINERS,
    "nerdctl": _CONTAINERS,
    "crictl": _CONTAINERS,
    "kubectl": _simple("Kubernetes", check=checks.kubectl_check),
    # tracing tools: never plain allow
    "strace": _simple(
        "system call tracer", short_with_arg="eoOpPsSuEIbXa", check=checks.trace_check
    ),
    "tcpdump": _simple(
        "packet capture", short_with_arg="cCDEFGiImMrsTVwWyzZBj", check=checks.tcpdump_check
    ),
    "perf": _simple("performance counters", short_with_arg="eptCoGIFcrmu", check=checks.perf_check),
    "bpftrace": _simple(
        "eBPF tracing language", short_with_arg="ceopB", check=checks.bpftrace_check
    ),
    "openssl": _simple("TLS and key tool", check=checks.openssl_check),
    "tar": _simple("archives", check=checks.tar_check),
    # text filters (may follow a `|`)
    "cat": _simple("print files", filter=True),
    "tac": _simple("print files reversed", filter=True),
    "nl": _simple("number lines", filter=True),
    "head": _simple("first lines", short_with_arg="nc", filter=True),
    "tail": _simple(
        "last lines",
        short_with_arg="ncs",
        filter=True,
        approve_options=follow_mode("-f", "-F", "--follow", "--retry"),
    ),
    "grep": _GREP,
    "egrep": _GREP,
    "fgrep": _GREP,
    "zgrep": _GREP,
    "rg": ProgramRule(
        summary="search text",
        short_with_arg="efgtTmABCMjEr",
        deny_options={"--pre": "runs a preprocessor command per file"},
        filter=True,
        check=checks.grep_check,
    ),
    "awk": _AWK,
    "mawk": _AWK,
    "gawk": _AWK,
    "nawk": _AWK,
    "sed": ProgramRule(
        summary="stream edit to stdout (no -i, w, e)",
        short_with_arg="efl",
        long_with_arg=frozenset({"--expression", "--file", "--line-length"}),
        deny_options={"-i": "edits files in place", "--in-place": "edits files in place"},
        filter=True,
        check=checks.sed_check,
    ),
    "sort": ProgramRule(
        summary="sort lines",
        short_with_arg="kotST",
        deny_options={
            "-o": "writes the output to a file",
            "--output": "writes the output to a file",
            "--compress-program": "runs a program",
        },
        filter=True,
    ),
    "uniq": ProgramRule(
        summary="collapse repeated lines",
        short_with_arg="fsw",
        max_positionals=1,
        extra_positional_reason=_WRITES_OUTPUT_FILE,
        filter=True,
    ),
    "wc": _simple("count lines, words, bytes", filter=True),
    "cut": _simple("cut columns", short_with_arg="bcdf", filter=True),
    "tr": _simple("translate characters", filter=True),
    "column": _simple("format columns", short_with_arg="cson", filter=True),
    "jq": _simple("JSON filter", filter=True, check=checks.jq_check),
    "paste": _simple("merge lines", short_with_arg="d", filter=True),
    "fold": _simple("wrap lines", short_with_arg="w", filter=True),
    "fmt": _simple("format text", filter=True),
    "rev": _simple("reverse lines", filter=True),
    "expand": _simple("tabs to spaces", filter=True),
    "unexpand": _simple("spaces to tabs", filter=True),
    "comm": _simple("compare sorted files", filter=True),
    "join": _simple("join files", filter=True),
    "diff": _simple("compare files", filter=True, check=checks.diff_check),
    "cmp": _simple("compare files", filter=True),
    "numfmt": _simple("format numbers", filter=True),
    "od": _simple("dump bytes", short_with_arg="AjNtw", filter=True),
    "hexdump": _simple("dump bytes", short_with_arg="enfsL", filter=True),
    "xxd": ProgramRule(
        summary="dump bytes",
        short_with_arg="cglosCn",
        max_positionals=1,
        extra_positional_reason=_WRITES_OUTPUT_FILE,
        filter=True,
    ),
    "strings": _simple("printable strings", short_with_arg="nte", filter=True),
    "base64": _simple("base64 encode/decode to stdout", filter=True),
    "base32": _simple("base32 encode/decode to stdout", filter=True),
    "md5sum": _SHA,
    "sha1sum": _SHA,
    "sha256sum": _SHA,
    "sha512sum": _SHA,
    "b2sum": _SHA,
    "cksum": _SHA,
    "zcat": _COMPRESSED_CAT,
    "bzcat": _COMPRESSED_CAT,
    "xzcat": _COMPRESSED_CAT,
    "zstdcat": _COMPRESSED_CAT,
    "gzip": _COMPRESSOR,
    "gunzip": _COMPRESSOR,
    "bzip2": _COMPRESSOR,
    "xz": _COMPRESSOR,
    "unxz": _COMPRESSOR,
    "zstd": _simple("(de)compress to stdout", check=checks.zstd_like_check),
}
_BEFORE_CUT = list(PROGRAMS)

# Every use needs a human: what they show or touch cannot be bounded by an option list.
_APPROVAL_ONLY = {
    "strace": "traces another process (slows it, shows its data)",
    "tcpdump": "captures packet contents (may include secrets)",
    "perf": "samples or wraps processes",
    "bpftrace": "runs an arbitrary kernel program; use the probe catalog instead",
    "openssl": "can connect out and handle keys",
    "tar": "reading archives is not a first-minutes diagnostic",
    "kubectl": "reaches the cluster API with this host's credentials",
    "base64": "encodes its input, which defeats redaction",
    "base32": "encodes its input, which defeats redaction",
    "rev": "reverses its input, which defeats redaction",
    "od": "dumps bytes in another encoding, which defeats redaction",
    "hexdump": "dumps bytes in another encoding, which defeats redaction",
    "xxd": "dumps bytes in another encoding, which defeats redaction",
    "dmsetup": "device-mapper tables can hold encryption keys",
    "zfs": "ZFS administration",
    "zpool": "ZFS pool administration",
    "sgdisk": "GPT partition tool",
    "efibootmgr": "firmware boot entries",
    "busctl": "talks to system services over D-Bus",
    "redis-cli": "talks to a data store (may need its password, can change data)",
    "etcdctl": "talks to the cluster's data store",
}
PROGRAMS.update(
    {
        "dmsetup": _simple(
            "device-mapper",
            check=checks.verb_check(
                checks.DMSETUP_DESTRUCTIVE, "removes, reloads or suspends device-mapper devices"
            ),
        ),
        "zfs": _simple(
            "ZFS datasets",
            check=checks.verb_check(checks.ZFS_DESTRUCTIVE, "destroys or changes datasets"),
        ),
        "zpool": _simple(
            "ZFS pools",
            check=checks.verb_check(checks.ZPOOL_DESTRUCTIVE, "destroys or changes pools"),
        ),
        "sgdisk": _simple("GPT partitions", check=checks.sgdisk_check),
        "efibootmgr": _simple("firmware boot entries", check=checks.efibootmgr_check),
        "busctl": _simple("D-Bus", check=checks.busctl_check),
        "redis-cli": _simple(
            "Redis client",
            short_with_arg="hpanu",
            check=checks.verb_check(
                checks.REDIS_DESTRUCTIVE,
                "erases, reconfigures or stops the data store",
                case_insensitive=True,
                anywhere=True,
            ),
        ),
        "etcdctl": _simple(
            "etcd client",
            check=checks.verb_check(checks.ETCD_DESTRUCTIVE, "changes or deletes cluster data"),
        ),
        "getent": _simple("name service lookup", check=checks.getent_check),
        "nft": _simple("firewall ruleset (list only)", check=checks.nft_joined_check),
        "nstat": _simple(
            "network counters",
            check=checks.nstat_check,
            deny_options={
                "-d": "runs as a daemon that outlives the command",
                "--scan": "runs as a daemon that outlives the command",
                "-t": "sets the daemon's interval",
                "--interval": "sets the daemon's interval",
            },
        ),
        "service": _simple("service status", check=checks.service_check),
    }
)
_SERVICE = spec("--status-all", r"(?!.*\.\.)[A-Za-z0-9_@.:-]+{0,2}")

# Only programs with an allowlist (or approval-only ones) stay; see docs/policy.md for the rest.
PROGRAMS = {
    name: replace(
        rule,
        spec=_SERVICE if name == "service" else SPECS.get(name),
        approval_only=_APPROVAL_ONLY.get(name, ""),
        metadata_only=name in METADATA_ONLY,
        transforms=name in TRANSFORMERS,
    )
    for name, rule in PROGRAMS.items()
    if name in SPECS or name in _APPROVAL_ONLY or name == "service"
}
REMOVED = sorted(set(_BEFORE_CUT) - set(PROGRAMS))

FILTERS: frozenset[str] = frozenset(name for name, rule in PROGRAMS.items() if rule.filter)

# Program files that must never be executed whatever name reached them (symlink targets):
# the executor checks the resolved file against these.
NEVER_EXECUTE_TARGETS = re.compile(
    r"(?:ba|da|z|k|mk|pdk|c|tc|fi|a|rba|ya)?sh|busybox|toybox|"
    r"(?:python|pypy|perl|ruby|php|lua|tclsh|node)\d*(?:\.\d+)*[a-z]?"
)
