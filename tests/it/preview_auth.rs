//! Password-protected previews: a password set by the admin command (over
//! the local socket and over SSH, always from stdin) makes previews and
//! permalinks answer 401 until a visitor gives it by basic auth, then lets
//! the cookie it earned in; production never asks; clearing it opens the
//! previews again. In a cluster the password set on one node guards every
//! node's previews, and a cookie from one node works on another.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::loopback::{join_token, member_toml, rpc_of, start_member};
use crate::support::{
    CmdOutput, Node, Reply, maki_bin, makiatto_bin, run_command, temp_dir, write_file,
};

const DOMAIN: &str = "example.com";
const PREVIEW: &str = "review.preview.example.com";
const PASSWORD: &str = "correct horse battery";
/// Upper bound for replication; reached only when it is broken.
const CONVERGE: Duration = Duration::from_secs(120);

/// A repository serving `public/` as example.com, pushed to `node` on
/// `main`, then branch `review` pushed as its preview.
fn push_site_and_preview(client: &Client, node: &Node) -> std::path::PathBuf {
    let work = client.scratch().join("site");
    init_repo(client, &work);
    write_file(
        &work,
        "makiatto.toml",
        format!("[[domain]]\nname = \"{DOMAIN}\"\npath = \"public\"\n"),
    );
    write_file(&work, "public/index.html", "<h1>production</h1>");
    commit_all(client, &work, "production");
    let url = repo_url(node, "site");
    client.git_ok(&work, &["push", "-q", &url, "main"]);
    client.git_ok(&work, &["checkout", "-q", "-b", "review"]);
    write_file(&work, "public/index.html", "<h1>unreleased</h1>");
    commit_all(client, &work, "unreleased");
    client.git_ok(&work, &["push", "-q", &url, "review"]);
    work
}

fn get(node: &Node, host: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    node.get_with("/", &all)
}

fn basic(password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("anyone:{password}"));
    format!("Basic {encoded}")
}

/// `makiatto preview-password DOMAIN ACTION --data DATA`, with `input`
/// piped on stdin (as a script would; a terminal gets a prompt instead).
fn preview_password(node: &Node, action: &str, input: Option<&str>) -> CmdOutput {
    let mut command = std::process::Command::new("sh");
    let mut script = format!(
        "'{}' preview-password {DOMAIN} {action} --data '{}'",
        makiatto_bin(),
        node.data.display()
    );
    if let Some(input) = input {
        let file = node.scratch().join("password.txt");
        write_file(node.scratch(), "password.txt", format!("{input}\n"));
        script.push_str(&format!(" < '{}'", file.display()));
    }
    command.arg("-c").arg(script);
    run_command(command, Duration::from_secs(60))
}

/// `maki ARGS --node <node>`, with `stdin` as its input.
fn maki(client: &Client, node: &Node, args: &str, stdin: Option<&Path>) -> CmdOutput {
    let redirect = stdin.map_or_else(String::new, |p| format!(" < '{}'", p.display()));
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            "'{}' {args} --node git@127.0.0.1:{}{redirect}",
            maki_bin().display(),
            node.ssh_port()
        ))
        .env("MAKI_SSH_COMMAND", client.ssh_command());
    run_command(command, Duration::from_secs(60))
}

/// The `name=value` of a `set-cookie` header.
fn cookie_of(reply: &Reply) -> String {
    let set = reply
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no set-cookie: {}", reply.describe()));
    set.split(';').next().unwrap_or_default().to_string()
}

fn assert_asks(reply: &Reply) {
    assert_eq!(reply.status, 401, "{}", reply.describe());
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Basic realm=\"preview of example.com\", charset=\"UTF-8\""),
        "{}",
        reply.describe()
    );
    assert_eq!(reply.header("x-robots-tag"), Some("noindex"));
    assert!(reply.text().contains("curl -u"), "{}", reply.describe());
}

#[test]
fn a_preview_password_asks_visitors_of_previews_and_permalinks_and_never_of_production() {
    let client = Client::new();
    let node = client.start_node();
    push_site_and_preview(&client, &node);

    // Open previews are served, unindexed; production is indexed.
    let open = get(&node, PREVIEW, &[]);
    assert_eq!(open.status, 200, "{}", open.describe());
    assert_eq!(open.text(), "<h1>unreleased</h1>");
    assert_eq!(open.header("x-robots-tag"), Some("noindex"));
    let production = get(&node, DOMAIN, &[]);
    assert_eq!(production.text(), "<h1>production</h1>");
    assert_eq!(production.header("x-robots-tag"), None);
    let revision = production
        .header("x-makiatto-revision")
        .unwrap_or_default()
        .to_string();
    let permalink = format!("{revision}.rev.{DOMAIN}");
    let shown = preview_password(&node, "show", None);
    assert!(
        shown.stdout.contains("open (no password set)"),
        "{}",
        shown.describe()
    );
    let shown = preview_password(&node, "show --json", None);
    assert_eq!(
        shown.stdout.trim(),
        "{\"domain\":\"example.com\",\"password_set\":false,\"set_ms\":null}",
        "{}",
        shown.describe()
    );

    // Too short a password is refused with the rule; the previews stay open.
    let short = preview_password(&node, "set", Some("hunter2"));
    assert!(!short.success(), "{}", short.describe());
    assert!(short.stderr.contains("at least 8"), "{}", short.describe());
    assert_eq!(get(&node, PREVIEW, &[]).status, 200);

    let set = preview_password(&node, "set", Some(PASSWORD));
    assert!(set.success(), "{}", set.describe());
    assert!(!set.stdout.contains(PASSWORD) && !set.stderr.contains(PASSWORD));
    let deploys = node.admin(&["deploys", DOMAIN]);
    assert!(
        deploys
            .stdout
            .contains("previews and permalinks of example.com: password set "),
        "{}",
        deploys.describe()
    );
    assert!(
        !node.stderr().contains(PASSWORD),
        "the node logged the password"
    );
    let shown = preview_password(&node, "show --json", None);
    assert!(
        shown.stdout.contains("\"password_set\":true,\"set_ms\":"),
        "{}",
        shown.describe()
    );
    assert!(!shown.stdout.contains("argon2"), "{}", shown.describe());

    // No password, a wrong one: 401 with the realm and what to do.
    assert_asks(&get(&node, PREVIEW, &[]));
    assert_asks(&get(
        &node,
        PREVIEW,
        &[("authorization", &basic("wrong horse battery"))],
    ));
    assert_asks(&get(&node, &permalink, &[]));

    // The right one: the page, unindexed, and a cookie.
    let right = get(&node, PREVIEW, &[("authorization", &basic(PASSWORD))]);
    assert_eq!(right.status, 200, "{}", right.describe());
    assert_eq!(right.text(), "<h1>unreleased</h1>");
    assert_eq!(right.header("x-robots-tag"), Some("noindex"));
    assert_eq!(
        right.header("cache-control"),
        Some("private, max-age=0, must-revalidate")
    );
    let set_cookie = right.header("set-cookie").unwrap_or_default();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    let cookie = cookie_of(&right);
    assert!(cookie.starts_with("makiatto-preview="), "{cookie}");

    // The cookie alone lets the visitor in; a forged one does not, nor
    // does it open another host.
    let by_cookie = get(&node, PREVIEW, &[("cookie", &cookie)]);
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.describe());
    assert_eq!(by_cookie.text(), "<h1>unreleased</h1>");
    let forged = format!(
        "{}0",
        cookie.trim_end_matches(|c: char| c.is_ascii_hexdigit())
    );
    assert_asks(&get(&node, PREVIEW, &[("cookie", &forged)]));
    assert_asks(&get(&node, &permalink, &[("cookie", &cookie)]));
    let kept = get(&node, &permalink, &[("authorization", &basic(PASSWORD))]);
    assert_eq!(kept.status, 200, "{}", kept.describe());
    assert_eq!(kept.text(), "<h1>production</h1>");

    // Production never asks and stays indexed.
    let production = get(&node, DOMAIN, &[]);
    assert_eq!(production.status, 200, "{}", production.describe());
    assert_eq!(production.header("x-robots-tag"), None);
    assert_eq!(production.header("www-authenticate"), None);

    // ACME HTTP-01 paths are never behind the password.
    let acme = node.get_with("/.well-known/acme-challenge/token", &[("host", PREVIEW)]);
    assert_ne!(acme.status, 401, "{}", acme.describe());

    // Cleared over SSH: open again, and a new password ends old cookies.
    let cleared = client.ssh(&node, &format!("preview-password {DOMAIN} clear"), None);
    assert!(cleared.success(), "{}", cleared.describe());
    let open = get(&node, PREVIEW, &[]);
    assert_eq!(open.status, 200, "{}", open.describe());
    assert_eq!(open.header("x-robots-tag"), Some("noindex"));
    let shown = preview_password(&node, "show", None);
    assert!(shown.stdout.contains("open"), "{}", shown.describe());
    let deploys = node.admin(&["deploys", DOMAIN]);
    assert!(
        !deploys.stdout.contains("password"),
        "{}",
        deploys.describe()
    );
    // Set again through `maki` (the password piped, as a script would).
    let file = node.scratch().join("new-password.txt");
    write_file(
        node.scratch(),
        "new-password.txt",
        "another good password\n",
    );
    let again = maki(
        &client,
        &node,
        &format!("preview-password {DOMAIN} set"),
        Some(&file),
    );
    assert!(again.success(), "{}", again.describe());
    let shown = maki(&client, &node, &format!("preview-password {DOMAIN}"), None);
    assert!(
        shown.stdout.contains("password set"),
        "{}",
        shown.describe()
    );
    let shown = maki(
        &client,
        &node,
        &format!("preview-password {DOMAIN} --json"),
        None,
    );
    assert!(
        shown.stdout.contains("\"password_set\":true"),
        "{}",
        shown.describe()
    );
    assert_asks(&get(&node, PREVIEW, &[("cookie", &cookie)]));
    assert_asks(&get(&node, PREVIEW, &[("authorization", &basic(PASSWORD))]));
    let new = get(
        &node,
        PREVIEW,
        &[("authorization", &basic("another good password"))],
    );
    assert_eq!(new.status, 200, "{}", new.describe());
}

#[test]
fn a_flood_of_wrong_passwords_is_refused_while_production_and_the_right_password_keep_working() {
    let client = Client::new();
    let node = client.start_node();
    push_site_and_preview(&client, &node);
    let set = preview_password(&node, "set", Some(PASSWORD));
    assert!(set.success(), "{}", set.describe());

    // 32 clients at once, four wrong passwords each: every answer is 401,
    // or 503 with Retry-After once the check slots are taken; none hangs.
    let url = node.url("/");
    let flood: Vec<_> = (0..32)
        .map(|i| {
            let agent = node.agent();
            let url = url.clone();
            thread::spawn(move || {
                (0..4)
                    .map(|j| {
                        let auth = basic(&format!("wrong password {i} {j}"));
                        let reply = crate::support::fetch_with(
                            &agent,
                            &url,
                            &[("host", PREVIEW), ("authorization", &auth)],
                        );
                        (
                            reply.status,
                            reply.header("retry-after").map(str::to_string),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Production answers meanwhile.
    for _ in 0..10 {
        let production = get(&node, DOMAIN, &[]);
        assert_eq!(production.status, 200, "{}", production.describe());
    }
    let mut answers = Vec::new();
    for client in flood {
        answers.extend(client.join().unwrap_or_default());
    }
    assert_eq!(answers.len(), 128);
    for (status, retry_after) in &answers {
        match status {
            401 => {}
            503 => assert_eq!(retry_after.as_deref(), Some("1")),
            other => panic!("a wrong password got {other}: {answers:?}"),
        }
    }
    let refused = answers.iter().filter(|(s, _)| *s == 503).count();
    println!(
        "128 wrong passwords from 32 clients: {} checked (401), {refused} told to retry (503)",
        128 - refused
    );
    let right = get(&node, PREVIEW, &[("authorization", &basic(PASSWORD))]);
    assert_eq!(right.status, 200, "{}", right.describe());
}

fn start(
    dir: &TempDir,
    name: &str,
    last: u8,
    key: Option<&str>,
    join: Option<(&str, &str)>,
) -> Node {
    let mut head = format!(
        "name = \"{name}\"\ndata_dir = \"data\"\nipv4 = \"198.51.100.{last}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[ssh]\nlisten = \"127.0.0.1:0\"\n"
    );
    if let Some(key) = key {
        head.push_str(&format!("authorized_keys = [\"{}\"]\n", key.trim()));
    }
    start_member(dir.path(), &member_toml(&head, join))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < CONVERGE, "never happened: {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn status(node: &Node, host: &str, headers: &[(&str, &str)]) -> Option<u16> {
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    node.try_get_with("/", &all).ok().map(|r| r.status)
}

#[test]
fn a_preview_password_set_on_one_node_guards_the_previews_of_every_node() {
    let client = Client::new();
    let key = std::fs::read_to_string(&client.public_key).unwrap_or_default();
    let homes: Vec<TempDir> = (0..3).map(|_| temp_dir()).collect();
    let a = start(&homes[0], "guard-a", 21, Some(&key), None);
    let seed = rpc_of(&a);
    let b = start(
        &homes[1],
        "guard-b",
        22,
        None,
        Some((&seed, &join_token(&a))),
    );
    let c = start(
        &homes[2],
        "guard-c",
        23,
        None,
        Some((&seed, &join_token(&a))),
    );
    let nodes = [&a, &b, &c];
    push_site_and_preview(&client, &a);
    for node in nodes {
        wait_for("every node serves the preview", || {
            node.try_get_with("/", &[("host", PREVIEW)])
                .is_ok_and(|r| r.status == 200 && r.text() == "<h1>unreleased</h1>")
        });
    }

    // Set on b: every node asks, and takes the password.
    let set = preview_password(&b, "set", Some(PASSWORD));
    assert!(set.success(), "{}", set.describe());
    for node in nodes {
        wait_for("every node asks for the password", || {
            status(node, PREVIEW, &[]) == Some(401)
        });
        assert_asks(&get(node, PREVIEW, &[]));
        assert_asks(&get(
            node,
            PREVIEW,
            &[("authorization", &basic("not the password"))],
        ));
        let right = get(node, PREVIEW, &[("authorization", &basic(PASSWORD))]);
        assert_eq!(right.status, 200, "{}", right.describe());
        assert_eq!(right.text(), "<h1>unreleased</h1>");
        assert_eq!(right.header("x-robots-tag"), Some("noindex"));
        let production = get(node, DOMAIN, &[]);
        assert_eq!(production.status, 200, "{}", production.describe());
        assert_eq!(production.header("x-robots-tag"), None);
        let deploys = node.admin(&["deploys", DOMAIN]);
        assert!(
            deploys.stdout.contains("password set"),
            "{}",
            deploys.describe()
        );
    }

    // A visitor whom DNS sends to another node keeps the cookie's access.
    let cookie = cookie_of(&get(&a, PREVIEW, &[("authorization", &basic(PASSWORD))]));
    let elsewhere = get(&c, PREVIEW, &[("cookie", &cookie)]);
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.describe());

    // Cleared on c: open on every node.
    let cleared = preview_password(&c, "clear", None);
    assert!(cleared.success(), "{}", cleared.describe());
    for node in nodes {
        wait_for("every node serves the preview openly again", || {
            status(node, PREVIEW, &[]) == Some(200)
        });
    }
}
