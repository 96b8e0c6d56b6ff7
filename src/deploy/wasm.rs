//! A revision's WebAssembly, prepared at deploy time.
//!
//! Before activation: each configured component is read from the tree,
//! compiled (cached by blake3) and checked against its world; env files
//! are read from the repository; transforms run once per matching file,
//! and their output is stored in the CAS and put in the manifest, so the
//! revision root and every ETag follow the transformed bytes and no
//! request ever runs a transform. What a manifest cannot hold (env file
//! texts, the content types and headers transforms set) goes into the
//! revision's row (replicated, so every node serves the revision as its
//! origin does) and beside the revision in
//! `wasm/revisions/<key>/<root>.toml`; it is read back whenever the
//! revision is indexed (activation, rollback, restart), from the row, or
//! from the file for a revision recorded before rows carried it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::source::SiteSource;
use super::{DeployError, Deployer, materialise};
use crate::cas::is_compressible;
use crate::config::{Domain, OnError};
use crate::live::{FileOverride, SiteWasm};
use crate::tree::{Entry, Manifest};
use crate::wasm::{self, FileInfo, Kind, ModuleSpec};

/// What the manifest cannot hold about a revision's WebAssembly.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Extras {
    /// Env file path (repository-relative) → its text at this revision.
    #[serde(default)]
    env_files: BTreeMap<String, String>,
    /// Served path → what transforms set besides the bytes.
    #[serde(default)]
    files: BTreeMap<String, FileExtra>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileExtra {
    content_type: Option<String>,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

/// Checks every module `domain` configures in `source`: present, a
/// component of the right world (compiled now, so the deploy reuses it),
/// and its env file present and well-formed.
pub(super) fn check(
    deployer: &Deployer,
    source: &dyn SiteSource,
    domain: &Domain,
) -> Result<(), DeployError> {
    let modules = domain
        .functions
        .iter()
        .map(|f| (Kind::Function, f.path.as_str()))
        .chain(
            domain
                .transforms
                .iter()
                .map(|t| (Kind::Transform, t.path.as_str())),
        );
    for (kind, module) in modules {
        let full = in_repo(domain, module);
        let Some(bytes) = source.read_file(&full)? else {
            return Err(DeployError::MissingModule {
                domain: domain.name.clone(),
                path: full,
            });
        };
        deployer
            .wasm
            .check(kind, &bytes)
            .map_err(|e| invalid(domain, &full, e))?;
    }
    env_files(source, domain)?;
    Ok(())
}

/// Runs `domain`'s transforms over `manifest` (already in the CAS) and
/// returns the served manifest and the extras to keep beside it.
pub(super) fn prepare(
    deployer: &Deployer,
    source: &dyn SiteSource,
    domain: &Domain,
    manifest: Arc<Manifest>,
) -> Result<(Arc<Manifest>, Extras), DeployError> {
    let mut extras = Extras::default();
    if domain.functions.is_empty() && domain.transforms.is_empty() {
        return Ok((manifest, extras));
    }
    extras.env_files = env_files(source, domain)?;
    if domain.transforms.is_empty() {
        return Ok((manifest, extras));
    }
    let transformed = transform(deployer, domain, &manifest, &mut extras)?;
    Ok((Arc::new(transformed), extras))
}

/// Runs the transform chain once per matching file.
fn transform(
    deployer: &Deployer,
    domain: &Domain,
    manifest: &Manifest,
    extras: &mut Extras,
) -> Result<Manifest, DeployError> {
    // Transforms see the tree as pushed, read-only at `/`.
    let revision = materialise::materialise(&deployer.cas, &deployer.revs, manifest)?;
    let hidden = hidden_paths(domain);
    let mut chain = Vec::with_capacity(domain.transforms.len());
    for t in &domain.transforms {
        let bytes = module_bytes(deployer, domain, manifest, &t.path)?;
        let env = module_env(domain, t.env_file.as_deref(), &t.env, &extras.env_files)?;
        let spec = ModuleSpec {
            path: &t.path,
            bytes: &bytes,
            env,
            limits: wasm::transform_limits(t.timeout_ms, t.max_memory_mb),
        };
        let runner = deployer
            .wasm
            .transformer(spec, &revision)
            .map_err(|e| invalid(domain, &in_repo(domain, &t.path), e))?;
        // Validated by config/ as a glob with these options.
        let glob = globset::GlobBuilder::new(&t.files)
            .literal_separator(true)
            .build()
            .map_err(|source| DeployError::TransformFiles {
                pattern: t.files.clone(),
                source,
            })?
            .compile_matcher();
        chain.push((
            t,
            runner,
            glob,
            wasm::transform_file_limit(t.max_file_size_kb),
        ));
    }

    let cas = &deployer.cas;
    let work = async {
        let mut out = manifest.clone();
        let mut files = BTreeMap::new();
        let mut runs = 0usize;
        for (path, entry) in manifest.iter() {
            if hidden.contains(path) {
                continue;
            }
            let steps: Vec<_> = chain.iter().filter(|c| c.2.is_match(path)).collect();
            if steps.is_empty() {
                continue;
            }
            let mut content = cas.read(&entry.hash)?;
            let mut mime = mime_guess::from_path(path)
                .first_or_octet_stream()
                .essence_str()
                .to_string();
            let mut extra = FileExtra::default();
            let mut changed = false;
            for (t, runner, _, max) in steps {
                if content.len() as u64 > *max {
                    info!(transform = %t.path, file = path, size = content.len(), "file over max_file_size_kb; left as it is");
                    continue;
                }
                let info = FileInfo {
                    path: path.to_string(),
                    mime_type: mime.clone(),
                    size: content.len() as u64,
                };
                runs += 1;
                match runner.apply(info, content.clone()).await {
                    Ok(Some(result)) => {
                        content = result.content;
                        if let Some(m) = result.mime_type {
                            mime = m.clone();
                            extra.content_type = Some(m);
                        }
                        extra.headers.extend(result.headers);
                        changed = true;
                    }
                    Ok(None) => {}
                    Err(e) if t.on_error == OnError::Skip => {
                        warn!(transform = %t.path, file = path, error = %e, "transform failed; the file goes on without it");
                    }
                    Err(e) => {
                        return Err(DeployError::Transform {
                            domain: domain.name.clone(),
                            transform: t.path.clone(),
                            file: path.to_string(),
                            source: Box::new(e),
                        });
                    }
                }
            }
            if changed {
                let hash = cas.put_bytes(&content)?;
                cas.ensure_variants(&hash, is_compressible(path))?;
                out.insert(
                    path,
                    Entry {
                        mode: entry.mode,
                        size: content.len() as u64,
                        hash,
                    },
                )?;
                files.insert(path.to_string(), extra);
            }
        }
        info!(domain = %domain.name, runs, changed = files.len(), "transforms applied");
        Ok::<_, DeployError>((out, files))
    };
    let (out, files) = wasm::block_on(work).map_err(|e| invalid(domain, "transforms", e))??;
    extras.files = files;
    Ok(out)
}

/// Writes `extras` beside revision `root` of `key` (atomically); returns
/// their text for the revision row ("" when there are none).
pub(super) fn save(
    deployer: &Deployer,
    key: &str,
    root: &str,
    extras: &Extras,
) -> Result<String, DeployError> {
    if extras.env_files.is_empty() && extras.files.is_empty() {
        return Ok(String::new());
    }
    let path = extras_path(deployer, key, root);
    let text = toml::to_string(extras).map_err(DeployError::Extras)?;
    let io = |context, path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io {
            context,
            path,
            source,
        }
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, &text).map_err(io("cannot write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io("cannot move into place", &path))?;
    Ok(text)
}

/// The WebAssembly parts of revision `root` of `key`, for indexing it;
/// `recorded` is the extras text of its row.
pub(super) fn site_wasm(
    deployer: &Deployer,
    key: &str,
    root: &str,
    recorded: &str,
    domain: &Domain,
    manifest: &Manifest,
) -> Result<SiteWasm, DeployError> {
    let mut site = SiteWasm {
        hidden: hidden_paths(domain),
        ..SiteWasm::default()
    };
    if domain.functions.is_empty() && domain.transforms.is_empty() {
        return Ok(site);
    }
    let extras = load(deployer, key, root, recorded);
    for (path, extra) in extras.files {
        site.overrides.insert(
            path,
            FileOverride {
                content_type: extra.content_type,
                headers: extra.headers,
            },
        );
    }
    let hash = blake3::Hash::from_hex(root).map_err(|_| {
        DeployError::Source(format!("revision root {root:?} is not a blake3 hash").into())
    })?;
    let revision = materialise::revision_dir(&deployer.revs, &hash);
    let mut functions = HashMap::new();
    for f in &domain.functions {
        let bytes = module_bytes(deployer, domain, manifest, &f.path)?;
        let env = module_env(domain, f.env_file.as_deref(), &f.env, &extras.env_files)?;
        let spec = ModuleSpec {
            path: &f.path,
            bytes: &bytes,
            env,
            limits: wasm::function_limits(f.timeout_ms, f.max_memory_mb),
        };
        let function = deployer
            .wasm
            .function(spec, f.methods.clone(), &revision)
            .map_err(|e| invalid(domain, &in_repo(domain, &f.path), e))?;
        let route = f.path.strip_suffix(".wasm").unwrap_or(&f.path).to_string();
        functions.insert(route, Arc::new(function));
    }
    site.functions = functions;
    Ok(site)
}

/// The extras of a revision: `recorded` (its row's), else the file of a
/// revision recorded before rows carried them; none when neither exists.
fn load(deployer: &Deployer, key: &str, root: &str, recorded: &str) -> Extras {
    if !recorded.is_empty() {
        return toml::from_str(recorded).unwrap_or_else(|e| {
            warn!(site = key, root, error = %e, "unreadable WebAssembly extras in the revision row; ignored");
            Extras::default()
        });
    }
    let path = extras_path(deployer, key, root);
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).unwrap_or_else(|e| {
            warn!(file = %path.display(), error = %e, "unreadable WebAssembly extras; ignored");
            Extras::default()
        }),
        Err(_) => Extras::default(),
    }
}

fn extras_path(deployer: &Deployer, key: &str, root: &str) -> PathBuf {
    // `key` is a validated host name and `root` hex: both safe file names.
    deployer
        .data_dir
        .join("wasm")
        .join("revisions")
        .join(key)
        .join(format!("{root}.toml"))
}

/// Every env file the domain names, read from the repository.
fn env_files(
    source: &dyn SiteSource,
    domain: &Domain,
) -> Result<BTreeMap<String, String>, DeployError> {
    let mut texts = BTreeMap::new();
    let named = domain
        .functions
        .iter()
        .map(|f| (&f.env_file, &f.env))
        .chain(domain.transforms.iter().map(|t| (&t.env_file, &t.env)));
    for (file, env) in named {
        let Some(file) = file else { continue };
        if texts.contains_key(file) {
            continue;
        }
        let Some(bytes) = source.read_file(file)? else {
            return Err(DeployError::MissingEnvFile {
                domain: domain.name.clone(),
                path: file.clone(),
            });
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            DeployError::Source(format!("env_file {file:?} is not UTF-8 text").into())
        })?;
        wasm::environment(Some((file, &text)), env).map_err(DeployError::EnvFile)?;
        texts.insert(file.clone(), text);
    }
    Ok(texts)
}

/// A module's whole environment.
fn module_env(
    domain: &Domain,
    env_file: Option<&str>,
    env: &BTreeMap<String, String>,
    texts: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, DeployError> {
    let file = match env_file {
        Some(name) => match texts.get(name) {
            Some(text) => Some((name, text.as_str())),
            None => {
                warn!(domain = %domain.name, env_file = name, "env file not recorded with this revision; using env only");
                None
            }
        },
        None => None,
    };
    wasm::environment(file, env).map_err(DeployError::EnvFile)
}

/// The bytes of module `path` (served-tree relative) from the CAS.
fn module_bytes(
    deployer: &Deployer,
    domain: &Domain,
    manifest: &Manifest,
    path: &str,
) -> Result<Vec<u8>, DeployError> {
    let entry = manifest
        .get(path)
        .ok_or_else(|| DeployError::MissingModule {
            domain: domain.name.clone(),
            path: in_repo(domain, path),
        })?;
    Ok(deployer.cas.read(&entry.hash)?)
}

/// Served-tree paths never served as files: the modules, and env files
/// that sit inside the served tree.
pub(super) fn hidden_paths(domain: &Domain) -> HashSet<String> {
    let mut hidden: HashSet<String> = domain
        .functions
        .iter()
        .map(|f| f.path.clone())
        .chain(domain.transforms.iter().map(|t| t.path.clone()))
        .collect();
    let env_files = domain
        .functions
        .iter()
        .filter_map(|f| f.env_file.as_deref())
        .chain(
            domain
                .transforms
                .iter()
                .filter_map(|t| t.env_file.as_deref()),
        );
    for file in env_files {
        if domain.path.is_empty() {
            hidden.insert(file.to_string());
        } else if let Some(inside) = file.strip_prefix(&format!("{}/", domain.path)) {
            hidden.insert(inside.to_string());
        }
    }
    hidden
}

/// A served-tree path as a repository path.
fn in_repo(domain: &Domain, path: &str) -> String {
    if domain.path.is_empty() {
        path.to_string()
    } else {
        format!("{}/{path}", domain.path)
    }
}

fn invalid(domain: &Domain, path: &str, e: wasm::WasmError) -> DeployError {
    DeployError::InvalidModule {
        domain: domain.name.clone(),
        path: path.to_string(),
        source: Box::new(e),
    }
}
