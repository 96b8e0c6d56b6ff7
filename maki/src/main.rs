//! `maki`: the operator CLI. It runs on the operator's machine (Linux or
//! macOS) and reaches nodes only through the system `ssh`; it parses
//! arguments and calls the `maki` library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use maki::admin::{self, Request};
use maki::profile::{Profile, ProfileNode};
use maki::target::Targets;
use maki::{init, machine, wasm};

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
    /// Show, set or clear the password that guards a domain's previews
    /// and permalinks on every node. `set` reads it from a prompt without
    /// echo, or from standard input when piped; never from arguments.
    PreviewPassword {
        domain: String,
        #[arg(value_parser = ["show", "set", "clear"], default_value = "show")]
        action: String,
        /// Show as JSON.
        #[arg(long)]
        json: bool,
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
    /// Provision, upgrade and remove the cluster's servers over SSH.
    Machine {
        #[command(subcommand)]
        command: MachineCmd,
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

/// What `init` and `add` share.
#[derive(clap::Args)]
struct ProvisionArgs {
    /// The node's name: lowercase letters, digits and -, e.g. london.
    name: String,
    /// The host's SSH login, root@HOST[:PORT].
    login: String,
    /// The makiatto binary to install (default: the one beside maki).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Your public key, authorised for git push and admin commands
    /// (default: ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The public IPv4 address DNS gives out (default: the address in the
    /// login; behind 1:1 NAT it is on no interface, and that is fine).
    #[arg(long)]
    ipv4: Option<std::net::IpAddr>,
    /// A public IPv6 address to give out as well.
    #[arg(long)]
    ipv6: Option<std::net::IpAddr>,
    /// Latitude in decimal degrees (with --lon; default: from the GeoIP
    /// database).
    #[arg(long, allow_hyphen_values = true)]
    lat: Option<f64>,
    /// Longitude in decimal degrees.
    #[arg(long, allow_hyphen_values = true)]
    lon: Option<f64>,
    /// Upload this MMDB city database (GeoLite2-City.mmdb): DNS locates
    /// visitors with it, and the node is placed by it.
    #[arg(long, value_name = "FILE")]
    geoip_db: Option<PathBuf>,
    /// The mesh's IPv4 prefix (default 10.88.0.0/16); the same on every node.
    #[arg(long, value_name = "CIDR")]
    mesh_prefix_v4: Option<String>,
    /// The mesh's IPv6 prefix (default fd6d:616b:6961::/64).
    #[arg(long, value_name = "CIDR")]
    mesh_prefix_v6: Option<String>,
    /// Turn systemd-resolved's stub listener off when it holds port 53.
    #[arg(long)]
    disable_stub_resolver: bool,
    /// Print what would be done and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds the node may take to be healthy.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum MachineCmd {
    /// Provision the first node of a cluster on a server.
    Init {
        #[command(flatten)]
        args: ProvisionArgs,
    },
    /// Provision another node, joined through one already in the cluster.
    Add {
        #[command(flatten)]
        args: ProvisionArgs,
        /// The node to join through (default: the profile's first).
        #[arg(long)]
        via: Option<String>,
    },
    /// Every node: addresses, version, build, health, uptime, revisions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Install a new makiatto binary, one node at a time.
    Upgrade {
        /// The nodes to upgrade (or --all).
        names: Vec<String>,
        #[arg(long, conflicts_with = "names")]
        all: bool,
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// Seconds between taking a node out of DNS and stopping it (raise
        /// it to your DNS TTL, 60 by default, for resolvers' caches).
        #[arg(long, default_value_t = 5)]
        drain_secs: u64,
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
        #[arg(long)]
        json: bool,
    },
    /// Restart a node's service (out of DNS meanwhile).
    Restart {
        name: String,
        #[arg(long, default_value_t = 5)]
        drain_secs: u64,
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
        #[arg(long)]
        json: bool,
    },
    /// Take a node out of DNS and of the cluster, and stop its service.
    Remove {
        name: String,
        /// Also delete its data, config, binary, unit and user.
        #[arg(long)]
        purge: bool,
        #[arg(long, default_value_t = 5)]
        drain_secs: u64,
        #[arg(long)]
        json: bool,
    },
    /// A node's journal.
    Logs {
        name: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: u32,
        /// One JSON object per journal entry (journalctl -o json).
        #[arg(long)]
        json: bool,
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
        Cmd::PreviewPassword {
            domain,
            action,
            json,
            node,
        } => {
            let action = match action.as_str() {
                "set" => {
                    match maki::password::read_password(&format!("the previews of {domain}")) {
                        Ok(password) => admin::PasswordAction::Set(password),
                        Err(e) => return fail(&e.to_string()),
                    }
                }
                "clear" => admin::PasswordAction::Clear,
                _ => admin::PasswordAction::Show,
            };
            remote(
                node,
                Request::PreviewPassword {
                    domain: &domain,
                    action,
                    json,
                },
            )
        }
        Cmd::Profile { command } => profile_cmd(profile, command),
        Cmd::Machine { command } => machine_cmd(profile, command),
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

/// `maki machine ...`.
fn machine_cmd(profile: Option<&str>, command: MachineCmd) -> ExitCode {
    use machine::MachineError;
    use std::time::Duration;
    let progress = machine::progress::Progress::default();
    let load = || {
        Profile::load(&Profile::chosen_name(profile)).map_err(|e| {
            MachineError::new(
                "-",
                machine::Step::Profile,
                e.to_string(),
                "provision a node with `maki machine init`, or pass --profile",
            )
        })
    };
    let binary = |given: Option<PathBuf>| -> Result<machine::upload::Binary, MachineError> {
        machine::upload::Binary::locate(given.as_deref())
            .and_then(|p| machine::upload::Binary::read(&p))
            .map_err(|e| {
                MachineError::new(
                    "-",
                    machine::Step::Upload,
                    e,
                    "pass --binary with a Linux build of makiatto",
                )
            })
    };
    let provision = |role, args: ProvisionArgs, via: Option<String>| {
        let request = machine::provision::Request {
            name: args.name,
            login: args.login,
            profile: profile.map(str::to_string),
            binary: args.binary,
            key: args.key,
            ipv4: args.ipv4,
            ipv6: args.ipv6,
            lat: args.lat,
            lon: args.lon,
            geoip_db: args.geoip_db,
            mesh_prefix_v4: args.mesh_prefix_v4,
            mesh_prefix_v6: args.mesh_prefix_v6,
            disable_stub_resolver: args.disable_stub_resolver,
            dry_run: args.dry_run,
            wait: Duration::from_secs(args.wait_secs),
            via,
        };
        let result = machine::provision::provision(role, &request, &progress);
        answer(args.json, result, |r| {
            if !r.plan.is_empty() {
                let mut text = format!("plan for {} ({}), nothing changed:\n", r.name, r.machine);
                for line in &r.plan {
                    text += &format!("  {line}\n");
                }
                return text;
            }
            let changed = if r.changed.is_empty() {
                "nothing changed".to_string()
            } else {
                format!("changed: {}", r.changed.join(", "))
            };
            format!(
                "{} is healthy: git push and admin at {} ({}); {changed}\n",
                r.name, r.admin, r.addressing
            )
        })
    };
    match command {
        MachineCmd::Init { args } => provision(machine::provision::Role::First, args, None),
        MachineCmd::Add { args, via } => provision(machine::provision::Role::Join, args, via),
        MachineCmd::List { json } => {
            let result = load().map(|p| machine::list::list(&p));
            answer(json, result, |entries| machine::list::table(entries))
        }
        MachineCmd::Upgrade {
            names,
            all,
            binary: path,
            drain_secs,
            wait_secs,
            json,
        } => {
            if names.is_empty() && !all {
                return fail("name the nodes to upgrade, or pass --all");
            }
            let result = load().and_then(|p| {
                let opts = machine::upgrade::Options {
                    binary: binary(path)?,
                    drain: Duration::from_secs(drain_secs),
                    wait: Duration::from_secs(wait_secs),
                };
                machine::upgrade::upgrade(&p, &names, &opts, &progress)
            });
            answer(json, result, |outcomes| {
                outcomes
                    .iter()
                    .map(|o| {
                        format!(
                            "{}: {} (build {} -> {})\n",
                            o.name,
                            o.result,
                            o.from.as_deref().unwrap_or("none"),
                            o.to
                        )
                    })
                    .collect()
            })
        }
        MachineCmd::Restart {
            name,
            drain_secs,
            wait_secs,
            json,
        } => {
            let result = load().and_then(|p| {
                machine::service::restart(
                    &p,
                    &name,
                    Duration::from_secs(drain_secs),
                    Duration::from_secs(wait_secs),
                    &progress,
                )
            });
            answer(
                json,
                result.map(|()| serde_json::json!({ "name": name.clone(), "result": "restarted" })),
                |_| format!("{name} restarted and healthy\n"),
            )
        }
        MachineCmd::Remove {
            name,
            purge,
            drain_secs,
            json,
        } => {
            let result = load().and_then(|mut p| {
                machine::remove::remove(
                    &mut p,
                    &name,
                    purge,
                    Duration::from_secs(drain_secs),
                    &progress,
                )
            });
            answer(json, result, |r| {
                format!(
                    "{} removed: out of DNS and the cluster, service stopped and disabled{}\n",
                    r.name,
                    if r.purged {
                        ", data deleted"
                    } else {
                        "; its data stays in /var/lib/makiatto (--purge deletes it)"
                    }
                )
            })
        }
        MachineCmd::Logs {
            name,
            follow,
            lines,
            json,
        } => match load().and_then(|p| machine::service::logs(&p, &name, lines, follow, json)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        },
    }
}

/// Prints `result` as text or, with `json`, as one JSON value (a failure
/// too: `{"error": {host, step, cause, fix}}`).
fn answer<T: serde::Serialize>(
    json: bool,
    result: Result<T, maki::machine::MachineError>,
    text: impl FnOnce(&T) -> String,
) -> ExitCode {
    match (result, json) {
        (Ok(value), true) => {
            println!("{}", serde_json::to_string(&value).unwrap_or_default());
            ExitCode::SUCCESS
        }
        (Ok(value), false) => {
            print!("{}", text(&value));
            ExitCode::SUCCESS
        }
        (Err(e), true) => {
            println!("{}", serde_json::json!({ "error": e }));
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        (Err(e), false) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
