//! Generated DNS messages through the whole request path (framing checks,
//! hickory's decoder, our handler, the response encoder) over UDP and TCP:
//! no message may panic it, every reply must decode, and whatever the UDP
//! fast path answers it must answer as the general path does.

#![cfg(test)]

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;

use super::exchange::{Outcome, exchange};
use super::fast::{self, Scratch};
use super::geo::GeoIp;
use super::server::Handler;
use super::zone::{self, Settings, ZoneSource};
use crate::config::{NodePlace, SiteConfig};
use crate::fuzz::{self, input};
use crate::store::NodeRow;

const SITE: &str = r#"
[[domain]]
name = "example.com"
aliases = ["www.example.com"]
[[domain.records]]
type = "MX"
value = "mail.example.com"
priority = 10
[[domain.records]]
type = "TXT"
name = "*.w"
value = "wild"
[[domain.records]]
type = "CNAME"
name = "docs"
value = "www.example.com"
[[domain.records]]
type = "NS"
name = "sub"
value = "ns1.elsewhere.example"
"#;

fn handler() -> Handler {
    let config = SiteConfig::parse("makiatto.toml", SITE).unwrap_or_else(|e| panic!("{e}"));
    let sources: Vec<ZoneSource> = config
        .domains
        .into_iter()
        .map(|d| ZoneSource {
            domain: Arc::new(d),
            previews: Vec::new(),
            permalinks: Vec::new(),
        })
        .collect();
    let node = |name: &str, v4: [u8; 4], at: (f64, f64)| NodeRow {
        place: NodePlace {
            name: name.into(),
            ipv4: Some(v4.into()),
            ipv6: Some(std::net::Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                0,
                u16::from(v4[3]),
            )),
            latitude: Some(at.0),
            longitude: Some(at.1),
        },
        healthy: true,
    };
    let nodes = [
        node("london", [198, 51, 100, 1], (51.5, -0.1)),
        node("tokyo", [203, 0, 113, 1], (35.7, 139.7)),
    ];
    let settings = Settings {
        ttl: 60,
        answers: 2,
    };
    let snapshot = zone::build(&sources, &nodes, &[], &GeoIp::none(), settings);
    Handler {
        snapshot: Arc::new(ArcSwap::from_pointee(snapshot)),
        geo: Arc::new(GeoIp::none()),
        metrics: Arc::default(),
    }
}

/// Valid queries of every kind the handler treats differently.
fn seeds() -> Vec<Vec<u8>> {
    let names = [
        "example.com.",
        "www.example.com.",
        "a.w.example.com.",
        "docs.example.com.",
        "x.sub.example.com.",
        "london.ns.example.com.",
        "_acme-challenge.example.com.",
        "missing.example.com.",
        "example.org.",
    ];
    let types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::NS,
        RecordType::SOA,
        RecordType::CAA,
        RecordType::ANY,
        RecordType::AXFR,
    ];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for (j, rtype) in types.iter().enumerate() {
            let Ok(name) = Name::from_ascii(name) else {
                continue;
            };
            let mut message = Message::new((i * 16 + j) as u16, MessageType::Query, OpCode::Query);
            message.add_query(Query::query(name, *rtype));
            if (i + j) % 2 == 0 {
                let mut edns = Edns::new();
                if j % 3 == 0 {
                    let subnet = ClientSubnet::new([203, 0, 113, 0].into(), 24, 0);
                    edns.options_mut().insert(EdnsOption::Subnet(subnet));
                }
                message.edns = Some(edns);
            }
            if let Ok(bytes) = message.to_vec() {
                out.push(bytes);
            }
        }
    }
    out
}

#[test]
fn generated_messages_never_panic_the_handler() {
    let handler = handler();
    let seeds = seeds();
    let dictionary: [&[u8]; 6] = [
        b"\xc0\x0c",
        b"\x00\x00\x29\x10\x00",
        b"\x00\x08\x00\x07\x00\x01\x18\x00",
        b"\x07example\x03com\x00",
        b"\x3f",
        b"\x00\xff\x00\x01",
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let src = SocketAddr::from(([198, 51, 100, 7], 5353));
    let mut count = 0u64;
    let mut out = Vec::new();
    let mut scratch = Scratch::default();
    let mut fast_answers = 0u64;
    fuzz::run(
        "dns handler",
        0xd115,
        |rng| input::generate(rng, &seeds, &dictionary),
        |raw| {
            count += 1;
            let protocol = if count.is_multiple_of(4) {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            let outcome = runtime.block_on(exchange(&handler, raw.to_vec(), src, protocol));
            if let Outcome::Answered(bytes) | Outcome::FormErr(bytes) = &outcome {
                assert!(
                    Message::from_vec(bytes).is_ok(),
                    "a reply that does not decode"
                );
                if protocol == Protocol::Udp {
                    assert!(bytes.len() <= 1232, "a UDP reply over 1232 bytes");
                }
            }
            if protocol == Protocol::Udp
                && same_as_fast_path(&handler, raw, src, &outcome, &mut out, &mut scratch)
            {
                fast_answers += 1;
            }
        },
    );
    // The generator keeps many queries whole: the comparison ran.
    assert!(
        fast_answers > 0,
        "the fast path answered no generated query"
    );
}

/// When the UDP fast path answers `raw`, its reply says what the general
/// path's `outcome` says (names compared without case, as DNS does).
/// Returns whether the fast path answered.
fn same_as_fast_path(
    handler: &Handler,
    raw: &[u8],
    src: SocketAddr,
    outcome: &Outcome,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> bool {
    if !fast::answer(handler, raw, src, out, scratch) {
        return false;
    }
    let Outcome::Answered(general) = outcome else {
        panic!("the fast path answered what the general path gave {outcome:?}");
    };
    assert!(out.len() <= 1232, "a fast UDP reply over 1232 bytes");
    let fast =
        Message::from_vec(out).unwrap_or_else(|e| panic!("a fast reply that does not decode: {e}"));
    let general = Message::from_vec(general).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fast.metadata, general.metadata, "{fast}\n{general}");
    assert_eq!(fast.queries, general.queries, "{fast}\n{general}");
    assert_eq!(fast.answers, general.answers, "{fast}\n{general}");
    assert_eq!(fast.authorities, general.authorities, "{fast}\n{general}");
    assert_eq!(fast.additionals, general.additionals, "{fast}\n{general}");
    assert_eq!(fast.edns, general.edns, "{fast}\n{general}");
    true
}

/// Decodes hex test input.
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Found by the generator: a question name ending in a compression
/// pointer into the header. hickory echoes the question's original bytes,
/// pointer included, where it points at the response's own flags, so the
/// reply did not decode; such a question is now FORMERR.
#[test]
fn a_compressed_question_gets_a_formerr_that_decodes() {
    let handler = handler();
    let raw = unhex(
        "005800000001000000000000066c6f6e646f6ec0026e73076578616d70c00c6c6503636f6d0000fc0001f4f6ccd21c362a",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let src = SocketAddr::from(([198, 51, 100, 7], 5353));
    let outcome = runtime.block_on(exchange(&handler, raw, src, Protocol::Udp));
    let Outcome::FormErr(bytes) = outcome else {
        panic!("not FORMERR: {outcome:?}");
    };
    let reply = Message::from_vec(&bytes).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.metadata.id, 0x58);
}
