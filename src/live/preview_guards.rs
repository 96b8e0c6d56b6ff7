//! The published preview passwords: per domain, what a visitor of its
//! previews and permalinks must present. Deploy publishes them from the
//! store (and the mesh through deploy, when a password replicates); HTTP
//! checks requests against the current snapshot and never reads the store.
//!
//! A password is kept only as its argon2id hash (slow on purpose, so a
//! stolen database does not give passwords away). Checking that hash on
//! every request would make a protected preview a way to burn the node's
//! CPU, so three things keep it rare: a correct password earns a cookie
//! signed with the guard's key (checked with one keyed blake3), the last
//! password found correct is remembered for a few minutes as a keyed
//! digest (curl sends basic auth on every request), and hash checks run
//! under a per-domain and a node-wide concurrency cap (half the cores).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::{Output, PasswordHash};
use tokio::sync::Semaphore;

/// The label between a preview's slug and its domain.
pub const PREVIEW_LABEL: &str = "preview";
/// The cookie a correct password earns.
pub const PREVIEW_COOKIE: &str = "makiatto-preview";
/// How long the cookie lets a visitor in without the password again.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a password found correct is accepted without the slow hash.
const REMEMBERED_FOR: Duration = Duration::from_secs(300);
/// Hash checks of one domain's password running at once.
const PER_DOMAIN_CHECKS: usize = 2;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted (in bytes): a hash input, not a document.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password cannot be set or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(
        "the password is too short: use at least {MIN_PASSWORD_CHARS} characters (a passphrase of a few words is best)"
    )]
    TooShort,
    #[error("the password is too long: use at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the stored preview password of {domain} is not a valid hash or key; set it again")]
    Stored { domain: String },
}

/// The argon2id hash (PHC string, with its random salt and parameters) of
/// `password`, after checking its length.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
    // argon2's defaults are OWASP's argon2id recommendation (19 MiB, two
    // passes, one lane): about 20-50 ms per check on one core.
    argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A fresh cookie key, hex.
pub fn new_cookie_key() -> String {
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    blake3::Hash::from_bytes(key).to_hex().to_string()
}

/// The domain whose preview `host` is (`<slug>.preview.<domain>`).
pub fn preview_domain(host: &str) -> Option<&str> {
    let (slug, rest) = host.split_once('.')?;
    let domain = rest.strip_prefix(PREVIEW_LABEL)?.strip_prefix('.')?;
    (!slug.is_empty() && !domain.is_empty()).then_some(domain)
}

/// One domain's password, ready to check requests against.
pub struct PreviewGuard {
    /// The apex domain guarded.
    pub domain: String,
    /// The argon2id PHC string.
    hash: String,
    /// The cookie MAC key.
    cookie_key: [u8; 32],
    /// When the password was set (Unix milliseconds).
    pub set_ms: u64,
    /// Bounds this domain's hash checks, so one flooded preview cannot
    /// take every check slot of the node.
    checks: Arc<Semaphore>,
    /// The keyed digest of the password last found correct, and until
    /// when it is accepted without the hash.
    remembered: ArcSwapOption<(blake3::Hash, Instant)>,
    /// Keys `remembered`: random per guard, never stored.
    memory_key: [u8; 32],
}

/// Never prints the hash or keys.
impl std::fmt::Debug for PreviewGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewGuard")
            .field("domain", &self.domain)
            .field("set_ms", &self.set_ms)
            .finish_non_exhaustive()
    }
}

/// What checking a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Correct,
    Wrong,
    /// Too many checks were waiting: the visitor should retry shortly.
    Busy,
}

impl PreviewGuard {
    /// A guard from a stored row's fields (`cookie_key` hex).
    pub fn new(
        domain: &str,
        hash: &str,
        cookie_key: &str,
        set_ms: u64,
    ) -> Result<PreviewGuard, PasswordError> {
        let stored = || PasswordError::Stored {
            domain: domain.to_string(),
        };
        PasswordHash::new(hash).map_err(|_| stored())?;
        let cookie_key = *blake3::Hash::from_hex(cookie_key)
            .map_err(|_| stored())?
            .as_bytes();
        let mut memory_key = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut memory_key);
        Ok(PreviewGuard {
            domain: domain.to_string(),
            hash: hash.to_string(),
            cookie_key,
            set_ms,
            checks: Arc::new(Semaphore::new(PER_DOMAIN_CHECKS)),
            remembered: ArcSwapOption::empty(),
            memory_key,
        })
    }

    /// The cookie value that lets a visitor of `host` in until `expires`
    /// (Unix seconds).
    pub fn cookie_value(&self, host: &str, expires: u64) -> String {
        format!("{expires}.{}", self.cookie_mac(host, expires).to_hex())
    }

    fn cookie_mac(&self, host: &str, expires: u64) -> blake3::Hash {
        let mut mac = blake3::Hasher::new_keyed(&self.cookie_key);
        mac.update(b"makiatto preview cookie\0");
        mac.update(host.as_bytes());
        mac.update(b"\0");
        mac.update(expires.to_string().as_bytes());
        mac.finalize()
    }

    /// Whether `value` is a cookie this guard signed for `host` that has
    /// not expired.
    pub fn cookie_valid(&self, host: &str, value: &str) -> bool {
        let Some((expires, mac)) = value.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(mac)) = (expires.parse::<u64>(), blake3::Hash::from_hex(mac)) else {
            return false;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // blake3::Hash compares in constant time.
        expires > now && self.cookie_mac(host, expires) == mac
    }

    /// Checks `password`: at once when it is the one found correct
    /// lately, else by the hash on a blocking thread, waiting at most
    /// `wait` for this domain's and the node's check slots (`node`).
    pub async fn check(
        self: &Arc<Self>,
        password: &str,
        node: &CheckSlots,
        wait: Duration,
    ) -> Checked {
        if password.len() > MAX_PASSWORD_BYTES {
            return Checked::Wrong;
        }
        let digest = blake3::keyed_hash(&self.memory_key, password.as_bytes());
        if let Some(known) = self.remembered.load().as_deref()
            && known.0 == digest
            && known.1 > Instant::now()
        {
            return Checked::Correct;
        }
        let permits = tokio::time::timeout(wait, async {
            let mine = self.checks.clone().acquire_owned().await.ok()?;
            let node = node.permits.clone().acquire_owned().await.ok()?;
            Some((mine, node))
        })
        .await;
        let Ok(Some(permits)) = permits else {
            return Checked::Busy;
        };
        let guard = self.clone();
        let password = password.to_string();
        let memory = node.memory.clone();
        let correct = tokio::task::spawn_blocking(move || {
            // Held until the hash is done, even if the request is dropped.
            let _permits = permits;
            let mut blocks = memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_default();
            let correct = verify(&guard.hash, password.as_bytes(), &mut blocks);
            // The pool never holds more buffers than the node has slots.
            memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(blocks);
            correct
        })
        .await;
        match correct {
            Ok(true) => {
                self.remembered
                    .store(Some(Arc::new((digest, Instant::now() + REMEMBERED_FOR))));
                Checked::Correct
            }
            _ => Checked::Wrong,
        }
    }
}

/// Whether `password` hashes to the PHC string `hash`, computing in
/// `blocks` (grown to the hash's memory cost and kept for the next check:
/// allocating 19 MiB per check on whichever blocking thread runs it left
/// every thread's malloc arena holding that much).
fn verify(hash: &str, password: &[u8], blocks: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    blocks.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    let context = argon2::Argon2::new(algorithm, version, params);
    if context
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..])
        .is_err()
    {
        return false;
    }
    // `Output` compares in constant time.
    Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// The node-wide bound on hash checks, and the memory they run in.
#[derive(Debug)]
pub struct CheckSlots {
    /// Each check holds 19 MiB and a core for tens of milliseconds; half
    /// the cores stay free to serve while a flood of wrong passwords is
    /// checked.
    permits: Arc<Semaphore>,
    /// Argon2 memory, one buffer per check that ran at once, reused.
    memory: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
}

impl CheckSlots {
    /// `n` checks at once.
    pub fn new(n: usize) -> CheckSlots {
        CheckSlots {
            permits: Arc::new(Semaphore::new(n)),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

/// Every guarded domain, swapped whole when a password is set or cleared.
#[derive(Debug)]
pub struct PreviewGuards {
    current: ArcSwap<HashMap<String, Arc<PreviewGuard>>>,
    /// Bounds hash checks across every domain.
    checks: CheckSlots,
}

impl Default for PreviewGuards {
    fn default() -> Self {
        PreviewGuards::new()
    }
}

impl PreviewGuards {
    /// No domain guarded.
    pub fn new() -> PreviewGuards {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        PreviewGuards {
            current: ArcSwap::from_pointee(HashMap::new()),
            checks: CheckSlots::new((cores / 2).max(1)),
        }
    }

    /// The guard of `domain`, if its previews have a password.
    pub fn get(&self, domain: &str) -> Option<Arc<PreviewGuard>> {
        let current = self.current.load();
        if current.is_empty() {
            return None;
        }
        current.get(domain).cloned()
    }

    /// The node-wide check slots [`PreviewGuard::check`] takes one of.
    pub fn check_slots(&self) -> &CheckSlots {
        &self.checks
    }

    /// Replaces the guards with `guards`, keeping the state (remembered
    /// password, check slots) of those whose password did not change.
    pub fn publish(&self, guards: Vec<PreviewGuard>) {
        let old = self.current.load();
        let map = guards
            .into_iter()
            .map(|g| {
                let kept = old
                    .get(&g.domain)
                    .filter(|o| o.hash == g.hash && o.cookie_key == g.cookie_key)
                    .cloned();
                (g.domain.clone(), kept.unwrap_or_else(|| Arc::new(g)))
            })
            .collect();
        self.current.store(Arc::new(map));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(password: &str) -> Arc<PreviewGuard> {
        let hash = hash_password(password).unwrap();
        Arc::new(PreviewGuard::new("a.test", &hash, &new_cookie_key(), 1).unwrap())
    }

    #[test]
    fn short_passwords_are_refused_and_hashes_are_salted() {
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort)
        ));
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b);
        assert!(!a.contains("correct"));
    }

    #[tokio::test]
    async fn the_right_password_passes_and_a_wrong_one_does_not() {
        let g = guard("correct horse");
        let node = CheckSlots::new(2);
        let wait = Duration::from_secs(5);
        assert_eq!(g.check("wrong horse", &node, wait).await, Checked::Wrong);
        assert_eq!(
            g.check("correct horse", &node, wait).await,
            Checked::Correct
        );
        // Remembered now: no slot needed.
        let none = CheckSlots::new(0);
        assert_eq!(
            g.check("correct horse", &none, wait).await,
            Checked::Correct
        );
        assert_eq!(
            g.check("wrong horse", &none, Duration::from_millis(10))
                .await,
            Checked::Busy
        );
    }

    #[test]
    fn checks_reuse_their_memory_and_agree_with_the_hash() {
        let hash = hash_password("correct horse").unwrap();
        let mut blocks = Vec::new();
        assert!(verify(&hash, b"correct horse", &mut blocks));
        let allocated = blocks.as_ptr();
        assert!(!verify(&hash, b"correct horsf", &mut blocks));
        assert_eq!(blocks.as_ptr(), allocated);
        assert_eq!(blocks.len(), 19 * 1024);
        assert!(!verify(
            "$argon2id$v=19$m=8,t=1,p=1$junk",
            b"x",
            &mut blocks
        ));
    }

    #[test]
    fn cookies_are_bound_to_host_key_and_time() {
        let g = guard("correct horse");
        let later = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 60;
        let value = g.cookie_value("dev.preview.a.test", later);
        assert!(g.cookie_valid("dev.preview.a.test", &value));
        assert!(!g.cookie_valid("other.preview.a.test", &value));
        assert!(!g.cookie_valid("dev.preview.a.test", &value.replace('.', "0.")));
        let expired = g.cookie_value("dev.preview.a.test", 1000);
        assert!(!g.cookie_valid("dev.preview.a.test", &expired));
        // Another password (another key) does not accept the old cookie.
        assert!(!guard("correct horse").cookie_valid("dev.preview.a.test", &value));
        for junk in ["", ".", "x.y", "99999999999.zz"] {
            assert!(!g.cookie_valid("dev.preview.a.test", junk));
        }
    }

    #[test]
    fn preview_hosts_name_their_domain() {
        assert_eq!(preview_domain("dev.preview.a.test"), Some("a.test"));
        assert_eq!(preview_domain("a.test"), None);
        assert_eq!(preview_domain("preview.a.test"), None);
        assert_eq!(preview_domain("dev.rev.a.test"), None);
    }
}
