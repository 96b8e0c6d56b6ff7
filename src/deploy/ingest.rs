//! Storing a revision's files in the CAS on a few threads at once.
//!
//! A first deploy is bound by making precompressed variants (three per
//! text file) and, written one file at a time, by two fsyncs per file.
//! Here up to `available_parallelism` threads each take the next file off
//! a shared list and write through a [`Batch`] of their own, so the
//! compression spreads over every core and the disk sees one sync per
//! group of files instead of one per file.
//!
//! Every variant is made before the revision can activate, not after: a
//! site's snapshot records which variants each file has when it is
//! published, so one made later would not be served until the next
//! publish, and a peer fetching the revision meanwhile would make the
//! missing variants itself. The levels (`cas::encoding`) are chosen so
//! this stays quick.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::DeployError;
use crate::cas::{Batch, Cas};

/// Most threads one import uses: beyond this the disk, not the cores, is
/// the bound, and each thread holds a file and its variants in memory.
const MAX_THREADS: usize = 8;

/// Runs `store` on every item of `items` on up to `available_parallelism`
/// threads and returns the results in the items' order. Each thread starts
/// with its own state from `state` (made here, on the calling thread) and
/// its own batch, committed when it runs out of items, so everything
/// staged is durable and linked once this returns `Ok`. The first error
/// stops the other threads at their next item and is returned.
pub(crate) fn store_all<T, S, R>(
    cas: &Cas,
    items: &[T],
    mut state: impl FnMut() -> S,
    store: impl Fn(&mut S, &mut Batch<'_>, &T) -> Result<R, DeployError> + Sync,
) -> Result<Vec<R>, DeployError>
where
    T: Sync,
    S: Send,
    R: Send,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let (next, failed, store) = (&next, &failed, &store);
    let parts: Vec<Result<Vec<(usize, R)>, DeployError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let mut own = state();
                scope.spawn(move || {
                    let mut batch = cas.batch();
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            break;
                        };
                        match store(&mut own, &mut batch, item) {
                            Ok(result) => done.push((i, result)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    batch.commit()?;
                    Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(Err(DeployError::StoringPanicked)))
            .collect()
    });
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    for part in parts {
        for (i, result) in part? {
            results[i] = Some(result);
        }
    }
    // Without an error every index was taken by some thread and stored.
    results
        .into_iter()
        .map(|r| r.ok_or(DeployError::StoringPanicked))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_and_the_batches_are_committed() {
        let dir = tempfile::tempdir().unwrap();
        let cas = Cas::open(&dir.path().join("objects")).unwrap();
        let pages: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("<p>page {i}</p>\n").repeat(100).into_bytes())
            .collect();
        let hashes = store_all(
            &cas,
            &pages,
            || (),
            |_, batch, page| {
                let hash = blake3::hash(page);
                batch.add_object_with_variants(&hash, page, true)?;
                Ok(hash)
            },
        )
        .unwrap();
        for (page, hash) in pages.iter().zip(&hashes) {
            assert_eq!(*hash, blake3::hash(page));
            assert_eq!(&cas.read(hash).unwrap(), page);
            assert!(cas.variants(hash).brotli.is_some());
        }
    }

    #[test]
    fn the_first_error_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let cas = Cas::open(&dir.path().join("objects")).unwrap();
        let items: Vec<u32> = (0..100).collect();
        let result = store_all(
            &cas,
            &items,
            || (),
            |_, _, i| {
                if *i == 37 {
                    Err(DeployError::Source("item 37 is unreadable".into()))
                } else {
                    Ok(*i)
                }
            },
        );
        let err = result.unwrap_err();
        assert!(err.to_string().contains("item 37"), "{err}");
    }
}
