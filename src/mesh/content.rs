//! Content sync: turning a held pointer row into a served revision.
//!
//! For each pointer row held back by [`Mesh::accept_rows`], the node finds
//! the revision row it names, fetches the manifest by tree diff, fetches the
//! objects it lacks in batches (its own share from the revision's origin,
//! the other shares from the nodes that own them, see `swarm.rs`, a few
//! batches in flight at once), verifies and stores each, installs
//! (materialises) the revision, and only then applies the pointer row,
//! which publishes it.
//! Objects already stored are never fetched again, so a sync interrupted by
//! a crash resumes where it stopped when the pointer row arrives again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::messages::{ObjectsRequest, PATH_OBJECTS};
use super::objects;
use super::service::{Mesh, Peer};
use super::swarm;
use super::tree_fetch::{self, FetchError};
use crate::cas::is_compressible;
use crate::shutdown::Shutdown;
use crate::store::{Pointer, RevisionRow, Row};
use crate::tree::Manifest;

/// How often held rows are retried without a new trigger.
const RETRY: Duration = Duration::from_secs(2);

/// Syncs held rows until shutdown.
pub async fn sync_loop(mesh: Arc<Mesh>, mut shutdown: Shutdown) {
    loop {
        for row in mesh.pending() {
            if shutdown.is_shutdown() {
                return;
            }
            tokio::select! {
                _ = sync_row(&mesh, &row) => {}
                _ = shutdown.wait() => return,
            }
        }
        tokio::select! {
            _ = mesh.content_wanted() => {}
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Brings one held row's revision here and applies the row.
async fn sync_row(mesh: &Arc<Mesh>, row: &Row) {
    let Some(Pointer {
        site: domain, root, ..
    }) = row.pointer()
    else {
        mesh.release(row);
        return;
    };
    let revision = match mesh.store().revisions(domain) {
        Ok(revs) => revs.into_iter().find(|r| r.root == root),
        Err(e) => {
            warn!(error = %e, "cannot read revisions");
            return;
        }
    };
    let Some(revision) = revision else {
        debug!(domain, root, "waiting for the revision row");
        return;
    };
    if !mesh.deployer().has_revision(root) {
        let started = std::time::Instant::now();
        match fetch_revision(mesh, &revision, &row.origin).await {
            Ok(fetched) => info!(
                domain,
                root = %&root[..12.min(root.len())],
                objects = fetched.objects,
                bytes = fetched.bytes,
                manifest_ms = fetched.manifest_ms,
                objects_ms = fetched.objects_ms,
                install_ms = fetched.install_ms,
                ms = started.elapsed().as_millis() as u64,
                "revision fetched"
            ),
            Err(e) => {
                warn!(domain, root, error = %e, "revision fetch failed; will retry");
                mesh.set_sync_error(
                    row,
                    format!("revision {} of {domain}: {e}", &root[..12.min(root.len())]),
                );
                return;
            }
        }
    }
    let mesh2 = mesh.clone();
    let row2 = row.clone();
    match tokio::task::spawn_blocking(move || mesh2.accept_rows(vec![row2])).await {
        Ok(Ok(_)) => mesh.release(row),
        Ok(Err(e)) => warn!(error = %e, "cannot apply a pointer row"),
        Err(e) => warn!(error = %e, "pointer row task failed"),
    }
}

/// What one revision fetch moved.
#[derive(Debug, Default)]
pub struct Fetched {
    pub objects: usize,
    /// Raw (uncompressed) object bytes stored.
    pub bytes: u64,
    /// Time spent getting the manifest, the objects (with their variants)
    /// and installing the revision, so a slow sync says where it was slow.
    pub manifest_ms: u64,
    pub objects_ms: u64,
    pub install_ms: u64,
}

/// Fetches `revision` from its origin or any other peer, and installs it.
async fn fetch_revision(
    mesh: &Arc<Mesh>,
    revision: &RevisionRow,
    origin: &str,
) -> Result<Fetched, FetchError> {
    let mut peers = mesh.peers();
    // The revision's origin (and the pointer's) first, then the others.
    peers.sort_by_key(|p| !(p.name == origin || p.name == revision_origin(mesh, revision)));
    let mut last = None;
    for peer in &peers {
        match fetch_from(mesh, revision, peer).await {
            Ok(fetched) => return Ok(fetched),
            // This node cannot store what it fetched (a full disk): every
            // other peer would fail the same way.
            Err(e) if e.is_local() => return Err(e),
            Err(e) => {
                debug!(peer = %peer.name, error = %e, "fetch from peer failed");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(FetchError::NoPeer))
}

fn revision_origin(mesh: &Mesh, revision: &RevisionRow) -> String {
    mesh.store()
        .revision_origin(&revision.domain, &revision.root)
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn fetch_from(
    mesh: &Arc<Mesh>,
    revision: &RevisionRow,
    peer: &Peer,
) -> Result<Fetched, FetchError> {
    let bad = || FetchError::BadManifest {
        peer: peer.addr,
        manifest: revision.manifest.clone(),
    };
    let manifest_hash = blake3::Hash::from_hex(&revision.manifest).map_err(|_| bad())?;
    let root = blake3::Hash::from_hex(&revision.root).map_err(|_| bad())?;
    let cas = mesh.deployer().cas().clone();
    let phase = std::time::Instant::now();
    let base = closest_base(mesh, &revision.domain);
    let manifest = match mesh.deployer().manifest(&revision.manifest) {
        Ok(m) => m,
        Err(_) => {
            tree_fetch::fetch_manifest(
                mesh.client(),
                &cas,
                peer.addr,
                manifest_hash,
                root,
                base.as_ref(),
            )
            .await?
        }
    };
    if manifest.root() != root {
        return Err(bad());
    }
    // Missing objects with their sizes, and whether any path of each is
    // compressible (so its variants are made once it is stored).
    let mut missing: HashMap<blake3::Hash, (u64, bool)> = HashMap::new();
    for (path, entry) in manifest.iter() {
        if !cas.contains(&entry.hash) {
            let slot = missing.entry(entry.hash).or_insert((entry.size, false));
            slot.1 |= is_compressible(path);
        }
    }
    let mut fetched = Fetched {
        manifest_ms: phase.elapsed().as_millis() as u64,
        ..Fetched::default()
    };
    let phase = std::time::Instant::now();
    // Objects whose precompressed variants are made once all are here,
    // where they did not come with the objects.
    let mut compress: Vec<blake3::Hash> = Vec::new();
    let list: Vec<(blake3::Hash, u64)> = missing.iter().map(|(h, (s, _))| (*h, *s)).collect();
    let _expected = mesh.incoming().expect(list.iter().map(|(h, _)| *h));
    let shares = swarm::plan(&list, &fetchers(mesh, peer), mesh.name());
    let mut tasks = tokio::task::JoinSet::new();
    for share in shares {
        let owner = share
            .owner
            .as_ref()
            .and_then(|name| mesh.peers().into_iter().find(|p| &p.name == name));
        tasks.spawn(fetch_share(
            mesh.clone(),
            peer.clone(),
            owner,
            share.batches,
            revision.manifest.clone(),
        ));
    }
    while let Some(done) = tasks.join_next().await {
        for hash in done?? {
            if let Some((size, compressible)) = missing.get(&hash) {
                fetched.objects += 1;
                fetched.bytes += size;
                if *compressible {
                    compress.push(hash);
                }
            }
        }
    }
    let variants_cas = cas.clone();
    tokio::task::spawn_blocking(move || make_variants(&variants_cas, &compress)).await?;
    fetched.objects_ms = phase.elapsed().as_millis() as u64;
    let phase = std::time::Instant::now();
    let deployer = mesh.deployer().clone();
    tokio::task::spawn_blocking(move || deployer.install_revision(&manifest)).await??;
    fetched.install_ms = phase.elapsed().as_millis() as u64;
    Ok(fetched)
}

/// Batches of one share in flight at once: the next is asked for while
/// the last is checked and stored.
const IN_FLIGHT: usize = 2;

/// Fetches one share's batches, each from `owner` first when another node
/// owns the share and then whatever it could not give from `origin`; the
/// hashes stored.
async fn fetch_share(
    mesh: Arc<Mesh>,
    origin: Peer,
    owner: Option<Peer>,
    batches: Vec<Vec<(blake3::Hash, u64)>>,
    manifest: String,
) -> Result<Vec<blake3::Hash>, FetchError> {
    // Once the owner fails, the rest of its share comes from the origin.
    let owner_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut stored = Vec::new();
    let mut running = tokio::task::JoinSet::new();
    for batch in batches {
        if running.len() >= IN_FLIGHT
            && let Some(done) = running.join_next().await
        {
            stored.extend(done??);
        }
        let mesh = mesh.clone();
        let origin = origin.clone();
        let owner = owner.clone();
        let owner_failed = owner_failed.clone();
        let manifest = manifest.clone();
        running.spawn(async move {
            let mut left = batch;
            let mut stored = Vec::new();
            if let Some(owner) = owner.filter(|_| !owner_failed.load(Ordering::Relaxed)) {
                stored = from_owner(&mesh, &owner, &left, &owner_failed).await?;
                let got: HashSet<&blake3::Hash> = stored.iter().collect();
                left.retain(|(h, _)| !got.contains(h));
            }
            while !left.is_empty() {
                let got = fetch_batch(&mesh, &origin, &left).await?;
                if got.is_empty() {
                    return Err(FetchError::NoManifest {
                        peer: origin.addr,
                        manifest,
                    });
                }
                let set: HashSet<&blake3::Hash> = got.iter().collect();
                left.retain(|(h, _)| !set.contains(h));
                stored.extend(got);
            }
            Ok(stored)
        });
    }
    while let Some(done) = running.join_next().await {
        stored.extend(done??);
    }
    Ok(stored)
}

/// Asks a share's `owner` for `batch`; what it gave. An owner that fails,
/// or still has none of the batch after [`OWNER_RETRIES`] pauses (a node
/// may see the revision a while after this one, longer on a busy machine),
/// is not asked again (`failed`), and the rest of its share comes from the
/// origin.
async fn from_owner(
    mesh: &Mesh,
    owner: &Peer,
    batch: &[(blake3::Hash, u64)],
    failed: &std::sync::atomic::AtomicBool,
) -> Result<Vec<blake3::Hash>, FetchError> {
    for attempt in 0..=OWNER_RETRIES {
        if attempt > 0 {
            tokio::time::sleep(OWNER_RETRY * (1 << (attempt - 1))).await;
        }
        let asked = tokio::select! {
            got = fetch_batch(mesh, owner, batch) => got,
            () = marked_down(mesh, &owner.name) => Err(FetchError::NoPeer),
        };
        match asked {
            Ok(got) if got.is_empty() => {}
            Ok(got) => return Ok(got),
            Err(e) if e.is_local() => return Err(e),
            Err(e) => {
                debug!(peer = %owner.name, error = %e, "share owner could not give objects; asking the origin");
                break;
            }
        }
    }
    failed.store(true, Ordering::Relaxed);
    Ok(Vec::new())
}

/// How long to wait before asking an owner that had nothing once more;
/// each later pause doubles it.
const OWNER_RETRY: Duration = Duration::from_millis(250);
/// How many times an owner that had nothing is asked again: the pauses add
/// up to 3.75 s, the most a share waits before the origin takes it over.
const OWNER_RETRIES: u32 = 4;

/// Returns once health probes mark `name` down: a node killed mid-fetch
/// answers nothing, and its share is asked of the origin instead of
/// waiting out the call timeout.
async fn marked_down(mesh: &Mesh, name: &str) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let healthy = mesh
            .store()
            .nodes()
            .ok()
            .and_then(|nodes| nodes.into_iter().find(|n| n.place.name == name))
            .is_none_or(|n| n.healthy);
        if !healthy {
            return;
        }
    }
}

/// The nodes fetching a revision from `origin` alongside this one: every
/// healthy node but the origin, this one included. Each node works this
/// out alike from the node table, so they split the objects alike.
fn fetchers(mesh: &Mesh, origin: &Peer) -> Vec<String> {
    let healthy: HashMap<String, bool> = mesh
        .store()
        .nodes()
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n.place.name, n.healthy))
        .collect();
    let mut names: Vec<String> = mesh
        .peers()
        .into_iter()
        .map(|p| p.name)
        .filter(|name| *name != origin.name && healthy.get(name).copied().unwrap_or(true))
        .collect();
    names.push(mesh.name().to_string());
    names
}

/// Fetches one batch from `peer`; the hashes stored.
async fn fetch_batch(
    mesh: &Mesh,
    peer: &Peer,
    wanted: &[(blake3::Hash, u64)],
) -> Result<Vec<blake3::Hash>, FetchError> {
    let request = ObjectsRequest {
        hashes: wanted.iter().map(|(h, _)| h.to_hex().to_string()).collect(),
        variants: true,
    };
    let body = super::json_body::encode(&request).unwrap_or_default();
    // Each object's parts add up to at most its size, plus up to four
    // 41-byte part headers.
    let raw: u64 = wanted.iter().map(|(_, s)| *s + 4 * 41).sum();
    let limit = (raw + raw / 64 + 64 * 1024).min(objects::MAX_BATCH_BYTES + 1024 * 1024) as usize;
    let batch = mesh
        .client()
        .call(peer.addr, PATH_OBJECTS, Bytes::from(body), limit)
        .await?;
    let cas = mesh.deployer().cas().clone();
    let sizes = swarm::sizes(wanted);
    let stored =
        tokio::task::spawn_blocking(move || objects::decode(&cas, &batch, &sizes)).await??;
    mesh.incoming().arrived(&stored);
    Ok(stored)
}

/// The manifest of the revision of `domain` this node serves now (or, for
/// a new preview host, of any installed revision of it), to diff against.
fn closest_base(mesh: &Mesh, domain: &str) -> Option<Manifest> {
    let revisions = mesh.store().revisions(domain).ok()?;
    let installed = revisions
        .iter()
        .filter(|r| mesh.deployer().has_revision(&r.root))
        .max_by_key(|r| (r.active, r.created_ms))?;
    mesh.deployer().manifest(&installed.manifest).ok()
}

/// Makes the precompressed variants of `hashes` that did not arrive with
/// them (the sender had none yet, or they did not fit its budget), on a few
/// threads: brotli at deploy quality is the slow part of that.
fn make_variants(cas: &crate::cas::Cas, hashes: &[blake3::Hash]) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let chunk = hashes.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in hashes.chunks(chunk) {
            scope.spawn(move || {
                for hash in part {
                    if let Err(e) = cas.ensure_variants(hash, true) {
                        warn!(error = %e, "cannot make compressed variants");
                    }
                }
            });
        }
    });
}
