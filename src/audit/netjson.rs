//! Prefix lists in JSON, written directly.
//!
//! A large report holds hundreds of thousands of prefixes (the peers left
//! over by a blocklist); going through `Display` and serde's string
//! adapter for each one is most of the time spent writing it. IPv4 prefixes
//! are formatted by hand into a buffer and written as one string; IPv6
//! ones are rare and keep their `Display` form (the `::` compression rules).

use ipnet::IpNet;
use serde::ser::{SerializeSeq, Serializer};

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
