//! The authoritative GeoDNS server, driven by the real `dig` and `kdig`
//! against a `makiatto dev` node that knows three nodes (London, Seattle,
//! Tokyo) and locates clients with the shared GeoIP test database. Client
//! geography comes only from EDNS Client Subnet, never from real traffic.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::git::Client;
use crate::support::{Node, Xorshift, run_command, temp_dir, write_file};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

/// How long a change (health, redeploy) may take to reach DNS answers; only
/// reached when the product is broken.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);

const LONDON_V4: &str = "192.0.2.1";
const SEATTLE_V4: &str = "198.51.100.1";
const TOKYO_V4: &str = "203.0.113.1";
const TOKYO_V6: &str = "2001:db8::3";

/// The GeoIP test database kept with the tests (`tests/fixtures/geoip/`).
fn geoip_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip/GeoLite2-City-Test.mmdb")
}

const SITE_CONFIG: &str = r#"
[[domain]]
name = "example.com"
path = "public"
aliases = ["www.example.com"]

[[domain.records]]
type = "MX"
value = "mail.example.com"
priority = 10

[[domain.records]]
type = "A"
name = "mail"
value = "192.0.2.25"

[[domain.records]]
type = "TXT"
value = "v=spf1 mx -all"

[[domain.records]]
type = "CNAME"
name = "docs"
value = "pages.example.org"

[[domain.records]]
type = "SRV"
name = "_sip._tcp"
value = "sip.example.com"
priority = 10
weight = 5
port = 5060
"#;

/// A `makiatto dev` node (the shared harness) with DNS and three nodes.
struct DnsNode {
    node: Node,
    dns: SocketAddr,
}

impl DnsNode {
    /// Starts a node whose site carries `SITE_CONFIG` plus `extra` TOML.
    fn start(extra: &str) -> DnsNode {
        DnsNode::start_with(extra, &[])
    }

    /// As [`DnsNode::start`], with more `makiatto dev` arguments.
    fn start_with(extra: &str, args: &[&OsStr]) -> DnsNode {
        let dir = temp_dir();
        let site = dir.path().join("site");
        write_file(&site, "public/index.html", "hello");
        write_file(&site, "makiatto.toml", format!("{SITE_CONFIG}{extra}"));
        let node_toml = dir.path().join("node.toml");
        write_file(
            dir.path(),
            "node.toml",
            format!(
                r#"name = "london"
ipv4 = "{LONDON_V4}"
ipv6 = "2001:db8::1"
latitude = 51.51
longitude = -0.13

[dns]
geoip_db = "{}"

[[nodes]]
name = "seattle"
ipv4 = "{SEATTLE_V4}"
ipv6 = "2001:db8::2"
latitude = 47.61
longitude = -122.33

[[nodes]]
name = "tokyo"
ipv4 = "{TOKYO_V4}"
ipv6 = "{TOKYO_V6}"
latitude = 35.68
longitude = 139.69
"#,
                geoip_fixture().display()
            ),
        );
        let mut dev_args = vec![OsStr::new("--config"), node_toml.as_os_str()];
        dev_args.extend_from_slice(args);
        let node = Node::start_dev(&site, dir, &dev_args);
        let dns = node.dns();
        DnsNode { node, dns }
    }

    /// Runs `tool @ADDR -p PORT ARGS` (dig or kdig) and parses its output.
    fn ask(&self, tool: &str, args: &[&str]) -> Reply {
        let mut command = Command::new(tool);
        command
            .arg(format!("@{}", self.dns.ip()))
            .args(["-p", &self.dns.port().to_string()])
            .args(if tool == "kdig" {
                ["+retry=1", "+timeout=5"]
            } else {
                ["+tries=2", "+time=5"]
            })
            .args(args);
        let out = run_command(command, Duration::from_secs(30));
        Reply::parse(&out.stdout)
    }

    fn dig(&self, args: &[&str]) -> Reply {
        self.ask("dig", args)
    }

    /// `makiatto ARGS --data DATA`, which must succeed.
    fn admin(&self, args: &[&str]) {
        let out = self.node.admin(args);
        assert!(
            out.success(),
            "makiatto {args:?} failed: {}",
            out.describe()
        );
    }

    /// Sends one raw UDP message and waits for the reply.
    fn udp_exchange(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        socket.send_to(bytes, self.dns).expect("send");
        let mut buf = [0u8; 65535];
        let n = socket.recv(&mut buf).ok()?;
        Some(buf[..n].to_vec())
    }
}

/// What dig or kdig printed, by section.
#[derive(Debug, Default)]
struct Reply {
    status: String,
    flags: Vec<String>,
    answer: Vec<Vec<String>>,
    authority: Vec<Vec<String>>,
    additional: Vec<Vec<String>>,
    /// The CLIENT-SUBNET option as printed (`81.2.69.142/32/31`).
    subnet: Option<String>,
    text: String,
}

impl Reply {
    fn parse(text: &str) -> Reply {
        let mut reply = Reply {
            text: text.to_string(),
            ..Reply::default()
        };
        let mut section = "";
        for line in text.lines() {
            let lower = line.to_ascii_lowercase();
            if let Some(at) = lower.find("status: ") {
                reply.status = line[at + 8..]
                    .split([',', ';'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string();
            }
            if let Some(at) = lower.find("flags: ")
                && lower.starts_with(";;")
            {
                reply.flags = line[at + 7..]
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
            }
            if let Some(at) = line.find("CLIENT-SUBNET: ") {
                reply.subnet = Some(line[at + 15..].trim().to_string());
            }
            if line.starts_with(";;") && line.contains("SECTION:") {
                section = if line.contains("ANSWER") {
                    "answer"
                } else if line.contains("AUTHORITY") {
                    "authority"
                } else if line.contains("ADDITIONAL") {
                    "additional"
                } else {
                    ""
                };
                continue;
            }
            if line.trim().is_empty() || line.starts_with(';') {
                if line.trim().is_empty() {
                    section = "";
                }
                continue;
            }
            let fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            match section {
                "answer" => reply.answer.push(fields),
                "authority" => reply.authority.push(fields),
                "additional" => reply.additional.push(fields),
                _ => {}
            }
        }
        reply
    }

    /// The data of answer records of `rtype`, sorted.
    fn answers(&self, rtype: &str) -> Vec<String> {
        data_of(&self.answer, rtype)
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// The record data (after name, TTL, class, type) of records of `rtype`.
fn data_of(records: &[Vec<String>], rtype: &str) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .filter(|r| r.get(3).is_some_and(|t| t == rtype))
        .map(|r| r[4..].join(" "))
        .collect();
    out.sort();
    out
}

/// Polls `dig ARGS` until `want` holds for its reply, or fails with the last one.
fn eventually(node: &DnsNode, args: &[&str], what: &str, want: impl Fn(&Reply) -> bool) {
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let reply = node.dig(args);
        if want(&reply) {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: still not true after {CHANGE_TIMEOUT:?}; last reply:\n{}",
                reply.text
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ecs_sends_each_client_to_its_nearest_node_and_echoes_the_scope() {
    let node = DnsNode::start("");
    let london = node.dig(&["+subnet=81.2.69.142/32", "example.com", "A"]);
    assert_eq!(london.answers("A"), vec![LONDON_V4], "{}", london.text);
    assert!(london.has_flag("aa"), "{}", london.text);
    // The database network is 81.2.69.142/31: the answer holds for all of it.
    assert_eq!(london.subnet.as_deref(), Some("81.2.69.142/32/31"));

    let seattle = node.dig(&["+subnet=216.160.83.56/32", "www.example.com", "A"]);
    assert_eq!(seattle.answers("A"), vec![SEATTLE_V4], "{}", seattle.text);

    let tokyo = node.ask("kdig", &["+subnet=175.16.199.0/24", "example.com", "A"]);
    assert_eq!(tokyo.answers("A"), vec![TOKYO_V4], "{}", tokyo.text);

    for (rtype, want) in [("A", TOKYO_V4), ("AAAA", TOKYO_V6)] {
        let v6 = node.dig(&["+subnet=2001:218::/32", "example.com", rtype]);
        assert_eq!(v6.answers(rtype), vec![want], "{}", v6.text);
        let v6 = node.ask("kdig", &["+subnet=2001:218::/32", "example.com", rtype]);
        assert_eq!(v6.answers(rtype), vec![want], "{}", v6.text);
    }

    // A record that does not depend on location has scope 0.
    let mx = node.dig(&["+subnet=81.2.69.142/32", "example.com", "MX"]);
    assert_eq!(mx.subnet.as_deref(), Some("81.2.69.142/32/0"));
}

#[test]
fn clients_without_a_known_location_get_every_healthy_node() {
    let node = DnsNode::start("");
    // From loopback, no ECS: the database does not know 127.0.0.1.
    let all = node.dig(&["example.com", "A"]);
    assert_eq!(
        all.answers("A"),
        vec![LONDON_V4, SEATTLE_V4, TOKYO_V4],
        "{}",
        all.text
    );
    let v6 = node.ask("kdig", &["example.com", "AAAA"]);
    assert_eq!(
        v6.answers("AAAA"),
        vec!["2001:db8::1", "2001:db8::2", TOKYO_V6],
        "{}",
        v6.text
    );
}

#[test]
fn a_node_marked_down_loses_its_visitors_until_it_is_back_up() {
    let node = DnsNode::start("");
    let ask = ["+subnet=81.2.69.142/32", "example.com", "A"];
    assert_eq!(node.dig(&ask).answers("A"), vec![LONDON_V4]);

    node.admin(&["node", "health", "london", "down"]);
    // Seattle (7,700 km) is nearer London than Tokyo (9,560 km).
    eventually(&node, &ask, "London's client goes to Seattle", |r| {
        r.answers("A") == [SEATTLE_V4]
    });
    let all = node.dig(&["example.com", "A"]);
    assert_eq!(all.answers("A"), vec![SEATTLE_V4, TOKYO_V4], "{}", all.text);

    node.admin(&["node", "health", "london", "up"]);
    eventually(&node, &ask, "London's client comes back", |r| {
        r.answers("A") == [LONDON_V4]
    });
}

#[test]
fn soa_ns_glue_caa_mx_txt_cname_and_srv_are_served_as_configured() {
    let node = DnsNode::start("");
    let soa = node.dig(&["example.com", "SOA"]);
    let soa_data = soa.answers("SOA");
    assert_eq!(soa_data.len(), 1, "{}", soa.text);
    assert!(
        soa_data[0].starts_with("london.ns.example.com. hostmaster.example.com. "),
        "{}",
        soa.text
    );

    let ns = node.ask("kdig", &["example.com", "NS"]);
    assert_eq!(
        ns.answers("NS"),
        vec![
            "london.ns.example.com.",
            "seattle.ns.example.com.",
            "tokyo.ns.example.com."
        ],
        "{}",
        ns.text
    );
    assert_eq!(
        data_of(&ns.additional, "A"),
        vec![LONDON_V4, SEATTLE_V4, TOKYO_V4],
        "{}",
        ns.text
    );
    assert_eq!(data_of(&ns.additional, "AAAA").len(), 3, "{}", ns.text);
    let glue = node.dig(&["tokyo.ns.example.com", "A"]);
    assert_eq!(glue.answers("A"), vec![TOKYO_V4]);
    assert!(glue.has_flag("aa"));

    let caa = node.dig(&["example.com", "CAA"]);
    assert_eq!(
        caa.answers("CAA"),
        vec!["0 issue \"letsencrypt.org\""],
        "{}",
        caa.text
    );

    let mx = node.dig(&["EXAMPLE.com", "MX"]);
    assert_eq!(
        mx.answers("MX"),
        vec!["10 mail.example.com."],
        "{}",
        mx.text
    );
    assert_eq!(data_of(&mx.additional, "A"), vec!["192.0.2.25"]);

    let txt = node.ask("kdig", &["example.com", "TXT"]);
    assert_eq!(
        txt.answers("TXT"),
        vec!["\"v=spf1 mx -all\""],
        "{}",
        txt.text
    );

    let cname = node.dig(&["docs.example.com", "A"]);
    assert_eq!(
        cname.answers("CNAME"),
        vec!["pages.example.org."],
        "{}",
        cname.text
    );
    assert_eq!(cname.status, "NOERROR");

    let srv = node.dig(&["_sip._tcp.example.com", "SRV"]);
    assert_eq!(
        srv.answers("SRV"),
        vec!["10 5 5060 sip.example.com."],
        "{}",
        srv.text
    );
}

#[test]
fn missing_names_missing_types_and_foreign_names_get_nxdomain_nodata_and_refused() {
    let node = DnsNode::start("");
    let nx = node.dig(&["nothing.example.com", "A"]);
    assert_eq!(nx.status, "NXDOMAIN", "{}", nx.text);
    assert!(nx.has_flag("aa"));
    assert_eq!(data_of(&nx.authority, "SOA").len(), 1, "{}", nx.text);

    let preview = node.dig(&["feature.preview.example.com", "A"]);
    assert_eq!(preview.status, "NXDOMAIN", "{}", preview.text);

    let nodata = node.dig(&["mail.example.com", "AAAA"]);
    assert_eq!(nodata.status, "NOERROR", "{}", nodata.text);
    assert!(nodata.answer.is_empty(), "{}", nodata.text);
    assert_eq!(
        data_of(&nodata.authority, "SOA").len(),
        1,
        "{}",
        nodata.text
    );

    let foreign = node.ask("kdig", &["example.org", "A"]);
    assert_eq!(foreign.status, "REFUSED", "{}", foreign.text);
    assert!(!foreign.has_flag("aa"));
    assert!(foreign.answer.is_empty());

    // ANY is answered minimally (RFC 8482): one RRset.
    let any = node.dig(&["+subnet=81.2.69.142/32", "example.com", "ANY"]);
    assert_eq!(any.answer.len(), 1, "{}", any.text);
}

#[test]
fn a_large_txt_set_truncates_over_udp_and_comes_whole_over_tcp() {
    let mut extra = String::new();
    for i in 0..12 {
        extra.push_str(&format!(
            "\n[[domain.records]]\ntype = \"TXT\"\nname = \"big\"\nvalue = \"{i:02}{}\"\n",
            "x".repeat(150)
        ));
    }
    let node = DnsNode::start(&extra);
    let udp = node.dig(&["+notcp", "+ignore", "big.example.com", "TXT"]);
    assert!(udp.has_flag("tc"), "{}", udp.text);
    assert!(udp.answer.is_empty(), "{}", udp.text);
    // Without EDNS the limit is 512 bytes.
    let plain = node.dig(&["+notcp", "+ignore", "+noedns", "big.example.com", "TXT"]);
    assert!(plain.has_flag("tc"), "{}", plain.text);

    let tcp = node.dig(&["+tcp", "big.example.com", "TXT"]);
    assert!(!tcp.has_flag("tc"), "{}", tcp.text);
    assert_eq!(tcp.answers("TXT").len(), 12, "{}", tcp.text);
    let kdig = node.ask("kdig", &["+tcp", "big.example.com", "TXT"]);
    assert_eq!(kdig.answers("TXT").len(), 12, "{}", kdig.text);

    // A small answer is not truncated.
    let small = node.dig(&["+notcp", "+ignore", "example.com", "TXT"]);
    assert!(!small.has_flag("tc"), "{}", small.text);
}

/// A query message for `name`/`rtype` with `id`.
fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii(name).expect("query name"),
        rtype,
    ));
    message.edns = Some(Edns::new());
    message.to_vec().expect("encode a query")
}

fn rcode_of(reply: &[u8]) -> ResponseCode {
    Message::from_vec(reply)
        .expect("a well-formed reply")
        .metadata
        .response_code
}

#[test]
fn malformed_messages_get_formerr_and_other_opcodes_notimp() {
    let node = DnsNode::start("");
    // A question whose name is a compression pointer to itself.
    let mut looped = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    looped.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
    let reply = node
        .udp_exchange(&looped)
        .expect("a reply to a looped name");
    assert_eq!(&reply[..2], &[0x12, 0x34]);
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR");

    // A label length running past the end of the message.
    let mut bad_label = vec![0x00, 0x07, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    bad_label.extend_from_slice(&[0x3f, b'a', b'b', 0, 1, 0, 1]);
    let reply = node
        .udp_exchange(&bad_label)
        .expect("a reply to a bad label");
    assert_eq!(reply[3] & 0x0f, 1, "FORMERR");

    // Two questions in one query.
    let mut two = Message::new(9, MessageType::Query, OpCode::Query);
    for name in ["example.com.", "www.example.com."] {
        two.add_query(Query::query(
            Name::from_ascii(name).expect("name"),
            RecordType::A,
        ));
    }
    let reply = node
        .udp_exchange(&two.to_vec().expect("encode"))
        .expect("a reply to two questions");
    assert_eq!(rcode_of(&reply), ResponseCode::FormErr);

    // STATUS (opcode 2) is not implemented.
    let mut status = query(10, "example.com.", RecordType::A);
    status[2] = (status[2] & 0x87) | (2 << 3);
    let reply = node.udp_exchange(&status).expect("a reply to STATUS");
    assert_eq!(rcode_of(&reply), ResponseCode::NotImp);

    // ECS with address bits set beyond its source prefix (RFC 7871 §6).
    let mut message = Message::new(11, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii("example.com.").expect("name"),
        RecordType::A,
    ));
    let mut edns = Edns::new();
    // Encoded as the two octets 81.2: the low bits of .2 lie past /12.
    let subnet = ClientSubnet::new("81.2.0.0".parse().expect("address"), 12, 0);
    edns.options_mut().insert(EdnsOption::Subnet(subnet));
    message.edns = Some(edns);
    let reply = node
        .udp_exchange(&message.to_vec().expect("encode"))
        .expect("a reply to a bad subnet");
    assert_eq!(rcode_of(&reply), ResponseCode::FormErr);
}

#[test]
fn thousands_of_random_and_malformed_packets_never_stop_the_server() {
    let mut node = DnsNode::start("");
    let mut rng = Xorshift::new(0x9e37_79b9_7f4a_7c15);
    let good = query(1, "example.com.", RecordType::A);
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for i in 0..4000u32 {
        let packet = match i % 8 {
            // Pure noise of any length.
            0 => bytes_upto(&mut rng, 600),
            // Truncated headers.
            1 => good[..rng.below(12) as usize].to_vec(),
            // A good query with a few flipped bytes.
            2 => {
                let mut p = good.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(p.len() as u64) as usize;
                    p[at] = rng.next_u64() as u8;
                }
                p
            }
            // A good query cut anywhere.
            3 => good[..rng.below(good.len() as u64) as usize].to_vec(),
            // Huge section counts over a short body.
            4 => {
                let mut p = good.clone();
                for at in [4, 6, 8, 10] {
                    p[at] = 0xff;
                    p[at + 1] = 0xff;
                }
                p
            }
            // Compression pointers that loop or point forward.
            5 => {
                let mut p = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
                let target = 12 + rng.below(8) as u8;
                p.extend_from_slice(&[3, b'a', b'b', b'c', 0xc0, target, 0, 1, 0, 1]);
                p
            }
            // Bad label lengths (reserved 0x40..0xbf, or past the end).
            6 => {
                let mut p = good[..12].to_vec();
                p.push(0x40 + rng.below(0x80) as u8);
                p.extend(bytes_upto(&mut rng, 40));
                p
            }
            // A good header and question followed by random records.
            _ => {
                let mut p = good.clone();
                p[7] = 1 + rng.below(3) as u8;
                p.extend(bytes_upto(&mut rng, 300));
                p
            }
        };
        packets.push(packet);
    }

    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for packet in &packets {
        // Loopback may drop some under load; that is fine.
        let _ = socket.send_to(packet, node.dns);
    }
    // The same over TCP: length-prefixed garbage, lying lengths, and
    // connections closed mid-message.
    for chunk in packets.chunks(200) {
        if let Ok(mut stream) = TcpStream::connect(node.dns) {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
            for packet in chunk {
                let len = (packet.len() as u16).to_be_bytes();
                let _ = stream.write_all(&len);
                let _ = stream.write_all(packet);
            }
            let _ = stream.write_all(&[0xff, 0xff, 1, 2, 3]);
        }
    }
    if let Ok(mut stream) = TcpStream::connect(node.dns) {
        let _ = stream.write_all(&[0x00]);
    }

    assert!(
        node.node.is_running(),
        "the node died under malformed packets"
    );
    let after = node.dig(&["+subnet=81.2.69.142/32", "example.com", "A"]);
    assert_eq!(after.answers("A"), vec![LONDON_V4], "{}", after.text);
    let tcp = node.dig(&["+tcp", "example.com", "MX"]);
    assert_eq!(
        tcp.answers("MX"),
        vec!["10 mail.example.com."],
        "{}",
        tcp.text
    );

    // A good query on a raw TCP connection still gets its answer.
    let mut stream = TcpStream::connect(node.dns).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let q = query(77, "example.com.", RecordType::SOA);
    stream
        .write_all(&(q.len() as u16).to_be_bytes())
        .expect("write length");
    stream.write_all(&q).expect("write query");
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("read length");
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).expect("read reply");
    let reply = Message::from_vec(&reply).expect("a well-formed reply");
    assert_eq!(reply.metadata.id, 77);
    assert_eq!(reply.answers.len(), 1);
    assert!(node.node.is_running());
    // Tasks that panic would not kill the process; the log would show them.
    let log = node.node.stderr();
    assert!(!log.contains("panicked"), "a task panicked:\n{log}");
}

#[test]
fn maki_dns_setup_prints_glue_name_servers_and_checks() {
    // Over SSH, as from the operator's machine: the node answers from the
    // node table its node.toml filled.
    let client = Client::new();
    let node = DnsNode::start_with(
        "",
        &[
            OsStr::new("--authorized-key"),
            client.public_key.as_os_str(),
        ],
    );
    let out = Command::new(crate::support::maki_bin())
        .args(["dns", "setup", "example.com", "--node"])
        .arg(format!("git@127.0.0.1:{}", node.node.ssh_port()))
        .env("MAKI_SSH_COMMAND", client.ssh_command())
        .output()
        .expect("run maki dns setup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("london.ns.example.com   A     192.0.2.1"),
        "{text}"
    );
    assert!(
        text.contains("tokyo.ns.example.com    AAAA  2001:db8::3"),
        "{text}"
    );
    assert!(text.contains("\n   seattle.ns.example.com\n"), "{text}");
    assert!(
        text.contains("dig +norecurse NS example.com @192.0.2.1"),
        "{text}"
    );
}

/// Up to `max` pseudo-random bytes (the length is random too).
fn bytes_upto(rng: &mut Xorshift, max: u64) -> Vec<u8> {
    let len = rng.below(max.max(1)) as usize;
    rng.bytes(len)
}
