//! Per-label counter sets for labels known ahead of requests (the domains
//! of the site snapshot, the nodes of the node table): a read-mostly map
//! behind `arc-swap`, so the request path finds its set with one atomic
//! load and a hash lookup, and only a label's first use takes a lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// Labels kept before new ones share the overflow set: a bound on the
/// exposition's size whatever the configuration.
pub const MAX_LABELS: usize = 4096;
/// The label of the overflow set.
pub const OVERFLOW: &str = "_other";

/// Counter sets by label.
pub struct Registry<T> {
    sets: ArcSwap<HashMap<Box<str>, Arc<T>>>,
    /// Serialises insertions (readers never take it).
    insert: Mutex<()>,
    overflow: Arc<T>,
}

impl<T: Default> Default for Registry<T> {
    fn default() -> Registry<T> {
        Registry {
            sets: ArcSwap::from_pointee(HashMap::new()),
            insert: Mutex::new(()),
            overflow: Arc::new(T::default()),
        }
    }
}

impl<T: Default> Registry<T> {
    /// The set of `label`, made on its first use (or the overflow set once
    /// `MAX_LABELS` are held).
    pub fn get(&self, label: &str) -> Arc<T> {
        if let Some(set) = self.sets.load().get(label) {
            return set.clone();
        }
        let _held = self.insert.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.sets.load_full();
        if let Some(set) = current.get(label) {
            return set.clone();
        }
        if current.len() >= MAX_LABELS {
            return self.overflow.clone();
        }
        let set = Arc::new(T::default());
        let mut next = (*current).clone();
        next.insert(label.into(), set.clone());
        self.sets.store(Arc::new(next));
        set
    }

    /// The set of labels not known (or past the bound).
    pub fn overflow(&self) -> &T {
        &self.overflow
    }

    /// Every set with its label, sorted by label, the overflow set last
    /// (named `_other`).
    pub fn all(&self) -> Vec<(String, Arc<T>)> {
        let mut all: Vec<(String, Arc<T>)> = self
            .sets
            .load()
            .iter()
            .map(|(label, set)| (label.to_string(), set.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.push((OVERFLOW.to_string(), self.overflow.clone()));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn a_label_keeps_its_set() {
        let r: Registry<AtomicU64> = Registry::default();
        r.get("a.example").fetch_add(1, Ordering::Relaxed);
        r.get("a.example").fetch_add(1, Ordering::Relaxed);
        r.get("b.example").fetch_add(5, Ordering::Relaxed);
        let all = r.all();
        let names: Vec<&str> = all.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(names, ["a.example", "b.example", "_other"]);
        assert_eq!(all[0].1.load(Ordering::Relaxed), 2);
        assert_eq!(all[1].1.load(Ordering::Relaxed), 5);
    }
}
