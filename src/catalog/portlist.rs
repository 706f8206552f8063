//! The `ports = ...` value as written in catalog and configuration files.

use crate::ports::{PortRange, PortRangeError, PortSet};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Every port error produced here starts with this text, so that
/// [`Diagnostic::from_toml`](super::Diagnostic) can classify it.
pub(crate) const PORT_ERROR: &str = "invalid port";

/// A list of port ranges. In TOML each item is a port (`22`), a range string
/// (`"2500-3300"`) or a pair (`[2500, 3300]`); a single item may stand without
/// the surrounding list (`ports = 22`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PortList(pub Vec<PortRange>);

impl PortList {
    /// The ports as a normalised set.
    pub fn to_set(&self) -> PortSet {
        PortSet::from_ranges(self.0.iter().copied())
    }
}

const ITEM: &str = "a port (0-65535), a range like \"2500-3300\" or [2500, 3300]";

fn port<E: de::Error>(v: i64) -> Result<u16, E> {
    u16::try_from(v).map_err(|_| {
        E::custom(format!(
            "{PORT_ERROR} {v}, expected a port number from 0 to 65535"
        ))
    })
}

fn reversed<E: de::Error>(first: u16, last: u16) -> E {
    E::custom(format!(
        "{PORT_ERROR} range {first}-{last} (reversed), expected the lower port first"
    ))
}

fn range<E: de::Error>(first: u16, last: u16) -> Result<PortRange, E> {
    PortRange::new(first, last).map_err(|_| reversed(first, last))
}

fn parse<E: de::Error>(s: &str) -> Result<PortRange, E> {
    s.parse::<PortRange>().map_err(|e| match e {
        PortRangeError::Reversed { first, last } => reversed(first, last),
        PortRangeError::Syntax(_) => E::custom(format!("{PORT_ERROR} {s:?}, expected {ITEM}")),
    })
}

/// One item of a port list.
struct Item(PortRange);

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ITEM)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
        port(v).map(|p| Item(PortRange::single(p)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        parse(v).map(Item)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
        let mut ends = Vec::with_capacity(2);
        while let Some(v) = seq.next_element::<i64>()? {
            ends.push(port(v)?);
        }
        match ends[..] {
            [first, last] => range(first, last).map(Item),
            _ => Err(de::Error::custom(format!(
                "{PORT_ERROR} range with {} numbers, expected [first, last]",
                ends.len()
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ListVisitor;

impl<'de> Visitor<'de> for ListVisitor {
    type Value = PortList;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of ports, each {ITEM}")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortList, E> {
        ItemVisitor.visit_i64(v).map(|i| PortList(vec![i.0]))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortList, E> {
        ItemVisitor.visit_u64(v).map(|i| PortList(vec![i.0]))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PortList, E> {
        parse(v).map(|r| PortList(vec![r]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortList, A::Error> {
        let mut out = Vec::new();
        while let Some(Item(r)) = seq.next_element()? {
            out.push(r);
        }
        Ok(PortList(out))
    }
}

impl<'de> Deserialize<'de> for PortList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        ports: PortList,
    }

    fn ports(src: &str) -> Result<Vec<String>, String> {
        toml::from_str::<T>(&format!("ports = {src}"))
            .map(|t| t.ports.0.iter().map(ToString::to_string).collect())
            .map_err(|e| e.message().to_string())
    }

    #[test]
    fn accepts_every_written_form() {
        assert_eq!(ports("22").unwrap(), ["22"]);
        assert_eq!(ports("\"2500-3300\"").unwrap(), ["2500-3300"]);
        assert_eq!(
            ports("[22, \"80\", [2500, 3300], \"6160 - 6162\"]").unwrap(),
            ["22", "80", "2500-3300", "6160-6162"]
        );
    }

    #[test]
    fn rejects_bad_ports_with_a_reason() {
        for (src, want) in [
            ("[70000]", "invalid port 70000, expected a port number"),
            ("[-1]", "invalid port -1"),
            ("[[3300, 2500]]", "invalid port range 3300-2500 (reversed)"),
            ("[\"3300-2500\"]", "invalid port range 3300-2500 (reversed)"),
            ("[\"80-\"]", "invalid port \"80-\", expected a port"),
            ("[\"http\"]", "invalid port \"http\""),
            ("[[1, 2, 3]]", "invalid port range with 3 numbers"),
        ] {
            let err = ports(src).unwrap_err();
            assert!(err.starts_with(want), "{src}: {err}");
        }
        assert!(ports("[true]")
            .unwrap_err()
            .starts_with("invalid type: boolean"));
    }
}
