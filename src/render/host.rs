//! The host part of `portwarden dump`'s text: a line per interface, the
//! number of routes per table, and the policy routing rules as `ip rule`
//! lists them.

use crate::host::{Routes, Rule, RT_TABLE_MAIN};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The text: interfaces with their IPv4 addresses, routes per table,
/// rules of each family (the kernel's defaults are said so when none were
/// read).
pub fn host_summary(r: &Routes) -> String {
    let mut s = String::from("host:\n");
    for i in &r.interfaces {
        let addrs: Vec<String> = i.addrs.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "  interface {} ({}): {}",
            i.name,
            i.index,
            addrs.join(" ")
        );
    }
    let mut tables: BTreeMap<u32, usize> = BTreeMap::new();
    for route in &r.routes {
        *tables.entry(route.table).or_default() += 1;
    }
    for (t, n) in &tables {
        let name = if *t == RT_TABLE_MAIN {
            "main".to_string()
        } else {
            t.to_string()
        };
        let _ = writeln!(s, "  table {name}: {n} routes");
    }
    for (v6, fam) in [(false, "ip rule"), (true, "ip -6 rule")] {
        let rules: Vec<&Rule> = r.rules.iter().filter(|x| x.v6 == v6).collect();
        if rules.is_empty() {
            let _ = writeln!(s, "  {fam}: none read (the kernel's defaults)");
            continue;
        }
        let _ = writeln!(s, "  {fam}:");
        for x in rules {
            let _ = writeln!(s, "    {x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::RuleAction;

    #[test]
    fn host_summary_lists_rules_and_tables() {
        let mut r = crate::eval::testkit::topology();
        r.routes
            .push(crate::host::Route::via("0.0.0.0/0", "pw-pub").in_table(100));
        let mut p = Rule::new(false, 100, RuleAction::Prohibit);
        p.from = Some("10.0.0.10/32".parse().unwrap());
        r.rules = vec![p];
        let s = host_summary(&r);
        assert!(s.contains("  interface pw-pub (2): 192.0.2.1/24"), "{s}");
        assert!(
            s.contains("  table 100: 1 routes\n  table main: 1 routes\n"),
            "{s}"
        );
        assert!(
            s.contains("  ip rule:\n    100: from 10.0.0.10 prohibit\n"),
            "{s}"
        );
        assert!(
            s.contains("  ip -6 rule: none read (the kernel's defaults)"),
            "{s}"
        );
    }
}
