//! Reading a seccomp profile (the `linux.seccomp` JSON object) with errors that name
//! the field, e.g. `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

const PREFIX: &str = "linux.seccomp";

/// Parses a seccomp profile: the JSON object found at `linux.seccomp` in a `config.json`.
///
/// Every field is checked before deserialising, so a mistake is reported with its path
/// and the accepted values. Unknown properties are ignored, as the OCI spec requires,
/// except the ones of Docker's profile format (`archMap`, `syscalls[].name`,
/// `includes`, `excludes`), whose meaning this format cannot express: those are refused
/// instead of being silently dropped.
pub fn parse_profile(json: &[u8]) -> Result<LinuxSeccomp, Error> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| Error::invalid(PREFIX, format!("not valid JSON: {e}")))?;
    check_profile(&value)?;
    serde_json::from_value(value).map_err(|e| Error::invalid(PREFIX, e.to_string()))
}

fn check_profile(value: &Value) -> Result<(), Error> {
    let obj = object(value, PREFIX)?;
    if obj.contains_key("archMap") {
        return Err(docker_format(format!("{PREFIX}.archMap")));
    }
    match obj.get("defaultAction") {
        None => {
            return Err(Error::invalid(
                format!("{PREFIX}.defaultAction"),
                format!("required; one of {}", ACTIONS.join(", ")),
            ))
        }
        Some(v) => action(v, &format!("{PREFIX}.defaultAction"))?,
    }
    optional(obj, "defaultErrnoRet", PREFIX, u32_value)?;
    if let Some(v) = present(obj, "architectures") {
        let field = format!("{PREFIX}.architectures");
        for (i, a) in array(v, &field)?.iter().enumerate() {
            known::<Arch>(a, &format!("{field}[{i}]"), "architecture", ARCHES)?;
        }
    }
    if let Some(v) = present(obj, "flags") {
        let field = format!("{PREFIX}.flags");
        for (i, f) in array(v, &field)?.iter().enumerate() {
            known::<LinuxSeccompFilterFlag>(f, &format!("{field}[{i}]"), "flag", FLAGS)?;
        }
    }
    optional(obj, "listenerPath", PREFIX, string)?;
    optional(obj, "listenerMetadata", PREFIX, string)?;
    if let Some(v) = present(obj, "syscalls") {
        let field = format!("{PREFIX}.syscalls");
        for (i, call) in array(v, &field)?.iter().enumerate() {
            check_syscall(call, &format!("{field}[{i}]"))?;
        }
    }
    Ok(())
}

fn check_syscall(value: &Value, field: &str) -> Result<(), Error> {
    let obj = object(value, field)?;
    for docker in ["name", "includes", "excludes"] {
        if obj.contains_key(docker) {
            return Err(docker_format(format!("{field}.{docker}")));
        }
    }
    match obj.get("names") {
        None => {
            return Err(Error::invalid(
                format!("{field}.names"),
                "required: the list of syscall names this rule applies to",
            ))
        }
        Some(v) => {
            let names_field = format!("{field}.names");
            for (j, n) in array(v, &names_field)?.iter().enumerate() {
                string(n, &format!("{names_field}[{j}]"))?;
            }
        }
    }
    match obj.get("action") {
        None => {
            return Err(Error::invalid(
                format!("{field}.action"),
                format!("required; one of {}", ACTIONS.join(", ")),
            ))
        }
        Some(v) => action(v, &format!("{field}.action"))?,
    }
    optional(obj, "errnoRet", field, u32_value)?;
    if let Some(v) = obj.get("args") {
        let args_field = format!("{field}.args");
        if !v.is_null() {
            for (k, arg) in array(v, &args_field)?.iter().enumerate() {
                check_arg(arg, &format!("{args_field}[{k}]"))?;
            }
        }
    }
    Ok(())
}

fn check_arg(value: &Value, field: &str) -> Result<(), Error> {
    let obj = object(value, field)?;
    for required in ["index", "value", "op"] {
        if !obj.contains_key(required) {
            return Err(Error::invalid(format!("{field}.{required}"), "required"));
        }
    }
    optional(obj, "index", field, u64_value)?;
    optional(obj, "value", field, u64_value)?;
    optional(obj, "valueTwo", field, u64_value)?;
    if let Some(op) = obj.get("op") {
        known::<LinuxSeccompOperator>(op, &format!("{field}.op"), "operator", OPERATORS)?;
    }
    Ok(())
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

const ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

fn docker_format(field: String) -> Error {
    Error::invalid(
        field,
        "this is Docker's seccomp profile format (archMap, name, includes/excludes), not the \
         OCI linux.seccomp format; expand it into OCI form (\"names\" lists, no capability \
         conditions) first",
    )
}

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, Error> {
    value.as_object().ok_or_else(|| {
        Error::invalid(
            field,
            format!("expected a JSON object, found {}", kind(value)),
        )
    })
}

fn array<'a>(value: &'a Value, field: &str) -> Result<&'a Vec<Value>, Error> {
    value.as_array().ok_or_else(|| {
        Error::invalid(
            field,
            format!("expected a JSON array, found {}", kind(value)),
        )
    })
}

fn string(value: &Value, field: &str) -> Result<(), Error> {
    match value {
        Value::String(_) => Ok(()),
        other => Err(Error::invalid(
            field,
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

fn u64_value(value: &Value, field: &str) -> Result<(), Error> {
    match value.as_u64() {
        Some(_) => Ok(()),
        None => Err(Error::invalid(
            field,
            format!(
                "expected an unsigned integer (0 to {}), found {value}",
                u64::MAX
            ),
        )),
    }
}

fn u32_value(value: &Value, field: &str) -> Result<(), Error> {
    match value.as_u64().map(u32::try_from) {
        Some(Ok(_)) => Ok(()),
        _ => Err(Error::invalid(
            field,
            format!(
                "expected an unsigned integer (0 to {}), found {value}",
                u32::MAX
            ),
        )),
    }
}

fn optional(
    obj: &Map<String, Value>,
    key: &str,
    parent: &str,
    check: fn(&Value, &str) -> Result<(), Error>,
) -> Result<(), Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => check(v, &format!("{parent}.{key}")),
    }
}

fn action(value: &Value, field: &str) -> Result<(), Error> {
    known::<LinuxSeccompAction>(value, field, "action", ACTIONS)
}

fn known<T: DeserializeOwned>(
    value: &Value,
    field: &str,
    what: &str,
    accepted: &[&str],
) -> Result<(), Error> {
    string(value, field)?;
    serde_json::from_value::<T>(value.clone())
        .map(|_| ())
        .map_err(|_| {
            Error::invalid(
                field,
                format!(
                    "unknown {what} {value}; expected one of {}",
                    accepted.join(", ")
                ),
            )
        })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An optional property: absent and `null` both mean "not set".
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}
