//! Concurrent deploys of the same domain on two nodes (mesh RPC on
//! loopback): every node converges on the same winner (HLC, then node name)
//! and the losing revision stays in every node's `deploys` history.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::loopback::{join_token as token, rpc_of, start_member};
use crate::support::{Node, temp_dir, write_file};
use tempfile::TempDir;

const CONVERGE: Duration = Duration::from_secs(120);
const HOST: &str = "race.example";

fn start(dir: &TempDir, name: &str, join: Option<(&str, &str)>) -> Node {
    let head =
        format!("name = \"{name}\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n");
    start_member(
        dir.path(),
        &crate::support::loopback::member_toml(&head, join),
    )
}

fn site(text: &str) -> TempDir {
    let dir = temp_dir();
    write_file(
        dir.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    write_file(dir.path(), "index.html", text);
    for i in 0..50 {
        write_file(
            dir.path(),
            &format!("pages/{i}.html"),
            format!("{text} {i}"),
        );
    }
    dir
}

fn served(node: &Node) -> Option<String> {
    let reply = node.try_get_with("/", &[("host", HOST)]).ok()?;
    (reply.status == 200)
        .then(|| reply.header("x-makiatto-revision").map(str::to_string))
        .flatten()
}

#[test]
fn concurrent_deploys_on_two_nodes_converge_on_one_winner_and_keep_the_loser() {
    let homes: Vec<TempDir> = (0..3).map(|_| temp_dir()).collect();
    let a = start(&homes[0], "east", None);
    let seed = rpc_of(&a);
    let b = start(&homes[1], "west", Some((&seed, &token(&a))));
    let c = start(&homes[2], "mid", Some((&seed, &token(&a))));
    let nodes = [&a, &b, &c];

    let base = a.deploy(site("base").path());
    let started = Instant::now();
    while !nodes
        .iter()
        .all(|n| served(n).is_some_and(|r| r.starts_with(&base)))
    {
        assert!(
            started.elapsed() < CONVERGE,
            "the base deploy never converged"
        );
        thread::sleep(Duration::from_millis(100));
    }

    let (on_a, on_b) = (site("from east"), site("from west"));
    let (rev_a, rev_b) = thread::scope(|s| {
        let ta = s.spawn(|| a.deploy(on_a.path()));
        let tb = s.spawn(|| b.deploy(on_b.path()));
        // A deploy that panicked fails the test here, with its own message.
        let join = |t: thread::ScopedJoinHandle<'_, String>| {
            t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        (join(ta), join(tb))
    });
    assert_ne!(rev_a, rev_b);

    // Converged: all nodes serve the same one of the two, and keep doing so.
    let started = Instant::now();
    let winner = loop {
        let seen: Vec<Option<String>> = nodes.iter().map(|n| served(n)).collect();
        if let Some(Some(first)) = seen.first()
            && seen.iter().all(|s| s.as_ref() == Some(first))
            && (first.starts_with(&rev_a) || first.starts_with(&rev_b))
        {
            break first.clone();
        }
        assert!(started.elapsed() < CONVERGE, "never converged: {seen:?}");
        thread::sleep(Duration::from_millis(100));
    };
    thread::sleep(Duration::from_secs(4));
    for node in nodes {
        assert_eq!(
            served(node).as_deref(),
            Some(winner.as_str()),
            "{} moved",
            node.addr
        );
        let history = node.admin(&["deploys", HOST]);
        assert!(
            history.stdout.contains(&rev_a) && history.stdout.contains(&rev_b),
            "both revisions must stay in history: {}",
            history.describe()
        );
    }
    println!(
        "concurrent deploys: east {rev_a}, west {rev_b}; every node serves {}",
        &winner[..12]
    );
}
