//! Parsing and running one admin command.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::services::Services;

/// An admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `status [--json]`: the sites this node serves.
    Status { json: bool },
    /// `deploys <domain> [--json]`: kept revisions, newest first.
    Deploys { domain: String, json: bool },
    /// `rollback <domain> [<revision>]`.
    Rollback {
        domain: String,
        revision: Option<String>,
    },
    /// `deploy <dir>`: deploy a directory on this machine (local socket only).
    Deploy { dir: PathBuf },
    /// `node health <name> up|down`: whether DNS sends visitors to a node
    /// (the mesh's health checks will set this too).
    NodeHealth { name: String, healthy: bool },
    /// `keys list [--json]`: authorised public keys.
    KeysList { json: bool },
    /// `keys add [<key line>]`: authorise a key (over SSH, read from stdin
    /// when not given inline).
    KeysAdd { key: String },
    /// `keys remove <fingerprint>`.
    KeysRemove { fingerprint: String },
    /// `repos list [--json]`: pushed repositories and their refs.
    ReposList { json: bool },
    /// `join-token`: a one-time token a new node joins the cluster with.
    JoinToken,
    /// `node remove <name>`: tombstones a node; peers drop it, DNS stops
    /// answering with it.
    NodeRemove { name: String },
}

/// Why a command line was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// The result of a command: text for the operator and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub text: String,
}

const USAGE: &str = "commands: status [--json] | deploys <domain> [--json] | rollback <domain> [<revision>] | deploy <dir> | node health <name> up|down | keys list [--json] | keys add [<key>] | keys remove <fingerprint> | repos list [--json] | join-token | node remove <name>";

impl Command {
    /// Parses whitespace-separated words.
    pub fn parse(line: &str) -> Result<Command, ParseError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let json = words.contains(&"--json");
        let args: Vec<&str> = words.iter().copied().filter(|w| *w != "--json").collect();
        match args.as_slice() {
            ["status"] => Ok(Command::Status { json }),
            ["deploys", domain] => Ok(Command::Deploys {
                domain: domain.to_ascii_lowercase(),
                json,
            }),
            ["rollback", domain] => Ok(Command::Rollback {
                domain: domain.to_ascii_lowercase(),
                revision: None,
            }),
            ["rollback", domain, revision] => Ok(Command::Rollback {
                domain: domain.to_ascii_lowercase(),
                revision: Some(revision.to_string()),
            }),
            ["deploy", dir] => Ok(Command::Deploy {
                dir: PathBuf::from(dir),
            }),
            ["node", "health", name, state] => {
                let healthy = match *state {
                    "up" => true,
                    "down" => false,
                    other => {
                        return Err(ParseError(format!(
                            "node health takes up or down, not {other:?}"
                        )));
                    }
                };
                Ok(Command::NodeHealth {
                    name: name.to_ascii_lowercase(),
                    healthy,
                })
            }
            ["keys"] | ["keys", "list"] => Ok(Command::KeysList { json }),
            ["keys", "add", key @ ..] => Ok(Command::KeysAdd { key: key.join(" ") }),
            ["keys", "remove", fingerprint] => Ok(Command::KeysRemove {
                fingerprint: fingerprint.to_string(),
            }),
            ["repos"] | ["repos", "list"] => Ok(Command::ReposList { json }),
            ["join-token"] => Ok(Command::JoinToken),
            ["node", "remove", name] => Ok(Command::NodeRemove {
                name: name.to_ascii_lowercase(),
            }),
            [] => Err(ParseError(format!("no command given; {USAGE}"))),
            [other, ..] => Err(ParseError(format!(
                "cannot understand {other:?} with these arguments; {USAGE}"
            ))),
        }
    }
}

/// Runs `command` (blocking: call from a blocking thread).
pub fn execute(services: &Services, command: Command) -> Outcome {
    match run(services, command) {
        Ok(text) => Outcome { ok: true, text },
        Err(e) => Outcome {
            ok: false,
            text: format!("error: {e}\n"),
        },
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Deploy(#[from] crate::deploy::DeployError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Key(#[from] crate::git::keys::KeyError),
    #[error("no authorised key has fingerprint {0}; `keys list` shows them")]
    NoSuchKey(String),
}

fn run(services: &Services, command: Command) -> Result<String, RunError> {
    let deployer = &services.deployer;
    let mut out = String::new();
    match command {
        Command::Status { json } => {
            let sites = services.live.sites.load().sites();
            if json {
                let mut items: Vec<String> = Vec::new();
                for s in &sites {
                    let cert = services.cert_status(&s.domain)?;
                    items.push(format!(
                        "{{\"domain\":{},\"revision\":\"{}\",\"files\":{},\"certificate\":{}}}",
                        json_string(&s.domain),
                        s.root.to_hex(),
                        s.files.len(),
                        cert.json(json_string)
                    ));
                }
                let wasm = deployer.wasm_stats();
                let cluster = match services.cluster_views() {
                    Some(views) => {
                        format!(",\"cluster\":{}", crate::mesh::status::views_json(&views))
                    }
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "{{\"sites\":[{}],\"wasm\":{{\"function_calls\":{},\"transform_runs\":{}}}{cluster}}}",
                    items.join(","),
                    wasm.function_calls,
                    wasm.transform_runs
                );
            } else {
                for s in &sites {
                    let cert = services.cert_status(&s.domain)?;
                    let _ = writeln!(
                        out,
                        "{}  {}  {} files  {}",
                        s.domain,
                        &s.root.to_hex()[..12],
                        s.files.len(),
                        cert.line()
                    );
                }
                if let Some(views) = services.cluster_views() {
                    let _ = write!(out, "\n{}", crate::mesh::status::views_table(&views));
                }
            }
        }
        Command::Deploys { domain, json } => {
            let revisions = deployer.history(&domain)?;
            if revisions.is_empty() {
                return Err(crate::deploy::DeployError::UnknownDomain(domain).into());
            }
            if json {
                let items: Vec<String> = revisions
                    .iter()
                    .map(|r| {
                        format!(
                            "{{\"revision\":\"{}\",\"source\":{},\"commit\":{},\"branch\":{},\"created_ms\":{},\"active\":{}}}",
                            r.root,
                            json_string(&r.source),
                            if is_commit_id(&r.source) { json_string(&r.source) } else { "null".into() },
                            r.branch.as_deref().map_or("null".into(), json_string),
                            r.created_ms,
                            r.active
                        )
                    })
                    .collect();
                let _ = writeln!(out, "[{}]", items.join(","));
            } else {
                for r in &revisions {
                    let source = match &r.branch {
                        Some(branch) if is_commit_id(&r.source) => {
                            format!("{branch} {}", &r.source[..12])
                        }
                        _ => r.source.clone(),
                    };
                    let _ = writeln!(
                        out,
                        "{} {}  {}  {}",
                        if r.active { "*" } else { " " },
                        &r.root[..12.min(r.root.len())],
                        httpdate::fmt_http_date(
                            std::time::UNIX_EPOCH
                                + std::time::Duration::from_millis(r.created_ms.max(0) as u64)
                        ),
                        source
                    );
                }
            }
        }
        Command::Rollback { domain, revision } => {
            let row = deployer.rollback(&domain, revision.as_deref())?;
            let _ = writeln!(
                out,
                "{domain} now serves revision {}",
                &row.root[..12.min(row.root.len())]
            );
        }
        Command::NodeHealth { name, healthy } => {
            if !services.set_node_health(&name, healthy)? {
                return Err(crate::deploy::DeployError::UnknownNode(name).into());
            }
            let effect = if healthy {
                "DNS sends it the visitors nearest to it again"
            } else {
                "DNS sends its visitors to the next nearest healthy node"
            };
            let state = if healthy { "up" } else { "down" };
            let _ = writeln!(out, "node {name} is {state}: {effect}");
        }
        Command::Deploy { dir } => {
            for d in deployer.deploy_dir(&dir, crate::dev::DEV_OWNER)? {
                let _ = writeln!(
                    out,
                    "{} now serves revision {} ({} files)",
                    d.domain,
                    &d.root[..12],
                    d.files
                );
            }
        }
        Command::KeysList { json } => {
            let keys = services.store.keys()?;
            if json {
                let items: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        format!(
                            "{{\"fingerprint\":{},\"key\":{},\"comment\":{}}}",
                            json_string(&k.fingerprint),
                            json_string(&k.public_key),
                            json_string(&k.comment)
                        )
                    })
                    .collect();
                let _ = writeln!(out, "[{}]", items.join(","));
            } else {
                for k in &keys {
                    let _ = writeln!(out, "{}  {}", k.fingerprint, k.comment);
                }
            }
        }
        Command::KeysAdd { key } => {
            let row = crate::git::keys::parse_line(&key)?;
            services.store.add_key(&row)?;
            let _ = writeln!(out, "authorised {}  {}", row.fingerprint, row.comment);
        }
        Command::KeysRemove { fingerprint } => {
            if !services.store.remove_key(&fingerprint)? {
                return Err(RunError::NoSuchKey(fingerprint));
            }
            let _ = writeln!(out, "removed {fingerprint}");
        }
        Command::ReposList { json } => {
            let repos = services.store.repos()?;
            if json {
                let items: Vec<String> = repos
                    .iter()
                    .map(|r| {
                        let refs: Vec<String> = r
                            .refs
                            .iter()
                            .map(|(n, t)| format!("{}:{}", json_string(n), json_string(t)))
                            .collect();
                        format!(
                            "{{\"name\":{},\"refs\":{{{}}}}}",
                            json_string(&r.name),
                            refs.join(",")
                        )
                    })
                    .collect();
                let _ = writeln!(out, "[{}]", items.join(","));
            } else {
                for r in &repos {
                    let _ = writeln!(out, "{}", r.name);
                    for (name, target) in &r.refs {
                        let _ = writeln!(out, "  {name}  {}", &target[..12.min(target.len())]);
                    }
                }
            }
        }
        Command::JoinToken => {
            let token = crate::mesh::join::new_token(&services.store)?;
            let _ = writeln!(out, "{token}");
            let _ = writeln!(
                out,
                "# valid once, for an hour: in the new node's node.toml, [cluster] join = \"<this node's mesh RPC address>\" and join_token = \"{token}\""
            );
        }
        Command::NodeRemove { name } => {
            if !services.store.remove_node(&name)? {
                return Err(crate::deploy::DeployError::UnknownNode(name).into());
            }
            let _ = writeln!(
                out,
                "node {name} removed: peers drop it and DNS stops answering with it"
            );
        }
    }
    Ok(out)
}

/// Whether a revision's source is a git commit id (40 hex digits).
fn is_commit_id(source: &str) -> bool {
    source.len() == 40 && source.bytes().all(|b| b.is_ascii_hexdigit())
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            Command::parse("rollback Example.com abc123").unwrap(),
            Command::Rollback {
                domain: "example.com".into(),
                revision: Some("abc123".into())
            }
        );
        assert_eq!(
            Command::parse("deploys a.test --json").unwrap(),
            Command::Deploys {
                domain: "a.test".into(),
                json: true
            }
        );
        assert_eq!(
            Command::parse("node health London down").unwrap(),
            Command::NodeHealth {
                name: "london".into(),
                healthy: false
            }
        );
        assert!(Command::parse("node health london sideways").is_err());
        assert!(Command::parse("rm -rf /").is_err());
        assert!(Command::parse("").is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
