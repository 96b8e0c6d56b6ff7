//! `dns setup [<domain>]`: the registrar steps (glue, name servers, checks)
//! for a domain, or for every domain this node serves, from the node table
//! this node holds.

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `dns setup` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSetup {
    /// Lowercase; `None` means every domain this node serves.
    pub domain: Option<String>,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for DnsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dns setup")?;
        if let Some(domain) = &self.domain {
            write!(f, " {domain}")?;
        }
        Ok(())
    }
}

impl DnsSetup {
    pub fn parse(words: &mut Words<'_>) -> Result<DnsSetup, ParseError> {
        let domain = words.next_word().map(str::to_ascii_lowercase);
        words.end()?;
        Ok(DnsSetup { domain })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let store = ctx.store();
        let nodes = store
            .nodes()
            .map_err(AdminError::store("read the node table"))?;
        let domains = match self.domain {
            Some(domain) => vec![domain],
            None => store
                .active_revisions()
                .map_err(AdminError::store("list the served domains"))?
                .into_iter()
                .map(|r| r.domain)
                .collect(),
        };
        if domains.is_empty() {
            return Err(AdminError::NoDomain);
        }
        Ok(domains
            .iter()
            .map(|d| crate::dns::setup::registrar_steps(d, &nodes))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
