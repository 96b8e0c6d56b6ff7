//! Parsing and running one admin command.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use crate::deploy::Deployer;

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

const USAGE: &str = "commands: status [--json] | deploys <domain> [--json] | rollback <domain> [<revision>] | deploy <dir> | node health <name> up|down";

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
            [] => Err(ParseError(format!("no command given; {USAGE}"))),
            [other, ..] => Err(ParseError(format!(
                "cannot understand {other:?} with these arguments; {USAGE}"
            ))),
        }
    }
}

/// Runs `command` (blocking: call from a blocking thread).
pub fn execute(deployer: &Arc<Deployer>, command: Command) -> Outcome {
    match run(deployer, command) {
        Ok(text) => Outcome { ok: true, text },
        Err(e) => Outcome {
            ok: false,
            text: format!("error: {e}\n"),
        },
    }
}

fn run(deployer: &Arc<Deployer>, command: Command) -> Result<String, crate::deploy::DeployError> {
    let mut out = String::new();
    match command {
        Command::Status { json } => {
            let sites = deployer.sites().load().sites();
            if json {
                let items: Vec<String> = sites
                    .iter()
                    .map(|s| {
                        format!(
                            "{{\"domain\":{},\"revision\":\"{}\",\"files\":{}}}",
                            json_string(&s.domain),
                            s.root.to_hex(),
                            s.files.len()
                        )
                    })
                    .collect();
                let _ = writeln!(out, "{{\"sites\":[{}]}}", items.join(","));
            } else {
                for s in &sites {
                    let _ = writeln!(
                        out,
                        "{}  {}  {} files",
                        s.domain,
                        &s.root.to_hex()[..12],
                        s.files.len()
                    );
                }
            }
        }
        Command::Deploys { domain, json } => {
            let revisions = deployer.history(&domain)?;
            if revisions.is_empty() {
                return Err(crate::deploy::DeployError::UnknownDomain(domain));
            }
            if json {
                let items: Vec<String> = revisions
                    .iter()
                    .map(|r| {
                        format!(
                            "{{\"revision\":\"{}\",\"source\":{},\"branch\":{},\"created_ms\":{},\"active\":{}}}",
                            r.root,
                            json_string(&r.source),
                            r.branch.as_deref().map_or("null".into(), json_string),
                            r.created_ms,
                            r.active
                        )
                    })
                    .collect();
                let _ = writeln!(out, "[{}]", items.join(","));
            } else {
                for r in &revisions {
                    let _ = writeln!(
                        out,
                        "{} {}  {}  {}",
                        if r.active { "*" } else { " " },
                        &r.root[..12.min(r.root.len())],
                        httpdate::fmt_http_date(
                            std::time::UNIX_EPOCH
                                + std::time::Duration::from_millis(r.created_ms.max(0) as u64)
                        ),
                        r.source
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
            if !deployer.store().set_node_health(&name, healthy)? {
                return Err(crate::deploy::DeployError::UnknownNode(name));
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
    }
    Ok(out)
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
