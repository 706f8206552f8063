//! Reading the legacy iptables and ip6tables tables (x_tables) of the
//! current network namespace, the way `iptables-legacy-save` does: the
//! table names from `/proc/net/ip_tables_names` (and `ip6_tables_names`),
//! then each table's info and entries by get-sockopt ([`super::sys::xtables`]).
//!
//! The entries are decoded only as far as their layout: which entries
//! belong to which built-in chain, the policies, the user chains. Matches
//! and targets of rules are not decoded (yet).

use super::sys::xtables::{self, GetInfo, NUMHOOKS};
use crate::snapshot::legacy::{
    hook_of, priority, LegacyChain, LegacyContents, LegacyFamily, LegacyTable, LegacyUnlisted,
    LegacyUserChain,
};
use crate::snapshot::Policy;
use std::io;

/// The legacy tables of the current network namespace, IPv4 first, and
/// why a family's tables could not be listed. A family whose names file is
/// missing (its module not loaded) has none. A table the kernel lists but
/// will not give is kept as [`LegacyContents::Unreadable`]. Only listed
/// tables are asked for: asking for another would create it.
pub fn read_legacy() -> (Vec<LegacyTable>, Vec<LegacyUnlisted>) {
    let mut out = Vec::new();
    let mut unlisted = Vec::new();
    for family in [LegacyFamily::Ipv4, LegacyFamily::Ipv6] {
        let file = match family {
            LegacyFamily::Ipv4 => "/proc/net/ip_tables_names",
            LegacyFamily::Ipv6 => "/proc/net/ip6_tables_names",
        };
        let names = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                unlisted.push(LegacyUnlisted {
                    family,
                    reason: format!("reading {file}: {e}"),
                });
                continue;
            }
        };
        let mut names: Vec<&str> = names
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        names.sort_unstable();
        for name in names {
            let contents = match xtables::entries(family.is_v6(), name) {
                Ok((info, bytes)) => match decode(family, name, &info, &bytes) {
                    Ok(c) => c,
                    Err(e) => LegacyContents::Unreadable {
                        reason: format!("unexpected entries: {e}"),
                    },
                },
                Err(e) => LegacyContents::Unreadable {
                    reason: e.to_string(),
                },
            };
            out.push(LegacyTable {
                family,
                name: name.to_string(),
                contents,
            });
        }
    }
    (out, unlisted)
}

/// Offsets inside `struct ipt_entry` / `ip6t_entry` (the same on every
/// architecture: they precede the `u64` counters): `target_offset` and
/// `next_offset`, and the size of the entry header (where matches start).
#[derive(Clone, Copy)]
struct Layout {
    target_offset_at: usize,
    min_size: usize,
}

const IPV4: Layout = Layout {
    target_offset_at: 88,
    // ipt_ip (84) + nfcache + offsets + comefrom + counters (16).
    min_size: 96 + 16,
};
const IPV6: Layout = Layout {
    target_offset_at: 140,
    // ip6t_ip6 (136) + nfcache + offsets + comefrom, then the counters
    // (at 148 or, with 8-byte alignment of u64, 152).
    min_size: 148 + 16,
};

/// `struct xt_entry_target`'s user header: size, name[29], revision.
const TARGET_HDR: usize = 32;
/// `XT_RETURN`: `-NF_REPEAT - 1`.
const VERDICT_RETURN: i32 = -5;

/// One entry, by its place.
struct Entry<'a> {
    offset: usize,
    target_name: &'a [u8],
    target_data: &'a [u8],
}

/// Why the entries do not make sense.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadEntries(String);

fn bad<T>(s: impl Into<String>) -> Result<T, BadEntries> {
    Err(BadEntries(s.into()))
}

/// Splits the entries, checking every offset.
fn entries(layout: Layout, bytes: &[u8]) -> Result<Vec<Entry<'_>>, BadEntries> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let e = &bytes[at..];
        if e.len() < layout.min_size {
            return bad(format!("entry at {at} is cut short"));
        }
        let u16_at = |i: usize| usize::from(u16::from_ne_bytes([e[i], e[i + 1]]));
        let target_offset = u16_at(layout.target_offset_at);
        let next_offset = u16_at(layout.target_offset_at + 2);
        if next_offset < layout.min_size || next_offset > e.len() || next_offset % 4 != 0 {
            return bad(format!("entry at {at} has next_offset {next_offset}"));
        }
        if target_offset < layout.min_size || target_offset + TARGET_HDR > next_offset {
            return bad(format!("entry at {at} has target_offset {target_offset}"));
        }
        let t = &e[target_offset..next_offset];
        let target_size = usize::from(u16::from_ne_bytes([t[0], t[1]]));
        if target_size < TARGET_HDR || target_size > t.len() {
            return bad(format!("entry at {at} has target size {target_size}"));
        }
        let name = &t[2..31];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        out.push(Entry {
            offset: at,
            target_name: name,
            target_data: &t[TARGET_HDR..target_size],
        });
        at += next_offset;
    }
    Ok(out)
}

/// A standard target's verdict (`XT_STANDARD_TARGET` is the empty name).
fn standard_verdict(e: &Entry<'_>) -> Option<i32> {
    (e.target_name.is_empty() && e.target_data.len() >= 4)
        .then(|| i32::from_ne_bytes(e.target_data[..4].try_into().expect("4 bytes")))
}

/// The chains of a table from its info and entries.
pub fn decode(
    family: LegacyFamily,
    table: &str,
    info: &GetInfo,
    bytes: &[u8],
) -> Result<LegacyContents, BadEntries> {
    let layout = if family.is_v6() { IPV6 } else { IPV4 };
    if bytes.len() != info.size as usize {
        return bad(format!(
            "{} bytes of entries, info says {}",
            bytes.len(),
            info.size
        ));
    }
    let list = entries(layout, bytes)?;
    if list.len() != info.num_entries as usize {
        return bad(format!(
            "{} entries, info says {}",
            list.len(),
            info.num_entries
        ));
    }
    let index_of = |off: u32| list.iter().position(|e| e.offset == off as usize);
    let mut chains = Vec::new();
    for h in 0..NUMHOOKS {
        if info.valid_hooks & (1 << h) == 0 {
            continue;
        }
        let Some((hook, name)) = hook_of(h) else {
            return bad(format!("hook {h}"));
        };
        let (Some(first), Some(under)) =
            (index_of(info.hook_entry[h]), index_of(info.underflow[h]))
        else {
            return bad(format!("{name}: its entry offsets are not entries"));
        };
        if under < first {
            return bad(format!("{name}: its policy comes before its first rule"));
        }
        let policy = match standard_verdict(&list[under]) {
            Some(-1) => Policy::Drop,
            Some(-2) => Policy::Accept,
            v => return bad(format!("{name}: policy entry with verdict {v:?}")),
        };
        chains.push(LegacyChain {
            name: name.to_string(),
            hook,
            priority: priority(table, hook),
            rules: (under - first) as u32,
            policy,
        });
    }
    // User chains: an ERROR target named for the chain starts each, a
    // RETURN ends it; the last entry is the ERROR target named "ERROR".
    let mut user_chains: Vec<LegacyUserChain> = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (i, e) in list.iter().enumerate() {
        if e.target_name != b"ERROR" {
            continue;
        }
        let d = e.target_data;
        let label =
            String::from_utf8_lossy(&d[..d.iter().position(|&b| b == 0).unwrap_or(d.len())]);
        if let Some((name, start)) = open.take() {
            // Entries between the head and this one: rules, then the RETURN.
            let ends_with_return =
                i > start + 1 && standard_verdict(&list[i - 1]) == Some(VERDICT_RETURN);
            if !ends_with_return {
                return bad(format!("user chain {name} does not end with RETURN"));
            }
            user_chains.push(LegacyUserChain {
                name,
                rules: (i - start - 2) as u32,
            });
        }
        if label != "ERROR" {
            open = Some((label.into_owned(), i));
        } else if i + 1 != list.len() {
            return bad("the ERROR entry is not the last");
        }
    }
    if open.is_some() || list.last().map(|e| e.target_name) != Some(b"ERROR".as_slice()) {
        return bad("the entries do not end with the ERROR entry");
    }
    Ok(LegacyContents::Read {
        entries: info.num_entries,
        chains,
        user_chains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(valid_hooks: u32, offsets: [u32; 10], num_entries: u32, size: u32) -> GetInfo {
        let mut hook_entry = [0; NUMHOOKS];
        let mut underflow = [0; NUMHOOKS];
        hook_entry.copy_from_slice(&offsets[..5]);
        underflow.copy_from_slice(&offsets[5..]);
        GetInfo {
            name: [0; xtables::TABLE_MAXNAMELEN],
            valid_hooks,
            hook_entry,
            underflow,
            num_entries,
            size,
        }
    }

    /// An IPv4 entry with a standard target of `verdict`, or an ERROR
    /// target named `error`.
    fn entry(verdict: Option<i32>, error: &str) -> Vec<u8> {
        let mut e = vec![0u8; 112];
        let target = if verdict.is_some() { 40 } else { 64 };
        e[88..90].copy_from_slice(&112u16.to_ne_bytes());
        e[90..92].copy_from_slice(&((112 + target) as u16).to_ne_bytes());
        let mut t = vec![0u8; target];
        t[..2].copy_from_slice(&(target as u16).to_ne_bytes());
        match verdict {
            Some(v) => t[32..36].copy_from_slice(&v.to_ne_bytes()),
            None => {
                t[2..7].copy_from_slice(b"ERROR");
                t[32..32 + error.len()].copy_from_slice(error.as_bytes());
            }
        }
        e.extend(t);
        e
    }

    #[test]
    fn counts_rules_policies_and_user_chains() {
        // INPUT: one rule, policy DROP; user chain FOO: one rule; ERROR.
        let parts = [
            entry(Some(-1), ""),
            entry(Some(-1), ""),
            entry(None, "FOO"),
            entry(Some(-2), ""),
            entry(Some(VERDICT_RETURN), ""),
            entry(None, "ERROR"),
        ];
        let offs: Vec<u32> = parts
            .iter()
            .scan(0u32, |at, p| {
                let o = *at;
                *at += p.len() as u32;
                Some(o)
            })
            .collect();
        let bytes = parts.concat();
        let i = info(
            1 << 1,
            [0, offs[0], 0, 0, 0, 0, offs[1], 0, 0, 0],
            6,
            bytes.len() as u32,
        );
        let c = decode(LegacyFamily::Ipv4, "filter", &i, &bytes).unwrap();
        let LegacyContents::Read {
            chains,
            user_chains,
            ..
        } = c
        else {
            panic!("{c:?}")
        };
        assert_eq!(chains.len(), 1);
        assert_eq!((chains[0].rules, chains[0].policy), (1, Policy::Drop));
        assert_eq!(user_chains[0].name, "FOO");
        assert_eq!(user_chains[0].rules, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes and any info: an answer or an error, never a panic.
        #[test]
        fn random_entries_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            hooks in 0u32..64,
            offsets in prop::array::uniform10(0u32..600),
            n in 0u32..10,
            v6 in any::<bool>(),
        ) {
            let fam = if v6 { LegacyFamily::Ipv6 } else { LegacyFamily::Ipv4 };
            let i = info(hooks, offsets, n, bytes.len() as u32);
            let _ = decode(fam, "filter", &i, &bytes);
        }
    }
}
