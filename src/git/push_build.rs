//! The build phase of a push: for a branch whose `makiatto.toml` has
//! `[build]`, check the pushed commit out into a scratch directory and run
//! the build there (build/), its output going to the pusher as `remote:`
//! lines while it runs. The built checkout is what the deploy phase then
//! imports; a refused build leaves the ref and every site as they were.

use std::io::Write;

use gix::ObjectId;

use super::checkout::checkout;
use super::pktline::Output;
use super::repo::Repo;
use super::tree_source::CommitSource;
use super::{GitError, GitService};
use crate::build::{BuildFailure, BuiltSource, Job, Workspace};
use crate::config::SiteConfig;
use crate::deploy::{SITE_CONFIG_FILE, SiteSource};

/// A commit built in its scratch checkout, until it is deployed.
pub struct BuiltCheckout {
    /// Removed (with the checkout) when this value is dropped.
    workspace: Workspace,
    /// The site config as pushed.
    config: String,
    commit: String,
}

impl BuiltCheckout {
    /// The built tree, as the deployer reads it.
    pub fn source(&self) -> BuiltSource<'_> {
        BuiltSource {
            dir: self.workspace.dir(),
            config: Some(self.config.clone()),
            label: self.commit.clone(),
        }
    }
}

/// What the build phase did for one branch.
pub enum Outcome {
    /// The site has no `[build]`: deploy the commit as it is.
    NoBuild,
    Built(BuiltCheckout),
    /// Refused; the pusher has been told why.
    Refused,
}

/// Builds `commit` of `branch` of `repo` when its site asks for a build.
pub fn build<W: Write>(
    service: &GitService,
    repo: &Repo,
    branch: &str,
    commit: ObjectId,
    out: &mut Output<W>,
) -> Result<Outcome, GitError> {
    let source = match CommitSource::new(&repo.odb, commit) {
        Ok(source) => source,
        Err(e) => return refuse(out, branch, &e.to_string(), &[]),
    };
    // check_sites parsed this config already; a failure here is one too.
    let text = match source.site_config() {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(Outcome::NoBuild),
        Err(e) => return refuse(out, branch, &e.to_string(), &[]),
    };
    let config = match SiteConfig::parse(SITE_CONFIG_FILE, &text) {
        Ok(config) => config,
        Err(e) => return refuse(out, branch, &e.to_string(), &[]),
    };
    let Some(build) = &config.build else {
        return Ok(Outcome::NoBuild);
    };
    let owner = repo.name.as_str();
    let deployer = &service.services.deployer;
    let builder = &service.services.builder;
    // The URL the build is for: production where this is the production
    // branch, else the first preview.
    let host = match config
        .domains
        .iter()
        .find(|d| d.production_branch == branch)
    {
        Some(d) => d.name.clone(),
        None => match config.domains.iter().find(|d| d.previews) {
            Some(d) => deployer.preview_host(&d.name, owner, branch)?,
            None => config
                .domains
                .first()
                .map(|d| d.name.clone())
                .unwrap_or_default(),
        },
    };
    let commit_hex = commit.to_string();
    let short = &commit_hex[..7];
    let turn = match builder.turn(owner) {
        Ok(turn) => turn,
        Err(e) => return refuse(out, branch, &e.to_string(), &[]),
    };
    out.message(&format!("building {branch} ({short}): {}", build.command))?;
    let workspace = match builder.workspace(owner) {
        Ok(workspace) => workspace,
        Err(e) => return refuse(out, branch, &e.to_string(), &[]),
    };
    if let Err(e) = checkout(&source, workspace.dir()) {
        return refuse(out, branch, &e.to_string(), &[]);
    }
    let url = service.url(&host);
    let job = Job {
        repo: owner,
        branch,
        commit: &commit_hex,
        domain: &host,
        url: &url,
        build,
    };
    // Shown even to a quiet push (git asks for quiet whenever its stderr
    // is no terminal, as in CI), like hook output. The pusher may have
    // gone: the build still finishes and is recorded.
    let result = builder.run(&job, &workspace, &mut |line| {
        let _ = out.message(line);
    });
    drop(turn);
    match result {
        Ok(built) => {
            out.message(&format!(
                "built {branch} ({short}) in {:.1} s",
                built.duration.as_secs_f64()
            ))?;
            Ok(Outcome::Built(BuiltCheckout {
                workspace,
                config: text,
                commit: commit_hex,
            }))
        }
        Err(BuildFailure { error, tail }) => refuse(out, branch, &error.to_string(), &tail),
    }
}

/// Tells the pusher the build of `branch` was refused and why, with the
/// end of its log.
fn refuse<W: Write>(
    out: &mut Output<W>,
    branch: &str,
    reason: &str,
    tail: &[String],
) -> Result<Outcome, GitError> {
    out.message(&format!("error: build of {branch} refused: {reason}"))?;
    if !tail.is_empty() {
        out.message("the build log ended with:")?;
        for line in tail {
            out.message(&format!("  {line}"))?;
        }
    }
    Ok(Outcome::Refused)
}
