//! `maki machine list`: every node of the profile with its addresses,
//! version and build (the binary's sha256), health, uptime and the
//! revision it serves per domain. Each node is asked twice: its host over
//! root SSH (systemd's view, the binary) and its admin endpoint (`status
//! --json`, what it serves and how it sees its peers).

use serde_json::Value;

use super::login::Login;
use crate::profile::{Profile, ProfileNode};
use crate::remote::{self, NodeAddr};

/// What the host says.
const SCRIPT: &str = "systemctl is-active makiatto; \
  /usr/bin/makiatto --version 2>/dev/null | head -n1 || echo unknown; \
  sha256sum /usr/bin/makiatto 2>/dev/null | cut -c1-12 || echo none; \
  t=$(systemctl show -p ActiveEnterTimestampMonotonic --value makiatto); \
  now=$(cut -d' ' -f1 /proc/uptime | cut -d. -f1); \
  if [ \"${t:-0}\" -gt 0 ]; then echo $((now - t / 1000000)); else echo -; fi";

/// One node's line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub name: String,
    pub admin: String,
    pub machine: Option<String>,
    /// `systemctl is-active makiatto`, or why the host was not reached.
    pub service: String,
    pub version: Option<String>,
    /// First 12 hex digits of the binary's sha256.
    pub build: Option<String>,
    pub uptime_secs: Option<u64>,
    /// Active, answering `status`, and marked healthy by every peer.
    pub healthy: bool,
    /// Why not, when not.
    pub problem: Option<String>,
    /// Served domain → revision (12 hex digits).
    pub sites: Vec<(String, String)>,
}

/// Asks every node of `profile`.
pub fn list(profile: &Profile) -> Vec<Entry> {
    let seen: Vec<Seen> = profile.nodes.iter().map(entry).collect();
    // A node a peer marked down is not healthy, whatever it says itself.
    let down: Vec<(String, String)> = seen
        .iter()
        .flat_map(|s| {
            s.peer_health
                .iter()
                .filter(|(_, healthy)| !healthy)
                .map(|(peer, _)| (peer.clone(), s.entry.name.clone()))
        })
        .collect();
    seen.into_iter()
        .map(|mut s| {
            if let Some((_, by)) = down.iter().find(|(peer, _)| *peer == s.entry.name)
                && s.entry.healthy
            {
                s.entry.healthy = false;
                s.entry.problem = Some(format!("marked down by {by}"));
            }
            s.entry
        })
        .collect()
}

/// An entry and how that node sees its peers.
struct Seen {
    entry: Entry,
    peer_health: Vec<(String, bool)>,
}

fn entry(node: &ProfileNode) -> Seen {
    let mut entry = Entry {
        name: node.name.clone(),
        admin: node.admin.clone(),
        machine: node.machine.clone(),
        service: "unknown".into(),
        version: None,
        build: None,
        uptime_secs: None,
        healthy: false,
        problem: None,
        sites: Vec::new(),
    };
    let mut problems = Vec::new();
    match node.machine.as_deref().and_then(Login::parse) {
        Some(login) => match login.run(SCRIPT, None) {
            Ok(ran) if !ran.unreachable => {
                let mut lines = ran.stdout.lines().map(str::trim);
                entry.service = lines.next().unwrap_or("unknown").to_string();
                entry.version = lines.next().map(str::to_string);
                entry.build = lines.next().filter(|b| b.len() == 12).map(str::to_string);
                entry.uptime_secs = lines.next().and_then(|u| u.parse().ok());
                if entry.service != "active" {
                    problems.push(format!("service {}", entry.service));
                }
            }
            Ok(ran) => {
                entry.service = "unreachable".into();
                problems.push(format!("host not reached: {}", ran.why()));
            }
            Err(e) => problems.push(format!("cannot run ssh: {e}")),
        },
        None => entry.service = "not provisioned by maki".into(),
    }
    let mut peer_health = Vec::new();
    match NodeAddr::parse(&node.admin).map(|a| remote::call(&a, "status --json", None)) {
        Ok(Ok(answer)) if answer.ok => {
            let view: Value = serde_json::from_str(answer.stdout.trim()).unwrap_or(Value::Null);
            for site in view["sites"].as_array().into_iter().flatten() {
                if let (Some(d), Some(r)) = (site["domain"].as_str(), site["revision"].as_str()) {
                    entry
                        .sites
                        .push((d.to_string(), r.chars().take(12).collect()));
                }
            }
            // Its own view is the first of the cluster's.
            if let Some(own) = view["cluster"].as_array().and_then(|c| c.first()) {
                for peer in own["view"]["peers"]
                    .as_array()
                    .or(own["peers"].as_array())
                    .into_iter()
                    .flatten()
                {
                    if let (Some(n), Some(h)) = (peer["name"].as_str(), peer["healthy"].as_bool()) {
                        peer_health.push((n.to_string(), h));
                    }
                }
            }
        }
        Ok(Ok(answer)) => problems.push(format!("admin endpoint: {}", answer.stderr.trim())),
        Ok(Err(e)) => problems.push(e.to_string()),
        Err(e) => problems.push(e.to_string()),
    }
    entry.healthy = problems.is_empty() && entry.service == "active";
    if !problems.is_empty() {
        entry.problem = Some(problems.join("; "));
    }
    Seen { entry, peer_health }
}

/// The text table.
pub fn table(entries: &[Entry]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "ADMIN".to_string(),
        "VERSION".to_string(),
        "BUILD".to_string(),
        "HEALTH".to_string(),
        "UPTIME".to_string(),
        "SERVES".to_string(),
    ]];
    for e in entries {
        let health = if e.healthy {
            "healthy".to_string()
        } else {
            format!("down ({})", e.problem.as_deref().unwrap_or("unknown"))
        };
        let sites = if e.sites.is_empty() {
            "-".to_string()
        } else {
            e.sites
                .iter()
                .map(|(d, r)| format!("{d}@{r}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        rows.push([
            e.name.clone(),
            e.admin.clone(),
            e.version.clone().unwrap_or("-".into()),
            e.build.clone().unwrap_or("-".into()),
            health,
            e.uptime_secs.map_or("-".into(), uptime),
            sites,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line += cell;
            } else {
                line += &format!("{cell:<w$}  ", w = widths[c]);
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
