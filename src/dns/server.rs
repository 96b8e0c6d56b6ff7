//! The listeners and the request handler: hickory-server owns the sockets
//! and DNS framing; our handler checks the message, finds the client's
//! location, asks `answer` and shapes the response (AA, EDNS, ECS, UDP
//! size and truncation).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::ClientSubnet;
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tracing::debug;

use super::answer::{self, Answer};
use super::ecs;
use super::geo::GeoIp;
use super::zone::{Snapshot, name_wire_len};
use crate::metrics::{Metrics, Transport};

/// Largest UDP response we send whatever the client advertises: the DNS
/// Flag Day 2020 size, which avoids IP fragmentation on common paths.
/// Larger answers are truncated and come whole over TCP.
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// The smallest UDP size every client must accept (RFC 1035 §4.2.1).
pub const MIN_UDP_PAYLOAD: u16 = 512;
/// A TCP connection idle this long is closed, so idle clients cannot hold
/// connections open.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// Outgoing responses buffered per TCP connection.
pub const TCP_RESPONSE_BUFFER: usize = 32;

/// Attempts at finding an ephemeral port free for both UDP and TCP.
const EPHEMERAL_ATTEMPTS: usize = 32;

/// Binds UDP on `addr`, then TCP on the port UDP got. With port 0 that is
/// one ephemeral port for both: the UDP port may be taken for TCP by
/// another process, so another port is tried.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut attempts = if addr.port() == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    loop {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts > 1 => {
                attempts -= 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Answers queries from the current snapshot.
pub struct Handler {
    /// Swapped whole when zones, nodes or health change.
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub geo: Arc<GeoIp>,
    /// Where queries and located clients are counted.
    pub metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let udp = request.protocol() == Protocol::Udp;

        // EDNS: echoed with our size; only version 0 exists (RFC 6891 §6.1.3).
        let mut response_edns = None;
        let mut udp_limit = MIN_UDP_PAYLOAD;
        if let Some(edns) = &request.edns {
            let mut ours = Edns::new();
            ours.set_version(0);
            ours.set_dnssec_ok(false);
            ours.set_max_payload(MAX_UDP_PAYLOAD);
            udp_limit = edns.max_payload().clamp(MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD);
            response_edns = Some(ours);
        }

        let outcome = self.outcome(request, response_edns.as_mut());
        let (answer, rcode) = match outcome {
            Ok(answer) => {
                let rcode = answer.rcode;
                (answer, rcode)
            }
            Err(rcode) => (Answer::refused(), rcode),
        };
        let qtype = request.queries.queries().first().map(|q| q.query_type());
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp => Transport::Tcp,
            _ => Transport::Tls,
        };
        self.metrics.dns.query(qtype, rcode, transport);
        metadata.response_code = rcode;
        metadata.authoritative = answer.authoritative && rcode != ResponseCode::Refused;

        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }
        let empty: [Record; 0] = [];
        let fits = !udp
            || response_size(request, &answer, response_edns.as_ref()) <= usize::from(udp_limit);
        let response = if fits && rcode_carries_records(rcode) {
            builder.build(
                metadata,
                answer.answers.iter(),
                answer.authority.iter(),
                empty.iter(),
                answer.additional.iter(),
            )
        } else {
            // Truncated: no partial record sets; the client retries over TCP.
            metadata.truncation = !fits;
            builder.build(
                metadata,
                empty.iter(),
                empty.iter(),
                empty.iter(),
                empty.iter(),
            )
        };
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                debug!(error = %e, "could not send a DNS response");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_proto::op::Header {
                    metadata,
                    counts: Default::default(),
                })
            }
        }
    }
}

impl Handler {
    /// The answer to `request`, or the error code it earns. Adds the ECS
    /// option to `edns` when the query carried one.
    fn outcome(&self, request: &Request, edns: Option<&mut Edns>) -> Result<Answer, ResponseCode> {
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return Err(ResponseCode::BADVERS);
        }
        if request.metadata.op_code != OpCode::Query {
            return Err(ResponseCode::NotImp);
        }
        let queries = request.queries.queries();
        let [query] = queries else {
            return Err(ResponseCode::FormErr);
        };
        let subnet =
            ecs::client_subnet(request.edns.as_ref()).map_err(|_| ResponseCode::FormErr)?;
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return Err(ResponseCode::Refused);
        }
        let qtype = query.query_type();
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            // Every node holds every zone; nobody needs a transfer.
            return Err(ResponseCode::Refused);
        }
        let snapshot = self.snapshot.load();
        let client = ecs::locating_address(subnet.as_ref(), request.src().ip());
        let mut prefix = None;
        let mut locate = || {
            let found = self.geo.locate(client);
            self.metrics.dns.client(found.country);
            prefix = found.prefix;
            found.coordinates
        };
        let answer = answer::resolve(&snapshot, query.name(), qtype, &mut locate);
        let nodes = if answer.chosen_type == RecordType::A {
            &snapshot.v4
        } else {
            &snapshot.v6
        };
        for node in answer.chosen.iter().filter_map(|&i| nodes.get(i)) {
            self.metrics.dns.answered(&node.name);
        }
        if let (Some(subnet), Some(edns)) = (subnet, edns) {
            let scope = if answer.geographic {
                scope_prefix(&subnet, prefix)
            } else {
                0
            };
            edns.options_mut()
                .insert(ecs::response_option(&subnet, scope));
        }
        Ok(answer)
    }
}

/// The ECS scope of a geographic answer: the database network's prefix
/// (every address in it gets this answer), or the source prefix when no
/// database located it.
pub fn scope_prefix(subnet: &ClientSubnet, network: Option<u8>) -> u8 {
    let max = match subnet.addr() {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    network.unwrap_or(subnet.source_prefix()).min(max)
}

/// Whether a response with this code carries the answer's records (error
/// responses carry none).
fn rcode_carries_records(rcode: ResponseCode) -> bool {
    matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain)
}

/// Upper bound of the encoded response: header, question, records, OPT.
fn response_size(request: &Request, answer: &Answer, edns: Option<&Edns>) -> usize {
    let question: usize = request
        .queries
        .queries()
        .iter()
        .map(|q| name_wire_len(q.name()) + 4)
        .sum();
    let opt = edns.map_or(0, |e| {
        11 + e
            .options()
            .as_ref()
            .iter()
            .map(|(_, o)| 4 + usize::from(o.len()))
            .sum::<usize>()
    });
    12 + question + answer.wire_len + opt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn port_zero_gets_one_port_for_udp_and_tcp() {
        for _ in 0..20 {
            let bound = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await;
            let (udp, tcp) = bound.unwrap_or_else(|e| panic!("bind: {e}"));
            let (u, t) = (udp.local_addr().ok(), tcp.local_addr().ok());
            assert!(u.is_some());
            assert_eq!(u, t);
        }
    }
}
