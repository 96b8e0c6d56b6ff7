//! Waiting for a node to be healthy after a start: systemd says the unit
//! is active (the unit is `Type=notify`, so that means every listener is
//! bound), then the node answers `status` on its admin SSH endpoint with
//! the operator's key. A unit that fails or never gets there is reported
//! with the last lines of its journal.

use std::thread;
use std::time::{Duration, Instant};

use super::login::Login;
use super::{MachineError, Step};
use crate::remote::{self, NodeAddr};

/// Polls for at most `limit`.
pub fn wait(
    host: &str,
    login: &Login,
    admin: &NodeAddr,
    limit: Duration,
) -> Result<(), MachineError> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let ran = login.step(
            host,
            Step::Healthy,
            "systemctl is-active makiatto; systemctl show -p NRestarts --value makiatto",
            None,
        )?;
        let mut lines = ran.stdout.lines();
        let state = lines.next().unwrap_or("").trim().to_string();
        let restarts: u32 = lines
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        if state == "active" {
            break;
        }
        // Restart=on-failure hides a crash loop behind "activating".
        if state == "failed" || restarts > 0 || Instant::now() > deadline {
            let why = if state == "failed" || restarts > 0 {
                "the makiatto service failed to start".to_string()
            } else {
                format!("the makiatto service is still {state:?} after {limit:?}")
            };
            return Err(MachineError::new(
                host,
                Step::Healthy,
                format!("{why}; its journal ends:\n{}", journal_tail(login)),
                format!(
                    "read `maki machine logs {host}` (journalctl -u makiatto on the host), fix node.toml or the host, and run the command again"
                ),
            ));
        }
        last = state;
        thread::sleep(Duration::from_millis(500));
    }
    loop {
        let answer = remote::call(admin, "status", None).map_err(|e| {
            MachineError::new(
                host,
                Step::Healthy,
                e.to_string(),
                "install OpenSSH's client",
            )
        })?;
        if answer.ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(MachineError::new(
                host,
                Step::Healthy,
                format!(
                    "the service is {last:?} but its admin endpoint {admin} does not answer: {}",
                    answer.stderr.trim()
                ),
                "check that port 2222/tcp is open in the host's firewall and that your key is the one passed to --key",
            ));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// The last lines of the node's journal, for an error message.
pub fn journal_tail(login: &Login) -> String {
    login
        .run("journalctl -u makiatto -n 15 --no-pager -o cat 2>&1", None)
        .map(|r| r.stdout)
        .unwrap_or_default()
}
