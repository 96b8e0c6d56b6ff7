//! The revision lifecycle: import → materialise → record → activate →
//! retain → roll back → collect garbage.
//!
//! A revision is one domain's served tree at one moment, named by its Merkle
//! root. Activation records the new pointer in the store and then publishes
//! a new site snapshot in one swap, after every object is stored: a visitor
//! sees the old revision or the new one, never a mix. Deploys, rollbacks and
//! garbage collection are serialised by one lock, so collection never sees
//! the objects of an import that is still running.

mod import;
mod ingest;
mod materialise;
mod preview;
mod preview_password;
mod retention;
mod skew;
mod source;
mod staged;
mod wasm;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::info;

use crate::cas::{Cas, CasError};
use crate::config::{ConfigError, Domain, NodeConfig, SiteConfig};
use crate::live::{PasswordError, Pinned, PreviewGuards, Site, SiteTable, SiteWasm};
use crate::store::{DomainPointer, RefUpdate, RevisionRow, Store, StoreError, Switch};
use crate::tree::{Manifest, ManifestError};

pub(crate) use ingest::store_all;
pub use materialise::revision_dir;
pub use preview::slug;
pub use preview_password::PreviewProtection;
pub use source::{DirSource, LOCAL_OWNER, SiteSource};
pub use staged::Staged;

/// The file a site's config lives in, at the root of the deployed tree.
pub const SITE_CONFIG_FILE: &str = "makiatto.toml";
/// The domain a directory without a `makiatto.toml` is served as.
pub const DEFAULT_DOMAIN: &str = "localhost";

/// Why a deploy, rollback or collection failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cas(#[from] CasError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "domain {domain}: path {path:?} is not a directory in {root}; create it or fix `path` in makiatto.toml"
    )]
    MissingPath {
        domain: String,
        path: String,
        root: PathBuf,
    },
    #[error(
        "domain {domain}: module {path:?} is not a file in the tree; commit it or fix the path in makiatto.toml"
    )]
    MissingModule { domain: String, path: String },
    #[error("domain {domain}: {path:?} {source}")]
    InvalidModule {
        domain: String,
        path: String,
        source: Box<crate::wasm::WasmError>,
    },
    #[error(
        "domain {domain}: env_file {path:?} is not a file in the repository; commit it or fix env_file in makiatto.toml"
    )]
    MissingEnvFile { domain: String, path: String },
    #[error(
        "domain {domain}: transform {transform:?} failed on {file:?} (on_error = \"fail\"): {source}"
    )]
    Transform {
        domain: String,
        transform: String,
        file: String,
        source: Box<crate::wasm::CallError>,
    },
    #[error(transparent)]
    Wasm(#[from] crate::wasm::WasmError),
    #[error(
        "a thread storing the revision's files panicked; nothing was activated (this is a bug: the log above has its message)"
    )]
    StoringPanicked,
    #[error("cannot read the pushed tree: {0}")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot read the pushed tree: env_file {0}")]
    EnvFile(#[source] crate::wasm::WasmError),
    #[error("cannot read the pushed tree: transform files {pattern:?}: {source}")]
    TransformFiles {
        pattern: String,
        source: globset::Error,
    },
    #[error("cannot read the pushed tree: cannot record WebAssembly extras: {0}")]
    Extras(#[source] toml::ser::Error),
    #[error("domain {domain} is already served by {owner}; remove it there first")]
    DomainOwned { domain: String, owner: String },
    #[error("no revisions of domain {0} are kept on this node")]
    UnknownDomain(String),
    #[error(
        "domain {domain} has no kept revision starting with {wanted:?}; `deploys {domain}` lists them"
    )]
    NoSuchRevision { domain: String, wanted: String },
    #[error("{wanted:?} names more than one revision of {domain}; give more digits")]
    AmbiguousRevision { domain: String, wanted: String },
    #[error("domain {0} has no older revision to roll back to")]
    NothingOlder(String),
    #[error("this site has a [build] step, which has not run: deploy its built checkout")]
    Unbuilt,
    #[error(
        "domain {domain} sets strict_rule_files, and its rule files have lines that cannot be used:\n{warnings}\nfix them, or remove strict_rule_files from makiatto.toml to skip such lines"
    )]
    RuleFiles { domain: String, warnings: String },
    #[error(transparent)]
    PreviewPassword(#[from] PasswordError),
}

/// What one deploy activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub domain: String,
    pub hosts: Vec<String>,
    pub root: String,
    pub files: usize,
    /// Lines of `_redirects` and `_headers` skipped, one message each.
    pub warnings: Vec<String>,
}

/// Owns the CAS and the revision directories of one node, and publishes
/// its site snapshot.
pub struct Deployer {
    cas: Cas,
    store: Arc<Store>,
    /// The data directory, canonical, so imports can leave it out.
    data_dir: PathBuf,
    /// `revs/`: materialised revisions.
    revs: PathBuf,
    /// The live site snapshot this deployer publishes to.
    sites: Arc<SiteTable>,
    /// The live preview passwords this deployer publishes to.
    guards: Arc<PreviewGuards>,
    /// Revisions kept per domain, the active one included.
    keep: usize,
    /// Indexed sites by (domain, root), so activating one domain never
    /// re-indexes another.
    built: Mutex<HashMap<(String, String), Arc<Site>>>,
    /// The domain listed first in the snapshot (dev mode's fallback site).
    first_domain: Mutex<Option<String>>,
    /// Serialises every change to revisions and objects.
    lock: Mutex<()>,
    /// Compiles, checks and runs the sites' WebAssembly.
    wasm: crate::wasm::Host,
}

impl Deployer {
    /// Opens the data directory of `config` and publishes what was active
    /// to `sites`, and the preview passwords to `guards`.
    pub fn open(
        config: &NodeConfig,
        store: Arc<Store>,
        sites: Arc<SiteTable>,
        guards: Arc<PreviewGuards>,
    ) -> Result<Deployer, DeployError> {
        let data = &config.data_dir;
        let cas = Cas::open(&data.join("objects"))?;
        let revs = data.join("revs");
        fs::create_dir_all(&revs).map_err(|source| DeployError::Io {
            context: "cannot create",
            path: revs.clone(),
            source,
        })?;
        let data_dir = fs::canonicalize(data).unwrap_or_else(|_| data.clone());
        let wasm = crate::wasm::Host::new(
            &data.join("wasm").join("compiled"),
            crate::wasm::NodeInfo {
                name: config.place.name.clone(),
                latitude: config.place.latitude.unwrap_or(0.0),
                longitude: config.place.longitude.unwrap_or(0.0),
            },
        )?;
        let deployer = Deployer {
            cas,
            store,
            data_dir,
            revs,
            sites,
            guards,
            keep: config.keep_revisions.max(1),
            built: Mutex::new(HashMap::new()),
            first_domain: Mutex::new(None),
            lock: Mutex::new(()),
            wasm,
        };
        deployer.publish()?;
        deployer.refresh_preview_passwords()?;
        Ok(deployer)
    }

    /// The object store.
    pub fn cas(&self) -> &Cas {
        &self.cas
    }

    /// What the WebAssembly host has run since the node started.
    pub fn wasm_stats(&self) -> crate::wasm::WasmStats {
        self.wasm.stats()
    }

    /// Deploys the tree at `dir` (a repository root or a plain directory)
    /// for every domain its `makiatto.toml` declares, or as `localhost` when
    /// it has none. `owner` names who may deploy these domains from now on.
    pub fn deploy_dir(&self, dir: &Path, owner: &str) -> Result<Vec<Deployed>, DeployError> {
        let source = DirSource {
            dir,
            exclude: &self.data_dir,
        };
        self.deploy(&source, owner, None)
    }

    /// Checks, without changing anything, that `source` would deploy for
    /// `owner`: its config parses, no domain belongs to someone else, and
    /// every path it names exists in the tree.
    pub fn check(&self, source: &dyn SiteSource, owner: &str) -> Result<SiteConfig, DeployError> {
        Ok(self.checked_config(source, owner)?.0)
    }

    /// Deploys `source` as the new active revision of every domain it
    /// declares or, when it came from `branch`, of those whose production
    /// branch that is.
    pub fn deploy(
        &self,
        source: &dyn SiteSource,
        owner: &str,
        branch: Option<&str>,
    ) -> Result<Vec<Deployed>, DeployError> {
        self.deploy_with_refs(source, owner, branch, &[])
    }

    /// [`Deployer::deploy`], moving `refs` in the same switch as the
    /// pointers (see `store/switch.rs`) when anything deploys.
    pub fn deploy_with_refs(
        &self,
        source: &dyn SiteSource,
        owner: &str,
        branch: Option<&str>,
        refs: &[RefUpdate],
    ) -> Result<Vec<Deployed>, DeployError> {
        let _guard = self.lock();
        let (config, config_text) = self.checked_config(source, owner)?;
        if config.build.is_some() && !source.built() {
            return Err(DeployError::Unbuilt);
        }
        let domains = config
            .domains
            .iter()
            .filter(|d| branch.is_none_or(|b| d.production_branch == b))
            .collect();
        let staged = self.stage(source, domains)?;
        let warnings = self.rule_file_warnings(&staged)?;
        let mut deployed = Vec::new();
        for ((domain, manifest, extras), warnings) in staged.iter().zip(warnings) {
            let hosts = std::iter::once(domain.name.clone())
                .chain(domain.aliases.iter().cloned())
                .collect();
            let row = self.record(
                &domain.name,
                manifest,
                extras,
                &warnings,
                &config_text,
                source,
                branch,
            )?;
            deployed.push(Deployed {
                domain: domain.name.clone(),
                hosts,
                root: row.root,
                files: manifest.len(),
                warnings,
            });
        }
        // Every object is stored: switch all domains of this deploy together.
        if deployed.is_empty() {
            return Ok(deployed);
        }
        self.store.switch(&Switch {
            domains: deployed
                .iter()
                .map(|d| DomainPointer {
                    domain: &d.domain,
                    repo: owner,
                    root: &d.root,
                })
                .collect(),
            previews: Vec::new(),
            refs,
        })?;
        if let Some(first) = deployed.first() {
            *self.first_domain.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(first.domain.clone());
        }
        self.publish()?;
        for d in &deployed {
            info!(domain = %d.domain, root = %&d.root[..12], files = d.files, "revision active");
        }
        let domains: Vec<_> = deployed.iter().map(|d| d.domain.as_str()).collect();
        retention::prune(self, &domains)?;
        Ok(deployed)
    }

    /// The host the preview of `branch` of `owner` gets under `domain`.
    pub fn preview_host(
        &self,
        domain: &str,
        owner: &str,
        branch: &str,
    ) -> Result<String, DeployError> {
        preview::host_for(&self.store, domain, owner, branch)
    }

    /// Stops serving every preview of `branch` of `owner`; returns their hosts.
    pub fn remove_previews(&self, owner: &str, branch: &str) -> Result<Vec<String>, DeployError> {
        let _guard = self.lock();
        let hosts = self.store.remove_previews(owner, branch)?;
        if !hosts.is_empty() {
            self.publish()?;
            for host in &hosts {
                info!(host = %host, "preview removed");
            }
        }
        Ok(hosts)
    }

    /// The parsed config of `source` and its text, after checking that
    /// `owner` may deploy it and every path it names exists.
    fn checked_config(
        &self,
        source: &dyn SiteSource,
        owner: &str,
    ) -> Result<(SiteConfig, String), DeployError> {
        let (config, text) = match source.site_config()? {
            Some(text) => (SiteConfig::parse(SITE_CONFIG_FILE, &text)?, text),
            None => (
                SiteConfig {
                    domains: vec![Domain::bare(DEFAULT_DOMAIN)],
                    build: None,
                },
                String::new(),
            ),
        };
        // The paths of a site still to be built are checked once it is.
        let unbuilt = config.build.is_some() && !source.built();
        for domain in &config.domains {
            if let Some(current) = self.store.domain_owner(&domain.name)?
                && current != owner
            {
                return Err(DeployError::DomainOwned {
                    domain: domain.name.clone(),
                    owner: current,
                });
            }
            if unbuilt {
                continue;
            }
            if !domain.path.is_empty() && !source.is_dir(&domain.path)? {
                return Err(DeployError::MissingPath {
                    domain: domain.name.clone(),
                    path: domain.path.clone(),
                    root: PathBuf::from(source.label()),
                });
            }
            let modules = domain
                .functions
                .iter()
                .map(|f| f.path.as_str())
                .chain(domain.transforms.iter().map(|t| t.path.as_str()));
            for module in modules {
                let full = if domain.path.is_empty() {
                    module.to_string()
                } else {
                    format!("{}/{module}", domain.path)
                };
                if !source.is_file(&full)? {
                    return Err(DeployError::MissingModule {
                        domain: domain.name.clone(),
                        path: full,
                    });
                }
            }
            wasm::check(self, source, domain)?;
        }
        Ok((config, text))
    }

    /// Imports each domain's subtree once (domains sharing a path share it),
    /// then prepares each domain's WebAssembly (transforms run here).
    #[allow(clippy::type_complexity)]
    fn stage<'d>(
        &self,
        source: &dyn SiteSource,
        domains: Vec<&'d Domain>,
    ) -> Result<Vec<(&'d Domain, Arc<Manifest>, wasm::Extras)>, DeployError> {
        let mut staged = Vec::new();
        let mut imported: HashMap<&str, Arc<Manifest>> = HashMap::new();
        for domain in domains {
            let manifest = match imported.get(domain.path.as_str()) {
                Some(manifest) => manifest.clone(),
                None => {
                    let manifest = Arc::new(source.import(&self.cas, &domain.path)?);
                    imported.insert(&domain.path, manifest.clone());
                    manifest
                }
            };
            let (manifest, extras) = wasm::prepare(self, source, domain, manifest)?;
            staged.push((domain, manifest, extras));
        }
        Ok(staged)
    }

    /// The skipped lines of each staged domain's rule files, or, for a
    /// domain with `strict_rule_files`, the refusal naming them.
    #[allow(clippy::type_complexity)]
    fn rule_file_warnings(
        &self,
        staged: &[(&Domain, Arc<Manifest>, wasm::Extras)],
    ) -> Result<Vec<Vec<String>>, DeployError> {
        let mut all = Vec::with_capacity(staged.len());
        for (domain, manifest, _) in staged {
            let (_, warnings) = crate::live::compile_rules(domain, manifest, &self.cas);
            let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
            if domain.strict_rule_files && !warnings.is_empty() {
                return Err(DeployError::RuleFiles {
                    domain: domain.name.clone(),
                    warnings: warnings.join("\n"),
                });
            }
            all.push(warnings);
        }
        Ok(all)
    }

    /// Stores `manifest`, materialises it and records it as a revision of
    /// `key` (a domain, or a preview host).
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        key: &str,
        manifest: &Manifest,
        extras: &wasm::Extras,
        warnings: &[String],
        config_text: &str,
        source: &dyn SiteSource,
        branch: Option<&str>,
    ) -> Result<RevisionRow, DeployError> {
        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let manifest_hash = self.cas.put_bytes(&manifest.to_bytes())?;
        materialise::materialise(&self.cas, &self.revs, manifest)?;
        let extras = wasm::save(self, key, &manifest.root().to_hex(), extras)?;
        let row = RevisionRow {
            domain: key.to_string(),
            root: manifest.root().to_hex().to_string(),
            manifest: manifest_hash.to_hex().to_string(),
            config: config_text.to_string(),
            source: source.label(),
            branch: branch.map(str::to_string),
            created_ms,
            active: true,
            extras,
            warnings: warnings.join("\n"),
        };
        self.store.record_revision(&row)?;
        Ok(row)
    }

    /// Makes `wanted` (a root or unique prefix of one) the active revision of
    /// `domain`; without it, the revision deployed before the active one.
    pub fn rollback(&self, domain: &str, wanted: Option<&str>) -> Result<RevisionRow, DeployError> {
        let _guard = self.lock();
        let revisions = self.store.revisions(domain)?;
        if revisions.is_empty() {
            return Err(DeployError::UnknownDomain(domain.to_string()));
        }
        let target = match wanted {
            Some(wanted) => {
                let wanted_lc = wanted.to_ascii_lowercase();
                let mut matches = revisions.iter().filter(|r| r.root.starts_with(&wanted_lc));
                match (matches.next(), matches.next()) {
                    (Some(r), None) if !wanted_lc.is_empty() => r.clone(),
                    (Some(_), Some(_)) => {
                        return Err(DeployError::AmbiguousRevision {
                            domain: domain.to_string(),
                            wanted: wanted.to_string(),
                        });
                    }
                    _ => {
                        return Err(DeployError::NoSuchRevision {
                            domain: domain.to_string(),
                            wanted: wanted.to_string(),
                        });
                    }
                }
            }
            None => {
                let active = revisions.iter().position(|r| r.active);
                let older = active.map_or(Some(0), |i| i.checked_add(1));
                older
                    .and_then(|i| revisions.get(i))
                    .cloned()
                    .ok_or_else(|| DeployError::NothingOlder(domain.to_string()))?
            }
        };
        let owner = self
            .store
            .domain_owner(domain)?
            .unwrap_or_else(|| "rollback".to_string());
        self.store.set_active(domain, &owner, &target.root)?;
        self.publish()?;
        info!(domain, root = %&target.root[..12.min(target.root.len())], "rolled back");
        Ok(RevisionRow {
            active: true,
            ..target
        })
    }

    /// The kept revisions of `domain`, newest first.
    pub fn history(&self, domain: &str) -> Result<Vec<RevisionRow>, DeployError> {
        Ok(self.store.revisions(domain)?)
    }

    /// Removes objects and revision directories no kept revision needs.
    pub fn collect_garbage(&self) -> Result<crate::cas::GcStats, DeployError> {
        let _guard = self.lock();
        retention::collect(self)
    }

    /// Whether revision `root` is materialised here, which implies every
    /// object it names is stored (materialising links each one).
    pub fn has_revision(&self, root: &str) -> bool {
        blake3::Hash::from_hex(root)
            .is_ok_and(|hash| materialise::revision_dir(&self.revs, &hash).is_dir())
    }

    /// Installs a revision that arrived from a peer: stores its manifest,
    /// checks every object is present and materialises it, without
    /// activating anything (the replicated pointer row does that).
    pub fn install_revision(&self, manifest: &Manifest) -> Result<blake3::Hash, DeployError> {
        let _guard = self.lock();
        let hash = self.cas.put_bytes(&manifest.to_bytes())?;
        let missing = manifest
            .iter()
            .filter(|(_, entry)| !self.cas.contains(&entry.hash))
            .count();
        if missing > 0 {
            return Err(DeployError::Source(
                format!(
                    "revision {} still lacks {missing} objects",
                    manifest.root().to_hex()
                )
                .into(),
            ));
        }
        materialise::materialise(&self.cas, &self.revs, manifest)?;
        Ok(hash)
    }

    /// The manifests of the revisions materialised here, each once: what a
    /// scrub checks first, since they list every other object it checks.
    pub fn installed_manifests(&self) -> Result<Vec<blake3::Hash>, DeployError> {
        let mut seen = std::collections::HashSet::new();
        let mut manifests = Vec::new();
        for rev in self.store.all_revisions()? {
            if !self.has_revision(&rev.root) {
                continue;
            }
            if let Ok(hash) = blake3::Hash::from_hex(&rev.manifest)
                && seen.insert(hash)
            {
                manifests.push(hash);
            }
        }
        Ok(manifests)
    }

    /// Whether a materialised revision still names object `hash` (or has
    /// it as its manifest): an object a scrub found missing may have been
    /// collected with a revision pruned meanwhile.
    pub fn needs_object(&self, hash: &blake3::Hash) -> Result<bool, DeployError> {
        for manifest in self.installed_manifests()? {
            if manifest == *hash {
                return Ok(true);
            }
            if let Ok(listed) = self.read_manifest(&manifest.to_hex())
                && listed.iter().any(|(_, entry)| entry.hash == *hash)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// After damaged objects were set aside and sound copies stored under
    /// their names (`hashes`): points the materialised revisions at the new
    /// copies and republishes every site from scratch, so no snapshot keeps
    /// a body read from a damaged file. Returns the links replaced.
    pub fn replace_objects(
        &self,
        hashes: &std::collections::HashSet<blake3::Hash>,
    ) -> Result<usize, DeployError> {
        let _guard = self.lock();
        let mut replaced = 0;
        let mut seen = std::collections::HashSet::new();
        for rev in self.store.all_revisions()? {
            if !seen.insert(rev.root.clone()) || !self.has_revision(&rev.root) {
                continue;
            }
            let Ok(manifest) = self.read_manifest(&rev.manifest) else {
                continue;
            };
            replaced += materialise::relink(&self.cas, &self.revs, &manifest, hashes)?;
        }
        self.reindex()?;
        Ok(replaced)
    }

    /// Republishes every site from scratch, dropping the bodies the old
    /// snapshot read: after damaged objects were set aside, a request must
    /// read the file system again rather than serve what it read before.
    pub fn forget_bodies(&self) -> Result<(), DeployError> {
        let _guard = self.lock();
        self.reindex()
    }

    /// Forgets the indexed sites and publishes anew; the caller holds the lock.
    fn reindex(&self) -> Result<(), DeployError> {
        self.built.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.publish()
    }

    /// Republishes the site snapshot after the store changed under it
    /// (replicated pointer rows).
    pub fn refresh(&self) -> Result<(), DeployError> {
        let _guard = self.lock();
        self.publish()
    }

    /// The manifest stored under `hex`.
    pub fn manifest(&self, hex: &str) -> Result<Manifest, DeployError> {
        self.read_manifest(hex)
    }

    /// Rebuilds the snapshot from the store's active revisions and swaps it in.
    fn publish(&self) -> Result<(), DeployError> {
        let mut active = self.store.active_revisions()?;
        let production = active.len();
        active.extend(self.store.active_previews()?);
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        let mut sites = Vec::with_capacity(active.len());
        let mut live = HashMap::new();
        for row in active {
            let key = (row.domain.clone(), row.root.clone());
            let site = match built.get(&key) {
                Some(site) => site.clone(),
                None => Arc::new(self.build_site(&row)?),
            };
            live.insert(key, site.clone());
            sites.push(site);
        }
        // Every kept revision of a domain answers at its permalink host;
        // those superseded within the skew window also to pinned visitors.
        let mut pinned = Vec::new();
        for site in sites.iter().take(production) {
            let rows = self.store.revisions(&site.domain)?;
            let pinnable = skew::pinnable(&rows, site.config.skew_protection_secs);
            for row in &rows {
                let key = (row.domain.clone(), row.root.clone());
                let kept = match built.get(&key).or_else(|| live.get(&key)) {
                    Some(site) => site.clone(),
                    None => match self.build_site(row) {
                        Ok(site) => Arc::new(site),
                        Err(e) => {
                            // Its permalink is lost, not the live site.
                            tracing::warn!(domain = %row.domain, root = %row.root, error = %e, "kept revision not served at its permalink");
                            continue;
                        }
                    },
                };
                live.insert(key, kept.clone());
                let until = pinnable
                    .iter()
                    .find(|(r, _)| r.root == row.root)
                    .map(|(_, until)| *until);
                pinned.push(Pinned { site: kept, until });
            }
        }
        // Only active sites stay indexed; a rollback re-indexes its target.
        *built = live;
        drop(built);
        let first = self
            .first_domain
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(i) = first.and_then(|first| sites.iter().position(|s| s.domain == first)) {
            let site = sites.remove(i);
            sites.insert(0, site);
        }
        self.sites.publish_with_pinned(sites, pinned);
        Ok(())
    }

    fn build_site(&self, row: &RevisionRow) -> Result<Site, DeployError> {
        let manifest = self.read_manifest(&row.manifest)?;
        let domain = domain_of(row)?;
        let deployed_at = UNIX_EPOCH + Duration::from_millis(row.created_ms.max(0) as u64);
        let parts = wasm::site_wasm(self, &row.domain, &row.root, &row.extras, &domain, &manifest)
            .unwrap_or_else(|e| {
                // One broken module must not take every site down: the
                // revision is served without its functions, and says why.
                tracing::error!(domain = %row.domain, error = %e, "functions unavailable for this revision");
                SiteWasm {
                    hidden: wasm::hidden_paths(&domain),
                    ..Default::default()
                }
            });
        Ok(Site::build_with_wasm(
            &domain,
            &manifest,
            &self.cas,
            deployed_at,
            parts,
        ))
    }

    fn read_manifest(&self, hex: &str) -> Result<Manifest, DeployError> {
        let hash = blake3::Hash::from_hex(hex).map_err(|_| StoreError::Corrupt {
            what: "manifest hash",
            value: hex.to_string(),
        })?;
        Ok(Manifest::from_bytes(&self.cas.read(&hash)?)?)
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, only ordering: poisoning is harmless.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `[[domain]]` a revision row was deployed as.
fn domain_of(row: &RevisionRow) -> Result<Domain, DeployError> {
    if row.config.is_empty() {
        return Ok(Domain::bare(&row.domain));
    }
    let config = SiteConfig::parse(SITE_CONFIG_FILE, &row.config)?;
    let mut domains = config.domains.into_iter();
    domains
        .find_map(|d| {
            if d.name == row.domain {
                return Some(d);
            }
            // A preview host: the domain's rules, under the preview's name.
            preview::is_preview_of(&row.domain, &d.name).then(|| Domain {
                name: row.domain.clone(),
                aliases: Vec::new(),
                ..d
            })
        })
        .ok_or_else(|| {
            DeployError::Store(StoreError::Corrupt {
                what: "revision config (domain missing)",
                value: row.domain.clone(),
            })
        })
}
