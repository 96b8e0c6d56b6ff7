//! A cluster of real `makiatto run` nodes on one machine, one network
//! namespace each, for mesh tests.
//!
//! Layout: a bridge (`br0`) inside a namespace of its own, and per node a
//! namespace whose `eth0` is one end of a veth pair whose other end
//! (`v<i>`) is a port of that bridge. Node i has the underlay addresses
//! 192.0.2.(i+1)/24 and 2001:db8::(i+1)/64, loopback up and no default
//! route, so nothing it sends can leave the bridge. A "foreign" namespace on
//! the same bridge (192.0.2.100, 2001:db8::100) hosts third-party software
//! such as wireguard-go. Because every interface except the namespaces
//! themselves lives inside a test's own namespaces, interface names never
//! collide, and namespace names carry the process id and a counter, so tests
//! in one binary run in parallel.
//!
//! WireGuard UAPI sockets live in `/var/run/wireguard`, which namespaces do
//! not separate; every process the harness starts in a namespace therefore
//! gets that namespace's own directory bind-mounted there (inside the mount
//! namespace `ip netns exec` creates), so `wg show maki0` run through
//! [`Cluster::exec`] talks to that node's device.
//!
//! Dropping the cluster kills every process it started and deletes every
//! namespace (which removes the veths, the bridge and the TUN devices), even
//! when the test panicked.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{CmdOutput, makiatto_bin, run_command, temp_dir};

/// How long a node may take to print its ready lines.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for one command inside a namespace; only reached on a hang.
const EXEC_TIMEOUT: Duration = Duration::from_secs(120);
/// Where wireguard-tools look for userspace devices' sockets.
const WG_SOCKET_DIR: &str = "/run/wireguard";

/// The documentation-range mesh prefixes tests use (never a private range).
pub const MESH_PREFIX_V4: &str = "198.51.100.0/24";
pub const MESH_PREFIX_V6: &str = "2001:db8:1::/64";

static NEXT_CLUSTER: AtomicUsize = AtomicUsize::new(0);

/// Who the foreign namespace is, as a node index stand-in in addresses.
const FOREIGN_HOST: u8 = 100;

/// N node namespaces on one bridge, plus a foreign namespace.
pub struct Cluster {
    /// `mk<pid>-<counter>`: the prefix of every namespace name.
    id: String,
    bridge_ns: String,
    nodes: Vec<ClusterNode>,
    foreign: Namespace,
    /// Background processes (iperf3 servers, wireguard-go) killed on drop.
    extras: Vec<Child>,
    /// NAT router namespaces [`Cluster::behind_nat`] made.
    routers: Vec<String>,
    /// Holds every node's directory; removed last.
    dir: TempDir,
}

/// One namespace with its scratch directory.
struct Namespace {
    name: String,
    /// Bind-mounted over /run/wireguard for every process in this namespace.
    wg_dir: PathBuf,
}

struct ClusterNode {
    ns: Namespace,
    dir: PathBuf,
    process: Option<NodeProcess>,
}

/// A running `makiatto run` and what it printed.
struct NodeProcess {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Cluster {
    /// Builds `n` node namespaces and the foreign one, all on one bridge.
    /// Panics, saying root and network namespaces are needed, when it
    /// cannot.
    pub fn new(n: usize) -> Cluster {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!(
                "this test needs root and network namespaces (ip netns, veth, bridge, /dev/net/tun); run it as root, e.g. `sudo -E cargo test --test it mesh_wireguard::`"
            );
        }
        assert!(
            n <= 50,
            "a cluster of {n} nodes is more than the harness's address plan allows"
        );
        let id = format!(
            "mk{}-{}",
            std::process::id(),
            NEXT_CLUSTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = temp_dir();
        let namespace = |name: String, dir: &Path| {
            let wg_dir = dir.join("run-wireguard");
            std::fs::create_dir_all(&wg_dir).expect("create the namespace's wireguard dir");
            Namespace { name, wg_dir }
        };
        let mut cluster = Cluster {
            bridge_ns: format!("{id}-br"),
            foreign: namespace(format!("{id}-fx"), &dir.path().join("foreign")),
            nodes: Vec::new(),
            extras: Vec::new(),
            routers: Vec::new(),
            id,
            dir,
        };
        std::fs::create_dir_all(WG_SOCKET_DIR).expect("create /run/wireguard");
        // From here on, Drop cleans up whatever was created.
        cluster.create_ns(&cluster.bridge_ns.clone());
        cluster.ip(
            &cluster.bridge_ns.clone(),
            &["link", "add", "br0", "type", "bridge"],
        );
        cluster.ip(&cluster.bridge_ns.clone(), &["link", "set", "br0", "up"]);
        for i in 0..n {
            let node_dir = cluster.dir.path().join(format!("n{i}"));
            let ns = namespace(format!("{}-n{i}", cluster.id), &node_dir);
            cluster.nodes.push(ClusterNode {
                ns,
                dir: node_dir,
                process: None,
            });
            let name = cluster.nodes[i].ns.name.clone();
            cluster.attach(&name, &format!("v{i}"), (i + 1) as u8);
        }
        let foreign = cluster.foreign.name.clone();
        cluster.attach(&foreign, "vfx", FOREIGN_HOST);
        cluster
    }

    /// `n` nodes with WireGuard joined into one cluster: node 0 is the
    /// seed, and every other node joins through the seed's public join
    /// listener with a fresh one-time token. `tables(cluster, i)` adds TOML
    /// tables (e.g. `[dns]`, `[ssh]`) to node i's node.toml.
    pub fn joined(n: usize, tables: impl Fn(&Cluster, usize) -> String) -> Cluster {
        Cluster::joined_with(n, |cluster, i| {
            format!(
                "{}{}{}",
                cluster.base_config(i),
                tables(cluster, i),
                cluster.cluster_table(i)
            )
        })
    }

    /// Like [`Cluster::joined`], with node i's node.toml written by
    /// `config(cluster, i)`: without a `[cluster]` table (the seed gets an
    /// empty one, a joining node what `join-token` printed), or with
    /// `[cluster]` as its last table (the seed's is used as it is; a joining
    /// node's gets the `join` lines `join-token` printed).
    pub fn joined_with(n: usize, config: impl Fn(&Cluster, usize) -> String) -> Cluster {
        Cluster::new(n).join_all(config)
    }

    /// Starts this cluster's nodes as [`Cluster::joined_with`] does, after
    /// any plumbing (e.g. [`Cluster::behind_nat`]) the caller added.
    pub fn join_all(mut self, config: impl Fn(&Cluster, usize) -> String) -> Cluster {
        let n = self.len();
        let seed_config = config(&self, 0);
        let seed_ip = seed_config
            .lines()
            .find_map(|l| l.strip_prefix("ipv4 = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_default()
            .to_string();
        let seed = if has_cluster_table(&seed_config) {
            seed_config
        } else {
            format!("{seed_config}\n[cluster]\n")
        };
        self.write_config(0, &seed);
        self.start(0);
        for i in 1..n {
            // What `join-token` prints below the token is pasted as it is:
            // its `join` address must be one a new node reaches.
            let out = self.join_token_output(0);
            let pasted: Vec<&str> = out.lines().skip(1).collect();
            assert!(
                pasted
                    .iter()
                    .any(|l| *l == format!("join = \"{seed_ip}:7070\"")),
                "join-token should name node 0's public address {seed_ip}: {out}"
            );
            let own = config(&self, i);
            let text = if has_cluster_table(&own) {
                let after = own.rsplit("\n[cluster]").next().unwrap_or_default();
                assert!(
                    !after.lines().any(|l| l.trim_start().starts_with('[')),
                    "node {i}: [cluster] must be the last table to take the join lines:\n{own}"
                );
                let join_lines: Vec<&str> = pasted
                    .iter()
                    .filter(|l| l.starts_with("join"))
                    .copied()
                    .collect();
                format!("{own}{}\n", join_lines.join("\n"))
            } else {
                format!("{own}\n{}\n", pasted.join("\n"))
            };
            self.write_config(i, &text);
            self.start(i);
        }
        self
    }

    /// A fresh one-time join token from node i (`makiatto join-token`).
    pub fn join_token(&self, i: usize) -> String {
        self.join_token_output(i)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// What `makiatto join-token` on node i prints: the token, then the
    /// node.toml lines a new node pastes.
    pub fn join_token_output(&self, i: usize) -> String {
        let mut command = Command::new(makiatto_bin());
        command
            .arg("join-token")
            .arg("--data")
            .arg(self.data_dir(i));
        let out = run_command(command, EXEC_TIMEOUT);
        assert!(out.success(), "join-token: {}", out.describe());
        out.stdout
    }

    /// Waits until every node lists every other node as a WireGuard peer
    /// with a completed handshake.
    pub fn wait_for_handshakes(&self, limit: Duration) {
        let others = self.len() - 1;
        for i in 0..self.len() {
            self.wait_for(
                &format!("node {i} lists {others} peers with handshakes"),
                limit,
                || {
                    let peers = self.wg_peers(i, "maki0");
                    (peers.len() == others && peers.iter().all(|p| p.latest_handshake > 0))
                        .then_some(())
                },
            );
        }
    }

    /// Runs `f` on a thread inside node i's network namespace (`None`: the
    /// foreign namespace), so sockets it opens and processes it starts
    /// (git, ssh, an HTTP client) are there; returns what `f` returned.
    pub fn within<T: Send>(&self, i: Option<usize>, f: impl FnOnce() -> T + Send) -> T {
        let ns = self.netns_name(i).to_string();
        thread::scope(|scope| {
            scope
                .spawn(move || {
                    enter_netns(&ns);
                    f()
                })
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// Node i's namespace name (`None`: the foreign namespace), for
    /// [`enter_netns`] on a thread of the test's own.
    pub fn netns_name(&self, i: Option<usize>) -> &str {
        match i {
            Some(i) => &self.nodes[i].ns.name,
            None => &self.foreign.name,
        }
    }

    fn create_ns(&self, name: &str) {
        let out = run_command(
            {
                let mut c = Command::new("ip");
                c.args(["netns", "add", name]);
                c
            },
            EXEC_TIMEOUT,
        );
        assert!(
            out.success(),
            "this test needs root and network namespaces: `ip netns add {name}` failed: {}",
            out.describe()
        );
    }

    /// Creates namespace `ns` and plugs it into the bridge as `eth0`, with
    /// the underlay addresses of `host`.
    fn attach(&self, ns: &str, bridge_port: &str, host: u8) {
        self.create_ns(ns);
        let br = self.bridge_ns.as_str();
        self.ip(
            br,
            &[
                "link",
                "add",
                bridge_port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            ],
        );
        self.ip(br, &["link", "set", bridge_port, "master", "br0"]);
        self.ip(br, &["link", "set", bridge_port, "up"]);
        self.ip(ns, &["link", "set", "lo", "up"]);
        self.ip(
            ns,
            &["addr", "add", &format!("192.0.2.{host}/24"), "dev", "eth0"],
        );
        // nodad: usable at once, no duplicate-address wait.
        self.ip(
            ns,
            &[
                "addr",
                "add",
                &format!("2001:db8::{host:x}/64"),
                "dev",
                "eth0",
                "nodad",
            ],
        );
        self.ip(ns, &["link", "set", "eth0", "up"]);
    }

    /// Puts node i behind a 1:1 NAT router, as cloud hosts are: its own
    /// interface holds only `private` (in 203.0.113.128/25, behind the
    /// router at .129), and a router namespace on the bridge answers for
    /// `public` (in 203.0.113.0/25; the mesh prefix holds 198.51.100.0/24),
    /// forwarding it to `private` and sending its traffic out as `public`.
    /// Other nodes reach it at `public` through the bridge. Call before
    /// starting node i.
    pub fn behind_nat(&mut self, i: usize, public: Ipv4Addr, private: Ipv4Addr) {
        let router = format!("{}-rt{i}", self.id);
        let node = self.nodes[i].ns.name.clone();
        self.routers.push(router.clone());
        // Off the bridge: the router takes its place there.
        self.ip(&self.bridge_ns.clone(), &["link", "del", &format!("v{i}")]);
        self.attach(&router, &format!("vr{i}"), 200 + i as u8);
        self.ip(
            &router,
            &["addr", "add", &format!("{public}/25"), "dev", "eth0"],
        );
        self.ip(
            &router,
            &[
                "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", &node,
            ],
        );
        let gateway = Ipv4Addr::new(203, 0, 113, 129);
        self.ip(
            &router,
            &["addr", "add", &format!("{gateway}/25"), "dev", "lan0"],
        );
        self.ip(&router, &["link", "set", "lan0", "up"]);
        self.ip(
            &node,
            &["addr", "add", &format!("{private}/25"), "dev", "eth0"],
        );
        self.ip(&node, &["link", "set", "eth0", "up"]);
        self.ip(
            &node,
            &["route", "add", "default", "via", &gateway.to_string()],
        );
        let rules = self.dir.path().join(format!("nat{i}.nft"));
        std::fs::write(
            &rules,
            format!(
                "table ip nat {{\n  chain pre {{ type nat hook prerouting priority -100; ip daddr {public} dnat to {private}; }}\n  chain post {{ type nat hook postrouting priority 100; ip saddr {private} oifname \"eth0\" snat to {public}; }}\n}}\n"
            ),
        )
        .expect("write the NAT rules");
        for args in [
            vec!["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
            vec!["nft", "-f", rules.to_str().unwrap_or_default()],
        ] {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", &router]).args(&args);
            let out = run_command(command, EXEC_TIMEOUT);
            assert!(
                out.success(),
                "in {router}: {}: {} (nft comes from the nftables package)",
                args.join(" "),
                out.describe()
            );
        }
    }

    /// Adds `addr` (with its prefix length) to node i's bridge interface.
    pub fn add_address(&self, i: usize, addr: &str) {
        self.ip(
            &self.nodes[i].ns.name.clone(),
            &["addr", "add", addr, "dev", "eth0"],
        );
    }

    /// `ip -n NS ARGS`, which must succeed.
    fn ip(&self, ns: &str, args: &[&str]) {
        let mut command = Command::new("ip");
        command.arg("-n").arg(ns).args(args);
        let out = run_command(command, EXEC_TIMEOUT);
        assert!(
            out.success(),
            "ip -n {ns} {}: {}",
            args.join(" "),
            out.describe()
        );
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node i's underlay (public) IPv4 address.
    pub fn underlay_v4(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, (i + 1) as u8)
    }

    /// Node i's underlay IPv6 address.
    pub fn underlay_v6(&self, i: usize) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, (i + 1) as u16)
    }

    /// The foreign namespace's underlay IPv4 address.
    pub fn foreign_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, FOREIGN_HOST)
    }

    /// Node i's mesh IPv4 address in the test mesh prefix.
    pub fn mesh_v4(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, (i + 1) as u8)
    }

    /// Node i's mesh IPv6 address in the test mesh prefix.
    pub fn mesh_v6(&self, i: usize) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, (i + 1) as u16)
    }

    /// The foreign peer's mesh IPv4 address.
    pub fn foreign_mesh_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, FOREIGN_HOST)
    }

    /// Node i's scratch directory (its node.toml and data live here, and
    /// survive restarts).
    pub fn dir(&self, i: usize) -> &Path {
        &self.nodes[i].dir
    }

    /// Node i's data directory, as [`Cluster::base_config`] sets it.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("data")
    }

    /// A node.toml for node i: name `n<i>`, its data directory, underlay
    /// addresses, HTTP on port 80 (its namespace alone uses it). Append
    /// tables such as [`Cluster::cluster_table`] to it.
    pub fn base_config(&self, i: usize) -> String {
        format!(
            "name = \"n{i}\"\ndata_dir = \"{}\"\nipv4 = \"{}\"\nipv6 = \"{}\"\n\n[http]\nlisten = \"0.0.0.0:80\"\n",
            self.data_dir(i).display(),
            self.underlay_v4(i),
            self.underlay_v6(i),
        )
    }

    /// A `[cluster]` table giving node i its mesh addresses in the test
    /// prefixes (documentation ranges, never the private defaults).
    pub fn cluster_table(&self, i: usize) -> String {
        format!(
            "\n[cluster]\nprefix_v4 = \"{MESH_PREFIX_V4}\"\nprefix_v6 = \"{MESH_PREFIX_V6}\"\naddress_v4 = \"{}\"\naddress_v6 = \"{}\"\n",
            self.mesh_v4(i),
            self.mesh_v6(i),
        )
    }

    /// A `[cluster]` table with the test prefixes and no addresses: the
    /// first node picks its own mesh addresses, the others are given
    /// theirs when they join.
    pub fn cluster_prefixes_table(&self) -> String {
        format!("\n[cluster]\nprefix_v4 = \"{MESH_PREFIX_V4}\"\nprefix_v6 = \"{MESH_PREFIX_V6}\"\n")
    }

    /// Writes node i's node.toml; returns its path.
    pub fn write_config(&self, i: usize, text: &str) -> PathBuf {
        let path = self.nodes[i].dir.join("node.toml");
        std::fs::create_dir_all(&self.nodes[i].dir).expect("create the node's dir");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// `ip netns exec NS` with `wg_dir` mounted on /run/wireguard, then
    /// `args`.
    fn in_namespace(ns: &Namespace, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns.name, "sh", "-c"])
            .arg(format!(
                "mount --bind \"$0\" {WG_SOCKET_DIR} && exec \"$@\""
            ))
            .arg(&ns.wg_dir)
            .args(args);
        command
    }

    /// Starts `makiatto run --config <dir>/node.toml` in node i's namespace
    /// and waits for its ready lines; panics with its output if it fails.
    pub fn start(&mut self, i: usize) {
        if let Err(why) = self.try_start(i) {
            panic!("node {i}: {why}");
        }
    }

    /// Like [`Cluster::start`], reporting a failed start (with the node's
    /// output) instead of panicking.
    pub fn try_start(&mut self, i: usize) -> Result<(), String> {
        assert!(
            self.nodes[i].process.is_none() || !self.is_running(i),
            "node {i} is already running"
        );
        let config = self.nodes[i].dir.join("node.toml");
        let stderr_log = self.nodes[i].dir.join("stderr.log");
        let stderr_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .expect("open the node's stderr log");
        let config_arg = config.to_str().expect("UTF-8 temp path").to_string();
        let mut command = Cluster::in_namespace(
            &self.nodes[i].ns,
            &[makiatto_bin(), "run", "--config", &config_arg],
        );
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .spawn()
            .expect("spawn ip netns exec makiatto");
        let (stdout, rx) = super::stdout_lines(&mut child);
        self.nodes[i].process = Some(NodeProcess { child, stdout });
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                // The URL line is the last of the ready lines.
                Ok(line) if line.contains("http://") => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    thread::sleep(Duration::from_millis(100)); // let stderr reach the file
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => {
                            format!("not ready within {START_TIMEOUT:?}")
                        }
                        mpsc::RecvTimeoutError::Disconnected => "exited before it was ready".into(),
                    };
                    let report = format!("{why}\n{}", self.output(i));
                    self.kill(i);
                    return Err(report);
                }
            }
        }
    }

    /// Node i's stdout lines and stderr, for failure messages.
    pub fn output(&self, i: usize) -> String {
        format!(
            "--- n{i} stdout ---\n{}\n--- n{i} stderr ---\n{}",
            self.stdout(i).join("\n"),
            self.stderr(i)
        )
    }

    /// Every line node i printed on stdout in its current (or last) run.
    pub fn stdout(&self, i: usize) -> Vec<String> {
        match &self.nodes[i].process {
            Some(p) => p.stdout.lock().expect("stdout lines").clone(),
            None => Vec::new(),
        }
    }

    /// Everything node i logged, across restarts.
    pub fn stderr(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.join("stderr.log")).unwrap_or_default()
    }

    /// Whether node i's process is running.
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.nodes[i].process {
            Some(p) => matches!(p.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM to node i, then waits for it to exit; `None` if it was not
    /// running or did not exit within 30 s (it is then killed).
    pub fn stop(&mut self, i: usize) -> Option<ExitStatus> {
        let process = self.nodes[i].process.as_mut()?;
        if let Ok(Some(status)) = process.child.try_wait() {
            return Some(status);
        }
        let pid = process.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid, which it still is
        // (not yet reaped).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = process.child.kill();
        let _ = process.child.wait();
        None
    }

    /// SIGKILL to node i (no clean shutdown), and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(process) = self.nodes[i].process.as_mut() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }

    /// Stops node i (SIGTERM) and starts it again with the same node.toml
    /// and data.
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        self.start(i);
    }

    /// Runs `args` in node i's namespace (with its /run/wireguard) and
    /// returns what it printed.
    pub fn exec(&self, i: usize, args: &[&str]) -> CmdOutput {
        run_command(Cluster::in_namespace(&self.nodes[i].ns, args), EXEC_TIMEOUT)
    }

    /// Runs `args` in node i's namespace; panics unless it succeeds.
    pub fn exec_ok(&self, i: usize, args: &[&str]) -> CmdOutput {
        let out = self.exec(i, args);
        assert!(
            out.success(),
            "n{i}: {} failed: {}\n{}",
            args.join(" "),
            out.describe(),
            self.output(i)
        );
        out
    }

    /// The IPv4 and IPv6 addresses on node i's `maki0` (`ip -o addr`),
    /// link-local left out, sorted.
    pub fn interface_addresses(&self, i: usize) -> Vec<String> {
        let out = self.exec_ok(i, &["ip", "-o", "addr", "show", "dev", "maki0"]);
        let mut found: Vec<String> = out
            .stdout
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                words.find(|w| *w == "inet" || *w == "inet6")?;
                words.next().map(str::to_string)
            })
            .filter(|a| !a.starts_with("fe80"))
            .collect();
        found.sort();
        found
    }

    /// Runs `args` in the foreign namespace.
    pub fn exec_foreign(&self, args: &[&str]) -> CmdOutput {
        run_command(Cluster::in_namespace(&self.foreign, args), EXEC_TIMEOUT)
    }

    /// Runs `args` in the foreign namespace; panics unless it succeeds.
    pub fn exec_foreign_ok(&self, args: &[&str]) -> CmdOutput {
        let out = self.exec_foreign(args);
        assert!(
            out.success(),
            "foreign: {} failed: {}",
            args.join(" "),
            out.describe()
        );
        out
    }

    /// Starts `args` in the background in node i's namespace (`None`: the
    /// foreign namespace), e.g. an iperf3 server; killed on drop. Its
    /// output goes to `<name>.log` in the cluster directory.
    pub fn spawn(&mut self, i: Option<usize>, name: &str, args: &[&str]) {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create a background log");
        let err = file.try_clone().expect("clone the log handle");
        let ns = match i {
            Some(i) => &self.nodes[i].ns,
            None => &self.foreign,
        };
        let child = Cluster::in_namespace(ns, args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", args.join(" ")));
        self.extras.push(child);
    }

    /// What a background process started with [`Cluster::spawn`] printed.
    pub fn spawned_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Cuts node i off the bridge (its port goes down; the node's own
    /// `eth0` keeps its addresses), for partition tests.
    pub fn link_down(&self, i: usize) {
        self.ip(
            &self.bridge_ns.clone(),
            &["link", "set", &format!("v{i}"), "down"],
        );
    }

    /// Reconnects node i to the bridge.
    pub fn link_up(&self, i: usize) {
        self.ip(
            &self.bridge_ns.clone(),
            &["link", "set", &format!("v{i}"), "up"],
        );
    }

    /// Node i's `wg show <interface> dump` peers: (public key, endpoint,
    /// latest handshake unix seconds, rx bytes, tx bytes) per peer.
    pub fn wg_peers(&self, i: usize, interface: &str) -> Vec<WgPeer> {
        let out = self.exec_ok(i, &["wg", "show", interface, "dump"]);
        parse_wg_dump(&out.stdout)
    }

    /// Polls `check` every 200 ms until it returns `Some` or `limit`
    /// passes; then panics with `what` and every node's output.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() > deadline {
                let all: Vec<String> = (0..self.len()).map(|i| self.output(i)).collect();
                panic!("{what}: not within {limit:?}\n{}", all.join("\n"));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One HTTP answer from a node.
pub struct Got {
    pub status: u16,
    /// The `x-makiatto-revision` header.
    pub revision: Option<String>,
    pub body: Vec<u8>,
    retry_after: Duration,
}

/// GET `path` with `host` from `ip:80`, from the calling thread's
/// namespace, as a polite client makes it: a 429 (the node's per-client
/// request rate, which a test's busy poller can exhaust on its own) is
/// retried after the `retry-after` it names. `None` when no answer came.
pub fn http_get(ip: Ipv4Addr, host: &str, path: &str) -> Option<Got> {
    for _ in 0..10 {
        let got = http_get_once(ip, host, path)?;
        if got.status != 429 {
            return Some(got);
        }
        thread::sleep(got.retry_after);
    }
    None
}

fn http_get_once(ip: Ipv4Addr, host: &str, path: &str) -> Option<Got> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut response = agent
        .get(format!("http://{ip}{path}"))
        .header("host", host)
        .call()
        .ok()?;
    let revision = response
        .headers()
        .get("x-makiatto-revision")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs);
    let body = response
        .body_mut()
        .with_config()
        .limit(10_000_000)
        .read_to_vec()
        .ok()?;
    Some(Got {
        status: response.status().as_u16(),
        revision,
        body,
        retry_after,
    })
}

/// Moves the calling thread (only it) into network namespace `ns`: what
/// it connects to and the processes it spawns from then on are there.
/// Panics, saying why, when it cannot.
pub fn enter_netns(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!("this test needs root and network namespaces: open {path}: {e}")
    });
    // SAFETY: setns(2) on a namespace file descriptor we hold open; it
    // changes only this thread's network namespace.
    let done = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
    assert!(
        done == 0,
        "this test needs root and network namespaces: setns into {ns}: {}",
        std::io::Error::last_os_error()
    );
}

/// One peer line of `wg show IFACE dump`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgPeer {
    pub public_key: String,
    pub endpoint: String,
    pub allowed_ips: String,
    /// Unix seconds; 0 means never.
    pub latest_handshake: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Parses `wg show IFACE dump`: the first line is the interface, every
/// other line a peer with 8 tab-separated fields.
pub fn parse_wg_dump(text: &str) -> Vec<WgPeer> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 8 {
                return None;
            }
            Some(WgPeer {
                public_key: f[0].to_string(),
                endpoint: f[2].to_string(),
                allowed_ips: f[3].to_string(),
                latest_handshake: f[4].parse().ok()?,
                rx_bytes: f[5].parse().ok()?,
                tx_bytes: f[6].parse().ok()?,
            })
        })
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].process.is_some() {
                // SIGTERM first so the node removes its socket and device.
                if self.stop(i).is_none() {
                    self.kill(i);
                }
            }
        }
        for child in &mut self.extras {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut names: Vec<String> = self.nodes.iter().map(|n| n.ns.name.clone()).collect();
        names.push(self.foreign.name.clone());
        names.push(self.bridge_ns.clone());
        names.extend(self.routers.iter().cloned());
        for ns in names {
            // Anything still running in the namespace (a daemonised helper).
            if let Ok(out) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<libc::pid_t>() {
                        // SAFETY: kill(2) on a pid the kernel just listed
                        // inside this test's own namespace.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether a node.toml has a `[cluster]` table.
fn has_cluster_table(toml: &str) -> bool {
    toml.lines().any(|l| l.trim() == "[cluster]")
}
