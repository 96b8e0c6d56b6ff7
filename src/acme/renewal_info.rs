//! ACME Renewal Information (ARI, RFC 9773): when the CA's directory offers
//! it, the CA's suggested window for renewing a certificate, so a CA that
//! plans to revoke (or just spreads load) gets its renewals when it asks.
//! Our own schedule (`schedule::renew_at`) stays the upper bound: ARI can
//! only bring a renewal earlier.

use std::time::Duration;

use instant_acme::{Account, CertificateIdentifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, Der};
use x509_parser::extensions::ParsedExtension;

use super::AcmeError;
use crate::store::CertRow;

/// Fewest and most time between two looks at a certificate's window,
/// whatever the CA's Retry-After says.
const MIN_CHECK: Duration = Duration::from_secs(3600);
const MAX_CHECK: Duration = Duration::from_secs(24 * 3600);

/// What the CA suggests for one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suggestion {
    /// When to renew: a point inside the CA's window.
    pub due_ms: u64,
    /// When to ask again.
    pub next_check: Duration,
}

/// Asks `account`'s CA when to renew `cert`; `Ok(None)` when the CA's
/// directory offers no ARI.
pub async fn suggestion(
    account: &Account,
    directory: &str,
    cert: &CertRow,
) -> Result<Option<Suggestion>, AcmeError> {
    let id = certificate_id(cert)?;
    match account.renewal_info(&id).await {
        Ok((info, retry_after)) => {
            let window = info.suggested_window;
            let start = unix_ms(window.start);
            let end = unix_ms(window.end).max(start);
            Ok(Some(Suggestion {
                due_ms: point_in_window(&cert.domain, cert.not_after_ms, start, end),
                next_check: retry_after.clamp(MIN_CHECK, MAX_CHECK),
            }))
        }
        Err(instant_acme::Error::Unsupported(_)) => Ok(None),
        Err(e) => Err(AcmeError::ca(
            directory,
            "asking for renewal information",
            e,
        )),
    }
}

/// How long to wait before asking a CA without ARI again (its directory
/// may gain it).
pub fn unsupported_recheck() -> Duration {
    MAX_CHECK
}

/// The ARI identifier of `cert`'s leaf: its authority key identifier and
/// serial number.
fn certificate_id(cert: &CertRow) -> Result<CertificateIdentifier<'static>, AcmeError> {
    let err = |message: String| AcmeError::RenewalInfo {
        domain: cert.domain.clone(),
        message,
    };
    let leaf = CertificateDer::pem_slice_iter(cert.chain_pem.as_bytes())
        .next()
        .ok_or_else(|| err("the stored chain holds no certificate".into()))?
        .map_err(|e| err(format!("the stored chain is not PEM: {e}")))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| err(format!("the stored certificate does not parse: {e}")))?;
    let aki = parsed
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref(),
            _ => None,
        })
        .ok_or_else(|| err("the certificate names no authority key identifier".into()))?;
    let serial = parsed.tbs_certificate.raw_serial();
    Ok(CertificateIdentifier::new(Der::from_slice(aki.0), Der::from_slice(serial)).into_owned())
}

/// A point in `[start, end]` that differs per certificate (RFC 9773 asks
/// for a random one, so a CA's clients do not all come at the window's
/// start); derived from the certificate, so every look picks the same one.
fn point_in_window(domain: &str, not_after_ms: u64, start: u64, end: u64) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(domain.as_bytes());
    h.update(&not_after_ms.to_le_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.finalize().as_bytes()[..8]);
    let span = end - start;
    if span == 0 {
        return start;
    }
    start + u64::from_le_bytes(first) % (span + 1)
}

fn unix_ms(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_renewal_point_lies_in_the_window_and_is_stable() {
        let a = point_in_window("example.com", 5, 1_000, 2_000);
        assert!((1_000..=2_000).contains(&a));
        assert_eq!(a, point_in_window("example.com", 5, 1_000, 2_000));
        assert_eq!(point_in_window("example.com", 5, 7, 7), 7);
        let spread: std::collections::BTreeSet<u64> = (0..20)
            .map(|i| point_in_window(&format!("site{i}.example"), 5, 0, 1_000_000))
            .collect();
        assert!(spread.len() > 10, "points spread over the window");
    }

    #[test]
    fn a_leaf_with_an_authority_key_identifier_gets_an_ari_id() {
        let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_identifier_method = rcgen::KeyIdMethod::Sha256;
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)
            .unwrap_or_else(|e| panic!("{e}"));
        let leaf_key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut leaf_params = rcgen::CertificateParams::new(vec!["example.com".to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x02]));
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .unwrap_or_else(|e| panic!("{e}"));
        let row = CertRow {
            domain: "example.com".into(),
            names: vec!["example.com".into()],
            chain_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
            not_before_ms: 0,
            not_after_ms: 1,
            directory: "https://ca.test/dir".into(),
            issued_by: "london".into(),
        };
        let id = certificate_id(&row).unwrap_or_else(|e| panic!("{e}"));
        // base64url(AKI) "." base64url(serial 0x0102)
        let text = id.to_string();
        assert!(text.ends_with(".AQI"), "{text}");
        let broken = CertRow {
            chain_pem: "not pem".into(),
            ..row
        };
        assert!(certificate_id(&broken).is_err());
    }
}
