//! The files in `dist/` generated from the clap definitions: the manual page
//! `portwarden(8)` (clap_mangen) and the bash, zsh and fish completions
//! (clap_complete). The tests here fail when a committed file differs from
//! what the definitions give; `PW_UPDATE_GENERATED=1 cargo test --bin
//! portwarden dist::` rewrites them.
//!
//! The manual is one page: clap_mangen's NAME, SYNOPSIS, DESCRIPTION and
//! OPTIONS of `portwarden`, then a COMMANDS section with one subsection per
//! command (its synopsis, description, options, examples and exit codes),
//! then the hand-written sections in [`TAIL`].

use clap_complete::Shell;
use clap_mangen::Man;
use roff::{bold, roman, Roff};
use std::io;

/// Where the manual page is shipped, from the crate root.
pub const MAN_PAGE: &str = "dist/man/portwarden.8";

/// Where each shell's completions are shipped, from the crate root.
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "dist/completions/portwarden.bash"),
    (Shell::Zsh, "dist/completions/_portwarden"),
    (Shell::Fish, "dist/completions/portwarden.fish"),
];

/// The sections after COMMANDS, written by hand.
const TAIL: &str = include_str!("dist.8.tail");

/// Lines every roff rendering starts with (a `\*(Aq` for apostrophes);
/// kept once, at the top.
fn strip_preamble(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with(".ie \\n(.g .ds Aq") && !l.starts_with(".el .ds Aq"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn rendered(f: impl FnOnce(&mut dyn io::Write) -> io::Result<()>) -> String {
    let mut buf = Vec::new();
    f(&mut buf).expect("rendering into memory");
    strip_preamble(&String::from_utf8(buf).expect("roff is UTF-8"))
}

/// A section's body without its `.SH` heading lines.
fn without_headings(s: String) -> String {
    s.lines()
        .filter(|l| !l.starts_with(".SH "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `after_help` text as roff: paragraphs at blank lines; indented lines
/// (examples, exit codes) kept as they are, unfilled.
fn after_help(text: &str) -> String {
    let mut roff = Roff::new();
    for para in text.split("\n\n") {
        let lines: Vec<&str> = para.lines().collect();
        let Some((first, rest)) = lines.split_first() else {
            continue;
        };
        roff.control("PP", []);
        if *first == "Exit codes:" {
            // `  CODE  meaning` lines: a tagged list, wrapped to the page.
            roff.text([roman(*first)]);
            roff.control("RS", []).control("PD", ["0"]);
            for l in rest {
                let (code, meaning) = l.trim().split_once(' ').unwrap_or((l.trim(), ""));
                roff.control("TP", ["5"]);
                roff.text([bold(code)]);
                roff.text([roman(meaning.trim())]);
            }
            roff.control("PD", []).control("RE", []);
        } else if rest.iter().any(|l| l.starts_with(' ')) {
            roff.text([roman(*first)]);
            roff.control("RS", []).control("nf", []);
            for l in rest {
                roff.text([roman(l.trim_start())]);
            }
            roff.control("fi", []).control("RE", []);
        } else {
            for l in &lines {
                roff.text([roman(*l)]);
            }
        }
    }
    strip_preamble(&roff.render())
}

/// One command's subsection (and its own commands', after it).
fn command_section(out: &mut String, parent: &str, sub: &clap::Command) {
    let name = format!("{parent} {}", sub.get_name());
    let mut roff = Roff::new();
    roff.control("SS", [name.as_str()]);
    out.push_str(&strip_preamble(&roff.render()));
    let man = Man::new(sub.clone().bin_name(&name));
    out.push_str(&without_headings(rendered(|w| {
        man.render_synopsis_section(w)
    })));
    out.push_str(".PP\n");
    out.push_str(&without_headings(rendered(|w| {
        man.render_description_section(w)
    })));
    if sub.get_arguments().any(|a| !a.is_hide_set()) {
        out.push_str(&without_headings(rendered(|w| {
            man.render_options_section(w)
        })));
    }
    if let Some(text) = sub.get_after_long_help().or(sub.get_after_help()) {
        out.push_str(&after_help(&text.to_string()));
    }
    for nested in visible_commands(sub) {
        command_section(out, &name, nested);
    }
}

fn visible_commands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

/// The page's DESCRIPTION (the command's own `about` is one line).
const DESCRIPTION: &str = "\
portwarden reads the nftables ruleset the kernel is actually enforcing, over \
netlink, with the host's interfaces, routes and listening sockets, and says \
what it means for the backup roles the host declares (Veeam Backup & \
Replication components, the EVault / IBM Cloud Backup agent): openings that \
are missing or only partly there, openings nothing asks for, listeners \
reachable from where they should not be, required services not listening and \
outbound connections that are blocked. Every finding comes with its evidence \
(the deciding rule or policy, the socket and its owner) and, where one can be \
proven safe, the nft command that fixes it. portwarden itself never changes \
the firewall.

The roles, their peers and the host's settings are read from \
/etc/portwarden/portwarden.toml (see portwarden.toml(5)). `portwarden audit` \
audits once; `portwarden daemon` runs as a systemd service, follows every \
change and alerts in the journal; `portwarden status` reads its last report.

Output goes to stdout, errors and warnings to stderr (one line each); \
--json prints one JSON document on one line. A closed pipe (| head) ends any \
command quietly, with exit 0.";

/// The manual page `portwarden(8)` of `cmd` (the CLI as `main` builds it).
pub fn man_page(cmd: clap::Command) -> String {
    let mut cmd = cmd.disable_help_subcommand(true).long_about(DESCRIPTION);
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let man = Man::new(cmd.clone())
        .title("PORTWARDEN")
        .section("8")
        .source(format!("portwarden {version}"))
        .manual("System Administration");
    let mut out = String::from(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n");
    out.push_str(&rendered(|w| man.render_title(w)));
    // Identifiers (PORTWARDEN_UNIT, report_path) are not to be hyphenated.
    out.push_str(".nh\n.ad l\n");
    out.push_str(&rendered(|w| man.render_name_section(w)));
    out.push_str(&rendered(|w| man.render_synopsis_section(w)));
    out.push_str(&rendered(|w| man.render_description_section(w)));
    out.push_str(&rendered(|w| man.render_options_section(w)));
    out.push_str(".SH COMMANDS\n");
    for sub in visible_commands(&cmd) {
        command_section(&mut out, "portwarden", sub);
    }
    if let Some(text) = cmd.get_after_help() {
        out.push_str(".SH \"EXIT STATUS\"\n");
        out.push_str(&after_help(&text.to_string()));
    }
    out.push_str(TAIL);
    out
}

/// `shell`'s completion script for `cmd`.
pub fn completion(cmd: clap::Command, shell: Shell) -> String {
    let mut cmd = cmd;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "portwarden", &mut buf);
    String::from_utf8(buf).expect("completions are UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Compares a generated file with the shipped one; rewrites it with
    /// `PW_UPDATE_GENERATED=1`.
    fn check_shipped(path: &str, generated: &str) {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        if std::env::var_os("PW_UPDATE_GENERATED").is_some_and(|v| v == "1") {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, generated).unwrap();
            return;
        }
        let shipped = std::fs::read_to_string(&full).unwrap_or_default();
        if shipped != generated {
            let line = shipped
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| shipped.lines().count().min(generated.lines().count()));
            panic!(
                "{path} is stale: it differs from what the clap definitions in src/main.rs \
                 generate (first at line {}). Regenerate it with \
                 `PW_UPDATE_GENERATED=1 cargo test --bin portwarden dist::` and commit it.",
                line + 1
            );
        }
    }

    #[test]
    fn dist_man_page_is_current() {
        check_shipped(MAN_PAGE, &man_page(crate::command()));
    }

    #[test]
    fn dist_completions_are_current() {
        for (shell, path) in COMPLETIONS {
            check_shipped(path, &completion(crate::command(), shell));
        }
    }

    /// Every visible command and option is in the page, and no command
    /// points to a page of its own (there is only portwarden(8)).
    #[test]
    fn dist_man_page_covers_every_command_and_option() {
        let page = man_page(crate::command());
        let mut cmd = crate::command();
        cmd.build();
        for sub in visible_commands(&cmd) {
            let name = format!(".SS \"portwarden {}\"", sub.get_name());
            assert!(page.contains(&name), "{name} missing");
            for a in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = a.get_long() {
                    let long = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(page.contains(&long), "{} {long} missing", sub.get_name());
                }
            }
        }
        assert!(!page.contains("portwarden\\-audit(8)"));
        assert!(page.contains(".SH \"SEE ALSO\""));
    }

    /// Both shipped pages render with `man --warnings` (groff's) at 80
    /// columns without a single warning.
    #[test]
    fn dist_man_pages_render_without_warnings() {
        let has_man = std::process::Command::new("man")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_man {
            eprintln!(
                "SKIPPED dist_man_pages_render_without_warnings: no man (install man-db and \
                 groff-base: scripts/install-deps)"
            );
            return;
        }
        for page in [MAN_PAGE, "dist/man/portwarden.toml.5"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(page);
            let out = std::process::Command::new("man")
                .args(["--warnings", "-l"])
                .arg(&path)
                .env("MANWIDTH", "80")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .output()
                .expect("run man");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{page}: {out:?}");
            assert!(
                out.stderr.is_empty(),
                "{page}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("SEE ALSO"), "{page} rendered to:\n{text}");
        }
    }

    /// The shipped bash completion, sourced into a real bash, completes
    /// commands, options and option values.
    #[test]
    fn dist_bash_completion_completes() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(COMPLETIONS[0].1);
        let complete = |words: &str| {
            let prog = format!(
                "source \"$0\"; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _portwarden portwarden \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[*]}}\""
            );
            let out = std::process::Command::new("bash")
                .args(["-c", &prog])
                .arg(&script)
                .output()
                .expect("bash");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        assert_eq!(complete("portwarden au"), "audit");
        assert_eq!(complete("portwarden check-config --off"), "--offline");
        assert_eq!(complete("portwarden audit --format ''"), "text json");
        assert_eq!(complete("portwarden catalog se"), "settings");
    }

    /// Each completion script knows every command.
    #[test]
    fn dist_completions_know_every_command() {
        let mut cmd = crate::command();
        cmd.build();
        for (shell, _) in COMPLETIONS {
            let script = completion(crate::command(), shell);
            for sub in visible_commands(&cmd) {
                assert!(
                    script.contains(sub.get_name()),
                    "{shell}: {}",
                    sub.get_name()
                );
            }
        }
    }
}
