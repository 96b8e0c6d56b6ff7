//! What a host is, asked in one SSH round trip before anything changes on
//! it: the OS, the CPU, systemd, /dev/net/tun, the ports a node needs and
//! who holds them, its addresses, and what of a node is already there.
//! [`Probe::refusal`] turns what stands in the way into a cause and a fix.

use std::net::IpAddr;

/// The script the host runs; `key=value` lines, one fact each.
pub const SCRIPT: &str = r#"
echo "os=$(uname -s)"
echo "arch=$(uname -m)"
if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
if [ -c /dev/net/tun ]; then echo tun=yes; else echo tun=no; fi
if command -v ss >/dev/null 2>&1; then ss -Hlntup 2>/dev/null | sed 's/^/listen=/'; else echo ss=no; fi
ip -o addr show 2>/dev/null | sed 's/^/addr=/'
echo "conn=$SSH_CONNECTION"
if [ -f /usr/bin/makiatto ]; then echo "binary=$(sha256sum /usr/bin/makiatto | cut -d' ' -f1)"; fi
if [ -f /usr/bin/makiatto.previous ]; then echo "previous=$(sha256sum /usr/bin/makiatto.previous | cut -d' ' -f1)"; fi
if [ -f /etc/makiatto/node.toml ]; then echo config=yes; fi
if [ -f /etc/makiatto/GeoLite2-City.mmdb ]; then echo geoip=yes; fi
if command -v systemctl >/dev/null 2>&1; then
  echo "active=$(systemctl is-active makiatto 2>/dev/null)"
  echo "enabled=$(systemctl is-enabled makiatto 2>/dev/null)"
  echo "resolved=$(systemctl is-active systemd-resolved 2>/dev/null)"
fi
true
"#;

/// The ports a node listens on: (port, protocol, what for).
pub const PORTS: [(u16, &str, &str); 7] = [
    (53, "udp", "DNS"),
    (53, "tcp", "DNS"),
    (80, "tcp", "HTTP"),
    (443, "tcp", "HTTPS"),
    (853, "tcp", "DNS over TLS"),
    (2222, "tcp", "git and admin SSH"),
    (51880, "udp", "WireGuard"),
];

/// One listening socket on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub proto: String,
    pub local: String,
    pub port: u16,
    /// The process, when `ss` could name it.
    pub process: Option<String>,
}

/// What the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub os: String,
    pub arch: String,
    pub systemd: bool,
    pub tun: bool,
    /// `ss` was there to list listeners.
    pub ss: bool,
    pub listeners: Vec<Listener>,
    /// `ip -o addr show` lines.
    pub addr_lines: String,
    /// The host's address on the connection maki came in on (as sshd saw it).
    pub local_address: Option<IpAddr>,
    /// sha256 of the installed node binary, and of the one kept to revert to.
    pub binary: Option<String>,
    pub previous: Option<String>,
    pub config: bool,
    pub geoip: bool,
    /// `systemctl is-active makiatto`.
    pub active: String,
    /// `systemctl is-enabled makiatto`.
    pub enabled: String,
    /// `systemctl is-active systemd-resolved`.
    pub resolved: String,
}

impl Probe {
    /// Reads the script's output.
    pub fn parse(output: &str) -> Probe {
        let mut probe = Probe {
            ss: true,
            ..Probe::default()
        };
        for line in output.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "os" => probe.os = value.trim().to_string(),
                "arch" => probe.arch = value.trim().to_string(),
                "systemd" => probe.systemd = value == "yes",
                "tun" => probe.tun = value == "yes",
                "ss" => probe.ss = value != "no",
                "listen" => probe.listeners.extend(listener(value)),
                "addr" => {
                    probe.addr_lines.push_str(value);
                    probe.addr_lines.push('\n');
                }
                "conn" => {
                    probe.local_address =
                        value.split_whitespace().nth(2).and_then(|a| a.parse().ok())
                }
                "binary" => probe.binary = Some(value.trim().to_string()),
                "previous" => probe.previous = Some(value.trim().to_string()),
                "config" => probe.config = true,
                "geoip" => probe.geoip = true,
                "active" => probe.active = value.trim().to_string(),
                "enabled" => probe.enabled = value.trim().to_string(),
                "resolved" => probe.resolved = value.trim().to_string(),
                _ => {}
            }
        }
        probe
    }

    /// Whether the node `maki machine` installed is running here.
    pub fn node_running(&self) -> bool {
        self.active == "active"
    }

    /// What keeps this host from running a node, as (cause, fix); `None`
    /// when nothing does. `binary_arch` is the uploaded binary's
    /// `uname -m` name; `free_stub` says the operator asked maki to turn
    /// systemd-resolved's stub listener off.
    pub fn refusal(&self, binary_arch: Option<&str>, free_stub: bool) -> Option<(String, String)> {
        if self.os != "Linux" {
            return Some((
                format!("the host runs {:?}, and nodes run on Linux only", self.os),
                "provision a Linux server (Debian, Ubuntu, Fedora...)".into(),
            ));
        }
        if let Some(arch) = binary_arch
            && arch != self.arch
        {
            return Some((
                format!(
                    "the host's CPU is {}, the makiatto binary is built for {arch}",
                    self.arch
                ),
                format!(
                    "pass --binary with a makiatto built for {} (cargo build --target {}-unknown-linux-gnu)",
                    self.arch, self.arch
                ),
            ));
        }
        if !self.systemd {
            return Some((
                "systemd is not running on the host (no /run/systemd/system), and the node runs as a systemd service".into(),
                "use a host booted with systemd, or run `makiatto run --config node.toml` under your own supervisor".into(),
            ));
        }
        if !self.tun {
            return Some((
                "/dev/net/tun is missing, and the WireGuard mesh needs it".into(),
                "load the tun module (`modprobe tun`) or ask the provider for a VM or a container with TUN enabled".into(),
            ));
        }
        if !self.ss {
            return Some((
                "`ss` is missing, so the ports the node needs cannot be checked".into(),
                "install iproute2 (apt-get install iproute2)".into(),
            ));
        }
        let mut taken = Vec::new();
        for (port, proto, what) in PORTS {
            for l in self
                .listeners
                .iter()
                .filter(|l| l.port == port && l.proto == proto)
            {
                if l.process.as_deref() == Some("makiatto") {
                    continue;
                }
                if port == 53 && l.process.as_deref() == Some("systemd-resolve") && free_stub {
                    continue;
                }
                let who = l.process.as_deref().unwrap_or("another process");
                taken.push((port, proto, what, who.to_string(), l.local.clone()));
            }
        }
        if let Some((port, proto, what, who, local)) = taken.first() {
            let list = taken
                .iter()
                .map(|(p, pr, _, w, l)| format!("{p}/{pr} ({l}, {w})"))
                .collect::<Vec<_>>()
                .join(", ");
            let fix = if *port == 53 && who == "systemd-resolve" {
                "systemd-resolved's stub resolver holds port 53: pass --disable-stub-resolver to turn it off (DNSStubListener=no; the host keeps resolving through /run/systemd/resolve/resolv.conf), or do that by hand".to_string()
            } else {
                format!(
                    "stop what listens on {local} or move it to another port (`ss -lntup 'sport = :{port}'` on the host shows it); the node needs {port}/{proto} for {what}"
                )
            };
            return Some((format!("ports the node needs are taken: {list}"), fix));
        }
        None
    }

    /// The host's public IPv4 address: `given`, else the address maki
    /// reached it at when that is an IPv4 literal, else the address sshd
    /// saw the connection on.
    pub fn public_v4(&self, given: Option<IpAddr>, login_host: &str) -> Option<IpAddr> {
        given
            .or_else(|| login_host.parse::<IpAddr>().ok())
            .or(self.local_address)
            .filter(|ip| ip.is_ipv4())
    }

    /// Whether the installed node binary hashes to `sha256`.
    pub fn has_binary(&self, sha256: &str) -> bool {
        self.binary.as_deref() == Some(sha256)
    }
}

/// One `ss -Hlntup` line: `udp UNCONN 0 0 0.0.0.0:53 0.0.0.0:* users:(("x",pid=1,fd=3))`.
fn listener(line: &str) -> Option<Listener> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let proto = fields.first()?.to_string();
    let local = fields.get(4)?.to_string();
    let port = local.rsplit_once(':')?.1.parse().ok()?;
    let process = line
        .split_once("((\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(name, _)| name.to_string());
    Some(Listener {
        proto,
        local,
        port,
        process,
    })
}

/// The `uname -m` name of the CPU an ELF binary is built for.
pub fn elf_arch(head: &[u8]) -> Option<&'static str> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let machine = u16::from_le_bytes([head[18], head[19]]);
    match machine {
        0x3e => Some("x86_64"),
        0xb7 => Some("aarch64"),
        0xf3 => Some("riscv64"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "os=Linux\narch=x86_64\nsystemd=yes\ntun=yes\n\
listen=udp   UNCONN 0      0      127.0.0.53%lo:53        0.0.0.0:*    users:((\"systemd-resolve\",pid=5,fd=13))\n\
listen=tcp   LISTEN 0      128    0.0.0.0:22        0.0.0.0:*    users:((\"sshd\",pid=9,fd=3))\n\
listen=tcp   LISTEN 0      128    0.0.0.0:2222        0.0.0.0:*    users:((\"makiatto\",pid=9,fd=3))\n\
conn=198.51.100.100 50000 10.0.0.5 22\nactive=active\nresolved=active\n";

    #[test]
    fn a_stub_resolver_on_port_53_is_named_with_its_fix() {
        let probe = Probe::parse(OUT);
        assert_eq!(probe.local_address, Some("10.0.0.5".parse().unwrap()));
        assert!(probe.node_running());
        let (cause, fix) = probe.refusal(Some("x86_64"), false).unwrap();
        assert!(
            cause.contains("53/udp") && cause.contains("systemd-resolve"),
            "{cause}"
        );
        assert!(fix.contains("--disable-stub-resolver"), "{fix}");
        // The node's own listeners and a freed stub are no obstacle.
        assert_eq!(probe.refusal(Some("x86_64"), true), None);
        let (cause, _) = probe.refusal(Some("aarch64"), true).unwrap();
        assert!(cause.contains("aarch64"), "{cause}");
    }

    #[test]
    fn a_host_without_systemd_is_refused() {
        let probe = Probe::parse("os=Linux\narch=x86_64\nsystemd=no\ntun=yes\n");
        let (cause, fix) = probe.refusal(None, false).unwrap();
        assert!(
            cause.contains("systemd") && fix.contains("systemd"),
            "{cause} {fix}"
        );
    }

    #[test]
    fn elf_headers_name_their_cpu() {
        let mut head = b"\x7fELF".to_vec();
        head.resize(20, 0);
        head[18] = 0x3e;
        assert_eq!(elf_arch(&head), Some("x86_64"));
        assert_eq!(elf_arch(b"#!/bin/sh\n"), None);
    }
}
