//! The swarm over real WireGuard: in a three-node cluster the first
//! deploy of an incompressible site leaves the origin about once, not once
//! per node, because each receiver forwards its share of the objects to
//! the other (`mesh::swarm`). Counted with the WireGuard bytes every node
//! reports per peer in `status --json`; every node then serves every file
//! byte for byte. Needs root and network namespaces.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::cluster::{Cluster, Got, http_get};
use crate::support::{Xorshift, run_command, temp_dir, write_file};

const HOST: &str = "swarm.example";
const LIMIT: Duration = Duration::from_secs(180);
const FILES: usize = 400;

#[test]
fn a_first_deploy_to_three_nodes_leaves_the_origin_about_once_and_every_node_serves_it_whole() {
    let cluster = Cluster::joined(3, |_, _| String::new());
    cluster.wait_for_handshakes(LIMIT);

    let site = temp_dir();
    write_file(
        site.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    let mut rng = Xorshift::new(41);
    let mut files = Vec::new();
    let mut site_bytes = 0u64;
    for i in 0..FILES {
        let rel = format!("d{:02}/f{i:04}.bin", i % 13);
        let len = 20_000 + rng.below(40_000) as usize;
        let bytes = rng.bytes(len);
        site_bytes += bytes.len() as u64;
        write_file(site.path(), &rel, &bytes);
        files.push((rel, bytes));
    }

    let before = sent_by_peer(&cluster);
    let revision = deploy(&cluster, site.path());
    for i in 0..cluster.len() {
        let (rel, _) = &files[0];
        cluster.wait_for(&format!("node {i} serves {revision}"), LIMIT, || {
            let got = get(&cluster, cluster.underlay_v4(i), &format!("/{rel}"))?;
            (got.revision.as_deref() == Some(revision.as_str())).then_some(())
        });
    }
    let after = sent_by_peer(&cluster);
    let sent = |from: usize, to: usize| {
        let key = (from, format!("n{to}"));
        after[&key].saturating_sub(before.get(&key).copied().unwrap_or(0))
    };
    let origin = sent(0, 1) + sent(0, 2);
    println!(
        "a first deploy of {FILES} incompressible files, {site_bytes} B: the origin sent {origin} B over WireGuard ({:.2}x the site); n1 sent n2 {} B, n2 sent n1 {} B",
        origin as f64 / site_bytes as f64,
        sent(1, 2),
        sent(2, 1)
    );
    // Without the swarm the origin sends the site to each of the two
    // others: twice its size. Headers and the idle mesh add a few percent.
    assert!(
        origin < site_bytes * 3 / 2,
        "the origin sent {origin} B for a {site_bytes}-byte site to two nodes: each object more than about once"
    );
    for i in 1..cluster.len() {
        assert!(
            sent(0, i) + sent(3 - i, i) >= site_bytes,
            "node {i} received less than the site ({site_bytes} B) from its peers"
        );
        // Every tenth file, each byte for byte.
        for (rel, bytes) in files.iter().step_by(10) {
            let got = get(&cluster, cluster.underlay_v4(i), &format!("/{rel}"))
                .unwrap_or_else(|| panic!("node {i}: no answer for /{rel}"));
            assert_eq!(got.status, 200, "node {i}: /{rel}");
            assert_eq!(
                got.revision.as_deref(),
                Some(revision.as_str()),
                "node {i}: /{rel}"
            );
            assert!(got.body == *bytes, "node {i}: /{rel} differs");
        }
    }
}

/// `makiatto deploy DIR` on node 0; its 12-hex revision.
fn deploy(cluster: &Cluster, dir: &Path) -> String {
    let mut command = Command::new(crate::support::makiatto_bin());
    command
        .arg("deploy")
        .arg(dir)
        .arg("--data")
        .arg(cluster.data_dir(0));
    let out = run_command(command, Duration::from_secs(300));
    assert!(out.success(), "deploy: {}", out.describe());
    crate::support::revision_in(&out.stdout)
        .unwrap_or_else(|| panic!("deploy printed no revision: {}", out.describe()))
}

/// WireGuard bytes each node sent each peer, by (node, peer name), as
/// the node's own view in `status --json` reports them.
fn sent_by_peer(cluster: &Cluster) -> HashMap<(usize, String), u64> {
    let mut out = HashMap::new();
    for i in 0..cluster.len() {
        let mut command = Command::new(crate::support::makiatto_bin());
        command
            .args(["status", "--json", "--data"])
            .arg(cluster.data_dir(i));
        let run = run_command(command, Duration::from_secs(60));
        assert!(run.success(), "status: {}", run.describe());
        let status: serde_json::Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", run.stdout));
        let view = &status["cluster"][0];
        assert_eq!(view["node"].as_str(), Some(format!("n{i}").as_str()));
        for peer in view["peers"].as_array().cloned().unwrap_or_default() {
            let name = peer["name"].as_str().unwrap_or_default().to_string();
            let tx = peer["wg_tx"]
                .as_u64()
                .unwrap_or_else(|| panic!("node {i}: no wg_tx for {name} in {status}"));
            out.insert((i, name), tx);
        }
    }
    out
}

/// GET `path` of the site from `ip:80` inside the foreign namespace.
fn get(cluster: &Cluster, ip: Ipv4Addr, path: &str) -> Option<Got> {
    cluster.within(None, || http_get(ip, HOST, path))
}
