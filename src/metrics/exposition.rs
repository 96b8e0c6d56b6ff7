//! The Prometheus text exposition (format 0.0.4) of every metric: the
//! counters of this module, and what other subsystems already know (mesh
//! peers, certificates, limits, the WebAssembly host, the process), read
//! at scrape time. Blocking: it reads the store; call it from a blocking
//! thread inside the runtime.

use std::fmt::Write;

use super::Metrics;
use super::deploys::{Events, OUTCOMES};
use super::histogram::HistogramView;
use super::http::{METHODS, STATUSES};
use crate::services::Services;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Text under construction, one metric family at a time.
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape(value));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], view: &HistogramView) {
        let bucket = format!("{name}_bucket");
        for (le, count) in &view.buckets {
            let le = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                le.to_string()
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, count);
        }
        self.sample(&format!("{name}_sum"), labels, view.sum_secs);
        self.sample(&format!("{name}_count"), labels, view.count);
    }

    fn events(&mut self, name: &str, what: &str, events: &Events) {
        self.family(
            &format!("{name}_total"),
            "counter",
            &format!("{what} by result."),
        );
        for (outcome, n) in OUTCOMES.iter().zip(events.counts()) {
            self.sample(&format!("{name}_total"), &[("result", outcome)], n);
        }
        self.family(
            &format!("{name}_duration_seconds"),
            "histogram",
            &format!("How long {what} took."),
        );
        self.histogram(
            &format!("{name}_duration_seconds"),
            &[],
            &events.duration.view(),
        );
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition of the node behind `services`.
pub fn render(metrics: &Metrics, services: &Services) -> String {
    let mut t = Text(String::with_capacity(16 * 1024));
    t.family(
        "makiatto_build_info",
        "gauge",
        "The running version; always 1.",
    );
    t.sample(
        "makiatto_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    process(&mut t, metrics);
    http(&mut t, metrics);
    dns(&mut t, metrics);
    let d = &metrics.deploys;
    t.events("makiatto_pushes", "git pushes", &d.pushes);
    t.events("makiatto_builds", "site builds", &d.builds);
    t.events(
        "makiatto_acme_orders",
        "certificate orders run by this node",
        &d.orders,
    );
    t.family(
        "makiatto_deploys_total",
        "counter",
        "Revisions activated by pushes.",
    );
    t.sample("makiatto_deploys_total", &[], d.deploys());
    limits(&mut t, services);
    certificates(&mut t, services);
    if let Some(mesh) = &services.mesh {
        mesh_peers(&mut t, mesh);
    }
    t.0
}

fn process(t: &mut Text, metrics: &Metrics) {
    t.family(
        "makiatto_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
    );
    t.sample(
        "makiatto_uptime_seconds",
        &[],
        metrics.started.elapsed().as_secs(),
    );
    if let Some(rss) = super::process::resident_bytes() {
        t.family(
            "makiatto_resident_memory_bytes",
            "gauge",
            "Resident set size of the process.",
        );
        t.sample("makiatto_resident_memory_bytes", &[], rss);
    }
    if let Some(fds) = super::process::open_files() {
        t.family(
            "makiatto_open_files",
            "gauge",
            "Open file descriptors of the process.",
        );
        t.sample("makiatto_open_files", &[], fds);
    }
}

fn http(t: &mut Text, metrics: &Metrics) {
    let h = &metrics.http;
    let domains = h.domains.all();
    t.family(
        "makiatto_http_requests_total",
        "counter",
        "HTTP requests answered, by site domain, method class and status class.",
    );
    for (domain, set) in &domains {
        for (m, row) in set.requests().iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                if *n > 0 {
                    t.sample(
                        "makiatto_http_requests_total",
                        &[
                            ("domain", domain),
                            ("method", METHODS[m]),
                            ("status", STATUSES[s]),
                        ],
                        n,
                    );
                }
            }
        }
    }
    t.family(
        "makiatto_http_response_bytes_total",
        "counter",
        "Response body bytes sent, by site domain.",
    );
    for (domain, set) in &domains {
        t.sample(
            "makiatto_http_response_bytes_total",
            &[("domain", domain)],
            set.bytes(),
        );
    }
    t.family(
        "makiatto_http_request_duration_seconds",
        "histogram",
        "Time from a request's head to its response.",
    );
    t.histogram(
        "makiatto_http_request_duration_seconds",
        &[],
        &h.latency.view(),
    );
    t.family(
        "makiatto_http_open_connections",
        "gauge",
        "HTTP and HTTPS connections open now.",
    );
    t.sample("makiatto_http_open_connections", &[], h.open_connections());
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let counters = [
        (
            "makiatto_tls_handshakes_total",
            "TLS handshakes completed on HTTPS.",
            &h.tls_handshakes,
        ),
        (
            "makiatto_tls_handshake_failures_total",
            "TLS handshakes on HTTPS that failed or timed out.",
            &h.tls_failures,
        ),
        (
            "makiatto_function_calls_total",
            "Requests answered by an edge function.",
            &h.function_calls,
        ),
        (
            "makiatto_function_traps_total",
            "Edge-function calls that failed (trap or error).",
            &h.function_traps,
        ),
        (
            "makiatto_function_timeouts_total",
            "Edge-function calls stopped for running out of time.",
            &h.function_timeouts,
        ),
        (
            "makiatto_proxy_requests_total",
            "Requests a proxy rule forwarded to its backend.",
            &h.proxy_requests,
        ),
        (
            "makiatto_proxy_failures_total",
            "Proxied requests answered 502 or 504 by the node: backend refused, unreachable, too slow or failing.",
            &h.proxy_failures,
        ),
    ];
    for (name, help, cell) in counters {
        t.family(name, "counter", help);
        t.sample(name, &[], load(cell));
    }
    let (written, dropped) = h.access_log.counts();
    t.family(
        "makiatto_access_log_lines_total",
        "counter",
        "Access log lines written.",
    );
    t.sample("makiatto_access_log_lines_total", &[], written);
    t.family(
        "makiatto_access_log_dropped_total",
        "counter",
        "Access log lines dropped because the writer fell behind.",
    );
    t.sample("makiatto_access_log_dropped_total", &[], dropped);
}

fn dns(t: &mut Text, metrics: &Metrics) {
    t.family(
        "makiatto_dns_queries_total",
        "counter",
        "DNS queries answered, by query type, response code and protocol.",
    );
    for (qtype, rcode, protocol, n) in metrics.dns.queries() {
        t.sample(
            "makiatto_dns_queries_total",
            &[("type", qtype), ("rcode", rcode), ("protocol", protocol)],
            n,
        );
    }
    t.family(
        "makiatto_dns_clients_total",
        "counter",
        "Geographic DNS answers, by the client's country from the GeoIP database.",
    );
    for (country, n) in metrics.dns.countries() {
        t.sample("makiatto_dns_clients_total", &[("country", &country)], n);
    }
    t.family(
        "makiatto_dns_answers_total",
        "counter",
        "Geographic DNS answers, by a node whose address they gave out.",
    );
    for (node, n) in metrics.dns.answers() {
        t.sample("makiatto_dns_answers_total", &[("node", &node)], n);
    }
}

fn limits(t: &mut Text, services: &Services) {
    let v = services.limited.view();
    t.family(
        "makiatto_limited_total",
        "counter",
        "Clients limited, by the limit applied.",
    );
    let named = [
        ("dns_dropped", v.dns_dropped),
        ("dns_slipped", v.dns_slipped),
        ("dns_tcp_refused", v.dns_tcp_refused),
        ("dns_formerr", v.dns_formerr),
        ("http_rate", v.http_rate),
        ("http_connections", v.http_connections),
        ("http_timeout", v.http_timeouts),
        ("http_body_too_large", v.http_body_too_large),
        ("ssh_auth", v.ssh_auth),
        ("ssh_connections", v.ssh_connections),
    ];
    for (limit, n) in named {
        t.sample("makiatto_limited_total", &[("limit", limit)], n);
    }
}

fn certificates(t: &mut Text, services: &Services) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut domains: Vec<String> = services
        .live
        .sites
        .load()
        .sites()
        .iter()
        .map(|s| s.domain.clone())
        .collect();
    domains.dedup();
    let mut rows = Vec::new();
    for domain in domains {
        if let Ok(status) = services.cert_status(&domain)
            && let Some(not_after) = status.not_after_ms
        {
            rows.push((domain, (not_after as i64 - now_ms) / 1000));
        }
    }
    t.family(
        "makiatto_certificate_expiry_seconds",
        "gauge",
        "Seconds until the domain's certificate expires (negative: expired).",
    );
    for (domain, secs) in rows {
        t.sample(
            "makiatto_certificate_expiry_seconds",
            &[("domain", &domain)],
            secs,
        );
    }
}

fn mesh_peers(t: &mut Text, mesh: &crate::mesh::Mesh) {
    let view = crate::mesh::status::local_view(mesh);
    t.family(
        "makiatto_mesh_objects_pending",
        "gauge",
        "Pointer rows waiting for their revision's content.",
    );
    t.sample("makiatto_mesh_objects_pending", &[], view.pending);
    t.family(
        "makiatto_mesh_peer_up",
        "gauge",
        "Whether this node sees the peer healthy (1) or down (0).",
    );
    for p in &view.peers {
        t.sample(
            "makiatto_mesh_peer_up",
            &[("peer", &p.name)],
            u8::from(p.healthy),
        );
    }
    t.family(
        "makiatto_mesh_replication_lag_seconds",
        "gauge",
        "Seconds since the last completed anti-entropy exchange with the peer.",
    );
    for p in &view.peers {
        if let Some(ms) = p.last_sync_ms_ago {
            t.sample(
                "makiatto_mesh_replication_lag_seconds",
                &[("peer", &p.name)],
                ms as f64 / 1000.0,
            );
        }
    }
    t.family(
        "makiatto_mesh_rpc_bytes_total",
        "counter",
        "Mesh RPC payload bytes, by peer and direction.",
    );
    for p in &view.peers {
        t.sample(
            "makiatto_mesh_rpc_bytes_total",
            &[("peer", &p.name), ("direction", "sent")],
            p.rpc_sent,
        );
        t.sample(
            "makiatto_mesh_rpc_bytes_total",
            &[("peer", &p.name), ("direction", "received")],
            p.rpc_received,
        );
    }
    t.family(
        "makiatto_mesh_wireguard_bytes_total",
        "counter",
        "WireGuard bytes, by peer and direction.",
    );
    for p in &view.peers {
        if let (Some(tx), Some(rx)) = (p.wg_tx, p.wg_rx) {
            t.sample(
                "makiatto_mesh_wireguard_bytes_total",
                &[("peer", &p.name), ("direction", "sent")],
                tx,
            );
            t.sample(
                "makiatto_mesh_wireguard_bytes_total",
                &[("peer", &p.name), ("direction", "received")],
                rx,
            );
        }
    }
}
