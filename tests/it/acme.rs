//! Automatic HTTPS against a real ACME CA: pebble, whose DNS resolver is
//! the node's own DNS listener, so every DNS-01 validation goes through
//! our DNS. Visitors are played by curl (`--cacert` pebble's root,
//! `--resolve` to the node) and kdig for DNS over TLS.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::pebble::{PebblePlan, free_port};
use crate::support::{CmdOutput, Node, run_command, write_file, write_tree};

const SITE_CONFIG: &str = "[[domain]]\nname = \"example.com\"\npath = \"public\"\naliases = [\"www.example.com\"]\nhsts_max_age = 300\n";
/// How long issuance may take (pebble with no artificial sleeps, a debug
/// build, a retry or two while pebble starts).
const ISSUE_TIMEOUT: Duration = Duration::from_secs(90);

/// A dev node with `[acme]` pointing at `directory`, HTTPS and DNS over TLS
/// on ephemeral ports, authorising `client`'s key.
pub(crate) fn acme_node(client: &Client, directory: &str, ca_root: &Path) -> Node {
    acme_node_with(client, directory, ca_root, "")
}

/// `acme_node` with `extra` appended to its node.toml.
fn acme_node_with(client: &Client, directory: &str, ca_root: &Path, extra: &str) -> Node {
    let toml = client.scratch().join("node.toml");
    std::fs::write(
        &toml,
        format!(
            "name = \"dev\"\nipv4 = \"127.0.0.1\"\n[acme]\ndirectory = \"{directory}\"\nca_root = \"{}\"\ncontact = \"ops@example.com\"\nretry_secs = 1\n{extra}",
            ca_root.display()
        ),
    )
    .expect("write node.toml");
    Node::start_bare(&[
        OsStr::new("--authorized-key"),
        client.public_key.as_os_str(),
        OsStr::new("--config"),
        toml.as_os_str(),
        OsStr::new("--https"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--dot"),
        OsStr::new("127.0.0.1:0"),
    ])
}

/// Pushes a site for example.com on `main`, and a `feature` branch (a
/// preview) when `preview` is set.
fn push_site(client: &Client, node: &Node, preview: bool) {
    let work = client.scratch().join("site");
    init_repo(client, &work);
    write_tree(
        &work,
        &[
            ("makiatto.toml", SITE_CONFIG),
            ("public/index.html", "<h1>production</h1>"),
        ],
    );
    commit_all(client, &work, "first");
    let url = repo_url(node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    if preview {
        client.git_ok(&work, &["checkout", "-q", "-b", "feature"]);
        write_file(&work, "public/index.html", "<h1>preview</h1>");
        commit_all(client, &work, "preview");
        client.git_ok(&work, &["push", &url, "feature"]);
    }
}

/// `makiatto status --json` once it contains `needle`; panics with the
/// node's and pebble's logs after `limit`.
pub(crate) fn status_once(
    node: &Node,
    needle: &str,
    limit: Duration,
    pebble_log: &dyn Fn() -> String,
) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let out = node.admin(&["status", "--json"]);
        if out.success() && out.stdout.contains(needle) {
            return out.stdout;
        }
        if Instant::now() > deadline {
            panic!(
                "status never showed {needle:?}: {}\n--- node stderr ---\n{}\n--- pebble ---\n{}",
                out.describe(),
                node.stderr(),
                pebble_log()
            );
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Milliseconds since the Unix epoch, as the status's times are written.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The decimal number right after `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// curl over HTTPS to `host` on the node's HTTPS port, trusting `root`;
/// prints the body, then a line `STATUS HTTP_VERSION`.
pub(crate) fn curl_https(
    root: &Path,
    https: SocketAddr,
    host: &str,
    path: &str,
    extra: &[&str],
) -> CmdOutput {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--cacert"])
        .arg(root)
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", https.port()))
        .args(["-w", "\n%{http_code} %{http_version}", "-D", "-"])
        .args(extra)
        .arg(format!("https://{host}:{}{path}", https.port()));
    run_command(curl, Duration::from_secs(30))
}

fn kdig(args: &[&str]) -> CmdOutput {
    let mut kdig = Command::new("kdig");
    kdig.args(args);
    run_command(kdig, Duration::from_secs(30))
}

#[test]
fn a_certificate_from_pebble_through_our_dns_serves_apex_alias_and_previews_over_https_and_h2() {
    let plan = PebblePlan::new();
    let client = Client::new();
    let node = acme_node(&client, &plan.directory(), &plan.tls_root);
    let pebble = plan.start(node.dns(), None, &[]);
    push_site(&client, &node, true);

    let status = status_once(&node, "\"state\":\"valid\"", ISSUE_TIMEOUT, &|| {
        pebble.log()
    });
    for name in [
        "example.com",
        "www.example.com",
        "*.preview.example.com",
        "*.rev.example.com",
        "*.ns.example.com",
    ] {
        assert!(
            status.contains(&format!("\"{name}\"")),
            "{name} not covered: {status}"
        );
    }
    // Pebble validated through our DNS listener.
    assert!(
        pebble.log().contains(&format!("{}", node.dns())),
        "pebble did not use the node's DNS: {}",
        pebble.log()
    );
    let root = client.scratch().join("pebble-root.pem");
    pebble.write_root(&root);
    let https = node.listener("https");

    for (host, body) in [
        ("example.com", "<h1>production</h1>"),
        ("www.example.com", "<h1>production</h1>"),
        ("feature.preview.example.com", "<h1>preview</h1>"),
    ] {
        for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let out = curl_https(&root, https, host, "/", &[flag]);
            assert!(
                out.success(),
                "curl {flag} https://{host}/: {}",
                out.describe()
            );
            assert!(out.stdout.contains(body), "{host}: {}", out.describe());
            assert!(
                out.stdout.trim_end().ends_with(&format!("200 {version}")),
                "{host} {flag}: {}",
                out.describe()
            );
            assert!(
                out.stdout
                    .to_ascii_lowercase()
                    .contains("strict-transport-security: max-age=300"),
                "no HSTS from makiatto.toml on {host}: {}",
                out.describe()
            );
        }
    }

    // Plain HTTP sends visitors of covered hosts to HTTPS, path and query kept.
    let redirect = node.get_with("/a/b?c=1", &[("host", "www.example.com")]);
    assert_eq!(redirect.status, 308, "{}", redirect.describe());
    assert_eq!(
        redirect.header("location"),
        Some(format!("https://www.example.com:{}/a/b?c=1", https.port()).as_str())
    );
    let preview = node.get_with("/", &[("host", "feature.preview.example.com")]);
    assert_eq!(preview.status, 308, "{}", preview.describe());

    // The challenge values were withdrawn once the order finished.
    let txt = kdig(&[
        &format!("@{}", node.dns().ip()),
        "-p",
        &node.dns().port().to_string(),
        "+norec",
        "_acme-challenge.example.com",
        "TXT",
    ]);
    assert!(txt.success(), "{}", txt.describe());
    assert!(
        !txt.stdout.contains("\tTXT\t"),
        "challenge still published: {}",
        txt.stdout
    );

    // The key lives in state.sqlite, readable by this user only.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(node.data.join("state.sqlite"))
            .expect("state.sqlite")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // One order covered everything, previews included.
    assert_eq!(
        pebble.log().matches("Added order").count(),
        1,
        "{}",
        pebble.log()
    );
    let status = node.admin(&["status"]);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("feature.preview.example.com")
                && l.contains("https: valid until")),
        "{}",
        status.describe()
    );

    // DNS over TLS (RFC 7858) with the certificate for dev.ns.example.com.
    let dot = node.listener("dot");
    let ca = format!("+tls-ca={}", root.display());
    let answer = kdig(&[
        &format!("@{}", dot.ip()),
        "-p",
        &dot.port().to_string(),
        "+tls",
        &ca,
        "+tls-hostname=dev.ns.example.com",
        "example.com",
        "A",
    ]);
    assert!(answer.success(), "kdig +tls: {}", answer.describe());
    assert!(answer.stdout.contains("NOERROR"), "{}", answer.stdout);
    assert!(
        answer.stdout.contains("example.com.") && answer.stdout.contains("127.0.0.1"),
        "kdig +tls got no A record: {}",
        answer.stdout
    );
    assert!(answer.stdout.contains("TLS"), "{}", answer.stdout);
    let soa = kdig(&[
        &format!("@{}", dot.ip()),
        "-p",
        &dot.port().to_string(),
        "+tls",
        &ca,
        "+tls-hostname=dev.ns.example.com",
        "example.com",
        "SOA",
    ]);
    assert!(
        soa.success() && soa.stdout.contains("hostmaster.example.com."),
        "kdig +tls SOA: {}",
        soa.describe()
    );
    // A name the certificate does not cover fails verification.
    let wrong = kdig(&[
        &format!("@{}", dot.ip()),
        "-p",
        &dot.port().to_string(),
        "+tls",
        &ca,
        "+tls-hostname=dev.ns.other.org",
        "example.com",
        "A",
    ]);
    assert!(
        !wrong.stdout.contains("NOERROR"),
        "kdig accepted a certificate for the wrong name: {}",
        wrong.describe()
    );
}

/// The `expire date:` curl -v reports for the served certificate.
fn served_expiry(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        l.split_once("expire date: ")
            .map(|(_, d)| d.trim().to_string())
    })
}

#[test]
fn a_short_lived_certificate_is_renewed_before_expiry_without_a_failed_request() {
    let plan = PebblePlan::new();
    let client = Client::new();
    let node = acme_node(&client, &plan.directory(), &plan.tls_root);
    // 30-second certificates: renewed with a third of their life left.
    let pebble = plan.start(node.dns(), Some(30), &[]);
    push_site(&client, &node, false);
    status_once(&node, "\"state\":\"valid\"", ISSUE_TIMEOUT, &|| {
        pebble.log()
    });
    let root = client.scratch().join("pebble-root.pem");
    pebble.write_root(&root);
    let https = node.listener("https");

    // Poll until three different certificates have been served (two
    // renewals); every request must succeed, with a certificate curl
    // accepts as unexpired.
    let mut seen: Vec<String> = Vec::new();
    let mut requests = 0;
    let deadline = Instant::now() + Duration::from_secs(150);
    while seen.len() < 3 {
        let out = curl_https(&root, https, "example.com", "/", &["-v"]);
        requests += 1;
        assert!(
            out.success() && out.stdout.contains("<h1>production</h1>"),
            "request {requests} failed during renewal (certificates so far {seen:?}): {}\n--- node ---\n{}",
            out.describe(),
            node.stderr()
        );
        let expiry = served_expiry(&out.stderr)
            .unwrap_or_else(|| panic!("no expire date in curl -v: {}", out.stderr));
        if seen.last() != Some(&expiry) {
            seen.push(expiry);
        }
        assert!(
            Instant::now() < deadline,
            "only {} certificates served in 150 s: {seen:?}\n--- node ---\n{}\n--- pebble ---\n{}",
            seen.len(),
            node.stderr(),
            pebble.log()
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert!(node.stderr().contains("certificate issued"));
}

#[test]
fn an_unreachable_ca_leaves_the_site_on_http_with_a_clear_status_and_retries() {
    let client = Client::new();
    // Nothing listens there.
    let directory = format!("https://{}/dir", free_port());
    let root = client.scratch().join("unused-root.pem");
    let plan = PebblePlan::new();
    std::fs::copy(&plan.tls_root, &root).expect("copy root");
    let started_ms = unix_ms();
    let node = acme_node(&client, &directory, &root);
    push_site(&client, &node, false);

    // Retried with backoff (1 s, 2 s, ...): the attempt count grows.
    let status = status_once(&node, "\"attempts\":2", ISSUE_TIMEOUT, &String::new);
    let read_ms = unix_ms();
    assert!(status.contains("\"state\":\"failed\""), "{status}");
    assert!(
        status.contains(&directory),
        "the status should name the CA: {status}"
    );
    // The next try is the second failure's moment (during this test) plus
    // the second backoff, 2 s.
    let retry_at_ms = number_after(&status, "\"retry_at_ms\":")
        .unwrap_or_else(|| panic!("no retry time in the status: {status}"));
    assert!(
        (started_ms + 2000..=read_ms + 2000).contains(&retry_at_ms),
        "retry_at_ms {retry_at_ms} is not 2 s after a failure between {started_ms} and {read_ms}: {status}"
    );
    assert!(
        node.stderr().contains("serving example.com over HTTP only"),
        "no log line saying why: {}",
        node.stderr()
    );

    // The site is served over plain HTTP, not redirected.
    let reply = node.get_with("/", &[("host", "example.com")]);
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.text(), "<h1>production</h1>");

    // `maki status` over SSH says the same in words.
    let mut maki = Command::new(crate::support::maki_bin());
    maki.arg("status")
        .arg("--node")
        .arg(format!("git@127.0.0.1:{}", node.ssh_port()))
        .env("MAKI_SSH_COMMAND", client.ssh_command());
    let out = run_command(maki, Duration::from_secs(60));
    assert!(out.success(), "maki status: {}", out.describe());
    assert!(
        out.stdout.contains("https: none, served over HTTP") && out.stdout.contains(&directory),
        "maki status: {}",
        out.describe()
    );
}

#[test]
fn a_ca_rejecting_the_order_leaves_the_site_on_http_and_retries() {
    let plan = PebblePlan::new();
    let client = Client::new();
    let node = acme_node(&client, &plan.directory(), &plan.tls_root);
    let pebble = plan.start(node.dns(), None, &["example.com"]);
    push_site(&client, &node, false);

    let status = status_once(&node, "\"attempts\":2", ISSUE_TIMEOUT, &|| pebble.log());
    assert!(status.contains("\"state\":\"failed\""), "{status}");
    assert!(
        status.contains("rejectedIdentifier") || status.contains("blocked"),
        "the status should carry the CA's reason: {status}"
    );
    assert!(node.stderr().contains("serving example.com over HTTP only"));
    let reply = node.get_with("/", &[("host", "example.com")]);
    assert_eq!(reply.status, 200, "{}", reply.describe());
    // No certificate: an HTTPS client trusting pebble gets no connection.
    let root = client.scratch().join("pebble-root.pem");
    pebble.write_root(&root);
    let out = curl_https(&root, node.listener("https"), "example.com", "/", &[]);
    assert!(
        !out.success(),
        "HTTPS answered without a certificate: {}",
        out.describe()
    );
}

#[test]
fn only_the_chosen_node_orders_and_this_node_takes_over_when_the_issuer_is_marked_down() {
    // A peer the issuer choice ranks first for example.com (the peer's
    // address only ever appears inside DNS answers): the rendezvous
    // ranking (blake3 of domain and node name) puts "cairo" before "dev".
    // Written down, not asked of the library, so a change of the hash
    // fails here.
    let peer = "cairo";
    let plan = PebblePlan::new();
    let client = Client::new();
    let node = acme_node_with(
        &client,
        &plan.directory(),
        &plan.tls_root,
        &format!("[[nodes]]\nname = \"{peer}\"\nipv4 = \"203.0.113.1\"\n"),
    );
    let pebble = plan.start(node.dns(), None, &[]);
    push_site(&client, &node, false);

    // This node sees the peer is the issuer and places no order.
    let deadline = Instant::now() + ISSUE_TIMEOUT;
    while !node
        .stderr()
        .contains("another node orders the certificate")
    {
        assert!(
            Instant::now() < deadline,
            "no issuer decision: {}",
            node.stderr()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        node.stderr().contains(&format!("issuer={peer}")),
        "{}",
        node.stderr()
    );
    let status = node.admin(&["status", "--json"]);
    assert!(
        status.stdout.contains("\"state\":\"none\""),
        "{}",
        status.describe()
    );
    assert!(
        !pebble.log().contains("Added order"),
        "an order was placed: {}",
        pebble.log()
    );

    // The issuer is marked down: this node takes over and gets the certificate.
    let down = node.admin(&["node", "health", peer, "down"]);
    assert!(down.success(), "{}", down.describe());
    status_once(&node, "\"state\":\"valid\"", ISSUE_TIMEOUT, &|| {
        pebble.log()
    });
    assert!(node.stderr().contains("this node orders the certificate"));
    assert_eq!(
        pebble.log().matches("Added order").count(),
        1,
        "{}",
        pebble.log()
    );
}

#[test]
fn a_production_node_from_node_toml_gets_its_certificate_and_serves_https() {
    let plan = PebblePlan::new();
    let dir = crate::support::temp_dir();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"edge-1\"\ndata_dir = \"data\"\nipv4 = \"127.0.0.1\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[https]\nlisten = \"127.0.0.1:0\"\n\n[dns]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\n\n[acme]\ndirectory = \"{}\"\nca_root = \"{}\"\nretry_secs = 1\n",
            plan.directory(),
            plan.tls_root.display()
        ),
    )
    .expect("write node.toml");
    let data = dir.path().join("data");
    let node = Node::start_run(&config, dir, data);
    let pebble = plan.start(node.dns(), None, &[]);
    let site = crate::support::temp_dir();
    write_tree(
        site.path(),
        &[
            ("makiatto.toml", SITE_CONFIG),
            ("public/index.html", "<h1>production</h1>"),
        ],
    );
    node.deploy(site.path());
    status_once(&node, "\"state\":\"valid\"", ISSUE_TIMEOUT, &|| {
        pebble.log()
    });
    let root = node.scratch().join("pebble-root.pem");
    pebble.write_root(&root);
    let out = curl_https(&root, node.listener("https"), "www.example.com", "/", &[]);
    assert!(
        out.success() && out.stdout.contains("<h1>production</h1>"),
        "{}",
        out.describe()
    );
    let dot = node.listener("dot");
    let answer = kdig(&[
        &format!("@{}", dot.ip()),
        "-p",
        &dot.port().to_string(),
        "+tls",
        &format!("+tls-ca={}", root.display()),
        "+tls-hostname=edge-1.ns.example.com",
        "www.example.com",
        "A",
    ]);
    assert!(
        answer.success() && answer.stdout.contains("127.0.0.1"),
        "{}",
        answer.describe()
    );
}

#[test]
fn a_failed_renewal_keeps_serving_the_current_certificate_and_says_so() {
    let plan = PebblePlan::new();
    let client = Client::new();
    // The CA root outlives pebble, so the failure is the CA's absence.
    let ca_root = client.scratch().join("listener-root.pem");
    std::fs::copy(&plan.tls_root, &ca_root).expect("copy the CA root");
    let plan_directory = plan.directory();
    let node = acme_node(&client, &plan_directory, &ca_root);
    // 60-second certificates: renewal is due after 40 s.
    let pebble = plan.start(node.dns(), Some(60), &[]);
    push_site(&client, &node, false);
    status_once(&node, "\"state\":\"valid\"", ISSUE_TIMEOUT, &|| {
        pebble.log()
    });
    let root = client.scratch().join("pebble-root.pem");
    pebble.write_root(&root);
    // The CA goes away before the renewal.
    drop(pebble);

    let status = status_once(&node, "\"attempts\":1", ISSUE_TIMEOUT, &String::new);
    assert!(status.contains("\"state\":\"valid\""), "{status}");
    assert!(
        status.contains(&format!("\"error\":\"ACME CA {}", plan_directory)),
        "{status}"
    );
    assert!(
        node.stderr()
            .contains("certificate renewal failed; still serving the current certificate"),
        "{}",
        node.stderr()
    );
    let text = node.admin(&["status"]);
    assert!(
        text.stdout.contains("renewal failing"),
        "{}",
        text.describe()
    );
    let out = curl_https(&root, node.listener("https"), "example.com", "/", &[]);
    assert!(
        out.success() && out.stdout.contains("<h1>production</h1>"),
        "the current certificate is no longer served: {}",
        out.describe()
    );
}

#[test]
fn the_default_caa_record_names_the_configured_ca_and_a_domain_s_own_caa_wins() {
    let plan = PebblePlan::new();
    let client = Client::new();
    let node = acme_node_with(
        &client,
        &plan.directory(),
        &plan.tls_root,
        "caa_identity = \"pebble.test\"\n",
    );
    let pebble = plan.start(node.dns(), None, &[]);
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"example.com\"\npath = \"public\"\n\n[[domain]]\nname = \"example.net\"\npath = \"public\"\ncaa = [\"0 issue \\\"ca.example.org\\\"\"]\n",
            ),
            ("public/index.html", "<h1>two domains</h1>"),
        ],
    );
    commit_all(&client, &work, "first");
    client.git_ok(&work, &["push", &repo_url(&node, "site"), "main"]);
    // Pebble issues for the domain whose CAA names it.
    status_once(&node, "\"state\":\"valid\"", ISSUE_TIMEOUT, &|| {
        pebble.log()
    });

    let dns = node.dns();
    let caa = |name: &str| {
        let mut dig = Command::new("dig");
        dig.arg(format!("@{}", dns.ip())).args([
            "-p",
            &dns.port().to_string(),
            "+short",
            name,
            "CAA",
        ]);
        run_command(dig, Duration::from_secs(30))
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(caa("example.com"), "0 issue \"pebble.test\"");
    assert_eq!(caa("example.net"), "0 issue \"ca.example.org\"");
}
