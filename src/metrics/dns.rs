//! DNS counters: queries by type, response code and protocol, and
//! clients by country from the GeoIP lookup the answer already made. The
//! label sets are fixed arrays, so a query is counted with one atomic add.

use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::registry::Registry;

/// Query types counted by name; the rest are `other`.
pub const TYPES: [&str; 12] = [
    "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "CAA", "SRV", "HTTPS", "ANY", "other",
];
/// Response codes counted by name; the rest are `other`.
pub const RCODES: [&str; 8] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other",
];
/// How the query came.
pub const PROTOCOLS: [&str; 3] = ["udp", "tcp", "dot"];

/// Country codes are two ASCII letters: 26 × 26 cells, then `unknown`.
const COUNTRIES: usize = 26 * 26 + 1;

/// The transport of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// The node's DNS counters.
pub struct DnsMetrics {
    queries: [[[AtomicU64; PROTOCOLS.len()]; RCODES.len()]; TYPES.len()],
    countries: [AtomicU64; COUNTRIES],
    /// Geographic answers naming each node (the node table bounds them).
    answers: Registry<AtomicU64>,
}

impl Default for DnsMetrics {
    fn default() -> DnsMetrics {
        DnsMetrics {
            queries: Default::default(),
            countries: std::array::from_fn(|_| AtomicU64::new(0)),
            answers: Registry::default(),
        }
    }
}

impl DnsMetrics {
    /// Counts one answered query.
    pub fn query(&self, qtype: Option<RecordType>, rcode: ResponseCode, transport: Transport) {
        let t = qtype.map_or(TYPES.len() - 1, type_index);
        let r = rcode_index(rcode);
        let p = transport as usize;
        self.queries[t][r][p].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one located client by its ISO country code (`None`: the
    /// database had none).
    pub fn client(&self, country: Option<[u8; 2]>) {
        self.countries[country_index(country)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one geographic answer giving out `node`'s address.
    pub fn answered(&self, node: &str) {
        self.answers.get(node).fetch_add(1, Ordering::Relaxed);
    }

    /// Every nonzero count of answers by node: `(node, count)`.
    pub fn answers(&self) -> Vec<(String, u64)> {
        self.answers
            .all()
            .into_iter()
            .map(|(node, n)| (node, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Every nonzero query count: `(type, rcode, protocol, count)`.
    pub fn queries(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (t, by_rcode) in self.queries.iter().enumerate() {
            for (r, by_proto) in by_rcode.iter().enumerate() {
                for (p, cell) in by_proto.iter().enumerate() {
                    let n = cell.load(Ordering::Relaxed);
                    if n > 0 {
                        out.push((TYPES[t], RCODES[r], PROTOCOLS[p], n));
                    }
                }
            }
        }
        out
    }

    /// Every nonzero country count: `(code, count)`, `unknown` for none.
    pub fn countries(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (i, cell) in self.countries.iter().enumerate() {
            let n = cell.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let code = if i == COUNTRIES - 1 {
                "unknown".to_string()
            } else {
                let (a, b) = (b'A' + (i / 26) as u8, b'A' + (i % 26) as u8);
                String::from_utf8_lossy(&[a, b]).into_owned()
            };
            out.push((code, n));
        }
        out
    }
}

fn type_index(qtype: RecordType) -> usize {
    match qtype {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::CNAME => 2,
        RecordType::MX => 3,
        RecordType::TXT => 4,
        RecordType::NS => 5,
        RecordType::SOA => 6,
        RecordType::CAA => 7,
        RecordType::SRV => 8,
        RecordType::HTTPS => 9,
        RecordType::ANY => 10,
        _ => 11,
    }
}

fn rcode_index(rcode: ResponseCode) -> usize {
    match rcode {
        ResponseCode::NoError => 0,
        ResponseCode::FormErr => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::NXDomain => 3,
        ResponseCode::NotImp => 4,
        ResponseCode::Refused => 5,
        ResponseCode::BADVERS => 6,
        _ => 7,
    }
}

fn country_index(country: Option<[u8; 2]>) -> usize {
    match country {
        Some([a, b]) if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let (a, b) = (a.to_ascii_uppercase() - b'A', b.to_ascii_uppercase() - b'A');
            usize::from(a) * 26 + usize::from(b)
        }
        _ => COUNTRIES - 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_countries_are_counted_by_label() {
        let m = DnsMetrics::default();
        m.query(Some(RecordType::A), ResponseCode::NoError, Transport::Udp);
        m.query(Some(RecordType::A), ResponseCode::NoError, Transport::Udp);
        m.query(
            Some(RecordType::NULL),
            ResponseCode::Refused,
            Transport::Tls,
        );
        m.query(None, ResponseCode::FormErr, Transport::Tcp);
        assert_eq!(
            m.queries(),
            [
                ("A", "NOERROR", "udp", 2),
                ("other", "FORMERR", "tcp", 1),
                ("other", "REFUSED", "dot", 1)
            ]
        );
        m.client(Some(*b"de"));
        m.client(Some(*b"DE"));
        m.client(None);
        assert_eq!(
            m.countries(),
            [("DE".to_string(), 2), ("unknown".to_string(), 1)]
        );
        m.answered("paris");
        m.answered("london");
        m.answered("paris");
        assert_eq!(
            m.answers(),
            [("london".to_string(), 1), ("paris".to_string(), 2)]
        );
    }
}
