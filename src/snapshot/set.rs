//! Sets and maps: key types, elements, and the interval form the kernel
//! stores them in.

use super::expr::{Bytes, Verdict};
use super::value::{self, Datatype};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use smallvec::SmallVec;
use std::fmt;

/// `NFT_SET_*` flag bits.
pub mod flags {
    /// Anonymous set, bound to one rule.
    pub const ANONYMOUS: u32 = 0x1;
    /// Constant set.
    pub const CONSTANT: u32 = 0x2;
    /// Elements are intervals.
    pub const INTERVAL: u32 = 0x4;
    /// The set is a map.
    pub const MAP: u32 = 0x8;
    /// Elements may time out.
    pub const TIMEOUT: u32 = 0x10;
    /// Updated from the packet path.
    pub const EVAL: u32 = 0x20;
    /// Maps to stateful objects.
    pub const OBJECT: u32 = 0x40;
    /// Concatenated key.
    pub const CONCAT: u32 = 0x80;
}

/// A set or map with all its elements.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "value::SetRepr")]
pub struct Set {
    /// Name; anonymous sets are named `__set%d` by nft.
    pub name: String,
    /// Kernel handle.
    pub handle: u64,
    /// `NFT_SET_*` flags, see [`flags`].
    pub flags: u32,
    /// The key: one datatype, or several for a concatenation.
    pub key: KeyType,
    /// Mapped data type, for maps (a verdict map has [`value::VERDICT`]);
    /// several components when the data is a concatenation.
    #[serde(default)]
    pub data: Option<KeyType>,
    /// Default element timeout in ms.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Set comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// Elements sorted by key; for interval sets each holds a closed range.
    pub elements: Vec<Element>,
}

/// A set's key: the datatypes of its components, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyType(pub Vec<Datatype>);

impl KeyType {
    /// Byte offset of each component in a key as the kernel lays it out
    /// (each component padded to 4 bytes, as registers are).
    pub fn offsets(&self) -> Vec<(usize, usize)> {
        let mut off = 0;
        self.0
            .iter()
            .map(|d| {
                let here = (off, d.len as usize);
                off += (d.len as usize).div_ceil(4) * 4;
                here
            })
            .collect()
    }
}

/// A set key as raw register bytes, stored inline up to 16 bytes (an IPv6
/// address) so a 200,000-element blocklist costs no allocation per key.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub SmallVec<[u8; 16]>);

impl Key {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Self {
        Key(SmallVec::from_slice(b))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Bytes(self.as_slice().into()), f)
    }
}

/// One set element: a key or closed key range, and mapped data for maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    /// The key, or the first key of the range.
    pub key: Key,
    /// The last key of the range (inclusive), for interval sets when it
    /// differs from `key`.
    pub key_end: Option<Key>,
    /// Mapped data, for maps (boxed: most sets are not maps).
    pub data: Option<Box<ElemData>>,
    /// Rarely present details, kept out of line to keep elements small.
    pub extra: Option<Box<ElemExtra>>,
}

/// What a map element maps to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElemData {
    /// A verdict (verdict maps).
    Verdict(Verdict),
    /// A value (data maps).
    Value(Bytes),
    /// A named object (object maps).
    Object(String),
}

/// Per-element timeout, expiry and comment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElemExtra {
    /// Timeout in ms.
    pub timeout_ms: Option<u64>,
    /// Time left in ms when the snapshot was taken.
    pub expires_ms: Option<u64>,
    /// Comment.
    pub comment: Option<String>,
}

impl Set {
    /// Whether nft created the set for one rule (`{ 22, 6162 }` inline).
    pub fn anonymous(&self) -> bool {
        self.flags & flags::ANONYMOUS != 0
    }

    /// Whether elements are ranges.
    pub fn interval(&self) -> bool {
        self.flags & flags::INTERVAL != 0
    }

    /// Whether the set is a map (data or verdict).
    pub fn is_map(&self) -> bool {
        self.flags & flags::MAP != 0
    }

    /// Inserts or replaces the element with the same key, keeping order.
    pub fn upsert(&mut self, e: Element) {
        match self.elements.binary_search_by(|x| x.key.cmp(&e.key)) {
            Ok(i) => self.elements[i] = e,
            Err(i) => self.elements.insert(i, e),
        }
    }

    /// Removes the element whose key (or range start) is `key`.
    pub fn remove(&mut self, key: &Key) -> Option<Element> {
        let i = self.elements.binary_search_by(|x| x.key.cmp(key)).ok()?;
        Some(self.elements.remove(i))
    }

    /// Restores key order after elements were appended in dump order.
    pub fn sort(&mut self) {
        self.elements.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }
}

/// Closes the ranges of a non-concatenated interval set, in place.
///
/// The kernel keeps each range `[a, b]` as a start element `a` and an end
/// element `b + 1` (`NFT_SET_ELEM_INTERVAL_END`), in no promised order. Given
/// the starts and the exclusive ends, this sorts both and gives every start
/// its inclusive `key_end`: the next end after it, or just before the next
/// start if that comes first; a start with no end runs to the top of the key
/// space. Ends with no start (nft's leading `0` marker) are dropped. Working
/// in place keeps a 200,000-range dump from needing a second copy.
pub fn close_ranges(starts: &mut [Element], ends: &mut [Key]) {
    starts.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    ends.sort_unstable();
    let mut j = 0;
    for i in 0..starts.len() {
        // An end equal to this start closes the previous range, not this one.
        while j < ends.len() && ends[j] <= starts[i].key {
            j += 1;
        }
        let next_start = starts.get(i + 1).map(|s| s.key.clone());
        let last: Vec<u8> = match (ends.get(j), next_start) {
            (Some(e), Some(n)) if n < *e => value::decrement(n.as_slice()),
            (Some(e), _) => {
                j += 1;
                value::decrement(e.as_slice())
            }
            (None, Some(n)) => value::decrement(n.as_slice()),
            (None, None) => vec![0xff; starts[i].key.as_slice().len()],
        };
        let e = &mut starts[i];
        e.key_end = (last.as_slice() != e.key.as_slice()).then(|| Key::from(last.as_slice()));
    }
}

/// Serialised as `nft -j` lists a set: elements rendered by datatype, as a
/// value, `{"prefix"}`, `{"range"}` or `{"concat"}`, map elements as
/// `[key, data]`.
impl Serialize for Set {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("handle", &self.handle)?;
        m.serialize_entry("anonymous", &self.anonymous())?;
        m.serialize_entry("flags", &self.flags)?;
        m.serialize_entry("key", &self.key)?;
        if let Some(d) = &self.data {
            m.serialize_entry("data", d)?;
        }
        if let Some(t) = self.timeout_ms {
            m.serialize_entry("timeout_ms", &t)?;
        }
        if let Some(c) = &self.comment {
            m.serialize_entry("comment", c)?;
        }
        m.serialize_entry("elements", &ElementsView(self))?;
        m.end()
    }
}

struct ElementsView<'a>(&'a Set);

impl Serialize for ElementsView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let set = self.0;
        let mut seq = s.serialize_seq(Some(set.elements.len()))?;
        for e in &set.elements {
            seq.serialize_element(&value::ElementView { set, elem: e })?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(k: u8) -> Element {
        Element {
            key: Key::from(&[k][..]),
            key_end: None,
            data: None,
            extra: None,
        }
    }

    #[test]
    fn boundaries_become_closed_ranges_in_any_dump_order() {
        // [10, 20], [21, 21] (single), [30, top]; the kernel lists ends as
        // b+1, plus nft's leading end marker at 0, here in reverse order.
        let mut starts = vec![start(30), start(21), start(10)];
        let mut ends: Vec<Key> = [22u8, 21, 0].iter().map(|k| Key::from(&[*k][..])).collect();
        close_ranges(&mut starts, &mut ends);
        let got: Vec<(u8, Option<u8>)> = starts
            .iter()
            .map(|e| {
                (
                    e.key.as_slice()[0],
                    e.key_end.as_ref().map(|k| k.as_slice()[0]),
                )
            })
            .collect();
        assert_eq!(got, vec![(10, Some(20)), (21, None), (30, Some(255))]);
    }

    #[test]
    fn elements_update_in_place_keeping_key_order() {
        let mut set = Set {
            name: "s".into(),
            handle: 1,
            flags: 0,
            key: KeyType(vec![value::Datatype::new(value::INET_SERVICE, 1)]),
            data: None,
            timeout_ms: None,
            comment: None,
            elements: Vec::new(),
        };
        for k in [30u8, 10, 20, 10] {
            set.upsert(start(k));
        }
        let keys = |s: &Set| {
            s.elements
                .iter()
                .map(|e| e.key.as_slice()[0])
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&set), vec![10, 20, 30]);
        assert!(set.remove(&Key::from(&[20u8][..])).is_some());
        assert!(set.remove(&Key::from(&[21u8][..])).is_none());
        assert_eq!(keys(&set), vec![10, 30]);
    }

    #[test]
    fn adjacent_ranges_stay_apart() {
        // [1, 4] and [5, 9]: end 5 and start 5 share a key.
        let mut starts = vec![start(5), start(1)];
        let mut ends: Vec<Key> = [10u8, 5].iter().map(|k| Key::from(&[*k][..])).collect();
        close_ranges(&mut starts, &mut ends);
        let got: Vec<(u8, Option<u8>)> = starts
            .iter()
            .map(|e| {
                (
                    e.key.as_slice()[0],
                    e.key_end.as_ref().map(|k| k.as_slice()[0]),
                )
            })
            .collect();
        assert_eq!(got, vec![(1, Some(4)), (5, Some(9))]);
    }
}
