//! The UDP fast path: a plain query (one question of class IN, at most an
//! OPT record with client subnet, cookie or padding options) whose answer
//! the snapshot holds pre-rendered (`prepared.rs`) is answered by copying
//! bytes: the query's id, flags and question (in the client's own case),
//! the rendered records, the nodes chosen for the client's location, and
//! our OPT record with the ECS scope. Nothing is allocated once the
//! listener's buffers have grown.
//!
//! Whatever else arrives (other opcodes, several questions, unknown EDNS
//! options or versions, compression in the question, types or names not
//! prepared, answers that only fit compressed) returns `false` and takes
//! the general path, which decides every case the same way as before; the
//! fast path only repeats decisions that path made when the snapshot was
//! built, and the tests compare both.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::ClientSubnet;

use super::ecs;
use super::exchange::HEADER_LEN;
use super::prepared::Found;
use super::select::Choice;
use super::server::{Handler, MAX_UDP_PAYLOAD, MIN_UDP_PAYLOAD, scope_prefix};
use crate::metrics::Transport;

/// Longest name on the wire (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
const CLASS_IN: u16 = 1;
const TYPE_OPT: u16 = 41;
/// EDNS options the fast path reads (client subnet) or may ignore (a
/// cookie, padding), as the general path ignores them.
const OPTION_ECS: u16 = 8;
const OPTION_COOKIE: u16 = 10;
const OPTION_PADDING: u16 = 12;
/// Bytes of the OPT record before its options.
const OPT_FIXED: usize = 11;

/// What one UDP listener reuses from query to query.
#[derive(Debug)]
pub struct Scratch {
    /// The question name, lowercased.
    name: [u8; MAX_NAME],
    choice: Choice,
}

impl Default for Scratch {
    fn default() -> Scratch {
        Scratch {
            name: [0; MAX_NAME],
            choice: Choice::default(),
        }
    }
}

/// The parts of a query the fast path answers from.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Query {
    /// Bytes of the lowercased name in `Scratch::name`.
    name_len: usize,
    /// Every label is letters, digits, `-` and `_`.
    plain: bool,
    qtype: u16,
    /// Where the question ends (header, name, type, class).
    question_end: usize,
    /// The advertised UDP size when the query has an OPT record.
    edns: Option<u16>,
    /// A well-formed client subnet option.
    subnet: Option<ClientSubnet>,
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let two = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([two[0], two[1]]))
}

/// Reads a query the fast path can answer, the name lowercased into
/// `name`; `None` for anything else.
fn parse(raw: &[u8], name: &mut [u8; MAX_NAME]) -> Option<Query> {
    let header = raw.get(..HEADER_LEN)?;
    // QR clear and opcode QUERY.
    if header[2] & 0xf8 != 0 {
        return None;
    }
    let additional = read_u16(header, 10)?;
    if read_u16(header, 4)? != 1
        || read_u16(header, 6)? != 0
        || read_u16(header, 8)? != 0
        || additional > 1
    {
        return None;
    }
    let mut at = HEADER_LEN;
    let mut len = 0;
    let mut plain = true;
    loop {
        let label = *raw.get(at)?;
        // Compression pointers and reserved label types included.
        if label > 63 {
            return None;
        }
        let size = usize::from(label);
        let bytes = raw.get(at + 1..at + 1 + size)?;
        let out = name.get_mut(len..len + 1 + size)?;
        out[0] = label;
        for (dst, &b) in out[1..].iter_mut().zip(bytes) {
            *dst = b.to_ascii_lowercase();
            plain &= b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        }
        len += 1 + size;
        at += 1 + size;
        if label == 0 {
            break;
        }
    }
    let qtype = read_u16(raw, at)?;
    if read_u16(raw, at + 2)? != CLASS_IN {
        return None;
    }
    at += 4;
    let question_end = at;
    let mut edns = None;
    let mut subnet = None;
    if additional == 1 {
        // OPT: root owner, type, UDP size, extended rcode, version, flags.
        if raw.get(at) != Some(&0) || read_u16(raw, at + 1)? != TYPE_OPT {
            return None;
        }
        let size = read_u16(raw, at + 3)?;
        if *raw.get(at + 6)? != 0 {
            // Another EDNS version: BADVERS from the general path.
            return None;
        }
        let rdlen = usize::from(read_u16(raw, at + 9)?);
        at += OPT_FIXED;
        let options = raw.get(at..at + rdlen)?;
        at += rdlen;
        let mut o = 0;
        while o < options.len() {
            let code = read_u16(options, o)?;
            let olen = usize::from(read_u16(options, o + 2)?);
            let data = options.get(o + 4..o + 4 + olen)?;
            o += 4 + olen;
            match code {
                OPTION_ECS if subnet.is_none() => subnet = Some(client_subnet(data)?),
                OPTION_COOKIE | OPTION_PADDING => {}
                _ => return None,
            }
        }
        edns = Some(size);
    }
    if at != raw.len() {
        return None;
    }
    Some(Query {
        name_len: len,
        plain,
        qtype,
        question_end,
        edns,
        subnet,
    })
}

/// A client subnet option's data, if well formed: the address is exactly
/// as long as the source prefix needs, and `ecs::check` accepts it.
fn client_subnet(data: &[u8]) -> Option<ClientSubnet> {
    let family = read_u16(data, 0)?;
    let source = *data.get(2)?;
    let scope = *data.get(3)?;
    let address = data.get(4..)?;
    if address.len() != usize::from(source).div_ceil(8) {
        return None;
    }
    let ip = match family {
        1 => {
            let mut octets = [0u8; 4];
            octets.get_mut(..address.len())?.copy_from_slice(address);
            IpAddr::from(octets)
        }
        2 => {
            let mut octets = [0u8; 16];
            octets.get_mut(..address.len())?.copy_from_slice(address);
            IpAddr::from(octets)
        }
        _ => return None,
    };
    ecs::check(ClientSubnet::new(ip, source, scope)).ok()
}

/// Answers `raw` from `src` into `out` if the fast path can; `false` leaves
/// it (and `out`) to the general path, with nothing counted.
pub fn answer(
    handler: &Handler,
    raw: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> bool {
    let Scratch { name, choice } = scratch;
    let Some(query) = parse(raw, name) else {
        return false;
    };
    let snapshot = handler.snapshot.load();
    let prepared = &snapshot.prepared;
    let Found::Answer(rendered) = prepared.find(&name[..query.name_len], query.qtype, query.plain)
    else {
        return false;
    };

    // The client's location picks the nodes of a geographic answer.
    let mut scope = 0;
    let mut located = None;
    let chosen: &[usize] = match &rendered.geo {
        None => &[],
        Some(geo) => {
            let client = ecs::locating_address(query.subnet.as_ref(), src.ip());
            let found = handler.geo.locate(client);
            if let Some(subnet) = &query.subnet {
                scope = scope_prefix(subnet, found.prefix);
            }
            located = Some(found.country);
            let candidates = if geo.v6 { &prepared.v6 } else { &prepared.v4 };
            choice.choose(candidates, found.coordinates, snapshot.settings.answers)
        }
    };
    let mut node_bytes = 0;
    let mut node_wire_len = 0;
    if let Some(geo) = &rendered.geo {
        for &i in chosen {
            let Some(record) = geo.nodes.get(i) else {
                return false;
            };
            node_bytes += record.len();
        }
        node_wire_len = geo.node_wire_len * chosen.len();
    }

    // Sizes as the general path counts them, so both truncate alike.
    let ecs_len = query.subnet.map_or(0, |s| 4 + usize::from(s.len()));
    let opt_len = query.edns.map_or(0, |_| OPT_FIXED + ecs_len);
    let limit = usize::from(query.edns.map_or(MIN_UDP_PAYLOAD, |s| {
        s.clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
    }));
    let question = query.question_end - HEADER_LEN;
    let fits = HEADER_LEN + question + rendered.wire_len + node_wire_len + opt_len <= limit;
    if fits && HEADER_LEN + question + rendered.records.len() + node_bytes + opt_len > limit {
        // Fits only with name compression: the general path compresses.
        return false;
    }
    let counts = if fits {
        let Ok(answers) = u16::try_from(usize::from(rendered.counts[0]) + chosen.len()) else {
            return false;
        };
        [answers, rendered.counts[1], rendered.counts[2]]
    } else {
        [0; 3]
    };

    // Counted as the general path counts.
    let metrics = &handler.metrics.dns;
    if let Some(country) = located {
        metrics.client(country);
    }
    if let Some(geo) = &rendered.geo {
        let nodes = if geo.v6 { &snapshot.v6 } else { &snapshot.v4 };
        for node in chosen.iter().filter_map(|&i| nodes.get(i)) {
            metrics.answered(&node.name);
        }
    }
    metrics.query(
        Some(RecordType::from(query.qtype)),
        rendered.rcode,
        Transport::Udp,
    );

    out.clear();
    // Id; QR, opcode QUERY, AA, TC, the query's RD; its CD and our code.
    out.extend_from_slice(&raw[..2]);
    let mut flags = 0x80 | (raw[2] & 0x01);
    if rendered.authoritative {
        flags |= 0x04;
    }
    if !fits {
        flags |= 0x02;
    }
    out.push(flags);
    out.push((raw[3] & 0x10) | rendered.rcode.low());
    let additional = counts[2] + u16::from(query.edns.is_some());
    for count in [1, counts[0], counts[1], additional] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    // The question as the client wrote it, case and all.
    out.extend_from_slice(&raw[HEADER_LEN..query.question_end]);
    if fits {
        // A geographic answer has only answer records: the nodes follow.
        out.extend_from_slice(&rendered.records);
        if let Some(geo) = &rendered.geo {
            for &i in chosen {
                if let Some(record) = geo.nodes.get(i) {
                    out.extend_from_slice(record);
                }
            }
        }
    }
    if query.edns.is_some() {
        // OPT: root, type, our UDP size, rcode/version/flags 0, options.
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&MAX_UDP_PAYLOAD.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        // At most 4 + 4 + 16 bytes.
        out.extend_from_slice(&(ecs_len as u16).to_be_bytes());
        if let Some(subnet) = query.subnet {
            write_subnet(out, &subnet, scope);
        }
    }
    true
}

/// The response's client subnet option: the query's family, source prefix
/// and address, with `scope` (0 when the client hid its address).
fn write_subnet(out: &mut Vec<u8>, subnet: &ClientSubnet, scope: u8) {
    let source = subnet.source_prefix();
    let scope = if source == 0 { 0 } else { scope };
    let address_len = usize::from(source).div_ceil(8);
    out.extend_from_slice(&OPTION_ECS.to_be_bytes());
    out.extend_from_slice(&(4 + address_len as u16).to_be_bytes());
    match subnet.addr() {
        IpAddr::V4(ip) => {
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&[source, scope]);
            out.extend_from_slice(&ip.octets()[..address_len.min(4)]);
        }
        IpAddr::V6(ip) => {
            out.extend_from_slice(&2u16.to_be_bytes());
            out.extend_from_slice(&[source, scope]);
            out.extend_from_slice(&ip.octets()[..address_len.min(16)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arc_swap::ArcSwap;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as Question};
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    use hickory_proto::rr::{DNSClass, Name};
    use hickory_server::net::xfer::Protocol;

    use super::*;
    use crate::dns::exchange::{self, Outcome};
    use crate::dns::geo::GeoIp;
    use crate::dns::zone::{Settings, build, tests::node, tests::sources};
    use crate::metrics::Metrics;
    use crate::metrics::access_log::AccessLog;

    const SITE: &str = r#"
[[domain]]
name = "example.com"
aliases = ["www.example.com"]

[[domain.records]]
type = "MX"
value = "mail.example.com"
priority = 10

[[domain.records]]
type = "A"
name = "mail"
value = "192.0.2.25"

[[domain.records]]
type = "CNAME"
name = "docs"
value = "mail.example.com"

[[domain.records]]
type = "CNAME"
name = "go"
value = "www.example.com"

[[domain.records]]
type = "TXT"
value = "v=spf1 mx -all"

[[domain]]
name = "example.net"

[[domain.records]]
type = "TXT"
name = "*.wild"
value = "wild"
"#;

    /// The client subnets of the GeoIP test database: London, Seattle
    /// area, Changchun, and one the database does not know.
    const SUBNETS: [(&str, u8); 4] = [
        ("81.2.69.142", 32),
        ("216.160.83.56", 32),
        ("175.16.199.0", 24),
        ("198.51.100.0", 24),
    ];

    fn handler(extra: &str) -> Handler {
        let mut tokyo = node("tokyo", "203.0.113.1", (35.68, 139.69));
        tokyo.place.ipv6 = "2001:db8::3".parse().ok();
        let nodes = vec![
            node("london", "192.0.2.1", (51.51, -0.13)),
            node("seattle", "198.51.100.1", (47.61, -122.33)),
            tokyo,
        ];
        let settings = Settings {
            ttl: 60,
            answers: 1,
        };
        let geo = GeoIp::open(&crate::dns::geo::tests::fixture()).unwrap_or_else(|e| panic!("{e}"));
        let snapshot = build(
            &sources(&format!("{SITE}{extra}")),
            &nodes,
            &[],
            &geo,
            settings,
        );
        Handler {
            snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
            geo: Arc::new(geo),
            metrics: Arc::new(Metrics::with_access_log(AccessLog::default())),
        }
    }

    fn src() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 5353))
    }

    /// A query for `name`/`rtype`, with EDNS of `size` when given and the
    /// client subnet `subnet` in it.
    fn query(
        id: u16,
        name: &str,
        rtype: RecordType,
        size: Option<u16>,
        subnet: Option<(&str, u8)>,
    ) -> Vec<u8> {
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = id.is_multiple_of(2);
        message.metadata.checking_disabled = id.is_multiple_of(3);
        message.add_query(Question::query(
            Name::from_ascii(name).unwrap_or_else(|e| panic!("{e}")),
            rtype,
        ));
        if let Some(size) = size {
            let mut edns = Edns::new();
            edns.set_max_payload(size);
            if let Some((ip, prefix)) = subnet {
                let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{e}"));
                edns.options_mut()
                    .insert(EdnsOption::Subnet(ClientSubnet::new(ip, prefix, 0)));
            }
            message.edns = Some(edns);
        }
        message.to_vec().unwrap_or_else(|e| panic!("{e}"))
    }

    fn fast(handler: &Handler, raw: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        answer(handler, raw, src(), &mut out, &mut Scratch::default()).then_some(out)
    }

    fn general(handler: &Handler, raw: &[u8]) -> Vec<u8> {
        let outcome = block_on(exchange::exchange(
            handler,
            raw.to_vec(),
            src(),
            Protocol::Udp,
        ));
        match outcome {
            Outcome::Answered(bytes) => bytes,
            other => panic!("the general path gave {other:?}"),
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(future)
    }

    fn decode(bytes: &[u8]) -> Message {
        Message::from_vec(bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
    }

    /// Both paths give the same message (names compared without case, as
    /// DNS compares them), and the fast path keeps the question's bytes.
    fn same(handler: &Handler, raw: &[u8]) -> Message {
        let fast_bytes =
            fast(handler, raw).unwrap_or_else(|| panic!("not answered fast: {:?}", decode(raw)));
        let (fast, general) = (decode(&fast_bytes), decode(&general(handler, raw)));
        assert_eq!(fast.metadata, general.metadata, "{fast}\n{general}");
        assert_eq!(fast.queries, general.queries);
        assert_eq!(fast.answers, general.answers, "{fast}\n{general}");
        assert_eq!(fast.authorities, general.authorities, "{fast}\n{general}");
        assert_eq!(fast.additionals, general.additionals, "{fast}\n{general}");
        assert_eq!(fast.edns, general.edns, "{fast}\n{general}");
        let question_end = parse(raw, &mut [0; MAX_NAME]).map_or(0, |q| q.question_end);
        assert_eq!(fast_bytes[..2], raw[..2]);
        assert_eq!(
            fast_bytes[HEADER_LEN..question_end],
            raw[HEADER_LEN..question_end]
        );
        fast
    }

    #[test]
    fn every_prepared_question_gets_the_general_paths_answer() {
        let handler = handler("");
        let names = [
            "example.com.",
            "www.example.com.",
            "ExAmple.COM.",
            "WWW.Example.Com.",
            "mail.example.com.",
            "docs.example.com.",
            "go.example.com.",
            "london.ns.example.com.",
            "ns.example.com.",
            "nothing.example.com.",
            "deep.nothing.EXAMPLE.com.",
        ];
        let types = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::TXT,
            RecordType::NS,
            RecordType::SOA,
            RecordType::CAA,
            RecordType::CNAME,
            RecordType::HTTPS,
            RecordType::ANY,
        ];
        let mut id = 1;
        for name in names {
            for rtype in types {
                for size in [None, Some(512), Some(1232), Some(4096)] {
                    let subnets: Vec<Option<(&str, u8)>> = match size {
                        None => vec![None],
                        Some(_) => std::iter::once(None)
                            .chain(SUBNETS.iter().map(|s| Some(*s)))
                            .chain([Some(("0.0.0.0", 0)), Some(("2001:218::", 32))])
                            .collect(),
                    };
                    for subnet in subnets {
                        id += 1;
                        same(&handler, &query(id, name, rtype, size, subnet));
                    }
                }
            }
        }
    }

    #[test]
    fn the_id_case_and_ecs_scope_are_patched_per_query() {
        let handler = handler("");
        let london = query(
            0xbeef,
            "wWw.ExAmPlE.cOm.",
            RecordType::A,
            Some(1232),
            Some(SUBNETS[0]),
        );
        let reply = same(&handler, &london);
        assert_eq!(reply.metadata.id, 0xbeef);
        assert!(reply.metadata.authoritative);
        assert_eq!(reply.queries[0].name().to_ascii(), "wWw.ExAmPlE.cOm.");
        assert_eq!(reply.answers.len(), 1);
        assert_eq!(reply.answers[0].data.to_string(), "192.0.2.1");
        let Some(EdnsOption::Subnet(subnet)) =
            reply.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet))
        else {
            panic!("no client subnet in {reply}");
        };
        // The test database's London network is a /31.
        assert_eq!(subnet.scope_prefix(), 31);
        assert_eq!(
            reply.edns.as_ref().map(|e| e.max_payload()),
            Some(MAX_UDP_PAYLOAD)
        );

        let seattle = same(
            &handler,
            &query(
                7,
                "www.example.com.",
                RecordType::A,
                Some(1232),
                Some(SUBNETS[1]),
            ),
        );
        assert_eq!(seattle.metadata.id, 7);
        assert_eq!(seattle.answers[0].data.to_string(), "198.51.100.1");

        // A fixed answer does not depend on the subnet: scope 0.
        let mx = same(
            &handler,
            &query(
                8,
                "example.com.",
                RecordType::MX,
                Some(1232),
                Some(SUBNETS[1]),
            ),
        );
        let Some(EdnsOption::Subnet(subnet)) =
            mx.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet))
        else {
            panic!("no client subnet in {mx}");
        };
        assert_eq!(subnet.scope_prefix(), 0);

        // An unknown location gets every healthy node.
        let everyone = same(
            &handler,
            &query(9, "example.com.", RecordType::A, None, None),
        );
        assert_eq!(everyone.answers.len(), 3);
    }

    #[test]
    fn large_answers_are_truncated_by_the_clients_udp_size() {
        let mut extra = String::new();
        for i in 0..12 {
            extra.push_str(&format!(
                "\n[[domain.records]]\ntype = \"TXT\"\nname = \"big\"\nvalue = \"{i:02}{}\"\n",
                "x".repeat(150)
            ));
        }
        // One record of 600 bytes: whole at 1232 bytes, truncated at 512.
        extra.push_str(&format!(
            "\n[[domain.records]]\ntype = \"TXT\"\nname = \"mid\"\nvalue = \"{}\"\n",
            "y".repeat(600)
        ));
        // The records belong to example.net, the last domain of the site.
        let handler = handler(&extra);
        for size in [None, Some(512), Some(1232), Some(4096)] {
            let big = same(
                &handler,
                &query(3, "big.example.net.", RecordType::TXT, size, None),
            );
            assert!(big.metadata.truncation, "{big}");
            assert!(big.answers.is_empty());
            assert_eq!(big.queries.len(), 1);
        }
        let small = same(
            &handler,
            &query(4, "mid.example.net.", RecordType::TXT, None, None),
        );
        assert!(small.metadata.truncation);
        let whole = same(
            &handler,
            &query(5, "mid.example.net.", RecordType::TXT, Some(1232), None),
        );
        assert!(!whole.metadata.truncation);
        assert_eq!(whole.answers.len(), 1);
        // A truncated answer still echoes the client subnet.
        let ecs = same(
            &handler,
            &query(
                6,
                "big.example.net.",
                RecordType::TXT,
                Some(1232),
                Some(SUBNETS[2]),
            ),
        );
        assert!(ecs.metadata.truncation);
        assert!(
            ecs.edns
                .as_ref()
                .and_then(|e| e.option(EdnsCode::Subnet))
                .is_some()
        );
    }

    #[test]
    fn what_the_fast_path_does_not_know_is_left_to_the_general_path() {
        let handler = handler("");
        let plain = query(1, "example.com.", RecordType::A, Some(1232), None);
        assert!(fast(&handler, &plain).is_some());

        // Two questions.
        let mut two = Message::new(2, MessageType::Query, OpCode::Query);
        for _ in 0..2 {
            two.add_query(Question::query(
                Name::from_ascii("example.com.").unwrap_or_default(),
                RecordType::A,
            ));
        }
        assert_eq!(fast(&handler, &two.to_vec().unwrap_or_default()), None);
        // Another opcode, a response, another class.
        let mut notify = plain.clone();
        notify[2] |= 4 << 3;
        assert_eq!(fast(&handler, &notify), None);
        let mut response = plain.clone();
        response[2] |= 0x80;
        assert_eq!(fast(&handler, &response), None);
        let mut chaos = Message::new(3, MessageType::Query, OpCode::Query);
        let mut question = Question::query(
            Name::from_ascii("example.com.").unwrap_or_default(),
            RecordType::TXT,
        );
        question.set_query_class(DNSClass::CH);
        chaos.add_query(question);
        assert_eq!(fast(&handler, &chaos.to_vec().unwrap_or_default()), None);
        // EDNS version 1, an unknown option, a malformed subnet, extra bytes.
        let mut v1 = Message::new(4, MessageType::Query, OpCode::Query);
        v1.add_query(Question::query(
            Name::from_ascii("example.com.").unwrap_or_default(),
            RecordType::A,
        ));
        let mut edns = Edns::new();
        edns.set_version(1);
        v1.edns = Some(edns.clone());
        assert_eq!(fast(&handler, &v1.to_vec().unwrap_or_default()), None);
        edns.set_version(0);
        edns.options_mut()
            .insert(EdnsOption::Unknown(65001, vec![1, 2]));
        v1.edns = Some(edns);
        assert_eq!(fast(&handler, &v1.to_vec().unwrap_or_default()), None);
        let bits = query(
            5,
            "example.com.",
            RecordType::A,
            Some(1232),
            Some(("81.2.69.143", 31)),
        );
        assert_eq!(fast(&handler, &bits), None);
        let mut longer = plain.clone();
        longer.push(0);
        assert_eq!(fast(&handler, &longer), None);
        // Short and cut messages.
        for len in 0..plain.len() {
            assert_eq!(fast(&handler, &plain[..len]), None, "{len} bytes");
        }
        // Zone transfers, unprepared types, names outside every zone,
        // missing names in a zone with a wildcard.
        assert_eq!(
            fast(
                &handler,
                &query(6, "example.com.", RecordType::AXFR, None, None)
            ),
            None
        );
        assert_eq!(
            fast(
                &handler,
                &query(6, "example.com.", RecordType::NAPTR, None, None)
            ),
            None
        );
        assert_eq!(
            fast(
                &handler,
                &query(6, "nope.example.com.", RecordType::NAPTR, None, None)
            ),
            None
        );
        assert_eq!(
            fast(
                &handler,
                &query(7, "example.org.", RecordType::A, None, None)
            ),
            None
        );
        assert_eq!(
            fast(
                &handler,
                &query(8, "x.wild.example.net.", RecordType::TXT, None, None)
            ),
            None
        );
        assert_eq!(
            fast(
                &handler,
                &query(8, "nope.example.net.", RecordType::A, None, None)
            ),
            None
        );
        // But existing names of that zone are prepared.
        same(
            &handler,
            &query(9, "example.net.", RecordType::SOA, Some(1232), None),
        );
    }

    #[test]
    fn answers_are_counted_as_the_general_path_counts_them() {
        let handler = handler("");
        let london = query(
            1,
            "example.com.",
            RecordType::A,
            Some(1232),
            Some(SUBNETS[0]),
        );
        for _ in 0..3 {
            assert!(fast(&handler, &london).is_some());
        }
        let nx = query(2, "nothing.example.com.", RecordType::A, None, None);
        assert!(fast(&handler, &nx).is_some());
        let dns = &handler.metrics.dns;
        assert_eq!(dns.answers(), vec![("london".to_string(), 3)]);
        assert_eq!(dns.countries(), vec![("GB".to_string(), 3)]);
        let mut queries = dns.queries();
        queries.sort();
        assert_eq!(
            queries,
            vec![("A", "NOERROR", "udp", 3), ("A", "NXDOMAIN", "udp", 1)]
        );
    }
}
