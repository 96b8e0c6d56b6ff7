//! `maki machine upgrade`: one node at a time, each taken out of DNS,
//! given the new binary (uploaded and hash-checked before anything stops),
//! restarted and waited for; a node that does not come back healthy gets
//! its previous binary back, and the upgrade stops there, saying why, with
//! the other nodes untouched.

use std::time::Duration;

use super::login::Login;
use super::progress::Progress;
use super::upload::{self, Binary};
use super::{MachineError, Step, drain, healthy, provision};
use crate::profile::{Profile, ProfileNode};
use crate::remote::NodeAddr;

/// How the upgrade runs.
pub struct Options {
    pub binary: Binary,
    /// Pause between draining a node and stopping it.
    pub drain: Duration,
    /// How long a restarted node may take to be healthy.
    pub wait: Duration,
}

/// What happened to one node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub name: String,
    /// `upgraded`, or `unchanged` when it already ran this build.
    pub result: String,
    pub from: Option<String>,
    pub to: String,
}

/// The host login the profile records for `node`.
pub fn machine_login(node: &ProfileNode) -> Result<Login, MachineError> {
    node.machine.as_deref().and_then(Login::parse).ok_or_else(|| {
        MachineError::new(
            &node.name,
            Step::Connect,
            "the profile has no machine login for this node (it was not provisioned by maki machine)",
            format!("add it: maki profile add {} {} --machine root@HOST", node.name, node.admin),
        )
    })
}

/// Upgrades `names` (all nodes when empty), in the profile's order.
pub fn upgrade(
    profile: &Profile,
    names: &[String],
    opts: &Options,
    progress: &Progress,
) -> Result<Vec<Outcome>, MachineError> {
    for name in names {
        if profile.node(name).is_none() {
            return Err(MachineError::new(
                name,
                Step::Profile,
                format!("no node {name:?} in {}", profile.path.display()),
                "`maki machine list` shows the nodes",
            ));
        }
    }
    let chosen: Vec<&ProfileNode> = profile
        .nodes
        .iter()
        .filter(|n| names.is_empty() || names.contains(&n.name))
        .collect();
    let mut outcomes = Vec::new();
    for node in chosen {
        outcomes.push(one(profile, node, opts, progress)?);
    }
    Ok(outcomes)
}

fn one(
    profile: &Profile,
    node: &ProfileNode,
    opts: &Options,
    progress: &Progress,
) -> Result<Outcome, MachineError> {
    let name = node.name.as_str();
    let login = machine_login(node)?;
    let admin = NodeAddr::parse(&node.admin).map_err(|e| {
        MachineError::new(
            name,
            Step::Profile,
            e.to_string(),
            "fix the node's admin address in the profile",
        )
    })?;
    let probe = provision::probe(name, &login)?;
    let from = probe
        .binary
        .as_ref()
        .map(|h| h[..12.min(h.len())].to_string());
    let to = opts.binary.short().to_string();
    if probe.has_binary(&opts.binary.sha256) {
        progress.note(name, &format!("upgrade: already runs build {to}"));
        return Ok(Outcome {
            name: name.into(),
            result: "unchanged".into(),
            from,
            to,
        });
    }
    if let Some(arch) = opts.binary.arch
        && arch != probe.arch
    {
        return Err(MachineError::new(
            name,
            Step::Probe,
            format!(
                "the host's CPU is {}, the binary is built for {arch}",
                probe.arch
            ),
            "pass --binary with a build for the host's CPU",
        ));
    }
    let running = progress.start(
        name,
        Step::Upload,
        &format!("build {to} ({} MB)", opts.binary.bytes.len() / 1_000_000),
    );
    upload::send(name, &login, &opts.binary)?;
    running.done("hash checked on the host");

    drain::out(profile, node, opts.drain, progress)?;
    let running = progress.start(
        name,
        Step::Restart,
        &format!("build {} -> {to}", from.as_deref().unwrap_or("none")),
    );
    run(
        name,
        &login,
        Step::Restart,
        &format!("{}; systemctl restart --no-block makiatto", upload::SWAP_IN),
    )?;
    match healthy::wait(name, &login, &admin, opts.wait) {
        Ok(()) => {
            running.done("healthy");
            drain::back(profile, node, Duration::from_secs(20))?;
            Ok(Outcome {
                name: name.into(),
                result: "upgraded".into(),
                from,
                to,
            })
        }
        Err(failure) => {
            running.done("not healthy");
            let running = progress.start(
                name,
                Step::Revert,
                &format!("back to build {}", from.as_deref().unwrap_or("none")),
            );
            run(
                name,
                &login,
                Step::Revert,
                &format!(
                    "{}; systemctl reset-failed makiatto; systemctl restart --no-block makiatto",
                    upload::REVERT
                ),
            )?;
            healthy::wait(name, &login, &admin, opts.wait).map_err(|e| MachineError {
                cause: format!(
                    "the new build failed ({}), and so did the previous one after the revert: {}",
                    failure.cause, e.cause
                ),
                ..e
            })?;
            drain::back(profile, node, Duration::from_secs(20))?;
            running.done("previous build healthy again");
            Err(MachineError::new(
                name,
                Step::Healthy,
                format!(
                    "build {to} did not come up healthy, so {name} runs build {} again and the upgrade stopped (nodes after it were not touched): {}",
                    from.as_deref().unwrap_or("none"),
                    failure.cause
                ),
                format!(
                    "read the journal above (`maki machine logs {name}`), fix the build, and run the upgrade again"
                ),
            ))
        }
    }
}

fn run(name: &str, login: &Login, step: Step, script: &str) -> Result<(), MachineError> {
    login
        .step_ok(
            name,
            step,
            script,
            "check the host (`maki machine logs NAME`) and run the command again",
        )
        .map(|_| ())
}
