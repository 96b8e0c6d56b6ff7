//! The memory settings of `[http]` in node.toml: `worker_threads` sets how
//! many threads serve (each costs a stack and, under load, a malloc arena),
//! and `body_cache_mb = 0` keeps no file bodies in memory yet serves every
//! file. Checked on a dev node's threads in /proc and with HTTP requests.

use std::ffi::OsStr;

use crate::support::{Node, temp_dir, write_file};

/// How many of `pid`'s threads run tokio (workers, and blocking-pool
/// threads, which share their name).
fn runtime_threads(pid: u32) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"));
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == "tokio-rt-worker")
        })
        .count()
}

/// A dev node with `http_table` in its node.toml's `[http]`; the temp
/// dirs (site, config) live as long as the node.
fn node_with(http_table: &str) -> ([tempfile::TempDir; 2], Node) {
    let site = temp_dir();
    write_file(site.path(), "index.html", "<h1>memory</h1>");
    write_file(site.path(), "small.txt", "small file\n");
    let etc = temp_dir();
    let config = etc.path().join("node.toml");
    std::fs::write(&config, format!("name = \"dev\"\n[http]\n{http_table}"))
        .unwrap_or_else(|e| panic!("write node.toml: {e}"));
    let node = Node::start_dev(
        site.path(),
        temp_dir(),
        &[OsStr::new("--config"), config.as_os_str()],
    );
    ([site, etc], node)
}

#[test]
fn worker_threads_sets_how_many_threads_serve() {
    let (_site, many) = node_with("worker_threads = 6\n");
    assert_eq!(many.get("/").text(), "<h1>memory</h1>");
    let (_site, one) = node_with("worker_threads = 1\n");
    assert_eq!(one.get("/").text(), "<h1>memory</h1>");
    // Blocking-pool threads (file reads at deploy) come and go beside the
    // workers, so the counts bound rather than equal.
    assert!(
        runtime_threads(many.pid()) >= 6,
        "{}",
        runtime_threads(many.pid())
    );
    assert!(
        runtime_threads(one.pid()) < 6,
        "one worker, yet {} runtime threads",
        runtime_threads(one.pid())
    );
}

#[test]
fn without_a_body_cache_every_file_is_still_served() {
    let (_site, node) = node_with("body_cache_mb = 0\n");
    for _ in 0..3 {
        assert_eq!(node.get("/small.txt").text(), "small file\n");
        assert_eq!(node.get("/").text(), "<h1>memory</h1>");
    }
}
