//! Automatic HTTPS on a three-node cluster: real `makiatto run` nodes in
//! network namespaces joined over real WireGuard (the shared cluster
//! harness), and pebble as the CA in the harness's foreign namespace on the
//! same bridge, its DNS resolver pointed at a node's DNS listener, so every
//! validation goes through our DNS. pebble sleeps a random few seconds
//! before each validation, as a real CA takes its time, which leaves room
//! to kill an issuer in the middle of its order. Needs root.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::Cluster;
use crate::support::pebble::PebblePlan;
use crate::support::{run_command, temp_dir, write_file};

/// How long issuance may take: pebble's validation sleeps (up to
/// `VA_SLEEP_SECS` per challenge, three at a time), debug builds,
/// replication of the challenge values to every node.
const ISSUE_LIMIT: Duration = Duration::from_secs(180);
/// The longest random sleep pebble takes before a validation.
const VA_SLEEP_SECS: u32 = 6;
/// The nodes' takeover timeout: a few seconds, so a dead issuer's order
/// passes on quickly; a live issuer marks progress well within it.
const TAKEOVER_SECS: u32 = 5;
/// The node whose DNS listener pebble asks; it is never killed.
const RESOLVER_NODE: usize = 0;

/// The harness's cluster with pebble in the foreign namespace and every
/// node joined, ordering from it.
struct CaCluster {
    cluster: Cluster,
    /// Holds pebble's config and certificates for as long as it runs.
    _pebble: PebblePlan,
    /// pebble's issuing root, for clients in the namespaces.
    root: std::path::PathBuf,
    _scratch: tempfile::TempDir,
}

impl CaCluster {
    fn new() -> CaCluster {
        let mut cluster = Cluster::new(3);
        let pebble = PebblePlan::on_address(IpAddr::V4(cluster.foreign_v4()));
        let config = pebble.write_config(None, &[]);
        let resolver = format!("{}:53", cluster.underlay_v4(RESOLVER_NODE));
        let sleep = format!("PEBBLE_VA_SLEEPTIME={VA_SLEEP_SECS}");
        let config_arg = config.to_str().expect("UTF-8 temp path").to_string();
        cluster.spawn(
            None,
            "pebble",
            &[
                "env",
                &sleep,
                "PEBBLE_WFE_NONCEREJECT=0",
                "pebble",
                "-config",
                &config_arg,
                "-dnsserver",
                &resolver,
            ],
        );
        let tls_root = pebble.tls_root.to_str().expect("UTF-8").to_string();
        cluster.wait_for("pebble listens", Duration::from_secs(30), || {
            cluster
                .exec_foreign(&[
                    "curl",
                    "-sS",
                    "--fail",
                    "-m",
                    "2",
                    "--cacert",
                    &tls_root,
                    &pebble.directory(),
                ])
                .success()
                .then_some(())
        });
        let scratch = temp_dir();
        let root = scratch.path().join("pebble-root.pem");
        let root_arg = root.to_str().expect("UTF-8").to_string();
        cluster.exec_foreign_ok(&[
            "curl",
            "-sS",
            "--fail",
            "--cacert",
            &tls_root,
            "-o",
            &root_arg,
            &format!("https://{}/roots/0", pebble.management),
        ]);

        let acme = format!(
            "\n[dns]\nlisten = \"0.0.0.0:53\"\n\n[https]\nlisten = \"0.0.0.0:443\"\n\n[acme]\ndirectory = \"{}\"\nca_root = \"{tls_root}\"\nretry_secs = 1\ntakeover_secs = {TAKEOVER_SECS}\n",
            pebble.directory()
        );
        let seed_join = format!("{}:7070", cluster.underlay_v4(0));
        let seed = format!(
            "{}{acme}{}",
            cluster.base_config(0),
            cluster.cluster_table(0)
        );
        cluster.write_config(0, &seed);
        cluster.start(0);
        for i in 1..cluster.len() {
            let mut command = Command::new(crate::support::makiatto_bin());
            command
                .arg("join-token")
                .arg("--data")
                .arg(cluster.data_dir(0));
            let out = run_command(command, Duration::from_secs(30));
            assert!(out.success(), "join-token: {}", out.describe());
            let token = out
                .stdout
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let text = format!(
                "{}{acme}{}join = \"{seed_join}\"\njoin_token = \"{token}\"\n",
                cluster.base_config(i),
                cluster.cluster_table(i)
            );
            cluster.write_config(i, &text);
            cluster.start(i);
        }
        for i in 0..cluster.len() {
            cluster.wait_for(
                &format!("node {i} has a WireGuard handshake with both others"),
                ISSUE_LIMIT,
                || {
                    let peers = cluster.wg_peers(i, "maki0");
                    (peers.len() == 2 && peers.iter().all(|p| p.latest_handshake > 0)).then_some(())
                },
            );
        }
        CaCluster {
            cluster,
            _pebble: pebble,
            root,
            _scratch: scratch,
        }
    }

    /// What pebble logged.
    fn pebble_log(&self) -> String {
        self.cluster.spawned_log("pebble")
    }

    /// How many orders pebble has accepted so far.
    fn orders_placed(&self) -> usize {
        self.pebble_log().matches("Added order").count()
    }

    /// How many times the nodes logged placing an order for `domain`.
    fn orders_logged(&self, domain: &str) -> usize {
        (0..self.cluster.len())
            .map(|i| {
                self.cluster
                    .stderr(i)
                    .lines()
                    .filter(|l| {
                        l.contains("ACME order placed") && l.contains(&format!("\"{domain}\""))
                    })
                    .count()
            })
            .sum()
    }

    /// Deploys a one-page site for `domain` on node `i`.
    fn deploy(&self, i: usize, domain: &str) {
        let site = temp_dir();
        write_file(
            site.path(),
            "makiatto.toml",
            format!("[[domain]]\nname = \"{domain}\"\n"),
        );
        write_file(site.path(), "index.html", format!("hello from {domain}"));
        let mut deploy = Command::new(crate::support::makiatto_bin());
        deploy
            .arg("deploy")
            .arg(site.path())
            .arg("--data")
            .arg(self.cluster.data_dir(i));
        let out = run_command(deploy, Duration::from_secs(60));
        assert!(out.success(), "deploy: {}", out.describe());
    }

    /// Node i's `status --json` entry for `domain`'s certificate.
    fn cert_status(&self, i: usize, domain: &str) -> Option<serde_json::Value> {
        let mut status = Command::new(crate::support::makiatto_bin());
        status
            .args(["status", "--json", "--data"])
            .arg(self.cluster.data_dir(i));
        let out = run_command(status, Duration::from_secs(30));
        if !out.success() {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        json["sites"]
            .as_array()?
            .iter()
            .find(|s| s["domain"] == domain)
            .map(|s| s["certificate"].clone())
    }

    /// The SHA-256 fingerprint of the certificate node i serves for
    /// `domain` over HTTPS, fetched from inside its namespace by a client
    /// that trusts only pebble's root; `None` until it serves a trusted one.
    fn served_fingerprint(&self, i: usize, domain: &str) -> Option<String> {
        let ip = self.cluster.underlay_v4(i);
        let root = self.root.to_str().expect("UTF-8");
        let body = self.cluster.exec(
            i,
            &[
                "curl",
                "-sS",
                "-m",
                "5",
                "--cacert",
                root,
                "--resolve",
                &format!("{domain}:443:{ip}"),
                &format!("https://{domain}/"),
            ],
        );
        if body.stdout != format!("hello from {domain}") {
            return None;
        }
        let script = format!(
            "openssl s_client -connect {ip}:443 -servername {domain} -CAfile {root} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        );
        let out = self.cluster.exec(i, &["sh", "-c", &script]);
        let line = out.stdout.trim();
        (out.success() && line.contains('=')).then(|| line.to_string())
    }

    /// Waits until every node in `nodes` serves `domain` over HTTPS with
    /// one certificate; returns its fingerprint.
    fn same_certificate_on(&self, nodes: &[usize], domain: &str) -> String {
        self.cluster.wait_for(
            &format!("nodes {nodes:?} serve {domain} over HTTPS with one certificate\n--- pebble ---\n{}", self.pebble_log()),
            ISSUE_LIMIT,
            || {
                let seen: Vec<Option<String>> = nodes
                    .iter()
                    .map(|&i| self.served_fingerprint(i, domain))
                    .collect();
                match &seen[0] {
                    Some(first) if seen.iter().all(|s| s.as_ref() == Some(first)) => {
                        Some(first.clone())
                    }
                    _ => None,
                }
            },
        )
    }
}

/// The first domain, and the node (index) that orders it first among
/// `n0`..`n2` when all are healthy: the rendezvous ranking (blake3 of
/// domain and node name) for "one.example" is n0, n2, n1. Computed once
/// and written down rather than asked of the library, so a change of the
/// hash, which would move every cluster's orders on an upgrade, fails here.
const FIRST: (&str, usize) = ("one.example", 0);
/// A domain whose first issuer is not pebble's resolver (n0), and that
/// issuer: "site0.example" ranks n2, n1, n0.
const SECOND: (&str, usize) = ("site0.example", 2);

#[test]
fn one_node_orders_for_the_cluster_and_a_successor_finishes_the_order_of_an_issuer_killed_mid_order()
 {
    let mut ca = CaCluster::new();

    // (a) One domain: exactly one order, and all three nodes serve the
    // certificate it produced.
    let (first, first_issuer) = FIRST;
    ca.deploy(0, first);
    let fingerprint = ca.same_certificate_on(&[0, 1, 2], first);
    println!("every node serves {first} with {fingerprint}");
    assert_eq!(
        ca.orders_placed(),
        1,
        "exactly one node orders; pebble saw:\n{}",
        ca.pebble_log()
    );
    assert_eq!(ca.orders_logged(first), 1, "one node logged its order");
    let issuers: Vec<String> = (0..3)
        .map(|i| {
            let status = ca.cluster.wait_for(
                &format!("node {i} reports {first}'s certificate valid"),
                ISSUE_LIMIT,
                || ca.cert_status(i, first).filter(|s| s["state"] == "valid"),
            );
            status["node"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        issuers.iter().all(|n| n == &issuers[0]),
        "every node names one issuer: {issuers:?}"
    );
    assert_eq!(issuers[0], format!("n{first_issuer}"));

    // With a certificate for its `<node>.ns.<domain>` name, every node
    // answers DNS over TLS on port 853 by itself (no `tls_listen` set).
    let root = ca.root.to_str().expect("UTF-8").to_string();
    for i in 0..3 {
        let server = format!("@{}", ca.cluster.underlay_v4(i));
        let ca_file = format!("+tls-ca={root}");
        let hostname = format!("+tls-hostname=n{i}.ns.{first}");
        let answer = ca.cluster.wait_for(
            &format!("node {i} answers DNS over TLS on port 853"),
            ISSUE_LIMIT,
            || {
                let out = ca.cluster.exec(
                    i,
                    &[
                        "kdig", &server, "-p", "853", &ca_file, &hostname, "+short", first, "A",
                    ],
                );
                (out.success() && out.stdout.contains("192.0.2.")).then_some(out.stdout)
            },
        );
        println!("n{i} over TLS: {first} A {}", answer.trim());
    }

    // (b) A domain whose issuer is not pebble's resolver: kill that issuer
    // once its order is placed at the CA and before it is finished.
    let (second, victim) = (SECOND.0.to_string(), SECOND.1);
    assert_ne!(victim, RESOLVER_NODE, "the resolver is never killed");
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    ca.deploy(RESOLVER_NODE, &second);
    let in_flight = ca.cluster.wait_for(
        &format!("n{victim} records its order for {second} at the CA"),
        ISSUE_LIMIT,
        || {
            let status = ca.cert_status(victim, &second)?;
            (status["order_url"].is_string()).then_some(status)
        },
    );
    ca.cluster.kill(victim);
    println!("killed n{victim} with its order in flight: {in_flight}");
    assert_eq!(
        in_flight["state"], "ordering",
        "the kill lands before the certificate exists"
    );
    assert_eq!(in_flight["node"], format!("n{victim}"));
    let order_url = in_flight["order_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let fingerprint = ca.same_certificate_on(&survivors, &second);
    println!("the survivors serve {second} with {fingerprint}");
    assert_eq!(
        ca.orders_placed(),
        2,
        "the successor finished the order {order_url} rather than placing a new one; pebble saw:\n{}",
        ca.pebble_log()
    );
    assert_eq!(
        ca.orders_logged(&second),
        1,
        "only the killed issuer placed an order"
    );
    for &i in &survivors {
        // The closed order row replicates a moment after the certificate.
        let status = ca.cluster.wait_for(
            &format!("node {i} reports {second}'s certificate valid"),
            ISSUE_LIMIT,
            || ca.cert_status(i, &second).filter(|s| s["state"] == "valid"),
        );
        assert_ne!(
            status["node"],
            format!("n{victim}"),
            "node {i}: the certificate came from a survivor: {status}"
        );
    }
    let resumed = survivors
        .iter()
        .filter(|&&i| {
            ca.cluster.stderr(i).lines().any(|l| {
                l.contains("resuming the ACME order in flight") && l.contains(second.as_str())
            })
        })
        .count();
    for &i in &survivors {
        for line in ca.cluster.stderr(i).lines() {
            if line.contains("makiatto::acme") && line.contains(second.as_str()) {
                println!("n{i}: {line}");
            }
        }
    }
    // One survivor in the normal case; both may, when the mesh is slower
    // than the takeover timeout to carry the first one's claim, and they
    // then finish the same order (pebble's count above stays the proof
    // that no second order was placed).
    println!("{resumed} survivor(s) resumed the order {order_url}");
    assert!(
        resumed >= 1,
        "a survivor resumed the order\n{}",
        survivors
            .iter()
            .map(|&i| ca.cluster.output(i))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// One HTTPS request from inside node `i`'s namespace to node `i` for
/// `domain` by `openssl s_client`, trusting only pebble's root, with
/// `session` either `-sess_out FILE` or `-sess_in FILE`; its stdout says
/// "New" or "Reused".
fn s_client(ca: &CaCluster, i: usize, domain: &str, session: (&str, &std::path::Path)) -> String {
    let script = format!(
        "printf 'GET / HTTP/1.1\\r\\nHost: {domain}\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -connect {}:443 -servername {domain} -CAfile {} -verify_return_error -ign_eof {} {}",
        ca.cluster.underlay_v4(i),
        ca.root.display(),
        session.0,
        session.1.display()
    );
    ca.cluster.exec(i, &["sh", "-c", &script]).stdout
}

#[test]
fn a_tls_session_begun_on_one_node_resumes_on_the_others() {
    let ca = CaCluster::new();
    let (domain, _) = FIRST;
    ca.deploy(0, domain);
    ca.same_certificate_on(&[0, 1, 2], domain);

    // Each node made a ticket key when it started; the mesh replicates
    // them, and once it has, the newest seals on every node and each node
    // opens what the others sealed.
    let scratch = temp_dir();
    let session = scratch.path().join("session.pem");
    let resumed = ca.cluster.wait_for(
        "a session from n0 resumes on n1 and n2",
        ISSUE_LIMIT,
        || {
            let first = s_client(&ca, 0, domain, ("-sess_out", &session));
            if !first.contains("New, TLSv1.3") || !first.contains(&format!("hello from {domain}")) {
                return None;
            }
            let others: Vec<String> = [1, 2]
                .iter()
                .map(|&i| s_client(&ca, i, domain, ("-sess_in", &session)))
                .collect();
            others
                .iter()
                .all(|o| {
                    o.contains("Reused, TLSv1.3") && o.contains(&format!("hello from {domain}"))
                })
                .then_some(others)
        },
    );
    println!("n1 and n2 resumed n0's session: {}", resumed.len());
}
