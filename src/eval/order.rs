//! Order the kernel decides by registration: base chains (and conntrack,
//! and the NAT hooks) that share a hook and a priority.
//!
//! `nf_hook_entries_grow` inserts a new hook entry *before* the entries of
//! equal priority, so of two chains at the same priority the one registered
//! last runs first. When each chain, the conntrack hooks (at -200, registered
//! when the first rule or table needs conntrack) and the NAT hooks were
//! registered is not in a dump, and neither is the family (`ip`, `ip6`,
//! `inet` chains of one hook share one list). So a path through the hooks is
//! a sequence of entries with *slots*: stretches whose members the kernel
//! runs in an order the snapshot does not give. The interpreter follows
//! every order of a slot (a fork, see `exec`) and answers `unknown`, naming
//! the members, only when the orders end differently.

use super::compile::{CVerdict, ChainInfo, Dst, Entry, Obj, Op};
use crate::snapshot::xt::XtInfo;
use crate::snapshot::{Hook, Policy};

/// Most orders followed for one slot (4 members); a slot with more is
/// answered `unknown` when a probe reaches it.
pub(super) const MAX_ORDERS: usize = 24;

/// A path through the hooks with its slots.
#[derive(Clone, Debug, Default)]
pub(super) struct Path {
    /// The entries, every slot in its first order (the kernel's order if
    /// tables and chains were registered in dump order).
    pub entries: Vec<Entry>,
    /// The slots, by position.
    pub slots: Vec<Slot>,
    /// Per entry: the slot it belongs to (`u8::MAX`: none).
    pub slot_of: Vec<u8>,
}

/// Members of one hook list at one priority whose order is not known.
#[derive(Clone, Debug)]
pub(super) struct Slot {
    /// The index of the slot's first entry in [`Path::entries`].
    pub start: usize,
    /// The hook and the shared priority.
    pub hook: Hook,
    /// The shared priority.
    pub prio: i32,
    /// Every order of the members (each as long as the slot; the first is
    /// the one in [`Path::entries`]).
    pub orders: Vec<Vec<Entry>>,
    /// More orders than [`MAX_ORDERS`]: only the first is kept.
    pub too_many: bool,
}

/// One item of a hook list: where it sorts (stage, priority, creation
/// order: later created first) and its entries; `inner`: other orders of
/// the item itself (a NAT group whose chains tie), each as long as
/// `entries`.
pub(super) struct Item {
    pub stage: u8,
    pub prio: i32,
    pub created: usize,
    pub hook: Hook,
    pub entries: Vec<Entry>,
    pub inner: Vec<Vec<Entry>>,
}

impl Item {
    /// An item with one order.
    pub fn new(stage: u8, prio: i32, created: usize, hook: Hook, entries: Vec<Entry>) -> Item {
        Item {
            stage,
            prio,
            created,
            hook,
            entries,
            inner: Vec::new(),
        }
    }

    /// Whether the item sits on a hook list (a base chain, conntrack, a
    /// NAT hook), as opposed to a step between hooks.
    fn hooked(&self) -> bool {
        self.entries.iter().any(|e| {
            matches!(
                e,
                Entry::Chain { .. } | Entry::NatGroup { .. } | Entry::Conntrack
            )
        })
    }

    /// Every order of the item itself (at least its own).
    fn orders(&self) -> Vec<Vec<Entry>> {
        let mut v = vec![self.entries.clone()];
        v.extend(self.inner.iter().cloned());
        v
    }
}

/// Per chain: whether running it can change nothing but which rule gets
/// the credit for an accept: no rule of it, or of a chain it jumps to, can
/// drop, reject, queue or steal the packet, or write a mark, conntrack
/// data, the packet, NAT, a set or xt `recent` state, and a base chain's
/// policy is accept. The order of such a chain against the others of its
/// priority cannot change a verdict, so no order is followed for it.
/// Anything not understood counts as an effect.
pub(super) fn inert_chains(chains: &[ChainInfo]) -> Vec<bool> {
    // 0 not yet seen, 1 being decided (a jump loop: not inert), 2 inert, 3 not.
    fn go(chains: &[ChainInfo], c: usize, state: &mut [u8]) -> bool {
        match state[c] {
            2 => return true,
            1 | 3 => return false,
            _ => {}
        }
        state[c] = 1;
        let ch = &chains[c];
        let mut ok = ch
            .base
            .as_ref()
            .map_or(true, |b| b.policy == Policy::Accept);
        'rules: for r in &ch.rules {
            for op in r.ops.iter() {
                let fine = match op {
                    Op::Payload { .. }
                    | Op::Cmp { .. }
                    | Op::Range { .. }
                    | Op::Bitwise { .. }
                    | Op::Byteorder { .. }
                    | Op::Meta { .. }
                    | Op::Ct { .. }
                    | Op::Imm { .. }
                    | Op::Nop
                    | Op::Limit { .. }
                    | Op::Quota { .. }
                    | Op::Connlimit { .. }
                    | Op::Fib { .. }
                    | Op::Exthdr { .. }
                    | Op::Rt { .. }
                    | Op::Socket { .. }
                    | Op::Opaque { .. }
                    | Op::Ip6ExtMatch { .. } => true,
                    Op::Lookup { dst, .. } => !matches!(dst, Some(Dst::Verdict)),
                    Op::Obj(o) => !matches!(o, Obj::Unknown(_)),
                    Op::Xt { target, info } => {
                        if *target {
                            matches!(**info, XtInfo::Log { .. })
                        } else {
                            !matches!(**info, XtInfo::Recent { .. })
                        }
                    }
                    Op::Verdict(v) => match v {
                        CVerdict::Accept
                        | CVerdict::Continue
                        | CVerdict::Return
                        | CVerdict::Break => true,
                        CVerdict::Jump(t) | CVerdict::Goto(t) => go(chains, *t as usize, state),
                        _ => false,
                    },
                    _ => false,
                };
                if !fine {
                    ok = false;
                    break 'rules;
                }
            }
        }
        state[c] = if ok { 2 } else { 3 };
        ok
    }
    let mut state = vec![0u8; chains.len()];
    (0..chains.len())
        .map(|c| go(chains, c, &mut state))
        .collect()
}

/// Every permutation of `0..n`, the identity first (`None` above 4).
pub(super) fn permutations(n: usize) -> Option<Vec<Vec<usize>>> {
    if n > 4 {
        return None;
    }
    fn go(rest: &mut Vec<usize>, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if rest.is_empty() {
            out.push(cur.clone());
            return;
        }
        for i in 0..rest.len() {
            let x = rest.remove(i);
            cur.push(x);
            go(rest, cur, out);
            cur.pop();
            rest.insert(i, x);
        }
    }
    let mut out = Vec::new();
    go(&mut (0..n).collect(), &mut Vec::new(), &mut out);
    Some(out)
}

/// The NAT chains of one hook, ordered by priority (later created first on
/// ties), with the other orders of chains that share a priority:
/// `members` are (priority, created, chain id).
pub(super) fn nat_orders(members: &mut [(i32, usize, u32)]) -> (Vec<u32>, Vec<Vec<u32>>) {
    members.sort_by_key(|&(p, c, _)| (p, std::cmp::Reverse(c)));
    let first: Vec<u32> = members.iter().map(|m| m.2).collect();
    let mut orders: Vec<Vec<u32>> = vec![Vec::new()];
    let mut i = 0;
    while i < members.len() {
        let j = (i..members.len())
            .find(|&j| members[j].0 != members[i].0)
            .unwrap_or(members.len());
        let run = &first[i..j];
        let perms = permutations(run.len()).unwrap_or_else(|| vec![(0..run.len()).collect()]);
        let mut next = Vec::new();
        for o in &orders {
            for p in &perms {
                let mut v = o.clone();
                v.extend(p.iter().map(|&k| run[k]));
                next.push(v);
            }
        }
        orders = next;
        orders.truncate(MAX_ORDERS);
        i = j;
    }
    orders.remove(0);
    (first, orders)
}

/// Sorts `items` into a path and finds its slots. `same_list(a, b)`: whether
/// two items of equal stage and priority share a hook list (ingress chains
/// only when they share a device).
pub(super) fn build(mut items: Vec<Item>, same_list: impl Fn(&Item, &Item) -> bool) -> Path {
    items.sort_by_key(|it| (it.stage, it.prio, std::cmp::Reverse(it.created)));
    let mut path = Path::default();
    let mut i = 0;
    while i < items.len() {
        let j = (i..items.len())
            .find(|&j| (items[j].stage, items[j].prio) != (items[i].stage, items[i].prio))
            .unwrap_or(items.len());
        let run = &items[i..j];
        let hooked: Vec<usize> = (0..run.len()).filter(|&k| run[k].hooked()).collect();
        let tied = hooked.iter().any(|&a| {
            hooked
                .iter()
                .any(|&b| a != b && same_list(&run[a], &run[b]))
        });
        let inner = run.iter().any(|it| !it.inner.is_empty());
        if !tied && !inner {
            for it in run {
                path.entries.extend(it.entries.iter().cloned());
            }
            i = j;
            continue;
        }
        // Items that are not on the hook list keep their place; the hooked
        // ones take every order among the hooked places.
        let start = path.entries.len();
        let perms = if tied {
            permutations(hooked.len())
        } else {
            Some(vec![(0..hooked.len()).collect()])
        };
        let mut orders: Vec<Vec<Entry>> = Vec::new();
        let mut too_many = perms.is_none();
        for p in perms.unwrap_or_else(|| vec![(0..hooked.len()).collect()]) {
            // The items in this order, then every combination of their own
            // orders.
            let mut seq: Vec<&Item> = run.iter().collect();
            for (slot, &k) in hooked.iter().zip(&p) {
                seq[*slot] = &run[hooked[k]];
            }
            let mut combos: Vec<Vec<Entry>> = vec![Vec::new()];
            for it in seq {
                let own = it.orders();
                let mut next = Vec::with_capacity(combos.len() * own.len());
                for c in &combos {
                    for o in &own {
                        let mut v = c.clone();
                        v.extend(o.iter().cloned());
                        next.push(v);
                    }
                }
                combos = next;
            }
            for c in combos {
                if orders.len() == MAX_ORDERS {
                    too_many = true;
                    break;
                }
                orders.push(c);
            }
        }
        path.entries.extend(orders[0].iter().cloned());
        path.slots.push(Slot {
            start,
            hook: run[hooked[0]].hook,
            prio: run[0].prio,
            orders,
            too_many,
        });
        i = j;
    }
    path.slot_of = vec![u8::MAX; path.entries.len()];
    for (k, s) in path.slots.iter().enumerate() {
        let len = s.orders[0].len();
        let id = u8::try_from(k).unwrap_or(u8::MAX - 1);
        path.slot_of[s.start..s.start + len].fill(id);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(id: u32) -> Entry {
        Entry::Chain {
            chain: id,
            devices: None,
        }
    }

    fn ids(v: &[Entry]) -> Vec<i64> {
        v.iter()
            .map(|e| match e {
                Entry::Chain { chain, .. } => i64::from(*chain),
                Entry::Conntrack => -1,
                _ => -2,
            })
            .collect()
    }

    #[test]
    fn permutations_are_all_distinct_identity_first() {
        let p = permutations(3).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], vec![0, 1, 2]);
        let mut q = p.clone();
        q.sort();
        q.dedup();
        assert_eq!(q.len(), 6);
        assert!(permutations(5).is_none());
    }

    #[test]
    fn equal_priorities_make_a_slot_with_every_order_later_created_first() {
        let items = vec![
            Item::new(1, 0, 1, Hook::Input, vec![chain(10)]),
            Item::new(1, 0, 2, Hook::Input, vec![chain(11)]),
            Item::new(1, 10, 3, Hook::Input, vec![chain(12)]),
            Item::new(
                1,
                -200,
                usize::MAX,
                Hook::Prerouting,
                vec![Entry::Conntrack],
            ),
        ];
        let p = build(items, |_, _| true);
        assert_eq!(ids(&p.entries), vec![-1, 11, 10, 12]);
        assert_eq!(p.slots.len(), 1);
        assert_eq!(p.slots[0].start, 1);
        let orders: Vec<_> = p.slots[0].orders.iter().map(|o| ids(o)).collect();
        assert_eq!(orders, vec![vec![11, 10], vec![10, 11]]);
        assert_eq!(p.slot_of, vec![u8::MAX, 0, 0, u8::MAX]);
    }

    #[test]
    fn a_chain_at_minus_200_ties_with_conntrack() {
        let items = vec![
            Item::new(
                1,
                -200,
                usize::MAX,
                Hook::Prerouting,
                vec![Entry::Conntrack],
            ),
            Item::new(1, -200, 1, Hook::Prerouting, vec![chain(3)]),
        ];
        let p = build(items, |_, _| true);
        let orders: Vec<_> = p.slots[0].orders.iter().map(|o| ids(o)).collect();
        assert_eq!(orders, vec![vec![-1, 3], vec![3, -1]]);
    }

    #[test]
    fn only_chains_that_can_change_nothing_are_inert() {
        use super::super::compile::{BaseInfo, RuleInfo};
        let chain = |ops: Vec<Op>, base: Option<Policy>| ChainInfo {
            table: 0,
            name: "c".into(),
            rules: vec![RuleInfo {
                handle: 1,
                ops: ops.into(),
                guard: Box::new([]),
            }],
            base: base.map(|policy| BaseInfo {
                hook: Hook::Input,
                prio: 0,
                policy,
            }),
            index: Box::new([]),
        };
        let chains = vec![
            chain(vec![Op::Verdict(CVerdict::Accept)], Some(Policy::Accept)),
            chain(vec![Op::Verdict(CVerdict::Accept)], Some(Policy::Drop)),
            chain(vec![Op::Verdict(CVerdict::Jump(3))], Some(Policy::Accept)),
            chain(vec![Op::Verdict(CVerdict::Drop)], None),
            chain(vec![Op::Verdict(CVerdict::Jump(5))], Some(Policy::Accept)),
            chain(vec![Op::Nop, Op::Verdict(CVerdict::Return)], None),
            chain(vec![Op::Notrack], Some(Policy::Accept)),
            chain(vec![Op::Verdict(CVerdict::Goto(7))], None),
        ];
        assert_eq!(
            inert_chains(&chains),
            vec![true, false, false, false, true, true, false, false]
        );
    }

    #[test]
    fn nat_chains_of_one_priority_take_every_order() {
        let mut m = vec![(-100, 1, 7), (-100, 2, 8), (0, 3, 9)];
        let (first, others) = nat_orders(&mut m);
        assert_eq!(first, vec![8, 7, 9]);
        assert_eq!(others, vec![vec![7, 8, 9]]);
    }
}
