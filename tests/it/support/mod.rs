//! The shared harness for integration tests: it starts the real `makiatto
//! dev` binary on an ephemeral port with a temp data directory, talks to it
//! over HTTP (ureq), raw TCP and the admin subcommands, and writes site
//! trees. A `Node` stops its process when dropped, so no node outlives a
//! test, even one that panics.

pub mod cluster;
pub mod git;
pub mod loopback;
pub mod nspawn;
pub mod pebble;
pub mod stop;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tempfile::TempDir;

/// How long a node may take to print its URL (a debug build deploying a
/// large tree is slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for one HTTP exchange or one admin command; only reached
/// when the product hangs.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The path to the binary cargo built for these tests.
pub fn makiatto_bin() -> &'static str {
    env!("CARGO_BIN_EXE_makiatto")
}

/// The operator CLI `maki`, built from its own workspace package beside
/// `makiatto`. Cargo builds only this package's binaries for its tests, so
/// the first call runs `cargo build -p maki` (a no-op when it is fresh,
/// as after `cargo build --all-targets`), never a stale copy.
pub fn maki_bin() -> &'static Path {
    static MAKI: OnceLock<PathBuf> = OnceLock::new();
    MAKI.get_or_init(|| {
        let dir = Path::new(makiatto_bin())
            .parent()
            .expect("the makiatto binary lies in a directory");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "maki", "--bin", "maki"]);
        if dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let out = run_command(build, Duration::from_secs(600));
        assert!(out.success(), "cargo build -p maki: {}", out.describe());
        let maki = dir.join("maki");
        assert!(maki.is_file(), "cargo built no {}", maki.display());
        maki
    })
}

/// A fresh temp directory, removed on drop.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("makiatto-test-")
        .tempdir()
        .expect("create a temp dir")
}

/// Writes `bytes` at `root/rel`, creating parent directories.
pub fn write_file(root: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes every `(relative path, contents)` pair under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (rel, contents) in files {
        write_file(root, rel, contents);
    }
}

/// A tiny deterministic PRNG (xorshift64*) for generated content.
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator; the same seed gives the same sequence.
    pub fn new(seed: u64) -> Xorshift {
        Xorshift(seed.max(1))
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Characters left as they are in a URL path: unreserved ones and `/`.
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How many objects a node's CAS holds (`objects/ab/…`, not counting
/// in-flight writes under `tmp/`): how far a replication got.
pub fn stored_objects(objects: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(objects) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name() != "tmp")
        .map(|e| std::fs::read_dir(e.path()).map_or(0, |d| d.count()))
        .sum()
}

/// `/` + the percent-encoded form of a site-relative file path.
pub fn url_path(rel: &str) -> String {
    format!("/{}", utf8_percent_encode(rel, PATH_KEEP))
}

/// One HTTP response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names are lowercase; a repeated header appears once per value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8, for messages and text comparisons.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, headers and the start of the body, for failure messages.
    pub fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        let text = self.text();
        let shown: String = text.chars().take(300).collect();
        format!(
            "status {}, headers [{}], {} body bytes: {shown:?}",
            self.status,
            headers.join("; "),
            self.body.len()
        )
    }
}

/// What a finished command printed.
#[derive(Debug)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Everything it printed, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to completion, killing it and panicking if it runs longer
/// than `limit`.
pub fn run_command(mut command: Command, limit: Duration) -> CmdOutput {
    let what = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} still running after {limit:?}");
            }
            Err(e) => panic!("wait for {what}: {e}"),
        }
    };
    CmdOutput {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `makiatto dev --site SITE` with a temp data dir, expected to exit on its
/// own (a failing start); returns what it printed.
pub fn dev_expecting_exit(site: &Path) -> CmdOutput {
    let data = temp_dir();
    let mut command = Command::new(makiatto_bin());
    command
        .arg("dev")
        .arg("--site")
        .arg(site)
        .arg("--data")
        .arg(data.path().join("data"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--dns",
            "127.0.0.1:0",
            "--ssh",
            "127.0.0.1:0",
        ]);
    run_command(command, START_TIMEOUT)
}

/// A running `makiatto dev` node; dropping it stops the process.
pub struct Node {
    child: Child,
    /// Holds the data directory and the stderr log for the node's lifetime.
    dir: TempDir,
    /// The node's `--data` directory, for admin subcommands.
    pub data: PathBuf,
    /// The address the HTTP listener actually bound.
    pub addr: SocketAddr,
    /// The domain the URL line names (the first site).
    pub domain: String,
    /// The 12-hex revision the URL line names.
    pub revision: String,
    stderr_log: PathBuf,
    /// Every stdout line, still being appended after start.
    stdout: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
}

impl Node {
    /// Starts `makiatto dev --site SITE` and waits for its URL line.
    pub fn start(site: &Path) -> Node {
        Node::start_dev(site, temp_dir(), &[])
    }

    /// Starts `makiatto dev --site SITE ARGS` (e.g. `--config node.toml`)
    /// with its data directory inside `dir`, and waits for its URL line.
    pub fn start_dev(site: &Path, dir: TempDir, args: &[&std::ffi::OsStr]) -> Node {
        Node::start_dev_with_env(site, dir, args, &[])
    }

    /// [`Node::start_dev`] with extra environment variables (e.g.
    /// `SSL_CERT_FILE`, for the roots the node's TLS clients trust).
    pub fn start_dev_with_env(
        site: &Path,
        dir: TempDir,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Node {
        let data = dir.path().join("data");
        let mut command = Command::new(makiatto_bin());
        command
            .arg("dev")
            .arg("--site")
            .arg(site)
            .arg("--data")
            .arg(&data)
            // Port 0 for DNS too, so parallel tests never share a port.
            .args([
                "--http",
                "127.0.0.1:0",
                "--dns",
                "127.0.0.1:0",
                "--ssh",
                "127.0.0.1:0",
            ])
            .args(args)
            .envs(env.iter().copied());
        Node::launch(command, dir, data)
    }

    /// The DNS address from the `  dns ADDR (udp+tcp)` line printed before
    /// the URL line; panics if the node runs no DNS.
    pub fn dns(&self) -> SocketAddr {
        let lines = self.stdout.lock().expect("stdout lines").clone();
        lines
            .iter()
            .find_map(|l| {
                let rest = l.trim_start().strip_prefix("dns ")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| self.fail("no dns line before the URL line"))
    }

    /// The address of a `  NAME ADDR` line printed before the URL line
    /// (`https`, `dot`); panics if there is none.
    pub fn listener(&self, name: &str) -> SocketAddr {
        let prefix = format!("{name} ");
        self.stdout_lines()
            .iter()
            .find_map(|l| {
                let rest = l.trim_start().strip_prefix(&prefix)?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| self.fail(&format!("no {name} line before the URL line")))
    }

    /// The node's process id (for `/proc/PID/...`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Starts `makiatto dev` with no site and `extra` arguments, with HOME
    /// in its scratch directory (so only keys the test names are authorised).
    pub fn start_bare(extra: &[&std::ffi::OsStr]) -> Node {
        let dir = temp_dir();
        let data = dir.path().join("data");
        let mut command = Command::new(makiatto_bin());
        command
            .arg("dev")
            .arg("--data")
            .arg(&data)
            .args([
                "--http",
                "127.0.0.1:0",
                "--dns",
                "127.0.0.1:0",
                "--ssh",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("HOME", dir.path());
        Node::launch(command, dir, data)
    }

    /// Every line the node printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lines").clone()
    }

    /// The port of the `ssh://git@ADDR/` line, waiting for it to be printed.
    pub fn ssh_port(&self) -> u16 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let found = self.stdout_lines().iter().find_map(|line| {
                let rest = &line[line.find("ssh://git@")? + "ssh://git@".len()..];
                let addr: SocketAddr = rest.split('/').next()?.parse().ok()?;
                Some(addr.port())
            });
            if let Some(port) = found {
                return port;
            }
            if Instant::now() > deadline {
                self.fail("no ssh:// line");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `makiatto run --config CONFIG`, whose node.toml must put its
    /// data directory at `data` (inside `dir`) and listen on port 0.
    pub fn start_run(config: &Path, dir: TempDir, data: PathBuf) -> Node {
        let mut command = Command::new(makiatto_bin());
        command.arg("run").arg("--config").arg(config);
        Node::launch(command, dir, data)
    }

    fn launch(mut command: Command, dir: TempDir, data: PathBuf) -> Node {
        let stderr_log = dir.path().join("stderr.log");
        let stderr_file = std::fs::File::create(&stderr_log).expect("create stderr log");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .spawn()
            .expect("spawn makiatto");
        let (stdout, rx) = stdout_lines(&mut child);
        let mut node = Node {
            child,
            dir,
            data,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            domain: String::new(),
            revision: String::new(),
            stderr_log,
            stdout,
            agent: http_agent(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("http://") => {
                    let (addr, site) = parse_url_line(&line)
                        .unwrap_or_else(|| node.fail(&format!("unreadable URL line {line:?}")));
                    node.addr = addr;
                    if let Some((domain, revision)) = site {
                        node.domain = domain;
                        node.revision = revision;
                    }
                    return node;
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    node.fail(&format!("no URL line within {START_TIMEOUT:?}"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    thread::sleep(Duration::from_millis(100)); // let stderr reach the file
                    node.fail("the node closed stdout before printing its URL")
                }
            }
        }
    }

    fn fail(&self, why: &str) -> ! {
        panic!(
            "makiatto: {why}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.lock().expect("stdout lines").join("\n"),
            self.stderr()
        )
    }

    /// What the node has logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// A scratch directory that lives as long as the node.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET `path`; panics if no response arrives.
    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    /// GET `path` with extra request headers; panics if no response arrives.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.try_get_with(path, headers)
            .unwrap_or_else(|e| panic!("GET {path} {headers:?}: {e}"))
    }

    /// GET `path` with extra request headers, reporting transport errors.
    pub fn try_get_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        fetch(&self.agent, "GET", &self.url(path), headers)
    }

    /// HEAD `path` with extra request headers; panics if no response arrives.
    pub fn head_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        fetch(&self.agent, "HEAD", &self.url(path), headers)
            .unwrap_or_else(|e| panic!("HEAD {path} {headers:?}: {e}"))
    }

    /// A fresh HTTP agent (its own connection pool) for another thread.
    pub fn agent(&self) -> ureq::Agent {
        http_agent()
    }

    /// Sends `request` as-is over a new TCP connection and reads the reply
    /// until the server closes it (send `Connection: close`).
    pub fn raw(&self, request: &[u8]) -> RawReply {
        raw_exchange(self.addr, request)
    }

    /// Runs `makiatto ARGS --data DATA` against this node.
    pub fn admin(&self, args: &[&str]) -> CmdOutput {
        let mut command = Command::new(makiatto_bin());
        command.args(args).arg("--data").arg(&self.data);
        run_command(command, CALL_TIMEOUT)
    }

    /// `makiatto deploy DIR`, which must succeed; returns the 12-hex revision
    /// it reports.
    pub fn deploy(&self, dir: &Path) -> String {
        let out = self.admin(&["deploy", dir.to_str().expect("UTF-8 temp path")]);
        assert!(
            out.success(),
            "makiatto deploy {} failed: {}",
            dir.display(),
            out.describe()
        );
        revision_in(&out.stdout).unwrap_or_else(|| {
            panic!(
                "makiatto deploy {} printed no revision: {}",
                dir.display(),
                out.describe()
            )
        })
    }
}

impl Node {
    /// Sends `signal` (e.g. "INT", "TERM") and waits up to `limit` for the
    /// process to exit; `None` if it is still running then.
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the node (SIGTERM, then SIGKILL after 5 s) and hands back its
    /// directory, data directory included, to start it again with
    /// [`Node::start_dev`].
    pub fn stop_keeping_data(mut self) -> TempDir {
        if self
            .signal_and_wait("TERM", Duration::from_secs(5))
            .is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        std::mem::replace(&mut self.dir, temp_dir())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SIGTERM first so the node can shut down cleanly, then insist.
            if self
                .signal_and_wait("TERM", Duration::from_secs(5))
                .is_some()
            {
                return;
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Reads `  http://ADDR/  → DOMAIN (revision HEX)`.
fn parse_url_line(line: &str) -> Option<(SocketAddr, Option<(String, String)>)> {
    let rest = &line[line.find("http://")? + "http://".len()..];
    let addr = rest.split('/').next()?.parse().ok()?;
    // `makiatto run` names no site on its URL line.
    let site = rest.split('→').nth(1).and_then(|after| {
        let domain = after.split_whitespace().next()?.to_string();
        Some((domain, revision_in(line)?))
    });
    Some((addr, site))
}

/// The 12-hex revision after the word "revision" in `text`.
pub fn revision_in(text: &str) -> Option<String> {
    let rest = &text[text.find("revision ")? + "revision ".len()..];
    let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    (hex.len() == 12).then_some(hex)
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(CALL_TIMEOUT))
        .build()
        .new_agent()
}

/// GET `url` with `headers` on `agent` (for requests from other threads);
/// panics if no response arrives.
pub fn fetch_with(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> Reply {
    fetch(agent, "GET", url, headers).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

fn fetch(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(()).map_err(|e| e.to_string())?;
    let mut response = agent.run(request).map_err(|e| e.to_string())?;
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_ascii_lowercase(), value)
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(200_000_000)
        .read_to_vec()
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(Reply {
        status: response.status().as_u16(),
        headers,
        body,
    })
}

/// What came back on a raw TCP connection.
#[derive(Debug)]
pub struct RawReply {
    /// The status code of the first response line, if one arrived.
    pub status: Option<u16>,
    /// Everything received, lossily decoded.
    pub text: String,
}

/// Writes `request` on a new connection and reads until EOF, a reset or
/// the call timeout.
pub fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(CALL_TIMEOUT))
        .expect("set read timeout");
    // The server may answer and close before reading everything we send.
    let _ = stream.write_all(request);
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&received).into_owned();
    RawReply {
        status: status_of(&text),
        text,
    }
}

/// The status code in an `HTTP/1.x NNN ...` first line.
pub fn status_of(text: &str) -> Option<u16> {
    let line = text.lines().next()?;
    if !line.starts_with("HTTP/1.") {
        return None;
    }
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Collects `child`'s piped stdout line by line on a thread: every line so
/// far, and each line as it comes, so a caller can wait for a ready line.
pub fn stdout_lines(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, mpsc::Receiver<String>) {
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel::<String>();
    let pipe = child.stdout.take().expect("piped stdout");
    let lines = stdout.clone();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            lines.lock().expect("stdout lines").push(line.clone());
            let _ = tx.send(line);
        }
    });
    (stdout, rx)
}

/// The first 12 hex digits of the sha256 of `bytes`, as `sha256sum`
/// prints them (what `maki machine list` shows as a node's build).
pub fn hex_sha256_prefix(bytes: &[u8]) -> String {
    let dir = temp_dir();
    let path = dir.path().join("blob");
    std::fs::write(&path, bytes).expect("write the blob");
    let mut sum = Command::new("sha256sum");
    sum.arg(&path);
    let out = run_command(sum, CALL_TIMEOUT);
    assert!(out.success(), "sha256sum: {}", out.describe());
    out.stdout.chars().take(12).collect()
}
