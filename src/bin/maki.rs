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
}

fn main() -> ExitCode {
    match Cli::parse().command {
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
