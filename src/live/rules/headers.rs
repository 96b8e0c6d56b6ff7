//! `[[domain.headers]]` rules: every glob in one set, so a request path is
//! matched against all of them in a single pass.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use hyper::header::{HeaderName, HeaderValue};

use super::RuleError;
use crate::config::HeaderRule;

/// A domain's header rules, ready to match.
#[derive(Debug, Clone, Default)]
pub(super) struct HeaderRules {
    /// Glob `i` belongs to `headers[i]`.
    set: GlobSet,
    /// Each kept rule's headers, parsed once so matching only borrows them.
    headers: Vec<Vec<(HeaderName, HeaderValue)>>,
}

impl HeaderRules {
    /// Compiles `rules` in order, skipping (with a warning) any that fail.
    pub(super) fn compile(domain: &str, rules: &[HeaderRule]) -> HeaderRules {
        let mut builder = GlobSetBuilder::new();
        let mut headers = Vec::new();
        for rule in rules {
            match compile_rule(rule) {
                // A rule with no values would only cost a match.
                Ok((_, values)) if values.is_empty() => {}
                Ok((glob, values)) => {
                    builder.add(glob);
                    headers.push(values);
                }
                Err(error) => tracing::warn!(
                    domain,
                    pattern = %rule.pattern,
                    %error,
                    "skipping headers rule"
                ),
            }
        }
        match builder.build() {
            Ok(set) => HeaderRules { set, headers },
            Err(error) => {
                // Each glob compiled alone, so this is a limit of the
                // combined set; serving without headers beats not serving.
                tracing::warn!(domain, %error, "skipping all headers rules");
                HeaderRules::default()
            }
        }
    }

    /// Whether there are no rules at all.
    pub(super) fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The headers of every rule matching `path`, in rule order.
    pub(super) fn for_path<'a>(
        &'a self,
        path: &str,
    ) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + use<'a> {
        // `matches` returns indices in ascending order, which is rule order.
        self.set
            .matches(path)
            .into_iter()
            .filter_map(|i| self.headers.get(i))
            .flatten()
            .map(|(name, value)| (name, value))
    }
}

fn compile_rule(
    rule: &HeaderRule,
) -> Result<(globset::Glob, Vec<(HeaderName, HeaderValue)>), RuleError> {
    let glob = GlobBuilder::new(&rule.pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| RuleError::Glob {
            pattern: rule.pattern.clone(),
            source,
        })?;
    let values = rule
        .values
        .iter()
        .map(|(name, value)| {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| RuleError::HeaderName(name.clone()))?;
            let value =
                HeaderValue::from_str(value).map_err(|_| RuleError::HeaderValue(name.clone()))?;
            Ok((header, value))
        })
        .collect::<Result<_, RuleError>>()?;
    Ok((glob, values))
}
