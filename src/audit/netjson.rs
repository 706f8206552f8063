//! Prefix lists in JSON, written directly.
//!
//! A large report holds hundreds of thousands of prefixes (the peers left
//! over by a blocklist); going through `Display` and serde's string
//! adapter for each one is most of the time spent writing it. IPv4 prefixes
//! are formatted by hand into a buffer and written as one string; IPv6
//! ones are rare and keep their `Display` form (the `::` compression rules).

use ipnet::IpNet;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

/// How many prefixes a finding's or piece's JSON `peers` lists: the first
/// ones, in address order. `peer_count` says how many there are in all (a
/// blocklist's complement runs to a hundred thousand prefixes, and a list
/// that long is no use to a reader nor to a monitoring system).
pub const PEERS_LISTED: usize = 16;

/// Every prefix of a list, serialised as in [`serialize`]: for `audit --json
/// --all-peers`, which writes the lists in full.
pub struct AllPeers<'a>(pub &'a [IpNet]);

impl serde::Serialize for AllPeers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// Serialises prefixes as two members of the enclosing object (used with
/// `#[serde(flatten)]`): `"peers"`, the first [`PEERS_LISTED`] as in
/// [`serialize`], and `"peer_count"`, how many there are in all.
pub fn serialize_capped<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("peers", &AllPeers(&nets[..nets.len().min(PEERS_LISTED)]))?;
    m.serialize_entry("peer_count", &nets.len())?;
    m.end()
}

/// Serialises prefixes as a list of `"addr/len"` strings (the same text as
/// `IpNet`'s own serialisation).
pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(nets.len()))?;
    let mut buf = [0u8; 18];
    for n in nets {
        match n {
            IpNet::V4(n) => {
                let len = v4_text(n.addr().octets(), n.prefix_len(), &mut buf);
                let text = std::str::from_utf8(&buf[..len]).expect("digits, dots and a slash");
                seq.serialize_element(text)?;
            }
            IpNet::V6(_) => seq.serialize_element(&n.to_string())?,
        }
    }
    seq.end()
}

/// Writes `a.b.c.d/len` into `buf`; returns its length.
fn v4_text(octets: [u8; 4], len: u8, buf: &mut [u8; 18]) -> usize {
    let mut at = 0;
    for (i, o) in octets.into_iter().enumerate() {
        at = decimal(o, buf, at);
        buf[at] = if i < 3 { b'.' } else { b'/' };
        at += 1;
    }
    decimal(len, buf, at)
}

/// Writes `v` in decimal at `buf[at..]`; returns the position after it.
fn decimal(v: u8, buf: &mut [u8; 18], mut at: usize) -> usize {
    if v >= 100 {
        buf[at] = b'0' + v / 100;
        at += 1;
    }
    if v >= 10 {
        buf[at] = b'0' + v / 10 % 10;
        at += 1;
    }
    buf[at] = b'0' + v % 10;
    at + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn written_like_ipnet_itself(a in any::<u32>(), len in 0u8..=32, v6 in any::<u128>(), len6 in 0u8..=128) {
            let nets = vec![
                IpNet::new(std::net::Ipv4Addr::from(a).into(), len).unwrap(),
                IpNet::new(std::net::Ipv6Addr::from(v6).into(), len6).unwrap(),
            ];
            let mut ours = serde_json::Serializer::new(Vec::new());
            serialize(&nets, &mut ours).unwrap();
            prop_assert_eq!(ours.into_inner(), serde_json::to_vec(&nets).unwrap());
        }
    }

    #[test]
    fn capped_lists_the_first_and_counts_all() {
        #[derive(serde::Serialize)]
        struct Doc {
            #[serde(flatten, serialize_with = "serialize_capped")]
            peers: Vec<IpNet>,
        }
        let peers: Vec<IpNet> = (0..40u32)
            .map(|i| IpNet::new(std::net::Ipv4Addr::from(0x0b00_0000 + i).into(), 32).unwrap())
            .collect();
        let v = serde_json::to_value(Doc { peers }).unwrap();
        assert_eq!(v["peer_count"], 40);
        let listed = v["peers"].as_array().unwrap();
        assert_eq!(listed.len(), PEERS_LISTED);
        assert_eq!(listed[0], "11.0.0.0/32");
        assert_eq!(listed[PEERS_LISTED - 1], "11.0.0.15/32");
        let few = serde_json::to_value(Doc {
            peers: vec!["10.0.0.10/32".parse().unwrap()],
        })
        .unwrap();
        assert_eq!(
            few,
            serde_json::json!({"peers": ["10.0.0.10/32"], "peer_count": 1})
        );
    }

    #[test]
    fn edges() {
        let mut buf = [0u8; 18];
        let n = v4_text([255, 255, 255, 255], 32, &mut buf);
        assert_eq!(&buf[..n], b"255.255.255.255/32");
        let n = v4_text([0, 0, 0, 0], 0, &mut buf);
        assert_eq!(&buf[..n], b"0.0.0.0/0");
        let n = v4_text([10, 100, 9, 200], 8, &mut buf);
        assert_eq!(&buf[..n], b"10.100.9.200/8");
    }
}
