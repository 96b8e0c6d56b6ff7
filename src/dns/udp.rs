//! The UDP listener: a fixed number of workers share the socket, each
//! receiving and answering one query at a time, so the work in flight is
//! bounded (a flood waits in the socket buffer, and the kernel drops what
//! does not fit) instead of becoming a task per datagram. Every response
//! passes response rate limiting first (`rrl.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use hickory_server::server::RequestHandler;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::exchange::{self, Outcome};
use super::rrl::{Rrl, Verdict};
use crate::limits::{Counters, Limited};
use crate::shutdown::Shutdown;

/// Largest query read; a longer datagram is cut and answered FORMERR.
/// Queries are a header, one question and an OPT record: far smaller.
const MAX_QUERY: usize = 4096;

/// Answers queries on `socket` with `workers` workers until `shutdown`.
pub async fn serve<H: RequestHandler>(
    socket: UdpSocket,
    handler: Arc<H>,
    rrl: Arc<Rrl>,
    counters: Arc<Counters>,
    workers: usize,
    shutdown: Shutdown,
) {
    let socket = Arc::new(socket);
    let mut tasks = JoinSet::new();
    for _ in 0..workers.max(1) {
        tasks.spawn(worker(
            socket.clone(),
            handler.clone(),
            rrl.clone(),
            counters.clone(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// One worker: receive, decide, answer, until shutdown.
async fn worker<H: RequestHandler>(
    socket: Arc<UdpSocket>,
    handler: Arc<H>,
    rrl: Arc<Rrl>,
    counters: Arc<Counters>,
    mut shutdown: Shutdown,
) {
    let mut buf = vec![0u8; MAX_QUERY];
    loop {
        let (len, src) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    // Usually a transient ICMP error reported on the socket.
                    warn!(error = %e, "DNS UDP receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => return,
        };
        let raw = &buf[..len];
        let reply = match rrl.verdict(src.ip(), Instant::now()) {
            Verdict::Answer => answer(&*handler, raw.to_vec(), src, &counters).await,
            Verdict::Slip => {
                counters.count(Limited::DnsSlipped);
                exchange::truncated(raw)
            }
            Verdict::Drop => {
                counters.count(Limited::DnsDropped);
                None
            }
        };
        if let Some(reply) = reply
            && let Err(e) = socket.send_to(&reply, src).await
        {
            debug!(%src, error = %e, "could not send a DNS response");
        }
    }
}

/// The response to one query that passed the rate limit.
async fn answer<H: RequestHandler>(
    handler: &H,
    raw: Vec<u8>,
    src: SocketAddr,
    counters: &Counters,
) -> Option<Vec<u8>> {
    match exchange::exchange(handler, raw, src, Protocol::Udp).await {
        Outcome::Answered(bytes) => Some(bytes),
        Outcome::FormErr(bytes) => {
            counters.count(Limited::DnsFormErr);
            Some(bytes)
        }
        Outcome::Silent => None,
    }
}
