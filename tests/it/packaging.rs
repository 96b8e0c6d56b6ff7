//! The node as a system service: the repository's systemd unit passes
//! `systemd-analyze verify`, `makiatto run` tells the service manager when it
//! is ready and when it stops (the unit is `Type=notify`), and
//! `makiatto check-config` accepts a good node.toml and points at the
//! mistake in a bad one. Self-contained: drives the real binary only.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MAKIATTO: &str = env!("CARGO_BIN_EXE_makiatto");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check_config(file: &Path) -> Output {
    Command::new(MAKIATTO)
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run makiatto check-config: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(repo().join("packaging/makiatto.service"))
        .unwrap_or_else(|e| panic!("read the unit: {e}"));
    assert!(
        unit.contains("\nExecStart=/usr/bin/makiatto run --config /etc/makiatto/node.toml\n"),
        "the unit runs the installed binary with the standard config path"
    );
    // verify checks that ExecStart's binary exists: point it at this build.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let copy = dir.path().join("makiatto.service");
    std::fs::write(&copy, unit.replace("/usr/bin/makiatto", MAKIATTO))
        .unwrap_or_else(|e| panic!("write the unit: {e}"));
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap_or_else(|e| panic!("run systemd-analyze (package systemd): {e}"));
    // verify exits 0 even when it ignores a setting it cannot parse, so any
    // complaint about the unit counts as a failure.
    let stderr = text(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("makiatto.service"))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn run_tells_the_service_manager_when_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let socket_path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&socket_path).unwrap_or_else(|e| panic!("bind: {e}"));
    manager
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "name = \"notified\"\ndata_dir = \"data\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap_or_else(|e| panic!("write node.toml: {e}"));

    let mut node = Command::new(MAKIATTO)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start makiatto run: {e}"));
    let mut buffer = [0u8; 1024];
    let ready = match manager.recv(&mut buffer) {
        Ok(n) => text(&buffer[..n]),
        Err(e) => {
            let _ = node.kill();
            let mut stderr = String::new();
            if let Some(mut s) = node.stderr.take() {
                let _ = s.read_to_string(&mut stderr);
            }
            panic!("no readiness from makiatto run: {e}\n{stderr}");
        }
    };
    assert!(
        ready.starts_with("READY=1\n")
            && ready.contains("STATUS=node notified serving http 127.0.0.1:"),
        "{ready:?}"
    );
    // Ready means listening: the HTTP port it reports accepts at once.
    let port = ready
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .unwrap_or_else(|| panic!("a port in {ready:?}"));
    std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to the ready node's HTTP port {port}: {e}"));

    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(node.id() as libc::pid_t, libc::SIGTERM) };
    let stopping = manager
        .recv(&mut buffer)
        .map(|n| text(&buffer[..n]))
        .unwrap_or_else(|e| panic!("no STOPPING from makiatto run: {e}"));
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping:?}");
    let status = node.wait().unwrap_or_else(|e| panic!("wait: {e}"));
    assert!(status.success(), "makiatto run after SIGTERM: {status}");
}

#[test]
fn check_config_accepts_the_example_and_says_what_would_run() {
    let out = check_config(&repo().join("node.toml.example"));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("OK "), "{stdout}");
    for line in [
        "  node london\n",
        "  http 0.0.0.0:80\n",
        "  dns 0.0.0.0:53 (udp+tcp)\n",
        "  ssh 0.0.0.0:2222",
        "  https 0.0.0.0:443",
        "  wireguard maki0 udp 51880",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
}

#[test]
fn check_config_rejects_a_bad_file_naming_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file: PathBuf = dir.path().join("node.toml");
    std::fs::write(&file, "name = \"ok\"\n[http]\nlisen = \"0.0.0.0:80\"\n")
        .unwrap_or_else(|e| panic!("write: {e}"));
    let out = check_config(&file);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "a bad file is refused");
    assert!(
        out.stdout.is_empty(),
        "nothing says OK: {}",
        text(&out.stdout)
    );
    assert!(
        stderr.starts_with(&format!("{}:3:1: ", file.display())) && stderr.contains("\"listen\""),
        "{stderr}"
    );

    let missing = dir.path().join("absent.toml");
    let out = check_config(&missing);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("absent.toml"),
        "{}",
        text(&out.stderr)
    );
}
