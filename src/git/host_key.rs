//! The node's SSH host key: generated once (ed25519) and kept in the data
//! directory, so clients' known_hosts entries stay valid across restarts.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{Ed25519Keypair, PrivateKey};

use super::{GitError, LibraryError};

/// The host key's file name inside the data directory.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// Loads the host key from `data_dir`, generating it on first start.
pub fn load_or_generate(data_dir: &Path) -> Result<PrivateKey, GitError> {
    let path = data_dir.join(HOST_KEY_FILE);
    let err = |what: &'static str, source: LibraryError| GitError::HostKey {
        what,
        path: path.clone(),
        source,
    };
    if path.exists() {
        return PrivateKey::read_openssh_file(&path).map_err(|e| err("cannot read", e.into()));
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| err("cannot get randomness for", e.into()))?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| err("cannot encode", e.into()))?;
    // Written beside and renamed, so a crash never leaves half a key.
    let tmp = data_dir.join(format!("{HOST_KEY_FILE}.tmp"));
    std::fs::write(&tmp, text.as_bytes()).map_err(|e| err("cannot write", e.into()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err("cannot protect", e.into()))?;
    std::fs::rename(&tmp, &path).map_err(|e| err("cannot write", e.into()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        let again = load_or_generate(dir.path()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        let mode = std::fs::metadata(dir.path().join(HOST_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
}
