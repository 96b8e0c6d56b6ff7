//! Per-client limits on every public listener, each shown the same way: a
//! flooding client is limited with a clear answer (DNS: truncated answers
//! and drops; HTTP: 429; SSH: a refusal line) while a second client, at
//! another loopback address, is served normally, and `status` counts the
//! events. Real clients throughout: dig, curl, OpenSSH; the DNS flood is a
//! test-side UDP sender, bounded in count and time.

use std::ffi::OsStr;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::support::git::Client;
use crate::support::{CmdOutput, Node, run_command, temp_dir, write_file};

/// The flooding client's address: another /24 than 127.0.0.1, so DNS's
/// per-prefix limit tells the two clients apart.
const FLOODER: &str = "127.0.9.1";
/// The well-behaved client.
const NEIGHBOUR: &str = "127.0.0.1";
/// The longest a flood runs.
const FLOOD_TIME: Duration = Duration::from_secs(30);

/// A dev node serving `example.com` with `limits` as its node.toml's
/// `[limits]` tables, and `extra` arguments.
fn node_with(limits: &str, extra: &[&OsStr]) -> Node {
    let dir = temp_dir();
    let site = dir.path().join("site");
    write_file(&site, "public/index.html", "hello");
    write_file(
        &site,
        "makiatto.toml",
        "[[domain]]\nname = \"example.com\"\npath = \"public\"\n",
    );
    write_file(
        dir.path(),
        "node.toml",
        format!("name = \"london\"\nipv4 = \"198.51.100.1\"\n\n{limits}"),
    );
    let config = dir.path().join("node.toml");
    let mut args = vec![OsStr::new("--config"), config.as_os_str()];
    args.extend_from_slice(extra);
    Node::start_dev(&site, dir, &args)
}

/// `dig @DNS -b FROM ARGS`.
fn dig(dns: SocketAddr, from: &str, args: &[&str]) -> CmdOutput {
    let mut command = Command::new("dig");
    command
        .arg(format!("@{}", dns.ip()))
        .args(["-p", &dns.port().to_string(), "-b", from])
        .args(["+tries=1", "+time=3"])
        .args(args);
    run_command(command, Duration::from_secs(30))
}

/// The header flags dig printed (`qr aa tc ...`).
fn flags(out: &CmdOutput) -> Vec<String> {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .map(|f| {
            f.split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What the flood got back, by kind.
#[derive(Debug, Default)]
struct FloodTally {
    sent: u64,
    answered: u64,
    truncated: u64,
    elapsed: Duration,
}

/// Sends A queries for example.com from `FLOODER` as fast as it can until
/// `stop`, `limit` queries or `FLOOD_TIME`, counting the replies on a
/// second thread.
fn flood(dns: SocketAddr, limit: u64, stop: Arc<AtomicBool>) -> FloodTally {
    let socket = UdpSocket::bind((FLOODER, 0)).expect("bind the flooding socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    let receiver = socket.try_clone().expect("clone the socket");
    let counting = thread::spawn(move || {
        let mut tally = (0u64, 0u64);
        let mut buf = [0u8; 2048];
        while let Ok(n) = receiver.recv(&mut buf) {
            if let Ok(reply) = Message::from_vec(&buf[..n]) {
                if reply.metadata.truncation {
                    tally.1 += 1;
                } else if !reply.answers.is_empty() {
                    tally.0 += 1;
                }
            }
        }
        tally
    });
    let started = Instant::now();
    let mut sent = 0;
    while sent < limit && !stop.load(Ordering::Relaxed) && started.elapsed() < FLOOD_TIME {
        let mut query = Message::new(sent as u16, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(
            Name::from_ascii("example.com.").expect("name"),
            RecordType::A,
        ));
        query.edns = Some(Edns::new());
        let bytes = query.to_vec().expect("encode");
        if socket.send_to(&bytes, dns).is_ok() {
            sent += 1;
        }
        if sent.is_multiple_of(64) {
            // Let loopback breathe so replies are not lost to a full buffer.
            thread::sleep(Duration::from_millis(1));
        }
    }
    let elapsed = started.elapsed();
    let (answered, truncated) = counting.join().expect("the counting thread");
    FloodTally {
        sent,
        answered,
        truncated,
        elapsed,
    }
}

#[test]
fn a_dns_flood_is_answered_at_the_rate_with_truncated_answers_while_another_client_is_not() {
    const RATE: u64 = 20;
    let node = node_with("[limits.dns]\nrate = 20\nslip = 2\n", &[]);
    let dns = node.dns();

    let stop = Arc::new(AtomicBool::new(false));
    let flooding = {
        let stop = stop.clone();
        // Runs until the checks below are done (bounded by FLOOD_TIME).
        thread::spawn(move || flood(dns, u64::MAX, stop))
    };
    thread::sleep(Duration::from_millis(300));

    // Under the flood, the flooder's own resolver gets truncated answers
    // (or nothing) over UDP, and its answer over TCP, as a real resolver
    // retries; the neighbour is answered normally.
    let mut saw_tc = false;
    // Half the limited responses are dropped (slip 2), so a try may time out.
    for _ in 0..40 {
        let out = dig(dns, FLOODER, &["+ignore", "example.com", "A"]);
        if flags(&out).iter().any(|f| f == "tc") {
            saw_tc = true;
            break;
        }
    }
    let over_tcp = dig(dns, FLOODER, &["+tcp", "example.com", "A"]);
    let neighbour = dig(dns, NEIGHBOUR, &["example.com", "A"]);
    stop.store(true, Ordering::Relaxed);
    let tally = flooding.join().expect("the flood thread");

    assert!(
        saw_tc,
        "no truncated answer reached dig from the flooding prefix"
    );
    assert!(
        over_tcp.stdout.contains("status: NOERROR") && over_tcp.stdout.contains("198.51.100.1"),
        "the flooder's retry over TCP was not answered: {}",
        over_tcp.describe()
    );
    assert!(
        neighbour.stdout.contains("status: NOERROR")
            && neighbour.stdout.contains("198.51.100.1")
            && !flags(&neighbour).iter().any(|f| f == "tc"),
        "the neighbour was not answered normally: {}",
        neighbour.describe()
    );
    // At most the burst (one second's worth) plus the rate over the flood's
    // length, plus the queries dig sent from the same prefix.
    let allowed = RATE + RATE * (tally.elapsed.as_secs() + 1) + 20;
    println!(
        "flood: sent {} in {:?}, answered {}, truncated {} (rate {RATE}/s)",
        tally.sent, tally.elapsed, tally.answered, tally.truncated
    );
    assert!(
        tally.sent > 10 * allowed,
        "the flood was too small to test: {tally:?}"
    );
    assert!(
        tally.answered <= allowed,
        "{} answers passed a {RATE}/s limit in {:?}: {tally:?}",
        tally.answered,
        tally.elapsed
    );
    assert!(
        tally.truncated > 0,
        "no slipped answer reached the flooder: {tally:?}"
    );

    let status = node.admin(&["status"]);
    assert!(
        status.stdout.contains("dns slipped") && status.stdout.contains("dns dropped"),
        "status does not count the limited responses: {}",
        status.describe()
    );
}

#[test]
fn whitelisted_prefixes_are_never_rate_limited() {
    let node = node_with(
        &format!("[limits.dns]\nrate = 1\nslip = 1\nwhitelist = [\"{FLOODER}/24\"]\n"),
        &[],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tally = flood(node.dns(), 2000, stop);
    assert_eq!(tally.truncated, 0, "{tally:?}");
    assert!(tally.answered > 100, "{tally:?}");
}

#[test]
fn short_dns_messages_get_formerr_when_they_carry_an_id() {
    let node = node_with("", &[]);
    let socket = UdpSocket::bind((NEIGHBOUR, 0)).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    for len in 2..12 {
        let message: Vec<u8> = [0xbe, 0xef, 0x01]
            .iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(len)
            .collect();
        socket.send_to(&message, node.dns()).expect("send");
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no reply to {len} bytes: {e}"));
        let reply = Message::from_vec(&buf[..n]).expect("a well-formed reply");
        assert_eq!(reply.metadata.id, 0xbeef, "{len} bytes");
        assert_eq!(
            reply.metadata.response_code,
            hickory_proto::op::ResponseCode::FormErr,
            "{len} bytes"
        );
    }
    // One byte holds no id: nothing a client could match, so no reply.
    socket.send_to(&[0xbe], node.dns()).expect("send");
    assert!(
        socket.recv(&mut buf).is_err(),
        "a one-byte message was answered"
    );
    let status = node.admin(&["status"]);
    assert!(
        status.stdout.contains("dns formerr 10"),
        "{}",
        status.describe()
    );
}

/// `curl --interface FROM ARGS URLS`, printing each response's status code
/// (one connection for all the URLs).
fn curl(from: &str, args: &[&str], urls: &[&str]) -> CmdOutput {
    let mut command = Command::new("curl");
    command
        .args(["-s", "-w", "%{http_code}\\n", "--max-time", "20"])
        .args(["--interface", from])
        .args(args);
    for url in urls {
        command.args(["-o", "/dev/null", url]);
    }
    run_command(command, Duration::from_secs(60))
}

fn codes(out: &CmdOutput) -> Vec<u16> {
    out.stdout
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn a_flooding_http_client_gets_429_while_another_gets_200() {
    let node = node_with(
        "[limits.http]\nwhitelist = []\nrequests_per_second = 2\nrequest_burst = 5\nmax_body_bytes = 100\n",
        &[],
    );
    let url = node.url("/");
    // One curl run reuses its connection for every URL: a burst.
    let urls: Vec<&str> = std::iter::repeat_n(url.as_str(), 30).collect();
    let flood = codes(&curl(FLOODER, &[], &urls));
    let ok = flood.iter().filter(|c| **c == 200).count();
    let limited = flood.iter().filter(|c| **c == 429).count();
    assert_eq!(flood.len(), 30, "{flood:?}");
    assert!(
        (5..=8).contains(&ok),
        "the burst of 5 (and the refill) passed: {flood:?}"
    );
    assert!(limited >= 22, "the rest got 429: {flood:?}");

    assert_eq!(codes(&curl(NEIGHBOUR, &[], &[&url])), [200]);

    // A declared body over the limit is refused before it is read.
    let body = "x".repeat(1000);
    let posted = codes(&curl(NEIGHBOUR, &["-X", "POST", "--data", &body], &[&url]));
    assert_eq!(posted, [413]);

    let status = node.admin(&["status"]);
    assert!(
        status.stdout.contains(&format!("http 429 rate {limited}"))
            && status.stdout.contains("http 413 1"),
        "{}",
        status.describe()
    );
}

#[test]
fn a_client_over_its_connection_share_gets_429_and_another_is_served() {
    let node = node_with(
        "[limits.http]\nwhitelist = []\nconnections_per_client = 2\n",
        &[],
    );
    // Two idle connections from the flooder hold its share.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(node.addr).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(200));
    let third =
        crate::support::raw_exchange(node.addr, b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n");
    assert_eq!(third.status, Some(429), "{}", third.text);
    assert!(
        third.text.contains("too many connections"),
        "{}",
        third.text
    );
    assert_eq!(codes(&curl("127.0.0.2", &[], &[&node.url("/")])), [200]);
    drop(held);
    let status = node.admin(&["status"]);
    assert!(
        status.stdout.contains("http 429 connections 1"),
        "{}",
        status.describe()
    );
}

#[test]
fn a_client_that_never_reads_its_response_is_disconnected() {
    let dir = temp_dir();
    let site = dir.path().join("site");
    // Larger than loopback's socket buffers on both sides.
    let big = vec![b'a'; 48 * 1024 * 1024];
    write_file(&site, "public/big.bin", &big);
    write_file(&site, "public/index.html", "hello");
    write_file(
        &site,
        "makiatto.toml",
        "[[domain]]\nname = \"example.com\"\npath = \"public\"\n",
    );
    write_file(
        dir.path(),
        "node.toml",
        "name = \"london\"\n[limits.http]\nsend_timeout_secs = 1\n",
    );
    let config = dir.path().join("node.toml");
    let node = Node::start_dev(&site, dir, &[OsStr::new("--config"), config.as_os_str()]);
    let mut stream = TcpStream::connect(node.addr).expect("connect");
    stream
        .write_all(
            b"GET /big.bin HTTP/1.1\r\nhost: example.com\r\naccept-encoding: identity\r\n\r\n",
        )
        .expect("send the request");
    // Read nothing; the node gives up on the write and counts it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = node.admin(&["status"]);
        if status.stdout.contains("http timeouts 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection was never closed: {}",
            status.describe()
        );
        thread::sleep(Duration::from_millis(250));
    }
    drop(stream);
    assert_eq!(node.get("/").status, 200);
}

/// `ssh -v -b FROM -p PORT git@127.0.0.1 status` as `client`.
fn ssh_from(client: &Client, node: &Node, from: &str) -> CmdOutput {
    let mut command = Command::new("sh");
    command.arg("-c").arg(format!(
        "{} -v -b {from} -p {} git@127.0.0.1 status",
        client.ssh_command(),
        node.ssh_port()
    ));
    run_command(command, Duration::from_secs(60))
}

#[test]
fn an_ssh_client_failing_authentication_is_refused_while_another_gets_in() {
    let owner = Client::new();
    let stranger = Client::new();
    let node = {
        let dir = temp_dir();
        write_file(
            dir.path(),
            "node.toml",
            "name = \"london\"\n[limits.ssh]\nauth_failures_per_minute = 3\n",
        );
        let config = dir.path().join("node.toml");
        let node = Node::start_bare(&[
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--authorized-key"),
            owner.public_key.as_os_str(),
        ]);
        drop(dir);
        node
    };
    // Three refused attempts (one key offered per connection) use the
    // stranger's budget; the fourth connection is told why and closed.
    for attempt in 1..=3 {
        let out = ssh_from(&stranger, &node, "127.0.0.2");
        assert!(
            !out.success() && out.stderr.contains("Permission denied"),
            "attempt {attempt}: {}",
            out.describe()
        );
    }
    let refused = ssh_from(&stranger, &node, "127.0.0.2");
    assert!(!refused.success(), "{}", refused.describe());
    assert!(
        refused
            .stderr
            .contains("too many failed authentication attempts from your address"),
        "the refusal does not say why: {}",
        refused.describe()
    );
    // The owner, from another address, is not affected.
    let status = ssh_from(&owner, &node, "127.0.0.1");
    assert!(status.success(), "{}", status.describe());
    assert!(
        status.stdout.contains("ssh auth 1"),
        "{}",
        status.describe()
    );
}

/// Whether the server closes `stream` (end of file or a reset) before
/// `limit` passes without the client sending anything.
fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).expect("read timeout");
    let mut byte = [0u8; 1];
    match std::io::Read::read(stream, &mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

#[test]
fn dns_over_tcp_and_tls_cap_each_clients_connections_and_close_idle_ones() {
    let node = node_with(
        "[limits.dns]\ntcp_connections_per_client = 2\n",
        &[OsStr::new("--dot"), OsStr::new("127.0.0.1:0")],
    );
    let tcp = node.dns();
    let dot = node.listener("dot");
    // 127.0.0.1 opens its share of idle connections on both listeners.
    let mut held: Vec<TcpStream> = [tcp, tcp, dot, dot]
        .iter()
        .map(|addr| TcpStream::connect(addr).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(300));
    for addr in [tcp, dot] {
        let mut third = TcpStream::connect(addr).expect("connect");
        assert!(
            closed_by_server(&mut third, Duration::from_secs(5)),
            "a connection over the client's share of {addr} was kept open"
        );
    }

    // Another client is answered over both meanwhile.
    let answer = dig(tcp, FLOODER, &["+tcp", "example.com", "A"]);
    assert!(
        answer.stdout.contains("status: NOERROR") && answer.stdout.contains("198.51.100.1"),
        "{}",
        answer.describe()
    );
    let mut kdig = Command::new("kdig");
    kdig.arg(format!("@{}", dot.ip()))
        .args(["-p", &dot.port().to_string(), "-b", FLOODER])
        .args([
            "+tls",
            "+tls-sni=london.ns.example.com",
            "+retry=0",
            "+time=5",
        ])
        .args(["example.com", "A"]);
    let answer = run_command(kdig, Duration::from_secs(30));
    assert!(
        answer.stdout.contains("NOERROR") && answer.stdout.contains("198.51.100.1"),
        "kdig +tls: {}",
        answer.describe()
    );

    // The idle ones (no query; on DNS over TLS, no handshake) are closed.
    for stream in &mut held {
        assert!(
            closed_by_server(stream, Duration::from_secs(60)),
            "an idle DNS connection was never closed"
        );
    }
    let status = node.admin(&["status"]);
    assert!(
        status.stdout.contains("dns tcp refused 2"),
        "{}",
        status.describe()
    );
}
