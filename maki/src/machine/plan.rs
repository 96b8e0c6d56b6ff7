//! `--dry-run`: what `init` or `add` would do on a host that passed the
//! probe, step by step, with the node.toml it would write. Nothing on the
//! host changes.

use super::node_toml::{Join, NodeSpec};
use super::paths;
use super::probe::Probe;
use super::upload::Binary;

/// The plan's lines.
pub fn provision(
    probe: &Probe,
    binary: &Binary,
    spec: &NodeSpec,
    via: Option<&str>,
    geoip: bool,
    free_stub: bool,
) -> Vec<String> {
    let mut plan = Vec::new();
    if free_stub && probe.resolved == "active" {
        plan.push("turn systemd-resolved's stub listener off (DNSStubListener=no)".to_string());
    }
    plan.push("create the makiatto system user and /etc/makiatto (if missing)".to_string());
    if probe.has_binary(&binary.sha256) {
        plan.push(format!(
            "keep {} (already sha256 {})",
            paths::BINARY,
            binary.short()
        ));
    } else {
        plan.push(format!(
            "upload {} to {} (sha256 {}, checked on the host)",
            binary.path.display(),
            paths::BINARY,
            binary.short()
        ));
    }
    if geoip {
        plan.push(format!("upload the GeoIP database to {}", paths::GEOIP));
    }
    if spec.coordinates.is_none() && spec.geoip {
        plan.push("locate the node with `makiatto locate` on its public address".to_string());
    }
    let mut shown = spec.clone();
    if let Some(via) = via {
        if probe.config {
            plan.push("keep the join its node.toml already has".to_string());
        } else {
            plan.push(format!("fetch a one-time join token from {via}"));
        }
        shown.join = Some(Join {
            address: format!("<{via}'s join address>"),
            token: "<one-time token>".to_string(),
        });
    }
    plan.push(format!("write {} (if it differs):", paths::CONFIG));
    plan.extend(shown.render().lines().map(|l| format!("    {l}")));
    plan.push(format!(
        "write {} (packaging/makiatto.service)",
        paths::UNIT
    ));
    plan.push("systemctl enable makiatto; start it (restart if anything changed)".to_string());
    plan.push("wait until systemd reports it ready and it answers `status` over SSH".to_string());
    plan.push("record the node in the cluster profile".to_string());
    plan
}
