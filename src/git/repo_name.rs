//! Repository names as a pusher writes them, checked before anything
//! touches the disk: `[a-z0-9][a-z0-9._-]{0,62}`, optionally ending in
//! `.git`. No slash, no leading dot, nothing a path could be built from.

use std::fmt;

/// Longest name, without the optional `.git`.
const MAX_LEN: usize = 63;

/// A valid repository name, without `.git`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoName(String);

/// Why a repository name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid repository name {0:?}: write it as NAME, NAME.git, /NAME or /NAME.git, where NAME is 1-63 characters from a-z 0-9 . _ - starting with a letter or digit (e.g. ssh://git@node:2222/site)"
)]
pub struct BadRepoName(pub String);

impl RepoName {
    /// Parses a name as it appears in a git command (quotes already
    /// removed; a leading `/` or `~/`, which some clients add, is not accepted).
    pub fn parse(raw: &str) -> Result<RepoName, BadRepoName> {
        let bad = || BadRepoName(raw.chars().take(100).collect());
        let name = raw.strip_suffix(".git").unwrap_or(raw);
        let mut bytes = name.bytes();
        let first = bytes.next().ok_or_else(bad)?;
        if name.len() > MAX_LEN || !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(bad());
        }
        if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
            return Err(bad());
        }
        Ok(RepoName(name.to_string()))
    }

    /// The name without `.git`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bare repository's directory name, `NAME.git`.
    pub fn dir_name(&self) -> String {
        format!("{}.git", self.0)
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_parse_without_dot_git() {
        assert_eq!(RepoName::parse("site").unwrap().as_str(), "site");
        assert_eq!(
            RepoName::parse("my-site.v2.git").unwrap().as_str(),
            "my-site.v2"
        );
        assert_eq!(RepoName::parse(&"a".repeat(63)).unwrap().as_str().len(), 63);
        assert_eq!(RepoName::parse("0_x").unwrap().dir_name(), "0_x.git");
    }

    #[test]
    fn anything_path_like_is_refused() {
        for bad in [
            "", ".git", "../x", "/etc", "a/b", ".hidden", "-x", "_x", "Site", "a b", "a\0b", "~/x",
            "x\\y", "..", "é",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(RepoName::parse(&"a".repeat(64)).is_err());
    }
}
