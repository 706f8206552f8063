//! Located diagnostics shared by the catalog and the host configuration.
//!
//! Every problem found in a TOML file is reported as a [`Diagnostic`]: what is
//! wrong, where (file, 1-based line and column), what was expected and, for a
//! misspelt name, the nearest valid one.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    ///
    /// This scans `text` up to `offset`: for many positions in one text,
    /// use a [`LineIndex`], which answers each in logarithmic time.
    pub fn at(file: &Path, text: &str, offset: usize) -> Self {
        let offset = char_floor(text, offset);
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            file: file.to_path_buf(),
            line: newlines(before.as_bytes()) + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// `offset` clamped to `text` and moved back to a character boundary.
fn char_floor(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Number of newlines in `bytes`.
fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Number of characters in `bytes` (a UTF-8 text cut at any byte): the bytes
/// that do not continue a character.
fn char_starts(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// Line starts and character counts of one text, built in one pass, so that
/// any byte offset becomes a line and column in logarithmic time plus at most
/// 4 KiB counted, however long the lines are. Locating
/// every entry of a 100,000-entry list costs the same per entry as locating
/// one.
#[derive(Debug)]
pub struct LineIndex {
    /// Byte offset of the start of each line (the first is 0).
    line_starts: Vec<usize>,
    /// `char_marks[k]`: characters in the text's first `k * BLOCK` bytes.
    char_marks: Vec<usize>,
}

impl LineIndex {
    /// Bytes between two character-count marks.
    const BLOCK: usize = 4096;

    /// Indexes `text`.
    pub fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        line_starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut char_marks = Vec::with_capacity(bytes.len() / Self::BLOCK + 1);
        let mut chars = 0;
        char_marks.push(0);
        for block in bytes.chunks(Self::BLOCK) {
            chars += char_starts(block);
            char_marks.push(chars);
        }
        LineIndex {
            line_starts,
            char_marks,
        }
    }

    /// Characters in `text[..offset]` (`offset` a character boundary).
    fn chars_before(&self, text: &str, offset: usize) -> usize {
        let block = offset / Self::BLOCK;
        self.char_marks[block] + char_starts(&text.as_bytes()[block * Self::BLOCK..offset])
    }

    /// The location of byte `offset` of `text`, the text this index was
    /// built from (clamped to the text); the same as [`Location::at`].
    pub fn locate(&self, file: &Path, text: &str, offset: usize) -> Location {
        let offset = char_floor(text, offset);
        // The last line starting at or before `offset`.
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        Location {
            file: file.to_path_buf(),
            line,
            column: self.chars_before(text, offset) - self.chars_before(text, start) + 1,
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
    /// A host configuration selects no role: nothing to audit yet (the
    /// daemon waits for one instead of failing).
    NoRoles,
    /// The file is not UTF-8 text (located at its first bad byte).
    Encoding,
    /// Stands for the errors beyond the number listed (the message says how
    /// many).
    Omitted,
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
/// turned into line and column (the line index is built on first use).
#[derive(Debug)]
pub(crate) struct SourceText {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    index: OnceLock<LineIndex>,
}

impl SourceText {
    /// A file's path and text.
    pub(crate) fn new(path: PathBuf, text: String) -> SourceText {
        SourceText {
            path,
            text,
            index: OnceLock::new(),
        }
    }

    /// The location of `span`'s start in this file.
    pub(crate) fn locate(&self, span: Range<usize>) -> Location {
        self.index
            .get_or_init(|| LineIndex::new(&self.text))
            .locate(&self.path, &self.text, span.start)
    }
}

/// Why a catalog or configuration file could not be read as text.
#[derive(Debug)]
pub(crate) enum ReadTextError {
    /// Reading failed.
    Io(std::io::Error),
    /// The file holds more than the limit (`size`: what was seen, at least
    /// the limit + 1).
    TooLarge { size: u64 },
    /// The file is not UTF-8: the diagnostic locates its first bad byte.
    NotUtf8(Diagnostic),
}

/// Reads a text file of at most `limit` bytes. A larger file is refused
/// before it is read (by its size) or as soon as the limit is passed (a file
/// that grows, a pipe); a file that is not UTF-8 gets the line and column
/// of its first bad byte.
pub(crate) fn read_text(path: &Path, limit: u64) -> Result<String, ReadTextError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(ReadTextError::Io)?;
    let size = file.metadata().map_err(ReadTextError::Io)?.len();
    if size > limit {
        return Err(ReadTextError::TooLarge { size });
    }
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadTextError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadTextError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    decode_utf8(path, bytes).map_err(ReadTextError::NotUtf8)
}

/// `bytes` as a string, or a diagnostic at the first byte that is not UTF-8.
pub(crate) fn decode_utf8(file: &Path, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    let err = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e,
    };
    let (utf8, bytes) = (err.utf8_error(), err.as_bytes());
    let at = utf8.valid_up_to();
    let valid = std::str::from_utf8(&bytes[..at]).expect("valid up to here");
    let message = match utf8.error_len() {
        Some(_) => format!("invalid UTF-8: byte 0x{:02x}", bytes[at]),
        None => format!(
            "invalid UTF-8: the file ends inside a character (byte 0x{:02x})",
            bytes[at]
        ),
    };
    Err(Diagnostic::new(
        Some(Location::at(file, valid, at)),
        DiagnosticKind::Encoding,
        message,
    )
    .expected("UTF-8 text (convert a Latin-1 file with `iconv -f latin1 -t utf-8`)"))
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
    fn line_index_agrees_with_a_scan() {
        // Long and short lines, multi-byte characters across the index's
        // blocks, a text ending with and without a newline.
        let mut text = String::new();
        for i in 0..120 {
            text.push_str(&"é".repeat(i % 7));
            text.push_str(&"x".repeat(i * 37 % 9000));
            text.push(if i % 5 == 0 { '€' } else { '\n' });
        }
        let file = Path::new("f");
        for text in [text.as_str(), text.trim_end(), "", "\n", "a"] {
            let index = LineIndex::new(text);
            for offset in (0..text.len() + 3).step_by(1999).chain([0, 1, text.len()]) {
                assert_eq!(
                    index.locate(file, text, offset),
                    Location::at(file, text, offset),
                    "offset {offset}"
                );
            }
        }
    }

    #[test]
    fn non_utf8_is_located_at_its_first_bad_byte() {
        let file = Path::new("/etc/portwarden/portwarden.toml");
        let mut bytes = "roles = [\"a\"]\n# café \n# ".as_bytes().to_vec();
        bytes.extend([b'x', 0xe9, b'y', b'\n', 0xff]);
        let d = decode_utf8(file, bytes).unwrap_err();
        assert_eq!(d.kind, DiagnosticKind::Encoding);
        let loc = d.location.clone().unwrap();
        // Line 3, after "# x": column 4 (columns count characters).
        assert_eq!((loc.line, loc.column), (3, 4));
        assert_eq!(
            d.to_string(),
            "/etc/portwarden/portwarden.toml:3:4: invalid UTF-8: byte 0xe9; \
             expected UTF-8 text (convert a Latin-1 file with `iconv -f latin1 -t utf-8`)"
        );
        // A character cut short by the end of the file.
        let d = decode_utf8(file, b"a\nb\xc3".to_vec()).unwrap_err();
        let loc = d.location.clone().unwrap();
        assert_eq!((loc.line, loc.column), (2, 2));
        assert!(
            d.message.contains("ends inside a character (byte 0xc3)"),
            "{d}"
        );
        assert_eq!(decode_utf8(file, "é\n".into()).unwrap(), "é\n");
    }

    #[test]
    fn read_text_refuses_large_files_unread() {
        let dir = std::env::temp_dir().join(format!("pw-diag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.toml");
        std::fs::write(&path, "x".repeat(101)).unwrap();
        assert!(matches!(
            read_text(&path, 100),
            Err(ReadTextError::TooLarge { size: 101 })
        ));
        assert_eq!(read_text(&path, 101).unwrap().len(), 101);
        std::fs::write(&path, b"a = \"\xff\"").unwrap();
        match read_text(&path, 100) {
            Err(ReadTextError::NotUtf8(d)) => {
                assert_eq!(d.location.unwrap().column, 6);
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
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
