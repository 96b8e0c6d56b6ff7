//! The scrub: an object damaged on one node's disk is never served, the
//! scrub finds it (and one lost outright), fetches a sound copy from a peer (or rebuilds it from a
//! sound precompressed variant), and `status` says what it checked, found
//! and repaired. On a node with no peer, the damaged object is reported as
//! unrepairable and still never served.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::loopback::{join_token, member_toml, rpc_of, start_member};
use crate::support::{Node, Xorshift, temp_dir, write_file};

/// Upper bound for a replica to catch up; reached only when it is broken.
const CONVERGE: Duration = Duration::from_secs(120);

/// Where the object holding `bytes` lives under `data`.
fn object_path(data: &Path, bytes: &[u8]) -> PathBuf {
    let hex = blake3::hash(bytes).to_hex().to_string();
    data.join("objects").join(&hex[..2]).join(&hex[2..])
}

/// Rewrites the stored object of `bytes` with the same length and one
/// flipped byte in the middle, as a failing disk would.
fn damage(data: &Path, bytes: &[u8]) {
    let path = object_path(data, bytes);
    let mut rotten = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let middle = rotten.len() / 2;
    rotten[middle] ^= 0x40;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::write(&path, &rotten).expect("damage the object");
}

fn json(node: &Node, args: &[&str]) -> serde_json::Value {
    let out = node.admin(args);
    assert!(out.success(), "{args:?} failed: {}", out.describe());
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {}", out.stdout))
}

/// A page long enough to get precompressed variants.
fn page(title: &str) -> String {
    let mut page = format!("<h1>{title}</h1>\n");
    for i in 0..400 {
        page.push_str(&format!("<p>paragraph {i} of {title}</p>\n"));
    }
    page
}

fn member(name: &str, last_octet: u8, join: Option<(&str, &str)>) -> String {
    let head = format!(
        "name = \"{name}\"\ndata_dir = \"data\"\nipv4 = \"198.51.100.{last_octet}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n"
    );
    member_toml(&head, join)
}

#[test]
fn a_damaged_object_on_a_replica_is_never_served_and_the_scrub_repairs_it_from_a_peer() {
    const HOST: &str = "scrub.test";
    let alpha_home = temp_dir();
    let alpha = start_member(alpha_home.path(), &member("alpha", 10, None));
    let bravo_home = temp_dir();
    let token = join_token(&alpha);
    let bravo = start_member(
        bravo_home.path(),
        &member("bravo", 11, Some((&rpc_of(&alpha), &token))),
    );

    let site = temp_dir();
    write_file(
        site.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    let index = page("home");
    write_file(site.path(), "index.html", &index);
    // Noise no compression shrinks: stored without variants, so only a
    // peer can give it back. Larger than the in-memory body limit, so it
    // is served from a mapping of the file.
    let blob = Xorshift::new(1805).bytes(600_000);
    write_file(site.path(), "blob.bin", &blob);
    let other = Xorshift::new(1807).bytes(20_000);
    write_file(site.path(), "other.bin", &other);
    let revision = alpha.deploy(site.path());
    let get = |node: &Node, path: &str| node.get_with(path, &[("host", HOST)]);
    let started = Instant::now();
    while !bravo
        .try_get_with("/index.html", &[("host", HOST)])
        .ok()
        .and_then(|r| r.header("x-makiatto-revision").map(str::to_string))
        .is_some_and(|r| r.starts_with(&revision))
    {
        assert!(
            started.elapsed() < CONVERGE,
            "bravo never served the revision; its log:\n{}",
            bravo.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Bravo's disk rots under two files before anyone asks for them, and
    // a third object is lost outright.
    damage(&bravo.data, &blob);
    damage(&bravo.data, index.as_bytes());
    std::fs::remove_file(object_path(&bravo.data, &other)).expect("remove an object");
    let before = get(&bravo, "/blob.bin");
    assert_eq!(
        before.status,
        500,
        "a damaged object was answered: {}",
        before.describe()
    );
    assert!(before.body.len() < 1000, "damaged bytes were served");
    // The page was read before the rot (waiting for the revision): its
    // sound bytes are still served from memory, never the damaged ones.
    let page_before = get(&bravo, "/index.html");
    assert!(
        page_before.status == 500 || page_before.text() == index,
        "damaged bytes were served: {}",
        page_before.describe()
    );

    let report = json(&bravo, &["scrub", "--wait", "--json"]);
    let run = &report["last"];
    assert_eq!(run["damaged"], 2, "{report}");
    assert_eq!(run["missing"], 1, "{report}");
    assert_eq!(run["repaired"], 3, "{report}");
    assert_eq!(run["unrepairable"], 0, "{report}");
    assert!(
        run["objects_checked"].as_u64().unwrap_or(0) >= 3,
        "{report}"
    );
    let findings = run["findings"].as_array().cloned().unwrap_or_default();
    let outcome_of = |bytes: &[u8]| {
        let hex = blake3::hash(bytes).to_hex().to_string();
        findings
            .iter()
            .find(|f| f["object"] == hex.as_str())
            .map(|f| f["outcome"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no finding for {hex}: {report}"))
    };
    assert!(
        outcome_of(&blob).contains("fetched again from a peer"),
        "{report}"
    );
    assert!(
        outcome_of(index.as_bytes()).contains("rebuilt from a sound precompressed variant"),
        "{report}"
    );
    assert!(
        outcome_of(&other).contains("fetched again from a peer"),
        "{report}"
    );

    // Served correctly again, on disk and in the materialised revision.
    let after = get(&bravo, "/blob.bin");
    assert_eq!(after.status, 200, "{}", after.describe());
    assert!(after.body == blob, "blob.bin differs after the repair");
    assert_eq!(get(&bravo, "/index.html").text(), index);
    assert!(
        get(&bravo, "/other.bin").body == other,
        "other.bin differs after the repair"
    );
    let gzip = bravo.get_with(
        "/index.html",
        &[("host", HOST), ("accept-encoding", "gzip")],
    );
    assert_eq!(
        gzip.header("content-encoding"),
        Some("gzip"),
        "{}",
        gzip.describe()
    );
    assert_eq!(
        std::fs::read(object_path(&bravo.data, &blob)).expect("object"),
        blob
    );
    let revs: Vec<PathBuf> = std::fs::read_dir(bravo.data.join("revs"))
        .expect("revs")
        .flatten()
        .map(|e| e.path().join("blob.bin"))
        .filter(|p| p.exists())
        .collect();
    assert!(!revs.is_empty(), "no materialised revision holds blob.bin");
    for path in revs {
        assert!(
            std::fs::read(&path).expect("revision file") == blob,
            "{} still damaged",
            path.display()
        );
    }

    // `status` says what the scrub found, in both forms.
    let status = json(&bravo, &["status", "--json"]);
    assert_eq!(status["scrub"]["last"]["repaired"], 3, "{status}");
    let text = bravo.admin(&["status"]);
    assert!(
        text.stdout
            .contains("2 damaged, 1 missing, 3 repaired, 0 unrepairable"),
        "{}",
        text.describe()
    );

    // A second scrub finds nothing left to do.
    let again = json(&bravo, &["scrub", "--wait", "--json"]);
    assert_eq!(again["last"]["damaged"], 0, "{again}");
    assert_eq!(again["last"]["missing"], 0, "{again}");
    drop(bravo);
    drop(alpha);
}

#[test]
fn a_damaged_object_on_a_node_without_peers_is_reported_unrepairable_and_never_served() {
    let site = temp_dir();
    let blob = Xorshift::new(1806).bytes(50_000);
    write_file(site.path(), "index.html", "<h1>single</h1>");
    write_file(site.path(), "blob.bin", &blob);
    let node = Node::start(site.path());

    damage(&node.data, &blob);
    let before = node.get("/blob.bin");
    assert_eq!(before.status, 500, "{}", before.describe());

    let report = json(&node, &["scrub", "--wait", "--json"]);
    let run = &report["last"];
    assert_eq!(run["damaged"], 1, "{report}");
    assert_eq!(run["repaired"], 0, "{report}");
    assert_eq!(run["unrepairable"], 1, "{report}");
    let outcome = run["findings"][0]["outcome"].as_str().unwrap_or_default();
    assert!(outcome.contains("no peer"), "{report}");

    // Set aside, never served; the rest of the site is untouched.
    for _ in 0..3 {
        let reply = node.get("/blob.bin");
        assert_eq!(reply.status, 500, "{}", reply.describe());
    }
    assert_eq!(node.get("/index.html").text(), "<h1>single</h1>");
    assert!(!object_path(&node.data, &blob).exists());
    let aside: Vec<_> = std::fs::read_dir(node.data.join("objects/damaged"))
        .expect("objects/damaged")
        .flatten()
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let text = node.admin(&["status"]);
    assert!(
        text.stdout
            .contains("1 damaged, 0 missing, 0 repaired, 1 unrepairable"),
        "{}",
        text.describe()
    );
    assert!(text.stdout.contains("no peer"), "{}", text.describe());
}
