//! `maki init [DIR]`: writes the starter site, ready to edit and push.
//!
//! The template is compiled into the binary, so `maki` works anywhere
//! without the source tree.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Every file of `site-template/`, by relative path.
const TEMPLATE: &[(&str, &[u8])] = &[
    (
        "makiatto.toml",
        include_bytes!("../../site-template/makiatto.toml"),
    ),
    (
        "public/index.html",
        include_bytes!("../../site-template/public/index.html"),
    ),
    (
        "public/about.html",
        include_bytes!("../../site-template/public/about.html"),
    ),
    (
        "public/404.html",
        include_bytes!("../../site-template/public/404.html"),
    ),
    (
        "public/docs/index.html",
        include_bytes!("../../site-template/public/docs/index.html"),
    ),
    (
        "public/favicon.svg",
        include_bytes!("../../site-template/public/favicon.svg"),
    ),
    (
        "public/assets/style.css",
        include_bytes!("../../site-template/public/assets/style.css"),
    ),
    (
        "public/assets/logo.svg",
        include_bytes!("../../site-template/public/assets/logo.svg"),
    ),
];

/// Why the template could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{path} already exists; choose an empty directory (maki init DIR) or remove it")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes the starter site into `dir` (created if missing), refusing to
/// overwrite any existing file. Returns the files written.
pub fn write_template(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    // Check everything first so a refusal writes nothing.
    for (rel, _) in TEMPLATE {
        let path = dir.join(rel);
        if path.exists() {
            return Err(InitError::Exists { path });
        }
    }
    let mut written = Vec::with_capacity(TEMPLATE.len());
    for (rel, bytes) in TEMPLATE {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| InitError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        let result = options
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes));
        match result {
            Ok(()) => written.push(path),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(InitError::Exists { path });
            }
            Err(source) => return Err(InitError::Write { path, source }),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_file_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_template(dir.path()).unwrap();
        assert_eq!(written.len(), TEMPLATE.len());
        assert!(dir.path().join("public/index.html").is_file());
        let again = write_template(dir.path()).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
    }
}
