//! Where access log lines go: standard output, or a file rotated by size
//! (`access.log` → `access.log.1` → … → `access.log.N`, the oldest
//! removed). Only the writer thread touches it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

/// The writer's output.
pub enum Output {
    Stdout(BufWriter<std::io::Stdout>),
    File(Rotating),
}

/// A file that is renamed away before it grows past `max_bytes`.
pub struct Rotating {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: BufWriter<File>,
    /// Bytes in the current file.
    size: u64,
    /// Whether the last write failed (so a failing disk is reported once,
    /// not per line).
    failing: bool,
}

impl Output {
    pub fn stdout() -> Output {
        Output::Stdout(BufWriter::with_capacity(64 * 1024, std::io::stdout()))
    }

    /// Opens (creating, appending to) the file at `path`.
    pub fn file(path: &Path, max_bytes: u64, keep: u32) -> std::io::Result<Output> {
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(Output::File(Rotating {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            file: BufWriter::with_capacity(64 * 1024, file),
            size,
            failing: false,
        }))
    }

    /// Writes `line` and a newline; false when it could not be written.
    pub fn write_line(&mut self, line: &str) -> bool {
        match self {
            Output::Stdout(out) => {
                out.write_all(line.as_bytes()).is_ok() && out.write_all(b"\n").is_ok()
            }
            Output::File(file) => file.write_line(line),
        }
    }

    /// Pushes buffered lines to the file or stream.
    pub fn flush(&mut self) {
        let _ = match self {
            Output::Stdout(out) => out.flush(),
            Output::File(file) => file.file.flush(),
        };
    }
}

impl Rotating {
    fn write_line(&mut self, line: &str) -> bool {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate();
        }
        let result = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"));
        match result {
            Ok(()) => {
                self.size += len;
                self.failing = false;
                true
            }
            Err(e) => {
                if !self.failing {
                    warn!(path = %self.path.display(), error = %e, "cannot write the access log");
                }
                self.failing = true;
                false
            }
        }
    }

    /// Shifts the numbered files up by one (the last falls off), moves
    /// the current file to `.1` and starts an empty one.
    fn rotate(&mut self) {
        let _ = self.file.flush();
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        let _ = std::fs::remove_file(numbered(self.keep));
        for n in (1..self.keep).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        if let Err(e) = std::fs::rename(&self.path, numbered(1)) {
            warn!(path = %self.path.display(), error = %e, "cannot rotate the access log");
        }
        match open(&self.path) {
            Ok(file) => {
                self.file = BufWriter::with_capacity(64 * 1024, file);
                self.size = 0;
            }
            Err(e) => {
                // Keep writing to the renamed file rather than lose lines.
                warn!(path = %self.path.display(), error = %e, "cannot open a new access log");
            }
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_configured_number_of_files() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("access.log");
        let Ok(Output::File(mut out)) = Output::file(&path, 100, 2) else {
            panic!("a file output");
        };
        for i in 0..20 {
            // 50 bytes with the newline: two lines per file.
            assert!(out.write_line(&format!("{i:049}")));
        }
        let _ = out.file.flush();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read the dir")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(names, ["access.log", "access.log.1", "access.log.2"]);
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect("read");
        assert_eq!(read("access.log"), format!("{:049}\n{:049}\n", 18, 19));
        assert_eq!(read("access.log.1"), format!("{:049}\n{:049}\n", 16, 17));
        assert_eq!(read("access.log.2"), format!("{:049}\n{:049}\n", 14, 15));
    }
}
