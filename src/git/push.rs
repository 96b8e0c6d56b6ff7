//! What a push does once its objects are stored (in its quarantine), as
//! phases over one list of ref updates, each carrying its own status:
//! check (names, connectivity, the site config at each new branch tip),
//! `pre-receive`, then, holding the repository's lock, check the old ids,
//! stage each branch's deploy, and go live: the quarantined objects move
//! into the repository, the refs move in one transaction, and every staged
//! deploy activates in one switch with the ref rows; finally report
//! (`post-receive`, the URLs). A phase only looks at the updates still
//! standing; with `--atomic`, one failure fails them all.
//!
//! Staging before moving the ref means a failed deploy leaves the ref (and
//! every served site) as it was; activating after it means a ref that
//! cannot move leaves the site as it was too, and an activation that fails
//! moves the refs back, so a served site is never ahead of its ref. The
//! lock means two pushes to one branch cannot both win: the second sees a
//! ref that moved under it.

use std::time::Instant;

use gix::ObjectId;
use tracing::info;

use super::connectivity;
use super::pack::ReceivedPack;
use super::pktline::Output;
use super::push_build::{self, BuiltCheckout};
use super::quarantine::Quarantine;
use super::repo::{RefUpdate, Repo};
use super::tree_source::CommitSource;
use super::{GitError, GitService};
use crate::deploy::{DeployError, Deployed, SiteSource, Staged};
use crate::metrics::Outcome;

/// One command of a push: move `name` from `old` to `new`.
pub type Command = RefUpdate;

/// Per-command outcome: `Err(reason)` is reported as `ng <ref> <reason>`.
pub type Status = Result<(), String>;

/// One ref update of a push and what has become of it so far.
#[derive(Debug)]
pub struct Update {
    pub command: Command,
    pub status: Status,
}

impl Update {
    /// `command`, refused already if its name may not be pushed.
    pub fn new(command: Command) -> Update {
        let status = check_name(&command.name);
        Update { command, status }
    }

    /// `command`, failed for `reason` before any phase ran.
    pub fn failed(command: Command, reason: &str) -> Update {
        Update {
            command,
            status: Err(reason.to_string()),
        }
    }

    fn standing(&self) -> bool {
        self.status.is_ok()
    }

    /// The branch this update moves, while it still stands.
    fn standing_branch(&self) -> Option<&str> {
        branch(&self.command.name).filter(|_| self.standing())
    }
}

/// The push being applied: where, and whether one failure fails all.
struct Push<'a, W: std::io::Write> {
    service: &'a GitService,
    repo: &'a Repo,
    /// Where the pushed objects wait until a ref takes them.
    quarantine: Option<&'a Quarantine>,
    atomic: bool,
    out: &'a mut Output<W>,
}

/// What the deploy phase made live or took down, for the report.
#[derive(Default)]
struct Deployments {
    live: Vec<Deployed>,
    removed: Vec<String>,
}

/// Applies `commands`; returns one update per command, in order, each
/// with its final status.
pub fn apply<W: std::io::Write>(
    service: &GitService,
    repo: &Repo,
    commands: &[Command],
    pack: Option<&ReceivedPack>,
    quarantine: Option<&Quarantine>,
    atomic: bool,
    out: &mut Output<W>,
) -> Result<Vec<Update>, GitError> {
    let started = Instant::now();
    let result = apply_updates(service, repo, commands, pack, quarantine, atomic, out);
    let outcome = match &result {
        Ok(updates) if updates.iter().all(|u| u.status.is_ok()) => Outcome::Ok,
        Ok(_) => Outcome::Refused,
        Err(_) => Outcome::Failed,
    };
    let metrics = &service.services.metrics.deploys;
    metrics.pushes.record(outcome, started.elapsed());
    result
}

fn apply_updates<W: std::io::Write>(
    service: &GitService,
    repo: &Repo,
    commands: &[Command],
    pack: Option<&ReceivedPack>,
    quarantine: Option<&Quarantine>,
    atomic: bool,
    out: &mut Output<W>,
) -> Result<Vec<Update>, GitError> {
    let mut updates: Vec<Update> = commands.iter().cloned().map(Update::new).collect();
    let mut push = Push {
        service,
        repo,
        quarantine,
        atomic,
        out,
    };
    push.check_connectivity(&mut updates, pack)?;
    push.check_sites(&mut updates)?;
    if !push.pre_receive(&mut updates)? {
        return Ok(updates);
    }

    info!(repo = %repo.name, "push validated");
    // Builds run before the lock: they may take minutes.
    let built = push.build(&mut updates)?;
    let lock = service.repo_lock(repo.name.as_str());
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    push.check_old_ids(&mut updates)?;
    let stages = push.stage(&mut updates, &built)?;
    let deployments = push.go_live(&mut updates, stages)?;
    drop(guard);
    service
        .services
        .metrics
        .deploys
        .deployed(deployments.live.len());

    push.report(&updates, &deployments)?;
    Ok(updates)
}

impl<W: std::io::Write> Push<'_, W> {
    /// Every new tip must reach only objects that exist; a pack that
    /// leaves a hole is deleted, keeping every stored pack closed.
    fn check_connectivity(
        &mut self,
        updates: &mut [Update],
        pack: Option<&ReceivedPack>,
    ) -> Result<(), GitError> {
        let in_pack = |id: &ObjectId| pack.is_some_and(|p| p.contains(id));
        let mut holes = false;
        for u in updates.iter_mut() {
            let c = &u.command;
            if u.standing()
                && !c.new.is_null()
                && let Err(e) = connectivity::check(&self.repo.odb, &[c.new], &in_pack)
            {
                self.out.message(&format!("error: {}: {e}", c.name))?;
                u.status = Err("missing necessary objects".into());
                holes = true;
            }
        }
        if holes && let Some(pack) = pack {
            pack.discard();
        }
        info!(repo = %self.repo.name, "connectivity checked");
        Ok(())
    }

    /// The site config at each new branch tip must deploy.
    fn check_sites(&mut self, updates: &mut [Update]) -> Result<(), GitError> {
        for u in updates.iter_mut() {
            let c = &u.command;
            if c.new.is_null() || u.standing_branch().is_none() {
                continue;
            }
            let checked = CommitSource::new(&self.repo.odb, c.new).and_then(|source| {
                self.service
                    .services
                    .deployer
                    .check(&source, self.repo.name.as_str())
            });
            if let Err(e) = checked {
                self.out.message(&format!("error: {e}"))?;
                u.status = Err(site_refusal(&e).into());
            }
        }
        self.fail_all_if_atomic(updates);
        Ok(())
    }

    /// Runs `pre-receive` on exactly the updates still standing; false
    /// when none stands or the hook declined (the push ends there).
    fn pre_receive(&mut self, updates: &mut [Update]) -> Result<bool, GitError> {
        let standing = standing(updates);
        if standing.is_empty() {
            return Ok(false);
        }
        let repo = self.repo;
        let env = self
            .quarantine
            .map(Quarantine::hook_env)
            .unwrap_or_default();
        let out = &mut *self.out;
        let Some(run) = self.service.hooks.run(
            "pre-receive",
            repo.name.as_str(),
            &repo.path,
            &standing,
            &env,
            &mut |line| out.message(line),
        )?
        else {
            return Ok(true);
        };
        if !run.success {
            fail_standing(updates, "pre-receive hook declined");
        }
        Ok(run.success)
    }

    /// Builds each standing branch whose site has `[build]`; one slot per
    /// update, `None` where nothing was built.
    fn build(&mut self, updates: &mut [Update]) -> Result<Vec<Option<BuiltCheckout>>, GitError> {
        let mut built = Vec::with_capacity(updates.len());
        for u in updates.iter_mut() {
            let mut checkout = None;
            if let Some(branch) = u.standing_branch().map(str::to_string)
                && !u.command.new.is_null()
            {
                let (service, repo) = (self.service, self.repo);
                let started = Instant::now();
                let builds = &service.services.metrics.deploys.builds;
                match push_build::build(service, repo, &branch, u.command.new, self.out) {
                    Ok(push_build::Outcome::NoBuild) => {}
                    Ok(push_build::Outcome::Built(c)) => {
                        builds.record(Outcome::Ok, started.elapsed());
                        checkout = Some(c)
                    }
                    Ok(push_build::Outcome::Refused) => {
                        builds.record(Outcome::Refused, started.elapsed());
                        u.status = Err("build failed".into())
                    }
                    Err(e) => {
                        builds.record(Outcome::Failed, started.elapsed());
                        return Err(e);
                    }
                }
            }
            built.push(checkout);
        }
        self.fail_all_if_atomic(updates);
        Ok(built)
    }

    /// Under the lock: each ref must still be where the client saw it, as
    /// git's stale update check says.
    fn check_old_ids(&mut self, updates: &mut [Update]) -> Result<(), GitError> {
        let current = self.repo.refs()?;
        for u in updates.iter_mut().filter(|u| u.standing()) {
            let c = &u.command;
            let now = current
                .iter()
                .find(|(n, _)| *n == c.name)
                .map(|(_, id)| *id);
            let expected = (!c.old.is_null()).then_some(c.old);
            if now != expected {
                let is = now.map_or_else(|| "missing".to_string(), |id| id.to_string());
                self.out.message(&format!(
                    "error: cannot lock ref '{}': is at {is} but expected {}",
                    c.name, c.old
                ))?;
                u.status = Err("failed to update ref".into());
            }
        }
        self.fail_all_if_atomic(updates);
        Ok(())
    }

    /// Stages each standing branch's deploy (nothing served changes
    /// yet), from its built checkout when its site has `[build]`; a branch
    /// that fails to stage fails its update.
    fn stage(
        &mut self,
        updates: &mut [Update],
        built: &[Option<BuiltCheckout>],
    ) -> Result<Vec<(usize, Staged)>, GitError> {
        let mut stages = Vec::new();
        let repo = self.repo;
        for (i, (u, built)) in updates.iter_mut().zip(built).enumerate() {
            let Some(branch) = u.standing_branch() else {
                continue;
            };
            let c = &u.command;
            if c.new.is_null() {
                continue;
            }
            let short = &c.new.to_string()[..7];
            self.out
                .progress(&format!("deploying {branch} ({short})"))?;
            let staged = stage_branch(self.service, repo, branch, c.new, built.as_ref());
            match staged {
                Ok(staged) => {
                    // Skipped rule file lines are shown once per tree, not
                    // once per domain or preview sharing it.
                    let mut shown: Vec<&String> = Vec::new();
                    for d in staged.deployed() {
                        for warning in &d.warnings {
                            if !shown.contains(&warning) {
                                self.out.message(&format!("warning: {warning}"))?;
                                shown.push(warning);
                            }
                        }
                    }
                    stages.push((i, staged));
                }
                Err(e) => {
                    self.out
                        .message(&format!("error: deploy of {branch} failed: {e}"))?;
                    u.status = Err("deploy failed".into());
                }
            }
        }
        self.fail_all_if_atomic(updates);
        info!(repo = %repo.name, "staged");
        Ok(stages)
    }

    /// Makes the standing updates real, each step only once the one before
    /// held: the quarantined objects into the repository, the refs in one
    /// transaction, then every staged deploy and the ref rows in one
    /// switch. An activation that fails moves the refs back, so no served
    /// site runs ahead of its ref. Stages of failed updates are discarded.
    fn go_live(
        &mut self,
        updates: &mut [Update],
        stages: Vec<(usize, Staged)>,
    ) -> Result<Deployments, GitError> {
        let deployer = &self.service.services.deployer;
        let (live, dead): (Vec<_>, Vec<_>) = stages
            .into_iter()
            .partition(|(i, _)| updates[*i].standing());
        let mut stages: Vec<Staged> = live.into_iter().map(|(_, s)| s).collect();
        for (_, stage) in dead {
            deployer.discard(stage)?;
        }
        let moves = standing(updates);
        let mut deployments = Deployments::default();
        if moves.is_empty() {
            return Ok(deployments);
        }
        let failure = if let Some(Err(e)) = self.quarantine.map(Quarantine::accept) {
            Some((
                format!("error: cannot store the pushed objects: {e}"),
                "unpacker error",
            ))
        } else if let Err(e) = self.repo.update_refs(&moves) {
            Some((format!("error: {e}"), "failed to update ref"))
        } else {
            let rows: Vec<_> = moves.iter().flat_map(|c| store_ref(self.repo, c)).collect();
            match deployer.activate(&stages, &rows) {
                Ok(live) => {
                    deployments.live = live;
                    stages.clear();
                    None
                }
                Err(e) => {
                    let back: Vec<Command> = moves
                        .iter()
                        .map(|c| Command {
                            name: c.name.clone(),
                            old: c.new,
                            new: c.old,
                        })
                        .collect();
                    if let Err(undo) = self.repo.update_refs(&back) {
                        tracing::error!(repo = %self.repo.name, error = %undo, "cannot move refs back after a failed activation");
                    }
                    Some((
                        format!("error: cannot activate the deploy: {e}"),
                        "deploy failed",
                    ))
                }
            }
        };
        if let Some((message, reason)) = failure {
            self.out.message(&message)?;
            fail_standing(updates, reason);
            for stage in stages {
                deployer.discard(stage)?;
            }
            return Ok(deployments);
        }
        for c in &moves {
            if let Some(branch) = branch(&c.name).filter(|_| c.new.is_null()) {
                deployments
                    .removed
                    .extend(deployer.remove_previews(self.repo.name.as_str(), branch)?);
            }
        }
        info!(repo = %self.repo.name, "refs moved and deploys live");
        Ok(deployments)
    }

    /// `post-receive` on the updates that went through, then what was
    /// taken down and the URLs now live.
    fn report(&mut self, updates: &[Update], deployments: &Deployments) -> Result<(), GitError> {
        let updated = standing(updates);
        let repo = self.repo;
        if !updated.is_empty() {
            let out = &mut *self.out;
            self.service.hooks.run(
                "post-receive",
                repo.name.as_str(),
                &repo.path,
                &updated,
                &[],
                &mut |line| out.message(line),
            )?;
        }
        for host in &deployments.removed {
            self.out.message(&format!("preview removed: {host}"))?;
        }
        for d in &deployments.live {
            for host in &d.hosts {
                self.out.message(&format!(
                    "live: {}  (revision {}, {} files)",
                    self.service.url(host),
                    &d.root[..12],
                    d.files
                ))?;
            }
        }
        Ok(())
    }

    /// With `atomic`, one failure fails every update.
    fn fail_all_if_atomic(&self, updates: &mut [Update]) {
        if self.atomic && updates.iter().any(|u| !u.standing()) {
            fail_standing(updates, "atomic push failed");
        }
    }
}

/// The `ng` reason for a site that would not deploy.
fn site_refusal(e: &DeployError) -> &'static str {
    match e {
        DeployError::Config(_) => "invalid makiatto.toml",
        DeployError::DomainOwned { .. } => "domain owned by another repository",
        DeployError::MissingModule { .. } | DeployError::MissingEnvFile { .. } => {
            "missing WebAssembly file"
        }
        DeployError::InvalidModule { .. } => "invalid WebAssembly module",
        DeployError::RuleFiles { .. } => "invalid _redirects or _headers",
        _ => "site check failed",
    }
}

/// Stages `commit` of `branch` (its built checkout, when it was built):
/// production for the domains whose production branch it is, previews for
/// the others.
fn stage_branch(
    service: &GitService,
    repo: &Repo,
    branch: &str,
    commit: ObjectId,
    built: Option<&BuiltCheckout>,
) -> Result<Staged, DeployError> {
    let source: Box<dyn SiteSource + '_> = match built {
        Some(built) => Box::new(built.source()),
        None => Box::new(CommitSource::new(&repo.odb, commit)?),
    };
    service
        .services
        .deployer
        .stage_branch(source.as_ref(), repo.name.as_str(), branch)
}

/// The store's row for command `c` of a push to `repo`.
fn store_ref(repo: &Repo, c: &Command) -> [crate::store::RefUpdate; 1] {
    [crate::store::RefUpdate {
        repo: repo.name.as_str().to_string(),
        name: c.name.clone(),
        target: (!c.new.is_null()).then(|| c.new.to_string()),
    }]
}

/// The commands of the updates still standing.
fn standing(updates: &[Update]) -> Vec<Command> {
    updates
        .iter()
        .filter(|u| u.standing())
        .map(|u| u.command.clone())
        .collect()
}

/// Fails every update still standing, for `reason`.
fn fail_standing(updates: &mut [Update], reason: &str) {
    for u in updates.iter_mut().filter(|u| u.standing()) {
        u.status = Err(reason.into());
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
