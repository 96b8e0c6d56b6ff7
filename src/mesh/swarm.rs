//! The swarm: how a revision's objects spread so the origin's uplink is
//! not the bound as the cluster grows.
//!
//! Every node that fetches a revision splits the objects it lacks the same
//! way: the fetching nodes (every healthy node but the origin), in name
//! order, each own the objects whose blake3 falls in their share
//! ([`plan`]). A node fetches its own share from the origin and every
//! other share from that share's owner, which is fetching it from the
//! origin at the same moment. So the origin sends each object about once
//! however many nodes there are, and each node forwards its share to the
//! others.
//!
//! An owner asked for objects it is still fetching holds the request until
//! they are stored ([`Incoming::wait`]) instead of answering "not yet", so
//! a share arrives one hop after the origin sent it, without polling.
//! Whatever an owner cannot give (it is down, it is busy with another
//! revision, it gave up) is asked of the origin: the swarm only chooses
//! where bytes come from, never whether a revision completes. Every object
//! still goes through the same checked batches (`objects.rs`), whoever
//! sends it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::messages::MAX_BATCH_OBJECTS;
use super::objects::TARGET_BATCH_BYTES;
use crate::cas::Cas;

/// Below this many bytes to fetch, a node asks the origin for everything:
/// the extra hop costs more time than the origin's few duplicate bytes.
pub const MIN_SWARM_BYTES: u64 = 1024 * 1024;
/// Longest an owner holds a request for objects it is still fetching; the
/// asker then takes what it got and asks the origin for the rest. Well
/// within the RPC call timeout.
const MAX_HOLD: Duration = Duration::from_secs(15);
/// Longest an owner with a revision still to fetch, but no object list
/// yet, holds a request: the pointer row reaches every node at about the
/// same time, and its fetch registers the objects within moments.
const MAX_HOLD_BEFORE_START: Duration = Duration::from_secs(2);

/// One share of a fetch: who to ask first (`None`: the origin, this node
/// owns the share) and its batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub owner: Option<String>,
    pub batches: Vec<Vec<(blake3::Hash, u64)>>,
}

/// Splits `missing` (hash, size) among `fetchers` (the names of the nodes
/// fetching this revision; `me` among them) and batches each share. With
/// one fetcher, or less than [`MIN_SWARM_BYTES`] in all, everything is
/// this node's own share.
pub fn plan(missing: &[(blake3::Hash, u64)], fetchers: &[String], me: &str) -> Vec<Share> {
    let mut names: Vec<&String> = fetchers.iter().collect();
    names.sort();
    names.dedup();
    let total: u64 = missing.iter().map(|(_, s)| *s).sum();
    if names.len() < 2 || total < MIN_SWARM_BYTES || !names.iter().any(|n| *n == me) {
        return vec![Share {
            owner: None,
            batches: batches(missing),
        }];
    }
    let mut shares: Vec<Vec<(blake3::Hash, u64)>> = vec![Vec::new(); names.len()];
    for object in missing {
        shares[owner_index(&object.0, names.len())].push(*object);
    }
    names
        .iter()
        .zip(shares)
        .filter(|(_, objects)| !objects.is_empty())
        .map(|(name, objects)| Share {
            owner: (*name != me).then(|| (*name).clone()),
            batches: batches(&objects),
        })
        .collect()
}

/// Which of `count` fetchers owns `hash`: blake3 output is uniform, so its
/// first bytes split the objects evenly.
fn owner_index(hash: &blake3::Hash, count: usize) -> usize {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    (u64::from_le_bytes(first) % count as u64) as usize
}

/// `objects` in hash order, cut into batches of about
/// [`TARGET_BATCH_BYTES`] and at most [`MAX_BATCH_OBJECTS`] objects. Every
/// node cuts a share the same way, so an owner stores whole the batches
/// others ask it for.
pub fn batches(objects: &[(blake3::Hash, u64)]) -> Vec<Vec<(blake3::Hash, u64)>> {
    let mut sorted = objects.to_vec();
    sorted.sort_by_key(|(h, _)| *h.as_bytes());
    let mut out = Vec::new();
    let mut batch: Vec<(blake3::Hash, u64)> = Vec::new();
    let mut bytes = 0u64;
    for (hash, size) in sorted {
        if !batch.is_empty()
            && (bytes.saturating_add(size) > TARGET_BATCH_BYTES || batch.len() >= MAX_BATCH_OBJECTS)
        {
            out.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
        batch.push((hash, size));
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

/// The objects this node is fetching right now, so a peer asking for them
/// can be held until they are stored.
#[derive(Debug)]
pub struct Incoming {
    expected: Mutex<HashSet<blake3::Hash>>,
    /// Bumped whenever `expected` changes.
    changed: watch::Sender<u64>,
}

impl Default for Incoming {
    fn default() -> Incoming {
        Incoming {
            expected: Mutex::new(HashSet::new()),
            changed: watch::Sender::new(0),
        }
    }
}

impl Incoming {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<blake3::Hash>> {
        self.expected.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Registers `hashes` as being fetched until the guard drops (the
    /// fetch ended, whichever way).
    pub fn expect(&self, hashes: impl IntoIterator<Item = blake3::Hash>) -> Expected<'_> {
        let hashes: Vec<blake3::Hash> = hashes.into_iter().collect();
        self.set().extend(hashes.iter().copied());
        self.bump();
        Expected {
            incoming: self,
            hashes,
        }
    }

    /// Marks `hashes` stored.
    pub fn arrived(&self, hashes: &[blake3::Hash]) {
        if hashes.is_empty() {
            return;
        }
        {
            let mut set = self.set();
            for hash in hashes {
                set.remove(hash);
            }
        }
        self.bump();
    }

    /// How many of `hashes` are still being fetched.
    fn awaited(&self, hashes: &[blake3::Hash]) -> usize {
        let set = self.set();
        hashes.iter().filter(|h| set.contains(h)).count()
    }

    /// Waits until none of `hashes` is being fetched any more (each was
    /// stored, or its fetch ended), at most [`MAX_HOLD`]. When none is
    /// being fetched yet but `starting` says a fetch is about to begin
    /// (and `all_held` says some are not here), waits up to
    /// [`MAX_HOLD_BEFORE_START`] for it to register them. `cas` is this
    /// node's store.
    pub async fn wait(
        &self,
        hashes: &Arc<Vec<blake3::Hash>>,
        starting: impl Fn() -> bool,
        cas: &Cas,
    ) {
        let began = Instant::now();
        let mut changes = self.changed.subscribe();
        let mut checked_held = false;
        loop {
            changes.borrow_and_update();
            if self.awaited(hashes) == 0 {
                if began.elapsed() >= MAX_HOLD_BEFORE_START || !starting() {
                    return;
                }
                if !checked_held {
                    if all_held(cas, hashes).await {
                        return;
                    }
                    checked_held = true;
                }
            }
            let left = MAX_HOLD.saturating_sub(began.elapsed());
            if left.is_zero() {
                return;
            }
            // A short tick as well: `starting` changes without a bump.
            let tick = left.min(Duration::from_millis(100));
            let _ = tokio::time::timeout(tick, changes.changed()).await;
        }
    }
}

/// Whether `cas` holds every one of `hashes`.
async fn all_held(cas: &Cas, hashes: &Arc<Vec<blake3::Hash>>) -> bool {
    let cas = cas.clone();
    let hashes = hashes.clone();
    tokio::task::spawn_blocking(move || hashes.iter().all(|h| cas.contains(h)))
        .await
        .unwrap_or(true)
}

/// Objects registered by one fetch; unregistered when dropped.
pub struct Expected<'a> {
    incoming: &'a Incoming,
    hashes: Vec<blake3::Hash>,
}

impl Drop for Expected<'_> {
    fn drop(&mut self) {
        self.incoming.arrived(&self.hashes);
    }
}

/// The sizes of `objects` by hash.
pub fn sizes(objects: &[(blake3::Hash, u64)]) -> HashMap<blake3::Hash, u64> {
    objects.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(n: u32, size: u64) -> Vec<(blake3::Hash, u64)> {
        (0..n)
            .map(|i| (blake3::hash(&i.to_le_bytes()), size))
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_fetcher_splits_alike_and_each_object_has_one_owner() {
        let missing = objects(3000, 4096);
        let fetchers = names(&["n3", "n1", "n2"]);
        let plans: Vec<Vec<Share>> = ["n1", "n2", "n3"]
            .iter()
            .map(|me| plan(&missing, &fetchers, me))
            .collect();
        for plan in &plans {
            assert_eq!(plan.len(), 3);
            let all: HashSet<blake3::Hash> = plan
                .iter()
                .flat_map(|s| s.batches.iter().flatten().map(|(h, _)| *h))
                .collect();
            assert_eq!(all.len(), missing.len());
            // Roughly even: no share under a fifth of the objects.
            for share in plan {
                let n: usize = share.batches.iter().map(Vec::len).sum();
                assert!(n > 600, "{n} objects in a share");
            }
        }
        // The same share, cut into the same batches, on every node; each
        // node owns exactly one.
        for i in 0..3 {
            let own: Vec<&Share> = plans[i].iter().filter(|s| s.owner.is_none()).collect();
            assert_eq!(own.len(), 1);
            for (j, other) in plans.iter().enumerate() {
                if i != j {
                    let theirs = other
                        .iter()
                        .find(|s| s.owner.as_deref() == Some(["n1", "n2", "n3"][i]))
                        .unwrap_or_else(|| panic!("node {j} has no share of node {i}"));
                    assert_eq!(theirs.batches, own[0].batches);
                }
            }
        }
    }

    #[test]
    fn small_fetches_and_lone_fetchers_ask_the_origin_for_everything() {
        let small = objects(10, 1000);
        let plan_small = plan(&small, &names(&["a", "b", "c"]), "a");
        assert_eq!(plan_small.len(), 1);
        assert_eq!(plan_small[0].owner, None);
        let big = objects(1000, 10_000);
        let alone = plan(&big, &names(&["a"]), "a");
        assert_eq!(alone.len(), 1);
        assert_eq!(alone[0].owner, None);
        assert_eq!(alone[0].batches.iter().map(Vec::len).sum::<usize>(), 1000);
    }

    #[test]
    fn batches_stay_near_the_target_size() {
        let list = objects(100, 1024 * 1024);
        let cut = batches(&list);
        assert_eq!(cut.iter().map(Vec::len).sum::<usize>(), 100);
        for batch in &cut {
            let bytes: u64 = batch.iter().map(|(_, s)| s).sum();
            assert!(bytes <= TARGET_BATCH_BYTES);
        }
    }

    #[tokio::test]
    async fn a_held_request_returns_once_its_objects_arrive() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let cas = Cas::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let incoming = Arc::new(Incoming::default());
        let wanted = Arc::new(
            objects(3, 1)
                .into_iter()
                .map(|(h, _)| h)
                .collect::<Vec<_>>(),
        );
        let guard = incoming.expect(wanted.iter().copied());
        let waiter = {
            let incoming = incoming.clone();
            let wanted = wanted.clone();
            let cas = cas.clone();
            tokio::spawn(async move { incoming.wait(&wanted, || false, &cas).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        incoming.arrived(&wanted[..2]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        incoming.arrived(&wanted[2..]);
        waiter.await.unwrap_or_else(|e| panic!("{e}"));
        drop(guard);
        // Nothing expected and no fetch starting: no wait at all, though
        // none of the objects is here.
        incoming.wait(&wanted, || false, &cas).await;
    }
}
