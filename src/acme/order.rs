//! One ACME order (RFC 8555) answered by DNS-01 through our own DNS: the
//! `_acme-challenge` TXT values go into the replicated store, which every
//! node's DNS server publishes; once this node's listener answers them the
//! challenges are marked ready, then the order is finalised with a fresh
//! P-256 key. The challenge values are withdrawn whatever the outcome.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use tracing::{debug, info};

use super::{AcmeError, propagation};
use crate::store::Store;

/// How long the CA may take to validate, and then to issue.
const POLL_LIMIT: Duration = Duration::from_secs(120);
/// How long our DNS may take to publish a challenge value.
const PUBLISH_LIMIT: Duration = Duration::from_secs(30);

/// An issued certificate: chain (leaf first) and private key, both PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Orders a certificate for `names` from `account`'s CA. `dns` is this
/// node's DNS listener, checked before the CA is told to validate.
pub async fn order(
    account: &Account,
    directory: &str,
    names: &[String],
    store: &Store,
    dns: Option<SocketAddr>,
) -> Result<Issued, AcmeError> {
    // Values an earlier attempt left behind (this node restarted, or the
    // node it took over from died mid-order) are withdrawn first.
    let withdrawn = withdraw_leftovers(store, names)?;
    if withdrawn > 0 {
        info!(withdrawn, "withdrew challenge values an earlier order left");
    }
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| AcmeError::ca(directory, "placing the order", e))?;
    info!(names = ?names, order = %order.url(), "ACME order placed");
    let mut published = Vec::new();
    let result = complete(&mut order, directory, store, dns, &mut published).await;
    for (owner, value) in &published {
        if let Err(e) = store.remove_acme_challenge(owner, value) {
            tracing::warn!(name = %owner, error = %e, "cannot withdraw an ACME challenge value");
        }
    }
    result
}

/// Publishes the challenges, waits for our DNS, validates and finalises.
/// Every value published is pushed to `published`.
async fn complete(
    order: &mut Order,
    directory: &str,
    store: &Store,
    dns: Option<SocketAddr>,
    published: &mut Vec<(String, String)>,
) -> Result<Issued, AcmeError> {
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
        store.add_acme_challenge(&owner, &value)?;
        published.push((owner.clone(), value.clone()));
        by_owner.entry(owner).or_default().push(value);
    }

    match dns {
        Some(dns) => {
            for (owner, values) in &by_owner {
                if !propagation::wait_published(dns, owner, values, PUBLISH_LIMIT).await {
                    return Err(AcmeError::NotPublished {
                        name: owner.clone(),
                        dns,
                    });
                }
                debug!(name = %owner, "challenge published");
            }
        }
        // No local DNS listener: give other nodes' DNS a moment.
        None => tokio::time::sleep(Duration::from_secs(2)).await,
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
        challenge
            .set_ready()
            .await
            .map_err(ca("asking the CA to validate"))?;
    }

    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(POLL_LIMIT);
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
    let key_pem = order.finalize().await.map_err(ca("finalising the order"))?;
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .map_err(ca("downloading the certificate"))?;
    Ok(Issued { chain_pem, key_pem })
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
