//! Hostile requests: path traversal in every spelling, overlong paths,
//! slow and oversized request heads. Sent over raw TCP, since HTTP clients
//! normalise `..` away before it reaches the server.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{Node, status_of, temp_dir, write_file};

/// Marker in a file beside (outside) the served directory.
const SECRET: &str = "TOP-SECRET-7f3a9c";

/// A site in `parent/site/`, with `parent/secret.txt` next to it.
fn guarded_node() -> (tempfile::TempDir, Node) {
    let parent = temp_dir();
    write_file(parent.path(), "secret.txt", SECRET);
    let site = parent.path().join("site");
    write_file(&site, "index.html", "<h1>home</h1>\n");
    write_file(&site, "sub/page.html", "<p>sub page</p>\n");
    let node = Node::start(&site);
    (parent, node)
}

fn get_raw(node: &Node, target: &str) -> crate::support::RawReply {
    let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    node.raw(request.as_bytes())
}

fn assert_rejected(node: &Node, target: &str) {
    let reply = get_raw(node, target);
    assert_eq!(reply.status, Some(400), "GET {target} got:\n{}", reply.text);
    assert!(
        !reply.text.contains(SECRET) && !reply.text.contains("root:"),
        "GET {target} leaked a file outside the site:\n{}",
        reply.text
    );
    let body = reply
        .text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    assert!(
        !body.trim().is_empty(),
        "GET {target}: a 400 should explain itself, got:\n{}",
        reply.text
    );
}

/// The node still answers an ordinary request: the hostile one before it
/// closed one connection, not the server.
fn assert_still_serves(node: &mut Node) {
    assert!(node.is_running(), "the node exited");
    let reply = get_raw(node, "/");
    assert_eq!(
        reply.status,
        Some(200),
        "GET / afterwards got:\n{}",
        reply.text
    );
    assert!(
        reply.text.contains("<h1>home</h1>"),
        "GET / afterwards got:\n{}",
        reply.text
    );
}

#[test]
fn dot_dot_segments_get_400() {
    let (_parent, node) = guarded_node();
    assert_rejected(&node, "/../secret.txt");
    assert_rejected(&node, "/../../../../etc/passwd");
    assert_rejected(&node, "/sub/../../secret.txt");
}

#[test]
fn percent_encoded_dot_dot_gets_400() {
    let (_parent, node) = guarded_node();
    assert_rejected(&node, "/%2e%2e/secret.txt");
    assert_rejected(&node, "/%2E%2E/%2E%2E/etc/passwd");
    assert_rejected(&node, "/.%2e/secret.txt");
    assert_rejected(&node, "/sub/%2e%2e/%2e%2e/secret.txt");
}

#[test]
fn dot_dot_with_an_encoded_slash_gets_400() {
    let (_parent, node) = guarded_node();
    assert_rejected(&node, "/..%2fsecret.txt");
    assert_rejected(&node, "/sub/..%2f..%2fsecret.txt");
    assert_rejected(&node, "/..%2Fsecret.txt");
}

#[test]
fn backslash_gets_400() {
    let (_parent, node) = guarded_node();
    assert_rejected(&node, "/..\\secret.txt");
    assert_rejected(&node, "/sub\\page.html");
}

#[test]
fn encoded_backslash_gets_400() {
    let (_parent, node) = guarded_node();
    assert_rejected(&node, "/..%5csecret.txt");
    assert_rejected(&node, "/..%5Csecret.txt");
}

#[test]
fn encoded_nul_gets_400() {
    let (_parent, node) = guarded_node();
    assert_rejected(&node, "/index.html%00");
    assert_rejected(&node, "/index.html%00.txt");
}

#[test]
fn ordinary_paths_still_work_beside_the_rejections() {
    let (_parent, node) = guarded_node();
    let reply = get_raw(&node, "/sub/page.html");
    assert_eq!(
        reply.status,
        Some(200),
        "GET /sub/page.html got:\n{}",
        reply.text
    );
    assert!(
        reply.text.contains("<p>sub page</p>"),
        "GET /sub/page.html got:\n{}",
        reply.text
    );
}

#[test]
fn path_over_2048_bytes_gets_414() {
    let (_parent, node) = guarded_node();
    let target = format!("/{}", "a".repeat(3000));
    let reply = get_raw(&node, &target);
    assert_eq!(
        reply.status,
        Some(414),
        "GET /aaa… ({} bytes) got:\n{}",
        target.len(),
        reply.text
    );
}

/// Reads until the server closes the connection; returns what it sent, or
/// panics if it is still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration, what: &str) -> String {
    stream
        .set_read_timeout(Some(limit))
        .expect("set read timeout");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "{what}: the connection was still open after {limit:?}; received so far: {:?}",
                String::from_utf8_lossy(&received)
            ),
            Err(e) => panic!("{what}: read failed: {e}"),
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn a_stalled_request_head_is_disconnected() {
    let (_parent, mut node) = guarded_node();
    let mut stream = TcpStream::connect(node.addr).expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .expect("send the partial head");
    // The header timeout is 10 s; the limit only stops a hung test.
    let received = read_until_closed(&mut stream, Duration::from_secs(40), "stalled request head");
    assert!(
        received.is_empty() || status_of(&received) == Some(408),
        "a stalled request head got a response other than 408 before the close: {received:?}"
    );
    assert_still_serves(&mut node);
}

#[test]
fn an_oversized_header_block_is_refused() {
    let (_parent, mut node) = guarded_node();
    let mut stream = TcpStream::connect(node.addr).expect("connect");
    let mut request = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..40 {
        request.push_str(&format!("X-Pad-{i}: {}\r\n", "p".repeat(1000)));
    }
    request.push_str("Connection: close\r\n\r\n");
    // The server may close before reading it all; the answer is what counts.
    let _ = stream.write_all(request.as_bytes());
    let received = read_until_closed(
        &mut stream,
        Duration::from_secs(40),
        "oversized header block",
    );
    let status = status_of(&received);
    assert!(
        status.is_none() || status == Some(431),
        "a {} byte request head got status {status:?} instead of 431 or a closed connection:\n{}",
        request.len(),
        received.chars().take(500).collect::<String>()
    );
    assert_still_serves(&mut node);
}
