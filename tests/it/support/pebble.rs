//! Pebble, the ACME test CA (Debian package `pebble`), as a test's
//! certificate authority: its HTTPS listener gets a certificate from a
//! throwaway CA made here (the Debian package ships none), its DNS resolver
//! is the makiatto node under test, and it stops when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{run_command, temp_dir};

/// How long pebble may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Ports and files chosen before pebble runs, so the node's config can name
/// the directory URL before the node's DNS port (which pebble needs) exists.
pub struct PebblePlan {
    dir: TempDir,
    pub listen: SocketAddr,
    pub management: SocketAddr,
    /// The root that signs pebble's own HTTPS certificate: the node's
    /// `[acme] ca_root`.
    pub tls_root: PathBuf,
}

/// A running pebble; dropping it stops the process.
pub struct Pebble {
    child: Child,
    plan: PebblePlan,
}

/// A free loopback TCP port (bound and released; the race with another
/// process taking it in between is harmless in practice).
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr")
}

impl PebblePlan {
    /// Picks loopback ports and writes pebble's HTTPS certificate and its
    /// root.
    pub fn new() -> PebblePlan {
        PebblePlan::with_listeners(free_port(), free_port())
    }

    /// A plan for pebble listening on `ip` (in a namespace of its own, where
    /// any port is free) on ports 14000 (ACME) and 15000 (management).
    pub fn on_address(ip: std::net::IpAddr) -> PebblePlan {
        PebblePlan::with_listeners(SocketAddr::new(ip, 14000), SocketAddr::new(ip, 15000))
    }

    fn with_listeners(listen: SocketAddr, management: SocketAddr) -> PebblePlan {
        let dir = temp_dir();
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pebble listener test root");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA cert");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let mut sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        if !listen.ip().is_loopback() {
            sans.push(listen.ip().to_string());
        }
        let leaf = rcgen::CertificateParams::new(sans)
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf cert");
        let tls_root = dir.path().join("listener-root.pem");
        std::fs::write(&tls_root, ca.pem()).expect("write root");
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), leaf_key.serialize_pem()).expect("write key");
        PebblePlan {
            dir,
            listen,
            management,
            tls_root,
        }
    }

    /// The ACME directory URL.
    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.listen)
    }

    /// Starts pebble resolving through `dns`, issuing certificates valid
    /// for `validity_secs` (pebble's default, five years, when `None`), and
    /// refusing orders for `blocked` domains.
    pub fn start(self, dns: SocketAddr, validity_secs: Option<u64>, blocked: &[&str]) -> Pebble {
        let config = self.write_config(validity_secs, blocked);
        let log = std::fs::File::create(self.dir.path().join("pebble.log")).expect("pebble log");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn pebble (apt-get install pebble): {e}"));
        let pebble = Pebble { child, plan: self };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(pebble.plan.listen).is_err()
            || TcpStream::connect(pebble.plan.management).is_err()
        {
            if Instant::now() > deadline {
                panic!("pebble did not listen: {}", pebble.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
        pebble
    }

    /// Writes pebble's config file (certificates valid for `validity_secs`,
    /// pebble's default when `None`; orders for `blocked` refused) and
    /// returns its path, for starting pebble somewhere else (a namespace).
    pub fn write_config(&self, validity_secs: Option<u64>, blocked: &[&str]) -> PathBuf {
        let mut pebble = serde_json::json!({
            "listenAddress": self.listen.to_string(),
            "managementListenAddress": self.management.to_string(),
            "certificate": self.dir.path().join("cert.pem"),
            "privateKey": self.dir.path().join("key.pem"),
            "httpPort": free_port().port(),
            "tlsPort": free_port().port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": blocked,
        });
        if let Some(secs) = validity_secs {
            pebble["certificateValidityPeriod"] = serde_json::json!(secs);
        }
        let config = self.dir.path().join("pebble-config.json");
        std::fs::write(&config, serde_json::json!({ "pebble": pebble }).to_string())
            .expect("write pebble config");
        config
    }
}

impl Pebble {
    /// What pebble logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.plan.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// Writes pebble's issuing root (from its management endpoint) to
    /// `path`: what a visitor's client must trust.
    pub fn write_root(&self, path: &Path) {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--fail", "--cacert"])
            .arg(&self.plan.tls_root)
            .arg("-o")
            .arg(path)
            .arg(format!("https://{}/roots/0", self.plan.management));
        let out = run_command(curl, Duration::from_secs(30));
        assert!(out.success(), "fetching pebble's root: {}", out.describe());
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
