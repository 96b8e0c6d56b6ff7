//! Revision lifecycle through the CLI: `makiatto deploy`, `deploys`,
//! `rollback`, retention of the last ten, invalid makiatto.toml, and dev
//! mode's redeploy when the site directory changes.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{Node, dev_expecting_exit, temp_dir, write_file};

/// A site for `localhost` whose index.html says `text`.
fn site_saying(text: &str) -> tempfile::TempDir {
    let site = temp_dir();
    write_file(site.path(), "index.html", text);
    site
}

fn assert_serves(node: &Node, body: &str, revision: &str) {
    let reply = node.get("/");
    assert_eq!(reply.status, 200, "GET /: {}", reply.describe());
    assert_eq!(
        (reply.text().as_str(), reply.header("x-makiatto-revision")),
        (body, Some(revision)),
        "GET / should serve {body:?} at revision {revision}: {}",
        reply.describe()
    );
}

/// One row of `makiatto deploys --json`.
#[derive(Debug)]
struct Row {
    revision: String,
    active: bool,
}

/// Reads the flat JSON array `deploys --json` prints (no JSON crate here).
fn parse_rows(json: &str) -> Vec<Row> {
    let trimmed = json.trim();
    assert!(
        trimmed.starts_with('[') && trimmed.ends_with(']'),
        "deploys --json is not an array: {json}"
    );
    trimmed
        .split('{')
        .skip(1)
        .map(|object| {
            let revision = object
                .split("\"revision\":\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no revision in {object:?}"))
                .to_string();
            assert!(
                revision.len() == 64 && revision.chars().all(|c| c.is_ascii_hexdigit()),
                "revision {revision:?} is not 64 hex digits in {object:?}"
            );
            let active = if object.contains("\"active\":true") {
                true
            } else if object.contains("\"active\":false") {
                false
            } else {
                panic!("no active flag in {object:?}")
            };
            Row { revision, active }
        })
        .collect()
}

fn deploys_json(node: &Node, domain: &str) -> Vec<Row> {
    let out = node.admin(&["deploys", domain, "--json"]);
    assert!(
        out.success(),
        "makiatto deploys {domain} --json: {}",
        out.describe()
    );
    parse_rows(&out.stdout)
}

#[test]
fn deploy_switches_the_served_revision() {
    let one = site_saying("version one\n");
    let two = site_saying("version two\n");
    let node = Node::start(one.path());
    assert_serves(&node, "version one\n", &node.revision);
    let rev_two = node.deploy(two.path());
    assert_ne!(
        rev_two, node.revision,
        "different content deployed as the same revision"
    );
    assert_serves(&node, "version two\n", &rev_two);
}

#[test]
fn deploy_reports_domain_revision_and_file_count() {
    let one = site_saying("one\n");
    let two = temp_dir();
    write_file(two.path(), "index.html", "two\n");
    write_file(two.path(), "a.txt", "a\n");
    write_file(two.path(), "b/c.txt", "c\n");
    let node = Node::start(one.path());
    let out = node.admin(&["deploy", two.path().to_str().expect("UTF-8 path")]);
    assert!(out.success(), "makiatto deploy: {}", out.describe());
    let revision = crate::support::revision_in(&out.stdout).expect("a revision");
    assert_eq!(
        out.stdout.trim(),
        format!("localhost now serves revision {revision} (3 files)"),
        "makiatto deploy: {}",
        out.describe()
    );
}

#[test]
fn rollback_returns_to_the_previous_revision() {
    let one = site_saying("version one\n");
    let two = site_saying("version two\n");
    let node = Node::start(one.path());
    let rev_one = node.revision.clone();
    node.deploy(two.path());
    let out = node.admin(&["rollback", "localhost"]);
    assert!(
        out.success(),
        "makiatto rollback localhost: {}",
        out.describe()
    );
    assert_eq!(
        out.stdout.trim(),
        format!("localhost now serves revision {rev_one}"),
        "makiatto rollback localhost: {}",
        out.describe()
    );
    assert_serves(&node, "version one\n", &rev_one);
}

#[test]
fn rollback_after_redeploying_an_older_tree_goes_to_the_one_deployed_before_it() {
    let one = site_saying("version one\n");
    let two = site_saying("version two\n");
    let node = Node::start(one.path());
    let rev_two = node.deploy(two.path());
    node.deploy(one.path());
    let out = node.admin(&["rollback", "localhost"]);
    assert!(
        out.success(),
        "makiatto rollback localhost: {}",
        out.describe()
    );
    assert_serves(&node, "version two\n", &rev_two);
}

#[test]
fn rollback_to_a_named_revision_prefix() {
    let one = site_saying("version one\n");
    let two = site_saying("version two\n");
    let three = site_saying("version three\n");
    let node = Node::start(one.path());
    let rev_one = node.revision.clone();
    node.deploy(two.path());
    node.deploy(three.path());
    let out = node.admin(&["rollback", "localhost", &rev_one[..7]]);
    assert!(
        out.success(),
        "makiatto rollback localhost {}: {}",
        &rev_one[..7],
        out.describe()
    );
    assert_serves(&node, "version one\n", &rev_one);
}

#[test]
fn rollback_to_an_unknown_revision_fails_and_changes_nothing() {
    let one = site_saying("version one\n");
    let node = Node::start(one.path());
    let out = node.admin(&["rollback", "localhost", "ffffffffff"]);
    assert!(
        !out.success(),
        "rollback to an unknown revision succeeded: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("error"),
        "no error message: {}",
        out.describe()
    );
    assert_serves(&node, "version one\n", &node.revision);
}

#[test]
fn deploys_lists_revisions_newest_first_with_the_active_one_marked() {
    let one = site_saying("version one\n");
    let two = site_saying("version two\n");
    let node = Node::start(one.path());
    let rev_one = node.revision.clone();
    let rev_two = node.deploy(two.path());

    let out = node.admin(&["deploys", "localhost"]);
    assert!(
        out.success(),
        "makiatto deploys localhost: {}",
        out.describe()
    );
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let listed: Vec<(bool, String)> = lines
        .iter()
        .map(|line| {
            let active = line.starts_with('*');
            let revision = line
                .trim_start_matches('*')
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            (active, revision)
        })
        .collect();
    assert_eq!(
        listed,
        vec![(true, rev_two.clone()), (false, rev_one.clone())],
        "makiatto deploys localhost: {}",
        out.describe()
    );

    node.admin(&["rollback", "localhost"]);
    let rows = deploys_json(&node, "localhost");
    let summary: Vec<(String, bool)> = rows
        .iter()
        .map(|r| (r.revision[..12].to_string(), r.active))
        .collect();
    assert_eq!(
        summary,
        vec![(rev_two, false), (rev_one, true)],
        "deploys --json after a rollback: {rows:?}"
    );
}

#[test]
fn only_the_last_ten_revisions_are_kept() {
    let first = site_saying("deploy 0\n");
    let node = Node::start(first.path());
    let mut revisions = vec![node.revision.clone()];
    for i in 1..=12 {
        let site = site_saying(&format!("deploy {i}\n"));
        revisions.push(node.deploy(site.path()));
    }
    let rows = deploys_json(&node, "localhost");
    let listed: Vec<String> = rows.iter().map(|r| r.revision[..12].to_string()).collect();
    let newest_ten: Vec<String> = revisions.iter().rev().take(10).cloned().collect();
    assert_eq!(
        listed, newest_ten,
        "deploys --json after 13 deploys: {rows:?}"
    );
    let active: Vec<&Row> = rows.iter().filter(|r| r.active).collect();
    assert!(
        active.len() == 1 && active[0].revision.starts_with(&revisions[12]),
        "exactly the newest revision should be active: {rows:?}"
    );
    assert_serves(&node, "deploy 12\n", &revisions[12]);
}

/// A makiatto.toml whose line 7 is a misspelt `path`.
const MISSPELT: &str = "# a site with a typo\n\
[[domain]]\n\
name = \"typo.test\"\n\
aliases = [\"www.typo.test\"]\n\
\n\
# served from public/\n\
pathh = \"public\"\n";

const MISSPELT_MESSAGE: &str = r#"makiatto.toml:7:1: unknown field "pathh", did you mean "path"?"#;

fn misspelt_site() -> tempfile::TempDir {
    let site = temp_dir();
    write_file(site.path(), "makiatto.toml", MISSPELT);
    write_file(site.path(), "public/index.html", "never served\n");
    site
}

#[test]
fn dev_refuses_to_start_on_an_invalid_config_and_says_where() {
    let site = misspelt_site();
    let out = dev_expecting_exit(site.path());
    assert!(
        !out.success(),
        "makiatto dev started on an invalid config: {}",
        out.describe()
    );
    let canonical = std::fs::canonicalize(site.path()).expect("canonical site path");
    let expected = format!(
        "error: cannot serve {}: {MISSPELT_MESSAGE}",
        canonical.display()
    );
    assert!(
        out.stderr.contains(&expected),
        "expected stderr to contain {expected:?}: {}",
        out.describe()
    );
}

#[test]
fn deploying_an_invalid_config_fails_and_keeps_the_old_revision() {
    let good = site_saying("still good\n");
    let bad = misspelt_site();
    let node = Node::start(good.path());
    let out = node.admin(&["deploy", bad.path().to_str().expect("UTF-8 path")]);
    assert!(
        !out.success(),
        "deploying an invalid config succeeded: {}",
        out.describe()
    );
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains(MISSPELT_MESSAGE),
        "expected stderr to contain {MISSPELT_MESSAGE:?}: {}",
        out.describe()
    );
    assert_serves(&node, "still good\n", &node.revision);
    let rows = deploys_json(&node, "localhost");
    assert_eq!(
        rows.len(),
        1,
        "the failed deploy left a revision behind: {rows:?}"
    );
}

/// Polls GET / until its body is `expected`, for at most `limit`.
fn wait_for_body(node: &Node, expected: &str, limit: Duration) -> crate::support::Reply {
    let deadline = Instant::now() + limit;
    loop {
        let reply = node.get("/");
        if reply.text() == expected || Instant::now() >= deadline {
            return reply;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn edit(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
fn dev_redeploys_when_a_site_file_changes() {
    let site = site_saying("before the edit\n");
    let node = Node::start(site.path());
    edit(&site.path().join("index.html"), "after the edit\n");
    let reply = wait_for_body(&node, "after the edit\n", Duration::from_secs(10));
    assert_eq!(
        reply.text(),
        "after the edit\n",
        "GET / 10 s after editing index.html: {}",
        reply.describe()
    );
    let revision = reply.header("x-makiatto-revision").unwrap_or_default();
    assert_ne!(
        revision,
        node.revision,
        "new content under the old revision: {}",
        reply.describe()
    );
}

#[test]
fn dev_picks_up_a_new_file() {
    let site = site_saying("home\n");
    let node = Node::start(site.path());
    write_file(site.path(), "fresh/new.txt", "brand new\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let reply = node.get("/fresh/new.txt");
        if reply.status == 200 || Instant::now() >= deadline {
            break reply;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, "brand new\n"),
        "GET /fresh/new.txt 10 s after creating it: {}",
        reply.describe()
    );
}

#[test]
fn dev_keeps_serving_when_an_edit_makes_the_config_invalid() {
    let site = temp_dir();
    write_file(
        site.path(),
        "makiatto.toml",
        "[[domain]]\nname = \"typo.test\"\npath = \"public\"\n",
    );
    write_file(site.path(), "public/index.html", "valid config\n");
    let node = Node::start(site.path());
    assert_serves(&node, "valid config\n", &node.revision);

    edit(&site.path().join("makiatto.toml"), MISSPELT);
    // The failed redeploy is only visible in the log; wait for it there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.stderr().contains(MISSPELT_MESSAGE) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        node.stderr().contains(MISSPELT_MESSAGE),
        "10 s after breaking makiatto.toml the log does not say {MISSPELT_MESSAGE:?}:\n{}",
        node.stderr()
    );
    assert_serves(&node, "valid config\n", &node.revision);
}

#[test]
fn status_names_each_served_domain_and_its_revision() {
    let one = site_saying("one\n");
    let two = site_saying("two\n");
    let node = Node::start(one.path());
    let out = node.admin(&["status"]);
    assert!(out.success(), "makiatto status: {}", out.describe());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("localhost") && l.contains(&node.revision)),
        "makiatto status should list localhost at {}: {}",
        node.revision,
        out.describe()
    );

    let rev_two = node.deploy(two.path());
    let out = node.admin(&["status", "--json"]);
    assert!(out.success(), "makiatto status --json: {}", out.describe());
    let expected = format!("\"domain\":\"localhost\",\"revision\":\"{rev_two}");
    assert!(
        out.stdout.contains(&expected),
        "makiatto status --json after deploying {rev_two} should contain {expected:?}: {}",
        out.describe()
    );
}
