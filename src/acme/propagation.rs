//! Waits until this node's own DNS listener answers a challenge's TXT
//! values, so a validator that asks right after `set_ready` finds them.
//! The query goes through the real listener (UDP), exactly as a
//! validator's would.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

/// Time between two checks.
const INTERVAL: Duration = Duration::from_millis(100);
/// How long one query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Returns once `dns` answers every value of `expected` at `name`, or
/// `false` after `limit`.
pub async fn wait_published(
    dns: SocketAddr,
    name: &str,
    expected: &[String],
    limit: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut id: u16 = 1;
    loop {
        if let Some(values) = txt_values(dns, name, id).await
            && expected.iter().all(|v| values.contains(v))
        {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        id = id.wrapping_add(1);
        tokio::time::sleep(INTERVAL).await;
    }
}

/// The TXT strings `dns` answers at `name`, or `None` on any failure.
async fn txt_values(dns: SocketAddr, name: &str, id: u16) -> Option<Vec<String>> {
    let qname = Name::from_ascii(format!("{name}.")).ok()?;
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(qname, RecordType::TXT));
    let bytes = message.to_vec().ok()?;
    let bind: SocketAddr = if dns.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind).await.ok()?;
    socket.send_to(&bytes, dns).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(QUERY_TIMEOUT, socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let reply = Message::from_vec(&buf[..len]).ok()?;
    if reply.metadata.id != id {
        return None;
    }
    Some(
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect(),
    )
}
