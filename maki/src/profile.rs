//! Cluster profiles: the operator's record of a cluster's nodes and how to
//! reach them, so `maki` finds the cluster without flags.
//!
//! One TOML file per cluster, `<config>/maki/clusters/NAME.toml`, where
//! `<config>` is `$XDG_CONFIG_HOME`, else `~/.config` (on macOS too: one
//! place to document, and where command-line tools there already look).
//! `maki machine init/add` write it; every command that talks to a node
//! reads it. Without `--profile` (or `MAKI_PROFILE`) the profile is
//! `default`.
//!
//! ```toml
//! [[node]]
//! name = "london"
//! admin = "git@203.0.113.1:2222"   # the node's git and admin SSH endpoint
//! machine = "root@203.0.113.1"     # the host's own sshd, for `maki machine`
//! ```

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::remote::{NodeAddr, RemoteError};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// One cluster's nodes, as the operator reaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name: the file's stem.
    pub name: String,
    /// Where it is stored.
    pub path: PathBuf,
    /// In the order admin commands try them.
    pub nodes: Vec<ProfileNode>,
}

/// One node of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileNode {
    /// The node's name in the cluster (node.toml's `name`).
    pub name: String,
    /// The node's SSH endpoint for git and admin commands,
    /// `[user@]host[:port]` (user `git`, port 2222 by default).
    pub admin: String,
    /// The host's own SSH login (`root@host[:port]`), which `maki machine`
    /// provisions through; absent for nodes set up by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

/// The file's layout.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default, rename = "node")]
    nodes: Vec<ProfileNode>,
}

/// Why a profile could not be found, read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "{0:?} is not a profile name: use lowercase letters, digits, - and _, starting with a letter or digit"
    )]
    BadName(String),
    #[error(
        "neither XDG_CONFIG_HOME nor HOME is set, so there is no config directory for profiles"
    )]
    NoConfigDir,
    #[error(
        "no cluster profile {name:?} ({path}): run `maki machine init` to create it, or pass --node user@host:port"
    )]
    Missing { name: String, path: PathBuf },
    #[error("cannot read the profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the profile {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("the profile {path}, node {node:?}: {source}")]
    BadAddr {
        path: PathBuf,
        node: String,
        source: RemoteError,
    },
    #[error("the profile {path} names node {0:?} twice; remove one", path = .1.display())]
    Duplicate(String, PathBuf),
    #[error("the profile {path} lists no nodes; add one with `maki machine add`")]
    Empty { path: PathBuf },
    #[error("cannot write the profile {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the profile {path}: {source}")]
    Serialize {
        path: PathBuf,
        source: toml::ser::Error,
    },
}

impl Profile {
    /// The directory holding every profile: `<config>/maki/clusters`.
    pub fn dir() -> Result<PathBuf, ProfileError> {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })
            .ok_or(ProfileError::NoConfigDir)?;
        Ok(config.join("maki").join("clusters"))
    }

    /// Where profile `name` is stored.
    pub fn path_of(name: &str) -> Result<PathBuf, ProfileError> {
        check_name(name)?;
        Ok(Profile::dir()?.join(format!("{name}.toml")))
    }

    /// The name to use: `flag`, else `MAKI_PROFILE`, else `default`.
    pub fn chosen_name(flag: Option<&str>) -> String {
        flag.map(str::to_string)
            .or_else(|| std::env::var("MAKI_PROFILE").ok())
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_string())
    }

    /// Reads profile `name`; [`ProfileError::Missing`] when it does not
    /// exist.
    pub fn load(name: &str) -> Result<Profile, ProfileError> {
        let path = Profile::path_of(name)?;
        match Profile::read(name, &path)? {
            Some(profile) => Ok(profile),
            None => Err(ProfileError::Missing {
                name: name.to_string(),
                path,
            }),
        }
    }

    /// Reads profile `name`, or an empty one to fill when it does not
    /// exist yet (what `maki machine init` starts from).
    pub fn load_or_new(name: &str) -> Result<Profile, ProfileError> {
        let path = Profile::path_of(name)?;
        Ok(Profile::read(name, &path)?.unwrap_or(Profile {
            name: name.to_string(),
            path,
            nodes: Vec::new(),
        }))
    }

    fn read(name: &str, path: &Path) -> Result<Option<Profile>, ProfileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ProfileError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let file: ProfileFile = toml::from_str(&text).map_err(|source| ProfileError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let profile = Profile {
            name: name.to_string(),
            path: path.to_path_buf(),
            nodes: file.nodes,
        };
        profile.validate()?;
        Ok(Some(profile))
    }

    /// Every node's address parses and no name repeats.
    fn validate(&self) -> Result<(), ProfileError> {
        for (i, node) in self.nodes.iter().enumerate() {
            self.admin_addr(node)?;
            if self.nodes[..i].iter().any(|n| n.name == node.name) {
                return Err(ProfileError::Duplicate(
                    node.name.clone(),
                    self.path.clone(),
                ));
            }
        }
        Ok(())
    }

    fn admin_addr(&self, node: &ProfileNode) -> Result<NodeAddr, ProfileError> {
        NodeAddr::parse(&node.admin).map_err(|source| ProfileError::BadAddr {
            path: self.path.clone(),
            node: node.name.clone(),
            source,
        })
    }

    /// Adds `node`, replacing the node of the same name (so running
    /// `maki machine add` again converges). Checks its address.
    pub fn add_node(&mut self, node: ProfileNode) -> Result<(), ProfileError> {
        self.admin_addr(&node)?;
        match self.nodes.iter_mut().find(|n| n.name == node.name) {
            Some(existing) => *existing = node,
            None => self.nodes.push(node),
        }
        Ok(())
    }

    /// Removes the node named `name`; whether it was there.
    pub fn remove_node(&mut self, name: &str) -> bool {
        let before = self.nodes.len();
        self.nodes.retain(|n| n.name != name);
        self.nodes.len() != before
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&ProfileNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Writes the profile, creating its directory; a reader sees the old
    /// file or the new one, never half of one.
    pub fn save(&self) -> Result<(), ProfileError> {
        let write_err = |source| ProfileError::Write {
            path: self.path.clone(),
            source,
        };
        let text = toml::to_string(&ProfileFile {
            nodes: self.nodes.clone(),
        })
        .map_err(|source| ProfileError::Serialize {
            path: self.path.clone(),
            source,
        })?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let temp = self.path.with_extension("toml.new");
        std::fs::write(&temp, text).map_err(write_err)?;
        std::fs::rename(&temp, &self.path).map_err(write_err)
    }

    /// The admin endpoints to try, in order; an error when there are none.
    pub fn admin_targets(&self) -> Result<Vec<NodeAddr>, ProfileError> {
        if self.nodes.is_empty() {
            return Err(ProfileError::Empty {
                path: self.path.clone(),
            });
        }
        self.nodes.iter().map(|n| self.admin_addr(n)).collect()
    }
}

fn check_name(name: &str) -> Result<(), ProfileError> {
    let ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ProfileError::BadName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_dir(dir: &Path, name: &str) -> Profile {
        Profile {
            name: name.to_string(),
            path: dir.join(format!("{name}.toml")),
            nodes: Vec::new(),
        }
    }

    fn node(name: &str, admin: &str) -> ProfileNode {
        ProfileNode {
            name: name.to_string(),
            admin: admin.to_string(),
            machine: None,
        }
    }

    #[test]
    fn a_saved_profile_reads_back_and_adding_a_node_again_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut profile = in_dir(dir.path(), "prod");
        profile
            .add_node(node("london", "git@203.0.113.1:2222"))
            .unwrap();
        profile.add_node(node("tokyo", "203.0.113.2")).unwrap();
        let mut again = node("london", "git@203.0.113.9:2222");
        again.machine = Some("root@203.0.113.9".into());
        profile.add_node(again).unwrap();
        profile.save().unwrap();

        let read = Profile::read("prod", &profile.path).unwrap().unwrap();
        assert_eq!(read, profile);
        assert_eq!(read.nodes.len(), 2);
        assert_eq!(read.nodes[0].admin, "git@203.0.113.9:2222");
        let targets = read.admin_targets().unwrap();
        assert_eq!(targets[1].port, crate::remote::DEFAULT_PORT);
        assert!(profile.clone().remove_node("tokyo"));
    }

    #[test]
    fn bad_profiles_and_names_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        for (text, wanted) in [
            (
                "[[node]]\nname = \"a\"\nadmin = \"-oProxyCommand=x\"\n",
                "node \"a\"",
            ),
            ("[[node]]\nname = \"a\"\nadmn = \"h\"\n", "admn"),
            (
                "[[node]]\nname = \"a\"\nadmin = \"h\"\n[[node]]\nname = \"a\"\nadmin = \"g\"\n",
                "twice",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Profile::read("x", &path).unwrap_err().to_string();
            assert!(err.contains(wanted) && err.contains("x.toml"), "{err}");
        }
        std::fs::write(&path, "").unwrap();
        let empty = Profile::read("x", &path).unwrap().unwrap();
        assert!(
            empty
                .admin_targets()
                .unwrap_err()
                .to_string()
                .contains("no nodes")
        );
        for bad in ["", "Prod", "../x", "-x", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            Profile::read("none", &dir.path().join("none.toml"))
                .unwrap()
                .is_none()
        );
    }
}
