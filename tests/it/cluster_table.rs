//! One `[cluster]` table: a first node needs only the table (it makes its
//! WireGuard key and picks its own mesh addresses), a second joins with the
//! lines `join-token` printed, and a node.toml in the old form (WireGuard
//! fields in `[mesh]`) still starts and joins, warning with the edit, while
//! one mixing both forms is refused with it; `join-token` prints the
//! address a new node reaches, or says what is missing. The WireGuard
//! clusters run in network namespaces (the shared cluster harness) and
//! need root; the `check-config` and `join-token` cases do not.

use std::process::Command;
use std::time::Duration;

use crate::support::cluster::{Cluster, MESH_PREFIX_V4, MESH_PREFIX_V6};
use crate::support::{makiatto_bin, revision_in, run_command, temp_dir, write_file};

const HOST: &str = "table.example";
const LIMIT: Duration = Duration::from_secs(120);

/// Deploys a one-page site saying `text` on node `i`; its revision.
fn deploy_on(cluster: &Cluster, i: usize, text: &str) -> String {
    let site = temp_dir();
    write_file(
        site.path(),
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\n"),
    );
    write_file(site.path(), "index.html", text);
    let mut deploy = Command::new(makiatto_bin());
    deploy
        .arg("deploy")
        .arg(site.path())
        .arg("--data")
        .arg(cluster.data_dir(i));
    let out = run_command(deploy, Duration::from_secs(60));
    assert!(out.success(), "deploy: {}", out.describe());
    revision_in(&out.stdout).unwrap_or_default()
}

/// What node `i` serves for the site, from inside its namespace.
fn served(cluster: &Cluster, i: usize) -> String {
    let url = format!("http://{}/", cluster.underlay_v4(i));
    let host = format!("host: {HOST}");
    cluster
        .exec(i, &["curl", "-s", "-m", "2", "-H", &host, &url])
        .stdout
}

/// Node 0's deploy reaches node 1 over the tunnel.
fn assert_deploys_replicate(cluster: &Cluster, text: &str) {
    deploy_on(cluster, 0, text);
    cluster.wait_for("node 1 serves node 0's deploy", LIMIT, || {
        (served(cluster, 1) == text).then_some(())
    });
}

#[test]
fn a_first_node_with_only_a_cluster_table_picks_its_addresses_and_a_second_joins_it() {
    // The whole [cluster] table of both nodes, but for the test prefixes
    // (documentation ranges instead of the private defaults): node 0 has
    // nothing else, node 1 gets the `join` lines join-token prints.
    let prefixes = format!(
        "\n[cluster]\nprefix_v4 = \"{MESH_PREFIX_V4}\"\nprefix_v6 = \"{MESH_PREFIX_V6}\"\n"
    );
    let mut cluster = Cluster::joined_with(2, |c, i| format!("{}{prefixes}", c.base_config(i)));
    cluster.wait_for_handshakes(LIMIT);
    for i in 0..2 {
        assert_eq!(
            cluster.interface_addresses(i),
            vec![
                format!("198.51.100.{}/24", i + 1),
                format!("2001:db8:1::{}/64", i + 1)
            ],
            "node {i} has the lowest free mesh addresses\n{}",
            cluster.output(i)
        );
        assert!(
            std::fs::metadata(cluster.data_dir(i).join("wireguard.key")).is_ok(),
            "node {i} keeps its WireGuard key in its data directory"
        );
        assert!(
            !cluster.stderr(i).contains("warning:"),
            "the new form warns of nothing\n{}",
            cluster.output(i)
        );
    }
    assert_deploys_replicate(&cluster, "from a bare [cluster]");

    // The first node keeps the addresses it picked: after a restart node 1
    // still reaches it there.
    cluster.restart(0);
    assert_eq!(
        cluster.interface_addresses(0),
        vec![
            "198.51.100.1/24".to_string(),
            "2001:db8:1::1/64".to_string()
        ],
        "{}",
        cluster.output(0)
    );
    cluster.wait_for_handshakes(LIMIT);
    assert_deploys_replicate(&cluster, "after the first node's restart");
}

#[test]
fn a_cluster_written_in_the_old_mesh_form_still_starts_warns_and_joins() {
    // What node.toml looked like with [mesh]: the first node placed by
    // hand, the second naming the prefixes and joining in [cluster].
    let old_mesh =
        format!("\n[mesh]\nprefix_v4 = \"{MESH_PREFIX_V4}\"\nprefix_v6 = \"{MESH_PREFIX_V6}\"\n");
    let mut cluster = Cluster::new(2);
    let seed = format!(
        "{}{old_mesh}address_v4 = \"198.51.100.1\"\n\n[cluster]\n",
        cluster.base_config(0)
    );
    cluster.write_config(0, &seed);
    cluster.start(0);
    let token = cluster.join_token(0);
    let joiner = format!(
        "{}{old_mesh}\n[cluster]\njoin = \"{}:7070\"\njoin_token = \"{token}\"\n",
        cluster.base_config(1),
        cluster.underlay_v4(0)
    );
    cluster.write_config(1, &joiner);
    cluster.start(1);
    cluster.wait_for_handshakes(LIMIT);
    // The first node placed itself by IPv4 alone (as the old NixOS example
    // did), so the lowest free IPv6 host is the joiner's; the two reach
    // each other over IPv4.
    assert_eq!(
        cluster.interface_addresses(1),
        vec![
            "198.51.100.2/24".to_string(),
            "2001:db8:1::1/64".to_string()
        ],
        "{}",
        cluster.output(1)
    );
    for i in 0..2 {
        let stderr = cluster.stderr(i);
        assert!(
            stderr.contains("warning: ")
                && stderr.contains("[mesh] and [cluster] are one table now")
                && stderr.contains(&format!("    prefix_v4 = \"{MESH_PREFIX_V4}\"")),
            "node {i} names the edit to the new form\n{}",
            cluster.output(i)
        );
        assert!(
            !stderr.contains(&token),
            "the warning never repeats the join token"
        );
    }
    assert_deploys_replicate(&cluster, "from the old form");
}

/// `makiatto check-config` on `text`: whether it passed, its stdout and
/// its stderr.
fn check_config(text: &str) -> (bool, String, String) {
    let dir = temp_dir();
    write_file(dir.path(), "node.toml", text);
    let mut command = Command::new(makiatto_bin());
    command
        .arg("check-config")
        .arg(dir.path().join("node.toml"));
    let out = run_command(command, Duration::from_secs(30));
    (out.success(), out.stdout, out.stderr)
}

#[test]
fn check_config_shows_a_first_node_picking_its_own_addresses() {
    let (ok, stdout, stderr) =
        check_config("name = \"london\"\nipv4 = \"203.0.113.1\"\n[cluster]\n");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("  wireguard maki0 udp 51880 (mesh rpc port 7070)\n")
            && stdout.contains(
                "  mesh addresses picked from 10.88.0.0/16 and fd6d:616b:6961::/64 (the first node of a cluster)\n"
            ),
        "{stdout}"
    );
    assert_eq!(stderr, "");
}

#[test]
fn check_config_accepts_the_old_form_with_the_edit_and_refuses_a_mixed_one() {
    let old = "name = \"london\"\n[mesh]\naddress_v4 = \"10.88.0.1\"\n\n[cluster]\n";
    let (ok, stdout, stderr) = check_config(old);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("  mesh addresses 10.88.0.1\n"), "{stdout}");
    assert!(
        stderr.starts_with("warning: ")
            && stderr.contains(":2:1: [mesh] and [cluster] are one table now; this file still starts, but move these lines from [mesh] (line 2) into [cluster] (line 5), then delete the [mesh] line:\n    address_v4 = \"10.88.0.1\""),
        "{stderr}"
    );

    let mixed =
        "name = \"london\"\n[mesh]\naddress_v4 = \"10.88.0.1\"\n\n[cluster]\nlisten_port = 51881\n";
    let (ok, _, stderr) = check_config(mixed);
    assert!(!ok, "a mixed file is refused");
    assert!(
        stderr.contains(":6:15: cluster.listen_port is the new form of a [mesh] field, and this file still has [mesh] (line 2): use one table; move these lines from [mesh] (line 2) into [cluster] (line 5), then delete the [mesh] line:\n    address_v4 = \"10.88.0.1\""),
        "{stderr}"
    );
}

#[test]
fn join_token_prints_the_address_new_nodes_reach_or_says_what_is_missing() {
    use crate::support::loopback::{rpc_of, start_member};

    // Alone: no node can join through it, and it says what to add.
    let alone_home = temp_dir();
    let alone = start_member(
        alone_home.path(),
        "name = \"alone\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n",
    );
    let out = alone.admin(&["join-token"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains(
            "no node can join through this one: this node is in no cluster: add [cluster] to its node.toml and restart it"
        ),
        "{}",
        out.describe()
    );

    // Without WireGuard (rpc_listen), the join address is where its mesh
    // RPC listens, printed as the new node's [cluster] table.
    let loopback_home = temp_dir();
    let loopback = start_member(
        loopback_home.path(),
        "name = \"seed\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[cluster]\nrpc_listen = \"127.0.0.1:0\"\n",
    );
    let out = loopback.admin(&["join-token"]);
    assert!(out.success(), "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("mkj_"), "{}", out.stdout);
    assert_eq!(
        lines[1..],
        [
            "# valid once, for an hour: the new node's [cluster] table",
            "[cluster]",
            &format!("join = \"{}\"", rpc_of(&loopback)),
            &format!("join_token = \"{}\"", lines[0]),
        ],
        "{}",
        out.stdout
    );
}
