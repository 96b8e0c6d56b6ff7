//! The UDP listener: a receive loop per CPU core (sharing the socket)
//! reads the queries waiting, a batch at a time (`mmsg.rs`), answers each
//! inline and sends the replies together, so no task is spawned per
//! datagram and the work in flight is bounded (a flood waits in the socket
//! buffer, and the kernel drops what does not fit). Plain queries are
//! answered from pre-rendered bytes (`fast.rs`); the rest go through the
//! request handler (`exchange.rs`). Every response passes response rate
//! limiting first (`rrl.rs`).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::net::xfer::Protocol;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::warn;

use super::exchange::{self, Outcome};
use super::fast::{self, Scratch};
use super::mmsg::{Batch, Slot};
use super::rrl::{Rrl, Verdict};
use super::server::{Handler, MAX_UDP_PAYLOAD};
use crate::limits::{Counters, Limited};
use crate::shutdown::Shutdown;

/// Largest query read; a longer datagram is cut and answered FORMERR.
/// Queries are a header, one question and an OPT record: far smaller.
const MAX_QUERY: usize = 4096;
/// Queries answered back to back before the loop lets other tasks on its
/// thread run (and looks for shutdown).
const BATCH_YIELD: usize = 64;

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

/// Receives a batch of queries, answers each, sends the replies, until
/// `shutdown`.
async fn receive_loop(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    rrl: Arc<Rrl>,
    counters: Arc<Counters>,
    mut shutdown: Shutdown,
) {
    let mut batch = Batch::new(MAX_QUERY, usize::from(MAX_UDP_PAYLOAD));
    let mut scratch = Scratch::default();
    let mut answered = 0;
    loop {
        match batch.receive(&socket) {
            Ok(_) => {}
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
        }
        let now = Instant::now();
        for i in 0..batch.len() {
            let Slot { query, src, reply } = batch.slot(i);
            let Some(src) = src else { continue };
            respond(
                &handler,
                &rrl,
                &counters,
                query,
                src,
                now,
                reply,
                &mut scratch,
            )
            .await;
        }
        batch.send(&socket).await;
        answered += batch.len();
        if answered >= BATCH_YIELD {
            answered = 0;
            if shutdown.is_shutdown() {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Writes the reply to `query` from `src` into `reply` (left empty when
/// none is due).
#[allow(clippy::too_many_arguments)]
async fn respond(
    handler: &Handler,
    rrl: &Rrl,
    counters: &Counters,
    query: &[u8],
    src: SocketAddr,
    now: Instant,
    reply: &mut Vec<u8>,
    scratch: &mut Scratch,
) {
    match rrl.verdict(src.ip(), now) {
        Verdict::Answer => {
            if !fast::answer(handler, query, src, reply, scratch) {
                reply.clear();
                if let Some(bytes) = answer(handler, query.to_vec(), src, counters).await {
                    *reply = bytes;
                }
            }
        }
        Verdict::Slip => {
            counters.count(Limited::DnsSlipped);
            if let Some(bytes) = exchange::truncated(query) {
                *reply = bytes;
            }
        }
        Verdict::Drop => counters.count(Limited::DnsDropped),
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
