//! Peer lists read ahead of the TOML parser, so that a long one costs
//! memory in proportion to its text.
//!
//! The `toml` crate holds every token, every parser event and a value per
//! array entry at once: about 250 bytes for a 17-byte line such as
//! `  "10.1.2.3/32",`, 16 times the file. A configuration of half a million
//! peers is mostly such lines, in arrays of the form
//!
//! ```toml
//! [peers]
//! backup_server = [
//!   "10.0.0.10",   # comments allowed
//!   "10.0.0.11",
//! ]
//! ```
//!
//! Those arrays, and the `from` and `to` lists of `[[allow]]` entries, are
//! found here with `toml_parser`'s lexer (the `toml`
//! crate's own, token by token, holding none), their strings decoded by it,
//! and their text blanked (every byte between the brackets turned into a
//! space) in a copy that the `toml` crate then parses as usual: each such
//! array reads as empty, and the strings are put back with their positions
//! in the original text. Byte offsets do not move, so every position in an
//! error message is the one in the file. Anything else (a dotted key, an
//! inline table, a value that is not a string, a quoted header) is left to
//! the `toml` crate as it is; an array is taken only when its every token
//! is valid TOML, so the outcome, valid or not and which error first, is
//! the same as without this step (a property test checks that).

use toml::Spanned;
use toml_parser::lexer::{Token, TokenKind};
use toml_parser::Source;

/// The peer lists taken out of a configuration text.
pub(crate) struct Bulk {
    /// The text with those lists blanked; `None` when none was taken.
    pub text: Option<String>,
    /// Per list taken: where it belongs and its strings, with their
    /// positions in the original text.
    pub lists: Vec<(Place, Vec<Spanned<String>>)>,
}

/// Where a list taken belongs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// `[peers]`, this group.
    Peers(String),
    /// The `from` list of the `[[allow]]` entry of this index.
    AllowFrom(usize),
    /// The `to` list of the `[[allow]]` entry of this index.
    AllowTo(usize),
}

/// Where the lexer is in the document, for what matters here.
#[derive(Clone, Copy)]
enum Table {
    /// Under `[peers]`.
    Peers,
    /// Under the `[[allow]]` header of this index.
    Allow(usize),
    /// At the top, or under any other header.
    Other,
}

/// Tokens with a look at the next one.
struct Tokens<'i> {
    source: Source<'i>,
    lexer: std::iter::Peekable<toml_parser::lexer::Lexer<'i>>,
}

impl<'i> Tokens<'i> {
    fn next(&mut self) -> Option<Token> {
        self.lexer.next()
    }

    fn peek_kind(&mut self) -> TokenKind {
        self.lexer.peek().map_or(TokenKind::Eof, Token::kind)
    }

    /// Skips whitespace (and, inside an array, newlines and comments);
    /// false if a skipped comment or newline is not valid TOML (a control
    /// character, a lone carriage return), which must then stay in the
    /// text for the `toml` crate to report.
    fn skip(&mut self, in_array: bool) -> bool {
        loop {
            match self.peek_kind() {
                TokenKind::Whitespace => {}
                TokenKind::Newline | TokenKind::Comment if in_array => {
                    if !self.valid_trivia() {
                        return false;
                    }
                }
                _ => return true,
            }
            self.next();
        }
    }

    /// Whether the next token, a comment or newline, is valid.
    fn valid_trivia(&mut self) -> bool {
        let Some(t) = self.lexer.peek().copied() else {
            return true;
        };
        let Some(raw) = self.source.get(t) else {
            return false;
        };
        let mut errors: Option<toml_parser::ParseError> = None;
        match t.kind() {
            TokenKind::Comment => raw.decode_comment(&mut errors),
            _ => raw.decode_newline(&mut errors),
        }
        errors.is_none()
    }

    /// Skips whitespace and one valid comment: what may end a line.
    fn skip_to_line_end(&mut self) -> bool {
        self.skip(false);
        if self.peek_kind() == TokenKind::Comment {
            if !self.valid_trivia() {
                return false;
            }
            self.next();
        }
        true
    }

    /// A one-line string or bare token decoded as a key, or `None` if it
    /// has errors.
    fn key(&self, t: &Token) -> Option<String> {
        let raw = self.source.get(t)?;
        let mut out = String::new();
        let mut errors: Option<toml_parser::ParseError> = None;
        raw.decode_key(&mut out, &mut errors);
        errors.is_none().then_some(out)
    }

    /// A one-line string value, decoded, or `None` if it has errors.
    fn string(&self, t: &Token) -> Option<String> {
        let raw = self.source.get(t)?;
        let mut out = String::new();
        let mut errors: Option<toml_parser::ParseError> = None;
        let _ = raw.decode_scalar(&mut out, &mut errors);
        errors.is_none().then_some(out)
    }

    /// Consumes the rest of a statement, to its newline at bracket depth
    /// 0 (strings and comments are single tokens: their brackets do not
    /// count). `depth` is the depth already open.
    fn rest_of_statement(&mut self, mut depth: usize) {
        while let Some(t) = self.next() {
            match t.kind() {
                TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
                TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                    depth = depth.saturating_sub(1)
                }
                TokenKind::Newline if depth == 0 => return,
                _ => {}
            }
        }
    }
}

/// Finds the peer lists of `text` that can be read ahead (see the module
/// docs) and blanks them in a copy.
pub(crate) fn extract(text: &str) -> Bulk {
    let source = Source::new(text);
    let mut toks = Tokens {
        source,
        lexer: source.lex().peekable(),
    };
    let mut table = Table::Other;
    let mut allows = 0;
    let mut lists = Vec::new();
    let mut blank: Vec<(usize, usize)> = Vec::new();
    // At the start of a line (of a statement) each time round.
    loop {
        toks.skip(false);
        let Some(first) = toks.next() else { break };
        match first.kind() {
            TokenKind::Newline | TokenKind::Comment => {
                if first.kind() == TokenKind::Comment {
                    toks.rest_of_statement(0);
                }
            }
            TokenKind::LeftSquareBracket => {
                table = header(&mut toks, &mut allows).unwrap_or(Table::Other);
            }
            TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString => {
                let taken = match table {
                    Table::Peers | Table::Allow(_) => Some(peer_list(&mut toks, &first)),
                    Table::Other => None,
                };
                let place = |key: String| match table {
                    Table::Peers => Some(Place::Peers(key)),
                    Table::Allow(i) if key == "from" => Some(Place::AllowFrom(i)),
                    Table::Allow(i) if key == "to" => Some(Place::AllowTo(i)),
                    _ => None,
                };
                match taken {
                    Some(Ok((key, strings, open, close))) => {
                        // A list under [[allow]] other than from/to is left
                        // in the text, already consumed.
                        if let Some(p) = place(key) {
                            blank.push((open + 1, close));
                            lists.push((p, strings));
                        }
                    }
                    Some(Err(depth)) => toks.rest_of_statement(depth),
                    None => toks.rest_of_statement(0),
                }
            }
            _ => toks.rest_of_statement(0),
        }
    }
    if blank.is_empty() {
        return Bulk { text: None, lists };
    }
    let mut bytes = text.as_bytes().to_vec();
    for (a, b) in blank {
        bytes[a..b].fill(b' ');
    }
    // Whole tokens became spaces: still UTF-8.
    let text = String::from_utf8(bytes).expect("blanked between token boundaries");
    Bulk {
        text: Some(text),
        lists,
    }
}

/// After a line's first `[`: `[peers]` or `[[allow]]` (bare, with optional
/// whitespace; `allows` counts the `[[allow]]` headers), or any other
/// header; consumes the line. `None` for anything that is not a plain
/// header (then the line is left to the `toml` crate, which will say what
/// is wrong).
fn header(toks: &mut Tokens<'_>, allows: &mut usize) -> Option<Table> {
    // `[[` only as one token pair, as the toml crate reads an array of
    // tables: no whitespace between the brackets.
    let array = toks.peek_kind() == TokenKind::LeftSquareBracket;
    let mut depth = 1;
    if array {
        toks.next();
        depth = 2;
    }
    toks.skip(false);
    let name = match toks.peek_kind() {
        TokenKind::Atom => {
            let t = toks.next()?;
            toks.source.get(t)?.as_str().to_string()
        }
        // `["quoted"]`, `[[ [`...: not a table taken here.
        _ => {
            toks.rest_of_statement(depth);
            return Some(Table::Other);
        }
    };
    toks.skip(false);
    while depth > 0 {
        if toks.peek_kind() != TokenKind::RightSquareBracket {
            // `[a.b]`, `[a b]`: not a table taken here.
            toks.rest_of_statement(depth);
            return Some(Table::Other);
        }
        toks.next();
        depth -= 1;
    }
    // Counted whatever follows: if the line is not valid, the toml crate
    // refuses the file.
    let table = match (array, name.as_str()) {
        (true, "allow") => {
            *allows += 1;
            Table::Allow(*allows - 1)
        }
        (false, "peers") => Table::Peers,
        _ => Table::Other,
    };
    if !toks.skip_to_line_end() {
        toks.rest_of_statement(0);
        return None;
    }
    match toks.peek_kind() {
        TokenKind::Newline | TokenKind::Eof => {
            toks.next();
            Some(table)
        }
        _ => {
            toks.rest_of_statement(0);
            None
        }
    }
}

/// A taken list: group, strings, and the byte offsets of its `[` and `]`.
type Taken = (String, Vec<Spanned<String>>, usize, usize);

/// `GROUP = [ "a", 'b', ... ]` to the end of its line, after the key token
/// `key`: the list; `Err(depth)` having stopped inside the statement at
/// that bracket depth (the caller consumes the rest).
fn peer_list(toks: &mut Tokens<'_>, key: &Token) -> Result<Taken, usize> {
    let group = toks.key(key).ok_or(0usize)?;
    toks.skip(false);
    if toks.peek_kind() != TokenKind::Equals {
        return Err(0);
    }
    toks.next();
    toks.skip(false);
    if toks.peek_kind() != TokenKind::LeftSquareBracket {
        return Err(0);
    }
    let open = toks.next().ok_or(0usize)?.span().start();
    let mut strings = Vec::new();
    let close = loop {
        if !toks.skip(true) {
            return Err(1);
        }
        match toks.peek_kind() {
            TokenKind::RightSquareBracket => break toks.next().ok_or(1usize)?.span().start(),
            TokenKind::BasicString | TokenKind::LiteralString => {
                let t = toks.next().ok_or(1usize)?;
                let s = toks.string(&t).ok_or(1usize)?;
                let span = t.span();
                strings.push(Spanned::new(span.start()..span.end(), s));
                if !toks.skip(true) {
                    return Err(1);
                }
                match toks.peek_kind() {
                    TokenKind::Comma => {
                        toks.next();
                    }
                    TokenKind::RightSquareBracket => {}
                    _ => return Err(1),
                }
            }
            _ => return Err(1),
        }
    };
    // Only a comment may follow on the line.
    if !toks.skip_to_line_end() {
        return Err(0);
    }
    match toks.peek_kind() {
        TokenKind::Newline if toks.valid_trivia() => {
            toks.next();
        }
        TokenKind::Eof => {}
        _ => return Err(0),
    }
    Ok((group, strings, open, close))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::config::HostConfig;
    use proptest::prelude::*;
    use std::path::Path;
    use std::sync::OnceLock;

    fn catalog() -> &'static Catalog {
        static CAT: OnceLock<Catalog> = OnceLock::new();
        CAT.get_or_init(|| Catalog::builtin().expect("builtin catalog"))
    }

    /// The outcome of loading `text`, as text (the configuration, or every
    /// error with its location).
    fn outcome(text: &str, read_ahead: bool) -> String {
        match HostConfig::parse_with(Path::new("t.toml"), text, catalog(), None, read_ahead) {
            Ok(r) => format!("{r:?}"),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn peer_lists_are_taken_with_their_positions_and_blanked() {
        let text = "roles = [\"veeam-data-mover\"]\n[peers] # the peers\nbackup_server = [\n  \"10.0.0.10\", # primary\n  '10.0.0.11/32',\n]\n[settings]\nveeam_data_range = \"v10\"\n";
        let b = extract(text);
        assert_eq!(b.lists.len(), 1);
        let (place, list) = &b.lists[0];
        assert_eq!(*place, Place::Peers("backup_server".into()));
        let got: Vec<(&str, &str)> = list
            .iter()
            .map(|s| (s.get_ref().as_str(), &text[s.span()]))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.10", "\"10.0.0.10\""),
                ("10.0.0.11/32", "'10.0.0.11/32'")
            ]
        );
        let blanked = b.text.unwrap();
        assert_eq!(blanked.len(), text.len());
        assert!(blanked.contains("backup_server = ["));
        assert!(!blanked.contains("10.0.0.1"));
        assert!(blanked.contains("veeam_data_range = \"v10\""));
        assert_eq!(outcome(text, true), outcome(text, false));
    }

    #[test]
    fn allow_lists_go_back_to_their_own_entry() {
        let mut text = String::from("roles = [\"veeam-data-mover\"]\n");
        for i in 1..=4 {
            text.push_str(&format!(
                "[[allow]]\nproto = \"tcp\"\nports = [\"{}\"]\ncomment = \"c{i}\"\n",
                1000 + i
            ));
            if i % 2 == 0 {
                text.push_str(&format!(
                    "direction = \"out\"\nto = ['192.0.2.{i}', \"10.1.{i}.0/24\"]\n"
                ));
            } else {
                text.push_str(&format!("from = [\"10.0.{i}.0/24\", \"10.1.{i}.0/24\"]\n"));
            }
        }
        let b = extract(&text);
        let places: Vec<&Place> = b.lists.iter().map(|(p, _)| p).collect();
        assert_eq!(
            places,
            [
                &Place::AllowFrom(0),
                &Place::AllowTo(1),
                &Place::AllowFrom(2),
                &Place::AllowTo(3)
            ]
        );
        let got = outcome(&text, true);
        assert!(got.contains("10.1.4.0/24"), "{got}");
        assert_eq!(outcome(&text, true), outcome(&text, false));
    }

    #[test]
    fn anything_else_is_left_to_the_toml_crate() {
        for text in [
            // Not under [peers].
            "roles = [\"a\"]\n",
            "[settings]\nbackup_server = [\"10.0.0.1\"]\n",
            "[[allow]]\ninterfaces = [\"eth0\"]\n",
            "[[allow.x]]\nfrom = [\"10.0.0.1\"]\n",
            // A dotted key, a quoted or dotted header, a value that is not
            // an array of one-line strings.
            "peers.backup_server = [\"10.0.0.1\"]\n",
            "[\"peers\"]\nbackup_server = [\"10.0.0.1\"]\n",
            "[peers.x]\nbackup_server = [\"10.0.0.1\"]\n",
            "[peers]\nbackup_server = [\"10.0.0.1\", 1]\n",
            "[peers]\nbackup_server = [\"\"\"10.0.0.1\"\"\"]\n",
            "[peers]\nbackup_server = \"10.0.0.1\"\n",
            "[peers]\nbackup_server = [\"10.0.0.1\"] x\n",
            // Errors the toml crate must still see: a bad escape, a control
            // character in a comment, a lone carriage return.
            "[peers]\nbackup_server = [\"10.0.0.1\\q\"]\n",
            "[peers]\nbackup_server = [\"10.0.0.1\", # \u{1}\n]\n",
            "[peers]\nbackup_server = [\"10.0.0.1\",\r \"10.0.0.2\"]\n",
        ] {
            let b = extract(text);
            assert!(b.text.is_none() && b.lists.is_empty(), "{text:?}");
        }
    }

    /// Pieces of configuration files, valid and not.
    const LINES: &[&str] = &[
        "roles = [\"veeam-data-mover\"]",
        "roles = [\"veeam-data-mover\", \"evault-agent\"]",
        "[peers]",
        "[ peers ] # peers",
        "[\"peers\"]",
        "[peers.x]",
        "[settings]",
        "[[allow]]",
        "direction = \"in\"\nproto = \"tcp\"\nports = [\"22\"]\ncomment = \"ssh\"",
        "private_interfaces = [\"eth1\"]",
        "peers.backup_server = [\"10.0.0.3\"]",
        "backup_server = \"10.0.0.1\"",
        "backup_server = [",
        "vault = [",
        "evault_vault = [",
        "backup_servers = [",
        "]",
        "],",
        "] # end",
        "] x",
        "\"10.0.0.10\",",
        "'10.0.0.11/32',",
        "\"fd00::1\"",
        "\"10.0.0.300\",",
        "\"not an address\",",
        "\"10.0.0.1\\q\",",
        "1,",
        "{ a = 1 },",
        "\"\"\"10.0.0.1\"\"\",",
        "# a comment",
        "# \u{1}",
        "  ",
        "\r",
        "= =",
        "veeam_data_range = \"legacy\"",
    ];

    /// Items of a peer list, valid and not.
    const ITEMS: &[&str] = &[
        "\"10.0.0.10\"",
        "'10.0.0.11/32'",
        "\"fd00::1\"",
        "\"192.0.2.0/24\"",
        "\"10.0.0.300\"",
        "\"not an address\"",
        "\"10.0.0.1\\q\"",
        "\"\\u0031\\u0030.0.0.12\"",
        "1",
        "{ a = 1 }",
        "\"\"\"10.0.0.1\"\"\"",
    ];
    /// What may stand between items (before the comma, after it).
    const GAPS: &[&str] = &["", " ", "\n  ", " # note\n", "\n# \u{1}\n", "\r", "\n\n"];
    const HEADERS: &[&str] = &[
        "[peers]",
        "[[allow]]",
        "[ peers ] # peers",
        "[[ allow ]] # allow",
        "[\"peers\"]",
        "[peers.x]",
        "[peers] x",
        "[settings]",
        "[ [allow] ]",
        "[[allow.x]]",
        "[[peers]]",
    ];
    const GROUPS: &[&str] = &[
        "backup_server",
        "vault",
        "from",
        "to",
        "interfaces",
        "backup_servers",
        "\"backup_server\"",
        "a.b",
    ];
    const TRAILERS: &[&str] = &["", " # end", " x", ",", " ]"];

    /// One table: a header and its lists (and, for an allow entry, the
    /// keys it needs).
    fn section() -> impl Strategy<Value = String> {
        let list = (
            prop::sample::select(GROUPS_W),
            proptest::collection::vec(
                (prop::sample::select(ITEMS_W), 0..GAPS.len(), 0..GAPS.len()),
                0..6,
            ),
            any::<bool>(),
            prop::sample::select(TRAILERS_W),
        );
        (
            prop::sample::select(HEADERS_W),
            proptest::collection::vec(list, 0..4),
        )
            .prop_map(|(header, lists)| {
                let mut t = format!("{}\n", HEADERS[header]);
                if HEADERS[header].contains("allow") {
                    t.push_str("proto = \"tcp\"\nports = [\"22\"]\ncomment = \"ssh\"\n");
                }
                for (g, items, trailing, trailer) in lists {
                    t.push_str(GROUPS[g]);
                    t.push_str(" = [");
                    for (k, (item, a, b)) in items.iter().enumerate() {
                        t.push_str(GAPS[*a]);
                        t.push_str(ITEMS[*item]);
                        t.push_str(GAPS[*b]);
                        if k + 1 < items.len() || trailing {
                            t.push(',');
                        }
                    }
                    t.push(']');
                    t.push_str(TRAILERS[trailer]);
                    t.push('\n');
                }
                t
            })
    }

    /// A configuration around peer lists: mostly valid, with the
    /// variations above.
    fn config() -> impl Strategy<Value = String> {
        (any::<bool>(), proptest::collection::vec(section(), 0..5)).prop_map(
            |(settings, sections)| {
                let mut t = String::from("roles = [\"veeam-data-mover\", \"evault-agent\"]\n");
                if settings {
                    t.push_str("[settings]\nveeam_data_range = \"legacy\"\n");
                }
                t.extend(sections);
                t
            },
        )
    }

    /// Indexes, weighted towards the valid choices (listed first).
    const ITEMS_W: &[usize] = &[0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const HEADERS_W: &[usize] = &[0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const GROUPS_W: &[usize] = &[0, 0, 1, 2, 2, 3, 3, 4, 5, 6, 7];
    const TRAILERS_W: &[usize] = &[0, 0, 0, 0, 1, 1, 2, 3, 4];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Reading peer lists ahead changes no outcome: the same
        /// configuration, or the same errors at the same places.
        #[test]
        fn reading_ahead_changes_no_outcome(text in config()) {
            prop_assert_eq!(outcome(&text, true), outcome(&text, false), "{:?}", text);
        }

        /// The same for lines in any order, valid or not.
        #[test]
        fn reading_ahead_changes_no_outcome_of_any_lines(
            picks in proptest::collection::vec((0..LINES.len(), 0..3usize), 0..24)
        ) {
            let mut text = String::new();
            for (i, sep) in picks {
                text.push_str(LINES[i]);
                text.push_str(["\n", " ", "\n\n"][sep]);
            }
            prop_assert_eq!(outcome(&text, true), outcome(&text, false), "{:?}", text);
        }
    }
}
