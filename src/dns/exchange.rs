//! One DNS message in, at most one message out, whatever the transport:
//! short and undecodable messages get FORMERR when they carry an id to
//! answer, responses are ignored (no reflection), and everything else goes
//! to the request handler, whose response is captured as bytes for the
//! transport (`udp.rs`, `tcp.rs`) to send.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

/// Bytes of a DNS header; a shorter message has no question to answer.
pub const HEADER_LEN: usize = 12;
/// The smallest UDP response size every client accepts (RFC 1035 §4.2.1).
const PLAIN_UDP_LIMIT: u16 = 512;

/// What became of one incoming message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered by the handler.
    Answered(Vec<u8>),
    /// Too short or undecodable: a FORMERR header echoing the id.
    FormErr(Vec<u8>),
    /// Nothing to send: a response, or under two bytes (no id to echo).
    Silent,
}

/// Runs `raw`, received from `src` over `protocol`, through `handler`.
pub async fn exchange<H: RequestHandler>(
    handler: &H,
    raw: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
) -> Outcome {
    if raw.len() >= 3 && raw[2] & 0x80 != 0 {
        // QR set: a response. Answering it could loop two servers.
        return Outcome::Silent;
    }
    if raw.len() < HEADER_LEN || question_compressed(&raw) {
        return formerr(&raw).map_or(Outcome::Silent, Outcome::FormErr);
    }
    let request = match Request::from_bytes(raw.clone(), src, protocol) {
        Ok(request) => request,
        Err(_) => return formerr(&raw).map_or(Outcome::Silent, Outcome::FormErr),
    };
    let reply = Reply::new(protocol);
    handler
        .handle_request::<_, TokioTime>(&request, reply.clone())
        .await;
    match reply.take() {
        Some(bytes) => Outcome::Answered(bytes),
        None => Outcome::Silent,
    }
}

/// Whether the first question's name uses a compression pointer. Nothing
/// precedes it but the header, so such a pointer is malformed; and hickory
/// echoes a question's original bytes, so the pointer would land on the
/// response's own header and the reply would not decode.
fn question_compressed(raw: &[u8]) -> bool {
    if raw.get(4..6) == Some(&[0, 0]) {
        return false;
    }
    let mut at = HEADER_LEN;
    while let Some(&len) = raw.get(at) {
        match len {
            0 => return false,
            l if l & 0xc0 == 0xc0 => return true,
            l if l & 0xc0 != 0 => return false,
            l => at += 1 + usize::from(l),
        }
    }
    false
}

/// A FORMERR response to a message that could not be decoded: its id, its
/// opcode and RD bit when present, no sections. `None` under two bytes:
/// there is no id, so no client could match a response to its query.
pub fn formerr(raw: &[u8]) -> Option<Vec<u8>> {
    let id = raw.get(..2)?;
    let flags = raw.get(2).copied().unwrap_or(0);
    let mut out = vec![0u8; HEADER_LEN];
    out[..2].copy_from_slice(id);
    // QR, the query's opcode (bits 1-4) and RD; AA, TC clear.
    out[2] = 0x80 | (flags & 0x79);
    // RCODE 1: FORMERR.
    out[3] = 0x01;
    Some(out)
}

/// An empty truncated answer to `raw` (its id, opcode, RD and question):
/// what a rate-limited client gets instead of the answer, so a real
/// resolver retries over TCP, which a spoofed source cannot. `None` when
/// `raw` does not decode.
pub fn truncated(raw: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(raw).ok()?;
    if query.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut reply = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.truncation = true;
    if query.metadata.op_code == OpCode::Query {
        for q in query.queries {
            reply.add_query(q);
        }
    }
    reply.to_vec().ok()
}

/// A response handler that keeps the encoded response for the transport.
#[derive(Clone)]
struct Reply {
    protocol: Protocol,
    /// Set once by `send_response`; never locked across an await.
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Reply {
    fn new(protocol: Protocol) -> Reply {
        Reply {
            protocol,
            bytes: Arc::new(Mutex::new(None)),
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Reply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let id = response.metadata().id;
        let limit = match self.protocol {
            Protocol::Udp => response.edns().map_or(PLAIN_UDP_LIMIT, |e| e.max_payload()),
            _ => u16::MAX,
        };
        let mut bytes = Vec::with_capacity(512);
        let emitted = {
            let mut encoder = BinEncoder::new(&mut bytes);
            encoder.set_max_size(limit);
            response.destructive_emit(&mut encoder)
        };
        let (result, bytes) = match emitted {
            Ok(info) => (Ok(info), bytes),
            // The handler sizes UDP answers itself, so this is an answer
            // over 64 KiB: say SERVFAIL rather than nothing.
            Err(e) => (Err(NetError::from(e.to_string())), servfail(id)),
        };
        *self.bytes.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes);
        result
    }
}

/// A bare SERVFAIL header for `id`.
fn servfail(id: u16) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[..2].copy_from_slice(&id.to_be_bytes());
    out[2] = 0x80;
    out[3] = 0x02;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formerr_echoes_the_id_and_opcode_and_needs_two_bytes() {
        assert_eq!(formerr(&[]), None);
        assert_eq!(formerr(&[0xab]), None);
        let two = formerr(&[0xab, 0xcd]).unwrap_or_default();
        assert_eq!(two, [0xab, 0xcd, 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Opcode 2 (STATUS) with RD; the TC and AA bits of the query are not echoed.
        let three = formerr(&[1, 2, 0x17]).unwrap_or_default();
        assert_eq!(three[2], 0x80 | 0x11);
        let parsed = Message::from_vec(&two).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed.metadata.response_code,
            hickory_proto::op::ResponseCode::FormErr
        );
    }

    #[test]
    fn a_truncated_answer_keeps_the_question() {
        let mut query = Message::new(7, MessageType::Query, OpCode::Query);
        query.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("example.com.").unwrap_or_default(),
            hickory_proto::rr::RecordType::A,
        ));
        let raw = query.to_vec().unwrap_or_default();
        let reply = Message::from_vec(&truncated(&raw).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(reply.metadata.truncation);
        assert_eq!(reply.metadata.id, 7);
        assert_eq!(reply.queries.len(), 1);
        assert!(reply.answers.is_empty());
        assert_eq!(truncated(&[1, 2, 3]), None);
    }
}
