//! The Prometheus exposition: the real Prometheus scrapes a dev node and
//! its HTTP API shows the request, DNS and push counters moving after this
//! test's own requests, dig queries and git push; `promtool check metrics`
//! finds nothing wrong with the text; and by default the endpoint is not
//! reachable on the node's public address.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::cluster::Cluster;
use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Node, run_command, temp_dir, write_tree};

const SITE_CONFIG: &str = "[[domain]]\nname = \"example.com\"\npath = \"public\"\n";
/// How long Prometheus may take to start and to see a value.
const WAIT: Duration = Duration::from_secs(90);

/// A Prometheus server scraping one target every second, from a temp
/// config and data directory; killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Prometheus {
    fn scraping(target: SocketAddr) -> Prometheus {
        let dir = temp_dir();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: makiatto\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("create log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("run prometheus (Debian package `prometheus`)");
        let prometheus = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        prometheus.wait_for("up", |v| v == Some(1.0));
        prometheus
    }

    /// The value of `query` (one series summed), `None` when it has no
    /// series yet.
    fn value(&self, query: &str) -> Option<f64> {
        let url = format!("http://{}/api/v1/query", self.addr);
        let mut resp = ureq::get(&url).query("query", query).call().ok()?;
        let body = resp.body_mut().read_to_string().ok()?;
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        assert_eq!(json["status"], "success", "{body}");
        let result = json["data"]["result"].as_array()?;
        let first = result.first()?;
        first["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `query`'s value satisfies `ok`; panics with the last
    /// value and Prometheus's log otherwise.
    fn wait_for(&self, query: &str, ok: impl Fn(Option<f64>) -> bool) -> Option<f64> {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.value(query);
            if ok(value) {
                return value;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self._dir.path().join("prometheus.log"))
                    .unwrap_or_default();
                panic!("{query} is {value:?} after {WAIT:?}\n--- prometheus log ---\n{log}");
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port free a moment ago.
fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address")
}

/// The exposition text of the endpoint at `addr`.
fn scrape(addr: SocketAddr) -> String {
    let mut resp = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .unwrap_or_else(|e| panic!("GET http://{addr}/metrics: {e}"));
    resp.body_mut().read_to_string().expect("exposition text")
}

fn site_repo(client: &Client, dir: &Path) {
    init_repo(client, dir);
    write_tree(
        dir,
        &[
            ("makiatto.toml", SITE_CONFIG),
            ("public/index.html", "<h1>metrics</h1>"),
        ],
    );
    commit_all(client, dir, "first");
}

#[test]
fn prometheus_sees_request_dns_and_push_counters_move() {
    let client = Client::new();
    let node: Node = client.start_node();
    let metrics = node.listener("metrics");
    let prometheus = Prometheus::scraping(metrics);

    let before = |q: &str| prometheus.value(q).unwrap_or(0.0);
    let http_query =
        "sum(makiatto_http_requests_total{domain=\"example.com\",method=\"get\",status=\"2xx\"})";
    let dns_query = "sum(makiatto_dns_queries_total{type=\"A\",protocol=\"udp\"})";
    let push_query = "sum(makiatto_pushes_total{result=\"ok\"})";
    let deploy_query = "sum(makiatto_deploys_total)";
    let (http0, dns0, push0, deploy0) = (
        before(http_query),
        before(dns_query),
        before(push_query),
        before(deploy_query),
    );

    let work = client.scratch().join("site");
    site_repo(&client, &work);
    client.git_ok(&work, &["push", &repo_url(&node, "site"), "main"]);
    for _ in 0..5 {
        let reply = node.get_with("/", &[("host", "example.com")]);
        assert_eq!(reply.status, 200, "{}", reply.describe());
    }
    let dns = node.dns();
    for _ in 0..3 {
        let mut dig = Command::new("dig");
        dig.arg(format!("@{}", dns.ip()))
            .args(["-p", &dns.port().to_string(), "+tries=2", "+time=5"])
            .args(["example.com", "A"]);
        let out = run_command(dig, Duration::from_secs(30));
        assert!(out.stdout.contains("status: NOERROR"), "{}", out.describe());
    }

    prometheus.wait_for(http_query, |v| v.unwrap_or(0.0) >= http0 + 5.0);
    prometheus.wait_for(dns_query, |v| v.unwrap_or(0.0) >= dns0 + 3.0);
    // Each geographic answer counts the node it gave out: the dev node.
    prometheus.wait_for("sum(makiatto_dns_answers_total{node=\"dev\"})", |v| {
        v.unwrap_or(0.0) >= 3.0
    });
    prometheus.wait_for(push_query, |v| v.unwrap_or(0.0) >= push0 + 1.0);
    prometheus.wait_for(deploy_query, |v| v.unwrap_or(0.0) >= deploy0 + 1.0);
    // Bytes and latency moved with the requests.
    prometheus.wait_for(
        "sum(makiatto_http_response_bytes_total{domain=\"example.com\"})",
        |v| v.unwrap_or(0.0) >= 5.0 * "<h1>metrics</h1>".len() as f64,
    );
    prometheus.wait_for("makiatto_http_request_duration_seconds_count", |v| {
        v.unwrap_or(0.0) >= 5.0
    });
    prometheus.wait_for("makiatto_build_info", |v| v == Some(1.0));

    // promtool lints the same text Prometheus scraped.
    let text = scrape(metrics);
    let file = node.scratch().join("exposition.txt");
    std::fs::write(&file, &text).expect("write the exposition");
    let mut promtool = Command::new("sh");
    promtool
        .arg("-c")
        .arg(format!("promtool check metrics < '{}'", file.display()));
    let out = run_command(promtool, Duration::from_secs(30));
    assert!(
        out.success() && out.stdout.trim().is_empty() && out.stderr.trim().is_empty(),
        "promtool check metrics: {}\n--- exposition ---\n{text}",
        out.describe()
    );
}

#[test]
fn the_metrics_endpoint_is_not_on_the_public_address_by_default() {
    let mut cluster = Cluster::new(1);
    cluster.write_config(0, &cluster.base_config(0));
    cluster.start(0);
    let public = cluster.underlay_v4(0);
    let stdout = cluster.stdout(0);
    assert!(
        stdout
            .iter()
            .any(|l| l.trim() == "metrics 127.0.0.1:9470 (prometheus)"),
        "{stdout:?}"
    );
    // Inside the node's namespace, loopback answers.
    let text = cluster.within(Some(0), || scrape(SocketAddr::from(([127, 0, 0, 1], 9470))));
    assert!(text.contains("makiatto_build_info{version="), "{text}");
    // From another machine, the public address serves HTTP but no metrics.
    cluster.within(None, || {
        let http =
            TcpStream::connect_timeout(&SocketAddr::from((public, 80)), Duration::from_secs(5));
        assert!(http.is_ok(), "HTTP on {public}:80: {http:?}");
        let metrics =
            TcpStream::connect_timeout(&SocketAddr::from((public, 9470)), Duration::from_secs(5));
        assert!(metrics.is_err(), "metrics answered on {public}:9470");
    });
}
