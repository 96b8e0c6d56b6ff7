//! `maki machine restart` (drained first, then restarted, waited for and
//! put back into DNS) and `maki machine logs` (the node's journal, `-f` to
//! follow it, `--json` for one JSON object per entry).

use std::time::Duration;

use super::progress::Progress;
use super::upgrade::machine_login;
use super::{MachineError, Step, drain, healthy};
use crate::profile::Profile;
use crate::remote::NodeAddr;

fn node_of<'a>(
    profile: &'a Profile,
    name: &str,
) -> Result<&'a crate::profile::ProfileNode, MachineError> {
    profile.node(name).ok_or_else(|| {
        MachineError::new(
            name,
            Step::Profile,
            format!("no node {name:?} in {}", profile.path.display()),
            "`maki machine list` shows the nodes",
        )
    })
}

/// Restarts `name`'s service.
pub fn restart(
    profile: &Profile,
    name: &str,
    pause: Duration,
    wait: Duration,
    progress: &Progress,
) -> Result<(), MachineError> {
    let node = node_of(profile, name)?;
    let login = machine_login(node)?;
    let admin = NodeAddr::parse(&node.admin).map_err(|e| {
        MachineError::new(
            name,
            Step::Profile,
            e.to_string(),
            "fix the node's admin address in the profile",
        )
    })?;
    let alone = profile.nodes.len() == 1;
    if !alone {
        drain::out(profile, node, pause, progress)?;
    }
    let running = progress.start(name, Step::Restart, "systemctl restart makiatto");
    login.step_ok(
        name,
        Step::Restart,
        "systemctl restart --no-block makiatto",
        "check the host with `maki machine logs`",
    )?;
    healthy::wait(name, &login, &admin, wait)?;
    if !alone {
        drain::back(profile, node, Duration::from_secs(20))?;
    }
    running.done("healthy");
    Ok(())
}

/// Prints `name`'s journal: the last `lines`, then new ones with `follow`.
pub fn logs(
    profile: &Profile,
    name: &str,
    lines: u32,
    follow: bool,
    json: bool,
) -> Result<(), MachineError> {
    let node = node_of(profile, name)?;
    let login = machine_login(node)?;
    let script = format!(
        "journalctl -u makiatto --no-pager -n {lines}{}{}",
        if follow { " -f" } else { "" },
        if json { " -o json" } else { "" }
    );
    match login.run_attached(&script) {
        Ok(true) => Ok(()),
        Ok(false) => Err(MachineError::new(
            name,
            Step::Logs,
            format!("journalctl on {login} failed"),
            format!("check that `ssh {login}` works"),
        )),
        Err(e) => Err(MachineError::new(
            name,
            Step::Logs,
            format!("cannot run ssh: {e}"),
            "install OpenSSH's client",
        )),
    }
}
