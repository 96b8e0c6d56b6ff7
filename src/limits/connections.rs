//! Connections held per client: a listener asks for a slot before serving a
//! connection and the slot is given back when the guard drops, so one
//! client cannot take every connection a listener allows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open connections by client key, each client at most `per_client`.
pub struct Connections {
    per_client: usize,
    open: Mutex<HashMap<u128, usize>>,
}

/// One held connection; dropping it frees the slot.
pub struct ConnectionGuard {
    /// `None` for a client no share applies to.
    owner: Option<Arc<Connections>>,
    key: u128,
}

impl ConnectionGuard {
    /// A guard for a client outside every share (a whitelisted one).
    pub fn unlimited() -> ConnectionGuard {
        ConnectionGuard {
            owner: None,
            key: 0,
        }
    }
}

impl Connections {
    pub fn new(per_client: usize) -> Arc<Connections> {
        Arc::new(Connections {
            per_client,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `key`, or `None` when it already holds `per_client`.
    pub fn open(self: &Arc<Self>, key: u128) -> Option<ConnectionGuard> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let held = open.entry(key).or_insert(0);
        if *held >= self.per_client {
            return None;
        }
        *held += 1;
        Some(ConnectionGuard {
            owner: Some(self.clone()),
            key,
        })
    }

    /// Connections `key` holds now.
    pub fn held(&self, key: u128) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&key).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let Some(owner) = &self.owner else {
            return;
        };
        let mut open = owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(held) = open.get_mut(&self.key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                // Forget idle clients so the map holds only open ones.
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_gets_slots_back() {
        let conns = Connections::new(2);
        let a = conns.open(1);
        let b = conns.open(1);
        assert!(a.is_some() && b.is_some());
        assert!(conns.open(1).is_none());
        assert!(conns.open(2).is_some(), "another client is not affected");
        drop(a);
        assert_eq!(conns.held(1), 1);
        assert!(conns.open(1).is_some());
    }
}
