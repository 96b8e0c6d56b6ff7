//! The UDP listener: a receive loop per CPU core (sharing the socket)
//! answers each query inline before reading the next, so no task is
//! spawned per datagram and the work in flight is bounded (a flood waits
//! in the socket buffer, and the kernel drops what does not fit). Plain
//! queries are answered from pre-rendered bytes (`fast.rs`); the rest go
//! through the request handler (`exchange.rs`). Every response passes
//! response rate limiting first (`rrl.rs`).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::exchange::{self, Outcome};
use super::fast::{self, Scratch};
use super::rrl::{Rrl, Verdict};
use super::server::Handler;
use crate::limits::{Counters, Limited};
use crate::shutdown::Shutdown;

/// Largest query read; a longer datagram is cut and answered FORMERR.
/// Queries are a header, one question and an OPT record: far smaller.
const MAX_QUERY: usize = 4096;
/// Queries answered back to back before the loop lets other tasks on its
/// thread run (and looks for shutdown).
const BATCH: usize = 64;

/// Answers queries on `socket` until `shutdown`, with one receive loop per
/// CPU core, at most `loops`.
pub async fn serve(
    socket: UdpSocket,
    handler: Arc<Handler>,
    rrl: Arc<Rrl>,
    counters: Arc<Counters>,
    loops: usize,
    shutdown: Shutdown,
) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let socket = Arc::new(socket);
    let mut tasks = JoinSet::new();
    for _ in 0..loops.min(cores).max(1) {
        tasks.spawn(receive_loop(
            socket.clone(),
            handler.clone(),
            rrl.clone(),
            counters.clone(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// Receives and answers, one query at a time, until `shutdown`.
async fn receive_loop(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    rrl: Arc<Rrl>,
    counters: Arc<Counters>,
    mut shutdown: Shutdown,
) {
    let mut buf = vec![0u8; MAX_QUERY];
    let mut out = Vec::with_capacity(usize::from(super::server::MAX_UDP_PAYLOAD));
    let mut scratch = Scratch::default();
    let mut answered = 0;
    loop {
        let (len, src) = match socket.try_recv_from(&mut buf) {
            Ok(received) => received,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                answered = 0;
                tokio::select! {
                    ready = socket.readable() => if let Err(e) = ready {
                        warn!(error = %e, "DNS UDP socket failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    },
                    _ = shutdown.wait() => return,
                }
                continue;
            }
            Err(e) => {
                // Usually a transient ICMP error reported on the socket.
                warn!(error = %e, "DNS UDP receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let raw = &buf[..len];
        match rrl.verdict(src.ip(), Instant::now()) {
            Verdict::Answer => {
                if fast::answer(&handler, raw, src, &mut out, &mut scratch) {
                    send(&socket, &out, src).await;
                } else if let Some(reply) = answer(&handler, raw.to_vec(), src, &counters).await {
                    send(&socket, &reply, src).await;
                }
            }
            Verdict::Slip => {
                counters.count(Limited::DnsSlipped);
                if let Some(reply) = exchange::truncated(raw) {
                    send(&socket, &reply, src).await;
                }
            }
            Verdict::Drop => counters.count(Limited::DnsDropped),
        }
        answered += 1;
        if answered == BATCH {
            answered = 0;
            if shutdown.is_shutdown() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Sends `reply` to `to`, waiting only when the socket's buffer is full.
async fn send(socket: &UdpSocket, reply: &[u8], to: SocketAddr) {
    let sent = match socket.try_send_to(reply, to) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => socket.send_to(reply, to).await,
        sent => sent,
    };
    if let Err(e) = sent {
        debug!(%to, error = %e, "could not send a DNS response");
    }
}

/// The response to one query that passed the rate limit and that the fast
/// path left to the request handler.
async fn answer(
    handler: &Handler,
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
