//! The bubblewrap command line a build runs under: the system read-only,
//! the checkout and the repository's cache the only writable places, a
//! private `/tmp`, fresh PID, IPC, UTS and user namespaces, and no network
//! unless the site asked for it. The node's data directory and its config
//! directory are not there at all, so neither are its keys and sockets.
//!
//! The checkout and cache are handed over as open directories (`--bind-fd`),
//! so a build running as an unprivileged user binds them even when it could
//! not walk the data directory's path to them.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the checkout appears inside the sandbox (the build's working
/// directory).
pub const CHECKOUT: &str = "/build/src";
/// Where the repository's cache directory appears (`MAKIATTO_CACHE_DIR`).
pub const CACHE: &str = "/build/cache";
/// The bubblewrap executable, found on the node's PATH.
pub const BWRAP: &str = "bwrap";

/// System directories bound read-only when present (or re-created as the
/// links they are, on merged-/usr systems). `/nix` and
/// `/run/current-system` carry the tools on NixOS.
const SYSTEM: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
    "/nix",
    "/run/current-system",
];
/// Places of the node under the system directories a build must not see.
const NODE_CONFIG_DIR: &str = "/etc/makiatto";
/// Bytes of the private `/tmp`, which lives in memory.
const TMP_BYTES: u64 = 256 * 1024 * 1024;

/// What one sandbox gets.
pub struct Sandbox<'a> {
    /// The checkout, open: bound read-write at [`CHECKOUT`].
    pub checkout: &'a File,
    /// The repository's cache, open: bound read-write at [`CACHE`].
    pub cache: &'a File,
    /// Whether the build shares the node's network.
    pub network: bool,
    /// The node's data directory, hidden if a system directory holds it.
    pub data_dir: &'a Path,
    /// The build's whole environment.
    pub env: Vec<(String, OsString)>,
    /// The site's build command, run by `/bin/sh -c`.
    pub command: &'a str,
}

impl Sandbox<'_> {
    /// The `bwrap` invocation, and the descriptors it must inherit.
    pub fn command(&self) -> (Command, Vec<i32>) {
        let mut cmd = Command::new(BWRAP);
        cmd.env_clear();
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.args([
            "--die-with-parent",
            "--new-session",
            "--unshare-user",
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "build",
        ]);
        if !self.network {
            cmd.arg("--unshare-net");
        }
        for dir in SYSTEM {
            let path = Path::new(dir);
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        cmd.arg("--symlink").arg(target).arg(path);
                    }
                }
                Ok(meta) if meta.is_dir() => {
                    cmd.arg("--ro-bind").arg(path).arg(path);
                }
                _ => {}
            }
        }
        if self.network {
            // resolv.conf may point here (systemd-resolved).
            cmd.args([
                "--ro-bind-try",
                "/run/systemd/resolve",
                "/run/systemd/resolve",
            ]);
        }
        for hidden in self.hidden() {
            cmd.arg("--tmpfs").arg(hidden);
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev"]);
        cmd.arg("--size").arg(TMP_BYTES.to_string());
        cmd.args(["--tmpfs", "/tmp"]);
        let checkout = self.checkout.as_raw_fd();
        let cache = self.cache.as_raw_fd();
        cmd.arg("--bind-fd").arg(checkout.to_string()).arg(CHECKOUT);
        cmd.arg("--bind-fd").arg(cache.to_string()).arg(CACHE);
        cmd.args(["--chdir", CHECKOUT, "--", "/bin/sh", "-c", self.command]);
        (cmd, vec![checkout, cache])
    }

    /// The node's own directories that sit under a bound system directory.
    fn hidden(&self) -> Vec<PathBuf> {
        let data =
            std::fs::canonicalize(self.data_dir).unwrap_or_else(|_| self.data_dir.to_path_buf());
        [PathBuf::from(NODE_CONFIG_DIR), data]
            .into_iter()
            .filter(|p| p.is_dir() && SYSTEM.iter().any(|s| p.starts_with(s)))
            .collect()
    }
}
