//! Located diagnostics shared by the catalog and the host configuration.
//!
//! Every problem found in a TOML file is reported as a [`Diagnostic`]: what is
//! wrong, where (file, 1-based line and column), what was expected and, for a
//! misspelt name, the nearest valid one.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A position in a text file: 1-based line and column (columns count characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as given to the loader (`<builtin>/NAME` for compiled-in files).
    pub file: PathBuf,
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` of `text` (clamped to the text).
    pub fn at(file: &Path, text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            file: file.to_path_buf(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// What class of problem a [`Diagnostic`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DiagnosticKind {
    /// The text is not valid TOML.
    Syntax,
    /// A key that the schema does not know.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong TOML type (a string where a boolean belongs, ...).
    WrongType,
    /// A value of the right type that is not allowed here.
    InvalidValue,
    /// A port or port range that cannot be used.
    BadPortRange,
    /// An IP address or prefix that cannot be parsed.
    BadPrefix,
    /// An interface name that cannot exist.
    BadInterface,
    /// An interface name that matches no interface of this host (checked
    /// only against the live interfaces, by `check-config`).
    NoSuchInterface,
    /// A role id (selected, or named in `includes`) that the catalog does not define.
    UnknownRole,
    /// A peer group the catalog does not define.
    UnknownPeerGroup,
    /// A host setting the catalog does not define.
    UnknownSetting,
    /// A source document the catalog does not define.
    UnknownSource,
    /// A port set the catalog does not define.
    UnknownPortSet,
    /// The same id or name defined twice where it must be unique.
    Duplicate,
    /// Roles that include each other.
    IncludeCycle,
    /// A field that must not be empty is empty.
    Empty,
}

/// One located problem in a catalog or configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the problem is; `None` for command-line input.
    pub location: Option<Location>,
    /// The class of problem.
    pub kind: DiagnosticKind,
    /// What is wrong, in one line.
    pub message: String,
    /// What would have been accepted.
    pub expected: Option<String>,
    /// The nearest valid name, for a misspelt one.
    pub suggestion: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without expectation or suggestion.
    pub fn new(
        location: Option<Location>,
        kind: DiagnosticKind,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            location,
            kind,
            message: message.into(),
            expected: None,
            suggestion: None,
        }
    }

    /// Adds what would have been accepted.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Adds the nearest valid name, if there is one.
    pub fn suggest(mut self, suggestion: Option<&str>) -> Self {
        self.suggestion = suggestion.map(str::to_string);
        self
    }

    /// Converts an error of the `toml` crate into a diagnostic. `syntax` tells
    /// whether it came from parsing (rather than from matching the schema).
    pub(crate) fn from_toml(file: &Path, text: &str, err: &toml::de::Error, syntax: bool) -> Self {
        let location = Some(Location::at(file, text, err.span().map_or(0, |s| s.start)));
        let raw = err.message().trim();
        // serde speaks of fields and variants; TOML users see keys and values.
        let (message, expected) =
            split_expected(&raw.replacen("unknown field", "unknown key", 1).replacen(
                "unknown variant",
                "unknown value",
                1,
            ));
        let mut d = Diagnostic::new(location, DiagnosticKind::Syntax, message);
        d.expected = expected;
        if syntax {
            return d;
        }
        let names = backticked(raw);
        if raw.starts_with("unknown field") || raw.starts_with("unknown variant") {
            d.kind = if raw.starts_with("unknown field") {
                DiagnosticKind::UnknownKey
            } else {
                DiagnosticKind::InvalidValue
            };
            if let Some((name, valid)) = names.split_first() {
                d.suggestion = nearest(name, valid.iter().copied()).map(str::to_string);
                if valid.is_empty() {
                    d.expected = Some("no keys here".to_string());
                }
            }
        } else if raw.starts_with("missing field") {
            d.kind = DiagnosticKind::MissingKey;
            d.expected = names.first().map(|n| format!("a key `{n}`"));
        } else if raw.starts_with(crate::catalog::portlist::PORT_ERROR) {
            d.kind = DiagnosticKind::BadPortRange;
        } else if raw.starts_with("invalid type") || raw.starts_with("invalid length") {
            d.kind = DiagnosticKind::WrongType;
        } else {
            d.kind = DiagnosticKind::InvalidValue;
        }
        d
    }
}

/// Splits serde's "MESSAGE, expected WHAT" into its two parts.
fn split_expected(raw: &str) -> (String, Option<String>) {
    match raw.split_once(", expected ") {
        Some((m, e)) => (m.to_string(), Some(e.to_string())),
        None => (raw.to_string(), None),
    }
}

/// The names quoted in backticks in a serde message, in order.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(e) = &self.expected {
            write!(f, "; expected {e}")?;
        }
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Formats a list of diagnostics one per line (used by the error types' `Display`).
pub(crate) fn display_all(list: &[Diagnostic]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The candidate closest to `name`, if any is close enough to be a likely
/// typo or abbreviation: first the shortest candidate that starts with `name`,
/// then the shortest that contains it, then the best Jaro-Winkler match of at
/// least 0.8 (case is ignored throughout).
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_lowercase();
    let candidates: Vec<(&str, String)> = candidates
        .into_iter()
        .map(|c| (c, c.to_lowercase()))
        .collect();
    let shortest = |keep: &dyn Fn(&str) -> bool| {
        candidates
            .iter()
            .filter(|(_, l)| keep(l))
            .min_by_key(|(c, _)| c.len())
            .map(|(c, _)| *c)
    };
    let n = name.chars().count();
    (n >= 3)
        .then(|| shortest(&|l| l.starts_with(&name)))
        .flatten()
        .or_else(|| (n >= 4).then(|| shortest(&|l| l.contains(&name))).flatten())
        .or_else(|| {
            candidates
                .iter()
                .map(|(c, l)| (strsim::jaro_winkler(&name, l), *c))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, c)| c)
        })
}

/// A source file's name and text, kept so that spans found later can be
/// turned into line and column.
#[derive(Debug)]
pub(crate) struct SourceText {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

impl SourceText {
    /// The location of `span`'s start in this file.
    pub(crate) fn locate(&self, span: Range<usize>) -> Location {
        Location::at(&self.path, &self.text, span.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "a = 1\nbé = 2\n";
        let loc = Location::at(Path::new("f"), text, text.find('=').unwrap());
        assert_eq!((loc.line, loc.column), (1, 3));
        let loc = Location::at(Path::new("f"), text, text.rfind('=').unwrap());
        assert_eq!((loc.line, loc.column), (2, 4));
        assert_eq!(Location::at(Path::new("f"), text, 999).line, 3);
    }

    #[test]
    fn nearest_finds_typos_only() {
        let names = ["roles", "settings", "peers"];
        assert_eq!(nearest("rols", names), Some("roles"));
        assert_eq!(nearest("Peers", names), Some("peers"));
        assert_eq!(nearest("zzzz", names), None);
        let roles = [
            "veeam-linux-proxy",
            "veeam-linux-repository",
            "veeam-hardened-repository",
        ];
        assert_eq!(
            nearest("veeam-linux-repo", roles),
            Some("veeam-linux-repository")
        );
        assert_eq!(
            nearest("hardened-repository", roles),
            Some("veeam-hardened-repository")
        );
        assert_eq!(
            nearest("veeam-linux-proxi", roles),
            Some("veeam-linux-proxy")
        );
    }
}
