//! The kernel's announcements, as messages to the daemon's loop: one thread
//! per netlink subscription, blocked in `recv` while nothing happens.

use crate::nft::decode::GenInfo;
use crate::nft::monitor::{self, Event, Transaction};
use crate::nft::sys::Monitor;
use std::io;
use tokio::sync::mpsc::UnboundedSender;

/// What a watcher tells the loop.
#[derive(Debug)]
pub enum News {
    /// A committed nf_tables transaction: its events, and who committed it.
    Commit(Vec<Event>, GenInfo),
    /// The kernel dropped notifications (`ENOBUFS`): only a full read is
    /// safe now.
    Lost,
    /// A notification that could not be decoded: also only a full read
    /// is safe.
    Undecodable(String),
    /// Links, addresses or routes changed.
    Routes,
    /// A watcher stopped (its socket failed).
    Failed(&'static str, io::Error),
}

/// Subscribes to nf_tables notifications (in the calling thread's network
/// namespace) and forwards every committed transaction. `rcvbuf` is the
/// socket's receive buffer in bytes.
pub fn nftables(tx: UnboundedSender<News>, rcvbuf: usize) -> io::Result<()> {
    // The socket is opened on its thread (libmnl's handle stays there); the
    // thread says whether that worked before anything else.
    let (opened_tx, opened) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("pw-nft-watch".into())
        .spawn(move || {
            let mut mon = match Monitor::open(rcvbuf) {
                Ok(m) => {
                    let _ = opened_tx.send(Ok(()));
                    m
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return;
                }
            };
            let mut txn = Transaction::default();
            loop {
                let mut out: Vec<News> = Vec::new();
                let got = mon.recv(|m| match monitor::event(m) {
                    Ok(Some(Event::NewGen(g))) => out.push(News::Commit(txn.take(), g)),
                    Ok(Some(ev)) => txn.push(ev),
                    Ok(None) => {}
                    Err(e) => out.push(News::Undecodable(e.to_string())),
                });
                match got {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        txn.take();
                        out.push(News::Lost);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(News::Failed("nftables notifications", e));
                        return;
                    }
                }
                for n in out {
                    if tx.send(n).is_err() {
                        return;
                    }
                }
            }
        })?;
    opened
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the watcher thread ended")))
}

/// `RTMGRP_*` groups: links, IPv4 and IPv6 addresses, routes and policy
/// rules (`RTNLGRP_IPV4_RULE` 8 and `RTNLGRP_IPV6_RULE` 19 as bits).
const RT_GROUPS: u32 = 0x1 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | (1 << 18);

/// Subscribes to link, address, route and rule changes; each datagram becomes one
/// [`News::Routes`] (the loop reads the routes again, which is cheap).
pub fn routes(tx: UnboundedSender<News>) -> io::Result<()> {
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind(&SocketAddr::new(0, RT_GROUPS))?;
    std::thread::Builder::new()
        .name("pw-rt-watch".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match sock.recv(&mut &mut buf[..], 0) {
                    Ok(_) => {
                        if tx.send(News::Routes).is_err() {
                            return;
                        }
                    }
                    // Lost route events: reading the routes again is the
                    // whole resync.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        if tx.send(News::Routes).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(News::Failed("route notifications", e));
                        return;
                    }
                }
            }
        })?;
    Ok(())
}
