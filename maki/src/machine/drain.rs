//! Taking a node out of DNS before a planned stop and putting it back
//! after: `drain` on the node (its own DNS drops it at once, its peers at
//! their next probe, within about 3 s), a pause for answers already handed
//! out, and `node health NAME up` once it is healthy again.

use std::thread;
use std::time::{Duration, Instant};

use super::progress::Progress;
use super::{MachineError, Step};
use crate::profile::{Profile, ProfileNode};
use crate::remote::{self, NodeAddr};

fn admin(node: &ProfileNode) -> Result<NodeAddr, MachineError> {
    NodeAddr::parse(&node.admin).map_err(|e| {
        MachineError::new(
            &node.name,
            Step::Drain,
            e.to_string(),
            "fix the node's admin address in the profile",
        )
    })
}

/// Drains `node` and waits `pause`. A node that cannot be asked (down
/// already, or too old to drain) is marked down on every other node
/// instead.
pub fn out(
    profile: &Profile,
    node: &ProfileNode,
    pause: Duration,
    progress: &Progress,
) -> Result<(), MachineError> {
    let running = progress.start(
        &node.name,
        Step::Drain,
        &format!(
            "out of DNS, then {} s for answers already given",
            pause.as_secs()
        ),
    );
    let answer = remote::call(&admin(node)?, "drain", None).map_err(|e| {
        MachineError::new(
            &node.name,
            Step::Drain,
            e.to_string(),
            "install OpenSSH's client",
        )
    })?;
    if !answer.ok {
        progress.note(
            &node.name,
            &format!(
                "drain: the node did not drain ({}); marking it down on the others",
                answer.stderr.trim()
            ),
        );
        for other in profile.nodes.iter().filter(|n| n.name != node.name) {
            let line = format!("node health {} down", node.name);
            let _ = remote::call(&admin(other)?, &line, None);
        }
    }
    thread::sleep(pause);
    running.done("out of DNS");
    Ok(())
}

/// Puts `node` back into DNS: its own answers now, its peers' once their
/// probes pass (waited for, at most `limit`).
pub fn back(profile: &Profile, node: &ProfileNode, limit: Duration) -> Result<(), MachineError> {
    let line = format!("node health {} up", node.name);
    let answer = remote::call(&admin(node)?, &line, None).map_err(|e| {
        MachineError::new(
            &node.name,
            Step::Drain,
            e.to_string(),
            "install OpenSSH's client",
        )
    })?;
    if !answer.ok {
        return Err(MachineError::new(
            &node.name,
            Step::Drain,
            format!("`{line}` failed: {}", answer.stderr.trim()),
            format!("run `ssh -p 2222 git@<node> {line}` once it answers"),
        ));
    }
    let deadline = Instant::now() + limit;
    for other in profile.nodes.iter().filter(|n| n.name != node.name) {
        let Ok(addr) = admin(other) else { continue };
        loop {
            let sees_up = remote::call(&addr, "status --json", None)
                .ok()
                .filter(|a| a.ok)
                .and_then(|a| serde_json::from_str::<serde_json::Value>(a.stdout.trim()).ok())
                .is_some_and(|v| peer_healthy(&v, &node.name) != Some(false));
            if sees_up || Instant::now() > deadline {
                break;
            }
            thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(())
}

/// How the node whose `status --json` is `view` sees `peer`.
fn peer_healthy(view: &serde_json::Value, peer: &str) -> Option<bool> {
    let own = view["cluster"].as_array()?.first()?;
    own["peers"]
        .as_array()?
        .iter()
        .find(|p| p["name"].as_str() == Some(peer))
        .and_then(|p| p["healthy"].as_bool())
}
