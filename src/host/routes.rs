//! Interfaces, addresses and main-table routes of the current network
//! namespace, over rtnetlink, as [`crate::eval::Routes`].
//!
//! Messages are parsed with `netlink-packet-route`. A link message whose
//! attributes that crate rejects (a kind-specific attribute newer than the
//! crate, say) is decoded again field by field, keeping only what the
//! evaluator needs (name, type, group, kind), so one odd interface does not
//! stop the read. Address and route messages are small and stable; one that
//! does not parse is an error (exit 76).
//!
//! The read is consistent or retried: if the kernel flags a dump as
//! interrupted by a change, or an address or route names an interface the
//! link dump did not show, everything is read again.

use super::netlink::{Conn, DumpEnd};
use super::HostError;
use crate::host::{ConfFrom, Interface, Route, RouteKind, Routes, RpFilter};
use ipnet::IpNet;
use netlink_packet_core::{parse_string, parse_u32, NlasIterator, Parseable, NLA_TYPE_MASK};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const WHAT: &str = "reading interfaces and routes";

/// How many times the whole read starts over when it sees a change.
const TRIES: u32 = 10;

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

/// Length of `struct ifinfomsg`.
const IFINFOMSG_LEN: usize = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_GROUP: u16 = 27;
const IFLA_INFO_KIND: u16 = 1;

/// Interfaces, addresses and main-table routes of the current network
/// namespace.
///
/// - interfaces in index order, each with its `ARPHRD_*` type, group, link
///   kind (`IFLA_INFO_KIND`) and addresses (IPv4 then IPv6, each family in
///   the kernel's order, as `ip addr` lists them; for a point-to-point
///   address the local side);
/// - routes of the main table (`RT_TABLE_MAIN`), IPv4 then IPv6, in the
///   kernel's order: unicast (`dev` is the output interface, also for a
///   route through a gateway; a multipath route gives one entry per next
///   hop), blackhole, unreachable, prohibit (without a device, although
///   the kernel names `lo` for IPv6 ones). The local table is not read
///   (the evaluator derives it); cached clones, source-specific IPv6 routes
///   (`from ...`) and other types (`throw`, `nat`, multicast) are left out;
/// - each interface's IPv4 reverse-path filter, `route_localnet` and
///   `accept_local`, from `/proc/sys/net/ipv4/conf/{all,NAME}/`;
/// - the NFQUEUE queues programs listen on, from
///   `/proc/net/netfilter/nfnetlink_queue`.
pub fn read_routes() -> Result<Routes, HostError> {
    let mut conn = Conn::open(NETLINK_ROUTE, WHAT)?;
    for _ in 0..TRIES {
        if let Some(mut routes) = read_once(&mut conn)? {
            read_ipv4_conf(&mut routes.interfaces);
            routes.queues = read_queues();
            return Ok(routes);
        }
    }
    Err(kept_changing())
}

/// The NFQUEUE queues a program listens on in the current network
/// namespace: the first column of `/proc/net/netfilter/nfnetlink_queue`
/// (`/proc/net` follows the reading task's namespace). Without the file
/// (`nfnetlink_queue` not loaded) no program can be listening: none.
/// `None` when it exists but cannot be read or parsed.
fn read_queues() -> Option<Vec<u16>> {
    match std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue") {
        Ok(text) => parse_queues(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Vec::new()),
        Err(_) => None,
    }
}

/// Parses `/proc/net/netfilter/nfnetlink_queue`: one line per bound queue,
/// its number first.
fn parse_queues(text: &str) -> Option<Vec<u16>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Sets each interface's [`RpFilter`], `route_localnet` and
/// `accept_local` from `/proc/sys/net/ipv4/conf/` (the current network
/// namespace's: `/proc/sys/net` follows the reading task's namespace). A
/// value that cannot be read counts as 0.
fn read_ipv4_conf(interfaces: &mut [Interface]) {
    let read = |name: &str, key: &str| -> u32 {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/{key}"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    let rpf_all = read("all", "rp_filter");
    let localnet_all = read("all", "route_localnet");
    let accept_local_all = read("all", "accept_local");
    for itf in interfaces {
        // A name with '/' cannot be an interface; keep the path inside conf/.
        if !itf.name.is_empty() && !itf.name.contains('/') && itf.name != "." && itf.name != ".." {
            let own = read(&itf.name, "rp_filter");
            itf.rp_filter = RpFilter::effective(rpf_all, own);
            itf.rp_filter_from = RpFilter::effective_from(rpf_all, own);
            itf.route_localnet = ConfFrom::either(localnet_all, read(&itf.name, "route_localnet"));
            itf.accept_local = ConfFrom::either(accept_local_all, read(&itf.name, "accept_local"));
        }
    }
}

/// Interface index → name, for the current namespace.
pub(super) fn interface_names() -> Result<HashMap<u32, String>, HostError> {
    let mut conn = Conn::open(NETLINK_ROUTE, "reading interface names")?;
    for _ in 0..TRIES {
        let (links, end) = read_links(&mut conn)?;
        if end == DumpEnd::Done {
            return Ok(links.into_iter().map(|l| (l.index, l.name)).collect());
        }
    }
    Err(kept_changing())
}

fn kept_changing() -> HostError {
    HostError::Io {
        what: WHAT,
        source: std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            format!("the interfaces kept changing while they were read ({TRIES} attempts)"),
        ),
    }
}

/// One consistent read, or `None` if something changed under it.
fn read_once(conn: &mut Conn) -> Result<Option<Routes>, HostError> {
    let (mut interfaces, end) = read_links(conn)?;
    if end == DumpEnd::Interrupted {
        return Ok(None);
    }
    interfaces.sort_by_key(|i| i.index);
    let position: HashMap<u32, usize> = interfaces
        .iter()
        .enumerate()
        .map(|(i, itf)| (itf.index, i))
        .collect();

    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut req = AddressMessage::default();
        req.header.family = family;
        let mut unknown = false;
        let end = conn.dump(RouteNetlinkMessage::GetAddress(req), |kind, payload| {
            if kind != RTM_NEWADDR {
                return Ok(());
            }
            if let Some((index, net)) = decode_addr(payload, family)? {
                match position.get(&index) {
                    Some(&i) => interfaces[i].addrs.push(net),
                    None => unknown = true,
                }
            }
            Ok(())
        })?;
        if unknown || end == DumpEnd::Interrupted {
            return Ok(None);
        }
    }

    let names: HashMap<u32, &str> = interfaces
        .iter()
        .map(|i| (i.index, i.name.as_str()))
        .collect();
    let mut routes = Vec::new();
    for family in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        let mut unknown = false;
        let end = conn.dump(RouteNetlinkMessage::GetRoute(req), |kind, payload| {
            if kind != RTM_NEWROUTE {
                return Ok(());
            }
            for (dst, oif, kind) in decode_route(payload, family)? {
                let dev = match oif {
                    None => None,
                    Some(idx) => match names.get(&idx) {
                        Some(n) => Some(n.to_string()),
                        None => {
                            unknown = true;
                            continue;
                        }
                    },
                };
                routes.push(Route { dst, dev, kind });
            }
            Ok(())
        })?;
        if unknown || end == DumpEnd::Interrupted {
            return Ok(None);
        }
    }
    Ok(Some(Routes {
        interfaces,
        routes,
        sockets: None,
        queues: None,
    }))
}

fn read_links(conn: &mut Conn) -> Result<(Vec<Interface>, DumpEnd), HostError> {
    let mut links = Vec::new();
    let end = conn.dump(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        |kind, payload| {
            if kind == RTM_NEWLINK {
                links.push(decode_link(payload)?);
            }
            Ok(())
        },
    )?;
    Ok((links, end))
}

/// An `RTM_NEWLINK` payload (`ifinfomsg` + attributes).
pub(crate) fn decode_link(payload: &[u8]) -> Result<Interface, HostError> {
    let what = "decoding a link message";
    let Some(head) = payload.get(..IFINFOMSG_LEN) else {
        return Err(HostError::protocol(what, "shorter than ifinfomsg"));
    };
    // The raw type: the crate maps ARPHRD values it does not know to one
    // placeholder.
    let iftype = u16::from_ne_bytes([head[2], head[3]]);
    let index = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]);
    let mut itf = Interface {
        name: String::new(),
        index,
        iftype,
        addrs: Vec::new(),
        group: 0,
        kind: None,
        rp_filter: RpFilter::Off,
        rp_filter_from: ConfFrom::Interface,
        route_localnet: None,
        accept_local: None,
    };
    match LinkMessage::parse(payload) {
        Ok(msg) => {
            for attr in msg.attributes {
                match attr {
                    LinkAttribute::IfName(n) => itf.name = n,
                    LinkAttribute::Group(g) => itf.group = g,
                    LinkAttribute::LinkInfo(infos) => {
                        for info in infos {
                            if let LinkInfo::Kind(k) = info {
                                itf.kind = Some(k.to_string());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Err(_) => decode_link_fields(&payload[IFINFOMSG_LEN..], &mut itf),
    }
    if itf.name.is_empty() {
        return Err(HostError::protocol(
            what,
            format!("interface {index} has no name"),
        ));
    }
    Ok(itf)
}

/// The fallback: only the attributes the evaluator needs, each decoded on
/// its own; a malformed one is skipped.
fn decode_link_fields(attrs: &[u8], itf: &mut Interface) {
    for nla in NlasIterator::new(attrs).map_while(Result::ok) {
        let value = nla.value();
        match nla.kind() & NLA_TYPE_MASK {
            IFLA_IFNAME => {
                if let Ok(n) = parse_string(value) {
                    itf.name = n;
                }
            }
            IFLA_GROUP => {
                if let Ok(g) = parse_u32(value) {
                    itf.group = g;
                }
            }
            IFLA_LINKINFO => {
                for info in NlasIterator::new(value).map_while(Result::ok) {
                    if info.kind() & NLA_TYPE_MASK == IFLA_INFO_KIND {
                        if let Ok(k) = parse_string(info.value()) {
                            itf.kind = Some(k);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// An `RTM_NEWADDR` payload: interface index and address with prefix
/// length, or `None` for another family.
pub(crate) fn decode_addr(
    payload: &[u8],
    family: AddressFamily,
) -> Result<Option<(u32, IpNet)>, HostError> {
    let what = "decoding an address message";
    let msg = AddressMessage::parse(payload).map_err(|e| HostError::protocol(what, e))?;
    if msg.header.family != family {
        return Ok(None);
    }
    let mut address = None;
    let mut local = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Local(a) => local = Some(*a),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's
    // on a point-to-point link and the same address otherwise.
    let Some(addr) = local.or(address) else {
        return Ok(None);
    };
    let index = msg.header.index;
    let net = IpNet::new(addr, msg.header.prefix_len).map_err(|_| {
        HostError::protocol(
            what,
            format!(
                "prefix length {} for {addr} on interface {index}",
                msg.header.prefix_len
            ),
        )
    })?;
    Ok(Some((index, net)))
}

/// An `RTM_NEWROUTE` payload: one `(dst, output interface index, kind)` per
/// next hop of a main-table route this model keeps; none for others.
pub(crate) fn decode_route(
    payload: &[u8],
    family: AddressFamily,
) -> Result<Vec<(IpNet, Option<u32>, RouteKind)>, HostError> {
    let what = "decoding a route message";
    let msg = RouteMessage::parse(payload).map_err(|e| HostError::protocol(what, e))?;
    let h = &msg.header;
    if h.address_family != family
        || h.flags.contains(RouteFlags::Cloned)
        || h.source_prefix_length != 0
    {
        return Ok(Vec::new());
    }
    let kind = match h.kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        RouteType::Local => RouteKind::Local,
        RouteType::Broadcast => RouteKind::Broadcast,
        _ => return Ok(Vec::new()),
    };
    let mut table = u32::from(h.table);
    let mut dst: Option<IpAddr> = None;
    let mut oif = None;
    let mut hops = Vec::new();
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = Some((*a).into()),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = Some((*a).into()),
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::MultiPath(nhs) => {
                hops.extend(nhs.iter().map(|nh| nh.interface_index).filter(|&i| i != 0))
            }
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return Ok(Vec::new());
    }
    let dst = dst.unwrap_or(match family {
        AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    });
    if dst.is_ipv6() != (family == AddressFamily::Inet6) {
        return Err(HostError::protocol(
            what,
            format!("destination {dst} in a route of the other family"),
        ));
    }
    let net = IpNet::new(dst, h.destination_prefix_length).map_err(|_| {
        HostError::protocol(
            what,
            format!("prefix length {} for {dst}", h.destination_prefix_length),
        )
    })?;
    match kind {
        // IPv6 reject routes name `lo` as their device; they send nowhere.
        RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit => {
            return Ok(vec![(net, None, kind)])
        }
        RouteKind::Local | RouteKind::Broadcast => {
            return Ok(vec![(net, oif.filter(|&i| i != 0), kind)])
        }
        RouteKind::Unicast => {}
    }
    if hops.is_empty() {
        hops.extend(oif.filter(|&i| i != 0));
    }
    if hops.is_empty() {
        return Ok(vec![(net, None, kind)]);
    }
    Ok(hops.into_iter().map(|i| (net, Some(i), kind)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_route::link::InfoKind;
    use netlink_packet_route::route::RouteNextHop;

    /// `/proc/net/netfilter/nfnetlink_queue` as the kernel prints it
    /// (`seq_printf("%5u %6u %5u %1u %5u %5u %5u %8u %2d\n", ...)`).
    #[test]
    fn queue_listeners_are_the_first_column() {
        let text = "    3   1234     0 2 65531     0     0        0  1\n  100 -4003     0 2 65531     0     0        0  1\n";
        assert_eq!(parse_queues(text), Some(vec![3, 100]));
        assert_eq!(parse_queues(""), Some(vec![]));
        assert_eq!(parse_queues("garbage\n"), None);
        let r = Routes {
            queues: Some(vec![3, 8]),
            ..Routes::default()
        };
        assert_eq!(r.queue_listened(3, 1), Some(true));
        assert_eq!(r.queue_listened(5, 4), Some(true));
        assert_eq!(r.queue_listened(4, 4), Some(false));
        assert_eq!(r.queue_listened(4, 3), Some(false));
        assert_eq!(r.queue_listened(65535, 2), Some(false));
        assert_eq!(Routes::default().queue_listened(3, 1), None);
    }

    fn bytes(m: &impl Emitable) -> Vec<u8> {
        let mut b = vec![0; m.buffer_len()];
        m.emit(&mut b);
        b
    }

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut b = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(value);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    #[test]
    fn host_decode_link_typed() {
        let mut m = LinkMessage::default();
        m.header.index = 7;
        m.header.link_layer_type = netlink_packet_route::link::LinkLayerType::Loopback;
        m.attributes = vec![
            LinkAttribute::IfName("pw-priv".into()),
            LinkAttribute::Group(42),
            LinkAttribute::Mtu(1500),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let itf = decode_link(&bytes(&m)).unwrap();
        assert_eq!(itf.name, "pw-priv");
        assert_eq!((itf.index, itf.iftype, itf.group), (7, 772, 42));
        assert_eq!(itf.kind.as_deref(), Some("veth"));
        assert!(itf.addrs.is_empty());
    }

    /// A link whose attributes the crate rejects (an IFLA_MTU of 2 bytes)
    /// and whose ARPHRD type it does not know is still read, field by field.
    #[test]
    fn host_decode_link_fallback() {
        let mut m = vec![0u8, 0];
        m.extend_from_slice(&0x1234u16.to_ne_bytes());
        m.extend_from_slice(&9u32.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend(nla(4, &[1, 2])); // IFLA_MTU, too short
        m.extend(nla(IFLA_IFNAME, b"odd0\0"));
        m.extend(nla(IFLA_GROUP, &5u32.to_ne_bytes()));
        m.extend(nla(IFLA_LINKINFO, &nla(IFLA_INFO_KIND, b"newkind\0")));
        assert!(LinkMessage::parse(&m[..]).is_err());
        let itf = decode_link(&m).unwrap();
        assert_eq!(itf.name, "odd0");
        assert_eq!((itf.index, itf.iftype, itf.group), (9, 0x1234, 5));
        assert_eq!(itf.kind.as_deref(), Some("newkind"));

        // No name, or too short: an error, never a panic.
        assert_eq!(decode_link(&m[..16]).unwrap_err().exit_code(), 76);
        for n in 0..16 {
            assert_eq!(decode_link(&m[..n]).unwrap_err().exit_code(), 76);
        }
        // Every truncation of the message decodes or fails cleanly.
        for n in 16..m.len() {
            let _ = decode_link(&m[..n]);
        }
    }

    fn addr_msg(family: AddressFamily, len: u8, attrs: Vec<AddressAttribute>) -> Vec<u8> {
        let mut m = AddressMessage::default();
        m.header.family = family;
        m.header.prefix_len = len;
        m.header.index = 3;
        m.attributes = attrs;
        bytes(&m)
    }

    #[test]
    fn host_decode_addresses() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let v4 = addr_msg(
            AddressFamily::Inet,
            24,
            vec![
                AddressAttribute::Address(a("10.99.0.1")),
                AddressAttribute::Local(a("10.99.0.1")),
            ],
        );
        assert_eq!(
            decode_addr(&v4, AddressFamily::Inet).unwrap(),
            Some((3, "10.99.0.1/24".parse().unwrap()))
        );
        // Another family than asked for: skipped.
        assert_eq!(decode_addr(&v4, AddressFamily::Inet6).unwrap(), None);
        // Point-to-point: the local side.
        let ptp = addr_msg(
            AddressFamily::Inet,
            32,
            vec![
                AddressAttribute::Local(a("10.0.0.1")),
                AddressAttribute::Address(a("10.0.0.2")),
            ],
        );
        assert_eq!(
            decode_addr(&ptp, AddressFamily::Inet).unwrap(),
            Some((3, "10.0.0.1/32".parse().unwrap()))
        );
        let v6 = addr_msg(
            AddressFamily::Inet6,
            64,
            vec![AddressAttribute::Address(a("fd00:99::1"))],
        );
        assert_eq!(
            decode_addr(&v6, AddressFamily::Inet6).unwrap(),
            Some((3, "fd00:99::1/64".parse().unwrap()))
        );
        let bad = addr_msg(
            AddressFamily::Inet,
            33,
            vec![AddressAttribute::Local(a("10.0.0.1"))],
        );
        assert_eq!(
            decode_addr(&bad, AddressFamily::Inet)
                .unwrap_err()
                .exit_code(),
            76
        );
        assert!(decode_addr(&[1, 2], AddressFamily::Inet).is_err());
    }

    fn route_msg(
        family: AddressFamily,
        table: u8,
        kind: RouteType,
        dst_len: u8,
        attrs: Vec<RouteAttribute>,
    ) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family;
        m.header.table = table;
        m.header.kind = kind;
        m.header.destination_prefix_length = dst_len;
        m.attributes = attrs;
        m
    }

    #[test]
    fn host_decode_routes() {
        let v4 = |s: &str| RouteAddress::Inet(s.parse().unwrap());
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let inet = AddressFamily::Inet;
        let main = RouteHeader::RT_TABLE_MAIN;

        // A default route through a gateway: dev is the output interface.
        let m = route_msg(
            inet,
            main,
            RouteType::Unicast,
            0,
            vec![
                RouteAttribute::Gateway(v4("10.99.0.2")),
                RouteAttribute::Oif(3),
            ],
        );
        assert_eq!(
            decode_route(&bytes(&m), inet).unwrap(),
            vec![(net("0.0.0.0/0"), Some(3), RouteKind::Unicast)]
        );
        // Blackhole, no device (IPv6 ones name lo).
        let m = route_msg(
            inet,
            main,
            RouteType::BlackHole,
            24,
            vec![
                RouteAttribute::Destination(v4("203.0.113.0")),
                RouteAttribute::Oif(1),
            ],
        );
        assert_eq!(
            decode_route(&bytes(&m), inet).unwrap(),
            vec![(net("203.0.113.0/24"), None, RouteKind::Blackhole)]
        );
        // The table attribute wins over the header's 8 bits.
        let m = route_msg(
            inet,
            RouteHeader::RT_TABLE_UNSPEC,
            RouteType::Prohibit,
            8,
            vec![
                RouteAttribute::Table(254),
                RouteAttribute::Destination(v4("198.0.0.0")),
            ],
        );
        assert_eq!(
            decode_route(&bytes(&m), inet).unwrap(),
            vec![(net("198.0.0.0/8"), None, RouteKind::Prohibit)]
        );
        // Local table, other tables, cloned and source-specific: left out.
        let local = route_msg(inet, 255, RouteType::Local, 32, vec![]);
        assert!(decode_route(&bytes(&local), inet).unwrap().is_empty());
        let other = route_msg(
            inet,
            100,
            RouteType::Unicast,
            0,
            vec![RouteAttribute::Oif(3)],
        );
        assert!(decode_route(&bytes(&other), inet).unwrap().is_empty());
        let mut cloned = route_msg(inet, main, RouteType::Unicast, 0, vec![]);
        cloned.header.flags = RouteFlags::Cloned;
        assert!(decode_route(&bytes(&cloned), inet).unwrap().is_empty());
        let mut from = route_msg(AddressFamily::Inet6, main, RouteType::Unicast, 0, vec![]);
        from.header.source_prefix_length = 48;
        assert!(decode_route(&bytes(&from), AddressFamily::Inet6)
            .unwrap()
            .is_empty());
        let throw = route_msg(inet, main, RouteType::Throw, 0, vec![]);
        assert!(decode_route(&bytes(&throw), inet).unwrap().is_empty());
        // A route of the other family (an rtnl_dump_all fallback): skipped.
        let m = route_msg(inet, main, RouteType::Unicast, 0, vec![]);
        assert!(decode_route(&bytes(&m), AddressFamily::Inet6)
            .unwrap()
            .is_empty());

        // Multipath: one entry per next hop.
        let hop = |i| {
            let mut h = RouteNextHop::default();
            h.interface_index = i;
            h
        };
        let m = route_msg(
            AddressFamily::Inet6,
            main,
            RouteType::Unicast,
            0,
            vec![RouteAttribute::MultiPath(vec![hop(2), hop(3)])],
        );
        assert_eq!(
            decode_route(&bytes(&m), AddressFamily::Inet6).unwrap(),
            vec![
                (net("::/0"), Some(2), RouteKind::Unicast),
                (net("::/0"), Some(3), RouteKind::Unicast)
            ]
        );

        // A prefix length too long for the family: an error (76).
        let m = route_msg(inet, main, RouteType::Unicast, 40, vec![]);
        assert_eq!(decode_route(&bytes(&m), inet).unwrap_err().exit_code(), 76);
        assert!(decode_route(&[0; 3], inet).is_err());
    }
}
