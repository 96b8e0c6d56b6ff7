//! A full disk during a push: the data directory on a small tmpfs the
//! test mounts (and unmounts, even when it fails). The push is refused
//! with the reason, nothing stored is damaged, the node keeps serving the
//! revision it had, and once space returns the same push goes through.
//! Needs root (mount).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Node, Xorshift, run_command, temp_dir, write_file, write_tree};

/// A tmpfs mounted at `path`, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        assert!(
            is_root(),
            "full_disk tests need root to mount a tmpfs; run them as root"
        );
        std::fs::create_dir_all(path).expect("mount point");
        let mut mount = Command::new("mount");
        mount
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path);
        let out = run_command(mount, Duration::from_secs(30));
        assert!(out.success(), "mount failed: {}", out.describe());
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut umount = Command::new("umount");
        umount.arg("-l").arg(&self.path);
        let _ = run_command(umount, Duration::from_secs(30));
    }
}

fn is_root() -> bool {
    // `id -u` rather than libc: the test crate has no unsafe code.
    let out = run_command(
        {
            let mut c = Command::new("id");
            c.arg("-u");
            c
        },
        Duration::from_secs(10),
    );
    out.stdout.trim() == "0"
}

/// Fills `dir`'s file system up to all but about `leave` bytes with
/// `filler`, and returns its path.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let filler = dir.join("filler");
    let out = run_command(
        {
            let mut c = Command::new("df");
            c.args(["--output=avail", "-B1"]).arg(dir);
            c
        },
        Duration::from_secs(10),
    );
    let avail: u64 = out
        .stdout
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("df: {}", out.describe()));
    let size = avail.saturating_sub(leave);
    let file = std::fs::File::create(&filler).expect("filler");
    file.set_len(0).expect("filler");
    // tmpfs allocates on write: write zeros in chunks.
    let chunk = vec![0u8; 1 << 20];
    let mut file = file;
    let mut written = 0u64;
    while written + chunk.len() as u64 <= size {
        if std::io::Write::write_all(&mut file, &chunk).is_err() {
            break;
        }
        written += chunk.len() as u64;
    }
    filler
}

#[test]
fn a_push_onto_a_full_disk_is_refused_with_the_reason_and_goes_through_once_space_returns() {
    let client = Client::new();
    let dir = temp_dir();
    let data = dir.path().join("data");
    let disk = Tmpfs::mount(&data, "48m");
    let site = dir.path().join("empty-site");
    write_tree(&site, &[("index.html", "dev default")]);
    let key = client.public_key.clone();
    let node = Node::start_dev(
        &site,
        dir,
        &[std::ffi::OsStr::new("--authorized-key"), key.as_os_str()],
    );

    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"a.test\"\npath = \"a\"\n",
            ),
            ("a/index.html", "<h1>before</h1>"),
        ],
    );
    commit_all(&client, &work, "before");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let served = |node: &Node| node.get_with("/", &[("host", "a.test")]).text();
    assert_eq!(served(&node), "<h1>before</h1>");

    // 8 MB that no compression shrinks, onto a disk with about 2 MB left.
    let mut random = Xorshift::new(18);
    write_file(&work, "a/big.bin", random.bytes(8 << 20));
    write_file(&work, "a/index.html", "<h1>after</h1>");
    commit_all(&client, &work, "after");
    let filler = fill(&disk.path, 2 << 20);
    let out = client.git(&work, &["push", &url, "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("No space left on device"),
        "the refusal does not say why: {}",
        out.describe()
    );
    assert_eq!(served(&node), "<h1>before</h1>");
    let objects = node.data.join("repos/site.git/objects");
    let leftovers: Vec<_> = std::fs::read_dir(&objects)
        .expect("objects")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("incoming-"))
        .collect();
    assert!(leftovers.is_empty(), "a quarantine was left behind");
    let fsck = client.git(
        Path::new("/"),
        &[
            "--git-dir",
            node.data.join("repos/site.git").to_str().expect("UTF-8"),
            "fsck",
        ],
    );
    assert!(fsck.success(), "{}", fsck.describe());

    // Space returns: the same push goes through.
    std::fs::remove_file(&filler).expect("remove filler");
    client.git_ok(&work, &["push", &url, "main"]);
    assert_eq!(served(&node), "<h1>after</h1>");
    drop(node);
    drop(disk);
}
