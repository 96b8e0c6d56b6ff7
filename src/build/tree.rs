//! A built checkout as a deploy source: the files come from the checkout
//! after the build, the site config from the commit as pushed (a build
//! cannot rewrite which domains it deploys or how), and revisions record
//! the commit, as an unbuilt push would.

use std::path::Path;

use crate::cas::Cas;
use crate::deploy::{DeployError, DirSource, SiteSource};
use crate::tree::Manifest;

/// The checkout a build left, deployable.
pub struct BuiltSource<'a> {
    /// The checkout's root.
    pub dir: &'a Path,
    /// The site config text as pushed (`None` when there is none).
    pub config: Option<String>,
    /// What revisions record as their source: the commit id, or the site
    /// directory in dev mode.
    pub label: String,
}

impl BuiltSource<'_> {
    fn files(&self) -> DirSource<'_> {
        // Nothing inside a checkout is the node's: exclude nothing.
        DirSource {
            dir: self.dir,
            exclude: Path::new(""),
        }
    }
}

impl SiteSource for BuiltSource<'_> {
    fn site_config(&self) -> Result<Option<String>, DeployError> {
        Ok(self.config.clone())
    }

    fn is_dir(&self, path: &str) -> Result<bool, DeployError> {
        self.files().is_dir(path)
    }

    fn is_file(&self, path: &str) -> Result<bool, DeployError> {
        self.files().is_file(path)
    }

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, DeployError> {
        self.files().read_file(path)
    }

    fn import(&self, cas: &Cas, path: &str) -> Result<Manifest, DeployError> {
        self.files().import(cas, path)
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    fn built(&self) -> bool {
        true
    }
}
