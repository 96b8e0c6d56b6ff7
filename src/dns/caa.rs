//! The default CAA record follows the configured CA: a CA that checks CAA
//! (as public CAs must) refuses to issue for a domain whose CAA names only
//! another CA, so the record every domain gets unless it lists its own
//! `caa` values names the CA in `[acme]`: `acme.caa_identity` when set,
//! else the identity a well-known directory publishes in its
//! `meta.caaIdentities`. For another CA with no `caa_identity`, domains get
//! no default CAA record (any CA may issue) rather than one that would
//! block their own certificates.

use std::sync::Arc;

use crate::config::{AcmeSettings, Domain};

use super::zone::DEFAULT_CAA;

/// Directory hosts and the CAA identity each CA's directory publishes.
const KNOWN_CAS: [(&str, &str); 5] = [
    ("acme-v02.api.letsencrypt.org", "letsencrypt.org"),
    ("acme-staging-v02.api.letsencrypt.org", "letsencrypt.org"),
    ("acme.zerossl.com", "sectigo.com"),
    ("dv.acme-v02.api.pki.goog", "pki.goog"),
    ("api.buypass.com", "buypass.com"),
];

/// The default CAA values of a node whose CA is `acme` (`None`: no CA
/// configured, self-signed certificates, Let's Encrypt's record as before).
/// Empty: the CA is unknown, so no default record.
pub fn default_values(acme: Option<&AcmeSettings>) -> Vec<String> {
    let Some(acme) = acme else {
        return vec![DEFAULT_CAA.to_string()];
    };
    let identity = acme
        .caa_identity
        .clone()
        .or_else(|| known_identity(&acme.directory).map(str::to_string));
    match identity {
        Some(identity) => vec![format!("0 issue \"{identity}\"")],
        None => {
            tracing::warn!(directory = %acme.directory, "the CA's CAA identity is unknown, so domains get no default CAA record; set [acme] caa_identity in node.toml");
            Vec::new()
        }
    }
}

/// The CAA identity of a well-known CA's directory URL.
fn known_identity(directory: &str) -> Option<&'static str> {
    let host = directory
        .strip_prefix("https://")?
        .split(['/', ':'])
        .next()?
        .to_ascii_lowercase();
    KNOWN_CAS
        .iter()
        .find(|(known, _)| *known == host)
        .map(|(_, identity)| *identity)
}

/// `domain` with `defaults` as its CAA values unless it lists its own.
pub fn with_defaults(domain: &Arc<Domain>, defaults: &[String]) -> Arc<Domain> {
    if domain.caa.is_some() {
        return domain.clone();
    }
    let mut owned = Domain::clone(domain);
    owned.caa = Some(defaults.to_vec());
    Arc::new(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme(directory: &str, identity: Option<&str>) -> AcmeSettings {
        AcmeSettings {
            directory: directory.to_string(),
            caa_identity: identity.map(str::to_string),
            ..AcmeSettings::default()
        }
    }

    #[test]
    fn the_default_names_the_configured_ca() {
        assert_eq!(default_values(None), [DEFAULT_CAA]);
        assert_eq!(
            default_values(Some(&AcmeSettings::default())),
            ["0 issue \"letsencrypt.org\""]
        );
        assert_eq!(
            default_values(Some(&acme("https://acme.zerossl.com/v2/DV90", None))),
            ["0 issue \"sectigo.com\""]
        );
        assert_eq!(
            default_values(Some(&acme(
                "https://ca.internal:14000/dir",
                Some("ca.internal")
            ))),
            ["0 issue \"ca.internal\""]
        );
        assert!(default_values(Some(&acme("https://ca.internal:14000/dir", None))).is_empty());
    }
}
