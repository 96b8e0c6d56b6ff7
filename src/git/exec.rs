//! What an SSH `exec` request asks for: a git service on a named
//! repository, or an admin command. Anything else is refused.

use super::repo_name::{BadRepoName, RepoName};

/// A parsed exec request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exec {
    ReceivePack(RepoName),
    UploadPack(RepoName),
    /// An admin command line, parsed by `admin::Command`.
    Admin(String),
}

/// Why an exec request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Repo(#[from] BadRepoName),
    #[error("{0} is not offered here; only git push, fetch and clone, and admin commands")]
    Unsupported(String),
}

/// Parses the command line of an exec request.
pub fn parse(line: &str) -> Result<Exec, ExecError> {
    let line = line.trim();
    let services = [
        ("git-receive-pack ", true),
        ("git receive-pack ", true),
        ("git-upload-pack ", false),
        ("git upload-pack ", false),
    ];
    for (prefix, receive) in services {
        if let Some(arg) = line.strip_prefix(prefix) {
            let repo = repo_argument(arg.trim())?;
            return Ok(if receive {
                Exec::ReceivePack(repo)
            } else {
                Exec::UploadPack(repo)
            });
        }
    }
    let first = line.split_whitespace().next().unwrap_or("");
    if first.starts_with("git-") || first == "git" || first == "scp" || first == "rsync" {
        return Err(ExecError::Unsupported(first.to_string()));
    }
    Ok(Exec::Admin(line.to_string()))
}

/// The repository named by git's (single-quoted) path argument.
///
/// `ssh://host/NAME` URLs send `/NAME` (GitHub, GitLab and Soft Serve all
/// accept it, with or without `.git`): one leading `/` is dropped. A name
/// holds no `/`, so `/srv/x` or `/../x` still fail as names, and the
/// refusal quotes what the client sent.
fn repo_argument(arg: &str) -> Result<RepoName, BadRepoName> {
    let unquoted = arg
        .strip_prefix('\'')
        .and_then(|a| a.strip_suffix('\''))
        .unwrap_or(arg);
    let name = unquoted.strip_prefix('/').unwrap_or(unquoted);
    RepoName::parse(name).map_err(|_| BadRepoName(unquoted.chars().take(100).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_services_name_a_repository() {
        let site = RepoName::parse("site").unwrap();
        assert_eq!(
            parse("git-receive-pack 'site.git'"),
            Ok(Exec::ReceivePack(site.clone()))
        );
        assert_eq!(
            parse("git receive-pack 'site'"),
            Ok(Exec::ReceivePack(site.clone()))
        );
        assert_eq!(
            parse("git-upload-pack '/site.git'"),
            Ok(Exec::UploadPack(site.clone()))
        );
        assert_eq!(
            parse("git-receive-pack '/site'"),
            Ok(Exec::ReceivePack(site))
        );
    }

    #[test]
    fn paths_are_refused() {
        for bad in [
            "'../x'",
            "'/etc/passwd'",
            "'//x'",
            "'a/b'",
            "'/a/b.git'",
            "'~/x'",
            "''",
            "'/'",
        ] {
            assert!(
                matches!(
                    parse(&format!("git-receive-pack {bad}")),
                    Err(ExecError::Repo(_))
                ),
                "{bad}"
            );
        }
        let long = format!("git-upload-pack '{}'", "a".repeat(64));
        assert!(parse(&long).is_err());
        let Err(ExecError::Repo(refused)) = parse("git-receive-pack '/srv/x'") else {
            panic!("/srv/x was accepted");
        };
        let text = refused.to_string();
        assert!(text.contains("\"/srv/x\""), "{text}");
        assert!(
            text.contains("NAME, NAME.git, /NAME or /NAME.git"),
            "{text}"
        );
    }

    #[test]
    fn other_programs_are_refused_and_words_go_to_admin() {
        assert!(parse("git-upload-archive 'site'").is_err());
        assert!(parse("scp -t /tmp").is_err());
        assert_eq!(
            parse("status --json"),
            Ok(Exec::Admin("status --json".into()))
        );
    }
}
