//! `maki`: the operator CLI. It runs on the operator's machine (Linux or
//! macOS) and reaches nodes only through the system `ssh`; it parses
//! arguments and calls the `maki` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use maki::admin::{self, Request};
use maki::profile::{Profile, ProfileNode};
use maki::target::Targets;
use maki::{init, wasm};

#[derive(Parser)]
#[command(name = "maki", version, about = "Operate a Makiatto cluster")]
struct Cli {
    /// The cluster profile to use (default: MAKI_PROFILE, then `default`),
    /// stored as ~/.config/maki/clusters/NAME.toml ($XDG_CONFIG_HOME if
    /// set). `--node` and MAKI_NODE take precedence.
    #[arg(long, global = true)]
    profile: Option<String>,
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
        /// cluster profile's nodes, in order).
        #[arg(long)]
        node: Option<String>,
    },
    /// Requests, bytes and server errors per domain and per node over the
    /// last minutes, gathered from every node of the cluster.
    Stats {
        /// Minutes summed, the current one included (1 to 16).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=16))]
        minutes: u64,
        #[arg(long)]
        json: bool,
        /// The node to ask, `[user@]host[:port]` (default: MAKI_NODE, then
        /// the cluster profile's nodes, in order); it gathers the others'.
        #[arg(long)]
        node: Option<String>,
    },
    /// Start a check of every object a node stores against its blake3
    /// name, repairing damaged ones from peers; `maki status` shows the
    /// result.
    Scrub {
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
    /// The cluster profile: which nodes `maki` talks to without --node.
    Profile {
        #[command(subcommand)]
        command: ProfileCmd,
    },
    /// WebAssembly functions and transforms.
    Wasm {
        #[command(subcommand)]
        command: WasmCmd,
    },
}

#[derive(Subcommand)]
enum ProfileCmd {
    /// Print the profile's file and nodes.
    Show,
    /// Add a node to the profile (created if missing), or replace the
    /// node of that name.
    Add {
        /// The node's name (node.toml's `name`).
        name: String,
        /// Its git and admin SSH endpoint, `[user@]host[:port]`.
        admin: String,
        /// The host's own SSH login, e.g. root@203.0.113.1.
        #[arg(long)]
        machine: Option<String>,
    },
    /// Remove a node from the profile.
    Remove { name: String },
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
    let cli = Cli::parse();
    let profile = cli.profile.as_deref();
    let remote = |node: Option<String>, request| remote(node.as_deref(), profile, request);
    match cli.command {
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
        Cmd::Stats {
            minutes,
            json,
            node,
        } => remote(node, Request::Stats { minutes, json }),
        Cmd::Scrub { node } => remote(node, Request::Scrub),
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
        Cmd::Profile { command } => profile_cmd(profile, command),
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

/// `maki profile ...`: reads or edits the chosen profile.
fn profile_cmd(flag: Option<&str>, command: ProfileCmd) -> ExitCode {
    let name = Profile::chosen_name(flag);
    let result = match command {
        ProfileCmd::Show => Profile::load(&name).map(|profile| {
            println!("profile {} ({})", profile.name, profile.path.display());
            for node in &profile.nodes {
                match &node.machine {
                    Some(machine) => println!("{}  {}  machine {machine}", node.name, node.admin),
                    None => println!("{}  {}", node.name, node.admin),
                }
            }
        }),
        ProfileCmd::Add {
            name: node,
            admin,
            machine,
        } => Profile::load_or_new(&name).and_then(|mut profile| {
            profile.add_node(ProfileNode {
                name: node,
                admin,
                machine,
            })?;
            profile.save()?;
            println!("wrote {}", profile.path.display());
            Ok(())
        }),
        ProfileCmd::Remove { name: node } => Profile::load(&name).and_then(|mut profile| {
            if profile.remove_node(&node) {
                profile.save()?;
                println!("wrote {}", profile.path.display());
            } else {
                println!("no node {node:?} in {}", profile.path.display());
            }
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// Runs `request` on the chosen node and prints its answer.
fn remote(node: Option<&str>, profile: Option<&str>, request: Request<'_>) -> ExitCode {
    let targets = match Targets::resolve(node, profile) {
        Ok(targets) => targets,
        Err(e) => return fail(&e.to_string()),
    };
    match admin::run(&targets, request) {
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
