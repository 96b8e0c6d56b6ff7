//! The mesh over real WireGuard: nodes in network namespaces (the shared
//! cluster harness), each running `makiatto run` with its WireGuard device,
//! join through one seed's public join listener; every node then lists the
//! other two as WireGuard peers with recent handshakes, and a deploy on the
//! seed is served by all three, replicated over the tunnel. Needs root.

use std::process::Command;
use std::time::Duration;

use crate::support::cluster::Cluster;
use crate::support::{run_command, temp_dir, write_file};

const HOST: &str = "wg.example";
const LIMIT: Duration = Duration::from_secs(120);

/// `n` namespace nodes with WireGuard joined through node 0.
fn joined_cluster(n: usize) -> Cluster {
    Cluster::joined(n, |_, _| String::new())
}

#[test]
fn three_nodes_join_through_one_seed_peer_over_wireguard_and_serve_one_deploy() {
    let cluster = joined_cluster(3);
    cluster.wait_for_handshakes(LIMIT);

    let site = temp_dir();
    write_file(
        site.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    write_file(site.path(), "index.html", "over the tunnel");
    let mut deploy = Command::new(crate::support::makiatto_bin());
    deploy
        .arg("deploy")
        .arg(site.path())
        .arg("--data")
        .arg(cluster.data_dir(0));
    let out = run_command(deploy, Duration::from_secs(60));
    assert!(out.success(), "deploy: {}", out.describe());
    for i in 0..3 {
        let url = format!("http://{}/", cluster.underlay_v4(i));
        cluster.wait_for(&format!("node {i} serves the deploy"), LIMIT, || {
            let out = cluster.exec(
                i,
                &[
                    "curl",
                    "-s",
                    "-m",
                    "2",
                    "-H",
                    &format!("host: {HOST}"),
                    &url,
                ],
            );
            (out.stdout == "over the tunnel").then_some(())
        });
    }
}

/// Deploys a one-page site saying `text` on node `i`; its revision.
fn deploy_on(cluster: &Cluster, i: usize, text: &str) -> String {
    let site = temp_dir();
    write_file(
        site.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    write_file(site.path(), "index.html", text);
    let mut deploy = Command::new(crate::support::makiatto_bin());
    deploy
        .arg("deploy")
        .arg(site.path())
        .arg("--data")
        .arg(cluster.data_dir(i));
    let out = run_command(deploy, Duration::from_secs(60));
    assert!(out.success(), "deploy: {}", out.describe());
    crate::support::revision_in(&out.stdout).unwrap_or_default()
}

/// What node `i` serves for the site, from inside its namespace.
fn served(cluster: &Cluster, i: usize) -> String {
    let url = format!("http://{}/", cluster.underlay_v4(i));
    cluster
        .exec(
            i,
            &[
                "curl",
                "-s",
                "-m",
                "2",
                "-H",
                &format!("host: {HOST}"),
                &url,
            ],
        )
        .stdout
}

#[test]
fn a_node_cut_off_while_both_sides_deploy_converges_on_one_winner() {
    let cluster = joined_cluster(3);
    deploy_on(&cluster, 0, "base");
    for i in 0..3 {
        cluster.wait_for(&format!("node {i} serves base"), LIMIT, || {
            (served(&cluster, i) == "base").then_some(())
        });
    }
    cluster.link_down(2);
    let inside = deploy_on(&cluster, 0, "pushed on the connected side");
    let outside = deploy_on(&cluster, 2, "pushed on the cut-off node");
    cluster.link_up(2);
    let winner = cluster.wait_for("all three serve the same revision", LIMIT, || {
        let seen: Vec<String> = (0..3).map(|i| served(&cluster, i)).collect();
        (seen.iter().all(|s| s == &seen[0]) && seen[0] != "base").then(|| seen[0].clone())
    });
    println!("after the link came back every node serves {winner:?}");
    for i in 0..3 {
        let mut history = Command::new(crate::support::makiatto_bin());
        history
            .args(["deploys", HOST, "--data"])
            .arg(cluster.data_dir(i));
        let out = run_command(history, Duration::from_secs(30));
        assert!(
            out.stdout.contains(&inside) && out.stdout.contains(&outside),
            "node {i} must list both revisions: {}",
            out.describe()
        );
    }
}

#[test]
fn nodes_joining_without_mesh_addresses_get_the_lowest_free_ones_and_keep_them() {
    // The seed is placed by hand at the first host; the others name only
    // the prefixes.
    let mut cluster = Cluster::joined_with(3, |c, i| {
        let mesh = if i == 0 {
            c.cluster_table(0)
        } else {
            c.cluster_prefixes_table()
        };
        format!("{}{mesh}", c.base_config(i))
    });
    cluster.wait_for_handshakes(LIMIT);
    for i in 0..3 {
        assert_eq!(
            cluster.interface_addresses(i),
            vec![
                format!("198.51.100.{}/24", i + 1),
                format!("2001:db8:1::{}/64", i + 1)
            ],
            "node {i}'s interface\n{}",
            cluster.output(i)
        );
    }
    // The assigned addresses carry traffic: n1 pings n2 over the mesh.
    cluster.wait_for("n1 pings n2's assigned addresses", LIMIT, || {
        let v4 = cluster.exec(1, &["ping", "-c", "1", "-W", "2", "198.51.100.3"]);
        let v6 = cluster.exec(1, &["ping", "-c", "1", "-W", "2", "2001:db8:1::3"]);
        (v4.success() && v6.success()).then_some(())
    });
    deploy_on(&cluster, 0, "to assigned addresses");
    cluster.wait_for("n2 serves the deploy", LIMIT, || {
        (served(&cluster, 2) == "to assigned addresses").then_some(())
    });

    // Restarted, a node comes back on the addresses it was given (its
    // node.toml still names none, and its token is spent).
    cluster.restart(1);
    assert_eq!(
        cluster.interface_addresses(1),
        vec![
            "198.51.100.2/24".to_string(),
            "2001:db8:1::2/64".to_string()
        ],
        "{}",
        cluster.output(1)
    );
    deploy_on(&cluster, 0, "after the restart");
    cluster.wait_for("n1 serves the deploy after its restart", LIMIT, || {
        (served(&cluster, 1) == "after the restart").then_some(())
    });
}

#[test]
fn a_join_into_a_full_mesh_prefix_is_refused_naming_the_fix() {
    // A /30 holds two nodes: the seed at .1 and one joiner at .2. The
    // seed picks its own addresses, the first host of each prefix.
    let mut cluster = Cluster::new(3);
    let prefixes =
        "\n[cluster]\nprefix_v4 = \"198.51.100.0/30\"\nprefix_v6 = \"2001:db8:1::/64\"\n";
    let seed = format!("{}{prefixes}", cluster.base_config(0));
    cluster.write_config(0, &seed);
    cluster.start(0);
    let join = format!("{}:7070", cluster.underlay_v4(0));
    for i in 1..3 {
        let text = format!(
            "{}{prefixes}join = \"{join}\"\njoin_token = \"{}\"\n",
            cluster.base_config(i),
            cluster.join_token(0)
        );
        cluster.write_config(i, &text);
    }
    cluster.start(1);
    assert_eq!(
        cluster.interface_addresses(1),
        vec![
            "198.51.100.2/30".to_string(),
            "2001:db8:1::2/64".to_string()
        ],
        "{}",
        cluster.output(1)
    );
    let refused = cluster
        .try_start(2)
        .expect_err("a third node cannot fit in a /30");
    assert!(
        refused.contains("the mesh prefix 198.51.100.0/30 is full")
            && refused.contains("widen [cluster] prefix_v4 on every node"),
        "{refused}"
    );
}
