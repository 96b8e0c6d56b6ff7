//! `maki machine remove`: out of DNS first (drained, so visitors move to
//! other nodes before anything stops), then out of the cluster (`node
//! remove` on another node: its row becomes a tombstone every node
//! follows), then its service stopped and disabled. `--purge` also deletes
//! its data, config, binary, unit and user. The profile forgets it.

use std::time::Duration;

use super::login::Login;
use super::progress::Progress;
use super::upgrade::machine_login;
use super::{MachineError, Step, drain};
use crate::profile::Profile;
use crate::remote::{self, NodeAddr};

/// What `--purge` deletes.
const PURGE: &str = "set -e; rm -rf /var/lib/makiatto /etc/makiatto; rm -f /usr/bin/makiatto /usr/bin/makiatto.previous /usr/bin/makiatto.upload /etc/systemd/system/makiatto.service; systemctl daemon-reload; if id -u makiatto >/dev/null 2>&1; then userdel makiatto; fi";

/// What was done.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Removed {
    pub name: String,
    /// The node that recorded the removal (absent for a last node).
    pub removed_through: Option<String>,
    pub purged: bool,
}

/// Removes `name`, saving the profile without it.
pub fn remove(
    profile: &mut Profile,
    name: &str,
    purge: bool,
    pause: Duration,
    progress: &Progress,
) -> Result<Removed, MachineError> {
    let node = profile.node(name).cloned().ok_or_else(|| {
        MachineError::new(
            name,
            Step::Profile,
            format!("no node {name:?} in {}", profile.path.display()),
            "`maki machine list` shows the nodes",
        )
    })?;
    let login: Login = machine_login(&node)?;
    let others: Vec<_> = profile
        .nodes
        .iter()
        .filter(|n| n.name != name)
        .cloned()
        .collect();
    if !others.is_empty() {
        drain::out(profile, &node, pause, progress)?;
    }
    let mut removed_through = None;
    if !others.is_empty() {
        let running = progress.start(name, Step::Remove, "out of the cluster");
        let mut last_error = String::new();
        for other in &others {
            let Ok(addr) = NodeAddr::parse(&other.admin) else {
                continue;
            };
            match remote::call(&addr, &format!("node remove {name}"), None) {
                Ok(answer) if answer.ok => {
                    removed_through = Some(other.name.clone());
                    break;
                }
                Ok(answer) => last_error = answer.stderr.trim().to_string(),
                Err(e) => last_error = e.to_string(),
            }
        }
        let Some(through) = &removed_through else {
            return Err(MachineError::new(
                name,
                Step::Remove,
                format!("no other node recorded the removal: {last_error}"),
                "check the other nodes with `maki machine list` and run the command again",
            ));
        };
        running.done(&format!("recorded by {through}"));
    }
    let running = progress.start(name, Step::Stop, "systemctl disable --now makiatto");
    login.step_ok(
        name,
        Step::Stop,
        "systemctl disable --now --quiet makiatto",
        format!("stop it by hand: ssh {login} systemctl disable --now makiatto"),
    )?;
    running.done("stopped and disabled");
    if purge {
        let running = progress.start(name, Step::Purge, "data, config, binary, unit, user");
        login.step_ok(name, Step::Purge, PURGE, "run the command again")?;
        running.done("deleted");
    }
    profile.remove_node(name);
    profile.save().map_err(|e| {
        MachineError::new(
            name,
            Step::Profile,
            e.to_string(),
            "check that your config directory is writable",
        )
    })?;
    Ok(Removed {
        name: name.to_string(),
        removed_through,
        purged: purge,
    })
}
