//! Which libnftnl this process runs with, and whether [`validate`] was
//! checked against it.
//!
//! [`validate`] stands between the kernel and libnftnl's parsers, which exit
//! the process on an attribute they do not expect. It mirrors the parse
//! callbacks of the libnftnl releases compared in `docs/libnftnl.md`; a
//! release it was not compared with may parse attributes it does not know,
//! so [`check`] refuses any other before a message is parsed.
//!
//! libnftnl has no version function. What identifies a release here:
//! * the real file name of the loaded library: libtool names it after the
//!   release's `-version-info`, and every release from 1.2.1 to 1.2.9 is
//!   `17:0:6`, so `libnftnl.so.11.6.0` (1.2.0 was `11.5.0`, 1.3.2 is `11.8.0`);
//! * within those, two facts that parse differently: 1.2.5 added the `inner`
//!   expression (`nftnl_expr_alloc("inner")` succeeds), and 1.2.7 exports
//!   `nftnl_obj_unset`.
//!
//! Neither needs `/proc`: the file name comes from `dladdr` and the symlinks
//! of the library directory, so the check works under `ProtectProc=invisible`
//! and `ProtectSystem=strict` as an unprivileged user.
//!
//! [`validate`]: super::validate

use super::sys;
use std::fmt;
use std::sync::OnceLock;

/// The file name every libnftnl from 1.2.1 to 1.2.9 is installed as
/// (libtool `-version-info 17:0:6`).
pub const CHECKED_FILE: &str = "libnftnl.so.11.6.0";

/// What was found out about the loaded libnftnl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The real file name of the loaded library (symlinks resolved), e.g.
    /// `libnftnl.so.11.6.0`; or where it was looked for, when it could not
    /// be resolved.
    pub file: String,
    /// `nftnl_expr_alloc("inner")` succeeds (libnftnl 1.2.5 and later).
    pub knows_inner: bool,
    /// The library exports `nftnl_obj_unset` (libnftnl 1.2.7 and later).
    pub exports_obj_unset: bool,
}

/// A group of libnftnl releases whose parsers the validator was compared
/// with (see `docs/libnftnl.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// 1.2.1 to 1.2.4, whose parse functions are identical: Ubuntu 22.04
    /// (1.2.1), RHEL 9.0 to 9.3 (1.2.2), Debian 12 (1.2.4).
    Upto1_2_4,
    /// 1.2.5 and 1.2.6, which add the `inner` expression: Ubuntu 24.04
    /// (1.2.6), RHEL 9.4 and later (1.2.6 with fixes from 1.2.7).
    From1_2_5To1_2_6,
    /// 1.2.7 to 1.2.9: no more set expression list freed twice, dynset's
    /// expression list checked as nested: Debian 13 (1.2.9).
    From1_2_7To1_2_9,
}

impl Release {
    /// The releases in the group, for messages ("1.2.1 to 1.2.4").
    pub fn versions(self) -> &'static str {
        match self {
            Release::Upto1_2_4 => "1.2.1 to 1.2.4",
            Release::From1_2_5To1_2_6 => "1.2.5 to 1.2.6",
            Release::From1_2_7To1_2_9 => "1.2.7 to 1.2.9",
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "libnftnl {}", self.versions())
    }
}

/// The loaded libnftnl is not one the validator was checked against.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the libnftnl this process loaded ({found}) is not a version portwarden was checked against \
     (libnftnl 1.2.1 to 1.2.9, installed as {CHECKED_FILE}): {why}; portwarden does not parse \
     kernel messages with it, because libnftnl ends the process on attributes it does not \
     expect (see docs/libnftnl.md)"
)]
pub struct Unsupported {
    /// What was found: the library's file name and the probed facts.
    pub found: String,
    /// Why it does not match a checked release.
    pub why: String,
}

/// Maps what was found to a checked release, or refuses it.
pub fn classify(f: &Facts) -> Result<Release, Unsupported> {
    let refuse = |why: String| Unsupported {
        found: format!(
            "{}, inner expression {}, nftnl_obj_unset {}",
            f.file,
            if f.knows_inner { "known" } else { "unknown" },
            if f.exports_obj_unset {
                "exported"
            } else {
                "not exported"
            }
        ),
        why,
    };
    if f.file != CHECKED_FILE {
        return Err(refuse(format!(
            "its file name is not {CHECKED_FILE}, the name of every release from 1.2.1 to 1.2.9"
        )));
    }
    match (f.knows_inner, f.exports_obj_unset) {
        (false, false) => Ok(Release::Upto1_2_4),
        (true, false) => Ok(Release::From1_2_5To1_2_6),
        (true, true) => Ok(Release::From1_2_7To1_2_9),
        (false, true) => Err(refuse(
            "it exports nftnl_obj_unset (1.2.7 and later) but does not know the inner \
             expression (1.2.5 and later): no release is like that"
                .to_string(),
        )),
    }
}

/// Finds out what the loaded libnftnl is.
pub fn detect() -> Facts {
    let file = match sys::libnftnl_file() {
        Ok(path) => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
        Err(e) => format!("file not found: {e}"),
    };
    Facts {
        file,
        knows_inner: sys::libnftnl_knows_expression(c"inner"),
        exports_obj_unset: sys::libnftnl_exports(c"nftnl_obj_unset"),
    }
}

/// Whether the loaded libnftnl is a checked release; found out once per
/// process. Every libnftnl parse entry point in [`sys`] refuses to run
/// without it, and the commands and the daemon call it at start.
pub fn check() -> Result<Release, Unsupported> {
    static CHECKED: OnceLock<Result<Release, Unsupported>> = OnceLock::new();
    CHECKED.get_or_init(|| classify(&detect())).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(file: &str, inner: bool, obj_unset: bool) -> Facts {
        Facts {
            file: file.to_string(),
            knows_inner: inner,
            exports_obj_unset: obj_unset,
        }
    }

    #[test]
    fn releases_map_from_file_name_and_probes() {
        let f = |i, o| classify(&facts(CHECKED_FILE, i, o));
        assert_eq!(f(false, false), Ok(Release::Upto1_2_4));
        assert_eq!(f(true, false), Ok(Release::From1_2_5To1_2_6));
        assert_eq!(f(true, true), Ok(Release::From1_2_7To1_2_9));
        assert!(f(false, true).is_err());
    }

    #[test]
    fn other_library_versions_are_refused_with_a_clear_message() {
        // 1.2.0 (libtool 16:0:5), 1.3.2 (as Debian's sid ships it), a copy
        // without its version in the name.
        for name in [
            "libnftnl.so.11.5.0",
            "libnftnl.so.11.8.0",
            "libnftnl.so.11",
            "libnftnl.so.12.0.0",
        ] {
            let e = classify(&facts(name, true, true)).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(msg.contains("1.2.1 to 1.2.9"), "{msg}");
            assert!(msg.contains("docs/libnftnl.md"), "{msg}");
        }
    }

    /// The library this test binary runs with is found and classified (the
    /// build machine's and CI's is Debian 12's 1.2.4; run the tests with
    /// `LD_LIBRARY_PATH` set to another release's directory to check that).
    #[test]
    fn the_loaded_library_is_detected() {
        let facts = detect();
        assert!(facts.file.starts_with("libnftnl.so."), "{facts:?}");
        let release = classify(&facts);
        eprintln!("loaded: {facts:?} -> {release:?}");
        assert_eq!(release.is_ok(), facts.file == CHECKED_FILE, "{release:?}");
        assert_eq!(check(), release);
    }
}
