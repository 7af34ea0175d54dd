//! Parsing, validation and compilation. Nothing here loads a filter, so no root is needed.

// libc's seccomp flag constants are c_ulong, which is u64 only on 64-bit targets.
#![allow(clippy::unnecessary_cast)]

use cella_seccomp::{default_profile, export_pfc, parse_profile, Filter};
use oci_spec::runtime::LinuxSeccomp;

fn profile(json: &str) -> LinuxSeccomp {
    parse_profile(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn parse_err(json: &str) -> String {
    match parse_profile(json.as_bytes()) {
        Ok(p) => panic!("{json} parsed: {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn compile_err(json: &str) -> String {
    match Filter::from_spec(&profile(json)) {
        Ok(f) => panic!("{json} compiled: {f:?}"),
        Err(e) => e.to_string(),
    }
}

fn pfc(json: &str) -> String {
    export_pfc(&profile(json)).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// The PFC block of the native architecture (libseccomp prints one block per arch).
fn native_block(pfc: &str) -> &str {
    let start = pfc.find("# filter for arch").expect("an arch block");
    let rest = &pfc[start + 1..];
    match rest.find("# filter for arch") {
        Some(end) => &pfc[start..start + 1 + end],
        None => &pfc[start..],
    }
}

fn rule(names: &str, action: &str, extra: &str) -> String {
    rule_top(names, action, extra, "")
}

/// A profile with default action ALLOW and one rule; `top` adds top-level properties.
fn rule_top(names: &str, action: &str, extra: &str, top: &str) -> String {
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW"{top},"syscalls":[{{"names":[{names}],"action":"{action}"{extra}}}]}}"#
    )
}

#[test]
fn parse_errors_name_the_field() {
    let four = r#"{"names":["read"],"action":"SCMP_ACT_ALLOW"},"#.repeat(3);
    let e = parse_err(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{four}{{"names":["x"],"action":"SCMP_ACT_FOO"}}]}}"#
    ));
    assert!(
        e.starts_with(r#"linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"; expected one of SCMP_ACT_KILL,"#),
        "{e}"
    );

    let e = parse_err(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#);
    assert!(
        e.starts_with(r#"linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE""#),
        "{e}"
    );

    let e = parse_err(r#"{"syscalls":[]}"#);
    assert!(
        e.starts_with("linux.seccomp.defaultAction: required"),
        "{e}"
    );

    let e = parse_err(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_Z80"]}"#,
    );
    assert!(
        e.starts_with(r#"linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80""#),
        "{e}"
    );

    let e =
        parse_err(r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_BOGUS"]}"#);
    assert!(
        e.starts_with(r#"linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_BOGUS""#),
        "{e}"
    );

    let e = parse_err(&rule(
        r#""read""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":1,"op":"SCMP_CMP_ALMOST"}]"#,
    ));
    assert!(
        e.starts_with(
            r#"linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_ALMOST""#
        ),
        "{e}"
    );

    let e = parse_err(&rule(
        r#""read""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":0,"op":"SCMP_CMP_EQ"}]"#,
    ));
    assert_eq!(e, "linux.seccomp.syscalls[0].args[0].value: required");

    let e = parse_err(&rule(
        r#""read""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":-1,"value":0,"op":"SCMP_CMP_EQ"}]"#,
    ));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].args[0].index: expected an unsigned integer"),
        "{e}"
    );

    let e = parse_err(&rule(r#""read", 7"#, "SCMP_ACT_ERRNO", ""));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[0].names[1]: expected a string, found a number"
    );

    let e =
        parse_err(r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW"}]}"#);
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].names: required"),
        "{e}"
    );

    let e = parse_err(&rule(
        r#""read""#,
        "SCMP_ACT_ERRNO",
        r#","errnoRet":"EPERM""#,
    ));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].errnoRet: expected an unsigned integer"),
        "{e}"
    );

    let e = parse_err(r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[]}"#);
    assert!(
        e.starts_with("linux.seccomp.archMap: this is Docker's seccomp profile format"),
        "{e}"
    );

    let e = parse_err(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#,
    );
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].includes: this is Docker's"),
        "{e}"
    );

    let e = parse_err("[1]");
    assert_eq!(e, "linux.seccomp: expected a JSON object, found an array");
    let e = parse_err("{");
    assert!(e.starts_with("linux.seccomp: not valid JSON"), "{e}");

    // Unknown properties are ignored, as the OCI spec requires.
    let p = profile(r#"{"defaultAction":"SCMP_ACT_LOG","comment":"hi","syscalls":null}"#);
    assert_eq!(
        p.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActLog
    );
}

#[test]
fn validation_errors_name_the_field() {
    let e = compile_err(&rule(r#""read""#, "SCMP_ACT_KILL", r#","errnoRet":1"#));
    assert!(e.starts_with("linux.seccomp.syscalls[0].errnoRet: 1 given, but only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a return code, not SCMP_ACT_KILL"), "{e}");

    let e = compile_err(r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":2}"#);
    assert!(
        e.starts_with("linux.seccomp.defaultErrnoRet: 2 given"),
        "{e}"
    );

    let e = compile_err(&rule(r#""read""#, "SCMP_ACT_ERRNO", r#","errnoRet":4096"#));
    assert_eq!(e, "linux.seccomp.syscalls[0].errnoRet: errno 4096 is out of range: a filter can return 0 to 4095");

    let e = compile_err(&rule(r#""read""#, "SCMP_ACT_TRACE", r#","errnoRet":65536"#));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].errnoRet: 65536 is out of range"),
        "{e}"
    );

    let e = compile_err(&rule(
        r#""read""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]"#,
    ));
    assert_eq!(e, "linux.seccomp.syscalls[0].args[0].index: argument index 6 is out of range: syscalls have arguments 0 to 5");

    let e = compile_err(&rule(
        r#""read""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":0,"value":3,"valueTwo":4,"op":"SCMP_CMP_LT"}]"#,
    ));
    assert!(e.starts_with("linux.seccomp.syscalls[0].args[0].valueTwo: 4 given, but valueTwo is only used by SCMP_CMP_MASKED_EQ"), "{e}");
    // valueTwo 0 is what generated profiles carry everywhere: accepted.
    Filter::from_spec(&profile(&rule(
        r#""read""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":0,"value":3,"valueTwo":0,"op":"SCMP_CMP_LT"}]"#,
    )))
    .unwrap();

    let e = compile_err(&rule("", "SCMP_ACT_ERRNO", ""));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[0].names: must list at least one syscall name"
    );
    let e = compile_err(&rule(r#""read","""#, "SCMP_ACT_ERRNO", ""));
    assert_eq!(e, "linux.seccomp.syscalls[0].names[1]: empty syscall name");

    let e = compile_err(r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/agent.sock"}"#);
    assert!(
        e.starts_with("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
        "{e}"
    );

    let e = compile_err(&rule_top(
        r#""getpid","write""#,
        "SCMP_ACT_NOTIFY",
        "",
        r#","listenerPath":"/x""#,
    ));
    assert!(
        e.starts_with(
            r#"linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for "write""#
        ),
        "{e}"
    );

    let e = compile_err(&rule(r#""getpid""#, "SCMP_ACT_NOTIFY", ""));
    assert!(
        e.starts_with(
            "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY is used, so listenerPath must name"
        ),
        "{e}"
    );

    let long = "/x".repeat(60);
    let e = compile_err(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"{long}"}}"#
    ));
    assert!(
        e.starts_with(&format!(
            "linux.seccomp.listenerPath: {long} is 120 bytes long"
        )),
        "{e}"
    );

    // As with libseccomp (and so runc), the first unconditional rule for a syscall wins; the
    // shadowed one is reported.
    let f = Filter::from_spec(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getuid"],"action":"SCMP_ACT_ERRNO"},
            {"names":["getgid","getuid"],"action":"SCMP_ACT_TRAP"}]}"#,
    ))
    .unwrap();
    let skipped: Vec<String> = f.skipped_syscalls().iter().map(|s| s.to_string()).collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].starts_with(r#"linux.seccomp.syscalls[1].names[1]: syscall "getuid" already has an unconditional rule with another action at linux.seccomp.syscalls[0].names[0]"#), "{skipped:?}");
    // The same unconditional rule twice is fine.
    Filter::from_spec(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getuid"],"action":"SCMP_ACT_ERRNO"},
            {"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    ))
    .unwrap();
}

#[test]
fn unknown_syscall_names_are_skipped_and_reported() {
    let p = profile(&rule(
        r#""getpid","no_such_syscall_x","getppid""#,
        "SCMP_ACT_ERRNO",
        "",
    ));
    let f = Filter::from_spec(&p).unwrap();
    let skipped = f.skipped_syscalls();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].name, "no_such_syscall_x");
    assert_eq!(skipped[0].field, "linux.seccomp.syscalls[0].names[1]");
    assert!(skipped[0].to_string().contains("its rule was skipped"));
    let text = pfc(&rule(
        r#""getpid","no_such_syscall_x","getppid""#,
        "SCMP_ACT_ERRNO",
        "",
    ));
    assert!(
        text.contains(r#"syscall "getpid""#) && text.contains(r#"syscall "getppid""#),
        "{text}"
    );
}

#[test]
fn every_action_is_compiled() {
    let cases = [
        ("SCMP_ACT_KILL", "", "action KILL;"),
        ("SCMP_ACT_KILL_THREAD", "", "action KILL;"),
        ("SCMP_ACT_KILL_PROCESS", "", "action KILL_PROCESS;"),
        ("SCMP_ACT_TRAP", "", "action TRAP;"),
        ("SCMP_ACT_ERRNO", "", "action ERRNO(1);"),
        ("SCMP_ACT_ERRNO", r#","errnoRet":38"#, "action ERRNO(38);"),
        ("SCMP_ACT_ERRNO", r#","errnoRet":0"#, "action ERRNO(0);"),
        ("SCMP_ACT_TRACE", "", "action TRACE(1);"),
        (
            "SCMP_ACT_TRACE",
            r#","errnoRet":4242"#,
            "action TRACE(4242);",
        ),
        ("SCMP_ACT_LOG", "", "action LOG;"),
        // libseccomp 2.5 prints NOTIFY as its raw value.
        ("SCMP_ACT_NOTIFY", "", "action 0x7fc00000;"),
    ];
    for (action, extra, expected) in cases {
        let json = rule_top(
            r#""getppid""#,
            action,
            extra,
            r#","listenerPath":"/run/a.sock""#,
        );
        let text = pfc(&json);
        let block = native_block(&text);
        assert!(
            block.contains(r#"syscall "getppid""#) && block.contains(expected),
            "{action}: {text}"
        );
        let f = Filter::from_spec(&profile(&json)).unwrap();
        assert_eq!(f.needs_notify(), action == "SCMP_ACT_NOTIFY", "{action}");
    }
    // ALLOW rules under a denying default.
    let text = pfc(
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let block = native_block(&text);
    assert!(
        block.contains("action ALLOW;") && block.contains("action KILL_PROCESS;"),
        "{text}"
    );
    let text = pfc(r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38}"#);
    assert!(native_block(&text).contains("action ERRNO(38);"), "{text}");
}

#[test]
fn rules_repeating_the_default_action_are_skipped() {
    let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
        {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":2}]}"#;
    let text = pfc(json);
    assert!(!text.contains(r#"syscall "getppid""#), "{text}");
    assert!(
        text.contains(r#"syscall "getpid""#) && text.contains("ERRNO(2)"),
        "{text}"
    );
    let f = Filter::from_spec(&profile(json)).unwrap();
    assert!(f.skipped_syscalls().is_empty());
}

#[test]
fn every_operator_is_compiled() {
    // libseccomp prints NE, LT and LE as the inverse test with the action on the else
    // branch.
    let cases = [
        ("SCMP_CMP_NE", "", "if ($a1.lo32 == 4096)", true),
        ("SCMP_CMP_LT", "", "if ($a1.lo32 >= 4096)", true),
        ("SCMP_CMP_LE", "", "if ($a1.lo32 > 4096)", true),
        ("SCMP_CMP_EQ", "", "if ($a1.lo32 == 4096)", false),
        ("SCMP_CMP_GE", "", "if ($a1.lo32 >= 4096)", false),
        ("SCMP_CMP_GT", "", "if ($a1.lo32 > 4096)", false),
        // value is the mask, valueTwo the expected result.
        (
            "SCMP_CMP_MASKED_EQ",
            r#","valueTwo":4096"#,
            "if ($a1.lo32 & 0x0000f000 == 4096)",
            false,
        ),
    ];
    let mut sizes = Vec::new();
    for (op, extra, test, inverted) in cases {
        let value = if op == "SCMP_CMP_MASKED_EQ" {
            0xf000
        } else {
            4096
        };
        let json = rule(
            r#""getppid""#,
            "SCMP_ACT_ERRNO",
            &format!(r#","args":[{{"index":1,"value":{value},"op":"{op}"{extra}}}]"#),
        );
        let text = pfc(&json);
        let block = native_block(&text);
        let at = block
            .find(test)
            .unwrap_or_else(|| panic!("{op}: no {test:?} in\n{text}"));
        let then = block[at..].lines().nth(1).unwrap().trim();
        let expected = if inverted { "else" } else { "action ERRNO(1);" };
        assert_eq!(then, expected, "{op}:\n{text}");
        sizes.push(Filter::from_spec(&profile(&json)).unwrap().instructions());
    }
    // A conditional rule costs more instructions than no rule at all.
    let empty = Filter::from_spec(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#)).unwrap();
    assert!(
        sizes.iter().all(|s| *s > empty.instructions()),
        "{sizes:?} vs {}",
        empty.instructions()
    );
}

#[test]
fn args_on_distinct_indexes_are_anded_and_repeated_indexes_ored() {
    // Distinct indexes: one rule, both comparisons nested (AND).
    let text = pfc(&rule(
        r#""getppid""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"},{"index":2,"value":9,"op":"SCMP_CMP_EQ"}]"#,
    ));
    let block = native_block(&text);
    let a0 = block.find("if ($a0.lo32 == 7)").expect(&text);
    let a2 = block.find("if ($a2.lo32 == 9)").expect(&text);
    assert!(a0 < a2, "{text}");
    assert_eq!(block.matches("action ERRNO(1);").count(), 1, "{text}");

    // The same index twice: one rule per comparison (OR), like runc.
    let text = pfc(&rule(
        r#""getppid""#,
        "SCMP_ACT_ERRNO",
        r#","args":[{"index":0,"value":7,"op":"SCMP_CMP_EQ"},{"index":0,"value":9,"op":"SCMP_CMP_EQ"}]"#,
    ));
    let block = native_block(&text);
    assert!(
        block.contains("if ($a0.lo32 == 7)") && block.contains("if ($a0.lo32 == 9)"),
        "{text}"
    );
    assert_eq!(block.matches("action ERRNO(1);").count(), 2, "{text}");
}

#[test]
fn architectures_are_added() {
    let text = pfc(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],
        "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    for arch in [
        "# filter for arch x86 ",
        "# filter for arch x32 ",
        "# filter for arch aarch64 ",
    ] {
        assert!(text.contains(arch), "{arch} missing in\n{text}");
    }
    // The native architecture is always kept.
    let native = if cfg!(target_arch = "x86_64") {
        "x86_64"
    } else {
        "aarch64"
    };
    assert!(
        text.contains(&format!("# filter for arch {native} ")),
        "{text}"
    );
    let more = Filter::from_spec(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_ARM"],
        "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}"#,
    ))
    .unwrap();
    let one = Filter::from_spec(&profile(&rule(r#""getppid""#, "SCMP_ACT_ERRNO", ""))).unwrap();
    assert!(more.instructions() > one.instructions());
}

#[test]
fn flags_become_seccomp_flags() {
    let f = Filter::from_spec(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#,
    ))
    .unwrap();
    let expected = libc::SECCOMP_FILTER_FLAG_LOG
        | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        | libc::SECCOMP_FILTER_FLAG_TSYNC;
    assert_eq!(f.seccomp_flags(), expected as u64);

    // WAIT_KILLABLE_RECV only matters with a listener: without one it is not passed.
    let f = Filter::from_spec(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    ))
    .unwrap();
    assert_eq!(f.seccomp_flags(), 0);

    // With a listener: NEW_LISTENER, and TSYNC gets TSYNC_ESRCH as the kernel requires.
    let f = Filter::from_spec(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock","listenerMetadata":"m",
            "flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV","SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    let expected = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        | libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    assert_eq!(f.seccomp_flags(), expected as u64);
    assert!(f.needs_notify());
    assert_eq!(
        f.listener_path(),
        Some(std::path::Path::new("/run/agent.sock"))
    );
    assert_eq!(f.listener_metadata(), Some("m"));
}

#[test]
fn notify_rules_whose_names_are_all_unknown_need_no_listener_fd() {
    let f = Filter::from_spec(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
            "syscalls":[{"names":["no_such_syscall_y"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(!f.needs_notify());
    assert_eq!(f.seccomp_flags(), 0);
}

#[test]
fn default_profile_compiles_and_denies_dangerous_syscalls() {
    let p = default_profile();
    let f = Filter::from_spec(&p).unwrap();
    assert!(f.instructions() <= 4096);
    assert!(!f.needs_notify());
    // The basics every program needs are known to libseccomp everywhere.
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "mmap",
        "exit_group",
        "clone",
        "wait4",
    ] {
        assert!(
            !f.skipped_syscalls().iter().any(|s| s.name == name),
            "{name} skipped"
        );
    }
    let text = export_pfc(&p).unwrap();
    let block = native_block(&text);
    for denied in [
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "open_by_handle_at",
        "init_module",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "ptrace",
        "mount",
        "umount2",
        "setns",
    ] {
        assert!(
            !block.contains(&format!("syscall \"{denied}\"")),
            "{denied} has a rule:\n{block}"
        );
    }
    assert!(block.contains("syscall \"read\""));
    assert!(
        block.contains("# default action\n  action ERRNO(1);"),
        "{block}"
    );
    // clone is conditional on its flags, clone3 fails with ENOSYS.
    let clone = block.find("syscall \"clone\"").expect("clone rule");
    let next = |at: usize| block[at..].lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(next(clone).contains("& 0x7e020000 == 0"), "{}", next(clone));
    let clone3 = block.find("syscall \"clone3\"").expect("clone3 rule");
    assert!(
        next(clone3).contains("action ERRNO(38);"),
        "{}",
        next(clone3)
    );
    // The profile round-trips through JSON and parse_profile.
    let json = serde_json::to_vec(&p).unwrap();
    assert_eq!(parse_profile(&json).unwrap(), p);
}
