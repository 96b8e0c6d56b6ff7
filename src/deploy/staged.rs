//! A push's deploys in two steps, so a push can be all or nothing:
//! `stage_branch` does everything that can fail slowly (import, transforms,
//! materialising, recording the revisions) while nothing served changes;
//! `activate` then switches every staged deploy of the push, with the
//! push's ref rows, under one stamp and publishes once; `discard` forgets
//! what a refused push staged.

use tracing::info;

use super::source::SiteSource;
use super::{DeployError, Deployed, Deployer, preview, retention};
use crate::config::Domain;
use crate::store::{DomainPointer, PreviewPointer, RefUpdate, Switch};

/// One branch's deploy, recorded but not live.
#[derive(Debug)]
pub struct Staged {
    owner: String,
    branch: String,
    /// Domains whose production branch this is.
    domains: Vec<Deployed>,
    /// Preview hosts, each with the domain it previews.
    previews: Vec<(Deployed, String)>,
    /// Revision rows this stage created (not ones that already existed,
    /// e.g. a push of a tree deployed before), for `discard`.
    created: Vec<(String, String)>,
}

impl Staged {
    /// Everything this stage makes live, production first.
    pub fn deployed(&self) -> impl Iterator<Item = &Deployed> {
        self.domains
            .iter()
            .chain(self.previews.iter().map(|(d, _)| d))
    }
}

impl Deployer {
    /// Stages `source`, pushed to `branch` by `owner`: production for the
    /// domains whose production branch it is, previews for the others
    /// that allow them. Nothing served changes until [`Deployer::activate`].
    pub fn stage_branch(
        &self,
        source: &dyn SiteSource,
        owner: &str,
        branch: &str,
    ) -> Result<Staged, DeployError> {
        let _guard = self.lock();
        let (config, config_text) = self.checked_config(source, owner)?;
        if config.build.is_some() && !source.built() {
            return Err(DeployError::Unbuilt);
        }
        let production = |d: &&Domain| d.production_branch == branch;
        let domains: Vec<&Domain> = config
            .domains
            .iter()
            .filter(|d| production(d) || d.previews)
            .collect();
        let mut staged = Staged {
            owner: owner.to_string(),
            branch: branch.to_string(),
            domains: Vec::new(),
            previews: Vec::new(),
            created: Vec::new(),
        };
        let stage = self.stage(source, domains)?;
        let warnings = self.rule_file_warnings(&stage)?;
        for ((domain, manifest, extras), warnings) in stage.iter().zip(warnings) {
            let (key, hosts) = if production(domain) {
                let hosts = std::iter::once(domain.name.clone())
                    .chain(domain.aliases.iter().cloned())
                    .collect();
                (domain.name.clone(), hosts)
            } else {
                let host = preview::host_for(&self.store, &domain.name, owner, branch)?;
                (host.clone(), vec![host])
            };
            let root = manifest.root().to_hex().to_string();
            let existed = self.store.revisions(&key)?.iter().any(|r| r.root == root);
            let row = self.record(
                &key,
                manifest,
                extras,
                &warnings,
                &config_text,
                source,
                Some(branch),
            )?;
            if !existed {
                staged.created.push((key.clone(), row.root.clone()));
            }
            let deployed = Deployed {
                domain: key,
                hosts,
                root: row.root,
                files: manifest.len(),
                warnings,
            };
            if production(domain) {
                staged.domains.push(deployed);
            } else {
                staged.previews.push((deployed, domain.name.clone()));
            }
        }
        Ok(staged)
    }

    /// Makes every stage live and writes `refs` in the same switch (one
    /// stamp, see store/switch.rs), then publishes once; returns what went
    /// live.
    pub fn activate(
        &self,
        stages: &[Staged],
        refs: &[RefUpdate],
    ) -> Result<Vec<Deployed>, DeployError> {
        let _guard = self.lock();
        let switch = Switch {
            domains: stages
                .iter()
                .flat_map(|s| {
                    s.domains.iter().map(|d| DomainPointer {
                        domain: &d.domain,
                        repo: &s.owner,
                        root: &d.root,
                    })
                })
                .collect(),
            previews: stages
                .iter()
                .flat_map(|s| {
                    s.previews.iter().map(|(d, domain)| PreviewPointer {
                        host: &d.domain,
                        domain,
                        repo: &s.owner,
                        branch: &s.branch,
                        root: &d.root,
                    })
                })
                .collect(),
            refs,
        };
        self.store.switch(&switch)?;
        let deployed: Vec<Deployed> = stages.iter().flat_map(|s| s.deployed()).cloned().collect();
        if let Some(first) = stages.iter().flat_map(|s| &s.domains).next() {
            *self.first_domain.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(first.domain.clone());
        }
        if deployed.is_empty() {
            return Ok(deployed);
        }
        self.publish()?;
        for d in &deployed {
            info!(site = %d.domain, root = %&d.root[..12], files = d.files, "revision active");
        }
        let keys: Vec<&str> = deployed.iter().map(|d| d.domain.as_str()).collect();
        retention::prune(self, &keys)?;
        Ok(deployed)
    }

    /// Forgets the revision rows `stage` created and that nothing made
    /// active since; their objects go at the next collection.
    pub fn discard(&self, stage: Staged) -> Result<(), DeployError> {
        let _guard = self.lock();
        for (key, root) in &stage.created {
            let active = self
                .store
                .revisions(key)?
                .iter()
                .any(|r| r.root == *root && r.active);
            if !active {
                self.store.forget_revision(key, root)?;
            }
        }
        Ok(())
    }
}
