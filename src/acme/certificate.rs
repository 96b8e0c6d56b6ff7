//! A certificate ready to serve: PEM chain and key turned into rustls's
//! `CertifiedKey`, with the validity the lifecycle schedules renewal by; and
//! the self-signed certificate `makiatto dev` serves without a CA.

use std::sync::Arc;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

/// Why a certificate cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate for {domain} has no PEM certificate in its chain")]
    NoCertificate { domain: String },
    #[error("certificate for {domain} has an unreadable chain: {source}")]
    Chain {
        domain: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("certificate for {domain} has an unusable private key: {source}")]
    Key {
        domain: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot make a self-signed certificate for {names:?}: {source}")]
    SelfSigned {
        names: Vec<String>,
        source: rcgen::Error,
    },
}

/// A parsed certificate: what TLS serves and when it is valid.
#[derive(Clone)]
pub struct Parsed {
    pub key: Arc<CertifiedKey>,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
}

/// Parses a PEM chain (leaf first) and its PEM private key.
pub fn parse(domain: &str, chain_pem: &str, key_pem: &str) -> Result<Parsed, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Chain {
            domain: domain.into(),
            source: e.into(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(CertError::NoCertificate {
            domain: domain.into(),
        });
    };
    let (not_before_ms, not_after_ms) = validity(domain, leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| CertError::Key {
        domain: domain.into(),
        source: e.into(),
    })?;
    certified(domain, chain, &key).map(|key| Parsed {
        key,
        not_before_ms,
        not_after_ms,
    })
}

/// `[not_before, not_after]` of `cert`, in Unix milliseconds.
fn validity(domain: &str, cert: &CertificateDer<'_>) -> Result<(u64, u64), CertError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| CertError::Chain {
            domain: domain.into(),
            source: e.into(),
        })?;
    let ms = |t: x509_parser::time::ASN1Time| t.timestamp().max(0) as u64 * 1000;
    Ok((
        ms(parsed.validity().not_before),
        ms(parsed.validity().not_after),
    ))
}

fn certified(
    domain: &str,
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'_>,
) -> Result<Arc<CertifiedKey>, CertError> {
    let signing = any_supported_type(key).map_err(|e| CertError::Key {
        domain: domain.into(),
        source: e.into(),
    })?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not belong to the leaf would fail every handshake.
    certified.keys_match().map_err(|e| CertError::Key {
        domain: domain.into(),
        source: e.into(),
    })?;
    Ok(Arc::new(certified))
}

/// A fresh self-signed certificate (P-256) for `names`.
pub fn self_signed(names: &[String]) -> Result<Parsed, CertError> {
    let err = |source| CertError::SelfSigned {
        names: names.to_vec(),
        source,
    };
    let key_pair = rcgen::KeyPair::generate().map_err(err)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "makiatto dev (self-signed)");
    let cert = params.self_signed(&key_pair).map_err(err)?;
    let der = cert.der().clone();
    let domain = names.first().map_or("", String::as_str);
    let (not_before_ms, not_after_ms) = validity(domain, &der)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    certified(domain, vec![der], &key).map(|key| Parsed {
        key,
        not_before_ms,
        not_after_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificates_parse_back() {
        let names = vec!["example.com".to_string(), "*.preview.example.com".into()];
        let parsed = self_signed(&names).unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.not_after_ms > parsed.not_before_ms);
        assert_eq!(parsed.key.cert.len(), 1);
    }

    #[test]
    fn garbage_is_refused_with_the_domain_named() {
        let err = parse("example.com", "not pem", "not pem")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("certificate for example.com has no PEM certificate in its chain")
        );
    }
}
