//! Checks of the merged catalog: every reference resolves, ids are unique and
//! well-formed, values fit their settings.

use super::{
    nearest, Catalog, Condition, Conditions, Diagnostic, DiagnosticKind as K, Origin, Requirement,
    Role, SettingValue, SourceRef,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use toml::Spanned;

/// Every problem of the catalog, in a stable order.
pub(super) fn validate(cat: &Catalog) -> Vec<Diagnostic> {
    let mut v = Validator {
        cat,
        out: Vec::new(),
    };
    for (name, s) in &cat.settings {
        v.setting(name, s);
    }
    for (name, p) in &cat.port_sets {
        v.port_set(name, p);
    }
    for g in cat.peer_groups.values() {
        if let Some(s) = &g.source {
            v.source_ref(&g.origin, s);
        }
    }
    for role in cat.roles.values() {
        v.role(role);
    }
    v.include_cycles();
    v.out
}

/// Whether `s` is a valid role or requirement id: lowercase letters, digits, dashes.
fn valid_id(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A diagnostic at `span` of the file `origin` stands for.
fn at(origin: &Origin, span: Range<usize>, kind: K, message: String) -> Diagnostic {
    Diagnostic::new(origin.locate(span), kind, message)
}

struct Validator<'a> {
    cat: &'a Catalog,
    out: Vec<Diagnostic>,
}

impl Validator<'_> {
    /// Reports `name` if it is not a key of `names`, with the nearest key.
    fn known<'n>(
        &mut self,
        origin: &Origin,
        name: &Spanned<String>,
        names: impl Iterator<Item = &'n String> + Clone,
        kind: K,
        what: &str,
    ) -> bool {
        let n = name.get_ref();
        if names.clone().any(|k| k == n) {
            return true;
        }
        let hint = nearest(n, names.map(String::as_str));
        self.out
            .push(at(origin, name.span(), kind, format!("unknown {what} `{n}`")).suggest(hint));
        false
    }

    fn source_ref(&mut self, origin: &Origin, s: &SourceRef) {
        if let (Some(lines), Some(doc)) = (&s.lines, self.cat.sources.get(s.doc.get_ref())) {
            if doc.seed.is_none() {
                self.out.push(
                    at(
                        origin,
                        lines.span(),
                        K::InvalidValue,
                        format!("`{}` has no seed to give lines of", s.doc.get_ref()),
                    )
                    .expected("lines only for a document with a `seed` in [sources]"),
                );
            }
        }
        self.known(
            origin,
            &s.doc,
            self.cat.sources.keys(),
            K::UnknownSource,
            "source document",
        );
        if s.section.trim().is_empty() {
            self.out.push(at(
                origin,
                s.doc.span(),
                K::Empty,
                format!("citation of `{}` has an empty section", s.doc.get_ref()),
            ));
        }
    }

    fn setting(&mut self, name: &str, s: &super::SettingDef) {
        let span = s.default.span();
        match s.default.get_ref() {
            SettingValue::Bool(_) if !s.values.is_empty() => {
                self.out.push(
                    at(
                        &s.origin,
                        span,
                        K::InvalidValue,
                        format!("boolean setting `{name}` cannot list `values`"),
                    )
                    .expected("a string default when `values` are given"),
                );
            }
            SettingValue::Text(_) if s.values.is_empty() => {
                self.out.push(at(
                    &s.origin,
                    span,
                    K::Empty,
                    format!("string setting `{name}` lists no `values`"),
                ));
            }
            SettingValue::Text(d) if !s.values.contains(d) => {
                let hint = nearest(d, s.values.iter().map(String::as_str));
                self.out.push(
                    at(
                        &s.origin,
                        span,
                        K::InvalidValue,
                        format!("default {d:?} of setting `{name}` is not one of its values"),
                    )
                    .suggest(hint)
                    .expected(s.values.join(", ")),
                );
            }
            _ => {}
        }
        if let Some(src) = &s.source {
            self.source_ref(&s.origin, src);
        }
    }

    fn port_set(&mut self, name: &str, p: &super::PortSetDef) {
        if let Some(src) = &p.source {
            self.source_ref(&p.origin, src);
        }
        if !self.known(
            &p.origin,
            &p.setting,
            self.cat.settings.keys(),
            K::UnknownSetting,
            "setting",
        ) {
            return;
        }
        let possible = self.cat.settings[p.setting.get_ref()].possible_values();
        for (value, ports) in &p.values {
            if !possible.contains(value.get_ref()) {
                let hint = nearest(value.get_ref(), possible.iter().map(String::as_str));
                self.out.push(
                    at(
                        &p.origin,
                        value.span(),
                        K::InvalidValue,
                        format!(
                            "`{}` is not a value of setting `{}`",
                            value.get_ref(),
                            p.setting.get_ref()
                        ),
                    )
                    .suggest(hint)
                    .expected(possible.join(", ")),
                );
            } else if ports.0.is_empty() {
                self.out.push(at(
                    &p.origin,
                    value.span(),
                    K::Empty,
                    format!("port set `{name}` lists no ports for `{}`", value.get_ref()),
                ));
            }
        }
        for value in &possible {
            if !p.values.contains_key(value.as_str()) {
                self.out.push(
                    at(
                        &p.origin,
                        p.setting.span(),
                        K::MissingKey,
                        format!(
                            "port set `{name}` gives no ports for {} = {value:?}",
                            p.setting.get_ref()
                        ),
                    )
                    .expected(format!("a key `values.{value}`")),
                );
            }
        }
    }

    fn conditions(&mut self, origin: &Origin, conds: &Conditions) {
        for (name, cond) in conds {
            if !self.known(
                origin,
                name,
                self.cat.settings.keys(),
                K::UnknownSetting,
                "setting",
            ) {
                continue;
            }
            let def = &self.cat.settings[name.get_ref()];
            let wanted: Vec<&str> = match (def.default.get_ref(), cond.get_ref()) {
                (SettingValue::Bool(_), Condition::Is(SettingValue::Bool(_))) => continue,
                (SettingValue::Text(_), Condition::Is(SettingValue::Text(v))) => vec![v.as_str()],
                (SettingValue::Text(_), Condition::AnyOf(list)) if !list.is_empty() => {
                    list.iter().map(String::as_str).collect()
                }
                (default, _) => {
                    let expected = match default {
                        SettingValue::Bool(_) => "true or false".to_string(),
                        SettingValue::Text(_) => {
                            format!("one of {} (or a list of them)", def.values.join(", "))
                        }
                    };
                    self.out.push(
                        at(
                            origin,
                            cond.span(),
                            K::WrongType,
                            format!(
                                "condition on `{}` does not fit the setting's type",
                                name.get_ref()
                            ),
                        )
                        .expected(expected),
                    );
                    continue;
                }
            };
            for v in wanted
                .into_iter()
                .filter(|v| !def.values.iter().any(|a| a == v))
            {
                let hint = nearest(v, def.values.iter().map(String::as_str));
                self.out.push(
                    at(
                        origin,
                        cond.span(),
                        K::InvalidValue,
                        format!("{v:?} is not a value of setting `{}`", name.get_ref()),
                    )
                    .suggest(hint)
                    .expected(def.values.join(", ")),
                );
            }
        }
    }

    fn role(&mut self, role: &Role) {
        let o = &role.origin;
        if !valid_id(role.id()) {
            self.out.push(
                at(
                    o,
                    role.id.span(),
                    K::InvalidValue,
                    format!("invalid role id `{}`", role.id()),
                )
                .expected("lowercase letters, digits and dashes"),
            );
        }
        if role.title.trim().is_empty() {
            self.out.push(at(
                o,
                role.id.span(),
                K::Empty,
                format!("role `{}` has an empty title", role.id()),
            ));
        }
        if role.requirements.is_empty() && role.includes.is_empty() {
            self.out.push(at(
                o,
                role.id.span(),
                K::Empty,
                format!("role `{}` has neither requirements nor includes", role.id()),
            ));
        }
        for s in &role.sources {
            self.known(
                o,
                s,
                self.cat.sources.keys(),
                K::UnknownSource,
                "source document",
            );
        }
        for inc in &role.includes {
            self.known(
                o,
                inc,
                self.cat.roles.keys(),
                K::UnknownRole,
                "included role",
            );
        }
        let mut ids = HashSet::new();
        for req in &role.requirements {
            if !ids.insert(req.id()) {
                self.out.push(at(
                    o,
                    req.id.span(),
                    K::Duplicate,
                    format!(
                        "requirement id `{}` appears twice in role `{}`",
                        req.id(),
                        role.id()
                    ),
                ));
            }
            self.requirement(o, req);
        }
    }

    fn requirement(&mut self, o: &Origin, req: &Requirement) {
        let id = req.id();
        if !valid_id(id) {
            self.out.push(
                at(
                    o,
                    req.id.span(),
                    K::InvalidValue,
                    format!("invalid requirement id `{id}`"),
                )
                .expected("lowercase letters, digits and dashes"),
            );
        }
        let given: Vec<&str> = [
            ("ports", req.ports.is_some()),
            ("port_set", req.port_set.is_some()),
            ("any_of", req.any_of.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        match given.len() {
            0 => self.out.push(
                at(
                    o,
                    req.id.span(),
                    K::MissingKey,
                    format!("requirement `{id}` gives no ports"),
                )
                .expected("a key `ports`, `port_set` or `any_of`"),
            ),
            1 => {}
            _ => self.out.push(
                at(
                    o,
                    req.id.span(),
                    K::InvalidValue,
                    format!("requirement `{id}` gives {}", given.join(" and ")),
                )
                .expected("exactly one of `ports`, `port_set` and `any_of`"),
            ),
        }
        if let Some(list) = &req.ports {
            if list.0.is_empty() {
                self.out.push(at(
                    o,
                    req.id.span(),
                    K::Empty,
                    format!("requirement `{id}` has an empty `ports` list"),
                ));
            }
        }
        if let Some(set) = &req.port_set {
            self.known(
                o,
                set,
                self.cat.port_sets.keys(),
                K::UnknownPortSet,
                "port set",
            );
        }
        if let Some(list) = &req.any_of {
            self.alternatives(o, req, list);
        }
        let peers = req.peers();
        if peers.is_empty() {
            self.out.push(at(
                o,
                req.peer.span(),
                K::Empty,
                format!("requirement `{id}` names no peer group"),
            ));
        }
        let mut seen = HashSet::new();
        for p in peers {
            let named = Spanned::new(req.peer.span(), p.clone());
            if !seen.insert(p) {
                self.out.push(at(
                    o,
                    req.peer.span(),
                    K::Duplicate,
                    format!("peer group `{p}` is named twice"),
                ));
            }
            self.known(
                o,
                &named,
                self.cat.peer_groups.keys(),
                K::UnknownPeerGroup,
                "peer group",
            );
        }
        if req.listen && req.direction == super::Direction::Out {
            self.out.push(
                at(
                    o,
                    req.id.span(),
                    K::InvalidValue,
                    format!("outbound requirement `{id}` cannot ask for a listener"),
                )
                .expected("`listen = true` only with `direction = \"in\"`"),
            );
        }
        if req.purpose.trim().is_empty() {
            self.out.push(at(
                o,
                req.id.span(),
                K::Empty,
                format!("requirement `{id}` has an empty purpose"),
            ));
        }
        self.conditions(o, &req.conditions);
        if let Some(f) = &req.fallback_when {
            self.conditions(o, f);
        }
        for c in req.citations() {
            self.source_ref(o, c);
            self.seed_lines(o, id, c);
        }
    }

    /// `any_of`: two or more alternatives, none overlapping another, and no
    /// listener (which of them a service would listen on is not known).
    fn alternatives(&mut self, o: &Origin, req: &Requirement, list: &super::PortList) {
        let id = req.id();
        if list.0.len() < 2 {
            self.out.push(
                at(
                    o,
                    req.id.span(),
                    K::InvalidValue,
                    format!("requirement `{id}` lists fewer than two alternatives in `any_of`"),
                )
                .expected("`ports` for a single opening, or two or more alternatives"),
            );
        }
        for (i, a) in list.0.iter().enumerate() {
            for b in &list.0[i + 1..] {
                if a.first() <= b.last() && b.first() <= a.last() {
                    self.out.push(
                        at(
                            o,
                            req.id.span(),
                            K::InvalidValue,
                            format!("alternatives {a} and {b} of requirement `{id}` overlap"),
                        )
                        .expected("disjoint alternatives"),
                    );
                }
            }
        }
        if req.listen {
            self.out.push(
                at(
                    o,
                    req.id.span(),
                    K::InvalidValue,
                    format!("requirement `{id}` with alternatives cannot ask for a listener"),
                )
                .expected("`listen = true` only with `ports` or `port_set`"),
            );
        }
    }

    /// A requirement's citation gives the seed lines of a document with a
    /// seed (required of the built-in files, whose test reads the seeds; an
    /// operator's catalog.d file may cite without them), and none of a
    /// document without (see `source_ref`).
    fn seed_lines(&mut self, o: &Origin, id: &str, c: &SourceRef) {
        let Some(doc) = self.cat.sources.get(c.doc.get_ref()) else {
            return;
        };
        match (&doc.seed, &c.lines) {
            (Some(seed), None) if o.is_builtin() => self.out.push(
                at(
                    o,
                    c.doc.span(),
                    K::MissingKey,
                    format!(
                        "requirement `{id}` cites `{}` without the lines of its seed {seed}",
                        c.doc.get_ref()
                    ),
                )
                .expected("a key `lines` in the citation"),
            ),
            (_, Some(lines)) if lines.get_ref().0.is_empty() => self.out.push(at(
                o,
                lines.span(),
                K::Empty,
                format!("requirement `{id}` cites no line of `{}`", c.doc.get_ref()),
            )),
            _ => {}
        }
    }

    /// Reports each role that includes itself, directly or through others.
    fn include_cycles(&mut self) {
        let mut walk = CycleWalk {
            roles: &self.cat.roles,
            state: HashMap::new(),
            stack: Vec::new(),
            found: Vec::new(),
        };
        for role in self.cat.roles.values() {
            if !walk.state.contains_key(role.id()) {
                walk.visit(role);
            }
        }
        for (role, inc, path) in walk.found {
            self.out.push(at(
                &role.origin,
                inc.span(),
                K::IncludeCycle,
                format!("roles include each other: {path}"),
            ));
        }
    }
}

/// Depth-first walk over `includes` that records every edge closing a cycle.
struct CycleWalk<'c> {
    roles: &'c BTreeMap<String, Role>,
    /// `false` while a role is on the stack, `true` once finished.
    state: HashMap<&'c str, bool>,
    stack: Vec<&'c str>,
    /// (including role, the include entry closing the cycle, the cycle as text)
    found: Vec<(&'c Role, &'c Spanned<String>, String)>,
}

impl<'c> CycleWalk<'c> {
    fn visit(&mut self, role: &'c Role) {
        self.state.insert(role.id(), false);
        self.stack.push(role.id());
        for inc in &role.includes {
            let Some(next) = self.roles.get(inc.get_ref()) else {
                continue;
            };
            match self.state.get(next.id()) {
                Some(false) => {
                    let start = self.stack.iter().position(|r| *r == next.id()).unwrap_or(0);
                    let mut path = self.stack[start..].to_vec();
                    path.push(next.id());
                    self.found.push((role, inc, path.join(" -> ")));
                }
                Some(true) => {}
                None => self.visit(next),
            }
        }
        self.stack.pop();
        self.state.insert(role.id(), true);
    }
}
