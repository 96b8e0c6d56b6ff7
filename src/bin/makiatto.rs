//! `makiatto`: the node binary. Parses arguments and calls the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use makiatto::admin::{self, Command, cmd};
use makiatto::config::NodeConfig;
use makiatto::dev::{self, DevOptions};
use makiatto::node::Node;
use makiatto::{readiness, shutdown};

#[derive(Parser)]
#[command(
    name = "makiatto",
    version,
    about = "A self-hosted CDN node for static sites"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a production node from its node.toml.
    Run {
        #[arg(long, default_value = "/etc/makiatto/node.toml")]
        config: PathBuf,
    },
    /// Check a node.toml without starting anything: prints OK and what the
    /// node would run, or the error with its file, line and column.
    CheckConfig {
        #[arg(value_name = "FILE")]
        config: PathBuf,
    },
    /// Run a node on this machine with single-machine defaults.
    Dev {
        /// Serve this directory now and redeploy it when it changes.
        #[arg(long)]
        site: Option<PathBuf>,
        /// Data directory.
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
        /// HTTP listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// DNS listen address, UDP and TCP (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:5300")]
        dns: SocketAddr,
        /// SSH listen address for git push and admin commands.
        #[arg(long, default_value = "127.0.0.1:2222")]
        ssh: SocketAddr,
        /// Also authorise this public key file (repeatable); the user's
        /// ~/.ssh/*.pub are always authorised.
        #[arg(long = "authorized-key", value_name = "FILE")]
        authorized_keys: Vec<PathBuf>,
        /// A node.toml read over the dev defaults (e.g. for [[nodes]]).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also serve HTTPS here (self-signed unless node.toml has [acme]).
        #[arg(long, value_name = "ADDR")]
        https: Option<SocketAddr>,
        /// Also answer DNS over TLS here.
        #[arg(long, value_name = "ADDR")]
        dot: Option<SocketAddr>,
    },
    /// Deploy a directory to the running node with this data directory.
    Deploy {
        dir: PathBuf,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// List the kept revisions of a domain on the running node.
    Deploys {
        domain: String,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// Switch a domain to an older revision (default: the previous one).
    Rollback {
        domain: String,
        revision: Option<String>,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// Operate on the cluster's nodes through the running node.
    Node {
        #[command(subcommand)]
        command: NodeCmd,
    },
    /// Show what the running node serves.
    Status {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// Check every stored object against its blake3 name now, repairing
    /// damaged ones from peers ([scrub] in node.toml schedules it).
    Scrub {
        /// Answer once it ended, with what it found.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// Print a one-time token a new node joins the cluster with.
    JoinToken {
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// Print where the GeoIP database places an address, as `LAT LON`
    /// (`maki machine` places a new node at its public address with it).
    Locate {
        address: std::net::IpAddr,
        /// An MMDB city database (GeoLite2-City, DB-IP City Lite).
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
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
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// Print the newest site build of a repository on this node, with its log.
    BuildLog {
        repo: String,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Mark a node up or down: DNS sends visitors only to healthy nodes.
    Health {
        name: String,
        #[arg(value_parser = ["up", "down"])]
        state: String,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
    /// Remove a node from the cluster: peers drop it, DNS stops answering with it.
    Remove {
        name: String,
        #[arg(long, default_value = ".makiatto")]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // hickory-server logs every query at info.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match runtime(&cli.command) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::debug!(
        worker_threads = runtime.metrics().num_workers(),
        "async runtime started"
    );
    runtime.block_on(async_main(cli.command))
}

/// The async runtime: as many worker threads as `[http] worker_threads`
/// in the node config the command runs with, else one per CPU. A config
/// that does not load leaves the default here; the command reports it.
fn runtime(command: &Cmd) -> std::io::Result<tokio::runtime::Runtime> {
    let config = match command {
        Cmd::Run { config }
        | Cmd::Dev {
            config: Some(config),
            ..
        } => Some(config),
        _ => None,
    };
    let threads = config
        .and_then(|path| NodeConfig::load(path).ok())
        .and_then(|config| config.http.worker_threads);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = threads {
        builder.worker_threads(threads);
    }
    builder.build()
}

async fn async_main(command: Cmd) -> ExitCode {
    match command {
        Cmd::Run { config } => {
            let config = match NodeConfig::load(&config) {
                Ok(config) => config,
                Err(e) => return fail(&format!("{e}\nfix the node config and start again")),
            };
            for old in &config.deprecations {
                eprintln!("warning: {old}");
            }
            let node = match Node::open(config) {
                Ok(node) => node,
                Err(e) => return fail(&e.to_string()),
            };
            let (trigger, shutdown) = shutdown::channel();
            let running = match node.start(shutdown).await {
                Ok(running) => running,
                Err(e) => return fail(&e.to_string()),
            };
            println!("makiatto node {} ready", node.config.place.name);
            if let Some(dns) = running.dns_addr {
                println!("  dns {dns} (udp+tcp)");
            }
            if let Some(ssh) = running.ssh_addr {
                println!("  ssh://git@{ssh}/");
            }
            if let Some(https) = running.https_addr {
                println!("  https {https}");
            }
            if let Some(dot) = running.dot_addr {
                println!("  dot {dot} (dns over tls)");
            }
            if let Some(wg) = &running.wireguard {
                let addresses: Vec<String> = wg
                    .addresses()
                    .iter()
                    .map(|(ip, len)| format!("{ip}/{len}"))
                    .collect();
                println!(
                    "  wireguard {} port {} key {} addresses {}",
                    wg.interface(),
                    wg.listen_port(),
                    wg.public_key(),
                    addresses.join(" ")
                );
            }
            if let Some(mesh) = running.mesh_addr {
                println!("  mesh rpc {mesh}");
            }
            if let Some(metrics) = running.metrics_addr {
                println!("  metrics {metrics} (prometheus)");
            }
            println!("  http://{}/", running.http_addr);
            let signal = signal_received();
            let status = format!(
                "node {} serving http {}",
                node.config.place.name, running.http_addr
            );
            // The service manager would stop a node that never says ready;
            // say why in the log, since it is then the likely cause.
            if let Err(e) = readiness::ready(&status) {
                tracing::warn!(error = %e, "readiness not delivered");
            }
            tokio::spawn(async move {
                signal.await;
                if let Err(e) = readiness::stopping() {
                    tracing::warn!(error = %e, "shutdown not announced");
                }
                trigger.trigger();
            });
            running.wait().await;
            ExitCode::SUCCESS
        }
        Cmd::Locate { address, db } => match makiatto::dns::geo::GeoIp::open(&db) {
            Ok(geo) => match geo.locate(address).coordinates {
                Some((lat, lon)) => {
                    println!("{lat} {lon}");
                    ExitCode::SUCCESS
                }
                None => fail(&format!(
                    "{} has no location for {address}: pass --lat and --lon to maki machine",
                    db.display()
                )),
            },
            Err(e) => fail(&e.to_string()),
        },
        Cmd::CheckConfig { config } => match NodeConfig::load(&config) {
            Ok(node) => {
                for old in &node.deprecations {
                    eprintln!("warning: {old}");
                }
                println!("OK {}", config.display());
                print!("{}", config_summary(&node));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Dev {
            site,
            data,
            http,
            dns,
            ssh,
            authorized_keys,
            config,
            https,
            dot,
        } => {
            let config = match config.map(|path| NodeConfig::load(&path)).transpose() {
                Ok(config) => config,
                Err(e) => return fail(&e.to_string()),
            };
            for old in config.iter().flat_map(|c| &c.deprecations) {
                eprintln!("warning: {old}");
            }
            let (trigger, shutdown) = shutdown::channel();
            let signal = signal_received();
            tokio::spawn(async move {
                signal.await;
                eprintln!("shutting down");
                trigger.trigger();
            });
            let options = DevOptions {
                site,
                data,
                http,
                dns,
                ssh,
                authorized_keys,
                config,
                https,
                dot,
            };
            match dev::run(options, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e.to_string()),
            }
        }
        Cmd::Deploy { dir, data } => {
            let dir = match std::fs::canonicalize(&dir) {
                Ok(dir) => dir,
                Err(e) => return fail(&format!("cannot open {}: {e}", dir.display())),
            };
            admin_call(&data, Command::Deploy(cmd::Deploy { dir })).await
        }
        Cmd::Deploys { domain, json, data } => {
            admin_call(&data, Command::Deploys(cmd::Deploys { domain, json })).await
        }
        Cmd::Rollback {
            domain,
            revision,
            data,
        } => admin_call(&data, Command::Rollback(cmd::Rollback { domain, revision })).await,
        Cmd::Node {
            command: NodeCmd::Health { name, state, data },
        } => {
            let healthy = state == "up";
            admin_call(
                &data,
                Command::NodeHealth(cmd::NodeHealth { name, healthy }),
            )
            .await
        }
        Cmd::Status { json, data } => {
            admin_call(&data, Command::Status(cmd::Status { json })).await
        }
        Cmd::Scrub { wait, json, data } => {
            admin_call(&data, Command::Scrub(cmd::Scrub { wait, json })).await
        }
        Cmd::PreviewPassword {
            domain,
            action,
            json,
            data,
        } => {
            let action = match action.as_str() {
                "set" => cmd::PasswordAction::Set(cmd::Secret::default()),
                "clear" => cmd::PasswordAction::Clear,
                _ => cmd::PasswordAction::Show,
            };
            let set = matches!(action, cmd::PasswordAction::Set(_));
            let what = format!("the previews of {domain}");
            let command = Command::PreviewPassword(cmd::PreviewPassword {
                domain,
                action,
                json,
            });
            if !set {
                return admin_call(&data, command).await;
            }
            let password = match admin::read_password(&what) {
                Ok(password) => password,
                Err(e) => return fail(&e.to_string()),
            };
            let outcome =
                admin::call_with_input(&data, &command.to_string(), Some(password.as_bytes()))
                    .await;
            print_outcome(outcome)
        }
        Cmd::JoinToken { data } => admin_call(&data, Command::JoinToken(cmd::JoinToken)).await,
        Cmd::BuildLog { repo, data } => {
            let repo = repo.strip_suffix(".git").unwrap_or(&repo).to_string();
            admin_call(&data, Command::BuildLog(cmd::BuildLog { repo })).await
        }
        Cmd::Node {
            command: NodeCmd::Remove { name, data },
        } => admin_call(&data, Command::NodeRemove(cmd::NodeRemove { name })).await,
    }
}

/// Sends `command` to the node running on `data` and prints its answer.
async fn admin_call(data: &std::path::Path, command: Command) -> ExitCode {
    print_outcome(admin::call(data, &command.to_string()).await)
}

/// Prints a node's answer (errors to stderr) and turns it into the exit code.
fn print_outcome(outcome: Result<admin::Outcome, admin::CallError>) -> ExitCode {
    match outcome {
        Ok(outcome) if outcome.ok => {
            print!("{}", outcome.text);
            ExitCode::SUCCESS
        }
        Ok(outcome) => {
            eprint!("{}", outcome.text);
            ExitCode::FAILURE
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// What a checked node.toml would run, one listener or table a line.
fn config_summary(node: &NodeConfig) -> String {
    let mut lines = vec![
        format!("  node {}", node.place.name),
        format!("  data {}", node.data_dir.display()),
        format!("  http {}", node.http.listen),
    ];
    if let Some(https) = node.https_listen {
        let ca = node
            .acme_settings()
            .map(|a| a.directory)
            .unwrap_or_default();
        lines.push(format!("  https {https} (certificates from {ca})"));
    }
    if let Some(dns) = &node.dns {
        lines.push(format!("  dns {} (udp+tcp)", dns.listen));
        if let Some(dot) = dns.tls_listen {
            lines.push(format!("  dot {dot}"));
        } else if let Some(dot) = dns.tls_auto {
            lines.push(format!("  dot {dot} (once a certificate covers the node)"));
        }
    }
    if let Some(ssh) = &node.ssh {
        lines.push(format!(
            "  ssh {} ({} authorized keys in node.toml)",
            ssh.listen,
            ssh.authorized_keys.len()
        ));
    }
    let join = node.cluster.as_ref().and_then(|c| c.join.as_ref());
    if let Some(mesh) = &node.mesh {
        lines.push(format!(
            "  wireguard {} udp {} (mesh rpc port {})",
            mesh.interface, mesh.listen_port, mesh.rpc_port
        ));
        let placed: Vec<String> = mesh
            .interface_addresses()
            .iter()
            .map(|(ip, _)| ip.to_string())
            .collect();
        let (v4, v6) = (mesh.prefix_v4, mesh.prefix_v6);
        lines.push(if !placed.is_empty() {
            format!("  mesh addresses {}", placed.join(" "))
        } else if join.is_some() {
            "  mesh addresses assigned when it joins".to_string()
        } else {
            format!(
                "  mesh addresses picked from {}/{} and {}/{} (the first node of a cluster)",
                v4.0, v4.1, v6.0, v6.1
            )
        });
    } else if let Some(listen) = node.cluster.as_ref().and_then(|c| c.rpc_listen) {
        lines.push(format!("  mesh rpc {listen} (no WireGuard)"));
    }
    if let Some(join) = join {
        lines.push(format!("  joins the cluster through {join}"));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives
/// right after the node said it was ready still stops it cleanly.
fn signal_received() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
            }
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.recv().await;
            }
            // Without handlers the signals keep their default action.
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}
