//! The HTTPS listener of `makiatto dev --https` without a CA: a
//! self-signed certificate for the dev domains, HTTP/2 and HTTP/1.1 by
//! ALPN, and plain HTTP left alone (no redirect to a certificate browsers
//! would refuse). Driven with curl.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{CmdOutput, Node, run_command, temp_dir, write_tree};

const SITE: &[(&str, &str)] = &[
    (
        "makiatto.toml",
        "[[domain]]\nname = \"example.com\"\npath = \"public\"\naliases = [\"www.example.com\"]\nhsts_max_age = 300\n",
    ),
    ("public/index.html", "<h1>dev</h1>"),
];

fn dev_https_node() -> (tempfile::TempDir, Node) {
    let site = temp_dir();
    write_tree(site.path(), SITE);
    let node = Node::start_dev(
        site.path(),
        temp_dir(),
        &[OsStr::new("--https"), OsStr::new("127.0.0.1:0")],
    );
    (site, node)
}

/// One HTTPS request by `openssl s_client` to `https` for `host`, with
/// `session` either `-sess_out FILE` (save the session, tickets included)
/// or `-sess_in FILE` (offer it); its stdout says "New" or "Reused".
pub fn s_client(https: SocketAddr, host: &str, session: (&str, &Path)) -> CmdOutput {
    let mut sh = Command::new("sh");
    // -ign_eof with a request keeps the client reading until the server
    // closes, so it has the tickets TLS 1.3 sends after the handshake.
    sh.arg("-c").arg(format!(
        "printf 'GET / HTTP/1.1\\r\\nHost: {host}\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -connect {https} -servername {host} -ign_eof {} {}",
        session.0,
        session.1.display()
    ));
    run_command(sh, Duration::from_secs(30))
}

fn curl(https: SocketAddr, host: &str, args: &[&str]) -> CmdOutput {
    let mut curl = Command::new("curl");
    curl.args([
        "-sS",
        "-v",
        "-D",
        "-",
        "-w",
        "\n%{http_code} %{http_version}",
    ])
    .arg("--resolve")
    .arg(format!("{host}:{}:127.0.0.1", https.port()))
    .args(args)
    .arg(format!("https://{host}:{}/", https.port()));
    run_command(curl, Duration::from_secs(30))
}

#[test]
fn dev_without_a_ca_serves_its_domains_with_a_self_signed_certificate_over_h2_and_http1() {
    let (_site, node) = dev_https_node();
    let https = node.listener("https");

    for host in ["example.com", "www.example.com"] {
        for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
            let out = curl(https, host, &["-k", flag]);
            assert!(out.success(), "curl -k {flag} {host}: {}", out.describe());
            assert!(out.stdout.contains("<h1>dev</h1>"), "{}", out.describe());
            assert!(
                out.stdout.trim_end().ends_with(&format!("200 {version}")),
                "{}",
                out.describe()
            );
            assert!(
                out.stderr.contains("makiatto dev (self-signed)"),
                "not the self-signed certificate: {}",
                out.stderr
            );
            // No HSTS for a certificate browsers would refuse.
            assert!(
                !out.stdout
                    .to_ascii_lowercase()
                    .contains("strict-transport-security"),
                "{}",
                out.describe()
            );
        }
    }

    // It names the site's hosts (and previews, and the name servers).
    let mut openssl = Command::new("sh");
    openssl.arg("-c").arg(format!(
        "openssl s_client -connect 127.0.0.1:{} -servername www.example.com </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName",
        https.port()
    ));
    let sans = run_command(openssl, Duration::from_secs(30));
    assert!(
        sans.stdout.contains(
            "DNS:example.com, DNS:www.example.com, DNS:*.preview.example.com, DNS:*.rev.example.com, DNS:*.ns.example.com"
        ),
        "{}",
        sans.describe()
    );

    // Without -k the certificate is (rightly) not trusted.
    let strict = curl(https, "example.com", &[]);
    assert!(
        !strict.success(),
        "a self-signed certificate was trusted: {}",
        strict.describe()
    );

    // Plain HTTP keeps serving: no redirect to a self-signed certificate.
    let plain = node.get_with("/", &[("host", "example.com")]);
    assert_eq!(plain.status, 200, "{}", plain.describe());
    assert_eq!(plain.text(), "<h1>dev</h1>");
    let status = node.admin(&["status"]);
    assert!(status.success(), "{}", status.describe());
}

#[test]
fn https_refuses_garbage_and_keeps_serving() {
    let (_site, node) = dev_https_node();
    let https = node.listener("https");
    // Not TLS at all: the handshake fails, the listener survives.
    let reply = crate::support::raw_exchange(https, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(
        reply.status, None,
        "plain HTTP on the TLS port: {}",
        reply.text
    );
    let out = curl(https, "example.com", &["-k"]);
    assert!(out.success(), "{}", out.describe());
    assert!(out.stdout.contains("<h1>dev</h1>"));
}

#[test]
fn a_returning_visitor_resumes_its_tls_session_even_after_the_node_restarts() {
    let (site, node) = dev_https_node();
    let scratch = temp_dir();
    let session = scratch.path().join("session.pem");

    let first = s_client(
        node.listener("https"),
        "example.com",
        ("-sess_out", &session),
    );
    assert!(
        first.stdout.contains("New, TLSv1.3"),
        "first visit: {}",
        first.describe()
    );
    assert!(
        first.stdout.contains("<h1>dev</h1>"),
        "{}",
        first.describe()
    );
    let again = s_client(
        node.listener("https"),
        "example.com",
        ("-sess_in", &session),
    );
    assert!(
        again.stdout.contains("Reused, TLSv1.3"),
        "the session did not resume: {}",
        again.describe()
    );

    // The ticket keys live in the store: a restarted node (on another
    // port, with a new self-signed certificate) still opens the ticket.
    let dir = node.stop_keeping_data();
    let node = Node::start_dev(
        site.path(),
        dir,
        &[OsStr::new("--https"), OsStr::new("127.0.0.1:0")],
    );
    let after = s_client(
        node.listener("https"),
        "example.com",
        ("-sess_in", &session),
    );
    assert!(
        after.stdout.contains("Reused, TLSv1.3"),
        "the session did not resume after a restart: {}",
        after.describe()
    );
    assert!(
        after.stdout.contains("<h1>dev</h1>"),
        "{}",
        after.describe()
    );
}
