//! `maki`: the operator CLI. It runs on the operator's machine (Linux or
//! macOS) and reaches nodes only through the system `ssh`; it parses
//! arguments and calls one module per subcommand.

mod admin;
mod init;
mod remote;
mod wasm;

use std::path::PathBuf;
use std::process::ExitCode;

use admin::Request;
use clap::{Parser, Subcommand};
use remote::NodeAddr;

#[derive(Parser)]
#[command(name = "maki", version, about = "Operate a Makiatto cluster")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write the starter site into DIR (default: the current directory).
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// DNS delegation for the cluster's domains.
    Dns {
        #[command(subcommand)]
        command: DnsCmd,
    },
    /// What a node serves.
    Status {
        #[arg(long)]
        json: bool,
        /// The node, `[user@]host[:port]` (default: MAKI_NODE, then the
        /// profile file ~/.config/maki/node).
        #[arg(long)]
        node: Option<String>,
    },
    /// The kept revisions of a domain, newest first (* = active).
    Deploys {
        domain: String,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        node: Option<String>,
    },
    /// Switch a domain to an older revision (default: the previous one).
    Rollback {
        domain: String,
        revision: Option<String>,
        #[arg(long)]
        node: Option<String>,
    },
    /// Manage the keys allowed to push and run admin commands.
    Key {
        #[command(subcommand)]
        action: KeyCmd,
        #[arg(long, global = true)]
        node: Option<String>,
    },
    /// WebAssembly functions and transforms.
    Wasm {
        #[command(subcommand)]
        command: WasmCmd,
    },
}

#[derive(Subcommand)]
enum WasmCmd {
    /// Write the WIT worlds for functions and transforms into DIR.
    Fetch {
        #[arg(default_value = "wit")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DnsCmd {
    /// Print the registrar steps (glue, name servers, checks) for a domain,
    /// or for every domain the node serves.
    Setup {
        domain: Option<String>,
        #[arg(long)]
        node: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// List authorised keys.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Authorise the public key in FILE (e.g. ~/.ssh/id_ed25519.pub).
    Add { file: PathBuf },
    /// Remove the key with this fingerprint (as `maki key list` shows it).
    Remove { fingerprint: String },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Dns {
            command: DnsCmd::Setup { domain, node },
        } => remote(
            node,
            Request::DnsSetup {
                domain: domain.as_deref(),
            },
        ),
        Cmd::Init { dir } => match init::write_template(&dir) {
            Ok(files) => {
                for file in files {
                    println!("wrote {}", file.display());
                }
                println!(
                    "next: edit makiatto.toml and public/, then preview with\n  makiatto dev --site {}",
                    dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        Cmd::Status { json, node } => remote(node, Request::Status { json }),
        Cmd::Deploys { domain, json, node } => remote(
            node,
            Request::Deploys {
                domain: &domain,
                json,
            },
        ),
        Cmd::Rollback {
            domain,
            revision,
            node,
        } => remote(
            node,
            Request::Rollback {
                domain: &domain,
                revision: revision.as_deref(),
            },
        ),
        Cmd::Wasm {
            command: WasmCmd::Fetch { dir },
        } => match wasm::fetch(&dir) {
            Ok(files) => {
                for file in files {
                    println!("wrote {}", file.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e.to_string()),
        },
        Cmd::Key { action, node } => match action {
            KeyCmd::List { json } => remote(node, Request::KeyList { json }),
            KeyCmd::Add { file } => remote(node, Request::KeyAdd { file: &file }),
            KeyCmd::Remove { fingerprint } => remote(
                node,
                Request::KeyRemove {
                    fingerprint: &fingerprint,
                },
            ),
        },
    }
}

/// Runs `request` on the node and prints its answer.
fn remote(node: Option<String>, request: Request<'_>) -> ExitCode {
    let node = match NodeAddr::resolve(node.as_deref()) {
        Ok(node) => node,
        Err(e) => return fail(&e.to_string()),
    };
    match admin::run(&node, request) {
        Ok(answer) => {
            print!("{}", answer.stdout);
            eprint!("{}", answer.stderr);
            if answer.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
