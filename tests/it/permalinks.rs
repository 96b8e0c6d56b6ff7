//! Deploy permalinks: every kept revision answers at
//! `<revision>.rev.<domain>`, in DNS and over HTTPS with the cluster's
//! wildcard certificate (pebble as the CA), unindexed, while the domain
//! itself serves the newest revision.

use std::process::Command;
use std::time::Duration;

use crate::acme::{acme_node, curl_https, status_once};
use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::pebble::PebblePlan;
use crate::support::{Xorshift, revision_in, run_command, write_file, write_tree};

const CONFIG: &str = "[[domain]]\nname = \"example.com\"\npath = \"public\"\n";

#[test]
fn a_permalink_serves_an_older_revision_byte_identical_over_https_while_the_domain_serves_the_newest()
 {
    let plan = PebblePlan::new();
    let client = Client::new();
    let node = acme_node(&client, &plan.directory(), &plan.tls_root);
    let pebble = plan.start(node.dns(), None, &[]);

    let work = client.scratch().join("site");
    init_repo(&client, &work);
    let mut rng = Xorshift::new(19);
    let first_blob = rng.bytes(300_000);
    write_tree(
        &work,
        &[
            ("makiatto.toml", CONFIG),
            ("public/index.html", "<h1>one</h1>"),
        ],
    );
    write_file(&work, "public/blob.bin", &first_blob);
    commit_all(&client, &work, "one");
    let url = repo_url(&node, "site");
    let out = client.git_ok(&work, &["push", &url, "main"]);
    let first = revision_in(&out.stderr).unwrap_or_else(|| panic!("{}", out.describe()));

    let second_blob = rng.bytes(300_000);
    write_file(&work, "public/blob.bin", &second_blob);
    write_file(&work, "public/index.html", "<h1>two</h1>");
    commit_all(&client, &work, "two");
    let out = client.git_ok(&work, &["push", &url, "main"]);
    let second = revision_in(&out.stderr).unwrap_or_else(|| panic!("{}", out.describe()));
    assert_ne!(first, second);

    status_once(
        &node,
        "\"*.rev.example.com\"",
        Duration::from_secs(90),
        &|| pebble.log(),
    );
    status_once(
        &node,
        "\"state\":\"valid\"",
        Duration::from_secs(90),
        &|| pebble.log(),
    );
    let root = client.scratch().join("pebble-root.pem");
    pebble.write_root(&root);
    let https = node.listener("https");

    let fetch = |host: &str, file: &str| {
        let path = client.scratch().join(file);
        let out = curl_https(
            &root,
            https,
            host,
            "/blob.bin",
            &["-o", path.to_str().unwrap_or("")],
        );
        assert!(
            out.success(),
            "curl https://{host}/blob.bin: {}",
            out.describe()
        );
        let body = std::fs::read(&path).unwrap_or_default();
        (out.stdout, body)
    };
    let permalink = format!("{first}.rev.example.com");
    let (headers, body) = fetch(&permalink, "old.bin");
    assert!(
        body == first_blob,
        "the permalink did not serve the first revision's bytes"
    );
    let headers = headers.to_ascii_lowercase();
    assert!(headers.contains("x-robots-tag: noindex"), "{headers}");
    assert!(
        headers.contains(&format!("x-makiatto-revision: {first}")),
        "{headers}"
    );

    let (headers, body) = fetch("example.com", "new.bin");
    assert!(
        body == second_blob,
        "production did not serve the newest bytes"
    );
    assert!(
        !headers.to_ascii_lowercase().contains("x-robots-tag"),
        "{headers}"
    );

    // The newest revision has its permalink too; an unknown one has none.
    let (_, body) = fetch(&format!("{second}.rev.example.com"), "newest.bin");
    assert!(body == second_blob);
    let unknown = curl_https(&root, https, "0123456789ab.rev.example.com", "/", &[]);
    assert!(unknown.stdout.contains("\n404 "), "{}", unknown.describe());

    // DNS answers the permalink host with the node.
    let mut dig = Command::new("dig");
    dig.args([
        &format!("@{}", node.dns().ip()),
        "-p",
        &node.dns().port().to_string(),
        "+short",
        "+tries=2",
        "+time=5",
        &permalink,
        "A",
    ]);
    let answer = run_command(dig, Duration::from_secs(30));
    assert_eq!(answer.stdout.trim(), "127.0.0.1", "{}", answer.describe());
}
