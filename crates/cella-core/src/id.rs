//! Container ids: what is accepted, so an id can never name a path outside the state root.

use crate::error::{Error, Result};

/// Longest id accepted (engines use 64 hex digits; leave room for names).
pub const MAX_ID_LEN: usize = 1024;

/// Check that `id` is safe to use as a directory name under the state root.
pub fn validate(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("it is longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("it is a relative path component");
    }
    if id.contains('/') {
        return bad("it contains '/'");
    }
    if id.chars().any(|c| c.is_control()) {
        return bad("it contains a control character");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.' | '@' | ':' | '='))
    {
        return bad("only letters, digits and _ + - . @ : = are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_engine_ids() {
        for id in [
            "k1",
            "buildah-buildah4071055468",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "web.1",
            "a_b-c",
        ] {
            validate(id).unwrap();
        }
    }

    #[test]
    fn rejects_paths_and_controls() {
        for id in [
            "", ".", "..", "a/b", "../x", "/abs", "a\nb", "a\0b", "a b", "x*",
        ] {
            let e = validate(id).unwrap_err().to_string();
            assert!(e.contains("invalid container id"), "{id:?}: {e}");
        }
        assert!(validate(&"a".repeat(1025)).is_err());
    }
}
