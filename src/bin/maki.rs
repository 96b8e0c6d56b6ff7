//! `maki`: the operator CLI. Parses arguments and calls `makiatto::cli`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use makiatto::cli;

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
}

#[derive(Subcommand)]
enum DnsCmd {
    /// Print the registrar steps (glue, name servers, checks) for a domain,
    /// or for every domain the node serves.
    Setup {
        domain: Option<String>,
        /// The node.toml of a node of the cluster (read on that node).
        #[arg(long, default_value = "/etc/makiatto/node.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::Dns {
            command: DnsCmd::Setup { domain, config },
        } => match cli::dns::setup(&config, domain.as_deref()) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Init { dir } => match cli::init::write_template(&dir) {
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
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
