//! `maki machine`: provisioning real servers over SSH. Every test boots
//! throwaway Debian machines with systemd-nspawn (`support::nspawn`; needs
//! root and the rootfs `scripts/rootfs` makes) and drives them with the
//! real `maki`, `ssh`, `systemctl`, `journalctl`, `git`, `kdig` and `curl`
//! from the operator's own network namespace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::nspawn::{Init, Lab};
use crate::support::{CmdOutput, maki_bin, makiatto_bin, run_command, temp_dir, write_file};

/// How long replication or a DNS change may take; only reached when the
/// product is broken.
const CHANGE: Duration = Duration::from_secs(30);
const DOMAIN: &str = "cdn.example";
/// Where the three nodes are, and a client address the GeoIP test
/// database places near each (tests/fixtures/geoip/README.md).
const PLACES: [(&str, &str, &str, &str); 3] = [
    ("london", "51.51", "-0.13", "81.2.69.142"),
    ("seattle", "47.61", "-122.33", "216.160.83.56"),
    ("tokyo", "35.68", "139.69", "175.16.199.1"),
];

fn geoip_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip/GeoLite2-City-Test.mmdb")
}

/// The operator's side: the lab and a config directory of its own (the
/// cluster profile lives there).
struct Operator {
    lab: Lab,
    config: TempDir,
}

impl Operator {
    fn new() -> Operator {
        Operator {
            lab: Lab::new(),
            config: temp_dir(),
        }
    }

    /// `maki ARGS` from the operator's namespace, with its key and profile.
    fn maki(&self, args: &[&str]) -> CmdOutput {
        let mut command = self.lab.in_operator_ns(maki_bin());
        command
            .args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("HOME", self.config.path())
            .env_remove("MAKI_NODE")
            .env_remove("MAKI_PROFILE")
            .env("MAKI_SSH_COMMAND", self.lab.ssh_command());
        self.lab.run(command)
    }

    fn maki_ok(&self, args: &[&str]) -> CmdOutput {
        let out = self.maki(args);
        assert!(out.success(), "maki {}: {}", args.join(" "), out.describe());
        out
    }

    /// `init` (i = 0) or `add` of machine i as `PLACES[i]`, with `extra`
    /// arguments.
    fn provision(&self, i: usize, extra: &[&str]) -> CmdOutput {
        let (name, lat, lon, _) = PLACES[i];
        let login = self.lab.root_login(i);
        let key = self
            .lab
            .operator
            .public_key
            .to_str()
            .expect("UTF-8 temp path")
            .to_string();
        let geoip = geoip_fixture().display().to_string();
        let mut args = vec![
            "machine",
            if i == 0 { "init" } else { "add" },
            name,
            &login,
            "--key",
            &key,
            "--lat",
            lat,
            "--lon",
            lon,
            "--geoip-db",
            &geoip,
            // Documentation ranges inside the tunnel, never the private
            // defaults.
            "--mesh-prefix-v4",
            "203.0.113.0/24",
            "--mesh-prefix-v6",
            "2001:db8:1::/64",
        ];
        args.extend_from_slice(extra);
        self.maki(&args)
    }

    /// `maki machine list --json`.
    fn list(&self) -> Vec<Value> {
        let out = self.maki_ok(&["machine", "list", "--json"]);
        let value: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("list --json: {e}: {}", out.describe()));
        value.as_array().cloned().unwrap_or_default()
    }

    /// The body machine i serves for `DOMAIN`, or why not.
    fn fetch(&self, i: usize) -> Result<String, String> {
        let mut curl = self.lab.in_operator_ns("curl");
        curl.args(["-sS", "-m", "3", "-H", &format!("host: {DOMAIN}")])
            .arg(format!("http://{}/", self.lab.address(i)));
        let out = run_command(curl, Duration::from_secs(10));
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.describe())
        }
    }

    /// The A records machine i's DNS answers for `DOMAIN` for a client in
    /// `subnet` (EDNS Client Subnet).
    fn dns_a(&self, i: usize, subnet: &str) -> Result<Vec<String>, String> {
        let mut kdig = self.lab.in_operator_ns("kdig");
        kdig.arg(format!("@{}", self.lab.address(i)))
            .args([DOMAIN, "A", "+short", "+time=1", "+retry=0"])
            .arg(format!("+subnet={subnet}/32"));
        let out = run_command(kdig, Duration::from_secs(10));
        if out.success() && !out.stdout.contains(";;") {
            Ok(out.stdout.lines().map(str::to_string).collect())
        } else {
            Err(out.describe())
        }
    }

    /// Pushes a one-page site for `DOMAIN` to machine i; the page says
    /// `text`.
    fn push(&self, i: usize, text: &str) {
        let repo = temp_dir();
        write_file(
            repo.path(),
            "makiatto.toml",
            format!("[[domain]]\nname = \"{DOMAIN}\"\n"),
        );
        write_file(repo.path(), "index.html", text);
        let url = format!("ssh://git@{}:2222/site.git", self.lab.address(i));
        let client = &self.lab.operator;
        self.lab.within(|| {
            for args in [
                &["init", "-q", "-b", "main"][..],
                &["add", "-A"],
                &["commit", "-q", "-m", "site"],
                &["push", "-q", &url, "main"],
            ] {
                let out = client.git(repo.path(), args);
                assert!(out.success(), "git {}: {}", args.join(" "), out.describe());
            }
        });
    }
}

/// Polls `check` until it returns `Some`, at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {limit:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

#[test]
fn a_booted_machine_runs_systemd_and_lets_the_operator_in_over_ssh() {
    let mut lab = Lab::new();
    let m = lab.boot();
    let out = lab.ssh_ok(m, "systemctl is-system-running --wait; hostname; id -u");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        matches!(lines.first(), Some(&"running") | Some(&"degraded")),
        "systemd should be up: {}",
        out.describe()
    );
    assert_eq!(lines.get(1..), Some(&["m0", "0"][..]), "{}", out.describe());
    // Each machine made its own identity at boot.
    let id = lab.ssh_ok(m, "cat /etc/machine-id").stdout;
    assert_eq!(id.trim().len(), 32, "machine-id: {id:?}");
    let keys = lab.ssh_ok(m, "ls /etc/ssh/ssh_host_ed25519_key.pub").stdout;
    assert!(keys.contains("ssh_host_ed25519_key.pub"), "{keys}");
}

#[test]
fn makiatto_locate_places_an_address_from_the_geoip_database() {
    let mut locate = Command::new(makiatto_bin());
    locate
        .args(["locate", "--db"])
        .arg(geoip_fixture())
        .arg("81.2.69.142");
    let out = run_command(locate, Duration::from_secs(30));
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout.trim(), "51.5142 -0.0931");
    let mut unknown = Command::new(makiatto_bin());
    unknown
        .args(["locate", "--db"])
        .arg(geoip_fixture())
        .arg("198.51.100.1");
    let out = run_command(unknown, Duration::from_secs(30));
    assert!(
        !out.success() && out.stderr.contains("--lat"),
        "{}",
        out.describe()
    );
}

#[test]
fn init_provisions_a_hardened_service_converges_when_run_again_and_list_shows_it() {
    let mut op = Operator::new();
    op.lab.boot();

    // --dry-run plans and changes nothing.
    let plan = op.provision(0, &["--dry-run"]);
    assert!(plan.success(), "{}", plan.describe());
    assert!(plan.stdout.contains("name = \"london\""), "{}", plan.stdout);
    let none = op
        .lab
        .ssh(0, "test -e /usr/bin/makiatto || test -e /etc/makiatto");
    assert!(!none.success(), "a dry run installed something");

    let out = op.provision(0, &["--json"]);
    assert!(out.success(), "init: {}", out.describe());
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("init --json");
    assert_eq!(report["addressing"], "direct", "{report}");
    assert!(!report["changed"].as_array().expect("changed").is_empty());
    // Progress names the host and the step.
    assert!(out.stderr.contains("[london] upload:"), "{}", out.stderr);

    let nodes = op.list();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["name"], "london");
    assert_eq!(nodes[0]["healthy"], true, "{nodes:?}");
    assert_eq!(nodes[0]["service"], "active");

    // The unit's hardening is in effect, and the running node holds only
    // the two capabilities it needs (CAP_NET_BIND_SERVICE = bit 10,
    // CAP_NET_ADMIN = bit 12).
    let show = op
        .lab
        .ssh_ok(0, "systemctl show makiatto -p User -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp -p AmbientCapabilities -p CapabilityBoundingSet -p DevicePolicy -p Type")
        .stdout;
    for wanted in [
        "User=makiatto",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "Type=notify",
        "AmbientCapabilities=cap_net_bind_service cap_net_admin",
        "CapabilityBoundingSet=cap_net_bind_service cap_net_admin",
    ] {
        assert!(
            show.lines().any(|l| l == wanted),
            "want {wanted} in\n{show}"
        );
    }
    let caps = op
        .lab
        .ssh_ok(
            0,
            "grep CapEff /proc/$(systemctl show -p MainPID --value makiatto)/status",
        )
        .stdout;
    assert!(caps.trim().ends_with("0000000000001400"), "{caps}");

    // Run again: nothing is written and the service is not restarted.
    let started = |op: &Operator| {
        op.lab
            .ssh_ok(
                0,
                "systemctl show -p ActiveEnterTimestampMonotonic --value makiatto",
            )
            .stdout
    };
    let before = started(&op);
    let again = op.provision(0, &["--json"]);
    assert!(again.success(), "init again: {}", again.describe());
    let report: Value = serde_json::from_str(again.stdout.trim()).expect("init --json");
    assert_eq!(report["changed"], serde_json::json!([]), "{report}");
    assert_eq!(started(&op), before, "init again restarted the node");
}

#[test]
fn hosts_without_systemd_or_with_port_53_taken_are_refused_with_cause_and_fix() {
    let mut op = Operator::new();
    let bare = op.lab.boot_with(Init::SshdOnly);
    let out = op.provision(bare, &[]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("london: probe failed")
            && out.stderr.contains("systemd is not running"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("fix: "), "{}", out.stderr);
    let nothing = op.lab.ssh(bare, "test -e /usr/bin/makiatto");
    assert!(!nothing.success(), "a refused host got the binary");

    let busy = op.lab.boot();
    // Something else answers DNS on the host.
    let ns = op.lab.netns(busy).to_string();
    let _held = std::thread::scope(|s| {
        s.spawn(|| {
            crate::support::cluster::enter_netns(&ns);
            std::net::UdpSocket::bind("0.0.0.0:53").expect("hold port 53")
        })
        .join()
        .expect("bind thread")
    });
    let out = op.maki(&[
        "machine",
        "init",
        "paris",
        &op.lab.root_login(busy),
        "--key",
        op.lab.operator.public_key.to_str().expect("UTF-8"),
        "--json",
    ]);
    assert!(!out.success(), "{}", out.describe());
    let error: Value = serde_json::from_str(out.stdout.trim()).expect("--json error");
    assert_eq!(error["error"]["host"], "paris", "{error}");
    assert_eq!(error["error"]["step"], "probe", "{error}");
    assert!(
        error["error"]["cause"]
            .as_str()
            .unwrap_or("")
            .contains("53/udp"),
        "{error}"
    );
    assert!(
        error["error"]["fix"]
            .as_str()
            .unwrap_or("")
            .contains("port"),
        "{error}"
    );
}

/// Three machines: `init` on the first, `add` on the other two.
fn three_nodes() -> Operator {
    let mut op = Operator::new();
    for i in 0..3 {
        op.lab.boot();
        let out = op.provision(i, &[]);
        assert!(out.success(), "provision {i}: {}", out.describe());
    }
    op
}

#[test]
fn three_provisioned_nodes_serve_one_push_answer_dns_by_distance_and_converge_when_run_again() {
    let op = three_nodes();
    op.push(1, "pushed to seattle");
    for i in 0..3 {
        wait_for(&format!("machine {i} serves the push"), CHANGE, || {
            op.fetch(i).and_then(|body| {
                if body == "pushed to seattle" {
                    Ok(())
                } else {
                    Err(body)
                }
            })
        });
    }
    // Every node's DNS sends each client subnet to the nearest node.
    for i in 0..3 {
        for (near, (_, _, _, client)) in PLACES.iter().enumerate() {
            let want = op.lab.address(near).to_string();
            wait_for(
                &format!("node {i} answers {client} with node {near}"),
                CHANGE,
                || {
                    op.dns_a(i, client).and_then(|a| {
                        if a == [want.clone()] {
                            Ok(())
                        } else {
                            Err(format!("{a:?}"))
                        }
                    })
                },
            );
        }
    }
    let nodes = op.list();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let revision = &nodes[0]["sites"][0];
    for node in &nodes {
        assert_eq!(node["healthy"], true, "{nodes:?}");
        assert_eq!(
            &node["sites"][0], revision,
            "one revision everywhere: {nodes:?}"
        );
    }
    let table = op.maki_ok(&["machine", "list"]).stdout;
    assert!(
        table.contains("seattle") && table.contains("healthy"),
        "{table}"
    );

    // `add` again on a joined node: nothing written, no restart, no new
    // token, the data kept.
    let started = op
        .lab
        .ssh_ok(
            1,
            "systemctl show -p ActiveEnterTimestampMonotonic --value makiatto",
        )
        .stdout;
    let again = op.provision(1, &["--json"]);
    assert!(again.success(), "add again: {}", again.describe());
    let report: Value = serde_json::from_str(again.stdout.trim()).expect("add --json");
    assert_eq!(report["changed"], serde_json::json!([]), "{report}");
    assert!(again.stderr.contains("keeps the join"), "{}", again.stderr);
    assert_eq!(
        op.lab
            .ssh_ok(
                1,
                "systemctl show -p ActiveEnterTimestampMonotonic --value makiatto"
            )
            .stdout,
        started
    );
    assert_eq!(op.fetch(1).as_deref(), Ok("pushed to seattle"));
}

/// A client that keeps resolving `DOMAIN` through the nodes' DNS (as a
/// resolver does: the first node that answers) from each place, and
/// fetching the page from the address it was given, until told to stop.
/// Returns (requests, failures).
fn poll_like_visitors(op: &Operator, stop: &std::sync::atomic::AtomicBool) -> (usize, Vec<String>) {
    crate::support::cluster::enter_netns(op.lab.operator_netns());
    let (mut requests, mut failures) = (0, Vec::new());
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for (_, _, _, client) in PLACES {
            let answer = (0..3).find_map(|i| op.dns_a(i, client).ok().filter(|a| !a.is_empty()));
            let Some(addresses) = answer else {
                failures.push(format!("no node's DNS answered for {client}"));
                continue;
            };
            let Some(i) = (0..3).find(|&i| op.lab.address(i).to_string() == addresses[0]) else {
                failures.push(format!("DNS gave {addresses:?}"));
                continue;
            };
            requests += 1;
            if let Err(why) = op.fetch(i) {
                failures.push(format!("GET from node {i} ({client}): {why}"));
            }
        }
    }
    (requests, failures)
}

#[test]
fn upgrade_all_serves_every_request_and_a_build_that_cannot_start_is_reverted() {
    let op = three_nodes();
    op.push(0, "before the upgrade");
    for i in 0..3 {
        wait_for(&format!("machine {i} serves the push"), CHANGE, || {
            op.fetch(i).and_then(|b| {
                if b == "before the upgrade" {
                    Ok(())
                } else {
                    Err(b)
                }
            })
        });
    }
    // A rebuilt binary: the same program with other bytes, so another hash.
    let dir = temp_dir();
    let rebuilt = dir.path().join("makiatto");
    let mut bytes = std::fs::read(makiatto_bin()).expect("read makiatto");
    bytes.extend_from_slice(b"\nrebuilt for the upgrade test\n");
    std::fs::write(&rebuilt, &bytes).expect("write the rebuilt binary");
    let rebuilt_build = crate::support::hex_sha256_prefix(&bytes);

    let stop = std::sync::atomic::AtomicBool::new(false);
    let (out, (requests, failures)) = std::thread::scope(|s| {
        let poller = s.spawn(|| poll_like_visitors(&op, &stop));
        let out = op.maki(&[
            "machine",
            "upgrade",
            "--all",
            "--binary",
            rebuilt.to_str().expect("UTF-8"),
            "--json",
        ]);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (out, poller.join().expect("poller"))
    });
    assert!(out.success(), "upgrade: {}", out.describe());
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {failures:#?}",
        failures.len()
    );
    assert!(requests >= 9, "only {requests} requests during the upgrade");
    // One node at a time: each is healthy again before the next drains.
    let order: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("] drain: out of DNS (") || l.contains("] restart: healthy"))
        .collect();
    let expected: Vec<String> = ["london", "seattle", "tokyo"]
        .iter()
        .flat_map(|n| [format!("[{n}] drain"), format!("[{n}] restart")])
        .collect();
    assert_eq!(order.len(), 6, "{}", out.stderr);
    for (line, want) in order.iter().zip(&expected) {
        assert!(
            line.starts_with(want.as_str()),
            "{line} should be {want}:\n{}",
            out.stderr
        );
    }
    for node in op.list() {
        assert_eq!(node["build"], rebuilt_build.as_str(), "{node}");
        assert_eq!(node["healthy"], true, "{node}");
    }

    // A build that cannot start: london gets its binary back, the upgrade
    // stops there, and the others are not touched.
    let broken = dir.path().join("broken");
    std::fs::copy("/bin/false", &broken).expect("copy /bin/false");
    let out = op.maki(&[
        "machine",
        "upgrade",
        "--all",
        "--binary",
        broken.to_str().expect("UTF-8"),
    ]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("london: wait healthy failed") && out.stderr.contains("runs build"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("[seattle] upload"), "{}", out.stderr);
    for node in op.list() {
        assert_eq!(node["build"], rebuilt_build.as_str(), "{node}");
        assert_eq!(node["healthy"], true, "{node}");
    }
    for i in 0..3 {
        assert_eq!(op.fetch(i).as_deref(), Ok("before the upgrade"));
    }
}

#[test]
fn remove_takes_a_node_out_of_dns_and_the_cluster_and_stops_it_while_the_others_serve() {
    let op = three_nodes();
    op.push(2, "before the removal");
    for i in 0..3 {
        wait_for(&format!("machine {i} serves the push"), CHANGE, || {
            op.fetch(i).and_then(|b| {
                if b == "before the removal" {
                    Ok(())
                } else {
                    Err(b)
                }
            })
        });
    }
    // restart and logs work on any node.
    op.maki_ok(&["machine", "restart", "seattle"]);
    let logs = op.maki_ok(&["machine", "logs", "seattle", "-n", "50"]);
    assert!(
        logs.stdout.contains("Started makiatto.service"),
        "{}",
        logs.stdout
    );

    let tokyo_client = PLACES[2].3;
    let tokyo = op.lab.address(2).to_string();
    for i in 0..3 {
        assert_eq!(op.dns_a(i, tokyo_client), Ok(vec![tokyo.clone()]));
    }
    let started = Instant::now();
    let out = op.maki_ok(&["machine", "remove", "tokyo", "--json"]);
    let took = started.elapsed();
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("remove --json");
    assert_eq!(report["name"], "tokyo", "{report}");
    // Out of the others' answers by the time remove returns.
    for i in 0..2 {
        let answer = op.dns_a(i, tokyo_client).expect("DNS answers");
        assert!(
            !answer.contains(&tokyo),
            "node {i} still answers with tokyo {took:?} after remove began: {answer:?}"
        );
        assert_eq!(op.fetch(i).as_deref(), Ok("before the removal"));
    }
    let state = op
        .lab
        .ssh(
            2,
            "systemctl is-active makiatto; systemctl is-enabled makiatto",
        )
        .stdout;
    assert_eq!(
        state.lines().collect::<Vec<_>>(),
        ["inactive", "disabled"],
        "{state}"
    );
    // Its data stays without --purge.
    op.lab.ssh_ok(2, "test -f /var/lib/makiatto/state.sqlite");
    let nodes = op.list();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(nodes.iter().all(|n| n["healthy"] == true), "{nodes:?}");
}
