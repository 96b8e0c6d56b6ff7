//! WireGuard keys: the node's private key file and the base64 form `wg`
//! prints, so a key copied from `wg show` or a node table means the same
//! thing here.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gotatun::x25519::{PublicKey as DalekPublic, StaticSecret};

use super::WireGuardError;

/// A Curve25519 public key: a peer's identity on the mesh.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

/// A Curve25519 private key. Its `Debug` never prints the key.
#[derive(Clone)]
pub struct PrivateKey([u8; 32]);

/// Why a base64 key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a WireGuard key: expected 44 characters of base64 (32 bytes), as `wg genkey` prints"
)]
pub struct KeyParseError(pub String);

impl PublicKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(super) fn to_dalek(self) -> DalekPublic {
        DalekPublic::from(self.0)
    }

    pub(super) fn from_dalek(key: &DalekPublic) -> PublicKey {
        PublicKey(key.to_bytes())
    }
}

impl From<[u8; 32]> for PublicKey {
    fn from(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> PrivateKey {
        PrivateKey(StaticSecret::random_from_rng(rand_core::OsRng).to_bytes())
    }

    /// The public key that goes with this private key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_dalek(&DalekPublic::from(&self.to_dalek()))
    }

    /// The base64 form, as `wg genkey` prints it; for writing the key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub(super) fn to_dalek(&self) -> StaticSecret {
        StaticSecret::from(self.0)
    }
}

impl From<[u8; 32]> for PrivateKey {
    fn from(bytes: [u8; 32]) -> PrivateKey {
        PrivateKey(bytes)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

fn decode(text: &str) -> Result<[u8; 32], KeyParseError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| KeyParseError(text.to_string()))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyParseError(text.to_string()))
}

impl FromStr for PublicKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<PublicKey, KeyParseError> {
        decode(text).map(PublicKey)
    }
}

impl FromStr for PrivateKey {
    type Err = KeyParseError;

    /// Parses the base64 form; the error never echoes the text (it may be
    /// a real key with a typo).
    fn from_str(text: &str) -> Result<PrivateKey, KeyParseError> {
        decode(text)
            .map(PrivateKey)
            .map_err(|_| KeyParseError("<private key>".into()))
    }
}

/// Reads the private key at `path`, or generates one and writes it there
/// (mode 0600, created exclusively) when the file does not exist. A key file
/// readable by others is refused rather than used.
pub fn load_or_create_private_key(path: &Path) -> Result<PrivateKey, WireGuardError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mode = std::fs::metadata(path)
                .map_err(|source| WireGuardError::KeyFile {
                    path: path.to_path_buf(),
                    source,
                })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(WireGuardError::KeyFormat {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the private key is readable by other users (mode {:o}); run `chmod 600 {}`",
                        mode & 0o777,
                        path.display()
                    ),
                });
            }
            text.parse().map_err(|_| WireGuardError::KeyFormat {
                path: path.to_path_buf(),
                reason: "it does not hold one base64 WireGuard private key (44 characters, as `wg genkey` prints); remove it to generate a new key".into(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(source) => Err(WireGuardError::KeyFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn create(path: &Path) -> Result<PrivateKey, WireGuardError> {
    let key = PrivateKey::generate();
    let fail = |source| WireGuardError::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    // Written to a temp file and renamed, so a crash never leaves a
    // truncated key that a restart would refuse.
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    file.write_all(format!("{}\n", key.to_base64()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_round_trip_through_base64() {
        let key = PrivateKey::generate().public_key();
        let text = key.to_string();
        assert_eq!(text.len(), 44);
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert_eq!("abc".parse::<PublicKey>(), Err(KeyParseError("abc".into())));
        // 33 bytes of valid base64 is still not a key.
        assert!(STANDARD.encode([1u8; 33]).parse::<PublicKey>().is_err());
    }

    #[test]
    fn known_key_pair_matches_wg_pubkey() {
        // `echo yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk= | wg pubkey`
        let private: PrivateKey = match "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=".parse() {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            private.public_key().to_string(),
            "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
        );
        assert_eq!(format!("{private:?}"), "PrivateKey(<redacted>)");
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let path = dir.path().join("sub/wireguard.key");
        let first = load_or_create_private_key(&path).map(|k| k.public_key());
        let again = load_or_create_private_key(&path).map(|k| k.public_key());
        assert!(first.is_ok());
        assert_eq!(first.ok(), again.ok());
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
    }

    #[test]
    fn bad_key_files_are_refused_with_the_fix() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let path = dir.path().join("wireguard.key");
        let write = |text: &str, mode: u32| {
            let _ = std::fs::write(&path, text);
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
        };
        write("not a key\n", 0o600);
        let err = load_or_create_private_key(&path)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("remove it to generate a new key") && !m.contains("not a key")),
            "{err:?}"
        );
        write(&PrivateKey::generate().to_base64(), 0o644);
        let err = load_or_create_private_key(&path)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(matches!(&err, Err(m) if m.contains("chmod 600")), "{err:?}");
    }
}
