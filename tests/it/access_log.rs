//! The access log of a `makiatto dev` node configured by node.toml: JSON
//! lines and combined-format lines for a page, a 404, a range and an edge
//! function, with no Authorization, cookie or query string in them; a
//! file rotated by size keeps the configured number of files; a sampled
//! log to standard output writes the configured share of requests. The
//! exposition counts the lines written and the function call.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Node, temp_dir, write_file, write_tree};

const SITE: &str = "[[domain]]\nname = \"log.test\"\n\n[[domain.functions]]\npath = \"api/hello.wasm\"\nmethods = [\"GET\"]\n";
const AGENT: &str = "access-log-test/1.0";
/// Headers and a query a line must never carry.
const SECRET: &str = "s3cr3t-value";

/// How long the writer may take to put lines on disk.
const WAIT: Duration = Duration::from_secs(30);

/// A dev node serving a page, a 1000-byte file and the hello function,
/// with `access_log` as its node.toml's `[access_log]` table.
fn start(access_log: &str) -> Node {
    let dir = temp_dir();
    let site = dir.path().join("site");
    write_tree(
        &site,
        &[
            ("makiatto.toml", SITE),
            ("index.html", "<h1>logged</h1>\n"),
            ("big.txt", &"0123456789".repeat(100)),
        ],
    );
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasm/hello.wasm");
    write_file(
        &site,
        "api/hello.wasm",
        std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display())),
    );
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!("name = \"logger\"\n[access_log]\n{access_log}"),
    )
    .expect("write node.toml");
    Node::start_dev(&site, dir, &["--config".as_ref(), config.as_os_str()])
}

/// The four kinds of request the log must describe, each with secrets in
/// headers and query that must not reach it.
fn requests(node: &Node) {
    let headers = |extra: &[(&'static str, &'static str)]| {
        let mut h = vec![
            ("user-agent", AGENT),
            ("authorization", "Bearer s3cr3t-value"),
            ("cookie", "session=s3cr3t-value"),
        ];
        h.extend_from_slice(extra);
        h
    };
    let page = node.get_with("/?token=s3cr3t-value", &headers(&[]));
    assert_eq!(page.status, 200, "{}", page.describe());
    let missing = node.get_with("/missing.html", &headers(&[]));
    assert_eq!(missing.status, 404, "{}", missing.describe());
    let range = node.get_with("/big.txt", &headers(&[("range", "bytes=10-19")]));
    assert_eq!(range.status, 206, "{}", range.describe());
    assert_eq!(range.text(), "0123456789");
    let function = node.get_with("/api/hello", &headers(&[]));
    assert_eq!(function.status, 200, "{}", function.describe());
}

/// The lines of every file whose name starts with `access.log` under
/// `dir`, newest file last.
fn log_lines(dir: &Path, keep: u32) -> Vec<String> {
    let mut names = vec![];
    for n in (1..=keep).rev() {
        names.push(format!("access.log.{n}"));
    }
    names.push("access.log".into());
    names
        .iter()
        .filter_map(|name| std::fs::read_to_string(dir.join(name)).ok())
        .flat_map(|text| text.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Waits until `lines()` holds `want` lines ending in `suffix`.
fn wait_for_lines(mut lines: impl FnMut() -> Vec<String>, want: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = lines();
        if now.len() >= want {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{} access log lines after {WAIT:?}, wanted {want}: {now:#?}",
            now.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn json_lines_describe_pages_misses_ranges_and_functions_without_secrets() {
    let node = start("mode = \"on\"\nformat = \"json\"\nfile = \"logs/access.log\"\n");
    let dir = node.scratch().join("logs");
    requests(&node);
    let ours = || {
        log_lines(&dir, 0)
            .into_iter()
            .filter(|l| l.contains(AGENT))
            .collect::<Vec<_>>()
    };
    let lines = wait_for_lines(ours, 4);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let expect = [
        ("/", 200, 16),
        ("/missing.html", 404, 0),
        ("/big.txt", 206, 10),
        ("/api/hello", 200, 0),
    ];
    for ((path, status, bytes), line) in expect.iter().zip(&parsed) {
        assert_eq!(line["path"], *path, "{line}");
        assert_eq!(line["status"], *status, "{line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["client"], "127.0.0.1", "{line}");
        assert_eq!(line["user_agent"], AGENT, "{line}");
        assert!(
            line["host"]
                .as_str()
                .is_some_and(|h| h.starts_with("127.0.0.1:")),
            "{line}"
        );
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
        assert!(
            line["time"]
                .as_str()
                .is_some_and(|t| t.len() == 24 && t.ends_with('Z')),
            "{line}"
        );
        // No GeoIP database: no country.
        assert!(line["country"].is_null(), "{line}");
        if *bytes > 0 {
            assert_eq!(line["bytes"], *bytes, "{line}");
        }
        // Every served answer names its revision, the function's too.
        if *status != 404 {
            assert_eq!(
                line["revision"].as_str().map(str::len),
                Some(node.revision.len()),
                "{line}"
            );
        }
    }
    for line in &lines {
        assert!(!line.contains(SECRET), "a secret reached the log: {line}");
    }

    // The exposition counts the lines, none dropped, and the function call.
    let text = exposition(&node);
    assert!(
        value(&text, "makiatto_access_log_lines_total") >= 4,
        "{text}"
    );
    assert_eq!(
        value(&text, "makiatto_access_log_dropped_total"),
        0,
        "{text}"
    );
    assert_eq!(value(&text, "makiatto_function_calls_total"), 1, "{text}");
    assert_eq!(value(&text, "makiatto_function_traps_total"), 0, "{text}");
}

/// The node's Prometheus exposition.
fn exposition(node: &Node) -> String {
    let addr = node.listener("metrics");
    let mut resp = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .unwrap_or_else(|e| panic!("GET http://{addr}/metrics: {e}"));
    resp.body_mut().read_to_string().expect("exposition text")
}

/// The value of the unlabelled sample `name` in `text`.
fn value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Checks `line` against `HOST - - [DD/Mon/YYYY:HH:MM:SS +0000] "METHOD
/// PATH PROTO" STATUS BYTES "REFERER" "AGENT"`, returning the request,
/// status and user agent.
fn combined(line: &str) -> (String, u16, String) {
    let fail = || -> ! { panic!("not in the combined format: {line}") };
    let (client, rest) = line.split_once(" - - [").unwrap_or_else(|| fail());
    if client.parse::<std::net::IpAddr>().is_err() {
        fail();
    }
    let (time, rest) = rest.split_once("] \"").unwrap_or_else(|| fail());
    let b = time.as_bytes();
    let time_ok = time.len() == 26
        && b[2] == b'/'
        && b[6] == b'/'
        && b[11] == b':'
        && time.ends_with(" +0000")
        && time[7..11].parse::<u16>().is_ok();
    if !time_ok {
        fail();
    }
    let (request, rest) = rest.split_once("\" ").unwrap_or_else(|| fail());
    if request.split(' ').count() != 3 || !request.ends_with("HTTP/1.1") {
        fail();
    }
    let mut fields = rest.splitn(3, ' ');
    let status: u16 = fields
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fail());
    let bytes = fields.next().unwrap_or_else(|| fail());
    if bytes != "-" && bytes.parse::<u64>().is_err() {
        fail();
    }
    let quoted = fields.next().unwrap_or_else(|| fail());
    let (referer, agent) = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .and_then(|q| q.split_once("\" \""))
        .unwrap_or_else(|| fail());
    if referer != "-" {
        fail();
    }
    (request.to_string(), status, agent.to_string())
}

#[test]
fn combined_lines_rotate_keeping_the_configured_number_of_files() {
    // About 130 bytes a line: 1 KiB holds 7 of them.
    let node = start(
        "mode = \"on\"\nformat = \"combined\"\nfile = \"logs/access.log\"\nmax_kb = 1\nkeep = 2\n",
    );
    let dir = node.scratch().join("logs");
    for i in 0..40 {
        let reply = node.get_with(&format!("/filler-{i}.html"), &[("user-agent", AGENT)]);
        assert_eq!(reply.status, 404, "{}", reply.describe());
    }
    requests(&node);
    let ours = || {
        log_lines(&dir, 5)
            .into_iter()
            .filter(|l| l.contains("/api/hello"))
            .collect::<Vec<_>>()
    };
    wait_for_lines(ours, 1);

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the log directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["access.log", "access.log.1", "access.log.2"]);
    for name in &names {
        let size = std::fs::metadata(dir.join(name)).expect("stat").len();
        assert!(size <= 1024, "{name} is {size} bytes, over max_kb = 1");
    }

    let lines = log_lines(&dir, 2);
    // The oldest lines were rotated away; the newest four are ours.
    assert!(lines.len() < 44, "{} lines kept", lines.len());
    for line in &lines {
        assert!(!line.contains(SECRET), "a secret reached the log: {line}");
        combined(line);
    }
    let last: Vec<(String, u16, String)> = lines[lines.len() - 4..]
        .iter()
        .map(|l| combined(l))
        .collect();
    assert_eq!(
        last,
        [
            ("GET / HTTP/1.1".to_string(), 200, AGENT.to_string()),
            (
                "GET /missing.html HTTP/1.1".to_string(),
                404,
                AGENT.to_string()
            ),
            ("GET /big.txt HTTP/1.1".to_string(), 206, AGENT.to_string()),
            (
                "GET /api/hello HTTP/1.1".to_string(),
                200,
                AGENT.to_string()
            ),
        ]
    );
    // The 206 line counts the range's 10 bytes.
    assert!(
        lines[lines.len() - 2].contains("\" 206 10 \""),
        "{lines:#?}"
    );
}

#[test]
fn a_sampled_log_on_stdout_writes_its_share_of_requests() {
    let node = start("mode = \"sampled\"\nrate = 0.5\n");
    for _ in 0..20 {
        let reply = node.get_with("/sampled.html", &[("user-agent", AGENT)]);
        assert_eq!(reply.status, 404, "{}", reply.describe());
    }
    let ours = || {
        node.stdout_lines()
            .into_iter()
            .filter(|l| l.contains("/sampled.html"))
            .collect::<Vec<_>>()
    };
    let lines = wait_for_lines(ours, 10);
    // Twenty requests in a row at rate 0.5: exactly every other one.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ours().len(), 10, "{lines:#?}");
    for line in lines {
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(json["status"], 404, "{line}");
    }
}

#[test]
fn check_config_accepts_an_access_log_and_names_a_mistake_with_its_fix() {
    let dir = temp_dir();
    let check = |table: &str| {
        let file = dir.path().join("node.toml");
        std::fs::write(&file, format!("name = \"a\"\n[access_log]\n{table}"))
            .expect("write node.toml");
        let mut command = std::process::Command::new(crate::support::makiatto_bin());
        command.arg("check-config").arg(&file);
        crate::support::run_command(command, Duration::from_secs(30))
    };
    let good = check(
        "mode = \"sampled\"\nrate = 0.5\nformat = \"combined\"\nfile = \"access.log\"\nkeep = 3\n",
    );
    assert!(good.success(), "{}", good.describe());
    let bad = check("mode = \"on\"\nformat = \"apache\"\n");
    assert!(!bad.success(), "{}", bad.describe());
    assert!(
        bad.stderr.contains(
            "node.toml:4:10: access_log.format \"apache\" is not \"json\" or \"combined\""
        ),
        "{}",
        bad.describe()
    );
}
