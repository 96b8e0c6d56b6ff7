//! Putting a node binary on a host: streamed over SSH into a side file,
//! hashed there with `sha256sum`, and moved into place only when the hash
//! matches the operator's copy, keeping the binary it replaces to revert
//! to. A host that already has the same bytes gets nothing.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::login::Login;
use super::{MachineError, Step, paths};

/// A binary on the operator's machine, read once.
pub struct Binary {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// Hex sha256.
    pub sha256: String,
    /// The CPU it is built for, as `uname -m` names it.
    pub arch: Option<&'static str>,
}

impl Binary {
    /// `given`, else the `makiatto` beside the running `maki`.
    pub fn locate(given: Option<&Path>) -> Result<PathBuf, String> {
        if let Some(path) = given {
            return Ok(path.to_path_buf());
        }
        let beside = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("makiatto")))
            .filter(|p| p.is_file());
        beside.ok_or_else(|| {
            "no makiatto binary beside maki: pass --binary PATH (a Linux build of makiatto)"
                .to_string()
        })
    }

    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Binary, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let arch = super::probe::elf_arch(&bytes);
        if arch.is_none() {
            return Err(format!(
                "{} is not a Linux binary for a CPU nodes run on (x86_64, aarch64, riscv64)",
                path.display()
            ));
        }
        Ok(Binary {
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            bytes,
            arch,
        })
    }

    /// The first 12 hex digits of the hash: what `list` shows.
    pub fn short(&self) -> &str {
        &self.sha256[..12]
    }
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sends `binary` to [`paths::UPLOAD`] and checks its hash there.
pub fn send(host: &str, login: &Login, binary: &Binary) -> Result<(), MachineError> {
    let script = format!(
        "set -e; umask 022; cat > {up}; sha256sum {up} | cut -d' ' -f1",
        up = paths::UPLOAD
    );
    let ran = login.step(host, Step::Upload, &script, Some(&binary.bytes))?;
    if !ran.ok {
        return Err(MachineError::new(
            host,
            Step::Upload,
            format!("writing {} failed: {}", paths::UPLOAD, ran.why()),
            "check the host's free space under /usr (df -h /usr) and that the login is root",
        ));
    }
    let got = ran.stdout.trim();
    if got != binary.sha256 {
        return Err(MachineError::new(
            host,
            Step::Upload,
            format!(
                "the uploaded binary hashes to {got} on the host, not {} as sent",
                binary.sha256
            ),
            "run the command again (the transfer was damaged); if it persists, check the host's disk",
        ));
    }
    Ok(())
}

/// The script that moves the checked upload into place, keeping the
/// binary it replaces as [`paths::PREVIOUS`].
pub const SWAP_IN: &str = "set -e; if [ -f /usr/bin/makiatto ]; then cp -p /usr/bin/makiatto /usr/bin/makiatto.previous; fi; chmod 0755 /usr/bin/makiatto.upload; mv -f /usr/bin/makiatto.upload /usr/bin/makiatto";

/// The script that puts the kept binary back.
pub const REVERT: &str = "set -e; cp -p /usr/bin/makiatto.previous /usr/bin/makiatto.revert; mv -f /usr/bin/makiatto.revert /usr/bin/makiatto";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_the_ones_sha256sum_prints() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
