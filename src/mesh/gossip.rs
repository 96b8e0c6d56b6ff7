//! Moving rows between nodes: eager push of this node's own writes to every
//! peer, and anti-entropy (a digest exchange with one random peer every few
//! seconds) that repairs whatever a push missed: a peer that was down, a
//! lost message, a row written while the link was cut.
//!
//! Eager push keeps a watermark per peer (the stamp of the last own row the
//! peer accepted), so a failed push is retried from where it stopped.
//! Anti-entropy compares per-table bucket hashes, then versions in the
//! buckets that differ, and moves rows both ways.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::messages::{
    ApplyReply, ApplyRequest, DigestReply, DigestRequest, MAX_ROWS, PATH_APPLY, PATH_DIGEST,
    PATH_ROWS, RowsReply, RowsRequest, TableDigest,
};
use super::rpc::RpcError;
use super::service::{Mesh, Peer};
use crate::shutdown::Shutdown;
use crate::store::{Table, Version, bucket_hashes, by_key};

/// How often anti-entropy runs (with one random peer each time).
pub const ANTI_ENTROPY_INTERVAL: Duration = Duration::from_secs(3);
/// How often eager push looks again even without a write (retries).
const PUSH_RETRY: Duration = Duration::from_secs(2);
/// Rows per push message.
const PUSH_BATCH: usize = 500;

/// Pushes this node's new rows to every peer as soon as they are written.
/// Each peer has at most one push in flight, and pushes run independently:
/// a peer that stops answering (killed, cut off) holds up only its own
/// push until the call times out, never the others'.
pub async fn push_loop(mesh: Arc<Mesh>, mut shutdown: Shutdown) {
    let mut writes = mesh.store().subscribe_writes();
    let mut marks: HashMap<String, u64> = HashMap::new();
    let mut running: JoinSet<(String, Result<u64, RpcError>)> = JoinSet::new();
    // The peer each push in flight is for.
    let mut busy: HashMap<tokio::task::Id, String> = HashMap::new();
    loop {
        for peer in mesh.peers() {
            if busy.values().any(|name| *name == peer.name) {
                continue;
            }
            let mark = marks.get(&peer.name).copied().unwrap_or(0);
            let name = peer.name.clone();
            let mesh = mesh.clone();
            let handle = running.spawn(async move {
                let result = push_to(&mesh, &peer, mark).await;
                (peer.name, result)
            });
            busy.insert(handle.id(), name);
        }
        let retry = tokio::time::sleep(PUSH_RETRY);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                Some(done) = running.join_next_with_id(), if !running.is_empty() => match done {
                    Ok((id, (name, Ok(mark)))) => {
                        busy.remove(&id);
                        marks.insert(name, mark);
                    }
                    Ok((id, (name, Err(e)))) => {
                        busy.remove(&id);
                        debug!(peer = %name, error = %e, "eager push failed; will retry");
                    }
                    Err(e) => {
                        busy.remove(&e.id());
                    }
                },
                _ = writes.changed() => break,
                _ = &mut retry => break,
                _ = shutdown.wait() => { running.shutdown().await; return; }
            }
        }
    }
}

/// Sends `peer` every own row stamped after `mark`; the new mark.
async fn push_to(mesh: &Mesh, peer: &Peer, mut mark: u64) -> Result<u64, RpcError> {
    loop {
        let store = mesh.store().clone();
        let rows = tokio::task::spawn_blocking(move || store.own_rows_since(mark, PUSH_BATCH))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let Some(last) = rows.last().map(|r| r.hlc) else {
            return Ok(mark);
        };
        let full = rows.len() == PUSH_BATCH;
        let _: ApplyReply = mesh
            .client()
            .call_json(peer.addr, PATH_APPLY, &ApplyRequest { rows })
            .await?;
        mark = last;
        if !full {
            return Ok(mark);
        }
    }
}

/// Runs anti-entropy with a random peer every [`ANTI_ENTROPY_INTERVAL`].
pub async fn anti_entropy_loop(mesh: Arc<Mesh>, mut shutdown: Shutdown) {
    let mut turn = 0usize;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ANTI_ENTROPY_INTERVAL) => {}
            _ = shutdown.wait() => return,
        }
        let peers = mesh.peers();
        if peers.is_empty() {
            continue;
        }
        // A random start, then round-robin: every peer is visited within
        // `peers.len()` rounds, so repairs are bounded.
        if turn == 0 {
            turn = random_index(peers.len());
        }
        turn = turn.wrapping_add(1);
        let peer = &peers[turn % peers.len()];
        match exchange(&mesh, peer).await {
            Ok(moved) => {
                mesh.synced_with(&peer.name);
                if moved > 0 {
                    debug!(peer = %peer.name, rows = moved, "anti-entropy repaired rows");
                }
            }
            Err(e) => debug!(peer = %peer.name, error = %e, "anti-entropy failed"),
        }
    }
}

/// One digest exchange with `peer`; how many rows moved either way.
pub async fn exchange(mesh: &Arc<Mesh>, peer: &Peer) -> Result<usize, RpcError> {
    let store = mesh.store().clone();
    let ours = tokio::task::spawn_blocking(move || local_versions(&store))
        .await
        .unwrap_or_default();
    let hashes: BTreeMap<String, Vec<String>> = ours
        .iter()
        .map(|(t, buckets)| (t.clone(), bucket_hashes(buckets)))
        .collect();
    // First round: one hash per table; second, bucket hashes of the tables
    // that differ. An idle cluster exchanges a few hundred bytes.
    let first = DigestRequest {
        tables: hashes
            .iter()
            .map(|(t, b)| {
                (
                    t.clone(),
                    TableDigest {
                        whole: whole_hash(b),
                        buckets: None,
                    },
                )
            })
            .collect(),
    };
    let reply: DigestReply = mesh
        .client()
        .call_json(peer.addr, PATH_DIGEST, &first)
        .await?;
    if reply.differ.is_empty() {
        return Ok(0);
    }
    let second = DigestRequest {
        tables: hashes
            .iter()
            .filter(|(t, _)| reply.differ.contains(t))
            .map(|(t, b)| {
                (
                    t.clone(),
                    TableDigest {
                        whole: whole_hash(b),
                        buckets: Some(b.clone()),
                    },
                )
            })
            .collect(),
    };
    let reply: DigestReply = mesh
        .client()
        .call_json(peer.addr, PATH_DIGEST, &second)
        .await?;
    let mut moved = 0;
    for (table, buckets) in reply.tables {
        let Some(local) = ours.get(&table) else {
            continue;
        };
        let mut want = Vec::new();
        let mut give = Vec::new();
        for (index, theirs) in buckets {
            let Some(mine) = local.get(index) else {
                continue;
            };
            let (w, g) = compare(mine, &theirs);
            want.extend(w);
            give.extend(g);
        }
        for keys in want.chunks(MAX_ROWS) {
            let reply: RowsReply = mesh
                .client()
                .call_json(
                    peer.addr,
                    PATH_ROWS,
                    &RowsRequest {
                        table: table.clone(),
                        keys: keys.to_vec(),
                    },
                )
                .await?;
            let mesh2 = mesh.clone();
            let applied = tokio::task::spawn_blocking(move || mesh2.accept_rows(reply.rows))
                .await
                .ok();
            match applied {
                Some(Ok(n)) => moved += n,
                Some(Err(e)) => warn!(peer = %peer.name, error = %e, "refused rows from peer"),
                None => {}
            }
        }
        for keys in give.chunks(MAX_ROWS) {
            let store = mesh.store().clone();
            let table = table.clone();
            let keys = keys.to_vec();
            let rows = tokio::task::spawn_blocking(move || store.rows_by_key(&table, &keys))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            if rows.is_empty() {
                continue;
            }
            let reply: ApplyReply = mesh
                .client()
                .call_json(peer.addr, PATH_APPLY, &ApplyRequest { rows })
                .await?;
            moved += reply.applied;
        }
    }
    Ok(moved)
}

/// Every replicated table's versions, bucketed.
pub fn local_versions(store: &crate::store::Store) -> BTreeMap<String, Vec<Vec<Version>>> {
    Table::ALL
        .into_iter()
        .filter_map(|t| Some((t.name().to_string(), store.versions(t).ok()?)))
        .collect()
}

/// Keys where the peer's version wins (want) and where ours does (give).
fn compare(mine: &[Version], theirs: &[Version]) -> (Vec<String>, Vec<String>) {
    let mine_by = by_key(mine);
    let theirs_by = by_key(theirs);
    let mut want = Vec::new();
    let mut give = Vec::new();
    for (key, t) in &theirs_by {
        match mine_by.get(key) {
            Some(m) if (m.hlc, m.origin.as_str()) >= (t.hlc, t.origin.as_str()) => {}
            _ => want.push(key.to_string()),
        }
    }
    for (key, m) in &mine_by {
        match theirs_by.get(key) {
            Some(t) if (t.hlc, t.origin.as_str()) >= (m.hlc, m.origin.as_str()) => {}
            _ => give.push(key.to_string()),
        }
    }
    (want, give)
}

/// One hash over a table's bucket hashes.
fn whole_hash(buckets: &[String]) -> String {
    let mut hasher = blake3::Hasher::new();
    for b in buckets {
        hasher.update(b.as_bytes());
    }
    hasher.finalize().to_hex()[..32].to_string()
}

/// The tables whose whole hash differs from `theirs`; for tables that came
/// with bucket hashes, the versions in each bucket that differs.
pub fn differing(
    ours: &BTreeMap<String, Vec<Vec<Version>>>,
    theirs: &BTreeMap<String, TableDigest>,
) -> DigestReply {
    let mut reply = DigestReply::default();
    for (table, buckets) in ours {
        let Some(their) = theirs.get(table) else {
            continue;
        };
        let our_hashes = bucket_hashes(buckets);
        if whole_hash(&our_hashes) == their.whole {
            continue;
        }
        reply.differ.push(table.clone());
        let Some(their_hashes) = &their.buckets else {
            continue;
        };
        let mut differ = BTreeMap::new();
        for (i, hash) in our_hashes.iter().enumerate() {
            if their_hashes.get(i) != Some(hash) {
                differ.insert(i, buckets[i].clone());
            }
        }
        if !differ.is_empty() {
            reply.tables.insert(table.clone(), differ);
        }
    }
    reply
}

/// A random index below `n` (n > 0), from the OS's random source.
pub fn random_index(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    let seed = u64::from_le_bytes(bytes) ^ super::service::now_ms();
    (seed % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: &str, hlc: u64, origin: &str) -> Version {
        Version {
            key: key.into(),
            hlc,
            origin: origin.into(),
        }
    }

    #[test]
    fn compare_wants_newer_and_gives_newer() {
        let mine = vec![v("a", 1, "x"), v("b", 5, "x"), v("c", 3, "x")];
        let theirs = vec![v("a", 2, "y"), v("b", 5, "x"), v("d", 1, "y")];
        let (want, give) = compare(&mine, &theirs);
        assert_eq!(want, vec!["a", "d"]);
        assert_eq!(give, vec!["c"]);
    }
}
