//! What a push does once its objects are stored: check each ref update,
//! validate the site config at each new branch tip, run `pre-receive`,
//! then — holding the repository's lock — check the old ids, deploy, and
//! move the refs in one transaction; finally `post-receive` and the URLs.
//!
//! Deploying before moving the ref means a failed deploy leaves the ref
//! (and every served site) as it was; the lock means two pushes to one
//! branch cannot both win: the second sees a ref that moved under it.

use gix::ObjectId;
use tracing::info;

use super::connectivity;
use super::pack::ReceivedPack;
use super::pktline::Output;
use super::repo::{RefUpdate, Repo};
use super::tree_source::CommitSource;
use super::{GitError, GitService};
use crate::deploy::{DeployError, Deployed};

/// One command of a push: move `name` from `old` to `new`.
pub type Command = RefUpdate;

/// Per-command outcome: `Err(reason)` is reported as `ng <ref> <reason>`.
pub type Status = Result<(), String>;

/// Applies `commands`; returns one status per command, in order.
pub fn apply<W: std::io::Write>(
    service: &GitService,
    repo: &Repo,
    commands: &[Command],
    pack: Option<&ReceivedPack>,
    atomic: bool,
    out: &mut Output<W>,
) -> Result<Vec<Status>, GitError> {
    let mut statuses: Vec<Status> = commands.iter().map(|c| check_name(&c.name)).collect();

    // Connectivity: every new tip must reach only objects that exist.
    let in_pack = |id: &ObjectId| pack.is_some_and(|p| p.contains(id));
    let mut holes = false;
    for (c, status) in commands.iter().zip(statuses.iter_mut()) {
        if status.is_ok()
            && !c.new.is_null()
            && let Err(e) = connectivity::check(&repo.odb, &[c.new], &in_pack)
        {
            out.message(&format!("error: {}: {e}", c.name))?;
            *status = Err("missing necessary objects".into());
            holes = true;
        }
    }
    if holes && let Some(pack) = pack {
        // Keep the invariant that every stored pack is closed.
        pack.discard();
    }

    info!(repo = %repo.name, "connectivity checked");
    // The site config at each new branch tip must deploy.
    for (c, status) in commands.iter().zip(statuses.iter_mut()) {
        if status.is_err() || c.new.is_null() || branch(&c.name).is_none() {
            continue;
        }
        let checked = CommitSource::new(&repo.odb, c.new)
            .and_then(|source| service.deployer.check(&source, repo.name.as_str()));
        if let Err(e) = checked {
            out.message(&format!("error: {e}"))?;
            *status = Err(match e {
                DeployError::Config(_) => "invalid makiatto.toml".into(),
                DeployError::DomainOwned { .. } => "domain owned by another repository".into(),
                DeployError::MissingModule { .. } | DeployError::MissingEnvFile { .. } => {
                    "missing WebAssembly file".into()
                }
                DeployError::InvalidModule { .. } => "invalid WebAssembly module".into(),
                _ => "site check failed".into(),
            });
        }
    }
    fail_all_if_atomic(atomic, &mut statuses);

    // pre-receive sees exactly the updates still standing.
    let standing: Vec<Command> = accepted(commands, &statuses);
    if standing.is_empty() {
        return Ok(statuses);
    }
    if let Some(run) =
        service
            .hooks
            .run("pre-receive", repo.name.as_str(), &repo.path, &standing)?
    {
        for line in &run.output {
            out.message(line)?;
        }
        if !run.success {
            for status in statuses.iter_mut().filter(|s| s.is_ok()) {
                *status = Err("pre-receive hook declined".into());
            }
            return Ok(statuses);
        }
    }

    info!(repo = %repo.name, "push validated");
    let lock = service.repo_lock(repo.name.as_str());
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let current = repo.refs()?;
    for (c, status) in commands.iter().zip(statuses.iter_mut()) {
        if status.is_err() {
            continue;
        }
        let now = current
            .iter()
            .find(|(n, _)| *n == c.name)
            .map(|(_, id)| *id);
        let expected = (!c.old.is_null()).then_some(c.old);
        if now != expected {
            let is = now.map_or_else(|| "missing".to_string(), |id| id.to_string());
            out.message(&format!(
                "error: cannot lock ref '{}': is at {is} but expected {}",
                c.name, c.old
            ))?;
            *status = Err("failed to update ref".into());
        }
    }
    fail_all_if_atomic(atomic, &mut statuses);

    // Deploy, then move the refs that deployed. A deploy records its ref's
    // row in the same switch as its pointers (one stamp, see
    // store/switch.rs); `switched` says which commands' rows went that way.
    let mut live: Vec<Deployed> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    let mut switched = vec![false; commands.len()];
    for ((c, status), switched) in commands.iter().zip(statuses.iter_mut()).zip(&mut switched) {
        let Some(branch) = branch(&c.name).filter(|_| status.is_ok()) else {
            continue;
        };
        if c.new.is_null() {
            removed.extend(
                service
                    .deployer
                    .remove_previews(repo.name.as_str(), branch)
                    .map_err(|e| GitError::Deploy(e.to_string()))?,
            );
            continue;
        }
        let short = &c.new.to_string()[..7];
        out.progress(&format!("deploying {branch} ({short})"))?;
        let row = store_ref(repo, c);
        match deploy_branch(service, repo, branch, c.new, &row) {
            Ok(deployed) => {
                *switched = !deployed.is_empty();
                live.extend(deployed);
            }
            Err(e) => {
                out.message(&format!("error: deploy of {branch} failed: {e}"))?;
                *status = Err("deploy failed".into());
            }
        }
    }
    fail_all_if_atomic(atomic, &mut statuses);
    info!(repo = %repo.name, "deployed");
    let updates = accepted(commands, &statuses);
    if !updates.is_empty()
        && let Err(e) = repo.update_refs(&updates)
    {
        out.message(&format!("error: {e}"))?;
        for status in statuses.iter_mut().filter(|s| s.is_ok()) {
            *status = Err("failed to update ref".into());
        }
    }
    // Ref rows for the updates no deploy switched. A switched row stays
    // even if its update failed after all: its deploy is live, and the
    // replicated ref then follows the row (git_sync), so the branch and
    // the served site never disagree.
    let store = service.deployer.store();
    for ((c, status), switched) in commands.iter().zip(&statuses).zip(&switched) {
        if status.is_err() || *switched {
            continue;
        }
        for r in &store_ref(repo, c) {
            store
                .set_ref(&r.repo, &r.name, r.target.as_deref())
                .map_err(|e| GitError::Deploy(e.to_string()))?;
        }
    }
    drop(guard);

    let updated = accepted(commands, &statuses);
    if !updated.is_empty()
        && let Some(run) =
            service
                .hooks
                .run("post-receive", repo.name.as_str(), &repo.path, &updated)?
    {
        for line in &run.output {
            out.message(line)?;
        }
    }
    for host in &removed {
        out.message(&format!("preview removed: {host}"))?;
    }
    for d in &live {
        for host in &d.hosts {
            out.message(&format!(
                "live: {}  (revision {}, {} files)",
                service.url(host),
                &d.root[..12],
                d.files
            ))?;
        }
    }
    Ok(statuses)
}

/// Deploys `commit` of `branch`: production for the domains whose
/// production branch it is, previews for the others.
fn deploy_branch(
    service: &GitService,
    repo: &Repo,
    branch: &str,
    commit: ObjectId,
    refs: &[crate::store::RefUpdate],
) -> Result<Vec<Deployed>, DeployError> {
    let source = CommitSource::new(&repo.odb, commit)?;
    let owner = repo.name.as_str();
    let deployer = &service.deployer;
    let mut deployed = deployer.deploy_with_refs(&source, owner, Some(branch), refs)?;
    // The ref goes with the first switch that happens, never with two.
    let refs = if deployed.is_empty() { refs } else { &[] };
    deployed.extend(deployer.deploy_preview(&source, owner, branch, refs)?);
    Ok(deployed)
}

/// The store's row for command `c` of a push to `repo`.
fn store_ref(repo: &Repo, c: &Command) -> [crate::store::RefUpdate; 1] {
    [crate::store::RefUpdate {
        repo: repo.name.as_str().to_string(),
        name: c.name.clone(),
        target: (!c.new.is_null()).then(|| c.new.to_string()),
    }]
}

/// The commands whose status is still ok.
fn accepted(commands: &[Command], statuses: &[Status]) -> Vec<Command> {
    commands
        .iter()
        .zip(statuses)
        .filter(|(_, s)| s.is_ok())
        .map(|(c, _)| c.clone())
        .collect()
}

/// With `atomic`, one failure fails every command.
fn fail_all_if_atomic(atomic: bool, statuses: &mut [Status]) {
    if atomic && statuses.iter().any(|s| s.is_err()) {
        for status in statuses.iter_mut().filter(|s| s.is_ok()) {
            *status = Err("atomic push failed".into());
        }
    }
}

/// The branch name of a `refs/heads/…` ref.
fn branch(name: &str) -> Option<&str> {
    name.strip_prefix("refs/heads/")
}

/// Only well-formed branches and tags may be pushed.
fn check_name(name: &str) -> Status {
    let ok = (name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
        && gix::validate::reference::name(name.as_bytes().into()).is_ok();
    if ok {
        Ok(())
    } else {
        Err("only valid branch and tag names are accepted".into())
    }
}
