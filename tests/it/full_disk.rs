//! A full disk during a push and during replication: the data directory
//! on a small tmpfs the test mounts (and unmounts, even when it fails).
//! The push is refused with the reason; the replica keeps serving the
//! revision it had and `status` says why it waits; nothing stored is
//! damaged; once space returns the same push goes through and the replica
//! catches up on its own. Needs root (mount).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use std::time::Instant;

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::loopback::{join_token, member_toml, rpc_of, start_member};
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

/// Upper bound for a replica to catch up; reached only when it is broken.
const CONVERGE: Duration = Duration::from_secs(120);

/// A loopback cluster member's node.toml (HTTP on an ephemeral port).
fn member(name: &str, last_octet: u8, join: Option<(&str, &str)>) -> String {
    let head = format!(
        "name = \"{name}\"\ndata_dir = \"data\"\nipv4 = \"192.0.2.{last_octet}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n"
    );
    member_toml(&head, join)
}

fn status_json(node: &Node) -> serde_json::Value {
    let out = node.admin(&["status", "--json"]);
    assert!(out.success(), "status failed: {}", out.describe());
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", out.stdout))
}

/// Every object file under `objects/` (not variants or markers) holds the
/// bytes its name hashes to, `tmp/` is empty and no half-built revision
/// directory is left in `revs/`.
fn assert_store_intact(data: &Path) {
    let objects = data.join("objects");
    let mut checked = 0;
    for fan_out in std::fs::read_dir(&objects).expect("objects").flatten() {
        let prefix = fan_out.file_name().to_string_lossy().to_string();
        if prefix.len() != 2 {
            continue;
        }
        for file in std::fs::read_dir(fan_out.path())
            .expect("fan-out")
            .flatten()
        {
            let name = file.file_name().to_string_lossy().to_string();
            if name.len() != 62 {
                continue;
            }
            let bytes = std::fs::read(file.path()).expect("object");
            assert_eq!(
                blake3::hash(&bytes).to_hex().to_string(),
                format!("{prefix}{name}"),
                "object {prefix}{name} does not hold the bytes its name hashes to"
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no objects to check under {}",
        objects.display()
    );
    let temps: Vec<_> = std::fs::read_dir(objects.join("tmp"))
        .expect("objects/tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(temps.is_empty(), "temp files left behind: {temps:?}");
    let half_built: Vec<_> = std::fs::read_dir(data.join("revs"))
        .expect("revs")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        half_built.is_empty(),
        "half-built revisions left behind: {half_built:?}"
    );
}

#[test]
fn a_replica_whose_disk_fills_mid_fetch_keeps_serving_says_why_and_catches_up_once_space_returns() {
    const HOST: &str = "full.test";
    let alpha_home = temp_dir();
    let alpha = start_member(alpha_home.path(), &member("alpha", 10, None));
    let bravo_home = temp_dir();
    let disk = Tmpfs::mount(&bravo_home.path().join("data"), "48m");
    let token = join_token(&alpha);
    let bravo = start_member(
        bravo_home.path(),
        &member("bravo", 11, Some((&rpc_of(&alpha), &token))),
    );

    let site = temp_dir();
    let mut random = Xorshift::new(1818);
    write_file(
        site.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    write_file(site.path(), "index.html", "<h1>one</h1>");
    let asset = random.bytes(100_000);
    write_file(site.path(), "asset.bin", &asset);
    let first = alpha.deploy(site.path());

    let get = |node: &Node, path: &str| node.get_with(path, &[("host", HOST)]);
    let serves = |node: &Node, revision: &str| {
        node.try_get_with("/index.html", &[("host", HOST)])
            .ok()
            .and_then(|r| r.header("x-makiatto-revision").map(str::to_string))
            .is_some_and(|r| r.starts_with(revision))
    };
    let started = Instant::now();
    while !serves(&bravo, &first) {
        assert!(
            started.elapsed() < CONVERGE,
            "bravo never served the first revision; its log:\n{}",
            bravo.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Bravo's disk fills; alpha deploys 8 MB that no compression shrinks.
    let filler = fill(&disk.path, 2 << 20);
    let big = random.bytes(8 << 20);
    write_file(site.path(), "big.bin", &big);
    write_file(site.path(), "index.html", "<h1>two</h1>");
    let second = alpha.deploy(site.path());

    // Bravo says why it waits, and serves the first revision unchanged.
    let started = Instant::now();
    loop {
        let status = status_json(&bravo);
        let reason = status["cluster"][0]["sync_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if reason.contains("No space left on device") {
            let text = bravo.admin(&["status"]);
            assert!(
                text.stdout.contains("No space left on device"),
                "status text does not show the reason: {}",
                text.describe()
            );
            break;
        }
        assert!(
            started.elapsed() < CONVERGE,
            "bravo's status never named the full disk: {status}\nits log:\n{}",
            bravo.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..3 {
        let index = get(&bravo, "/index.html");
        assert_eq!(index.text(), "<h1>one</h1>", "{}", index.describe());
        assert!(
            index
                .header("x-makiatto-revision")
                .is_some_and(|r| r.starts_with(&first)),
            "{}",
            index.describe()
        );
        assert!(get(&bravo, "/asset.bin").body == asset);
        assert_eq!(get(&bravo, "/big.bin").status, 404);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_store_intact(&bravo.data);

    // Space returns: bravo catches up by itself and serves every byte.
    std::fs::remove_file(&filler).expect("remove filler");
    let started = Instant::now();
    while !serves(&bravo, &second) {
        assert!(
            started.elapsed() < CONVERGE,
            "bravo never caught up once space returned; its log:\n{}",
            bravo.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&bravo, "/index.html").text(), "<h1>two</h1>");
    assert!(
        get(&bravo, "/big.bin").body == big,
        "big.bin differs on bravo"
    );
    assert!(get(&bravo, "/asset.bin").body == asset);
    assert!(
        status_json(&bravo)["cluster"][0]["sync_error"].is_null(),
        "the reason outlived the recovery"
    );
    assert_store_intact(&bravo.data);
    drop(bravo);
    drop(disk);
}
