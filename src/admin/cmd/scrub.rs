//! `scrub [--wait] [--json]`: starts a scrub of the stored objects now
//! (after the running one, if any); with `--wait`, answers when it ended,
//! with what it found.

use std::time::Duration;

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};

/// How long `scrub --wait` waits before answering that the scrub goes on.
const WAIT_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// The `scrub` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrub {
    pub wait: bool,
    pub json: bool,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for Scrub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scrub")?;
        if self.wait {
            f.write_str(" --wait")?;
        }
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

impl Scrub {
    pub fn parse(words: &mut Words<'_>) -> Result<Scrub, ParseError> {
        let wait = match words.next_word() {
            None => false,
            Some("--wait") => true,
            Some(_) => return Err(words.not_understood()),
        };
        words.end()?;
        Ok(Scrub {
            wait,
            json: words.json(),
        })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let scrubber = ctx.scrubber();
        let ticket = scrubber.request();
        if !self.wait {
            return Ok(if self.json {
                json::line(&scrubber.report())?
            } else {
                "scrub started; `status` says what it found once it ends\n".to_string()
            });
        }
        match scrubber.wait(ticket, WAIT_LIMIT) {
            Some(report) if self.json => Ok(json::line(&report)?),
            Some(report) => Ok(report.lines()),
            None => Ok("the scrub goes on; `status` says what it found once it ends\n".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Transport};

    #[test]
    fn scrub_lines_parse_back() {
        for line in [
            "scrub",
            "scrub --wait",
            "scrub --wait --json",
            "scrub --json",
        ] {
            let command = Command::parse(line, Transport::Ssh).unwrap();
            assert_eq!(command.to_string(), line);
        }
        assert!(Command::parse("scrub now", Transport::Socket).is_err());
    }
}
