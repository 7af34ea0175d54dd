//! Compiling `linux.seccomp` to a BPF program, and installing it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use crate::Error;

const PREFIX: &str = "linux.seccomp";
/// The kernel caps the errno a filter can return at `MAX_ERRNO`.
const MAX_ERRNO: u32 = 4095;
/// System calls take at most six arguments.
const MAX_ARGS: usize = 6;
/// The kernel's limit on the length of one classic BPF program.
const BPF_MAXINSNS: usize = 4096;
/// `sizeof(sun_path)`: the longest path (plus NUL) a unix socket address can hold.
const SUN_PATH_MAX: usize = 108;
/// Above this many rules libseccomp's binary-tree layout makes the program faster.
const OPTIMIZE_ABOVE_RULES: usize = 32;

/// Syscalls that must not be sent to the seccomp agent.
///
/// Between [`Filter::load`] and `execve` the runtime passes the listener fd out of the
/// container (`sendmsg`) and may report errors (`write`). If the filter routed those to
/// the agent, the agent would wait for the fd that the blocked call is trying to send:
/// a deadlock. runc refuses `write` for the same reason.
const NOTIFY_FORBIDDEN: &[&str] = &["write", "sendmsg"];

/// A syscall name that libseccomp does not know on this machine's architecture.
///
/// Profiles list syscalls of many kernels and architectures, so such names are skipped
/// (no rule is added; the syscall gets the default action) rather than refused. This is
/// what runc does. The runtime should report them as warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSyscall {
    /// The JSON path of the name, e.g. `linux.seccomp.syscalls[4].names[2]`.
    pub field: String,
    /// The syscall name.
    pub name: String,
    /// When the rule was skipped because an earlier unconditional rule for the same syscall
    /// takes precedence: where that rule is.
    pub shadowed_by: Option<String>,
}

impl fmt::Display for SkippedSyscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shadowed_by {
            Some(earlier) => write!(
                f,
                "{}: syscall {:?} already has an unconditional rule with another action at {earlier}; that first rule applies and this one was skipped",
                self.field, self.name
            ),
            None => write!(
                f,
                "{}: syscall {:?} is not known to libseccomp on this architecture; its rule was skipped",
                self.field, self.name
            ),
        }
    }
}

/// A compiled, validated seccomp filter, ready to be installed with [`Filter::load`].
///
/// It holds the finished BPF program and the `seccomp(2)` flags, so it is `Send`,
/// `Sync` and cheap to clone, and loading it needs no allocation.
///
/// libseccomp's `NO_NEW_PRIVS` attribute is switched off: neither compiling nor loading
/// sets `no_new_privs`. The runtime sets it itself when `process.noNewPrivileges` asks
/// for it; otherwise the process must still hold `CAP_SYS_ADMIN` when it calls
/// [`Filter::load`], or the kernel refuses the filter with `EACCES`.
#[derive(Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
    notify: bool,
    skipped: Vec<SkippedSyscall>,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("notify", &self.notify)
            .field("skipped", &self.skipped)
            .field("listener_path", &self.listener_path)
            .field("listener_metadata", &self.listener_metadata)
            .finish()
    }
}

impl Filter {
    /// Validates `linux.seccomp` and compiles it to a BPF program.
    ///
    /// Call it before forking: every problem is reported here, with the JSON path of
    /// the field at fault (`linux.seccomp.syscalls[3].errnoRet: ...`).
    ///
    /// Semantics, following the OCI runtime spec and runc where the spec is silent:
    /// - `defaultAction`/`action`: `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`.
    ///   `SCMP_ACT_NOTIFY` cannot be the default action, nor be used for `write` or
    ///   `sendmsg` (the runtime needs them to hand out the listener fd).
    /// - `defaultErrnoRet`/`errnoRet`: only with `SCMP_ACT_ERRNO` (errno, 0 to 4095) or
    ///   `SCMP_ACT_TRACE` (tracer message, 0 to 65535); EPERM when absent.
    /// - `architectures`: added to the filter; the native architecture is always kept.
    /// - `flags`: passed to `seccomp(2)`; each is checked against the running kernel.
    ///   `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` only changes how notifications wait,
    ///   so it is not passed when the filter has no notify rule (the kernel would
    ///   reject it).
    /// - `syscalls[].names`: names libseccomp does not know for this architecture are
    ///   skipped and listed by [`Filter::skipped_syscalls`].
    /// - A rule whose action equals the default action is redundant and skipped.
    /// - Two unconditional rules for one syscall with different actions are refused.
    ///   When a syscall has an unconditional rule and conditional rules with other
    ///   actions, libseccomp gives the unconditional rule precedence (as under runc).
    /// - `args`: AND-ed into one rule, unless two of them compare the same argument
    ///   index; then, as in runc, each becomes a rule of its own (OR).
    ///   `SCMP_CMP_MASKED_EQ` matches `(arg & value) == valueTwo`; `valueTwo` on any
    ///   other operator must be absent or 0.
    pub fn from_spec(spec: &LinuxSeccomp) -> Result<Filter, Error> {
        let compiled = compile(spec)?;
        let program = export_program(&compiled.ctx)?;
        if program.len() > BPF_MAXINSNS {
            return Err(Error::invalid(
                format!("{PREFIX}.syscalls"),
                format!(
                    "the profile compiles to {} BPF instructions, more than the kernel's limit of \
                     {BPF_MAXINSNS}; remove rules or merge syscalls with the same action",
                    program.len()
                ),
            ));
        }
        let flags = kernel_flags(spec, compiled.notify)?;
        Ok(Filter {
            program,
            flags,
            notify: compiled.notify,
            skipped: compiled.skipped,
            listener_path: spec.listener_path().clone(),
            listener_metadata: spec.listener_metadata().clone(),
        })
    }

    /// True when the filter has at least one `SCMP_ACT_NOTIFY` rule, so [`Filter::load`]
    /// returns a listener fd that must be sent to `listenerPath` with [`send_listener`].
    ///
    /// [`send_listener`]: crate::send_listener
    pub fn needs_notify(&self) -> bool {
        self.notify
    }

    /// Syscall names that were skipped because libseccomp does not know them here.
    pub fn skipped_syscalls(&self) -> &[SkippedSyscall] {
        &self.skipped
    }

    /// The number of BPF instructions in the compiled program.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// The flags passed to `seccomp(SECCOMP_SET_MODE_FILTER, flags, ..)` by [`Filter::load`].
    // c_ulong is u32 on 32-bit targets, where this cast is not a no-op.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    pub fn seccomp_flags(&self) -> u64 {
        self.flags as u64
    }

    /// `linux.seccomp.listenerPath`: where the listener fd goes when [`Filter::needs_notify`].
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path.as_deref()
    }

    /// `linux.seccomp.listenerMetadata`: opaque data for the seccomp agent.
    pub fn listener_metadata(&self) -> Option<&str> {
        self.listener_metadata.as_deref()
    }

    /// Installs the filter on the calling thread.
    ///
    /// Meant for the container's init right before `execve`, in a single-threaded
    /// process (with `SECCOMP_FILTER_FLAG_TSYNC` every thread gets it). It makes one
    /// `seccomp(2)` call and allocates nothing, so it is safe in a child after `fork`.
    ///
    /// It does not set `no_new_privs`: the caller must already have set it, or hold
    /// `CAP_SYS_ADMIN` (the kernel answers `EACCES` otherwise).
    ///
    /// Returns the notify listener fd (close-on-exec) when [`Filter::needs_notify`].
    /// Between this call and `execve` the process must not make syscalls the filter
    /// denies, and it should hand the fd out with `sendmsg` (never routed to the agent).
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        let prog = libc::sock_fprog {
            // from_spec checked that the program has at most BPF_MAXINSNS instructions.
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` describes `self.program`, which outlives the call; the kernel
        // only reads it (it copies the program before returning).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if ret < 0 {
            return Err(Error::Load {
                errno: last_errno(),
            });
        }
        if self.notify {
            // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful call returns a
            // new fd (opened O_CLOEXEC by the kernel) that nothing else owns.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
        } else {
            Ok(None)
        }
    }
}

/// Compiles `linux.seccomp` and renders it as libseccomp's human-readable pseudo filter
/// code (PFC). Useful for `--debug` output and for tests; nothing is loaded.
pub fn export_pfc(spec: &LinuxSeccomp) -> Result<String, Error> {
    let compiled = compile(spec)?;
    let bytes = export(&compiled.ctx, "pseudo filter code", |ctx, fd| {
        ctx.export_pfc(fd)
    })?;
    String::from_utf8(bytes).map_err(|e| {
        Error::io(
            "libseccomp's pseudo filter code export",
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EINVAL)
}

struct Compiled {
    ctx: ScmpFilterContext,
    notify: bool,
    skipped: Vec<SkippedSyscall>,
}

fn libseccomp_err(
    field: impl Into<String>,
    what: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> Error {
    let field = field.into();
    let what = what.into();
    move |source| Error::Libseccomp {
        field,
        what,
        source,
    }
}

fn compile(spec: &LinuxSeccomp) -> Result<Compiled, Error> {
    let default_field = format!("{PREFIX}.defaultAction");
    let default = action(
        spec.default_action(),
        spec.default_errno_ret(),
        &default_field,
        &format!("{PREFIX}.defaultErrnoRet"),
    )?;
    if default == ScmpAction::Notify {
        return Err(Error::invalid(
            default_field,
            "SCMP_ACT_NOTIFY cannot be the default action: the runtime itself could not \
             make the calls that hand the listener fd to the seccomp agent",
        ));
    }

    let mut ctx = ScmpFilterContext::new(default).map_err(libseccomp_err(
        &default_field,
        format!(
            "create a filter with default action {} (is it supported by this kernel?)",
            spec.default_action()
        ),
    ))?;
    ctx.set_ctl_nnp(false).map_err(libseccomp_err(
        PREFIX,
        "switch off its no_new_privs attribute",
    ))?;

    for (i, arch) in spec.architectures().iter().flatten().enumerate() {
        ctx.add_arch(scmp_arch(*arch)).map_err(libseccomp_err(
            format!("{PREFIX}.architectures[{i}]"),
            format!("add architecture {arch}"),
        ))?;
    }

    let syscalls = spec.syscalls().as_deref().unwrap_or_default();
    check_listener(spec, syscalls)?;

    let mut notify = false;
    let mut skipped = Vec::new();
    let mut rules = 0usize;
    // Unconditional rules added so far: syscall number -> (action, field of its name).
    // libseccomp keeps the first of two unconditional rules with different actions and
    // silently drops the second, so such a conflict is refused here.
    let mut unconditional: HashMap<i32, (ScmpAction, String)> = HashMap::new();
    for (i, call) in syscalls.iter().enumerate() {
        let field = format!("{PREFIX}.syscalls[{i}]");
        if call.names().is_empty() {
            return Err(Error::invalid(
                format!("{field}.names"),
                "must list at least one syscall name",
            ));
        }
        if let Some(j) = call.names().iter().position(|n| n.is_empty()) {
            return Err(Error::invalid(
                format!("{field}.names[{j}]"),
                "empty syscall name",
            ));
        }
        let act = action(
            call.action(),
            call.errno_ret(),
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        let rule_sets = conditions(&field, call.args().as_deref().unwrap_or_default())?;
        if act == ScmpAction::Notify {
            if let Some(j) = call
                .names()
                .iter()
                .position(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
            {
                return Err(Error::invalid(
                    format!("{field}.names[{j}]"),
                    format!(
                        "SCMP_ACT_NOTIFY cannot be used for {:?}: the runtime needs it to hand \
                         the listener fd to the seccomp agent after the filter is loaded",
                        call.names()[j]
                    ),
                ));
            }
        }
        if act == default {
            // libseccomp refuses rules that repeat the default action; they change nothing.
            continue;
        }
        for (j, name) in call.names().iter().enumerate() {
            let name_field = format!("{field}.names[{j}]");
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                skipped.push(SkippedSyscall {
                    field: name_field,
                    name: name.clone(),
                    shadowed_by: None,
                });
                continue;
            };
            if rule_sets.iter().any(|set| set.is_empty()) {
                match unconditional.entry(syscall.as_raw_syscall()) {
                    Entry::Occupied(earlier) if earlier.get().0 != act => {
                        // Engines' profiles list some syscalls twice (an allow-list entry and
                        // a capability-dependent one). libseccomp, and so runc, keep the first
                        // unconditional rule; so do we, and report the shadowed one.
                        skipped.push(SkippedSyscall {
                            field: name_field,
                            name: name.clone(),
                            shadowed_by: Some(earlier.get().1.clone()),
                        });
                        continue;
                    }
                    Entry::Occupied(_) => {}
                    Entry::Vacant(slot) => {
                        slot.insert((act, name_field.clone()));
                    }
                }
            }
            for set in &rule_sets {
                ctx.add_rule_conditional(act, syscall, set)
                    .map_err(libseccomp_err(
                        &name_field,
                        format!(
                            "add a {} rule for syscall {name:?} (a syscall listed twice with \
                             different actions and the same conditions conflicts)",
                            call.action()
                        ),
                    ))?;
                rules += 1;
            }
            if act == ScmpAction::Notify {
                notify = true;
            }
        }
    }

    if rules > OPTIMIZE_ABOVE_RULES {
        ctx.set_ctl_optimize(2).map_err(libseccomp_err(
            PREFIX,
            "enable binary-tree optimisation for a long profile",
        ))?;
    }

    Ok(Compiled {
        ctx,
        notify,
        skipped,
    })
}

/// Maps an OCI action and its optional errno/message to libseccomp's action.
fn action(
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<ScmpAction, Error> {
    use LinuxSeccompAction as A;
    let plain = match act {
        A::ScmpActErrno => {
            let errno = errno_ret.unwrap_or(libc::EPERM as u32);
            if errno > MAX_ERRNO {
                return Err(Error::invalid(
                    errno_field,
                    format!("errno {errno} is out of range: a filter can return 0 to {MAX_ERRNO}"),
                ));
            }
            return Ok(ScmpAction::Errno(errno as i32));
        }
        A::ScmpActTrace => {
            let msg = errno_ret.unwrap_or(libc::EPERM as u32);
            let msg = u16::try_from(msg).map_err(|_| {
                Error::invalid(
                    errno_field,
                    format!(
                        "{msg} is out of range: the message SCMP_ACT_TRACE passes to the tracer \
                         is 16 bits (0 to 65535)"
                    ),
                )
            })?;
            return Ok(ScmpAction::Trace(msg));
        }
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActNotify => ScmpAction::Notify,
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActAllow => ScmpAction::Allow,
    };
    if let Some(errno) = errno_ret {
        return Err(Error::invalid(
            errno_field,
            format!(
                "{errno} given, but only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return code, \
                 not {act} (see {field}); remove it"
            ),
        ));
    }
    Ok(plain)
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// Turns `args` into the rules to add: one rule with every comparison, or (when an
/// argument index is compared more than once) one rule per comparison, as runc does.
fn conditions(field: &str, args: &[LinuxSeccompArg]) -> Result<Vec<Vec<ScmpArgCompare>>, Error> {
    let mut counts = [0usize; MAX_ARGS];
    let mut all = Vec::with_capacity(args.len());
    for (k, arg) in args.iter().enumerate() {
        let arg_field = format!("{field}.args[{k}]");
        let index = arg.index();
        if index >= MAX_ARGS {
            return Err(Error::invalid(
                format!("{arg_field}.index"),
                format!(
                    "argument index {index} is out of range: syscalls have arguments 0 to {}",
                    MAX_ARGS - 1
                ),
            ));
        }
        counts[index] += 1;
        use LinuxSeccompOperator as O;
        let op = match arg.op() {
            O::ScmpCmpNe => ScmpCompareOp::NotEqual,
            O::ScmpCmpLt => ScmpCompareOp::Less,
            O::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
            O::ScmpCmpEq => ScmpCompareOp::Equal,
            O::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
            O::ScmpCmpGt => ScmpCompareOp::Greater,
            O::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(arg.value()),
        };
        let datum = if let ScmpCompareOp::MaskedEqual(_) = op {
            arg.value_two().unwrap_or(0)
        } else {
            if let Some(two) = arg.value_two().filter(|v| *v != 0) {
                return Err(Error::invalid(
                    format!("{arg_field}.valueTwo"),
                    format!(
                        "{two} given, but valueTwo is only used by SCMP_CMP_MASKED_EQ \
                         ((arg & value) == valueTwo), not {}; remove it or set it to 0",
                        arg.op()
                    ),
                ));
            }
            arg.value()
        };
        all.push(ScmpArgCompare::new(index as u32, op, datum));
    }
    if counts.iter().any(|c| *c > 1) {
        Ok(all.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![all])
    }
}

fn check_listener(
    spec: &LinuxSeccomp,
    syscalls: &[oci_spec::runtime::LinuxSyscall],
) -> Result<(), Error> {
    let field = format!("{PREFIX}.listenerPath");
    let uses_notify = syscalls
        .iter()
        .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify);
    match spec.listener_path() {
        None if uses_notify => Err(Error::invalid(
            field,
            "SCMP_ACT_NOTIFY is used, so listenerPath must name the unix socket of the \
             seccomp agent that receives the listener fd",
        )),
        None => Ok(()),
        Some(path) => {
            let len = path.as_os_str().len();
            if len == 0 {
                Err(Error::invalid(
                    field,
                    "empty path; name the seccomp agent's unix socket or remove the field",
                ))
            } else if len >= SUN_PATH_MAX {
                Err(Error::invalid(
                    field,
                    format!(
                        "{} is {len} bytes long; a unix socket path must be shorter than \
                         {SUN_PATH_MAX} bytes",
                        path.display()
                    ),
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// The `seccomp(2)` flags for this filter, each checked against the running kernel.
fn kernel_flags(spec: &LinuxSeccomp, notify: bool) -> Result<libc::c_ulong, Error> {
    let listener = if notify {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    let mut flags = listener;
    for (i, flag) in spec.flags().iter().flatten().enumerate() {
        let field = format!("{PREFIX}.flags[{i}]");
        let (bit, needs) = match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                // With a listener the kernel wants TSYNC_ESRCH next to TSYNC.
                let esrch = if notify {
                    libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
                } else {
                    0
                };
                (libc::SECCOMP_FILTER_FLAG_TSYNC | esrch, "Linux 3.17")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                (libc::SECCOMP_FILTER_FLAG_LOG, "Linux 4.14")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                (libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW, "Linux 4.17")
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                if !notify {
                    // Only changes how notifications wait; meaningless (and refused by
                    // the kernel) without a listener.
                    continue;
                }
                (libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, "Linux 5.19")
            }
        };
        match probe_flags(bit | listener) {
            Ok(()) => {}
            Err(libc::EINVAL) => {
                return Err(Error::invalid(
                    field,
                    format!(
                    "{flag} is not supported by the running kernel (it needs {needs}); remove it"
                ),
                ))
            }
            Err(errno) => {
                return Err(Error::io(
                    format!("{field}: checking kernel support for {flag}"),
                    std::io::Error::from_raw_os_error(errno),
                ))
            }
        }
        flags |= bit;
    }
    match probe_flags(flags) {
        Ok(()) => Ok(flags),
        Err(errno) => Err(Error::io(
            format!(
                "{PREFIX}: the kernel refuses the seccomp flags {flags:#x} needed by this profile"
            ),
            std::io::Error::from_raw_os_error(errno),
        )),
    }
}

/// Asks the kernel whether it accepts `flags`, without installing anything: with a
/// NULL program it checks the flags first (EINVAL) and then fails to read the program
/// (EFAULT). This is how libseccomp probes too.
fn probe_flags(flags: libc::c_ulong) -> Result<(), i32> {
    // SAFETY: a NULL program pointer is never dereferenced by userspace; the kernel
    // validates the flags, then fails the copy from NULL with EFAULT. Nothing is installed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    if ret == 0 {
        // Cannot happen with a NULL program; refuse rather than pretend.
        return Err(libc::EINVAL);
    }
    match last_errno() {
        libc::EFAULT => Ok(()),
        errno => Err(errno),
    }
}

fn export(
    ctx: &ScmpFilterContext,
    what: &str,
    f: impl FnOnce(&ScmpFilterContext, BorrowedFd<'_>) -> Result<(), libseccomp::error::SeccompError>,
) -> Result<Vec<u8>, Error> {
    let fd = rustix::fs::memfd_create("cella-seccomp-export", rustix::fs::MemfdFlags::CLOEXEC)
        .map_err(|e| Error::io(format!("creating a memfd to export the {what}"), e))?;
    f(ctx, fd.as_fd()).map_err(libseccomp_err(PREFIX, format!("export the {what}")))?;
    let mut file = File::from(fd);
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| Error::io(format!("reading back the exported {what}"), e))?;
    Ok(bytes)
}

fn export_program(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, Error> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    let bytes = export(ctx, "BPF program", |ctx, fd| ctx.export_bpf(fd))?;
    if bytes.is_empty() || bytes.len() % INSN != 0 {
        return Err(Error::io(
            "libseccomp's BPF export",
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} bytes is not a whole number of {INSN}-byte instructions",
                    bytes.len()
                ),
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}
