//! Authorised public keys: parsing the OpenSSH one-line form, the
//! algorithms accepted (ed25519, ECDSA, RSA with SHA-2 signatures), and
//! fingerprints as `ssh-keygen -l` prints them.

use std::path::Path;

use russh::keys::ssh_key::{Algorithm, HashAlg, PublicKey};

use crate::store::KeyRow;

/// Why a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an OpenSSH public key ({0}); paste one line such as `ssh-ed25519 AAAA… you@host`")]
    Unreadable(#[source] russh::keys::ssh_key::Error),
    #[error("{0} keys are not accepted; use ed25519, ecdsa or rsa")]
    Algorithm(String),
}

/// Whether keys of `algorithm` may authenticate.
pub fn key_algorithm_allowed(algorithm: &Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::Ed25519 | Algorithm::Ecdsa { .. } | Algorithm::Rsa { .. }
    )
}

/// Whether a signature of `algorithm` is accepted: RSA only with SHA-2
/// (`rsa-sha2-256`/`rsa-sha2-512`), never SHA-1 `ssh-rsa`.
pub fn signature_algorithm_allowed(algorithm: &Algorithm) -> bool {
    match algorithm {
        Algorithm::Rsa { hash } => hash.is_some(),
        other => key_algorithm_allowed(other),
    }
}

/// The fingerprint stored for `key`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses one `authorized_keys`-style line into a store row.
pub fn parse_line(line: &str) -> Result<KeyRow, KeyError> {
    let line = line.trim();
    let key = PublicKey::from_openssh(line).map_err(KeyError::Unreadable)?;
    if !key_algorithm_allowed(&key.algorithm()) {
        return Err(KeyError::Algorithm(key.algorithm().to_string()));
    }
    let comment = key.comment().to_string();
    let mut bare = key.clone();
    bare.set_comment("");
    let public_key = bare.to_openssh().map_err(KeyError::Unreadable)?;
    Ok(KeyRow {
        fingerprint: fingerprint(&key),
        public_key: public_key.trim().to_string(),
        comment,
    })
}

/// Every readable key in `~/.ssh/*.pub` of the invoking user, for dev mode.
pub fn user_keys() -> Vec<KeyRow> {
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let dir = Path::new(&home).join(".ssh");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pub")
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(key) = parse_line(&text)
        {
            keys.push(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHgS3S3Q4PgyVTvZJ4T5Q0w7VvHgUUjHfkPbkgwbRClC me@host";

    #[test]
    fn keys_parse_with_fingerprint_and_comment() {
        let row = parse_line(ED25519).unwrap();
        assert!(
            row.fingerprint.starts_with("SHA256:"),
            "{}",
            row.fingerprint
        );
        assert_eq!(row.comment, "me@host");
        assert!(!row.public_key.contains("me@host"));
        assert_eq!(
            parse_line(&row.public_key).unwrap().fingerprint,
            row.fingerprint
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse_line("").is_err());
        assert!(parse_line("ssh-ed25519 !!!").is_err());
        assert!(parse_line("hello world").is_err());
    }

    #[test]
    fn sha1_rsa_signatures_are_refused() {
        assert!(!signature_algorithm_allowed(&Algorithm::Rsa { hash: None }));
        assert!(signature_algorithm_allowed(&Algorithm::Rsa {
            hash: Some(HashAlg::Sha256)
        }));
        assert!(signature_algorithm_allowed(&Algorithm::Ed25519));
    }
}
