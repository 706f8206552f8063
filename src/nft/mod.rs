//! Reading the live ruleset from the kernel.
//!
//! [`read_snapshot`] takes one consistent copy of the current network
//! namespace's ruleset: it reads the generation id, dumps every object kind,
//! reads the generation again, and starts over if the ruleset changed in
//! between (or the kernel flagged a dump as interrupted), so a snapshot is
//! never a mix of two rulesets. It also reads the legacy iptables tables
//! of the namespace ([`legacy`]), which live outside nf_tables.

pub mod decode;
pub mod legacy;
pub mod libversion;
pub mod monitor;
mod read;
pub mod sys;
pub mod validate;

pub use read::{read_snapshot, PartReader, ReadError, ReadOptions};

#[cfg(test)]
mod tests {
    use super::{decode, sys};
    use proptest::prelude::*;

    /// Feeds one message to every decoder; none may panic or read out of bounds.
    fn decode_everything(buf: &[u8]) {
        for m in sys::messages(buf) {
            let Ok(m) = m else { break };
            decode::decode_everything(m);
        }
    }

    /// A netlink header claiming `len` bytes, type nf_tables/`kind`, then an
    /// nfgenmsg and `body`.
    fn message(kind: u8, family: u8, body: &[u8], len_delta: i32) -> Vec<u8> {
        let len = (20 + body.len()) as i32 + len_delta;
        let mut v = Vec::new();
        v.extend((len.max(0) as u32).to_ne_bytes());
        v.extend((u16::from(kind) | 10 << 8).to_ne_bytes());
        v.extend(0u16.to_ne_bytes());
        v.extend([0u8; 8]);
        v.extend([family, 0, 0, 0]);
        v.extend(body);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// Netlink attributes with random types and payloads, some nested.
    fn attrs() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            (
                0u16..20,
                any::<bool>(),
                prop::collection::vec(any::<u8>(), 0..40),
            ),
            0..12,
        )
        .prop_map(|list| {
            let mut v = Vec::new();
            for (ty, nested, payload) in list {
                let len = 4 + payload.len();
                v.extend((len as u16).to_ne_bytes());
                v.extend((ty | if nested { 0x8000 } else { 0 }).to_ne_bytes());
                v.extend(&payload);
                while v.len() % 4 != 0 {
                    v.push(0);
                }
            }
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..512)) {
            // Netlink buffers are 4-byte aligned in practice; copy to be sure.
            let words: Vec<u32> = buf.chunks(4).map(|c| { let mut w = [0u8; 4]; w[..c.len()].copy_from_slice(c); u32::from_ne_bytes(w) }).collect();
            // SAFETY (test): view the u32 buffer as bytes.
            let bytes = unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, buf.len()) };
            decode_everything(bytes);
        }

        #[test]
        fn malformed_nftables_messages_never_panic(
            kind in prop::sample::select(vec![0u8, 3, 6, 9, 12, 15, 18, 22, 99]),
            family in prop::sample::select(vec![0u8, 1, 2, 5, 7, 10, 200]),
            body in attrs(),
            len_delta in -24i32..8,
            cut in 0usize..64,
        ) {
            let mut m = message(kind, family, &body, len_delta);
            let keep = m.len().saturating_sub(cut).max(m.len().min(16));
            m.truncate(keep);
            let words: Vec<u32> = m.chunks(4).map(|c| { let mut w = [0u8; 4]; w[..c.len()].copy_from_slice(c); u32::from_ne_bytes(w) }).collect();
            // SAFETY (test): view the u32 buffer as bytes.
            let bytes = unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, m.len()) };
            decode_everything(bytes);
        }
    }

    #[test]
    fn a_header_longer_than_the_buffer_is_an_error_not_a_read() {
        let m = message(0, 2, &[], 100);
        let words: Vec<u32> = m
            .chunks(4)
            .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        // SAFETY (test): view the u32 buffer as bytes.
        let bytes = unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, m.len()) };
        let got: Vec<_> = sys::messages(bytes).collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
    }

    #[test]
    fn errno_maps_to_distinct_exit_codes() {
        use super::ReadError;
        use std::io::Error;
        let code = |e: i32| ReadError::from_io(Error::from_raw_os_error(e)).exit_code();
        assert_eq!(code(libc::EPERM), 77);
        assert_eq!(code(libc::EPROTONOSUPPORT), 69);
        assert_eq!(code(libc::EOPNOTSUPP), 69);
        assert_eq!(code(libc::EIO), 74);
        assert_eq!(ReadError::KeptChanging { tries: 3 }.exit_code(), 75);
        assert_eq!(ReadError::Protocol("x".into()).exit_code(), 76);
    }
}
