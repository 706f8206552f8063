//! A synchronous netlink dump: send one request, hand every reply message's
//! type and payload to a callback until `NLMSG_DONE`.
//!
//! Synchronous on purpose: `read_routes` and `read_listeners` are one-shot
//! reads of a handful of dumps, so a blocking `netlink-sys` socket does the
//! job without a tokio runtime (which `rtnetlink` would need) and keeps the
//! raw bytes of each message in hand, so a message the typed parser rejects
//! can still be decoded field by field instead of failing the whole read.

use super::HostError;
use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use std::io;

/// Receive buffer: the kernel sizes dump batches to the reader's buffer, up
/// to 32 KiB; twice that leaves room.
const RECV_BUF: usize = 64 * 1024;

/// What a dump ended with.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DumpEnd {
    /// `NLMSG_DONE`, consistent.
    Done,
    /// The kernel flagged the dump as interrupted by a change
    /// (`NLM_F_DUMP_INTR`): its content may mix two states.
    Interrupted,
}

/// One netlink socket of one protocol.
pub(super) struct Conn {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// What this connection reads, for error messages.
    what: &'static str,
}

impl Conn {
    /// Opens and binds a socket of `protocol` (`netlink_sys::protocols`).
    pub fn open(protocol: isize, what: &'static str) -> Result<Conn, HostError> {
        let mut sock = Socket::new(protocol).map_err(|e| HostError::from_io(what, e))?;
        sock.bind_auto().map_err(|e| HostError::from_io(what, e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| HostError::from_io(what, e))?;
        Ok(Conn {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
            what,
        })
    }

    /// Sends `request` as a dump request and calls `each(type, payload)`
    /// for every reply message.
    pub fn dump<I, F>(&mut self, request: I, mut each: F) -> Result<DumpEnd, HostError>
    where
        I: NetlinkSerializable,
        F: FnMut(u16, &[u8]) -> Result<(), HostError>,
    {
        let what = self.what;
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
        msg.finalize();
        let mut out = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut out);
        self.sock
            .send(&out, 0)
            .map_err(|e| HostError::from_io(what, e))?;

        let mut interrupted = false;
        loop {
            self.buf.clear();
            let n = loop {
                // MSG_TRUNC: report a datagram's real length, so a
                // truncated one is noticed.
                match self.sock.recv(&mut self.buf, libc::MSG_TRUNC) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(HostError::from_io(what, e)),
                }
            };
            if n > self.buf.len() {
                return Err(HostError::protocol(
                    what,
                    format!("a {n}-byte datagram did not fit the receive buffer"),
                ));
            }
            let mut off = 0;
            while off < self.buf.len() {
                let nl = NetlinkBuffer::new_checked(&self.buf[off..])
                    .map_err(|e| HostError::protocol(what, e))?;
                let len = nl.length() as usize;
                let (kind, flags, seq) = (nl.message_type(), nl.flags(), nl.sequence_number());
                let payload = nl.payload();
                // Netlink messages are 4-byte aligned.
                off = off.saturating_add((len + 3) & !3);
                if seq != self.seq {
                    continue; // a late reply to an earlier request
                }
                if flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match kind {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR => {
                        let code = ErrorBuffer::new_checked(payload)
                            .map_err(|e| HostError::protocol(what, e))?
                            .code();
                        match code {
                            None => {} // an acknowledgement
                            Some(c) => {
                                let errno = c.get().checked_abs().unwrap_or(libc::EINVAL);
                                return Err(HostError::from_io(
                                    what,
                                    io::Error::from_raw_os_error(errno),
                                ));
                            }
                        }
                    }
                    NLMSG_DONE => {
                        // The payload is the dump's return code.
                        if let Some(b) = payload.get(..4) {
                            let code = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                            if code < 0 {
                                let errno = code.checked_abs().unwrap_or(libc::EINVAL);
                                return Err(HostError::from_io(
                                    what,
                                    io::Error::from_raw_os_error(errno),
                                ));
                            }
                        }
                        return Ok(if interrupted {
                            DumpEnd::Interrupted
                        } else {
                            DumpEnd::Done
                        });
                    }
                    NLMSG_OVERRUN => {
                        return Err(HostError::protocol(what, "the kernel reported an overrun"))
                    }
                    _ => each(kind, payload)?,
                }
            }
        }
    }
}
