//! One scrub's local part, on a thread of its own: read back every object
//! the materialised revisions name (their manifests first), check it and
//! its variants, repair what this node can repair alone (a variant made
//! again from its object, an object rebuilt from a sound variant), and set
//! aside what it cannot, so nothing damaged is served while peers are asked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use super::pace::Pacer;
use super::report::{Finding, ScrubRun};
use crate::cas::{Cas, Health, is_compressible};
use crate::deploy::{DeployError, Deployer};

/// An object to fetch again from a peer.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// `object` or `manifest`.
    pub kind: &'static str,
    pub problem: String,
    /// Its size, `None` for a manifest (the size is in no manifest).
    pub size: Option<u64>,
    /// Whether any path of it is compressible (its variants are made
    /// once it is back).
    pub compressible: bool,
    /// Whether it was damaged (else missing).
    pub damaged: bool,
}

/// What the local part of a scrub did.
#[derive(Debug, Default)]
pub struct Pass {
    pub run: ScrubRun,
    /// Objects set aside or missing, for peers to give back.
    pub wanted: HashMap<blake3::Hash, Wanted>,
    /// Objects whose file under their name was replaced or set aside: the
    /// revisions linking them and the served snapshot must follow.
    pub changed: HashSet<blake3::Hash>,
    /// Whether it stopped early for shutdown.
    pub cancelled: bool,
}

/// Checks every object of the revisions materialised by `deployer`,
/// reading at most `rate` bytes per second, until done or `cancel`.
pub fn check(deployer: &Deployer, rate: u64, cancel: &AtomicBool) -> Result<Pass, DeployError> {
    let cas = deployer.cas();
    let mut pacer = Pacer::new(rate);
    let mut pass = Pass::default();
    // Objects by hash, in hash order (so a scrub walks the fan-out
    // directories in order), with their size and compressibility.
    let mut objects: BTreeMap<[u8; 32], (blake3::Hash, u64, bool)> = BTreeMap::new();
    for manifest in deployer.installed_manifests()? {
        if cancel.load(Ordering::Relaxed) {
            pass.cancelled = true;
            break;
        }
        pass.run.objects_checked += 1;
        let health = cas.check(&manifest, &mut |n| pacer.pace(n))?;
        match health {
            Health::Sound { .. } => {
                let Ok(listed) = deployer.manifest(&manifest.to_hex()) else {
                    // Sound bytes that do not parse were stored that way:
                    // nothing a scrub can repair.
                    continue;
                };
                for (path, entry) in listed.iter() {
                    let slot = objects
                        .entry(*entry.hash.as_bytes())
                        .or_insert((entry.hash, entry.size, false));
                    slot.2 |= is_compressible(path);
                }
            }
            Health::Missing if !deployer.needs_object(&manifest)? => {}
            Health::Missing | Health::Damaged { .. } => {
                lost(cas, &mut pass, manifest, "manifest", health, None, false)?;
            }
        }
    }
    for (hash, size, compressible) in objects.into_values() {
        if pass.cancelled || cancel.load(Ordering::Relaxed) {
            pass.cancelled = true;
            break;
        }
        pass.run.objects_checked += 1;
        let health = cas.check(&hash, &mut |n| pacer.pace(n))?;
        match health {
            Health::Sound { .. } => check_variants(cas, &mut pass, &hash, size, &mut pacer)?,
            // Collected with a revision pruned since the listing.
            Health::Missing if !deployer.needs_object(&hash)? => {}
            Health::Missing | Health::Damaged { .. } => {
                lost(
                    cas,
                    &mut pass,
                    hash,
                    "object",
                    health,
                    Some(size),
                    compressible,
                )?;
                if cas.contains(&hash) {
                    // Rebuilt from a variant: its other variants may be
                    // damaged too.
                    check_variants(cas, &mut pass, &hash, size, &mut pacer)?;
                }
            }
        }
    }
    pass.run.bytes_read = pacer.bytes();
    Ok(pass)
}

/// Checks the variants of sound object `hash`; a damaged one is set aside
/// and made again from the object.
fn check_variants(
    cas: &Cas,
    pass: &mut Pass,
    hash: &blake3::Hash,
    size: u64,
    pacer: &mut Pacer,
) -> Result<(), DeployError> {
    let held = cas.variants(hash);
    pass.run.variants_checked += crate::cas::Encoding::PRECOMPRESSED
        .iter()
        .filter(|e| held.get(**e).is_some())
        .count() as u64;
    let bad = cas.check_variants(hash, size, &mut |n| pacer.pace(n));
    if bad.is_empty() {
        return Ok(());
    }
    for (encoding, _) in &bad {
        cas.set_aside_variant(hash, *encoding)?;
    }
    pass.changed.insert(*hash);
    let remade = cas.ensure_variants(hash, true);
    for (encoding, problem) in bad {
        pass.run.damaged += 1;
        let (outcome, repaired) = match &remade {
            Ok(_) => ("set aside and made again from the object".to_string(), true),
            Err(e) => (format!("set aside; cannot make it again: {e}"), false),
        };
        pass.run.found(Finding {
            object: hash.to_hex().to_string(),
            kind: encoding.as_str().to_string(),
            problem,
            outcome,
            repaired,
        });
    }
    Ok(())
}

/// An object (or manifest) that is missing or damaged: rebuilt from a
/// sound variant when it has one, else set aside with its variants and
/// wanted from a peer.
fn lost(
    cas: &Cas,
    pass: &mut Pass,
    hash: blake3::Hash,
    kind: &'static str,
    health: Health,
    size: Option<u64>,
    compressible: bool,
) -> Result<(), DeployError> {
    let (problem, damaged) = match health {
        Health::Damaged { reason } => (reason, true),
        _ => ("not on disk".to_string(), false),
    };
    if damaged {
        pass.run.damaged += 1;
    } else {
        pass.run.missing += 1;
    }
    pass.changed.insert(hash);
    cas.set_aside_object(&hash)?;
    if let Some(size) = size
        && cas.restore_from_variant(&hash, size)?
    {
        pass.run.found(Finding {
            object: hash.to_hex().to_string(),
            kind: kind.to_string(),
            problem,
            outcome: "rebuilt from a sound precompressed variant".to_string(),
            repaired: true,
        });
        return Ok(());
    }
    // No variant may sit beside a missing object: a client accepting
    // that encoding would still be served it.
    cas.set_aside(&hash)?;
    pass.wanted.insert(
        hash,
        Wanted {
            kind,
            problem,
            size,
            compressible,
            damaged,
        },
    );
    Ok(())
}
