//! One ACME order (RFC 8555) answered by DNS-01 through our own DNS: the
//! `_acme-challenge` TXT values go into the replicated store, which every
//! node's DNS server publishes; once every healthy node's DNS answers them
//! the challenges are marked ready, then the order is finalised with a
//! fresh P-256 key. The challenge values are withdrawn whatever the outcome.
//!
//! The order's URL, its certificate key (before finalisation) and the step
//! it reached are written to the replicated order row as they happen, so a
//! node that takes the order over from one that died loads the same order
//! under the same account and finishes it; a new order is placed only when
//! the held one is gone, invalid, or for other names.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::{
    Account, AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, NewOrder, Order,
    OrderStatus, RetryPolicy,
};
use tracing::{debug, info, warn};

use super::{AcmeError, propagation};
use crate::store::{OrderProgress, Store};

/// How long the CA may take to validate, and then to issue.
const POLL_LIMIT: Duration = Duration::from_secs(120);
/// How long the nodes' DNS may take to publish a challenge value.
const PUBLISH_LIMIT: Duration = Duration::from_secs(30);

/// An issued certificate: chain (leaf first) and private key, both PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Who orders what, and where the challenge must be answered.
pub struct Job<'a> {
    /// The CA's directory URL (for messages).
    pub directory: &'a str,
    /// The domain whose order row records progress.
    pub domain: &'a str,
    /// Every name the certificate must cover.
    pub names: &'a [String],
    /// This node: the holder of the order row.
    pub node: &'a str,
    pub store: &'a Store,
    /// This node's DNS listener.
    pub dns: Option<SocketAddr>,
}

impl Job<'_> {
    /// Writes `progress` to the order row; fails when another node has
    /// taken the order over meanwhile.
    fn record(&self, progress: &OrderProgress) -> Result<(), AcmeError> {
        if self
            .store
            .record_order_progress(self.domain, self.node, progress, now_ms())?
        {
            Ok(())
        } else {
            Err(AcmeError::TakenOver {
                domain: self.domain.to_string(),
            })
        }
    }

    fn stage(&self, progress: &mut OrderProgress, stage: &str) -> Result<(), AcmeError> {
        progress.stage = Some(stage.to_string());
        self.record(progress)
    }
}

/// Orders (or finishes the held order for) `job.names` from `account`'s CA.
pub async fn order(account: &Account, job: &Job<'_>) -> Result<Issued, AcmeError> {
    let held = job.store.order_progress(job.domain)?;
    let resumed = match &held.url {
        Some(url) => resume(account, job, url, &held).await,
        None => None,
    };
    let (mut order, mut progress) = match resumed {
        Some(order) => {
            info!(domain = %job.domain, order = %order.url(), stage = ?held.stage, "resuming the ACME order in flight");
            (order, held)
        }
        None => {
            // Values an earlier attempt left behind (this node restarted, or
            // the node it took over from died mid-order) are withdrawn first.
            let withdrawn = withdraw_leftovers(job.store, job.names)?;
            if withdrawn > 0 {
                info!(withdrawn, "withdrew challenge values an earlier order left");
            }
            let identifiers: Vec<Identifier> = job
                .names
                .iter()
                .map(|n| Identifier::Dns(n.clone()))
                .collect();
            let order = account
                .new_order(&NewOrder::new(&identifiers))
                .await
                .map_err(|e| AcmeError::ca(job.directory, "placing the order", e))?;
            info!(names = ?job.names, order = %order.url(), "ACME order placed");
            let progress = OrderProgress {
                url: Some(order.url().to_string()),
                key_pem: None,
                stage: Some("placed".into()),
            };
            job.record(&progress)?;
            (order, progress)
        }
    };
    let mut published = Vec::new();
    let result = complete(&mut order, job, &mut progress, &mut published).await;
    // A node that lost the order to another (both resumed it while the
    // mesh was slow to carry a claim) leaves the values to the holder,
    // whose validation may still need them.
    let holder = job
        .store
        .cert_order(job.domain)
        .ok()
        .flatten()
        .map(|o| o.node);
    if result.is_err() && holder.as_deref().is_some_and(|h| h != job.node) {
        return result;
    }
    for (owner, value) in &published {
        if let Err(e) = job.store.remove_acme_challenge(owner, value) {
            warn!(name = %owner, error = %e, "cannot withdraw an ACME challenge value");
        }
    }
    result
}

/// The held order at `url`, when it can still be finished for exactly
/// `job.names`; `None` (logged) when a new order is needed.
async fn resume(
    account: &Account,
    job: &Job<'_>,
    url: &str,
    held: &OrderProgress,
) -> Option<Order> {
    let mut order = match account.order(url.to_string()).await {
        Ok(order) => order,
        Err(e) => {
            info!(order = %url, error = %e, "the order in flight cannot be loaded; placing a new one");
            return None;
        }
    };
    let status = order.state().status;
    if status == OrderStatus::Invalid {
        info!(order = %url, "the order in flight is invalid or expired; placing a new one");
        return None;
    }
    let mut names = BTreeSet::new();
    let mut identifiers = order.identifiers();
    while let Some(id) = identifiers.next().await {
        match id {
            Ok(id) => names.insert(id.to_string()),
            Err(e) => {
                info!(order = %url, error = %e, "the order in flight cannot be read; placing a new one");
                return None;
            }
        };
    }
    let wanted: BTreeSet<String> = job.names.iter().cloned().collect();
    if names != wanted {
        info!(order = %url, "the order in flight is for other names; placing a new one");
        return None;
    }
    if matches!(status, OrderStatus::Processing | OrderStatus::Valid) && held.key_pem.is_none() {
        info!(order = %url, "the order in flight was finalised with a key that was not recorded; placing a new one");
        return None;
    }
    Some(order)
}

/// Publishes the challenges, waits for every node's DNS, validates,
/// finalises and downloads, from whatever step `order` is at. Every value
/// published is pushed to `published`.
async fn complete(
    order: &mut Order,
    job: &Job<'_>,
    progress: &mut OrderProgress,
    published: &mut Vec<(String, String)>,
) -> Result<Issued, AcmeError> {
    let directory = job.directory;
    let ca = |doing: &'static str| move |e| AcmeError::ca(directory, doing, e);
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(POLL_LIMIT);

    if order.state().status == OrderStatus::Pending {
        job.stage(progress, "publishing")?;
        validate(order, job, progress, published).await?;
        job.stage(progress, "validating")?;
        let status = order
            .poll_ready(&retries)
            .await
            .map_err(ca("waiting for validation"))?;
        if status != OrderStatus::Ready {
            let detail = order
                .state()
                .error
                .as_ref()
                .map_or_else(|| format!("order is {status:?}"), |p| p.to_string());
            return Err(AcmeError::Rejected {
                directory: directory.into(),
                message: detail,
            });
        }
    }

    if order.state().status == OrderStatus::Ready {
        // The key is recorded before the CA sees its CSR, so whoever
        // finishes the order can use the certificate the CA issues.
        let key_pem = match &progress.key_pem {
            Some(pem) => pem.clone(),
            None => rcgen::KeyPair::generate()
                .map_err(AcmeError::Csr)?
                .serialize_pem(),
        };
        progress.key_pem = Some(key_pem.clone());
        job.stage(progress, "finalising")?;
        let csr = csr_der(&key_pem, job.names)?;
        order
            .finalize_csr(&csr)
            .await
            .map_err(ca("finalising the order"))?;
    }

    job.stage(progress, "downloading")?;
    let Some(key_pem) = progress.key_pem.clone() else {
        // `resume` only keeps finalised orders whose key is recorded.
        return Err(AcmeError::UnknownKey);
    };
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .map_err(ca("downloading the certificate"))?;
    Ok(Issued { chain_pem, key_pem })
}

/// Publishes the pending challenges' values, waits until every healthy
/// node's DNS answers them, and asks the CA to validate those it has not
/// been asked to yet.
async fn validate(
    order: &mut Order,
    job: &Job<'_>,
    progress: &OrderProgress,
    published: &mut Vec<(String, String)>,
) -> Result<(), AcmeError> {
    let directory = job.directory;
    let ca = |doing: &'static str| move |e| AcmeError::ca(directory, doing, e);
    // Owner name → values (an apex and its wildcard share one owner).
    let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.map_err(ca("fetching an authorization"))?;
        let name = authz.identifier().to_string();
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(AcmeError::Authorization {
                    name,
                    status: format!("{other:?}").to_lowercase(),
                });
            }
        }
        let Some(challenge) = authz.challenge(ChallengeType::Dns01) else {
            return Err(AcmeError::NoDns01 { name });
        };
        let Identifier::Dns(base) = challenge.identifier().identifier else {
            return Err(AcmeError::NoDns01 { name });
        };
        let owner = challenge_owner(base);
        let value = challenge.key_authorization().dns_value();
        job.store.add_acme_challenge(&owner, &value)?;
        published.push((owner.clone(), value.clone()));
        by_owner.entry(owner).or_default().push(value);
    }

    let nodes = job.store.nodes()?;
    let targets = propagation::targets(job.node, job.dns, &nodes);
    // Health as it is now, each round: a node that dies while we wait is
    // no longer asked (the validator's DNS answers no longer name it).
    let current = || match job.store.nodes() {
        Ok(nodes) => propagation::targets(job.node, job.dns, &nodes),
        Err(_) => targets.clone(),
    };
    if targets.is_empty() {
        // No local DNS listener: give other nodes' DNS a moment.
        warn!(domain = %job.domain, "this node runs no DNS server, so challenge publication is not checked");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // `status` names the nodes that lag while we wait for them.
    let report = |lagging: &[propagation::Target]| {
        let names: Vec<String> = lagging.iter().map(|t| t.to_string()).collect();
        let waiting = OrderProgress {
            stage: Some(format!("waiting for the DNS of {}", names.join(", "))),
            ..progress.clone()
        };
        if let Err(e) = job.record(&waiting) {
            debug!(error = %e, "cannot record the nodes the order waits for");
        }
    };
    for (owner, values) in &by_owner {
        let lagging = propagation::wait_all(&current, &report, owner, values, PUBLISH_LIMIT).await;
        if !lagging.is_empty() {
            return Err(AcmeError::NotPublished {
                name: owner.clone(),
                lagging: lagging.iter().map(|t| t.to_string()).collect(),
            });
        }
        debug!(name = %owner, servers = targets.len(), "challenge published");
    }

    let mut authorizations = order.authorizations();
    while let Some(result) = authorizations.next().await {
        let mut authz = result.map_err(ca("fetching an authorization"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let name = authz.identifier().to_string();
        let Some(mut challenge) = authz.challenge(ChallengeType::Dns01) else {
            return Err(AcmeError::NoDns01 { name });
        };
        // A challenge the previous holder already handed to the CA is
        // being validated; asking again is an error at some CAs.
        if challenge.status != ChallengeStatus::Pending {
            continue;
        }
        challenge
            .set_ready()
            .await
            .map_err(ca("asking the CA to validate"))?;
    }
    Ok(())
}

/// A CSR for `names` signed by the PEM key `key_pem`, DER-encoded.
fn csr_der(key_pem: &str, names: &[String]) -> Result<Vec<u8>, AcmeError> {
    let err = AcmeError::Csr;
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(err)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(err)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(err)?;
    Ok(csr.der().to_vec())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The `_acme-challenge` owner name that validates `name` (a wildcard is
/// validated at its parent).
pub fn challenge_owner(name: &str) -> String {
    format!(
        "_acme-challenge.{}",
        name.strip_prefix("*.").unwrap_or(name)
    )
}

/// Withdraws every published value at the owners of `names`; returns how
/// many. Only the domain's issuer orders these names, so any value there
/// belongs to an attempt that is over.
fn withdraw_leftovers(store: &Store, names: &[String]) -> Result<usize, AcmeError> {
    let owners: Vec<String> = names.iter().map(|n| challenge_owner(n)).collect();
    let mut withdrawn = 0;
    for challenge in store.acme_challenges()? {
        if owners.contains(&challenge.name) {
            store.remove_acme_challenge(&challenge.name, &challenge.value)?;
            withdrawn += 1;
        }
    }
    Ok(withdrawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_validated_at_their_parent() {
        assert_eq!(
            challenge_owner("example.com"),
            "_acme-challenge.example.com"
        );
        assert_eq!(
            challenge_owner("*.preview.example.com"),
            "_acme-challenge.preview.example.com"
        );
    }

    #[test]
    fn leftover_values_of_these_names_are_withdrawn_and_others_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store =
            Store::open(&dir.path().join("state.sqlite"), "dev").unwrap_or_else(|e| panic!("{e}"));
        for (name, value) in [
            ("_acme-challenge.example.com", "stale"),
            ("_acme-challenge.preview.example.com", "stale"),
            ("_acme-challenge.other.org", "live"),
        ] {
            store
                .add_acme_challenge(name, value)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let names = [
            "example.com".to_string(),
            "*.preview.example.com".to_string(),
        ];
        assert_eq!(withdraw_leftovers(&store, &names).ok(), Some(2));
        let left: Vec<String> = store
            .acme_challenges()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(left, ["_acme-challenge.other.org"]);
    }
}
