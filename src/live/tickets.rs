//! The TLS session ticket keys this node seals and opens tickets with.
//!
//! A visitor who comes back presents the ticket it was given and resumes:
//! one round trip and no certificate signature, instead of a full
//! handshake. The keys are a snapshot like the certificates: a ring
//! swapped whole, where the newest key seals new tickets and every key in
//! the ring opens them. The ring comes from the store (`acme/tickets.rs`
//! rotates it), so in a cluster every node holds the same keys and a ticket
//! from one node opens on any other. Until the first ring is published the
//! node issues stateful tickets from rustls's in-memory session cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

/// Bytes of a key's id, sent in clear at the start of every ticket so the
/// key that opens it is found without trying each.
pub const TICKET_KEY_ID_LEN: usize = 16;
/// Bytes of a key's secret (AES-256-GCM).
pub const TICKET_KEY_SECRET_LEN: usize = 32;

/// How long a client may keep a ticket, as told to it: a key is kept for
/// this long after it stops sealing (see `acme/tickets.rs`), so a ticket
/// opens for at least this long.
pub const TICKET_LIFETIME_SECS: u32 = 12 * 60 * 60;

/// One key of the ring, as stored: its id, secret and creation time.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketKeyBytes {
    pub id: [u8; TICKET_KEY_ID_LEN],
    pub secret: [u8; TICKET_KEY_SECRET_LEN],
    /// When the key was made (ms since the epoch): the newest seals.
    pub created_ms: u64,
}

impl std::fmt::Debug for TicketKeyBytes {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeyBytes")
            .field("id", &hex(&self.id))
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

impl TicketKeyBytes {
    /// The key as the store keeps it: id and secret in hex.
    pub fn from_hex(id: &str, secret: &str, created_ms: u64) -> Option<TicketKeyBytes> {
        Some(TicketKeyBytes {
            id: unhex(id)?,
            secret: unhex(secret)?,
            created_ms,
        })
    }

    /// The id in hex, as stored.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    /// The secret in hex, as stored.
    pub fn secret_hex(&self) -> String {
        hex(&self.secret)
    }

    /// A fresh random key made at `created_ms`; `None` if the system's
    /// random source fails.
    pub fn generate(created_ms: u64) -> Option<TicketKeyBytes> {
        let rng = SystemRandom::new();
        let mut id = [0u8; TICKET_KEY_ID_LEN];
        let mut secret = [0u8; TICKET_KEY_SECRET_LEN];
        rng.fill(&mut id).ok()?;
        rng.fill(&mut secret).ok()?;
        Some(TicketKeyBytes {
            id,
            secret,
            created_ms,
        })
    }
}

/// A key ready to seal and open.
struct RingKey {
    id: [u8; TICKET_KEY_ID_LEN],
    key: LessSafeKey,
}

/// The published ring, newest key first.
#[derive(Default)]
struct Ring {
    keys: Vec<RingKey>,
}

/// The ticket keys of the node's TLS listeners (HTTPS and DNS over TLS).
pub struct TicketKeys {
    ring: ArcSwap<Ring>,
    /// The longest ticket sealed so far: longer ciphertexts are refused
    /// before any decryption (they cannot be ours, and trying them would
    /// help a partitioning-oracle attacker).
    longest: AtomicUsize,
    rng: SystemRandom,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("keys", &self.ring.load().keys.len())
            .finish_non_exhaustive()
    }
}

impl Default for TicketKeys {
    fn default() -> TicketKeys {
        TicketKeys::new()
    }
}

impl TicketKeys {
    /// An empty ring: no stateless tickets until keys are published.
    pub fn new() -> TicketKeys {
        TicketKeys {
            ring: ArcSwap::from_pointee(Ring::default()),
            longest: AtomicUsize::new(0),
            rng: SystemRandom::new(),
        }
    }

    /// Replaces the ring with `keys`; the newest (by creation time, then
    /// id) seals from now on. Tickets sealed by a key no longer given stop
    /// opening.
    pub fn publish(&self, keys: &[TicketKeyBytes]) {
        let mut sorted: Vec<&TicketKeyBytes> = keys.iter().collect();
        sorted.sort_by_key(|k| std::cmp::Reverse((k.created_ms, k.id)));
        let keys = sorted
            .into_iter()
            .filter_map(|k| {
                // A 32-byte secret is always a valid AES-256 key.
                let key = UnboundKey::new(&AES_256_GCM, &k.secret).ok()?;
                Some(RingKey {
                    id: k.id,
                    key: LessSafeKey::new(key),
                })
            })
            .collect();
        self.ring.store(Arc::new(Ring { keys }));
    }

    /// The id of the key that seals now, if any.
    pub fn sealing_id(&self) -> Option<[u8; TICKET_KEY_ID_LEN]> {
        self.ring.load().keys.first().map(|k| k.id)
    }
}

impl ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        !self.ring.load().keys.is_empty()
    }

    fn lifetime(&self) -> u32 {
        TICKET_LIFETIME_SECS
    }

    // A ticket is: key id, nonce, the sealed session, the tag. The id is
    // the additional data, so a ticket cannot be moved to another key.
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let ring = self.ring.load();
        let key = ring.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut ticket =
            Vec::with_capacity(TICKET_KEY_ID_LEN + NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        ticket.extend_from_slice(&key.id);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let tag = key
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.id),
                &mut ticket[TICKET_KEY_ID_LEN + NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        self.longest.fetch_max(ticket.len(), Ordering::Relaxed);
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        // Another node of the cluster may have sealed longer tickets than
        // this one has yet; a session is a few hundred bytes, so 4 KiB
        // bounds every honest ticket.
        let longest = self.longest.load(Ordering::Relaxed).max(4096);
        if ticket.len() > longest || ticket.len() < TICKET_KEY_ID_LEN + NONCE_LEN {
            return None;
        }
        let (id, rest) = ticket.split_at(TICKET_KEY_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let ring = self.ring.load();
        let key = ring.keys.iter().find(|k| k.id[..] == *id)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut out = sealed.to_vec();
        let plain_len = key
            .key
            .open_in_place(nonce, Aad::from(&key.id), &mut out)
            .ok()?
            .len();
        out.truncate(plain_len);
        Some(out)
    }
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of lowercase or uppercase hex `text` of exactly `N` bytes.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N || !text.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(created_ms: u64) -> TicketKeyBytes {
        TicketKeyBytes::generate(created_ms).unwrap_or_else(|| panic!("no randomness"))
    }

    #[test]
    fn an_empty_ring_issues_no_stateless_tickets() {
        let keys = TicketKeys::new();
        assert!(!keys.enabled());
        assert!(keys.encrypt(b"session").is_none());
        assert!(keys.decrypt(&[0u8; 64]).is_none());
    }

    #[test]
    fn the_newest_key_seals_and_every_key_in_the_ring_opens() {
        let (old, new) = (key(1_000), key(2_000));
        let keys = TicketKeys::new();
        keys.publish(std::slice::from_ref(&old));
        let sealed_by_old = keys.encrypt(b"first session").unwrap_or_default();
        assert_eq!(&sealed_by_old[..TICKET_KEY_ID_LEN], &old.id);

        keys.publish(&[old.clone(), new.clone()]);
        assert_eq!(keys.sealing_id(), Some(new.id));
        let sealed_by_new = keys.encrypt(b"second session").unwrap_or_default();
        assert_eq!(&sealed_by_new[..TICKET_KEY_ID_LEN], &new.id);
        assert_eq!(
            keys.decrypt(&sealed_by_old).as_deref(),
            Some(&b"first session"[..])
        );
        assert_eq!(
            keys.decrypt(&sealed_by_new).as_deref(),
            Some(&b"second session"[..])
        );

        // Dropped from the ring: its tickets no longer open.
        keys.publish(&[new]);
        assert!(keys.decrypt(&sealed_by_old).is_none());
    }

    #[test]
    fn another_node_with_the_same_ring_opens_the_ticket() {
        let ring = [key(1_000), key(2_000)];
        let (a, b) = (TicketKeys::new(), TicketKeys::new());
        a.publish(&ring);
        b.publish(&[ring[1].clone(), ring[0].clone()]);
        let ticket = a.encrypt(b"session").unwrap_or_default();
        assert_eq!(b.decrypt(&ticket).as_deref(), Some(&b"session"[..]));

        let stranger = TicketKeys::new();
        stranger.publish(&[key(3_000)]);
        assert!(stranger.decrypt(&ticket).is_none());
    }

    #[test]
    fn tampered_or_malformed_tickets_do_not_open() {
        let keys = TicketKeys::new();
        keys.publish(&[key(1)]);
        let ticket = keys.encrypt(b"session").unwrap_or_default();
        for i in [
            0,
            TICKET_KEY_ID_LEN,
            TICKET_KEY_ID_LEN + NONCE_LEN,
            ticket.len() - 1,
        ] {
            let mut bad = ticket.clone();
            bad[i] ^= 1;
            assert!(keys.decrypt(&bad).is_none(), "byte {i} flipped");
        }
        assert!(keys.decrypt(&ticket[..20]).is_none());
        assert!(keys.decrypt(&[]).is_none());
        assert!(keys.decrypt(&vec![0u8; 10_000]).is_none());
    }

    #[test]
    fn hex_round_trips_and_refuses_wrong_lengths() {
        let k = key(5);
        assert_eq!(
            TicketKeyBytes::from_hex(&k.id_hex(), &k.secret_hex(), 5),
            Some(k.clone())
        );
        assert_eq!(
            TicketKeyBytes::from_hex(&k.secret_hex(), &k.id_hex(), 5),
            None
        );
        assert_eq!(
            unhex::<TICKET_KEY_SECRET_LEN>(&hex(&k.secret)),
            Some(k.secret)
        );
        assert_eq!(unhex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(unhex::<2>("0a"), None);
        assert_eq!(unhex::<2>("0g00"), None);
        assert_eq!(unhex::<1>("+f"), None);
        assert!(!format!("{k:?}").contains(&hex(&k.secret)));
    }
}
