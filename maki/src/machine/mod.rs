//! `maki machine`: provisioning, upgrading and removing the servers of a
//! cluster over SSH, as root, through the system `ssh` (the operator's
//! keys, agent and known_hosts apply; `MAKI_SSH_COMMAND` replaces `ssh`).
//!
//! One file per step, each a function of the host it acts on: `probe`
//! (what the host is and whether it can run a node), `upload` (the binary,
//! hash-checked on the host), `install` (user, directories, node.toml, the
//! unit, `systemctl enable --now`), `healthy` (waits for the node to be
//! ready and answer its admin endpoint), `coordinates` (where the node is),
//! `node_toml` (the config it runs). The commands compose them:
//! `provision` (init and add), `list`, `upgrade`, `remove`, `service`
//! (restart, logs). `plan` is what `--dry-run` prints. Each step reports
//! through `progress`; a failure is a [`MachineError`] naming the host, the
//! step and the fix.

pub mod coordinates;
pub mod drain;
pub mod healthy;
pub mod install;
pub mod list;
pub mod login;
pub mod node_toml;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod provision;
pub mod remove;
pub mod service;
pub mod upgrade;
pub mod upload;

/// Where every node keeps what `maki machine` installs.
pub mod paths {
    /// The node binary.
    pub const BINARY: &str = "/usr/bin/makiatto";
    /// The binary an upgrade replaced, kept to revert to.
    pub const PREVIOUS: &str = "/usr/bin/makiatto.previous";
    /// An upload in progress, before its hash is checked.
    pub const UPLOAD: &str = "/usr/bin/makiatto.upload";
    /// The node's config.
    pub const CONFIG: &str = "/etc/makiatto/node.toml";
    /// The GeoIP database `--geoip-db` uploads.
    pub const GEOIP: &str = "/etc/makiatto/GeoLite2-City.mmdb";
    /// The systemd unit.
    pub const UNIT: &str = "/etc/systemd/system/makiatto.service";
    /// The data directory (the unit's StateDirectory).
    pub const DATA: &str = "/var/lib/makiatto";
}

/// The steps of `maki machine`, as progress lines and errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Connect,
    Probe,
    Upload,
    Install,
    Locate,
    Join,
    Start,
    Healthy,
    Profile,
    Drain,
    Restart,
    Revert,
    Remove,
    Stop,
    Purge,
    Status,
    Logs,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Step::Connect => "connect",
            Step::Probe => "probe",
            Step::Upload => "upload",
            Step::Install => "install",
            Step::Locate => "locate",
            Step::Join => "join",
            Step::Start => "start",
            Step::Healthy => "wait healthy",
            Step::Profile => "profile",
            Step::Drain => "drain",
            Step::Restart => "restart",
            Step::Revert => "revert",
            Step::Remove => "remove",
            Step::Stop => "stop",
            Step::Purge => "purge",
            Step::Status => "status",
            Step::Logs => "logs",
        };
        f.write_str(name)
    }
}

/// Why a `maki machine` command stopped: on which host, at which step,
/// why, and what the operator can do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MachineError {
    /// The node's name, or its SSH login when it has none yet.
    pub host: String,
    pub step: Step,
    pub cause: String,
    pub fix: String,
}

impl MachineError {
    pub fn new(
        host: impl Into<String>,
        step: Step,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> MachineError {
        MachineError {
            host: host.into(),
            step,
            cause: cause.into(),
            fix: fix.into(),
        }
    }
}

impl std::fmt::Display for MachineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} failed: {}\n  fix: {}",
            self.host, self.step, self.cause, self.fix
        )
    }
}

impl std::error::Error for MachineError {}
