//! The mesh's WireGuard device, driven from outside: real `makiatto run`
//! nodes in network namespaces, configured and inspected with the real
//! `wg` from wireguard-tools, talking to each other and to wireguard-go.
//!
//! These tests need root and network namespaces; without them they fail
//! with a message saying so.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::cluster::{Cluster, WgPeer};

/// Long enough for a handshake under a loaded debug build; only reached
/// when something is broken.
const CONVERGE: Duration = Duration::from_secs(60);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes node i's config with the test mesh addresses and starts it.
fn start_mesh_node(cluster: &mut Cluster, i: usize) {
    let config = format!("{}{}", cluster.base_config(i), cluster.cluster_table(i));
    cluster.write_config(i, &config);
    cluster.start(i);
}

/// Node i's public key as `wg show maki0 public-key` prints it; panics
/// unless it is one (44 characters of base64), so the checks that look for
/// it in other output cannot pass on an empty string.
fn node_key(cluster: &Cluster, i: usize) -> String {
    let out = cluster.exec_ok(i, &["wg", "show", "maki0", "public-key"]);
    let key = out.stdout.trim().to_string();
    let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    assert!(
        key.len() == 44 && key.ends_with('=') && key[..43].chars().all(base64),
        "n{i}: `wg show maki0 public-key` printed no key: {}",
        out.describe()
    );
    key
}

/// Pings `address` from node i (or the foreign namespace) until one ping
/// answers; the first packets may go to the handshake.
fn wait_for_ping(cluster: &Cluster, from: Option<usize>, address: &str) {
    let what = format!("{from:?} pings {address}");
    cluster.wait_for(&what, CONVERGE, || {
        let args = ["ping", "-c", "1", "-W", "2", address];
        let out = match from {
            Some(i) => cluster.exec(i, &args),
            None => cluster.exec_foreign(&args),
        };
        out.success().then_some(())
    });
}

/// The peer with `key` in node i's `wg show maki0 dump`.
fn peer_of(cluster: &Cluster, i: usize, key: &str) -> Option<WgPeer> {
    cluster
        .wg_peers(i, "maki0")
        .into_iter()
        .find(|p| p.public_key == key)
}

#[test]
fn wireguard_go_peer_configured_with_wg_handshakes_and_pings_the_node() {
    let started = unix_now();
    let mut cluster = Cluster::new(1);
    start_mesh_node(&mut cluster, 0);
    let node_key = node_key(&cluster, 0);
    let node_line = cluster
        .stdout(0)
        .into_iter()
        .find(|l| l.contains("wireguard maki0"))
        .unwrap_or_else(|| panic!("no wireguard line\n{}", cluster.output(0)));
    assert!(
        node_line.contains(&node_key) && node_line.contains("198.51.100.1/24"),
        "the ready line names the key and mesh address: {node_line:?}"
    );

    // The foreign peer: wireguard-go in its own namespace, set up with wg.
    cluster.spawn(None, "wireguard-go", &["wireguard-go", "-f", "wgf0"]);
    cluster.wait_for("wireguard-go's socket", CONVERGE, || {
        cluster
            .exec_foreign(&["wg", "show", "wgf0"])
            .success()
            .then_some(())
    });
    let foreign_private = cluster.exec_foreign_ok(&["wg", "genkey"]).stdout;
    let key_file = cluster.dir(0).join("foreign.key");
    std::fs::write(&key_file, foreign_private.trim()).expect("write the foreign key");
    let key_path = key_file.to_str().expect("UTF-8 temp path");
    let foreign_key = cluster
        .exec_foreign_ok(&["sh", "-c", &format!("wg pubkey < {key_path}")])
        .stdout
        .trim()
        .to_string();
    let node_endpoint = format!("{}:51880", cluster.underlay_v4(0));
    let node_mesh = cluster.mesh_v4(0).to_string();
    cluster.exec_foreign_ok(&[
        "wg",
        "set",
        "wgf0",
        "private-key",
        key_path,
        "listen-port",
        "51820",
        "peer",
        &node_key,
        "endpoint",
        &node_endpoint,
        "allowed-ips",
        &format!("{node_mesh}/32"),
    ]);
    let foreign_mesh = cluster.foreign_mesh_v4().to_string();
    cluster.exec_foreign_ok(&[
        "ip",
        "addr",
        "add",
        &format!("{foreign_mesh}/24"),
        "dev",
        "wgf0",
    ]);
    cluster.exec_foreign_ok(&["ip", "link", "set", "wgf0", "up"]);

    // The node side, through the node's UAPI socket.
    cluster.exec_ok(
        0,
        &[
            "wg",
            "set",
            "maki0",
            "peer",
            &foreign_key,
            "endpoint",
            &format!("{}:51820", cluster.foreign_v4()),
            "allowed-ips",
            &format!("{foreign_mesh}/32"),
        ],
    );

    wait_for_ping(&cluster, None, &node_mesh);
    wait_for_ping(&cluster, Some(0), &foreign_mesh);

    let peer = peer_of(&cluster, 0, &foreign_key).unwrap_or_else(|| {
        panic!(
            "wg show maki0 lacks the foreign peer\n{}",
            cluster.output(0)
        )
    });
    assert!(
        peer.latest_handshake >= started,
        "handshake at {} is not from this test (started {started}): {peer:?}",
        peer.latest_handshake
    );
    assert!(
        peer.rx_bytes > 0 && peer.tx_bytes > 0,
        "no transfer counted: {peer:?}"
    );
    assert_eq!(peer.allowed_ips, format!("{foreign_mesh}/32"));
    // And wireguard-go agrees from its side.
    let foreign_view = cluster.exec_foreign_ok(&["wg", "show", "wgf0", "latest-handshakes"]);
    assert!(
        foreign_view.stdout.contains(&node_key),
        "wireguard-go lists the node: {}",
        foreign_view.stdout
    );
}

#[test]
fn two_nodes_peered_through_uapi_reach_each_others_mesh_addresses() {
    let started = unix_now();
    let mut cluster = Cluster::new(2);
    start_mesh_node(&mut cluster, 0);
    start_mesh_node(&mut cluster, 1);
    let keys = [node_key(&cluster, 0), node_key(&cluster, 1)];
    assert_ne!(keys[0], keys[1], "each node generates its own key");
    for (me, other) in [(0, 1), (1, 0)] {
        let allowed = format!(
            "{}/32,{}/128",
            cluster.mesh_v4(other),
            cluster.mesh_v6(other)
        );
        cluster.exec_ok(
            me,
            &[
                "wg",
                "set",
                "maki0",
                "peer",
                &keys[other],
                "endpoint",
                &format!("{}:51880", cluster.underlay_v4(other)),
                "allowed-ips",
                &allowed,
                "persistent-keepalive",
                "5",
            ],
        );
    }
    for (me, other) in [(0, 1), (1, 0)] {
        wait_for_ping(&cluster, Some(me), &cluster.mesh_v4(other).to_string());
        wait_for_ping(&cluster, Some(me), &cluster.mesh_v6(other).to_string());
    }
    for (me, other) in [(0, 1), (1, 0)] {
        let peer = peer_of(&cluster, me, &keys[other])
            .unwrap_or_else(|| panic!("n{me} does not list n{other}\n{}", cluster.output(me)));
        assert!(peer.latest_handshake >= started, "n{me} sees {peer:?}");
        assert!(
            peer.rx_bytes > 0 && peer.tx_bytes > 0,
            "n{me} sees {peer:?}"
        );
        assert_eq!(
            peer.endpoint,
            format!("{}:51880", cluster.underlay_v4(other))
        );
    }
    // The mesh prefix goes into the tunnel; nothing else does.
    let routes = cluster
        .exec_ok(0, &["ip", "route", "show", "dev", "maki0"])
        .stdout;
    assert_eq!(
        routes.trim(),
        "198.51.100.0/24 proto kernel scope link src 198.51.100.1"
    );
}

#[test]
fn the_key_survives_restarts_and_stop_removes_interface_and_socket() {
    let mut cluster = Cluster::new(1);
    start_mesh_node(&mut cluster, 0);
    let first = node_key(&cluster, 0);
    let key_file = cluster.data_dir(0).join("wireguard.key");
    let mode = std::fs::metadata(&key_file)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "{} mode", key_file.display());

    let status = cluster.stop(0);
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit: {status:?}\n{}",
        cluster.output(0)
    );
    let link = cluster.exec(0, &["ip", "link", "show", "maki0"]);
    assert!(!link.success(), "maki0 outlived the node: {}", link.stdout);
    let socket = cluster.exec(0, &["test", "-e", "/run/wireguard/maki0.sock"]);
    assert!(!socket.success(), "the UAPI socket outlived the node");

    cluster.start(0);
    assert_eq!(node_key(&cluster, 0), first, "same key after restart");

    // A node killed outright leaves a stale socket; the next start
    // replaces it.
    cluster.kill(0);
    cluster.start(0);
    assert_eq!(node_key(&cluster, 0), first);
}

#[test]
fn a_second_node_on_the_same_interface_name_is_refused_with_a_reason() {
    let mut cluster = Cluster::new(1);
    start_mesh_node(&mut cluster, 0);
    // Same namespace, same interface, another data directory and ports.
    let other = cluster.dir(0).join("second");
    let config = format!(
        "name = \"second\"\ndata_dir = \"{}\"\n[http]\nlisten = \"127.0.0.1:8081\"\n{}",
        other.join("data").display(),
        cluster.cluster_table(0)
    );
    let path = other.join("node.toml");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(&path, config).expect("write config");
    let out = cluster.exec(
        0,
        &[
            env!("CARGO_BIN_EXE_makiatto"),
            "run",
            "--config",
            path.to_str().expect("UTF-8"),
        ],
    );
    assert!(
        !out.success(),
        "a second device on maki0 started: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains("maki0"),
        "the error names the interface: {}",
        out.describe()
    );
    // The first node is unharmed.
    assert!(cluster.is_running(0));
    cluster.exec_ok(0, &["wg", "show", "maki0"]);
}
