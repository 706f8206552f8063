//! The catalog against the vendor documents it comes from: the project's
//! seed documents, copied to `tests/fixtures/seeds/` (public vendor pages,
//! given to the project for this purpose) so that this runs on a clean
//! clone.
//!
//! - Every citation that names seed lines: the document has a seed file,
//!   the lines exist, each names at least one of the requirement's ports,
//!   and together they name all of them and its protocol.
//! - Coverage: every row of the seeds (a line naming TCP, UDP or ICMP, or
//!   a list item ending in a port) is claimed by some requirement or listed
//!   once, with its reason, in `tests/fixtures/seeds/out-of-scope.toml`
//!   (rows about Windows-only components and the like), never both.

use portwarden::catalog::{Catalog, Proto, Requirement, SeedLines, SourceRef};
use portwarden::ports::PortSet;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds")
}

/// A seed file's lines, by file name (read once).
struct Seeds(BTreeMap<String, Vec<String>>);

impl Seeds {
    fn read() -> Seeds {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(seeds_dir()).expect("tests/fixtures/seeds") {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "txt") {
                let text = std::fs::read_to_string(&path).unwrap();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                out.insert(name, text.split('\n').map(String::from).collect());
            }
        }
        assert!(
            !out.is_empty(),
            "no seed files in {}",
            seeds_dir().display()
        );
        Seeds(out)
    }

    fn line(&self, seed: &str, n: u32) -> Option<&str> {
        self.0
            .get(seed)?
            .get(usize::try_from(n).ok()?.checked_sub(1)?)
            .map(String::as_str)
    }
}

/// Whether `word` occurs in `text` not inside a longer word.
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// The numbers of a line, and its ranges written `a to b` or `a-b`.
fn numbers(text: &str) -> (BTreeSet<u32>, BTreeSet<(u32, u32)>) {
    let mut nums: Vec<(usize, usize, u32)> = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if let Ok(n) = text[s..i].parse() {
                nums.push((s, i, n));
            }
        } else {
            i += 1;
        }
    }
    let mut ranges = BTreeSet::new();
    for w in nums.windows(2) {
        let between = text[w[0].1..w[1].0].trim();
        if between == "-" || between == "to" {
            ranges.insert((w[0].2, w[1].2));
        }
    }
    (nums.into_iter().map(|n| n.2).collect(), ranges)
}

/// Whether a line names a port range: the range as written, or (for a
/// short one such as 8086-8087) each of its ports.
fn names_range(line: &str, first: u16, last: u16) -> bool {
    let (nums, ranges) = numbers(line);
    let (a, b) = (u32::from(first), u32::from(last));
    ranges.contains(&(a, b)) || (b - a < 10 && (a..=b).all(|p| nums.contains(&p)))
}

/// Whether a line names a range or, for a short one, one of its ports
/// (the AMP proxy rows give 8087 of 8086-8087).
fn names_part(line: &str, first: u16, last: u16) -> bool {
    let (nums, _) = numbers(line);
    names_range(line, first, last)
        || (last - first < 10 && (first..=last).any(|p| nums.contains(&u32::from(p))))
}

/// The ports a citation must name: each alternative, the fixed ports, or
/// the default variant of the port set.
fn wanted_ports(cat: &Catalog, r: &Requirement) -> PortSet {
    let variants = cat.port_variants(r);
    variants
        .iter()
        .find(|v| v.default)
        .map(|v| v.ports.clone())
        .unwrap_or_default()
}

fn lines_of(c: &SourceRef) -> Vec<u32> {
    c.lines
        .as_ref()
        .map_or_else(Vec::new, |l| l.get_ref().iter().collect())
}

/// Every requirement's seed citations: (role, requirement, citation).
fn seed_citations(cat: &Catalog) -> Vec<(String, &Requirement, &SourceRef, String)> {
    let mut out = Vec::new();
    for role in cat.roles() {
        for r in &role.requirements {
            for c in r.citations() {
                let doc = cat.source(c.doc.get_ref()).expect("validated");
                if let (Some(seed), Some(_)) = (&doc.seed, &c.lines) {
                    out.push((role.id().to_string(), r, c, seed.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn every_seed_citation_names_lines_that_say_its_ports_and_protocol() {
    let cat = Catalog::builtin().unwrap();
    let seeds = Seeds::read();
    let mut bad = Vec::new();
    let cited = seed_citations(&cat);
    assert!(cited.len() > 50, "only {} seed citations", cited.len());
    for (role, r, c, seed) in &cited {
        let who = format!("{role}/{} ({seed})", r.id());
        if !seeds.0.contains_key(seed.as_str()) {
            bad.push(format!(
                "{who}: no seed file {seed} in tests/fixtures/seeds"
            ));
            continue;
        }
        let ports = wanted_ports(&cat, r);
        assert!(!ports.is_empty(), "{who}: no ports");
        let mut text = String::new();
        for n in lines_of(c) {
            let Some(line) = seeds.line(seed, n) else {
                bad.push(format!("{who}: line {n} does not exist"));
                continue;
            };
            if !ports
                .ranges()
                .iter()
                .any(|p| names_part(line, p.first(), p.last()))
            {
                bad.push(format!(
                    "{who}: line {n} names none of ports {ports}: {line:.120}"
                ));
            }
            text.push_str(line);
            text.push('\n');
        }
        for p in ports.ranges() {
            if !text.lines().any(|l| names_range(l, p.first(), p.last())) {
                bad.push(format!("{who}: the lines never name port {p}"));
            }
        }
        let proto = match r.proto {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        };
        if !has_word(&text, proto) {
            bad.push(format!("{who}: the lines never name {proto}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn seed_lines_of_settings_port_sets_and_peer_groups_exist_and_name_their_ports() {
    let cat = Catalog::builtin().unwrap();
    let seeds = Seeds::read();
    let mut checked = 0;
    // (what, citation, port variants to find, prefixes to find)
    let mut cites: Vec<(String, &SourceRef, Vec<PortSet>, Vec<String>)> = Vec::new();
    for (name, def) in cat.port_sets() {
        if let Some(s) = &def.source {
            let variants = def.values.values().map(|l| l.to_set()).collect();
            cites.push((format!("port set {name}"), s, variants, Vec::new()));
        }
    }
    for (name, def) in cat.settings() {
        if let Some(s) = &def.source {
            cites.push((format!("setting {name}"), s, Vec::new(), Vec::new()));
        }
    }
    for (name, g) in cat.peer_groups() {
        if let Some(s) = &g.source {
            // The vendor's minimum prefixes are quoted from the document.
            let minimum = g.minimum.iter().map(ToString::to_string).collect();
            cites.push((format!("peer group {name}"), s, Vec::new(), minimum));
        }
    }
    for (who, c, variants, prefixes) in cites {
        let Some(lines) = &c.lines else { continue };
        let seed = cat
            .source(c.doc.get_ref())
            .and_then(|d| d.seed.clone())
            .expect("validated: lines only for a seed document");
        let text: Vec<&str> = lines
            .get_ref()
            .iter()
            .map(|n| {
                seeds
                    .line(&seed, n)
                    .unwrap_or_else(|| panic!("{who}: {seed} has no line {n}"))
            })
            .collect();
        for ports in variants {
            for p in ports.ranges() {
                assert!(
                    text.iter().any(|l| names_range(l, p.first(), p.last())),
                    "{who}: {seed} lines {} never name {p}",
                    lines.get_ref()
                );
            }
        }
        for net in prefixes {
            assert!(
                text.iter().any(|l| l.contains(&net)),
                "{who}: {seed} lines {} never name {net}",
                lines.get_ref()
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "{checked} citations with lines");
}

/// The row lines of a seed: a line naming TCP, UDP or ICMP, or a list item
/// ending in a number (the older EVault page lists hosts with their ports).
fn rows(lines: &[String]) -> BTreeSet<u32> {
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            let item = (t.starts_with("- ") || t.starts_with("* "))
                && t.trim_end_matches('`')
                    .ends_with(|c: char| c.is_ascii_digit());
            item || ["TCP", "UDP", "ICMP"].iter().any(|w| has_word(l, w))
        })
        .map(|(i, _)| u32::try_from(i + 1).unwrap())
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutOfScope {
    row: Vec<OutRow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutRow {
    seed: String,
    lines: SeedLines,
    reason: String,
}

/// Unclaimed rows, as `seed:line: text`; panics on a list that is not
/// honest (a row listed out of scope and claimed, listed twice, or not a row).
fn unclaimed() -> Vec<String> {
    let cat = Catalog::builtin().unwrap();
    let seeds = Seeds::read();
    let mut claimed: BTreeSet<(String, u32)> = BTreeSet::new();
    for (_, _, c, seed) in seed_citations(&cat) {
        for n in lines_of(c) {
            claimed.insert((seed.clone(), n));
        }
    }
    let text = std::fs::read_to_string(seeds_dir().join("out-of-scope.toml")).unwrap();
    let out: OutOfScope = toml::from_str(&text).unwrap();
    let mut listed: BTreeMap<(String, u32), &str> = BTreeMap::new();
    for o in &out.row {
        let lines = seeds
            .0
            .get(&o.seed)
            .unwrap_or_else(|| panic!("out-of-scope.toml: no seed {}", o.seed));
        assert!(!o.reason.trim().is_empty(), "{}: empty reason", o.seed);
        let rs = rows(lines);
        for n in o.lines.iter() {
            let key = (o.seed.clone(), n);
            assert!(
                rs.contains(&n),
                "out-of-scope.toml: {}:{n} is not a row",
                o.seed
            );
            assert!(
                !claimed.contains(&key),
                "out-of-scope.toml: {}:{n} is claimed by a requirement",
                o.seed
            );
            assert!(
                listed.insert(key, &o.reason).is_none(),
                "out-of-scope.toml: {}:{n} listed twice",
                o.seed
            );
        }
    }
    let mut missing = Vec::new();
    for (seed, lines) in &seeds.0 {
        for n in rows(lines) {
            let key = (seed.clone(), n);
            if !claimed.contains(&key) && !listed.contains_key(&key) {
                let line = &lines[usize::try_from(n).unwrap() - 1];
                missing.push(format!("{seed}:{n}: {line:.140}"));
            }
        }
    }
    missing
}

#[test]
fn every_seed_row_is_claimed_by_a_requirement_or_listed_out_of_scope() {
    let missing = unclaimed();
    assert!(
        missing.is_empty(),
        "{} seed rows no requirement claims and out-of-scope.toml does not list:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

#[test]
fn the_row_finder_and_the_port_matcher_see_what_they_should() {
    // A table row, a list item without a protocol, prose without ports.
    let lines: Vec<String> = [
        "| SP CDP proxy | TCP | 33032, 33033 | Default ports |",
        "- evwebamp0901.service.softlayer.com [10.2.118.12] 8087",
        "Port numbers in computer networking represent communication endpoints.",
        "The TCPIP stack",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(rows(&lines), BTreeSet::from([1, 2]));
    assert!(names_range(&lines[0], 33032, 33033));
    assert!(!names_range(&lines[0], 33032, 33034));
    assert!(names_range("TCP | 2500 to 3300 | Default", 2500, 3300));
    assert!(names_range("TCP | 2500-3300 | Default", 2500, 3300));
    assert!(!names_range("TCP | 2500 to 5000 | Default", 2500, 3300));
    assert!(!names_range("TCP | 16162 |", 6162, 6162));
    assert!(names_part("[10.2.118.12] TCP 8087", 8086, 8087));
    assert!(!names_part("TCP | 22 2500 | helper", 2500, 3300));
    assert!(has_word("TCP/HTTPS | 9440", "TCP"));
    assert!(!has_word("The TCPIP stack", "TCP"));
}

#[test]
fn the_seed_copies_are_unchanged() {
    // SHA256SUMS was made from the project's seed documents when they were
    // copied; an edit of a copy would let the catalog drift with it.
    let out = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(seeds_dir())
        .output()
        .expect("run sha256sum");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = std::fs::read_to_string(seeds_dir().join("SHA256SUMS")).unwrap();
    assert_eq!(listed.lines().count(), Seeds::read().0.len());
}
