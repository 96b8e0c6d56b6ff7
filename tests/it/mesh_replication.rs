//! Replication between real `makiatto run` nodes on loopback, each with its
//! mesh RPC on an explicit `[cluster] rpc_listen` address (no WireGuard):
//! joining with a token, a deploy on any node served whole by all, a
//! one-file change moving about one file, a node killed mid-sync that
//! restarts and converges without ever serving a partial revision.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::loopback::{join_token, member_toml, rpc_of, start_member};
use crate::support::stop::Stop;
use crate::support::{Node, Xorshift, stored_objects, temp_dir, write_file};
use tempfile::TempDir;

/// Upper bound for convergence; reached only when replication is broken.
const CONVERGE: Duration = Duration::from_secs(120);
const HOST: &str = "mesh.example";

/// A node's config and data directory, kept across restarts.
struct Home {
    dir: TempDir,
    name: String,
    toml: String,
}

impl Home {
    fn new(name: &str, join: Option<(&str, &str)>) -> Home {
        let head = format!(
            "name = \"{name}\"\ndata_dir = \"data\"\nipv4 = \"192.0.2.{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
            10 + name.len()
        );
        let home = Home {
            dir: temp_dir(),
            name: name.to_string(),
            toml: member_toml(&head, join),
        };
        // Written now too: some tests run `makiatto run` on it themselves.
        write_file(home.dir.path(), "node.toml", &home.toml);
        home
    }

    fn start(&self) -> Node {
        start_member(self.dir.path(), &self.toml)
    }
}

/// Starts a seed and `others` nodes joined through it.
fn cluster(names: &[&str]) -> (Vec<Home>, Vec<Node>) {
    let seed_home = Home::new(names[0], None);
    let seed = seed_home.start();
    let seed_rpc = rpc_of(&seed);
    let mut homes = vec![seed_home];
    let mut nodes = vec![seed];
    for name in &names[1..] {
        let token = join_token(&nodes[0]);
        let home = Home::new(name, Some((&seed_rpc, &token)));
        nodes.push(home.start());
        homes.push(home);
    }
    (homes, nodes)
}

/// Writes a site of `files` files (about `size` bytes each) under a fresh
/// directory; returns it and the files' contents.
fn site(files: usize, size: usize, seed: u64) -> (TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = temp_dir();
    write_file(
        dir.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    let mut rng = Xorshift::new(seed);
    let mut contents = BTreeMap::new();
    for i in 0..files {
        let rel = format!("d{:02}/s{:02}/f{i:05}.bin", i % 37, i % 11);
        let len = size / 2 + rng.below(size as u64) as usize;
        let bytes = rng.bytes(len);
        write_file(dir.path(), &rel, &bytes);
        contents.insert(rel, bytes);
    }
    (dir, contents)
}

fn revision_served(node: &Node) -> Option<String> {
    let reply = node
        .try_get_with("/d00/s00/f00000.bin", &[("host", HOST)])
        .ok()?;
    (reply.status == 200)
        .then(|| reply.header("x-makiatto-revision").map(str::to_string))
        .flatten()
}

/// Waits until every node serves a revision starting with `revision`.
fn wait_all(nodes: &[Node], revision: &str) -> Duration {
    let started = Instant::now();
    for node in nodes {
        loop {
            if revision_served(node).is_some_and(|r| r.starts_with(revision)) {
                break;
            }
            assert!(
                started.elapsed() < CONVERGE,
                "node at {} never served revision {revision} (serves {:?}); its log:\n{}",
                node.addr,
                revision_served(node),
                node.stderr()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
    started.elapsed()
}

fn status_json(node: &Node) -> serde_json::Value {
    let out = node.admin(&["status", "--json"]);
    assert!(out.success(), "status failed: {}", out.describe());
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", out.stdout))
}

/// RPC payload bytes every node has moved (requests it sent plus the
/// answers it received), summed over the cluster.
fn cluster_bytes(nodes: &[Node]) -> u64 {
    nodes
        .iter()
        .map(|node| {
            let status = status_json(node);
            status["cluster"][0]["peers"]
                .as_array()
                .map(|peers| {
                    peers
                        .iter()
                        .map(|p| {
                            p["rpc_sent"].as_u64().unwrap_or(0)
                                + p["rpc_received"].as_u64().unwrap_or(0)
                        })
                        .sum::<u64>()
                })
                .unwrap_or(0)
        })
        .sum()
}

/// Waits until every node has finished an anti-entropy exchange with every
/// peer after `since`: whatever rows were still moving then have moved.
fn wait_synced_since(nodes: &[Node], since: Instant) {
    for node in nodes {
        loop {
            // Read before asking, so a sync the answer dates within it
            // happened after `since`.
            let bound = since.elapsed();
            let status = status_json(node);
            let synced = status["cluster"][0]["peers"]
                .as_array()
                .is_some_and(|peers| {
                    !peers.is_empty()
                        && peers.iter().all(|p| {
                            p["last_sync_ms_ago"]
                                .as_u64()
                                .is_some_and(|ms| Duration::from_millis(ms) < bound)
                        })
                });
            if synced {
                break;
            }
            assert!(
                since.elapsed() < CONVERGE,
                "node at {} never synced with every peer: {status}",
                node.addr
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

fn deploy(node: &Node, dir: &Path) -> String {
    node.deploy(dir)
}

#[test]
fn nodes_join_through_one_seed_and_all_serve_a_deploy_made_on_any_node() {
    let (_homes, nodes) = cluster(&["alpha", "bravo", "charlie"]);

    // Every node learns the other two.
    let started = Instant::now();
    for node in &nodes {
        loop {
            let status = status_json(node);
            let peers = status["cluster"][0]["peers"].as_array().map_or(0, Vec::len);
            if peers == 2 {
                break;
            }
            assert!(
                started.elapsed() < CONVERGE,
                "node never listed two peers: {status}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    let (first, contents) = site(300, 4000, 1);
    let pushed = Instant::now();
    let revision = deploy(&nodes[0], first.path());
    let took = wait_all(&nodes, &revision);
    println!(
        "a 300-file deploy on alpha was served by all three nodes {:?} after it was accepted",
        pushed.elapsed().min(took + Duration::from_secs(3600))
    );
    for node in &nodes {
        for (rel, bytes) in &contents {
            let reply = node.get_with(&format!("/{rel}"), &[("host", HOST)]);
            assert_eq!(reply.status, 200, "{}", reply.describe());
            assert!(
                reply
                    .header("x-makiatto-revision")
                    .is_some_and(|r| r.starts_with(&revision)),
                "{}",
                reply.describe()
            );
            assert!(reply.body == *bytes, "{rel} differs on {}", node.addr);
        }
    }

    // A change deployed on bravo reaches alpha and charlie, and charlie's
    // history lists both revisions.
    write_file(first.path(), "d00/s00/f00000.bin", b"changed on bravo");
    let second = deploy(&nodes[1], first.path());
    wait_all(&nodes, &second);
    let reply = nodes[2].get_with("/d00/s00/f00000.bin", &[("host", HOST)]);
    assert_eq!(reply.text(), "changed on bravo");
    let history = nodes[2].admin(&["deploys", HOST]);
    assert!(
        history.stdout.contains(&revision) && history.stdout.contains(&second),
        "{}",
        history.describe()
    );
}

#[test]
fn a_wrong_join_token_is_refused_with_advice() {
    let seed_home = Home::new("seed", None);
    let seed = seed_home.start();
    let home = Home::new("intruder", Some((&rpc_of(&seed), "mkj_not-a-token")));
    let mut command = std::process::Command::new(crate::support::makiatto_bin());
    command
        .arg("run")
        .arg("--config")
        .arg(home.dir.path().join("node.toml"));
    let out = crate::support::run_command(command, Duration::from_secs(60));
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("refused") && out.stderr.contains("join-token"),
        "{}",
        out.describe()
    );
    let status = status_json(&seed);
    assert_eq!(
        status["cluster"][0]["peers"].as_array().map_or(1, Vec::len),
        0,
        "{status}"
    );
    let _ = home.name;
}

#[test]
fn a_one_file_change_in_a_5000_file_site_moves_about_that_file() {
    let (_homes, nodes) = cluster(&["one", "two"]);
    let (dir, _) = site(5000, 2000, 2);
    let first = deploy(&nodes[0], dir.path());
    wait_all(&nodes, &first);
    // Let anti-entropy settle so the counters only grow by the change.
    wait_synced_since(&nodes, Instant::now());
    let before = cluster_bytes(&nodes);
    let changed = Xorshift::new(99).bytes(30_000);
    write_file(dir.path(), "d05/s03/f00115.bin", &changed);
    let pushed = Instant::now();
    let second = deploy(&nodes[0], dir.path());
    wait_all(&nodes, &second);
    let took = pushed.elapsed();
    let moved = cluster_bytes(&nodes) - before;
    println!(
        "one 30000-byte file changed in a 5000-file site: {moved} bytes of mesh RPC, served by both nodes {took:?} after deploy"
    );
    // The file is random (incompressible): its size plus listings on its
    // path, the revision rows and a few digest exchanges.
    assert!(
        moved < 30_000 + 64 * 1024,
        "a one-file change moved {moved} bytes"
    );
    assert!(
        moved >= 30_000,
        "the changed file cannot have moved: {moved}"
    );
}

#[test]
fn a_node_killed_mid_sync_restarts_converges_and_never_served_a_partial_revision() {
    let (homes, mut nodes) = cluster(&["left", "right"]);
    let (dir, contents) = site(3000, 16_000, 3);
    let expected: Arc<Mutex<Revisions>> = Arc::new(Mutex::new(BTreeMap::new()));

    let right = nodes.pop().unwrap_or_else(|| unreachable!());
    let revision = deploy(&nodes[0], dir.path());
    expected
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(revision.clone(), contents.clone());

    // A client polls right the whole time: every answer naming a revision
    // must carry exactly that revision's bytes. It follows right to the
    // address it has after the restart, and stops when the guard drops
    // (at the end, or while a failure unwinds).
    let stop = Arc::new(Stop::new(CONVERGE * 4));
    let stopping = stop.guard();
    let right_now: Arc<Mutex<SocketAddr>> = Arc::new(Mutex::new(right.addr));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let poller = {
        let stop = stop.clone();
        let seen = seen.clone();
        let right_now = right_now.clone();
        let expected = expected.clone();
        let paths: Vec<String> = contents.keys().cloned().collect();
        thread::spawn(move || {
            let agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .new_agent();
            let mut i = 0usize;
            let mut bad = Vec::new();
            while stop.running() {
                let addr = *right_now.lock().unwrap_or_else(|e| e.into_inner());
                i = (i + 7919) % paths.len();
                let url = format!("http://{addr}/{}", paths[i]);
                let Ok(mut response) = agent.get(&url).header("host", HOST).call() else {
                    thread::sleep(Duration::from_millis(20)); // right is down
                    continue;
                };
                let status = response.status().as_u16();
                let rev = response
                    .headers()
                    .get("x-makiatto-revision")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = response.body_mut().read_to_vec().unwrap_or_default();
                if let Some(rev) = rev {
                    let expected = expected.lock().unwrap_or_else(|e| e.into_inner());
                    let want = expected
                        .iter()
                        .find(|(r, _)| rev.starts_with(r.as_str()))
                        .and_then(|(_, files)| files.get(&paths[i]));
                    if status != 200 || want != Some(&body) {
                        bad.push(format!("{status} {rev} {}", paths[i]));
                    }
                    seen.lock().unwrap_or_else(|e| e.into_inner()).push(rev);
                }
            }
            bad
        })
    };

    // Kill right once it has stored some but not all of the objects.
    let objects = homes[1].dir.path().join("data/objects");
    let started = Instant::now();
    loop {
        let stored = stored_objects(&objects);
        if stored > 200 {
            break;
        }
        assert!(started.elapsed() < CONVERGE, "right never started syncing");
        thread::sleep(Duration::from_millis(5));
    }
    let mut right = right;
    right.signal_and_wait("KILL", Duration::from_secs(10));
    let partial = stored_objects(&objects);
    println!("right killed with {partial} objects stored");
    drop(right);

    let seen_before_restart = seen.lock().unwrap_or_else(|e| e.into_inner()).len();
    let restarted = homes[1].start();
    *right_now.lock().unwrap_or_else(|e| e.into_inner()) = restarted.addr;
    nodes.push(restarted);
    wait_all(&nodes, &revision);
    // The poller, too, has had an answer from the restarted right.
    let started = Instant::now();
    while !seen.lock().unwrap_or_else(|e| e.into_inner())[seen_before_restart..]
        .iter()
        .any(|r| r.starts_with(&revision))
    {
        assert!(
            started.elapsed() < CONVERGE,
            "the poller never saw the revision from the restarted node"
        );
        thread::sleep(Duration::from_millis(50));
    }
    drop(stopping);
    let bad = poller
        .join()
        .unwrap_or_else(|_| vec!["poller panicked".into()]);
    assert!(
        stop.stopped_in_time(),
        "the poller ran out of time before right converged"
    );
    assert!(bad.is_empty(), "partial or wrong answers: {bad:?}");
    assert!(
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|r| r.starts_with(&revision)),
        "the poller never saw the revision"
    );
    for (rel, bytes) in contents.iter().step_by(97) {
        let reply = nodes[1].get_with(&format!("/{rel}"), &[("host", HOST)]);
        assert!(reply.body == *bytes, "{rel} differs after restart");
    }
}

/// Each revision's files: revision → path → bytes.
type Revisions = BTreeMap<String, BTreeMap<String, Vec<u8>>>;
