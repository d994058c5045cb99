"""Per-program option allowlists (data): every option and operand an allowed program may take.

Notation (worker/policy/spec.py): `-abc` three short flags; `-n --lines =INT(1..500)` a short
and a long name for one option with a required value; `?=KIND` an optional (glued) value;
entries separated by `;`. Operands: `PATH*`, `PID?`, `NAME{0,1}`, `none`. Anything not listed
needs a human's approval. Programs whose every use needs approval (tracers, capture tools) are
not here; see programs.APPROVAL_ONLY. How to add a program: docs/policy.md.
"""

from __future__ import annotations

from worker.policy.spec import Spec, spec, words

_HELP = "--help --version"

# systemd tools share their output options
_SYSTEMD_COMMON = (
    "--no-pager --no-legend -q --quiet --full -l --all -a --plain --value; "
    "-o --output ={short,short-iso,short-precise,short-monotonic,json,json-pretty,cat,verbose,"
    "export,with-unit}; "
    f"-p --property =[A-Za-z0-9_,]+; {_HELP}"
)

_UNIT_READ = spec(
    f"{_SYSTEMD_COMMON}; -n --lines =INT(0..1000); --state =[a-z,-]+; -t --type =[a-z,]+; "
    "--recursive -r --reverse --after --before --failed --show-types --no-ask-password "
    "--system --user",
    "UNIT*",
)
_SYSTEMCTL_VERBS = words(
    "status show cat list-units list-unit-files list-sockets list-timers list-jobs "
    "list-dependencies list-automounts list-paths is-active is-enabled is-failed "
    "is-system-running get-default help"
)

_JOURNAL = (
    "-a --all -k --dmesg -x --catalog -r --reverse -q --quiet "
    "--no-pager --no-hostname --no-full --utc --disk-usage --list-boots -m --merge "
    "--header --fields --list-catalog --system; -b --boot ?=[-0-9a-f]{1,40}"
)

# GNU grep
_GREP = spec(
    "-EFGPivwxcLlosqhHnbrRzZUaITmA --extended-regexp --fixed-strings --basic-regexp "
    "--perl-regexp --ignore-case --no-ignore-case --invert-match --word-regexp --line-regexp "
    "--count --files-without-match --files-with-matches --only-matching --no-messages --quiet "
    "--silent --with-filename --no-filename --line-number --byte-offset --recursive "
    "--dereference-recursive --null --null-data --text --initial-tab --line-buffered "
    "--no-line-number -y;"
    "-e --regexp =TEXT; -m --max-count =INT(0..1000000); -A --after-context =INT(0..1000); "
    "-B --before-context =INT(0..1000); -C --context =INT(0..1000); "
    "--include =TEXT; --exclude =TEXT; --exclude-dir =TEXT; --color --colour ?={never,auto}; "
    "-d --directories ={read,skip,recurse}; -D --devices ={read,skip}; "
    "--binary-files ={binary,text,without-match}; --label =NAME",
    "TEXT*",
    count_option=True,
)

_DECOMPRESS = spec(
    "-d --decompress -c --stdout --to-stdout -f --force -q --quiet -k --keep", "PATH*"
)

_IPROUTE_OPTS = (
    "-4 -6 -0 -s -stats -statistics -d -details -br -brief -j -json -p -pretty -o -oneline "
    "-h -human -human-readable -iec -t -timestamp -ts -tshort -c -color -N -Numeric -a -all "
    "-V -Version"
)

SPECS: dict[str, Spec] = {
    # -- host overview
    "uptime": spec("-psV --pretty --since --help --version", "none"),
    "uname": spec(
        "-asnrvmpio --all --kernel-name --nodename --kernel-release --kernel-version --machine "
        f"--processor --hardware-platform --operating-system {_HELP}",
        "none",
    ),
    "hostname": spec(
        "-fisdAIaTyV --fqdn --long --short --domain --ip-address --all-fqdns "
        "--all-ip-addresses --alias --help --version",
        "none",
    ),
    "hostnamectl": spec(
        f"--no-ask-password --static --transient --pretty; --json ={{short,pretty,off}}; {_HELP}",
        "none",
        subcommands={"status": spec("", "none"), "hostname": spec("", "none")},
    ),
    "date": spec(
        "-uR --utc --universal --rfc-email --debug --help --version; -d --date =TEXT; "
        "-r --reference =PATH; -I --iso-8601 ?={date,hours,minutes,seconds,ns}; "
        "--rfc-3339 ={date,seconds,ns}",
        "[+].{0,100}?",
    ),
    "timedatectl": spec(
        f"--no-pager --no-ask-password -a --all --value; -p --property =[A-Za-z0-9_]+; {_HELP}",
        "none",
        subcommands={
            v: spec("", "none")
            for v in ("status", "show", "timesync-status", "show-timesync", "list-timezones")
        },
    ),
    "whoami": spec(_HELP, "none"),
    "id": spec("-ugGnrzaZ --user --group --groups --name --real --zero --help --version", "USER?"),
    "who": spec(
        "-abdHlmpqrsTtuw --all --boot --dead --heading --login --lookup --process --count "
        "--runlevel --short --time --users --mesg --message --writable --help --version",
        "none",
    ),
    "w": spec("-hiousfV --no-header --ip-addr --old-style --short --from --no-current", "USER?"),
    "last": spec(
        "-aFiwxdR --hostlast --fulltimes --ip --fullnames --system --dns --nohostname; "
        "-n --limit =INT(1..10000); -s --since =TIME; -t --until =TIME; "
        "--time-format ={notime,short,full,iso}",
        "[A-Za-z0-9_.-]{1,32}*",
        negative_numbers=True,
    ),
    "lastlog": spec(
        "-u --user =USER; -b --before =INT(0..100000); -t --time =INT(0..100000)", "none"
    ),
    "runlevel": spec("", "none"),
    # they read nothing: harmless, and the executor's own tests use them
    "echo": spec("-n -e -E", "TEXT*"),
    "printf": spec(_HELP, "TEXT+"),
    "seq": spec(
        "-w --equal-width; -s --separator =TEXT; -f --format =TEXT",
        r"[-+]?[0-9]{1,7}(\.[0-9]{1,3})?{1,3}",
        negative_numbers=True,
    ),
    "pwd": spec("-L -P", "none"),
    "true": spec(_HELP, "none"),
    "false": spec(_HELP, "none"),
    "nproc": spec("--all; --ignore =INT(0..4096)", "none"),
    "getconf": spec("-a", "[A-Z0-9_]{1,64}?"),
    # -- CPU, memory, I/O
    "vmstat": spec(
        "-afmnsdDtwSV --active --forks --slabs --one-header --stats --disk --disk-sum "
        "--timestamp --wide --help --version; -S --unit ={k,K,m,M}; -p --partition =IFACE",
        "INT(0..3600){0,2}",
    ),
    "free": spec(
        "-bkmghltwv --bytes --kilo --mega --giga --tera --peta --kibi --mebi --gibi --tebi "
        "--pebi --human --si --lohi --total --wide --committed --help --version; "
        "-s --seconds =NUM(0.1..60); -c --count =INT(1..10)",
        "none",
    ),
    "iostat": spec(
        "-cdhkmNsStxyz --human --pretty; -p =[A-Za-z0-9,]+|ALL; -g =NAME; "
        "-j ={ID,LABEL,PATH,UUID}; -o ={JSON}; --dec ={0,1,2}",
        "[A-Za-z0-9]{1,32}*",
    ),
    "mpstat": spec(
        "-uTHn; -A; -P =[0-9,ALL-]+; -I ={CPU,SCPU,SUM,ALL}; -N =[0-9,ALL-]+; "
        "-o ={JSON}; --dec ={0,1,2}",
        "INT(0..3600){0,2}",
    ),
    "pidstat": spec(
        "-dhHIlRrsuvtwUY --human; -p =[0-9,]+|ALL|SELF; -C =TEXT; -G =TEXT; -T ={TASK,CHILD,ALL}; "
        "--dec ={0,1,2}",
        "INT(0..3600){0,2}",
    ),
    "sar": spec(
        "-ABbdFHhpqrSuvWwyz --human; -n =[A-Z,0-9]+; -P =[0-9,ALL-]+; -I =[A-Z0-9,]+; "
        "-m =[A-Z,]+; -u ?={ALL}; -r ?={ALL}; -f =PATH; -s =TIME; -e =TIME; -i =INT(1..3600); "
        "--dec ={0,1,2}",
        "INT(0..3600){0,2}",
    ),
    "nstat": spec(
        "-azsjph --ignore --zeros --absolute --noupdate --json --pretty --help", "[A-Za-z0-9_*]+*"
    ),
    "top": spec(
        "-bcHiSsE1; -n =INT(1..5); -d =NUM(0.1..10); -o =[-+]?[A-Z%]+; -p =PIDS; "
        "-u =USER; -U =USER; -w ?=INT(0..512); -E ={k,m,g,t,p,e}; -e ={k,m,g,t,p}",
        "none",
    ),
    "iotop": spec(
        "-boPaktq --batch --only --processes --accumulated --kilobytes --time "
        "--quiet; -n --iter =INT(1..5); -d --delay =NUM(0.1..10); -p --pid =PID; "
        "-u --user =USER",
        "none",
    ),
    "slabtop": spec("-o --once; -s --sort =[abcilnopsu]", "none"),
    "ps": spec(
        "-AaCdeFfHjLlMNTwyxcPZ --forest --headers --no-headers --cumulative --help --version; "
        "-o -O --format =COLS; -p --pid =PIDS; -q --quick-pid =PIDS; --ppid =PIDS; "
        "-C =[A-Za-z0-9_.:,-]+; -u -U --user =USERS; -g -G --group =USERS; -s --sid =PIDS; "
        "-t --tty =[A-Za-z0-9/,]+; --sort =[-+A-Za-z0-9_%,]+; --cols --columns --width "
        "=INT(1..100000); --lines --rows =INT(1..100000)",
        "[auxfwlLjsvmrTSHhcnZ]+|[1-9][0-9,]**",
        note="BSD-style option letters or process ids",
    ),
    "pgrep": spec(
        "-lafvcxinoiwrA --list-name --list-full --full --inverse --count --exact --newest "
        "--oldest --ignore-case --lightweight --ignore-ancestors; -d --delimiter =TEXT; "
        "-g --pgroup =PIDS; -G --group =USERS; -P --parent =PIDS; -s --session =PIDS; "
        "-t --terminal =[A-Za-z0-9/,]+; -u --euid =USERS; -U --uid =USERS; --ns =PID",
        "TEXT?",
    ),
    "pidof": spec("-sxcnqz; -o --omit-pid =PIDS", "[A-Za-z0-9_.:-]+*"),
    "pstree": spec(
        "-aAcglnpsStTuUZ --arguments --ascii --compact-not --show-pgids --long --numeric-sort "
        "--show-pids --show-parents --ns-changes --thread-names --hide-threads --uid-changes "
        "--unicode --security-context",
        "[A-Za-z0-9_.-]+?",
    ),
    "pmap": spec("-xXdqp --extended --device --quiet --show-path; -A --range =[0-9a-fx,]+", "PID+"),
    "pwdx": spec("", "PID+"),
    "prlimit": spec(
        "--noheadings --raw --verbose; -p --pid =PID; -o --output =COLS; "
        "-c -d -e -f -i -l -m -n -q -r -s -t -u -v -x -y --core --data --nice --fsize "
        "--sigpending --memlock --rss --nofile --msgqueue --rtprio --stack --cpu --nproc --as "
        "--locks --rttime ?=NONE",
        "none",
        note="a COMMAND operand would run another command",
    ),
    "lscpu": spec(
        "-aebcpxyJ --all --extended --caches --online --offline --parse --hex "
        "--json --physical --output-all",
        "none",
    ),
    "lsmem": spec(
        "-abJnrsS --all --bytes --json --noheadings --raw --summary; -o --output =COLS", "none"
    ),
    "lspci": spec("-mtvnkxbDPq; -s =[0-9a-fA-F:.]+; -d =[0-9a-fA-F:]+", "none"),
    "lsusb": spec("-vt; -s =[0-9:]+; -d =[0-9a-fA-F:]+", "none"),
    "lsblk": spec(
        "-abdDfimJlnOpPrstSzAE --all --bytes --nodeps --discard --fs --ascii --perms --json "
        "--list --noheadings --output-all --paths --pairs --raw --inverse --topology --scsi "
        "--zoned --tree; -o --output =COLS; -x --sort =[A-Z-]+; -e --exclude =[0-9,]+",
        "PATH*",
    ),
    "blkid": spec("-dgilpkV; -o =[a-z]+; -s =[A-Z_]+; -t =[A-Z_]+=[A-Za-z0-9_.-]+", "PATH*"),
    "findmnt": spec(
        "-AabcDdfklmnrsuJ --all --ascii --bytes --canonicalize --df --first-only --kernel "
        "--list --mtab --noheadings --raw --fstab --notruncate --json --submounts --real "
        "--pseudo --shadow; -o --output =COLS; -t --types =[a-z0-9,]+; -O --options =[a-z0-9,=]+; "
        "-S --source =PATH; -T --target =PATH; -M --mountpoint =PATH",
        "PATH{0,2}",
    ),
    "df": spec(
        "-ahHiklPTx --all --human-readable --si --inodes --local --portability --print-type "
        "--total --help --version; -t --type =[a-z0-9]+; -x --exclude-type =[a-z0-9]+; "
        "--output ?=COLS; -B --block-size =SIZE",
        "PATH*",
    ),
    "du": spec(
        "-abchHklLmsSx0 --all --apparent-size --bytes --total --human-readable --si "
        "--dereference --dereference-args --separate-dirs --summarize --one-file-system "
        "--count-links --inodes --null; -d --max-depth =INT(0..20); -t --threshold =[-0-9KMGT]+; "
        "--exclude =TEXT; -B --block-size =SIZE; --time ?={atime,ctime,access,use,status}",
        "PATH*",
    ),
    "mount": spec(
        "-l -h -V --show-labels --help --version; -t --types =[a-z0-9,]+",
        "none",
        note="operands mount a filesystem; use findmnt",
    ),
    "fdisk": spec(
        "-l --list -x --list-details; -b =INT(512..4096); -u ?={cylinders,sectors}; "
        "-o --output =COLS",
        "PATH*",
    ),
    "sfdisk": spec(
        "-l --list -d --dump -s --show-size -J --json -F --list-free -V --verify", "PATH*"
    ),
    "parted": spec("-l --list -m --machine -s --script", "none"),
    "pvs": spec(
        "-av --all --noheadings --nosuffix; --units =[bBsSkKmMgGtT]; --separator =TEXT; "
        "-o --options =COLS; -S --select =TEXT",
        "PATH*",
    ),
    "vgs": spec(
        "-av --all --noheadings --nosuffix; --units =[bBsSkKmMgGtT]; --separator =TEXT; "
        "-o --options =COLS; -S --select =TEXT",
        "NAME*",
    ),
    "lvs": spec(
        "-av --all --noheadings --nosuffix; --units =[bBsSkKmMgGtT]; --separator =TEXT; "
        "-o --options =COLS; -S --select =TEXT",
        "[A-Za-z0-9_./+-]+*",
    ),
    "pvdisplay": spec("-cmsv --colon --maps --short", "PATH*"),
    "vgdisplay": spec("-cvsA --colon --short --activevolumegroups", "NAME*"),
    "lvdisplay": spec("-cmv --colon --maps", "[A-Za-z0-9_./+-]+*"),
    "lsmod": spec("", "none"),
    "modinfo": spec(
        "-adlnp0 --author --description --license --filename --null; "
        "-F --field =[a-z]+; -k =[A-Za-z0-9._+-]+",
        "[A-Za-z0-9_-]+*",
    ),
    "lsns": spec(
        "-JlnruT --json --list --noheadings --raw --notruncate --tree; "
        "-t --type =[a-z]+; -o --output =COLS; -p --task =PID",
        "INT?",
    ),
    "lsipc": spec(
        "-mqsgeJlnrb --shmems --queues --semaphores --global --export --json --list "
        "--noheadings --raw --bytes --notruncate; -i --id =INT; -o --output =COLS",
        "none",
    ),
    "ipcs": spec(
        "-aqmsltpuc --all --queues --shmems --semaphores --limits --time --pid "
        "--summary --creator --human --bytes; -i --id =INT",
        "none",
    ),
    "lslocks": spec(
        "-bJinru --bytes --json --noinaccessible --noheadings --raw --notruncate; "
        "-o --output =COLS; -p --pid =PID",
        "none",
    ),
    "lsattr": spec("-Vadlpv", "PATH*"),  # not -R: it would open every file below
    "numastat": spec("-cmnsvzV; -p =[0-9A-Za-z_.-]+", "[0-9A-Za-z_.-]+*"),
    "numactl": spec(
        "-H --hardware -s --show", "none", note="a COMMAND operand would run another command"
    ),
    "dmidecode": spec(
        "-qu --quiet --dump; -t --type =[a-z0-9,-]+; -s --string =[a-z0-9-]+", "none"
    ),
    "lsof": spec(
        "-bhlnNOPRtUVwXHKQaCMPt; "
        # the host part numeric only: a name would be looked up in DNS
        "-i ?=[46]?(?:TCP|UDP|tcp|udp)?(?:@[0-9.:\\[\\]]+)?(?::[A-Za-z0-9,-]+)?; "
        "-p =[0-9,^]+; "
        "-c =[A-Za-z0-9_.^-]+; -u =[A-Za-z0-9_.,^-]+; -g ?=[0-9,^]+; -s ?=[A-Za-z:,]+; "
        "-d =[0-9a-zA-Z,^-]+; -F ?=[a-zA-Z0-9]+; -T ?=[fqsw]*; -E; -x ?=[fl]*; "
        "-S ?=INT(1..60); +L ?=INT(0..100); -L ?=INT(0..100); +D =PATH; +d =PATH; "
        "+c =INT(0..64)",
        "PATH*",
        plus_options=True,
        separate_optional=r"[^-+].*",
    ),
    "fuser": spec(
        "-avmuswi46 --all --verbose --mount --user --silent --ipv4 --ipv6; "
        "-n --namespace ={file,tcp,udp}",
        # a path, or PORT[,REMOTE_IP[,PORT]][/tcp|/udp]; a host name would be looked up in DNS
        r"/.*|[0-9]{1,5}(?:,[0-9a-fA-F.:]*(?:,[0-9]{0,5})?)?(?:/(?:tcp|udp))?*",
    ),
    "stat": spec("-LfFt --dereference --file-system --terse; -c --format --printf =TEXT", "PATH+"),
    "file": spec(
        "-bLhNiksz0 --brief --dereference --no-dereference --no-pad --mime "
        "--mime-type --mime-encoding --keep-going --special-files --uncompress",
        "PATH+",
    ),
    "ls": spec(
        "-aAbBcCdfFgGhHiklLmnNopqQrRsStuUvxXZ1 --all --almost-all --escape --directory "
        "--classify --human-readable --si --inode --dereference --numeric-uid-gid "
        "--reverse --recursive --size --full-time --group-directories-first --no-group "
        "--literal --context; --color --colour ?={never,auto,always}; "
        "--sort ={none,size,time,version,extension,width}; "
        "--time ={atime,access,use,ctime,status,birth,creation,mtime,modification}; "
        "--time-style =[a-z+%:-]+; --block-size =SIZE; -I --ignore =TEXT; -w --width =INT(0..1000)",
        "PATH*",
    ),
    "tree": spec(
        "-adfilpsugDFrtxACJNhQ --du --si --noreport --dirsfirst; -L =INT(1..10); -P -I =TEXT",
        "PATH*",
    ),
    "readlink": spec(
        "-fenmqsvz --canonicalize --canonicalize-existing --canonicalize-missing "
        "--no-newline --quiet --silent --verbose --zero",
        "PATH+",
    ),
    "realpath": spec(
        "-eLmPqsz --canonicalize-existing --canonicalize-missing --logical "
        "--physical --quiet --strip --no-symlinks --zero",
        "PATH+",
    ),
    "sysctl": spec(
        "-aenNbqrAX --all --values --names --binary --ignore --quiet --pattern; -r --pattern =TEXT",
        "[A-Za-z0-9_./*-]+*",
        note="a key=value operand sets a kernel parameter",
    ),
    "dmesg": spec(
        "-dekLrtTxuSH --show-delta --reltime --kernel --raw --ctime --notime --decode "
        "--userspace --syslog --human --nopager; "
        "--color ?={never,auto,always}; "
        "-l --level ={emerg,alert,crit,err,warn,notice,info,debug,emerg+,alert+,crit+,err+,warn+,"
        "notice+,info+,debug+,+emerg,+alert,+crit,+err,+warn,+notice,+info,+debug},; "
        "-f --facility ={kern,user,mail,daemon,auth,syslog,lpr,news},; "
        "--time-format ={delta,reltime,ctime,notime,iso,raw}; --since --until =TIME",
        "none",
    ),
    "journalctl": spec(
        f"{_JOURNAL}; -n --lines =INT(0..10000); -u --unit =UNIT; --user-unit =UNIT; "
        "-t --identifier =NAME; -p --priority =[a-z0-9.]+; -g --grep =TEXT; --case-sensitive "
        "?={true,false,yes,no}; -S --since -U --until =TIME; -o --output ={short,short-iso,"
        "short-iso-precise,short-precise,short-monotonic,short-unix,verbose,json,json-pretty,cat,"
        "with-unit}; --output-fields =[A-Za-z0-9_,]+; -D --directory =PATH; "
        "--file =PATH; --facility =[a-z0-9,]+; -e --pager-end",
        "[A-Z_]+=[A-Za-z0-9_.@:/-]+|/usr/s?bin/[A-Za-z0-9_.-]+*",
        note="FIELD=value matches only",
        separate_optional=r"[-+]?[0-9]{1,4}|[0-9a-f]{32}|all",  # `-b -1`, as journalctl peeks
    ),
    "systemctl": spec(
        f"{_SYSTEMD_COMMON}; --failed --no-ask-password --system; -t --type =[a-z,]+; "
        "--state =[a-z,-]+",
        "none",
        subcommands={verb: _UNIT_READ for verb in _SYSTEMCTL_VERBS},
    ),
    "service": spec("--status-all", "none"),  # `service NAME status`: checks.service_check
    "loginctl": spec(
        f"{_SYSTEMD_COMMON}",
        "none",
        subcommands={
            v: spec("", "[A-Za-z0-9_.-]+*")
            for v in words(
                "list-sessions list-users list-seats show-session show-user show-seat "
                "session-status user-status seat-status"
            )
        },
    ),
    "localectl": spec(
        f"--no-pager --no-ask-password; {_HELP}",
        "none",
        subcommands={v: spec("", "none") for v in ("status", "list-locales", "list-keymaps")},
    ),
    "chronyc": spec(
        "-n -c -N -a -4 -6; -h =TEXT",
        "none",
        subcommands={
            v: spec("", r"[0-9a-fA-F.:]{2,39}?" if v == "ntpdata" else "none")
            for v in words(
                "tracking sources sourcestats activity ntpdata serverstats selectdata authdata "
                "rtcdata smoothing"
            )
        },
        bare_ok=False,
    ),
    "apt": spec(
        "-a --all-versions --installed --upgradable --manual-installed -q --quiet",
        "none",
        subcommands={
            v: spec("", "[A-Za-z0-9_.:+*~-]+*")
            for v in ("list", "show", "policy", "depends", "rdepends")
        },
        bare_ok=False,
    ),
    "apt-cache": spec(
        "-a --all-versions -q --quiet -n --names-only -f --full -i --important "
        "--recurse --installed --no-pre-depends --no-recommends --no-suggests",
        "none",
        subcommands={
            v: spec("", "[A-Za-z0-9_.:+*~-]+*")
            for v in words(
                "policy show showpkg search depends rdepends pkgnames stats madison showsrc"
            )
        },
        bare_ok=False,
    ),
    "swapon": spec("--show ?=COLS; -s --summary --noheadings --raw --bytes", "none"),
    "tune2fs": spec("-l", "PATH{1}"),
    "dumpe2fs": spec("-hxb", "PATH{1}"),
    "xfs_info": spec("", "PATH{1}"),
    "smartctl": spec(
        "-a --all -x --xall -i --info -H --health -A --attributes "
        "-c --capabilities -j --json --scan --scan-open; "
        "-l --log ={error,selftest,selective,directory,background,sasphy,sataphy,scttemp,"
        "scttempsts,scttemphist,scterc,devstat,defects,xerror,xselftest,ssd}; "
        "-d --device =[a-z0-9,]+; -q --quietmode ={errorsonly,silent,noserial}",
        "PATH?",
    ),
    "nvme": spec(
        "-o --output-format ={normal,json,binary}; -H --human-readable; -v --verbose",
        "none",
        subcommands={
            v: spec("-o --output-format ={normal,json}; -H --human-readable", "PATH?")
            for v in (
                "list",
                "list-subsys",
                "smart-log",
                "error-log",
                "id-ctrl",
                "id-ns",
                "fw-log",
                "version",
            )
        },
        bare_ok=False,
    ),
    "systemd-analyze": spec(
        f"--no-pager --system; {_HELP}",
        "none",
        subcommands={
            v: spec("", "UNIT*")
            for v in words(
                "time blame critical-chain unit-paths calendar timespan timestamp security "
                "cat-config syscall-filter exit-status capability"
            )
        },
    ),
    "coredumpctl": spec(
        "--no-pager --no-legend -r --reverse -q --quiet -1; -n =INT(1..1000); "
        "-S --since -U --until =TIME",
        "none",
        # not `info`: it prints the crashed process's environment (COREDUMP_ENVIRON)
        subcommands={"list": spec("", "[A-Za-z0-9_.=/-]+*")},
    ),
    "systemd-cgtop": spec(
        "-b --batch -c -m -i -t -p -r -P -k --raw; --cpu ?={percentage,time}; "
        "-n --iterations =INT(1..5); -d --delay =NUM(0.1..10); "
        "--depth =INT(1..10); -1",
        "[A-Za-z0-9_./@-]+?",
    ),
    "zramctl": spec("-b --bytes -n --noheadings -r --raw; -o --output =COLS", "none"),
    "mdadm": spec("--detail -D --query -Q --examine -E --brief -b --scan -s --verbose -v", "PATH*"),
    "crontab": spec("-l; -u =USER", "none"),
    "dpkg": spec(
        "-l --list -L --listfiles -s --status -S --search -p --print-avail "
        "--get-selections --print-architecture --version -V --verify --audit -C",
        "[A-Za-z0-9_.:+*~/-]+*",
    ),
    "dpkg-query": spec(
        "-l --list -L --listfiles -s --status -S --search -p --print-avail; "
        "-W --show; -f --showformat =TEXT",
        "[A-Za-z0-9_.:+*~/-]+*",
    ),
    "rpm": spec(
        "-q --query -a --all -i --info -l --list -f --file -c --configfiles -d "
        "--docfiles -R --requires --provides --whatprovides --whatrequires --changelog "
        "--last -V --verify -s --state",
        "[A-Za-z0-9_.:+*~/-]+*",
    ),
    # -- network
    "ss": spec(
        "-hnraloeimpTsEZzNbtuwxSH0468KD --help --version --numeric --resolve --all --listening "
        "--options --extended --memory --processes --threads --info --tos --cgroup --summary "
        "--bpf --tcp --udp --raw --unix --sctp --dccp --vsock --tipc --xdp --mptcp "
        "--inet-sockets --packet --ipv4 --ipv6 --no-header --oneline --no-queues; "
        "-f --family ={unix,inet,inet6,link,netlink,vsock,tipc,xdp}; "
        "-A --query --socket =[a-z_,|!]+",
        "[A-Za-z0-9_.:!=<>()\\[\\]*/%-]+|[ A-Za-z0-9_.:!=<>()\\[\\]*/%,-]+*",
    ),
    "netstat": spec(
        "-antulpesrigWvNoxw --all --numeric --tcp --udp --listening --program --extended "
        "--statistics --route --interfaces --groups --wide --verbose --timers --unix --raw "
        "--numeric-hosts --numeric-ports --numeric-users -4 -6",
        "none",
    ),
    "ifconfig": spec("-a -s -v", "IFACE?", note="further operands change the interface"),
    "route": spec(
        "-n -e -ee -v -F -C -4 -6 --numeric --extend --verbose --fib --cache; -A ={inet,inet6}",
        "none",
    ),
    "arp": spec(
        "-a -n -e -v --all --numeric --verbose; -i --device =IFACE; -H --hw-type =[a-z0-9]+",
        "[A-Za-z0-9_.:-]+?",
    ),
    "ethtool": spec(
        "-i -S -k -g -a -c -l -m -P -T -x -u -n --driver --statistics --show-features "
        "--show-offload --show-ring --show-pause --show-coalesce --show-channels --module-info "
        "--show-permaddr --show-time-stamping --show-rxfh --show-eee --show-fec "
        "--show-priv-flags --phy-statistics --json -d --register-dump -e --eeprom-dump; "
        "--all-groups",
        "IFACE{0,1}",
    ),
    "conntrack": spec(
        "-L --dump -S --stats -C --count; -o --output =[a-z,]+; -p --proto "
        "=[a-z0-9]+; -f --family ={ipv4,ipv6}; -n --src-nat -g --dst-nat; "
        "-s --src -d --dst =[0-9a-fA-F.:/]+; --sport --dport =INT(0..65535)",
        "none",
    ),
    "iptables": spec(
        "-L --list -S --list-rules -n --numeric -v --verbose -x --exact --line-numbers "
        "-4 -6 --ipv4 --ipv6; -t --table ={filter,nat,mangle,raw,security}; -w --wait "
        "?=INT(0..10)",
        "[A-Za-z0-9_-]{1,30}?",
    ),
    "iptables-save": spec("-c --counters; -t --table ={filter,nat,mangle,raw,security}", "none"),
    "nft": spec(
        "-a --handle -n --numeric -s --stateless -j --json -N -S --service -y "
        "--numeric-priority -t --terse",
        "TEXT*",
    ),
    "ufw": spec(
        "",
        "none",
        subcommands={"status": spec("", "{verbose,numbered}?"), "version": spec("", "none")},
        bare_ok=False,
    ),
    "firewall-cmd": spec(
        "--state --list-all --list-all-zones --get-active-zones "
        "--get-default-zone --get-zones --get-services --list-services "
        "--list-ports --list-rich-rules --permanent; --zone =NAME",
        "none",
    ),
    "ping": spec(
        "-4 -6 -n -q -v -D -O; -c =INT(1..5); -W =NUM(0.1..10); -w =NUM(1..30); "
        "-i =NUM(0.2..5); -s =INT(0..1472); -I =IFACE; -t =INT(1..255)",
        "TEXT{1}",
    ),
    "traceroute": spec(
        "-4 -6 -n -I -T -U -e; -m =INT(1..64); -q =INT(1..3); -w =NUM(0.1..5); "
        "-p --port =INT(1..65535); -i =IFACE",
        "TEXT{1}",
    ),
    "tracepath": spec(
        "-4 -6 -n -b; -m =INT(1..64); -l =INT(64..9000); -p =INT(1..65535)", "TEXT{1}"
    ),
    "mtr": spec(
        "-r --report -w --report-wide -j --json -C --csv -n --no-dns -b --show-ips "
        "-4 -6 -u --udp -T --tcp -z --aslookup; -c --report-cycles =INT(1..10); "
        "-i --interval =NUM(0.5..5)",
        "TEXT{1}",
    ),
    "arping": spec("-0 -b -D -q -f; -c =INT(1..5); -w =INT(1..10); -I =IFACE", "TEXT{1}"),
    "dig": spec(
        "-4 -6 -u -h -v; -t =[A-Za-z0-9]+; -c ={IN,CH}; -x =[0-9a-fA-F.:]+; -p =INT(1..65535)",
        "[@+]?[A-Za-z0-9_.:=-]+*",
    ),
    "host": spec(
        "-a -A -c -d -l -r -s -T -U -v -4 -6 -C; -t =[A-Za-z0-9]+; -W =INT(1..10); -R =INT(0..3)",
        "[A-Za-z0-9_.:-]+{1,2}",
    ),
    "nslookup": spec("", "[A-Za-z0-9_.:-]+{1,2}"),
    "getent": spec("-s --service =NAME; -i --no-idn", "[A-Za-z0-9_.:-]++"),
    "resolvectl": spec(
        "--no-pager; --legend ={yes,no}; -4; -6; -t --type =[A-Za-z0-9]+; -i --interface =IFACE",
        "none",
        subcommands={
            "status": spec("", "IFACE*"),
            "statistics": spec("", "none"),
            "dns": spec("", "IFACE?"),
            "domain": spec("", "IFACE?"),
            "query": spec("", "[A-Za-z0-9_.:-]++"),
        },
    ),
    "docker": spec(
        "",
        "none",
        subcommands={
            "ps": spec(
                "-a --all -q --quiet -s --size --no-trunc -l --latest; -n --last "
                "=INT(1..1000); -f --filter =TEXT; --format =TEXT",
                "none",
            ),
            "images": spec("-a --all -q --quiet --no-trunc --digests; --format =TEXT", "none"),
            "info": spec("--format =TEXT", "none"),
            "version": spec("--format =TEXT", "none"),
            "top": spec("", "[A-Za-z0-9_.-]+{1}"),
            "stats": spec("--no-stream -a --all --no-trunc; --format =TEXT", "[A-Za-z0-9_.-]+*"),
            "logs": spec(
                "-t --timestamps --details; -n --tail =INT(0..10000); --since --until =TIME",
                "[A-Za-z0-9_.-]+{1}",
            ),
            "port": spec("", "[A-Za-z0-9_./-]+{1,2}"),
        },
        bare_ok=False,
    ),
    # -- files and text (the filters)
    "cat": spec(
        "-AbeEnstTuv --show-all --number-nonblank --number --squeeze-blank "
        "--show-ends --show-tabs --show-nonprinting",
        "PATH*",
    ),
    "head": spec(
        "-qvz --quiet --silent --verbose --zero-terminated; "
        "-n --lines =[-]?[0-9]{1,7}; -c --bytes =[-]?[0-9]{1,9}[kKMb]?",
        "PATH*",
        count_option=True,
    ),
    "tail": spec(
        "-qvz --quiet --silent --verbose --zero-terminated; "
        "-n --lines =[-+]?[0-9]{1,7}; -c --bytes =[-+]?[0-9]{1,9}[kKMb]?",
        "PATH*",
        count_option=True,
    ),
    "grep": _GREP,
    "egrep": _GREP,
    "fgrep": _GREP,
    "zgrep": _GREP,
    "awk": spec(
        "-F --field-separator =TEXT; -v --assign =[A-Za-z_][A-Za-z0-9_]*=.*; "
        "-S --sandbox -P --posix -c --traditional -b --characters-as-bytes; "
        "-e --source =TEXT",
        "TEXT*",
    ),
    "sed": spec(
        "-nErsuz --quiet --silent --regexp-extended --separate --unbuffered "
        "--null-data --posix --debug --sandbox; -e --expression =TEXT; "
        "-l --line-length =INT(1..1000)",
        "TEXT*",
    ),
    "sort": spec(
        "-bdfghiMnRrsuVcCz --ignore-leading-blanks --dictionary-order --ignore-case "
        "--general-numeric-sort --human-numeric-sort --ignore-nonprinting --month-sort "
        "--numeric-sort --reverse --version-sort --stable --unique --check --zero-terminated; "
        "-k --key =[0-9.,a-zA-Z]+; -t --field-separator =TEXT; "
        "--sort ={general-numeric,human-numeric,month,numeric,random,version}",
        "PATH*",
        negative_numbers=False,
    ),
    "uniq": spec(
        "-cdDiuz --count --repeated --unique --ignore-case --zero-terminated; "
        "-f --skip-fields =INT(0..1000); -s --skip-chars =INT(0..10000); "
        "-w --check-chars =INT(0..10000)",
        "PATH?",
        note="a second operand is written to",
    ),
    "wc": spec("-clmwL --bytes --chars --lines --words --max-line-length", "PATH*"),
    "cut": spec(
        "-bcf --bytes --characters --fields =[0-9,-]+; -d --delimiter =TEXT; -s "
        "--only-delimited --complement -z --zero-terminated; --output-delimiter =TEXT",
        "PATH*",
    ),
    "tr": spec(
        "-s --squeeze-repeats -d --delete -c -C --complement -t --truncate-set1", "TEXT{1,2}"
    ),
    "column": spec(
        "-tsnoxeJ --table --separator --output-separator --json --fillrows; "
        "-s =TEXT; -o =TEXT; -c --output-width =INT(1..1000); -N --table-columns "
        "=COLS",
        "PATH*",
    ),
    "jq": spec(
        "-r --raw-output -c --compact-output -S --sort-keys -e --exit-status -M "
        "--monochrome-output -j --join-output -a --ascii-output --tab -s --slurp; "
        "--indent =INT(0..7)",
        "TEXT{1,8}",
    ),
    "strings": spec(
        "-afw --all --print-file-name; -n --bytes =INT(1..100); "
        "-t --radix ={o,d,x}; -e --encoding ={s,S,b,l,B,L}",
        "PATH*",
    ),
    "diff": spec(
        "-qsyuNbwBiraT --brief --report-identical-files --unified --new-file "
        "--ignore-space-change --ignore-all-space --ignore-blank-lines --ignore-case "
        "--recursive --text --side-by-side; -U --unified =INT(0..100); "
        "-C =INT(0..100); --color ?={never,auto,always}",
        "PATH{2}",
    ),
    "md5sum": spec("--tag -z", "PATH*"),  # not -c: the list file names what is opened
    "sha1sum": spec("--tag -z", "PATH*"),  # not -c: the list file names what is opened
    "sha256sum": spec("--tag -z", "PATH*"),  # not -c: the list file names what is opened
    "sha512sum": spec("--tag -z", "PATH*"),  # not -c: the list file names what is opened
    "zcat": spec("-f --force -q --quiet", "PATH*"),
    "bzcat": spec("-q --quiet -s --small", "PATH*"),
    "xzcat": spec("-q --quiet", "PATH*"),
    "zstdcat": spec("-q --quiet", "PATH*"),
    "gzip": _DECOMPRESS,
    "gunzip": _DECOMPRESS,
    "xz": spec("-d --decompress -c --stdout -q --quiet -k --keep", "PATH*"),
    "unxz": spec("-c --stdout -q --quiet -k --keep", "PATH*"),
    "bzip2": spec("-d --decompress -c --stdout -q --quiet -k --keep", "PATH*"),
    "zstd": spec("-d --decompress -c --stdout -q --quiet -k --keep", "PATH*"),
    "find": spec(
        "-P -L -H; -name -iname -path -ipath -regex -iregex -lname -ilname =TEXT; "
        "-type -xtype =[fdlbcps,]+; -size =[-+]?[0-9]+[bcwkMG]?; -mtime -atime -ctime -mmin "
        "-amin -cmin =[-+]?[0-9]+; -newer =PATH; -user -group =USER; -uid -gid -links -inum "
        "=[-+]?[0-9]+; -perm =[-/]?[0-7ugoa=+rwxst,]+; -maxdepth -mindepth =INT(0..20); "
        "-xdev -mount -empty -readable -writable -executable -nouser -nogroup -print -print0 "
        "-ls -prune -quit -true -false -not -a -and -o -or -depth -daystart -follow "
        "-noleaf; -samefile =PATH; -fstype =[a-z0-9]+; -printf =TEXT",
        "[^-].**",
        single_dash_long=True,
    ),
    # iproute2: parsed by checks.iproute_spec_check (their own grammar: objects, verbs)
    "ip": spec(
        _IPROUTE_OPTS + "; -f -family ={inet,inet6,link,mpls,bridge}",
        "TEXT*",
        single_dash_long=True,
        permute=False,
    ),
    "tc": spec(
        "-s -stats -statistics -d -details -p -pretty -j -json -g -graph -r -raw "
        "-i -iec -t -ts -N -Numeric -c -color -V -Version",
        "TEXT*",
        single_dash_long=True,
        permute=False,
    ),
    "bridge": spec(
        "-s -stats -statistics -d -details -j -json -p -pretty -c -color -4 -6 "
        "-t -timestamp -o -oneline",
        "TEXT*",
        single_dash_long=True,
        permute=False,
    ),
}

# Same program under other names: the same allowlist.
for _alias, _base in {
    "gawk": "awk",
    "mawk": "awk",
    "nawk": "awk",
    "ip6tables": "iptables",
    "iptables-legacy": "iptables",
    "ip6tables-legacy": "iptables",
    "iptables-nft": "iptables",
    "ip6tables-nft": "iptables",
    "ip6tables-save": "iptables-save",
    "ping6": "ping",
    "podman": "docker",
}.items():
    SPECS[_alias] = SPECS[_base]
