//! `preview-password <domain> [show|set|clear] [--json]`: whether a password guards
//! the domain's previews and permalinks (and since when; never the hash),
//! set one, or remove it. The password never travels on the command line
//! (where shell history and `ps` would keep it): `set` takes it from the
//! transport's input, which the SSH endpoint and the local socket read
//! when [`PreviewPassword::wants_input`] says so.

use serde::Serialize;

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};

/// The `preview-password` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewPassword {
    /// Lowercase.
    pub domain: String,
    pub action: PasswordAction,
    /// `show` answers as JSON.
    pub json: bool,
}

/// `preview-password <domain> --json`.
#[derive(Serialize)]
struct ProtectionView<'a> {
    domain: &'a str,
    password_set: bool,
    /// When it was set, Unix milliseconds.
    set_ms: Option<u64>,
}

/// What `preview-password` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordAction {
    Show,
    /// Set this password (empty until input supplies it).
    Set(Secret),
    Clear,
}

/// A password on its way to the hash: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// The input as typed or piped, without its line ending.
    pub fn from_input(input: &str) -> Secret {
        Secret(input.trim_end_matches(['\n', '\r']).to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The line that parses back into this command, as clients send it (the
/// password is never part of it).
impl std::fmt::Display for PreviewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "preview-password {}", self.domain)?;
        match self.action {
            PasswordAction::Show => {}
            PasswordAction::Set(_) => f.write_str(" set")?,
            PasswordAction::Clear => f.write_str(" clear")?,
        }
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

impl PreviewPassword {
    pub fn parse(words: &mut Words<'_>) -> Result<PreviewPassword, ParseError> {
        let domain = words.required()?.to_ascii_lowercase();
        let action = match words.next_word() {
            None | Some("show") => PasswordAction::Show,
            Some("set") => PasswordAction::Set(Secret::default()),
            Some("clear") => PasswordAction::Clear,
            Some(_) => return Err(words.not_understood()),
        };
        words.end()?;
        Ok(PreviewPassword {
            domain,
            action,
            json: words.json(),
        })
    }

    /// Whether the password is still to be read from the transport's input.
    pub fn wants_input(&self) -> bool {
        matches!(&self.action, PasswordAction::Set(secret) if secret.0.is_empty())
    }

    /// Hands the command the password the transport read.
    pub fn give_input(&mut self, input: &str) {
        if let PasswordAction::Set(secret) = &mut self.action {
            *secret = Secret::from_input(input);
        }
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let deployer = ctx.deployer();
        match self.action {
            PasswordAction::Show => {
                let protection = deployer.preview_protection(&self.domain)?;
                if self.json {
                    return Ok(json::line(&ProtectionView {
                        domain: &self.domain,
                        password_set: protection.set_ms.is_some(),
                        set_ms: protection.set_ms,
                    })?);
                }
                Ok(format!("{}\n", describe(&self.domain, protection.set_ms)))
            }
            PasswordAction::Set(secret) => {
                deployer.set_preview_password(&self.domain, &secret.0)?;
                Ok(format!(
                    "previews and permalinks of {} now ask for the password (on every node)\n",
                    self.domain
                ))
            }
            PasswordAction::Clear => {
                if deployer.clear_preview_password(&self.domain)? {
                    Ok(format!(
                        "previews and permalinks of {} are open again\n",
                        self.domain
                    ))
                } else {
                    Ok(format!(
                        "previews and permalinks of {} had no password\n",
                        self.domain
                    ))
                }
            }
        }
    }
}

/// One line saying whether `domain`'s previews are guarded, as
/// `preview-password` and `deploys` print it.
pub fn describe(domain: &str, set_ms: Option<u64>) -> String {
    match set_ms {
        Some(ms) => {
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            format!(
                "previews and permalinks of {domain}: password set {}",
                httpdate::fmt_http_date(when)
            )
        }
        None => format!("previews and permalinks of {domain}: open (no password set)"),
    }
}
