//! The zones this node is authoritative for, as one immutable snapshot.
//!
//! Built from the sites' configs (apex, aliases, previews, records, CAA),
//! the node table (NS names, glue, the candidates for geographic answers)
//! and the `_acme-challenge` values in the store, whenever any of them
//! changes. Queries read it through `arc-swap` and never touch SQLite.
//!
//! TTLs: addresses chosen by geography use the configured TTL (60 s by
//! default); NS, their glue and the SOA record use 3600 s; other records
//! their own `ttl` or 300 s; negative answers are cached for the geographic
//! TTL (the SOA minimum), so a new record is visible within a minute.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CAA, CNAME, MX, NS, SOA, SRV, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use tracing::warn;

use super::geo::GeoIp;
use super::prepared::Prepared;
use super::select::Candidate;
use crate::config::NodePlace;
use crate::config::{Domain, RecordType as ConfigType};
use crate::store::{AcmeChallenge, NodeRow};

/// TTL of NS records, their glue and the SOA record.
const INFRA_TTL: u32 = 3600;
/// TTL of site records that set none.
const RECORD_TTL: u32 = 300;
/// The CAA record a domain gets unless its config lists its own.
pub const DEFAULT_CAA: &str = "0 issue \"letsencrypt.org\"";

/// How answers are shaped, from `node.toml`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// TTL of geographic answers and of negative answers.
    pub ttl: u32,
    /// How many nearest nodes a geographic answer lists.
    pub answers: usize,
}

/// One domain to serve, with the preview names that exist for it.
#[derive(Debug, Clone)]
pub struct ZoneSource {
    pub domain: Arc<Domain>,
    /// Branch slugs served at `<slug>.preview.<domain>` (none until the git
    /// endpoint deploys previews).
    pub previews: Vec<String>,
    /// Kept revisions (12 hex digits) served at `<revision>.rev.<domain>`.
    pub permalinks: Vec<String>,
}

/// A node as DNS uses it: validated addresses and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsNode {
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub candidate: Candidate,
}

/// Records of one type at one name, with their size on the wire.
#[derive(Debug, Clone, Default)]
pub struct RrSet {
    pub records: Vec<Record>,
    /// Upper bound of the encoded size (no name compression counted).
    pub wire_len: usize,
}

impl RrSet {
    fn push(&mut self, record: Record) {
        self.wire_len += record_wire_len(&record);
        self.records.push(record);
    }
}

/// Everything at one name of a zone. An entry with nothing in it is an
/// empty non-terminal: it exists (NODATA, not NXDOMAIN).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// A and AAAA are chosen per query by geography (apex, aliases,
    /// previews).
    pub geo: bool,
    /// Fixed record sets, by type.
    pub sets: Vec<(RecordType, RrSet)>,
}

impl Entry {
    /// The fixed set of `rtype`, if any.
    pub fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.sets.iter().find(|(t, _)| *t == rtype).map(|(_, s)| s)
    }

    fn set_mut(&mut self, rtype: RecordType) -> &mut RrSet {
        let at = match self.sets.iter().position(|(t, _)| *t == rtype) {
            Some(at) => at,
            None => {
                self.sets.push((rtype, RrSet::default()));
                self.sets.len() - 1
            }
        };
        &mut self.sets[at].1
    }
}

/// One hosted domain.
#[derive(Debug, Clone)]
pub struct Zone {
    pub apex: LowerName,
    /// Changes whenever the zone's records change; equal on every node
    /// holding the same data (it is derived from the data, not a counter).
    pub serial: u32,
    /// The SOA set answered to SOA queries.
    pub soa: RrSet,
    /// The SOA put in the authority section of negative answers, with the
    /// negative-caching TTL.
    pub negative_soa: RrSet,
    pub names: HashMap<LowerName, Entry>,
    /// Whether any name below the apex delegates (has NS records).
    pub has_cuts: bool,
}

/// Every zone and the nodes answers choose from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    zones: HashMap<LowerName, Zone>,
    /// Nodes with an IPv4 address, in name order, for A answers.
    pub v4: Vec<DnsNode>,
    /// Nodes with an IPv6 address, in name order, for AAAA answers.
    pub v6: Vec<DnsNode>,
    pub settings: Settings,
    /// The same answers rendered to wire bytes, for the UDP fast path.
    pub prepared: Prepared,
}

impl Snapshot {
    /// No zones: every query is refused.
    pub fn empty(settings: Settings) -> Snapshot {
        Snapshot {
            zones: HashMap::new(),
            v4: Vec::new(),
            v6: Vec::new(),
            settings,
            prepared: Prepared::default(),
        }
    }

    /// The most specific hosted zone containing `name`.
    pub fn zone_for(&self, name: &LowerName) -> Option<&Zone> {
        let mut at = name.clone();
        loop {
            if let Some(zone) = self.zones.get(&at) {
                return Some(zone);
            }
            if at.is_root() {
                return None;
            }
            at = at.base_name();
        }
    }

    /// The zone whose apex is `apex` exactly.
    pub fn zone(&self, apex: &LowerName) -> Option<&Zone> {
        self.zones.get(apex)
    }

    /// Every zone, in no particular order.
    pub fn zones(&self) -> impl Iterator<Item = &Zone> {
        self.zones.values()
    }
}

/// Builds the snapshot. Names that cannot be DNS names (they passed config
/// validation, so this is not expected) are logged and left out rather than
/// failing every zone.
pub fn build(
    sources: &[ZoneSource],
    nodes: &[NodeRow],
    acme: &[AcmeChallenge],
    geo: &GeoIp,
    settings: Settings,
) -> Snapshot {
    let nodes = dns_nodes(nodes, geo);
    let mut zones = HashMap::new();
    for source in sources {
        match build_zone(source, &nodes, acme, settings) {
            Ok(zone) => {
                zones.insert(zone.apex.clone(), zone);
            }
            Err(e) => warn!(domain = %source.domain.name, error = %e, "zone left out"),
        }
    }
    let mut snapshot = Snapshot {
        zones,
        v4: nodes.iter().filter(|n| n.ipv4.is_some()).cloned().collect(),
        v6: nodes.iter().filter(|n| n.ipv6.is_some()).cloned().collect(),
        settings,
        prepared: Prepared::default(),
    };
    snapshot.prepared = Prepared::build(&snapshot);
    snapshot
}

/// Validates node rows; a node without configured coordinates is placed
/// where the GeoIP database puts its address.
fn dns_nodes(rows: &[NodeRow], geo: &GeoIp) -> Vec<DnsNode> {
    let mut nodes: Vec<DnsNode> = rows
        .iter()
        .map(|row| {
            let NodePlace {
                name,
                ipv4,
                ipv6,
                latitude,
                longitude,
            } = &row.place;
            let (ipv4, ipv6) = (*ipv4, *ipv6);
            let configured = latitude.zip(*longitude);
            let location = configured.or_else(|| {
                [
                    ipv4.map(std::net::IpAddr::V4),
                    ipv6.map(std::net::IpAddr::V6),
                ]
                .into_iter()
                .flatten()
                .find_map(|ip| geo.locate(ip).coordinates)
            });
            DnsNode {
                name: name.clone(),
                ipv4,
                ipv6,
                candidate: Candidate {
                    healthy: row.healthy,
                    location,
                },
            }
        })
        .filter(|n| n.ipv4.is_some() || n.ipv6.is_some())
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    nodes
}

/// Why a zone could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{what} {value:?} is not a usable DNS name: {source}")]
pub struct ZoneError {
    what: &'static str,
    value: String,
    source: hickory_proto::ProtoError,
}

fn fqdn(what: &'static str, text: &str) -> Result<Name, ZoneError> {
    let dotted = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    Name::from_ascii(&dotted)
        .map(|n| n.to_lowercase())
        .map_err(|source| ZoneError {
            what,
            value: text.to_string(),
            source,
        })
}

fn build_zone(
    source: &ZoneSource,
    nodes: &[DnsNode],
    acme: &[AcmeChallenge],
    settings: Settings,
) -> Result<Zone, ZoneError> {
    let domain = &source.domain;
    let apex = fqdn("domain", &domain.name)?;
    let mut names: HashMap<LowerName, Entry> = HashMap::new();
    let lower = |n: &Name| LowerName::from(n.clone());

    names.entry(lower(&apex)).or_default().geo = true;
    for alias in &domain.aliases {
        let name = fqdn("alias", alias)?;
        // An alias in another zone is served over HTTP but answered by
        // whoever is authoritative there.
        if apex.zone_of(&name) {
            names.entry(lower(&name)).or_default().geo = true;
        }
    }
    for slug in &source.previews {
        let name = fqdn("preview", &format!("{slug}.preview.{}", domain.name))?;
        names.entry(lower(&name)).or_default().geo = true;
    }
    for revision in &source.permalinks {
        let name = fqdn(
            "permalink",
            &format!(
                "{revision}.{}.{}",
                crate::live::PERMALINK_LABEL,
                domain.name
            ),
        )?;
        names.entry(lower(&name)).or_default().geo = true;
    }

    // NS names and their glue: every node with an address.
    let mut first_ns = None;
    for node in nodes {
        let ns_name = fqdn("node name", &format!("{}.ns.{}", node.name, domain.name))?;
        first_ns.get_or_insert_with(|| ns_name.clone());
        push(
            &mut names,
            &apex,
            Record::from_rdata(apex.clone(), INFRA_TTL, RData::NS(NS(ns_name.clone()))),
        );
        if let Some(ip) = node.ipv4 {
            let glue = Record::from_rdata(ns_name.clone(), INFRA_TTL, RData::A(A(ip)));
            push(&mut names, &ns_name, glue);
        }
        if let Some(ip) = node.ipv6 {
            let glue = Record::from_rdata(ns_name.clone(), INFRA_TTL, RData::AAAA(AAAA(ip)));
            push(&mut names, &ns_name, glue);
        }
    }

    let default_caa = [DEFAULT_CAA.to_string()];
    let caa_values = domain.caa.as_deref().unwrap_or(&default_caa);
    for value in caa_values {
        if let Some(caa) = caa_rdata(value) {
            push(
                &mut names,
                &apex,
                Record::from_rdata(apex.clone(), RECORD_TTL, RData::CAA(caa)),
            );
        }
    }

    for record in &domain.records {
        let owner = if record.name == "@" {
            apex.clone()
        } else {
            fqdn("record name", &format!("{}.{}", record.name, domain.name))?
        };
        let ttl = record.ttl.unwrap_or(RECORD_TTL);
        let data = record_rdata(record)?;
        push(
            &mut names,
            &owner,
            Record::from_rdata(owner.clone(), ttl, data),
        );
    }

    for challenge in acme {
        let Ok(owner) = fqdn("challenge name", &challenge.name) else {
            continue;
        };
        if apex.zone_of(&owner) {
            let data = RData::TXT(txt(&challenge.value));
            // Short: a validator must see a new value at once.
            push(
                &mut names,
                &owner,
                Record::from_rdata(owner.clone(), 0, data),
            );
        }
    }

    // A CNAME stands alone at its name (RFC 1034 §3.6.2): config validation
    // keeps it off the apex; here it also wins over aliases and other types.
    for entry in names.values_mut() {
        if entry.get(RecordType::CNAME).is_some() {
            entry.geo = false;
            entry.sets.retain(|(t, _)| *t == RecordType::CNAME);
        }
    }

    // Empty non-terminals: `ns.<domain>` exists because `london.ns.<domain>`
    // does, so it must be NODATA, not NXDOMAIN (RFC 8020).
    let apex_lower = lower(&apex);
    let mut missing = Vec::new();
    for name in names.keys() {
        let mut at = name.base_name();
        while apex_lower.zone_of(&at) && at != apex_lower {
            if !names.contains_key(&at) {
                missing.push(at.clone());
            }
            at = at.base_name();
        }
    }
    for name in missing {
        names.entry(name).or_default();
    }

    let has_cuts = names
        .iter()
        .any(|(n, e)| *n != apex_lower && e.get(RecordType::NS).is_some());
    let serial = serial(&names);
    let mname = first_ns.unwrap_or_else(|| apex.clone());
    let rname = fqdn("domain", &format!("hostmaster.{}", domain.name))?;
    let soa = |ttl| {
        let mut set = RrSet::default();
        let data = SOA::new(
            mname.clone(),
            rname.clone(),
            serial,
            3600,
            600,
            1_209_600,
            settings.ttl,
        );
        set.push(Record::from_rdata(apex.clone(), ttl, RData::SOA(data)));
        set
    };
    let zone_soa = soa(INFRA_TTL);
    names
        .entry(apex_lower.clone())
        .or_default()
        .sets
        .push((RecordType::SOA, zone_soa.clone()));
    Ok(Zone {
        apex: apex_lower,
        serial,
        soa: zone_soa,
        negative_soa: soa(settings.ttl),
        names,
        has_cuts,
    })
}

fn push(names: &mut HashMap<LowerName, Entry>, owner: &Name, record: Record) {
    let rtype = record.record_type();
    names
        .entry(LowerName::from(owner.clone()))
        .or_default()
        .set_mut(rtype)
        .push(record);
}

/// A serial derived from every record and geographic name of the zone, so
/// it changes with the data and agrees between nodes without coordination.
/// Zone transfers are not offered, so monotonicity (RFC 1982) buys nothing.
fn serial(names: &HashMap<LowerName, Entry>) -> u32 {
    let mut lines: Vec<String> = Vec::new();
    for (name, entry) in names {
        if entry.geo {
            lines.push(format!("{name} geo"));
        }
        for (_, set) in &entry.sets {
            lines.extend(set.records.iter().map(|r| r.to_string()));
        }
    }
    lines.sort();
    let hash = blake3::hash(lines.join("\n").as_bytes());
    let mut four = [0u8; 4];
    four.copy_from_slice(&hash.as_bytes()[..4]);
    u32::from_be_bytes(four).max(1)
}

/// TXT data: one value split into strings of at most 255 bytes.
fn txt(value: &str) -> TXT {
    let chunks: Vec<&[u8]> = if value.is_empty() {
        vec![b"".as_slice()]
    } else {
        value.as_bytes().chunks(255).collect()
    };
    TXT::from_bytes(chunks)
}

/// A validated `flags tag "value"` CAA string as record data.
fn caa_rdata(value: &str) -> Option<CAA> {
    let mut parts = value.trim().splitn(3, [' ', '\t']);
    let flags: u8 = parts.next()?.parse().ok()?;
    let tag = parts.next()?.to_string();
    let quoted = parts.next()?.trim();
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut caa = CAA::new_issue(false, None, Vec::new());
    caa.issuer_critical = flags & 0x80 != 0;
    caa.reserved_flags = flags & 0x7f;
    caa.tag = tag;
    caa.value = inner.as_bytes().to_vec();
    Some(caa)
}

fn record_rdata(record: &crate::config::Record) -> Result<RData, ZoneError> {
    let value = record.value.as_str();
    let bad = |source| ZoneError {
        what: "record value",
        value: value.to_string(),
        source,
    };
    let data = match record.record_type {
        ConfigType::A => RData::A(A(value
            .parse()
            .map_err(|_| bad("not an IPv4 address".into()))?)),
        ConfigType::Aaaa => RData::AAAA(AAAA(
            value
                .parse()
                .map_err(|_| bad("not an IPv6 address".into()))?,
        )),
        ConfigType::Cname => RData::CNAME(CNAME(fqdn("CNAME target", value)?)),
        ConfigType::Ns => RData::NS(NS(fqdn("NS target", value)?)),
        ConfigType::Mx => RData::MX(MX::new(
            record.priority.unwrap_or(10),
            fqdn("MX target", value)?,
        )),
        ConfigType::Srv => RData::SRV(SRV::new(
            record.priority.unwrap_or(0),
            record.weight.unwrap_or(0),
            record.port.unwrap_or(0),
            fqdn("SRV target", value)?,
        )),
        ConfigType::Txt => RData::TXT(txt(value)),
        ConfigType::Caa => {
            RData::CAA(caa_rdata(value).ok_or_else(|| bad("not a CAA value".into()))?)
        }
    };
    Ok(data)
}

/// Encoded size of a name without compression.
pub fn name_wire_len(name: &Name) -> usize {
    name.iter().map(|label| label.len() + 1).sum::<usize>() + 1
}

/// Upper bound of a record's encoded size: owner, fixed fields, and the
/// data encoded alone (so nothing in it was compressed).
pub fn record_wire_len(record: &Record) -> usize {
    let data = record
        .data
        .to_bytes()
        .map_or(usize::from(u16::MAX), |b| b.len());
    name_wire_len(&record.name) + 10 + data
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::SiteConfig;

    pub(crate) fn sources(toml: &str) -> Vec<ZoneSource> {
        let config = SiteConfig::parse("makiatto.toml", toml).unwrap_or_else(|e| panic!("{e}"));
        config
            .domains
            .into_iter()
            .map(|d| ZoneSource {
                domain: Arc::new(d),
                previews: Vec::new(),
                permalinks: Vec::new(),
            })
            .collect()
    }

    pub(crate) fn node(name: &str, ipv4: &str, at: (f64, f64)) -> NodeRow {
        NodeRow {
            place: NodePlace {
                name: name.into(),
                ipv4: ipv4.parse().ok(),
                ipv6: None,
                latitude: Some(at.0),
                longitude: Some(at.1),
            },
            healthy: true,
        }
    }

    fn lower(text: &str) -> LowerName {
        LowerName::from(Name::from_ascii(text).unwrap_or_else(|e| panic!("{e}")))
    }

    const SETTINGS: Settings = Settings {
        ttl: 60,
        answers: 1,
    };

    fn snapshot(toml: &str, nodes: &[NodeRow]) -> Snapshot {
        build(&sources(toml), nodes, &[], &GeoIp::none(), SETTINGS)
    }

    const SITE: &str =
        "[[domain]]\nname = \"example.com\"\naliases = [\"www.example.com\", \"example.net\"]\n";

    #[test]
    fn zones_hold_apex_aliases_ns_glue_and_default_caa() {
        let snap = snapshot(SITE, &[node("london", "192.0.2.1", (51.51, -0.13))]);
        let zone = snap
            .zone_for(&lower("a.b.example.com."))
            .unwrap_or_else(|| panic!("no zone"));
        assert_eq!(zone.apex, lower("example.com."));
        let apex = &zone.names[&lower("example.com.")];
        assert!(apex.geo);
        assert!(zone.names[&lower("www.example.com.")].geo);
        assert!(snap.zone_for(&lower("example.net.")).is_none());
        let ns = apex.get(RecordType::NS).map(|s| s.records[0].to_string());
        assert_eq!(
            ns.as_deref(),
            Some("example.com. 3600 IN NS london.ns.example.com.")
        );
        assert!(
            zone.names[&lower("london.ns.example.com.")]
                .get(RecordType::A)
                .is_some()
        );
        assert!(zone.names[&lower("ns.example.com.")].sets.is_empty());
        let caa = apex.get(RecordType::CAA).map(|s| s.records[0].to_string());
        assert_eq!(
            caa.as_deref(),
            Some("example.com. 300 IN CAA 0 issue \"letsencrypt.org\"")
        );
    }

    #[test]
    fn the_serial_follows_the_records_not_the_health() {
        let nodes = [node("london", "192.0.2.1", (51.51, -0.13))];
        let first = snapshot(SITE, &nodes);
        let apex = lower("example.com.");
        let serial = |s: &Snapshot| s.zone(&apex).map(|z| z.serial);
        let mut down = nodes.clone();
        down[0].healthy = false;
        assert_eq!(serial(&first), serial(&snapshot(SITE, &down)));
        let with_mx = format!(
            "{SITE}[[domain.records]]\ntype = \"MX\"\nvalue = \"mail.example.com\"\npriority = 10\n"
        );
        assert_ne!(serial(&first), serial(&snapshot(&with_mx, &nodes)));
    }

    #[test]
    fn a_cname_stands_alone_and_long_txt_values_are_split() {
        let toml = format!(
            "{SITE}[[domain.records]]\ntype = \"CNAME\"\nname = \"www\"\nvalue = \"elsewhere.example.org\"\n\
             [[domain.records]]\ntype = \"TXT\"\nname = \"long\"\nvalue = \"{}\"\n",
            "x".repeat(600)
        );
        let snap = snapshot(&toml, &[]);
        let zone = snap
            .zone(&lower("example.com."))
            .unwrap_or_else(|| panic!("no zone"));
        let www = &zone.names[&lower("www.example.com.")];
        assert!(!www.geo);
        assert_eq!(www.sets.len(), 1);
        let long = zone.names[&lower("long.example.com.")]
            .get(RecordType::TXT)
            .map(|s| s.records[0].data.clone());
        match long {
            Some(RData::TXT(t)) => assert_eq!(
                t.txt_data.iter().map(|s| s.len()).collect::<Vec<_>>(),
                vec![255, 255, 90]
            ),
            other => panic!("expected TXT, got {other:?}"),
        }
    }

    #[test]
    fn acme_challenges_appear_only_in_their_zone() {
        let acme = [
            AcmeChallenge {
                name: "_acme-challenge.example.com".into(),
                value: "token".into(),
            },
            AcmeChallenge {
                name: "_acme-challenge.other.org".into(),
                value: "nope".into(),
            },
        ];
        let snap = build(&sources(SITE), &[], &acme, &GeoIp::none(), SETTINGS);
        let zone = snap
            .zone(&lower("example.com."))
            .unwrap_or_else(|| panic!("no zone"));
        assert!(
            zone.names[&lower("_acme-challenge.example.com.")]
                .get(RecordType::TXT)
                .is_some()
        );
        assert_eq!(snap.zones().count(), 1);
    }

    #[test]
    fn wire_length_bounds_the_real_encoding() {
        let record = Record::from_rdata(
            Name::from_ascii("www.example.com.").unwrap_or_else(|e| panic!("{e}")),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        );
        let real = record.to_bytes().map(|b| b.len()).unwrap_or(0);
        assert_eq!(record_wire_len(&record), real);
        assert_eq!(real, 17 + 10 + 4);
    }
}
