//! The default seccomp profile of the friendly `cella run` command.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// Namespace-creating flags of clone(2) (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET).
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;
/// CLONE_NEWTIME: only meaningful to unshare(2) (in clone(2) it overlaps CSIGNAL).
const CLONE_NEWTIME: u64 = 0x80;
/// AF_VSOCK: sockets to the hypervisor/host, not the container's network.
const AF_VSOCK: u64 = 40;

/// Personalities a program may switch to: PER_LINUX, UNAME26, PER_LINUX32, PER_LINUX32
/// with UNAME26, and the 0xffffffff query (which changes nothing).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Syscalls every ordinary program may make. Names unknown on this architecture are
/// skipped when the filter is compiled (they are listed for the others).
const ALLOWED: &[&str] = &[
    // files and directories
    "access",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "flock",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "lchown32",
    "link",
    "linkat",
    "_llseek",
    "lseek",
    "lstat",
    "lstat64",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "sendfile64",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "sync_file_range2",
    "arm_sync_file_range",
    "arm_fadvise64_64",
    "syncfs",
    "tee",
    "truncate",
    "truncate64",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vmsplice",
    "write",
    "writev",
    "chroot",
    "pipe",
    "pipe2",
    // extended attributes
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "setxattr",
    // file and event notification, polling, async I/O
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "poll",
    "ppoll",
    "ppoll_time64",
    "pselect6",
    "pselect6_time64",
    "select",
    "_newselect",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    // memory
    "brk",
    "cachestat",
    "get_mempolicy",
    "madvise",
    "mbind",
    "membarrier",
    "memfd_create",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mremap",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
    "set_mempolicy",
    "set_mempolicy_home_node",
    "map_shadow_stack",
    // processes, threads, signals
    "arch_prctl",
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "futex",
    "futex_time64",
    "futex_waitv",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "getuid",
    "getuid32",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "set_tls",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setuid",
    "setuid32",
    "sigaltstack",
    "sigprocmask",
    "sigreturn",
    "tgkill",
    "tkill",
    "ugetrlimit",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "breakpoint",
    "cacheflush",
    "riscv_flush_icache",
    "nice",
    "sigaction",
    "signal",
    "sigpending",
    "sigsuspend",
    // time
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "gettimeofday",
    "nanosleep",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "times",
    "alarm",
    // reading the clock discipline (changing it needs CAP_SYS_TIME)
    "adjtimex",
    "clock_adjtime",
    "clock_adjtime64",
    // networking (socket itself is filtered below)
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketcall",
    "socketpair",
    // System V and POSIX IPC (private to the container's IPC namespace)
    "ipc",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    // system information (hostname changes stay in the container's UTS namespace)
    "getrandom",
    "sethostname",
    "setdomainname",
    "sysinfo",
    "uname",
];

fn syscall(names: &[&str], action: LinuxSeccompAction) -> LinuxSyscall {
    let mut call = LinuxSyscall::default();
    call.set_names(names.iter().map(|n| n.to_string()).collect());
    call.set_action(action);
    call
}

fn arg(index: usize, op: LinuxSeccompOperator, value: u64, value_two: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value)
        .value_two(value_two)
        .build()
        .expect("LinuxSeccompArgBuilder cannot fail: every field has a default")
}

/// The profile `cella run` applies unless told otherwise.
///
/// An allow-list in the spirit of the container engines' default profiles, written for
/// cella: every syscall not listed fails with EPERM. That denies, among others, the
/// kernel keyring (`keyctl`, `add_key`, `request_key`), loading kernels and modules
/// (`kexec_load`, `kexec_file_load`, `init_module`, `finit_module`, `delete_module`),
/// `open_by_handle_at`/`name_to_handle_at`, `bpf`, `perf_event_open`, `userfaultfd`,
/// `io_uring_*`, mounting (`mount`, `umount2`, the new mount API, `pivot_root`),
/// `setns`, `swapon`/`swapoff`, `reboot`, setting the clock, `acct`, `quotactl`,
/// `syslog`, `ioperm`/`iopl`, and inspecting other processes (`ptrace`,
/// `process_vm_readv`/`writev`, `kcmp`, `pidfd_getfd`).
///
/// Arguments are filtered where a syscall is safe only in part:
/// - `clone` and `unshare` are allowed only without namespace flags (no new user, mount,
///   PID, network, IPC, UTS, cgroup or time namespaces);
/// - `clone3` fails with ENOSYS (its flags live in memory a filter cannot read), so
///   libc falls back to `clone`;
/// - `personality` only to the Linux personalities or the 0xffffffff query;
/// - `socket` for every family except AF_VSOCK.
pub fn default_profile() -> LinuxSeccomp {
    let mut syscalls = vec![syscall(ALLOWED, LinuxSeccompAction::ScmpActAllow)];

    // The flags are the first argument of clone(2), except on s390 where the first two
    // arguments are swapped.
    let clone_flags_index = if cfg!(target_arch = "s390x") { 1 } else { 0 };
    let mut clone = syscall(&["clone"], LinuxSeccompAction::ScmpActAllow);
    clone.set_args(Some(vec![arg(
        clone_flags_index,
        LinuxSeccompOperator::ScmpCmpMaskedEq,
        CLONE_NAMESPACE_FLAGS,
        0,
    )]));
    syscalls.push(clone);

    let mut unshare = syscall(&["unshare"], LinuxSeccompAction::ScmpActAllow);
    unshare.set_args(Some(vec![arg(
        0,
        LinuxSeccompOperator::ScmpCmpMaskedEq,
        CLONE_NAMESPACE_FLAGS | CLONE_NEWTIME,
        0,
    )]));
    syscalls.push(unshare);

    let mut clone3 = syscall(&["clone3"], LinuxSeccompAction::ScmpActErrno);
    clone3.set_errno_ret(Some(libc::ENOSYS as u32));
    syscalls.push(clone3);

    // Several comparisons of the same argument: each becomes its own rule (OR).
    let mut personality = syscall(&["personality"], LinuxSeccompAction::ScmpActAllow);
    personality.set_args(Some(
        PERSONALITIES
            .iter()
            .map(|p| arg(0, LinuxSeccompOperator::ScmpCmpEq, *p, 0))
            .collect(),
    ));
    syscalls.push(personality);

    let mut socket = syscall(&["socket"], LinuxSeccompAction::ScmpActAllow);
    socket.set_args(Some(vec![arg(
        0,
        LinuxSeccompOperator::ScmpCmpNe,
        AF_VSOCK,
        0,
    )]));
    syscalls.push(socket);

    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::EPERM as u32));
    profile.set_architectures(Some(architectures()));
    profile.set_syscalls(Some(syscalls));
    profile
}

/// The native architecture plus the compat ABIs the kernel runs on it.
fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}
