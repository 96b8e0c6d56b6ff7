//! Throwaway Debian machines booted with `systemd-nspawn`, for the tests
//! of `maki machine`: real systemd, real OpenSSH, real `systemctl` and
//! `journalctl`, as on a rented server.
//!
//! Every machine is an overlayfs over the shared bookworm rootfs that
//! `scripts/rootfs` makes once (`MAKIATTO_ROOTFS`, default
//! `/var/cache/makiatto/rootfs-bookworm`), with its own network namespace
//! whose `eth0` is a veth to a bridge in the lab's own namespace. Machines
//! get 198.51.100.(i+1)/24; the operator's namespace (where `maki`, `ssh`,
//! `git`, `dig` and `curl` run) is 198.51.100.100. Nothing has a default
//! route, so nothing leaves the bridge.
//!
//! What booting systemd in nspawn takes on a host whose PID 1 is not
//! systemd (cgroup v1 hybrid, no system bus): `--register=no
//! --keep-unit`; each launcher in a cgroup of its own in both the
//! `name=systemd` and the `unified` hierarchy (the guest lives in
//! `<launcher's cgroup>/payload`); a tmpfs on `/run/systemd/nspawn`;
//! `--resolv-conf=off` with the rootfs's empty resolv.conf. The base has
//! an empty machine-id and no SSH host keys; each machine makes its own at
//! boot, and authorises the operator's key for root.
//!
//! Dropping the lab stops every machine (SIGTERM to nspawn powers the guest
//! off), unmounts the overlays, deletes the namespaces and removes the
//! cgroups, also when the test panicked.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::git::Client;
use super::{CmdOutput, run_command, temp_dir};

/// The rootfs `scripts/rootfs` makes.
const DEFAULT_ROOTFS: &str = "/var/cache/makiatto/rootfs-bookworm";
/// The stamp `scripts/rootfs` leaves in a finished rootfs.
const ROOTFS_STAMP: &str = ".makiatto-rootfs-complete";
/// How long a machine may take until its sshd accepts the operator
/// (measured 1.2 to 2.5 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a powered-off machine may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for one command; only reached on a hang.
const EXEC_TIMEOUT: Duration = Duration::from_secs(300);
/// The operator's host number on the bridge.
const OPERATOR_HOST: u8 = 100;

static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// What a machine boots into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// systemd as PID 1, as on a server.
    Systemd,
    /// Only sshd, no init system: a host `maki machine` must refuse.
    SshdOnly,
}

/// A bridge, an operator namespace and the machines on it.
pub struct Lab {
    /// `mkm<pid>-<counter>`: the prefix of every name the lab makes.
    id: String,
    bridge_ns: String,
    operator_ns: String,
    machines: Vec<Machine>,
    /// The operator's SSH key, authorised for root on every machine.
    pub operator: Client,
    /// Holds every machine's overlay; removed last.
    dir: TempDir,
}

/// One booted machine.
struct Machine {
    ns: String,
    address: Ipv4Addr,
    /// upper/, work/, root/ (the overlay), console.log.
    dir: PathBuf,
    /// The launcher (systemd-nspawn).
    nspawn: Option<Child>,
    /// Whether the overlay is mounted on `dir/root`.
    mounted: bool,
    /// The launcher's cgroups, one per hierarchy.
    cgroups: Vec<PathBuf>,
}

impl Lab {
    /// An empty lab: the bridge and the operator's namespace. Panics,
    /// naming the fix, without root or without the rootfs.
    pub fn new() -> Lab {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!(
                "this test needs root (systemd-nspawn, overlayfs, network namespaces, cgroups): run it as root"
            );
        }
        let rootfs = rootfs();
        assert!(
            rootfs.join(ROOTFS_STAMP).exists(),
            "this test boots machines from {}, which is missing or unfinished: run `sudo scripts/rootfs` (needs debootstrap; about 2 minutes, once)",
            rootfs.display()
        );
        assert!(
            Command::new("systemd-nspawn")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "this test needs systemd-nspawn: apt-get install systemd-container"
        );
        nspawn_runtime_dir();
        let id = format!(
            "mkm{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab {
            bridge_ns: format!("{id}-br"),
            operator_ns: format!("{id}-op"),
            machines: Vec::new(),
            operator: Client::with_comment("operator@laptop"),
            dir: temp_dir(),
            id,
        };
        // From here on, Drop cleans up whatever was made.
        ip(&["netns", "add", &lab.bridge_ns]);
        ip(&["-n", &lab.bridge_ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lab.bridge_ns, "link", "set", "br0", "up"]);
        ip(&["netns", "add", &lab.operator_ns]);
        lab.plug(&lab.operator_ns, "vop", OPERATOR_HOST);
        lab
    }

    /// Boots a machine with systemd; returns its index.
    pub fn boot(&mut self) -> usize {
        self.boot_with(Init::Systemd)
    }

    /// Boots a machine into `init`, waits until root can log in over SSH
    /// with the operator's key, and returns its index.
    pub fn boot_with(&mut self, init: Init) -> usize {
        let i = self.machines.len();
        let name = format!("{}-m{i}", self.id);
        let ns = name.clone();
        let dir = self.dir.path().join(format!("m{i}"));
        for sub in ["upper", "work", "root"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create the machine's overlay dirs");
        }
        let address = Ipv4Addr::new(198, 51, 100, (i + 1) as u8);
        self.machines.push(Machine {
            ns: ns.clone(),
            address,
            dir: dir.clone(),
            nspawn: None,
            mounted: false,
            cgroups: Vec::new(),
        });
        ip(&["netns", "add", &ns]);
        self.plug(&ns, &format!("v{i}"), (i + 1) as u8);

        let root = dir.join("root");
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            rootfs().display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        run_ok(
            Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &options])
                .arg(&root),
        );
        self.machines[i].mounted = true;
        self.prepare(&root, init, &format!("m{i}"));

        let mut cgroups = Vec::new();
        for hierarchy in ["systemd", "unified"] {
            let cg = Path::new("/sys/fs/cgroup").join(hierarchy).join(&name);
            std::fs::create_dir_all(&cg).unwrap_or_else(|e| {
                panic!(
                    "this test needs root and cgroups: create {}: {e}",
                    cg.display()
                )
            });
            cgroups.push(cg);
        }
        self.machines[i].cgroups = cgroups.clone();

        let mut nspawn = vec![
            "systemd-nspawn".to_string(),
            "--quiet".into(),
            "--register=no".into(),
            "--keep-unit".into(),
            "--resolv-conf=off".into(),
            "--timezone=off".into(),
            "--link-journal=no".into(),
            "--console=read-only".into(),
            format!("--directory={}", root.display()),
            format!("--machine={name}"),
            format!("--hostname=m{i}"),
            format!("--network-namespace-path=/run/netns/{ns}"),
            // As on a server: root may configure its network (a TUN
            // device for the mesh); the namespace is the machine's own.
            "--capability=CAP_NET_ADMIN".into(),
        ];
        match init {
            Init::Systemd => nspawn.push("--boot".into()),
            Init::SshdOnly => nspawn.extend(
                [
                    "/bin/sh",
                    "-c",
                    "ssh-keygen -A && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e",
                ]
                .map(String::from),
            ),
        }
        // The launcher moves itself into its cgroups, then becomes nspawn.
        let script = format!(
            "echo $$ > {}/cgroup.procs && echo $$ > {}/cgroup.procs && exec \"$@\"",
            cgroups[0].display(),
            cgroups[1].display()
        );
        let log = std::fs::File::create(dir.join("console.log")).expect("create the console log");
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(&nspawn)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the console log"))
            .stderr(log)
            .spawn()
            .expect("spawn systemd-nspawn");
        self.machines[i].nspawn = Some(child);
        self.wait_for_ssh(i);
        i
    }

    /// Writes what the machine needs before it boots: the operator's key
    /// for root, host keys made at boot, /dev/net/tun usable by services
    /// (as udev leaves it on a real host).
    fn prepare(&self, root: &Path, init: Init, hostname: &str) {
        std::fs::write(root.join("etc/hostname"), format!("{hostname}\n"))
            .expect("write /etc/hostname");
        let key =
            std::fs::read_to_string(&self.operator.public_key).expect("read the operator key");
        let ssh = root.join("root/.ssh");
        std::fs::create_dir_all(&ssh).expect("create /root/.ssh");
        std::fs::write(ssh.join("authorized_keys"), key).expect("write authorized_keys");
        std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod /root/.ssh");
        if init == Init::Systemd {
            let dropin = root.join("etc/systemd/system/ssh.service.d");
            std::fs::create_dir_all(&dropin).expect("create the ssh drop-in dir");
            std::fs::write(
                dropin.join("host-keys.conf"),
                "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n",
            )
            .expect("write the ssh drop-in");
            let tmpfiles = root.join("etc/tmpfiles.d");
            std::fs::create_dir_all(&tmpfiles).expect("create tmpfiles.d");
            std::fs::write(tmpfiles.join("tun.conf"), "z /dev/net/tun 0666 - - -\n")
                .expect("write tun.conf");
        }
    }

    /// Plugs namespace `ns` into the bridge as `eth0` with 198.51.100.`host`.
    fn plug(&self, ns: &str, port: &str, host: u8) {
        let br = self.bridge_ns.as_str();
        ip(&[
            "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ]);
        ip(&["-n", br, "link", "set", port, "master", "br0"]);
        ip(&["-n", br, "link", "set", port, "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("198.51.100.{host}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", ns, "link", "set", "eth0", "up"]);
    }

    fn wait_for_ssh(&mut self, i: usize) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            let out = self.ssh(i, "true");
            if out.success() {
                return;
            }
            if let Some(child) = self.machines[i].nspawn.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "machine {i}: systemd-nspawn exited ({status}) before sshd answered:\n{}",
                    self.console(i)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "machine {i}: sshd did not accept the operator within {BOOT_TIMEOUT:?}: {}\n{}",
                    out.describe(),
                    self.console(i)
                );
            }
            thread::sleep(Duration::from_millis(300));
        }
    }

    /// What the machine's console printed (its boot).
    pub fn console(&self, i: usize) -> String {
        std::fs::read_to_string(self.machines[i].dir.join("console.log")).unwrap_or_default()
    }

    /// Machine i's address on the bridge.
    pub fn address(&self, i: usize) -> Ipv4Addr {
        self.machines[i].address
    }

    /// `root@<address>`, as `maki machine` is told it.
    pub fn root_login(&self, i: usize) -> String {
        format!("root@{}", self.address(i))
    }

    /// Machine i's network namespace, e.g. to hold one of its ports.
    pub fn netns(&self, i: usize) -> &str {
        &self.machines[i].ns
    }

    /// The operator's network namespace.
    pub fn operator_netns(&self) -> &str {
        &self.operator_ns
    }

    /// The ssh options the operator uses: its key, a throwaway
    /// known_hosts, no prompts.
    pub fn ssh_command(&self) -> String {
        self.operator.ssh_command()
    }

    /// Runs `script` as root on machine i through the operator's ssh.
    pub fn ssh(&self, i: usize, script: &str) -> CmdOutput {
        let mut command = self.in_operator_ns("ssh");
        for word in self.ssh_command().split_whitespace().skip(1) {
            command.arg(word);
        }
        command
            .args(["-o", "ConnectTimeout=2", "--"])
            .arg(self.root_login(i))
            .arg(script);
        run_command(command, EXEC_TIMEOUT)
    }

    /// Like [`Lab::ssh`], panicking with the output when it fails.
    pub fn ssh_ok(&self, i: usize, script: &str) -> CmdOutput {
        let out = self.ssh(i, script);
        assert!(out.success(), "machine {i}: `{script}`: {}", out.describe());
        out
    }

    /// `program` run from the operator's namespace.
    pub fn in_operator_ns(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.operator_ns])
            .arg(program);
        command
    }

    /// Runs `f` on a thread in the operator's network namespace, so the
    /// sockets it opens and the processes it starts (git, ssh) are there.
    pub fn within<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = self.operator_ns.clone();
        thread::scope(|scope| {
            scope
                .spawn(move || {
                    super::cluster::enter_netns(&ns);
                    f()
                })
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    /// Runs `command` (made with [`Lab::in_operator_ns`]) to its end.
    pub fn run(&self, command: Command) -> CmdOutput {
        run_command(command, EXEC_TIMEOUT)
    }

    /// Powers machine i off and waits for nspawn to exit.
    fn stop(&mut self, i: usize) {
        let Some(mut child) = self.machines[i].nspawn.take() else {
            return;
        };
        // SAFETY: kill(2) on the pid of a child we spawned and have not
        // reaped (it is still in `child`).
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.machines.len() {
            self.stop(i);
        }
        for machine in &mut self.machines {
            // Whatever a killed guest left in its cgroups.
            for cg in &machine.cgroups {
                kill_cgroup(cg);
            }
            if machine.mounted {
                let root = machine.dir.join("root");
                let done = Command::new("umount")
                    .arg(&root)
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !done {
                    let _ = Command::new("umount").arg("-l").arg(&root).status();
                }
                machine.mounted = false;
            }
            for cg in &machine.cgroups {
                remove_cgroup(cg);
            }
        }
        let mut names: Vec<String> = self.machines.iter().map(|m| m.ns.clone()).collect();
        names.push(self.operator_ns.clone());
        names.push(self.bridge_ns.clone());
        for ns in names {
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The rootfs to boot from.
fn rootfs() -> PathBuf {
    std::env::var_os("MAKIATTO_ROOTFS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOTFS))
}

/// nspawn keeps per-machine state under /run/systemd/nspawn and refuses
/// to clean it up on a disk file system: give it a tmpfs, once.
fn nspawn_runtime_dir() {
    let dir = "/run/systemd/nspawn";
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(dir))
    {
        return;
    }
    std::fs::create_dir_all(dir).expect("create /run/systemd/nspawn");
    let mut mount = Command::new("mount");
    mount.args(["-t", "tmpfs", "tmpfs", dir]);
    let out = run_command(mount, EXEC_TIMEOUT);
    // Another test process may have mounted it meanwhile.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    assert!(
        out.success()
            || mounts
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(dir)),
        "mount a tmpfs on {dir}: {}",
        out.describe()
    );
}

/// Kills every process left in cgroup `cg` and below.
fn kill_cgroup(cg: &Path) {
    for dir in cgroup_dirs(cg) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            if let Ok(pid) = pid.parse::<libc::pid_t>() {
                // SAFETY: kill(2) on a pid the kernel lists in this test's
                // own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Removes cgroup `cg` and everything below it, deepest first.
fn remove_cgroup(cg: &Path) {
    let mut dirs = cgroup_dirs(cg);
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in dirs {
        for _ in 0..50 {
            if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `cg` and every cgroup below it.
fn cgroup_dirs(cg: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut todo = vec![cg.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    todo.push(entry.path());
                }
            }
            all.push(dir);
        }
    }
    all
}

fn ip(args: &[&str]) {
    run_ok(Command::new("ip").args(args));
}

fn run_ok(command: &mut Command) {
    let shown = format!("{command:?}");
    let out = run_command(
        std::mem::replace(command, Command::new("true")),
        EXEC_TIMEOUT,
    );
    assert!(
        out.success(),
        "this test needs root: {shown} failed: {}",
        out.describe()
    );
}
