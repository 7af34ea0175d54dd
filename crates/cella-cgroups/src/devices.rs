//! `linux.resources.devices`: rule validation, the v1 `devices.allow` /
//! `devices.deny` lines, and the cgroup v2 eBPF device program.
//!
//! Semantics (both versions): the rules are read in order and, for each
//! access bit asked for (mknod, read, write), the last rule that matches
//! the device and holds that bit decides. A device no rule matches is left
//! to the parent cgroup (allowed here). Specs normally start with a
//! "deny all" rule, so anything not allowed later is denied.

use std::fmt::Write as _;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::Error;

/// Access bits, as the kernel's `BPF_DEVCG_ACC_*`.
pub(crate) const ACC_MKNOD: u32 = 1;
pub(crate) const ACC_READ: u32 = 2;
pub(crate) const ACC_WRITE: u32 = 4;
/// Device types, as the kernel's `BPF_DEVCG_DEV_*`.
pub(crate) const DEV_BLOCK: u32 = 1;
pub(crate) const DEV_CHAR: u32 = 2;

/// A validated device rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DevRule {
    pub allow: bool,
    /// `None` for "a" (all devices; major/minor ignored, as on v1).
    pub typ: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u32,
}

fn field(i: usize) -> String {
    format!("linux.resources.devices[{i}]")
}

fn number(i: usize, what: &str, v: Option<i64>) -> Result<Option<u32>, Error> {
    match v {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None), // -1 is the usual "any" marker
        Some(n) => u32::try_from(n).map(Some).map_err(|_| Error::InvalidValue {
            field: format!("{}.{what}", field(i)),
            value: n.to_string(),
            reason: "device numbers must fit in 32 bits".into(),
        }),
    }
}

/// Validate the spec's rules.
pub(crate) fn parse_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DevRule>, Error> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            LinuxDeviceType::P => {
                return Err(Error::InvalidValue {
                    field: format!("{}.type", field(i)),
                    value: "p".into(),
                    reason: "the device cgroup only controls block (b) and character (c/u) \
                             devices; FIFOs need no rule"
                        .into(),
                })
            }
        };
        let access_str = r.access().as_deref().unwrap_or("");
        let access_str = if access_str.is_empty() {
            "rwm"
        } else {
            access_str
        };
        let mut access = 0;
        for ch in access_str.chars() {
            access |= match ch {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => {
                    return Err(Error::InvalidValue {
                        field: format!("{}.access", field(i)),
                        value: access_str.into(),
                        reason: "only the letters r, w and m are allowed".into(),
                    })
                }
            };
        }
        out.push(DevRule {
            allow: r.allow(),
            typ,
            major: number(i, "major", r.major())?,
            minor: number(i, "minor", r.minor())?,
            access,
        });
    }
    Ok(out)
}

/// The v1 line for `devices.allow` / `devices.deny`, e.g. `c 1:3 rwm`.
pub(crate) fn v1_line(r: &DevRule) -> String {
    let t = match r.typ {
        None => return "a".into(),
        Some(DEV_BLOCK) => 'b',
        Some(_) => 'c',
    };
    let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
    let mut acc = String::new();
    for (bit, ch) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
        if r.access & bit != 0 {
            acc.push(ch);
        }
    }
    let mut s = String::new();
    let _ = write!(s, "{t} {}:{} {acc}", num(r.major), num(r.minor));
    s
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// Build the `BPF_PROG_TYPE_CGROUP_DEVICE` program for `rules`.
///
/// Registers: r1 = `struct bpf_cgroup_dev_ctx *` (`access_type` = access
/// << 16 | type, `major`, `minor`); r2 = access bits still undecided;
/// r3 = type; r4 = major; r5 = minor. Rules are checked last to first; a
/// matching deny holding an undecided bit returns 0, a matching allow
/// clears its bits and returns 1 once none are left.
pub(crate) fn program(rules: &[DevRule]) -> Vec<Insn> {
    let mut p = vec![
        ins(LDX_W, 2, 1, 0, 0),
        ins(MOV_X, 3, 2, 0, 0),
        ins(AND_K, 3, 0, 0, 0xffff),
        ins(RSH_K, 2, 0, 0, 16),
        ins(LDX_W, 4, 1, 4, 0),
        ins(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Conditions, each a "jump to the end of this block if not matching".
        let mut conds: Vec<(u8, u8, i32)> = Vec::new(); // (opcode, reg, imm)
        if let Some(t) = r.typ {
            conds.push((JNE_K, 3, t as i32));
            if let Some(maj) = r.major {
                conds.push((JNE_K, 4, maj as i32));
            }
            if let Some(min) = r.minor {
                conds.push((JNE_K, 5, min as i32));
            }
        }
        let mut body: Vec<Insn> = Vec::new();
        // r0 = r2 & access; if r0 == 0 skip
        body.push(ins(MOV_X, 0, 2, 0, 0));
        body.push(ins(AND_K, 0, 0, 0, r.access as i32));
        let skip_if_zero_at = body.len();
        body.push(ins(JEQ_K, 0, 0, 0, 0));
        let mut tail_jumps = vec![skip_if_zero_at];
        if r.allow {
            body.push(ins(AND_K, 2, 0, 0, (!r.access & 0x7) as i32));
            tail_jumps.push(body.len());
            body.push(ins(JNE_K, 2, 0, 0, 0));
            body.push(ins(MOV_K, 0, 0, 0, 1));
        } else {
            body.push(ins(MOV_K, 0, 0, 0, 0));
        }
        body.push(ins(EXIT, 0, 0, 0, 0));

        let block_len = conds.len() + body.len();
        for (k, (op, reg, imm)) in conds.iter().enumerate() {
            let off = (block_len - (k + 1)) as i16;
            p.push(ins(*op, *reg, 0, off, *imm));
        }
        for (k, mut insn) in body.into_iter().enumerate() {
            if tail_jumps.contains(&k) {
                insn.off = (block_len - (conds.len() + k + 1)) as i16;
            }
            p.push(insn);
        }
    }
    // Nothing decided the remaining bits: leave them to the parent cgroup.
    p.push(ins(MOV_K, 0, 0, 0, 1));
    p.push(ins(EXIT, 0, 0, 0, 0));
    p
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    /// A tiny interpreter for the instructions `program` emits, so the
    /// program's decisions can be tested without loading it.
    pub(crate) fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                MOV_K => r[dst] = i.imm as i64 as u64,
                MOV_X => r[dst] = r[src],
                AND_K => r[dst] &= i.imm as i64 as u64,
                RSH_K => r[dst] >>= i.imm,
                JEQ_K | JNE_K => {
                    let eq = r[dst] == i.imm as i64 as u64;
                    if eq == (i.code == JEQ_K) {
                        pc = (pc as i64 + i64::from(i.off)) as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("program did not terminate")
    }

    fn rule(
        allow: bool,
        t: LinuxDeviceType,
        maj: Option<i64>,
        min: Option<i64>,
        acc: &str,
    ) -> LinuxDeviceCgroup {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(t)
            .access(acc.to_string());
        if let Some(m) = maj {
            b = b.major(m);
        }
        if let Some(m) = min {
            b = b.minor(m);
        }
        b.build().unwrap()
    }

    pub(crate) fn typical() -> Vec<LinuxDeviceCgroup> {
        use LinuxDeviceType::*;
        vec![
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "rwm"), // /dev/null
            rule(true, C, Some(1), Some(5), "rw"),  // /dev/zero, no mknod
            rule(true, C, Some(136), None, "rwm"),  // pts
            rule(true, B, Some(7), Some(0), "r"),   // loop0 read only
            rule(false, C, Some(1), Some(3), "w"),  // later: no writes to null
        ]
    }

    #[test]
    fn v1_lines() {
        let rules = parse_rules(&typical()).unwrap();
        let lines: Vec<String> = rules.iter().map(v1_line).collect();
        assert_eq!(
            lines,
            vec![
                "a",
                "c 1:3 rwm",
                "c 1:5 rw",
                "c 136:* rwm",
                "b 7:0 r",
                "c 1:3 w"
            ]
        );
    }

    #[test]
    fn program_decisions() {
        let rules = parse_rules(&typical()).unwrap();
        let p = program(&rules);
        let (r, w, m) = (ACC_READ, ACC_WRITE, ACC_MKNOD);
        assert_eq!(run(&p, DEV_CHAR, r, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, w, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, r | w, 1, 3), 0);
        assert_eq!(run(&p, DEV_CHAR, m, 1, 3), 1);
        assert_eq!(run(&p, DEV_CHAR, r | w, 1, 5), 1);
        assert_eq!(run(&p, DEV_CHAR, m, 1, 5), 0);
        assert_eq!(run(&p, DEV_CHAR, r | w, 136, 7), 1);
        assert_eq!(run(&p, DEV_BLOCK, r, 7, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, w, 7, 0), 0);
        assert_eq!(run(&p, DEV_BLOCK, r, 1, 3), 0); // type matters
        assert_eq!(run(&p, DEV_CHAR, r, 10, 200), 0); // tun: denied by "a"
    }

    #[test]
    fn no_rule_matches_defers_to_parent_and_allow_all() {
        let only_null =
            parse_rules(&[rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm")]).unwrap();
        let p = program(&only_null);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 5, 1), 1);
        let all = parse_rules(&[
            rule(false, LinuxDeviceType::A, None, None, "rwm"),
            rule(true, LinuxDeviceType::A, None, None, "rwm"),
        ])
        .unwrap();
        assert_eq!(run(&program(&all), DEV_BLOCK, ACC_WRITE, 8, 0), 1);
    }

    #[test]
    fn invalid_rules() {
        let e = parse_rules(&[rule(true, LinuxDeviceType::P, None, None, "rwm")]).unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.devices[0].type"),
            "{e}"
        );
        let e = parse_rules(&[rule(true, LinuxDeviceType::C, None, None, "rwx")]).unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.devices[0].access"),
            "{e}"
        );
        let e =
            parse_rules(&[rule(true, LinuxDeviceType::C, Some(1 << 40), None, "r")]).unwrap_err();
        assert!(e.to_string().contains("major"), "{e}");
    }
}
