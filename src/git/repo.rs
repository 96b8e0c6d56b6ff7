//! One bare repository under `repos/NAME.git`: created on first push,
//! objects through gix-odb, refs through gix-ref transactions.
//!
//! Only branches (`refs/heads/*`) and tags (`refs/tags/*`) are accepted
//! and advertised; HEAD points at `refs/heads/main`.

use std::fs;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use super::{GitError, RepoName};

/// The branch HEAD names in a new repository.
pub const DEFAULT_HEAD: &str = "refs/heads/main";

/// An open bare repository.
pub struct Repo {
    pub name: RepoName,
    pub path: PathBuf,
    pub odb: gix::odb::Handle,
    refs: gix::refs::file::Store,
}

/// One requested ref change: `old` or `new` is the null id for a create or
/// a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub name: String,
    pub old: ObjectId,
    pub new: ObjectId,
}

impl Repo {
    /// Opens `repos/NAME.git`, or `None` if it does not exist yet.
    pub fn open(repos: &Path, name: &RepoName) -> Result<Option<Repo>, GitError> {
        let path = repos.join(name.dir_name());
        if !path.join("objects").is_dir() {
            return Ok(None);
        }
        Repo::at(path, name).map(Some)
    }

    /// Opens `repos/NAME.git`, creating an empty bare repository first if
    /// needed; the bool says whether it was created.
    pub fn open_or_create(repos: &Path, name: &RepoName) -> Result<(Repo, bool), GitError> {
        if let Some(repo) = Repo::open(repos, name)? {
            return Ok((repo, false));
        }
        let path = repos.join(name.dir_name());
        create_bare(repos, &path)?;
        Ok((Repo::at(path, name)?, true))
    }

    fn at(path: PathBuf, name: &RepoName) -> Result<Repo, GitError> {
        let odb = gix::odb::at(path.join("objects"), gix::hash::Kind::Sha1)
            .map_err(|e| GitError::repo(format!("cannot open objects of {name}"), e))?;
        let refs = gix::refs::file::Store::at_opts(
            path.clone(),
            gix::hash::Kind::Sha1,
            gix::refs::store::init::Options {
                write_reflog: gix::refs::store::WriteReflog::Disable,
                ..Default::default()
            },
        );
        Ok(Repo {
            name: name.clone(),
            path,
            odb,
            refs,
        })
    }

    /// This repository seen through another object database: a push's
    /// quarantine, whose alternates reach this repository's objects.
    pub fn with_odb(&self, odb: gix::odb::Handle) -> Repo {
        Repo {
            name: self.name.clone(),
            path: self.path.clone(),
            odb,
            refs: self.refs.clone(),
        }
    }

    /// `objects/pack`, where received packs are written.
    pub fn pack_dir(&self) -> PathBuf {
        self.path.join("objects").join("pack")
    }

    /// Every branch and tag with the object it points at, by name.
    pub fn refs(&self) -> Result<Vec<(String, ObjectId)>, GitError> {
        let platform = self
            .refs
            .iter()
            .map_err(|e| GitError::repo(format!("cannot list refs of {}", self.name), e))?;
        let iter = platform
            .all()
            .map_err(|e| GitError::repo(format!("cannot list refs of {}", self.name), e))?;
        let mut out = Vec::new();
        for reference in iter {
            let reference = reference
                .map_err(|e| GitError::repo(format!("cannot read a ref of {}", self.name), e))?;
            let name = reference.name.as_bstr().to_string();
            if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
                continue;
            }
            if let Target::Object(id) = reference.target {
                out.push((name, id));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Applies `updates` in one transaction: every ref is locked and its
    /// current value checked against `old` before any is written.
    pub fn update_refs(&self, updates: &[RefUpdate]) -> Result<(), GitError> {
        let mut edits = Vec::with_capacity(updates.len());
        for u in updates {
            let name = FullName::try_from(u.name.as_str())
                .map_err(|e| GitError::repo(format!("invalid ref name {}", u.name), e))?;
            let expected = if u.old.is_null() {
                PreviousValue::MustNotExist
            } else {
                PreviousValue::MustExistAndMatch(Target::Object(u.old))
            };
            let change = if u.new.is_null() {
                Change::Delete {
                    expected,
                    log: RefLog::AndReference,
                }
            } else {
                Change::Update {
                    log: LogChange::default(),
                    expected,
                    new: Target::Object(u.new),
                }
            };
            edits.push(RefEdit {
                change,
                name,
                deref: false,
            });
        }
        let fail =
            gix::lock::acquire::Fail::AfterDurationWithBackoff(std::time::Duration::from_secs(5));
        self.refs
            .transaction()
            .prepare(edits, fail, fail)
            .and_then(|t| t.commit(None))
            .map_err(|e| GitError::RefUpdate(e.into()))?;
        Ok(())
    }
}

/// Creates an empty bare repository at `path` (built beside it and renamed
/// into place, so a crash never leaves half a repository).
fn create_bare(repos: &Path, path: &Path) -> Result<(), GitError> {
    let io = |what: &str| {
        let what = format!("{what} {}", path.display());
        move |e: std::io::Error| GitError::repo(format!("cannot create {what}"), e)
    };
    fs::create_dir_all(repos).map_err(io("the repository directory for"))?;
    let tmp = repos.join(format!(
        ".new-{}-{}",
        std::process::id(),
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    ));
    let _ = fs::remove_dir_all(&tmp);
    for dir in [
        "objects/pack",
        "objects/info",
        "refs/heads",
        "refs/tags",
        "hooks",
        "info",
    ] {
        fs::create_dir_all(tmp.join(dir)).map_err(io("the layout of"))?;
    }
    fs::write(tmp.join("HEAD"), format!("ref: {DEFAULT_HEAD}\n")).map_err(io("HEAD of"))?;
    fs::write(
        tmp.join("config"),
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
    )
    .map_err(io("the config of"))?;
    fs::write(
        tmp.join("description"),
        "A repository pushed to makiatto.\n",
    )
    .map_err(io("the description of"))?;
    match fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        // Another push created it first: use theirs.
        Err(_) if path.join("objects").is_dir() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => Err(io("")(e)),
    }
}
