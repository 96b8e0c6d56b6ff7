//! Answers rendered to wire bytes when the snapshot is built, so the UDP
//! fast path (`fast.rs`) answers a query by copying bytes instead of
//! decoding it into records, resolving and encoding a response.
//!
//! Every (name, type) the zones hold is answered once by `answer::resolve`,
//! the one place protocol rules live, and its records are kept as wire
//! bytes with names uncompressed, so they can be copied after any question.
//! A geographic answer keeps the fixed part (a CNAME leading to the name)
//! and one rendered record per node; the query picks the nodes and the
//! records are appended. Names absent from a zone with no wildcard and no
//! delegation are NXDOMAIN with the zone's negative SOA, rendered once.
//! Anything else (other types, wildcard zones, other classes) is left to
//! the general path, so the fast path never decides what `resolve` would
//! not.

use std::collections::HashMap;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use tracing::warn;

use super::answer;
use super::select::Candidate;
use super::zone::{Snapshot, Zone, name_wire_len};

/// The query types rendered for every name: what resolvers ask an
/// authoritative server for nearly always. Others take the general path.
const QTYPES: [RecordType; 14] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::NS,
    RecordType::SOA,
    RecordType::MX,
    RecordType::TXT,
    RecordType::CAA,
    RecordType::CNAME,
    RecordType::SRV,
    RecordType::HTTPS,
    RecordType::SVCB,
    RecordType::PTR,
    RecordType::DS,
    RecordType::ANY,
];

/// One answer as wire bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub rcode: ResponseCode,
    /// The AA bit.
    pub authoritative: bool,
    /// Records in the answer, authority and additional sections (`records`
    /// holds them in that order). A geographic answer adds its nodes' to
    /// the first.
    pub counts: [u16; 3],
    /// The records, names uncompressed.
    pub records: Box<[u8]>,
    /// The size the general path counts for these records when deciding
    /// UDP truncation, so both paths truncate the same answers.
    pub wire_len: usize,
    /// Set when the client's location chooses part of the answer.
    pub geo: Option<Geo>,
}

/// The chosen part of a geographic answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Geo {
    /// AAAA (nodes from the snapshot's `v6`) rather than A (`v4`).
    pub v6: bool,
    /// One record per node of that list, in its order.
    pub nodes: Box<[Box<[u8]>]>,
    /// What the general path counts per node record (`wire_len`).
    pub node_wire_len: usize,
}

/// The pre-rendered answers of one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// By lowercase wire name: the rendered answer per query type.
    names: HashMap<Box<[u8]>, Vec<(u16, Rendered)>>,
    /// By lowercase wire apex: the answer to every name the zone lacks,
    /// `None` when that depends on the name (wildcards, delegations).
    zones: HashMap<Box<[u8]>, Option<Rendered>>,
    /// Selection candidates for A answers (the snapshot's `v4`).
    pub v4: Vec<Candidate>,
    /// Selection candidates for AAAA answers (the snapshot's `v6`).
    pub v6: Vec<Candidate>,
}

/// What the prepared answers say about one question.
#[derive(Debug, PartialEq)]
pub enum Found<'p> {
    Answer(&'p Rendered),
    /// Not prepared: the general path decides.
    Unprepared,
}

impl Prepared {
    /// Renders every answer `snapshot` gives to the common query types.
    pub fn build(snapshot: &Snapshot) -> Prepared {
        let mut prepared = Prepared {
            v4: snapshot.v4.iter().map(|n| n.candidate).collect(),
            v6: snapshot.v6.iter().map(|n| n.candidate).collect(),
            ..Prepared::default()
        };
        for zone in snapshot.zones() {
            for name in zone.names.keys() {
                let key = wire(name);
                if prepared.names.contains_key(&key) {
                    continue;
                }
                let answers = QTYPES
                    .iter()
                    .filter_map(|&qtype| {
                        let rendered = render_answer(snapshot, name, qtype)?;
                        Some((u16::from(qtype), rendered))
                    })
                    .collect();
                prepared.names.insert(key, answers);
            }
            prepared
                .zones
                .insert(wire(&zone.apex), render_negative(zone));
        }
        prepared
    }

    /// The answer to `name` (lowercase, uncompressed wire form) and `qtype`.
    /// `plain` says every label is letters, digits, `-` and `_`: only such
    /// names, asked for a prepared type, are answered NXDOMAIN here,
    /// leaving odd names and types to the decoder.
    pub fn find(&self, name: &[u8], qtype: u16, plain: bool) -> Found<'_> {
        if let Some(answers) = self.names.get(name) {
            return match answers.iter().find(|(t, _)| *t == qtype) {
                Some((_, rendered)) => Found::Answer(rendered),
                None => Found::Unprepared,
            };
        }
        if !plain || !QTYPES.iter().any(|&t| u16::from(t) == qtype) {
            return Found::Unprepared;
        }
        // The longest suffix that is a zone apex: the most specific zone.
        let mut at = 0;
        while let Some(&len) = name.get(at) {
            if len == 0 {
                break;
            }
            at += 1 + usize::from(len);
            if let Some(zone) = self.zones.get(name.get(at..).unwrap_or_default()) {
                return match zone {
                    Some(rendered) => Found::Answer(rendered),
                    None => Found::Unprepared,
                };
            }
        }
        // Outside every hosted zone (REFUSED): rare, left to the general path.
        Found::Unprepared
    }
}

/// `name` in uncompressed wire form.
fn wire(name: &LowerName) -> Box<[u8]> {
    let name = Name::from(name.clone());
    let mut out = Vec::with_capacity(name_wire_len(&name));
    for label in name.iter() {
        // Labels of a parsed name are at most 63 bytes.
        out.push(u8::try_from(label.len()).unwrap_or(63));
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out.into_boxed_slice()
}

/// `records` as wire bytes, each name written out whole so the bytes are
/// correct wherever they are copied. `None` (logged) if one cannot be
/// encoded: that question then takes the general path.
pub fn render(records: &[Record]) -> Option<Box<[u8]>> {
    let mut out = Vec::new();
    let mut encoder = BinEncoder::new(&mut out);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    for record in records {
        if let Err(e) = record.emit(&mut encoder) {
            warn!(record = %record, error = %e, "record not pre-rendered");
            return None;
        }
    }
    Some(out.into_boxed_slice())
}

fn count(n: usize) -> Option<u16> {
    u16::try_from(n).ok()
}

/// `resolve`'s answer to `name`/`qtype`, rendered; `None` for answers the
/// fast path leaves alone (REFUSED and anything not NOERROR/NXDOMAIN).
fn render_answer(snapshot: &Snapshot, name: &LowerName, qtype: RecordType) -> Option<Rendered> {
    // Resolved as if nobody knew where the client is: the geographic part
    // is redone per query below.
    let resolved = answer::resolve(snapshot, name, qtype, &mut || None);
    if !matches!(
        resolved.rcode,
        ResponseCode::NoError | ResponseCode::NXDomain
    ) {
        return None;
    }
    if !resolved.geographic {
        let all: Vec<Record> = resolved
            .answers
            .iter()
            .chain(&resolved.authority)
            .chain(&resolved.additional)
            .cloned()
            .collect();
        return Some(Rendered {
            rcode: resolved.rcode,
            authoritative: resolved.authoritative,
            counts: [
                count(resolved.answers.len())?,
                count(resolved.authority.len())?,
                count(resolved.additional.len())?,
            ],
            records: render(&all)?,
            wire_len: resolved.wire_len,
            geo: None,
        });
    }
    // A geographic answer is the fixed records leading to the name, then
    // the chosen nodes' addresses, and nothing else.
    if !resolved.authority.is_empty() || !resolved.additional.is_empty() {
        return None;
    }
    let fixed = resolved.answers.len().checked_sub(resolved.chosen.len())?;
    let owner = resolved.answers.last()?.name.clone();
    let v6 = resolved.chosen_type == RecordType::AAAA;
    let ttl = snapshot.settings.ttl;
    let list = if v6 { &snapshot.v6 } else { &snapshot.v4 };
    let nodes = list
        .iter()
        .map(|node| {
            let data = match (v6, node.ipv4, node.ipv6) {
                (false, Some(ip), _) => RData::A(A(ip)),
                (true, _, Some(ip)) => RData::AAAA(AAAA(ip)),
                _ => return None,
            };
            render(&[Record::from_rdata(owner.clone(), ttl, data)])
        })
        .collect::<Option<Vec<_>>>()?;
    let node_wire_len = name_wire_len(&owner) + 10 + if v6 { 16 } else { 4 };
    let chosen_len = resolved.chosen.len() * node_wire_len;
    Some(Rendered {
        rcode: resolved.rcode,
        authoritative: resolved.authoritative,
        counts: [count(fixed)?, 0, 0],
        records: render(&resolved.answers[..fixed])?,
        wire_len: resolved.wire_len.checked_sub(chosen_len)?,
        geo: Some(Geo {
            v6,
            nodes: nodes.into_boxed_slice(),
            node_wire_len,
        }),
    })
}

/// The NXDOMAIN every missing name of `zone` gets, when that does not
/// depend on the name: no wildcard could cover it and no delegation
/// could refer it.
fn render_negative(zone: &Zone) -> Option<Rendered> {
    let wildcard = zone
        .names
        .keys()
        .any(|name| Name::from(name.clone()).iter().next() == Some(b"*".as_slice()));
    if zone.has_cuts || wildcard {
        return None;
    }
    Some(Rendered {
        rcode: ResponseCode::NXDomain,
        authoritative: true,
        counts: [0, count(zone.negative_soa.records.len())?, 0],
        records: render(&zone.negative_soa.records)?,
        wire_len: zone.negative_soa.wire_len,
        geo: None,
    })
}
