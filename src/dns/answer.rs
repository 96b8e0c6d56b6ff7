//! Answering one question from the snapshot: which records go in which
//! section, and the response code. Pure over the snapshot, so protocol
//! rules (NXDOMAIN versus NODATA, referrals, CNAME chains, minimal ANY) are
//! unit-tested without sockets.
//!
//! Invariant: every answer comes from the snapshot; a name outside the
//! hosted zones is REFUSED, never looked up elsewhere (no recursion).

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::select;
use super::zone::{DnsNode, Entry, RrSet, Snapshot, Zone, name_wire_len, record_wire_len};

/// Longest CNAME chain followed inside a zone; longer ones are loops.
const MAX_CHAIN: usize = 8;

/// The sections and code of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    /// AA: set for everything in our zones except referrals.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// Upper bound of the records' encoded size, for UDP truncation.
    pub wire_len: usize,
    /// Whether the client's location chose the records (the ECS scope then
    /// matters).
    pub geographic: bool,
    /// The nodes the answer gives out, as indices into the snapshot's
    /// `v4` (A) or `v6` (AAAA) list, for the per-node answer counts.
    pub chosen: Vec<usize>,
    /// Which list `chosen` indexes.
    pub chosen_type: RecordType,
}

impl Answer {
    fn new(rcode: ResponseCode, authoritative: bool) -> Answer {
        Answer {
            rcode,
            authoritative,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            wire_len: 0,
            geographic: false,
            chosen: Vec::new(),
            chosen_type: RecordType::A,
        }
    }

    /// REFUSED: not a name we are authoritative for.
    pub fn refused() -> Answer {
        Answer::new(ResponseCode::Refused, false)
    }

    fn add_answer(&mut self, set: &RrSet, owner: Option<&Name>) {
        add(&mut self.answers, &mut self.wire_len, set, owner);
    }

    fn add_authority(&mut self, set: &RrSet) {
        add(&mut self.authority, &mut self.wire_len, set, None);
    }

    fn add_additional(&mut self, set: &RrSet) {
        add(&mut self.additional, &mut self.wire_len, set, None);
    }
}

/// Appends `set`, renamed to `owner` when it was synthesised from a
/// wildcard.
fn add(section: &mut Vec<Record>, wire_len: &mut usize, set: &RrSet, owner: Option<&Name>) {
    match owner {
        None => {
            section.extend(set.records.iter().cloned());
            *wire_len += set.wire_len;
        }
        Some(owner) => {
            for record in &set.records {
                let mut record = record.clone();
                record.name = owner.clone();
                *wire_len += record_wire_len(&record);
                section.push(record);
            }
        }
    }
}

/// Answers `qname`/`qtype`. `locate` gives the client's coordinates and is
/// called only when the answer depends on them.
pub fn resolve(
    snapshot: &Snapshot,
    qname: &LowerName,
    qtype: RecordType,
    locate: &mut dyn FnMut() -> Option<(f64, f64)>,
) -> Answer {
    let Some(zone) = snapshot.zone_for(qname) else {
        return Answer::refused();
    };
    if zone.has_cuts
        && let Some(answer) = referral(zone, qname, qtype)
    {
        return answer;
    }
    let mut answer = Answer::new(ResponseCode::NoError, true);
    let mut name = qname.clone();
    for _ in 0..MAX_CHAIN {
        let Some((entry, wildcard)) = lookup(zone, &name) else {
            // RFC 6604: the code describes the last name of a chain.
            answer.rcode = ResponseCode::NXDomain;
            answer.add_authority(&zone.negative_soa);
            return answer;
        };
        let owner: Option<Name> = wildcard.then(|| Name::from(name.clone()));
        if qtype != RecordType::CNAME
            && let Some(cname) = entry.get(RecordType::CNAME)
        {
            answer.add_answer(cname, owner.as_ref());
            let target = cname.records.iter().find_map(|r| match &r.data {
                RData::CNAME(c) => Some(LowerName::from(c.0.clone())),
                _ => None,
            });
            match target {
                Some(target) if zone.apex.zone_of(&target) => {
                    name = target;
                    continue;
                }
                // Out of zone: the resolver follows it.
                _ => return answer,
            }
        }
        let before = answer.answers.len();
        add_data(
            &mut answer,
            snapshot,
            zone,
            entry,
            &name,
            qtype,
            owner.as_ref(),
            locate,
        );
        if answer.answers.len() == before {
            // NODATA: the name exists, not with this type.
            answer.add_authority(&zone.negative_soa);
        }
        return answer;
    }
    // A loop inside the zone: give what was followed, as BIND does.
    answer
}

/// The entry for `name`, or the wildcard that covers it (RFC 4592: `*`
/// below the closest existing ancestor). The flag says it was a wildcard.
fn lookup<'z>(zone: &'z Zone, name: &LowerName) -> Option<(&'z Entry, bool)> {
    if let Some(entry) = zone.names.get(name) {
        return Some((entry, false));
    }
    let mut encloser = name.base_name();
    while zone.apex.zone_of(&encloser) {
        if zone.names.contains_key(&encloser) {
            let star = Name::from(encloser.clone()).prepend_label("*").ok()?;
            return zone.names.get(&LowerName::from(star)).map(|e| (e, true));
        }
        encloser = encloser.base_name();
    }
    None
}

/// A referral when `qname` is at or below a delegated name (custom NS
/// records below the apex): not authoritative, the NS set in authority and
/// any in-zone addresses of its targets as glue.
fn referral(zone: &Zone, qname: &LowerName, qtype: RecordType) -> Option<Answer> {
    let mut ancestors = Vec::new();
    let mut at = qname.clone();
    while at != zone.apex && zone.apex.zone_of(&at) {
        ancestors.push(at.clone());
        at = at.base_name();
    }
    // The cut nearest the apex is the one that delegates.
    for cut in ancestors.iter().rev() {
        let Some(ns) = zone.names.get(cut).and_then(|e| e.get(RecordType::NS)) else {
            continue;
        };
        // DS lives on the parent side of a cut: answer it here (NODATA).
        if cut == qname && qtype == RecordType::DS {
            return None;
        }
        let mut answer = Answer::new(ResponseCode::NoError, false);
        answer.add_authority(ns);
        add_glue(&mut answer, zone, ns);
        return Some(answer);
    }
    None
}

/// In-zone A/AAAA of the names `set` points at (NS, MX, SRV targets).
fn add_glue(answer: &mut Answer, zone: &Zone, set: &RrSet) {
    for record in &set.records {
        let target = match &record.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            _ => continue,
        };
        let target = LowerName::from(target.clone());
        if let Some(entry) = zone.names.get(&target) {
            for rtype in [RecordType::A, RecordType::AAAA] {
                if let Some(glue) = entry.get(rtype) {
                    answer.add_additional(glue);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn add_data(
    answer: &mut Answer,
    snapshot: &Snapshot,
    zone: &Zone,
    entry: &Entry,
    name: &LowerName,
    qtype: RecordType,
    owner: Option<&Name>,
    locate: &mut dyn FnMut() -> Option<(f64, f64)>,
) {
    let geo_types = [RecordType::A, RecordType::AAAA];
    let wanted = if qtype == RecordType::ANY {
        // RFC 8482: one RRset is a complete answer to ANY.
        let first_fixed = entry.sets.first().map(|(t, _)| *t);
        match (entry.geo, first_fixed) {
            (true, _) => Some(RecordType::A),
            (false, Some(t)) => Some(t),
            (false, None) => None,
        }
    } else {
        Some(qtype)
    };
    let Some(wanted) = wanted else { return };
    if let Some(set) = entry.get(wanted) {
        answer.add_answer(set, owner);
        if matches!(wanted, RecordType::NS | RecordType::MX | RecordType::SRV) {
            add_glue(answer, zone, set);
        }
    } else if entry.geo && geo_types.contains(&wanted) {
        let owner = owner.cloned().unwrap_or_else(|| Name::from(name.clone()));
        add_geographic(answer, snapshot, &owner, wanted, locate);
    }
}

/// A or AAAA of the nearest healthy nodes with an address of that family.
fn add_geographic(
    answer: &mut Answer,
    snapshot: &Snapshot,
    owner: &Name,
    rtype: RecordType,
    locate: &mut dyn FnMut() -> Option<(f64, f64)>,
) {
    let nodes: &[DnsNode] = if rtype == RecordType::A {
        &snapshot.v4
    } else {
        &snapshot.v6
    };
    if nodes.is_empty() {
        return;
    }
    answer.geographic = true;
    let candidates: Vec<select::Candidate> = nodes.iter().map(|n| n.candidate).collect();
    let chosen = select::choose(&candidates, locate(), snapshot.settings.answers);
    let ttl = snapshot.settings.ttl;
    for &i in &chosen {
        let data = match (rtype, nodes[i].ipv4, nodes[i].ipv6) {
            (RecordType::A, Some(ip), _) => RData::A(A(ip)),
            (_, _, Some(ip)) => RData::AAAA(AAAA(ip)),
            _ => continue,
        };
        let record = Record::from_rdata(owner.clone(), ttl, data);
        answer.wire_len += name_wire_len(owner) + 10 + if rtype == RecordType::A { 4 } else { 16 };
        answer.answers.push(record);
    }
    answer.chosen = chosen;
    answer.chosen_type = rtype;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::geo::GeoIp;
    use crate::dns::zone::{Settings, build, tests::node, tests::sources};
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
type = "A"
name = "mail"
value = "192.0.2.25"

[[domain.records]]
type = "CNAME"
name = "docs"
value = "mail.example.com"

[[domain.records]]
type = "CNAME"
name = "away"
value = "pages.example.org"

[[domain.records]]
type = "NS"
name = "sub"
value = "ns1.sub.example.com"

[[domain.records]]
type = "A"
name = "ns1.sub"
value = "192.0.2.53"

[[domain.records]]
type = "TXT"
name = "*.wild"
value = "wild"
"#;

    fn nodes() -> Vec<NodeRow> {
        let mut tokyo = node("tokyo", "203.0.113.1", (35.68, 139.69));
        tokyo.place.ipv6 = "2001:db8::3".parse().ok();
        vec![
            node("london", "192.0.2.1", (51.51, -0.13)),
            node("seattle", "198.51.100.1", (47.61, -122.33)),
            tokyo,
        ]
    }

    fn ask(nodes: &[NodeRow], name: &str, qtype: RecordType, at: Option<(f64, f64)>) -> Answer {
        let settings = Settings {
            ttl: 60,
            answers: 1,
        };
        let snap = build(&sources(SITE), nodes, &[], &GeoIp::none(), settings);
        let qname = LowerName::from(Name::from_ascii(name).unwrap_or_else(|e| panic!("{e}")));
        resolve(&snap, &qname, qtype, &mut || at)
    }

    fn texts(records: &[Record]) -> Vec<String> {
        records.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn apex_addresses_are_the_nearest_node() {
        let a = ask(&nodes(), "Example.COM.", RecordType::A, Some((51.5, 0.0)));
        assert_eq!(texts(&a.answers), vec!["example.com. 60 IN A 192.0.2.1"]);
        assert!(a.authoritative && a.geographic);
        let a = ask(
            &nodes(),
            "www.example.com.",
            RecordType::AAAA,
            Some((51.5, 0.0)),
        );
        // Only Tokyo has IPv6.
        assert_eq!(
            texts(&a.answers),
            vec!["www.example.com. 60 IN AAAA 2001:db8::3"]
        );
    }

    #[test]
    fn unknown_location_lists_every_healthy_node() {
        let mut nodes = nodes();
        nodes[1].healthy = false;
        let a = ask(&nodes, "example.com.", RecordType::A, None);
        assert_eq!(a.answers.len(), 2);
    }

    #[test]
    fn missing_names_are_nxdomain_and_missing_types_nodata() {
        let nx = ask(&nodes(), "nope.example.com.", RecordType::A, None);
        assert_eq!(nx.rcode, ResponseCode::NXDomain);
        assert!(nx.answers.is_empty());
        assert_eq!(nx.authority[0].record_type(), RecordType::SOA);
        assert_eq!(nx.authority[0].ttl, 60);
        let nodata = ask(&nodes(), "mail.example.com.", RecordType::AAAA, None);
        assert_eq!(nodata.rcode, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authority[0].record_type(), RecordType::SOA);
        // An empty non-terminal exists.
        let ent = ask(&nodes(), "ns.example.com.", RecordType::A, None);
        assert_eq!(ent.rcode, ResponseCode::NoError);
        // No preview exists yet.
        let preview = ask(
            &nodes(),
            "feature.preview.example.com.",
            RecordType::A,
            None,
        );
        assert_eq!(preview.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn names_outside_hosted_zones_are_refused() {
        let a = ask(&nodes(), "example.org.", RecordType::A, None);
        assert_eq!(a.rcode, ResponseCode::Refused);
        assert!(!a.authoritative);
        let a = ask(&nodes(), ".", RecordType::NS, None);
        assert_eq!(a.rcode, ResponseCode::Refused);
    }

    #[test]
    fn ns_answers_carry_glue() {
        let a = ask(&nodes(), "example.com.", RecordType::NS, None);
        assert_eq!(a.answers.len(), 3);
        assert_eq!(
            texts(&a.additional),
            vec![
                "london.ns.example.com. 3600 IN A 192.0.2.1",
                "seattle.ns.example.com. 3600 IN A 198.51.100.1",
                "tokyo.ns.example.com. 3600 IN A 203.0.113.1",
                "tokyo.ns.example.com. 3600 IN AAAA 2001:db8::3",
            ]
        );
        let mx = ask(&nodes(), "example.com.", RecordType::MX, None);
        assert_eq!(
            texts(&mx.additional),
            vec!["mail.example.com. 300 IN A 192.0.2.25"]
        );
    }

    #[test]
    fn cnames_are_followed_inside_the_zone_only() {
        let a = ask(&nodes(), "docs.example.com.", RecordType::A, None);
        assert_eq!(
            texts(&a.answers),
            vec![
                "docs.example.com. 300 IN CNAME mail.example.com.",
                "mail.example.com. 300 IN A 192.0.2.25"
            ]
        );
        let away = ask(&nodes(), "away.example.com.", RecordType::A, None);
        assert_eq!(away.answers.len(), 1);
        assert_eq!(away.rcode, ResponseCode::NoError);
    }

    #[test]
    fn delegated_names_get_a_referral() {
        let a = ask(&nodes(), "www.sub.example.com.", RecordType::A, None);
        assert!(!a.authoritative);
        assert!(a.answers.is_empty());
        assert_eq!(
            texts(&a.authority),
            vec!["sub.example.com. 300 IN NS ns1.sub.example.com."]
        );
        assert_eq!(
            texts(&a.additional),
            vec!["ns1.sub.example.com. 300 IN A 192.0.2.53"]
        );
    }

    #[test]
    fn wildcards_answer_with_the_query_name() {
        let a = ask(&nodes(), "x.wild.example.com.", RecordType::TXT, None);
        assert_eq!(
            texts(&a.answers),
            vec!["x.wild.example.com. 300 IN TXT wild"]
        );
    }

    #[test]
    fn any_gets_one_rrset() {
        let a = ask(&nodes(), "example.com.", RecordType::ANY, Some((51.5, 0.0)));
        assert_eq!(texts(&a.answers), vec!["example.com. 60 IN A 192.0.2.1"]);
    }

    #[test]
    fn caa_and_soa_are_served_at_the_apex() {
        let caa = ask(&nodes(), "example.com.", RecordType::CAA, None);
        assert_eq!(caa.answers.len(), 1);
        let soa = ask(&nodes(), "example.com.", RecordType::SOA, None);
        assert_eq!(soa.answers.len(), 1);
        assert!(soa.authority.is_empty());
        assert!(!soa.geographic);
    }
}
