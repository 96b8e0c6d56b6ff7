//! The admin commands, one file each, and the dispatcher: a line of words
//! becomes a [`Command`] (refusing what the transport may not offer), and
//! a command runs against the node's [`Context`] into an [`Outcome`].

mod build_log;
mod deploy;
mod deploys;
mod dns_setup;
mod drain;
mod join_token;
mod keys_add;
mod keys_list;
mod keys_remove;
mod node_health;
mod node_remove;
mod preview_password;
mod repos_list;
mod rollback;
mod scrub;
mod stats;
mod status;

pub use build_log::BuildLog;
pub use deploy::Deploy;
pub use deploys::Deploys;
pub use dns_setup::DnsSetup;
pub use drain::Drain;
pub use join_token::JoinToken;
pub use keys_add::KeysAdd;
pub use keys_list::KeysList;
pub use keys_remove::KeysRemove;
pub use node_health::NodeHealth;
pub use node_remove::NodeRemove;
pub use preview_password::{PasswordAction, PreviewPassword, Secret};
pub use repos_list::ReposList;
pub use rollback::Rollback;
pub use scrub::Scrub;
pub use stats::Stats;
pub use status::Status;

use super::words::Words;
use super::{AdminError, Context};

/// An admin command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status(Status),
    Deploys(Deploys),
    Rollback(Rollback),
    Deploy(Deploy),
    DnsSetup(DnsSetup),
    NodeHealth(NodeHealth),
    Drain(Drain),
    NodeRemove(NodeRemove),
    KeysList(KeysList),
    KeysAdd(KeysAdd),
    KeysRemove(KeysRemove),
    ReposList(ReposList),
    JoinToken(JoinToken),
    BuildLog(BuildLog),
    Stats(Stats),
    Scrub(Scrub),
    PreviewPassword(PreviewPassword),
}

/// Where a command line came from; some commands are offered only locally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `<data>/admin.sock`, reached by the `makiatto` subcommands on the
    /// node's own machine.
    Socket,
    /// An SSH `exec` request from an authorised key.
    Ssh,
}

const USAGE: &str = "commands: status [--json] | deploys <domain> [--json] | rollback <domain> [<revision>] | deploy <dir> | dns setup [<domain>] | node health <name> up|down | drain | keys list [--json] | keys add [<key>] | keys remove <fingerprint> | repos list [--json] | join-token | node remove <name> | build-log <repo> | stats [--minutes N] [--json] | scrub [--wait] [--json] | preview-password <domain> [show|set|clear] [--json]";

/// Why a command line was not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no command given; {usage}", usage = USAGE)]
    Empty,
    /// The first word, with arguments no command takes.
    #[error("cannot understand {0:?} with these arguments; {usage}", usage = USAGE)]
    NotUnderstood(String),
    #[error("node health takes up or down, not {0:?}")]
    HealthState(String),
    #[error("stats --minutes takes a whole number from 1 to 16, not {0:?}")]
    Minutes(String),
    #[error("deploy <dir> works only on the node itself; use git push")]
    LocalOnly,
}

/// What a command answered: text for the operator and whether it succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub text: String,
}

impl Outcome {
    /// A failure, as the operator reads it: `error: <message>`.
    pub fn failed(error: &dyn std::error::Error) -> Outcome {
        Outcome {
            ok: false,
            text: format!("error: {error}\n"),
        }
    }
}

impl Command {
    /// Parses whitespace-separated words received over `transport`.
    pub fn parse(line: &str, transport: Transport) -> Result<Command, ParseError> {
        let mut words = Words::new(line).ok_or(ParseError::Empty)?;
        let command = match words.command() {
            "status" => Command::Status(Status::parse(&mut words)?),
            "deploys" => Command::Deploys(Deploys::parse(&mut words)?),
            "rollback" => Command::Rollback(Rollback::parse(&mut words)?),
            "deploy" => Command::Deploy(Deploy::parse(&mut words)?),
            "dns" => match words.required()? {
                "setup" => Command::DnsSetup(DnsSetup::parse(&mut words)?),
                _ => return Err(words.not_understood()),
            },
            "node" => match words.required()? {
                "health" => Command::NodeHealth(NodeHealth::parse(&mut words)?),
                "remove" => Command::NodeRemove(NodeRemove::parse(&mut words)?),
                _ => return Err(words.not_understood()),
            },
            "keys" => match words.next_word() {
                None | Some("list") => Command::KeysList(KeysList::parse(&mut words)?),
                Some("add") => Command::KeysAdd(KeysAdd::parse(&mut words)?),
                Some("remove") => Command::KeysRemove(KeysRemove::parse(&mut words)?),
                Some(_) => return Err(words.not_understood()),
            },
            "repos" => match words.next_word() {
                None | Some("list") => Command::ReposList(ReposList::parse(&mut words)?),
                Some(_) => return Err(words.not_understood()),
            },
            "drain" => Command::Drain(Drain::parse(&mut words)?),
            "join-token" => Command::JoinToken(JoinToken::parse(&mut words)?),
            "build-log" => Command::BuildLog(BuildLog::parse(&mut words)?),
            "stats" => Command::Stats(Stats::parse(&mut words)?),
            "scrub" => Command::Scrub(Scrub::parse(&mut words)?),
            "preview-password" => Command::PreviewPassword(PreviewPassword::parse(&mut words)?),
            _ => return Err(words.not_understood()),
        };
        if matches!(command, Command::Deploy(_)) && transport != Transport::Socket {
            return Err(ParseError::LocalOnly);
        }
        Ok(command)
    }

    /// Whether the command still needs the transport's input (`keys add`
    /// without a key on the line, `preview-password <domain> set`); see
    /// [`Command::give_input`].
    pub fn wants_input(&self) -> bool {
        match self {
            Command::KeysAdd(add) => add.wants_input(),
            Command::PreviewPassword(password) => password.wants_input(),
            _ => false,
        }
    }

    /// Hands the command the input it wanted.
    pub fn give_input(&mut self, input: String) {
        match self {
            Command::KeysAdd(add) => add.key = input,
            Command::PreviewPassword(password) => password.give_input(&input),
            _ => {}
        }
    }

    /// Runs the command (blocking: call from a blocking thread).
    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        match self {
            Command::Status(c) => c.run(ctx),
            Command::Deploys(c) => c.run(ctx),
            Command::Rollback(c) => c.run(ctx),
            Command::Deploy(c) => c.run(ctx),
            Command::DnsSetup(c) => c.run(ctx),
            Command::NodeHealth(c) => c.run(ctx),
            Command::Drain(c) => c.run(ctx),
            Command::NodeRemove(c) => c.run(ctx),
            Command::KeysList(c) => c.run(ctx),
            Command::KeysAdd(c) => c.run(ctx),
            Command::KeysRemove(c) => c.run(ctx),
            Command::ReposList(c) => c.run(ctx),
            Command::JoinToken(c) => c.run(ctx),
            Command::BuildLog(c) => c.run(ctx),
            Command::Stats(c) => c.run(ctx),
            Command::Scrub(c) => c.run(ctx),
            Command::PreviewPassword(c) => c.run(ctx),
        }
    }
}

/// The command as one line (what [`Command::parse`] reads back).
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Status(c) => c.fmt(f),
            Command::Deploys(c) => c.fmt(f),
            Command::Rollback(c) => c.fmt(f),
            Command::Deploy(c) => c.fmt(f),
            Command::DnsSetup(c) => c.fmt(f),
            Command::Drain(c) => c.fmt(f),
            Command::NodeHealth(c) => c.fmt(f),
            Command::NodeRemove(c) => c.fmt(f),
            Command::KeysList(c) => c.fmt(f),
            Command::KeysAdd(c) => c.fmt(f),
            Command::KeysRemove(c) => c.fmt(f),
            Command::ReposList(c) => c.fmt(f),
            Command::JoinToken(c) => c.fmt(f),
            Command::BuildLog(c) => c.fmt(f),
            Command::Stats(c) => c.fmt(f),
            Command::Scrub(c) => c.fmt(f),
            Command::PreviewPassword(c) => c.fmt(f),
        }
    }
}

/// Runs `command` on a blocking thread and turns its result into the
/// answer every transport sends.
pub async fn execute(ctx: Context, command: Command) -> Outcome {
    let result = tokio::task::spawn_blocking(move || command.run(&ctx))
        .await
        .unwrap_or_else(|e| Err(AdminError::Task(e)));
    match result {
        Ok(text) => Outcome { ok: true, text },
        Err(e) => Outcome::failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, ParseError> {
        Command::parse(line, Transport::Socket)
    }

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse("rollback Example.com abc123"),
            Ok(Command::Rollback(Rollback {
                domain: "example.com".into(),
                revision: Some("abc123".into())
            }))
        );
        assert_eq!(
            parse("deploys a.test --json"),
            Ok(Command::Deploys(Deploys {
                domain: "a.test".into(),
                json: true
            }))
        );
        assert_eq!(
            parse("--json status"),
            Ok(Command::Status(Status { json: true }))
        );
        assert_eq!(
            parse("node health London down"),
            Ok(Command::NodeHealth(NodeHealth {
                name: "london".into(),
                healthy: false
            }))
        );
        assert_eq!(
            parse("keys"),
            Ok(Command::KeysList(KeysList { json: false }))
        );
        assert_eq!(
            parse("keys add ssh-ed25519 AAAA me@host"),
            Ok(Command::KeysAdd(KeysAdd {
                key: "ssh-ed25519 AAAA me@host".into()
            }))
        );
        assert_eq!(
            parse("repos list --json"),
            Ok(Command::ReposList(ReposList { json: true }))
        );
        assert_eq!(parse("join-token"), Ok(Command::JoinToken(JoinToken)));
    }

    #[test]
    fn every_command_prints_the_line_it_parses_from() {
        for line in [
            "status",
            "status --json",
            "deploys a.test",
            "deploys a.test --json",
            "rollback a.test",
            "rollback a.test 0123abc",
            "deploy /srv/site",
            "dns setup",
            "dns setup example.com",
            "node health london up",
            "node health london down",
            "node remove london",
            "keys list",
            "keys list --json",
            "keys add",
            "keys add ssh-ed25519 AAAA me@host",
            "keys remove SHA256:abc",
            "repos list",
            "repos list --json",
            "join-token",
            "stats",
            "stats --json",
            "stats --minutes 10 --json",
            "preview-password a.test",
            "preview-password a.test set",
            "preview-password a.test clear",
            "preview-password a.test --json",
        ] {
            let command = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(command.to_string(), line);
        }
    }

    #[test]
    fn bad_lines_name_the_command_word() {
        assert_eq!(
            parse("node health london sideways"),
            Err(ParseError::HealthState("sideways".into()))
        );
        for (line, word) in [
            ("rm -rf /", "rm"),
            ("status now", "status"),
            ("node health london", "node"),
            ("node health london up again", "node"),
            ("node frob", "node"),
            ("keys list extra", "keys"),
            ("rollback a b c", "rollback"),
        ] {
            assert_eq!(
                parse(line),
                Err(ParseError::NotUnderstood(word.into())),
                "{line}"
            );
        }
        assert_eq!(parse("  "), Err(ParseError::Empty));
    }

    #[test]
    fn deploy_is_offered_on_the_socket_only_and_keys_add_takes_input() {
        assert!(matches!(parse("deploy /srv/site"), Ok(Command::Deploy(_))));
        assert_eq!(
            Command::parse("deploy /srv/site", Transport::Ssh),
            Err(ParseError::LocalOnly)
        );
        let mut add = Command::parse("keys add", Transport::Ssh).unwrap_or_else(|e| panic!("{e}"));
        assert!(add.wants_input());
        add.give_input("ssh-ed25519 AAAA me@host\n".into());
        assert!(!add.wants_input());
        assert!(!parse("keys add ssh-ed25519 AAAA").is_ok_and(|c| c.wants_input()));
    }

    #[test]
    fn preview_passwords_come_from_input_and_are_never_printed() {
        let mut set = Command::parse("preview-password A.test set", Transport::Ssh)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(set.wants_input());
        set.give_input("correct horse battery\r\n".into());
        assert!(!set.wants_input());
        assert_eq!(
            set,
            Command::PreviewPassword(PreviewPassword {
                domain: "a.test".into(),
                action: PasswordAction::Set(Secret::from_input("correct horse battery")),
                json: false,
            })
        );
        assert_eq!(set.to_string(), "preview-password a.test set");
        assert!(!format!("{set:?}").contains("horse"));
        assert!(!parse("preview-password a.test").is_ok_and(|c| c.wants_input()));
        assert_eq!(
            parse("preview-password a.test set hunter2"),
            Err(ParseError::NotUnderstood("preview-password".into()))
        );
    }
}
