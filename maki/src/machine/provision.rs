//! `maki machine init` (the first node of a cluster) and `maki machine
//! add` (one more, joined through a node already in it): probe, upload,
//! install, locate, configure, wait healthy, record in the cluster
//! profile. Both converge: run again on a provisioned host, they write
//! nothing that is already right, keep the node's data and its join, and
//! restart nothing that did not change.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::install::{self, Prepare};
use super::login::Login;
use super::node_toml::{Join, NodeSpec};
use super::probe::{Probe, SCRIPT};
use super::progress::Progress;
use super::upload::{self, Binary};
use super::{MachineError, Step, coordinates, healthy, paths, plan};
use crate::addressing::{self, Addressing};
use crate::profile::{Profile, ProfileNode};
use crate::remote::{self, NodeAddr};

/// Which of the two commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `init`: the cluster's first node.
    First,
    /// `add`: joins through a node of the profile.
    Join,
}

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: String,
    pub login: String,
    pub profile: Option<String>,
    pub binary: Option<PathBuf>,
    /// The operator's public key file.
    pub key: Option<PathBuf>,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub geoip_db: Option<PathBuf>,
    pub mesh_prefix_v4: Option<String>,
    pub mesh_prefix_v6: Option<String>,
    pub disable_stub_resolver: bool,
    pub dry_run: bool,
    pub wait: Duration,
    /// `add`: the node to join through (default: the profile's first).
    pub via: Option<String>,
}

/// What was done, for the operator (and `--json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub name: String,
    pub machine: String,
    pub admin: String,
    pub ipv4: Option<IpAddr>,
    /// `direct` or `behind-nat`.
    pub addressing: String,
    pub coordinates: Option<(f64, f64)>,
    /// What was written or created; empty when the host was already right.
    pub changed: Vec<String>,
    pub profile: String,
    /// `--dry-run`: what would be done; nothing was.
    pub plan: Vec<String>,
}

fn err(host: &str, step: Step, cause: impl Into<String>, fix: impl Into<String>) -> MachineError {
    MachineError::new(host, step, cause, fix)
}

/// Node names as node.toml accepts them.
fn check_name(name: &str) -> Result<(), MachineError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(err(
            name,
            Step::Probe,
            format!("{name:?} is not a node name"),
            "use lowercase letters, digits and -, 1 to 63 characters, e.g. london",
        ))
    }
}

/// The operator's public key: `given`, else the first of
/// ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub.
fn operator_key(name: &str, given: Option<&PathBuf>) -> Result<String, MachineError> {
    let candidates: Vec<PathBuf> = match given {
        Some(path) => vec![path.clone()],
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"]
                .iter()
                .map(|f| home.join(".ssh").join(f))
                .collect()
        }
    };
    for path in &candidates {
        if let Ok(text) = std::fs::read_to_string(path) {
            let key = text
                .lines()
                .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-"));
            return key.map(str::to_string).ok_or_else(|| {
                err(
                    name,
                    Step::Probe,
                    format!("{} holds no SSH public key", path.display()),
                    "pass --key with your public key file, e.g. ~/.ssh/id_ed25519.pub",
                )
            });
        }
    }
    Err(err(
        name,
        Step::Probe,
        format!(
            "no public key found ({})",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "pass --key FILE, or make one with ssh-keygen -t ed25519",
    ))
}

/// Runs the probe script on `login`.
pub fn probe(host: &str, login: &Login) -> Result<Probe, MachineError> {
    let ran = login.step(host, Step::Connect, SCRIPT, None)?;
    if ran.unreachable || !ran.ok {
        return Err(err(
            host,
            Step::Connect,
            format!("ssh {login} failed: {}", ran.why()),
            format!(
                "check that `ssh {login}` logs you in without a password (your key in the host's /root/.ssh/authorized_keys)"
            ),
        ));
    }
    Ok(Probe::parse(&ran.stdout))
}

/// `init` or `add`.
pub fn provision(role: Role, req: &Request, progress: &Progress) -> Result<Report, MachineError> {
    let name = req.name.as_str();
    check_name(name)?;
    let login = Login::parse(&req.login).ok_or_else(|| {
        err(
            name,
            Step::Connect,
            format!("cannot read the login {:?}", req.login),
            "write root@HOST or root@HOST:PORT",
        )
    })?;
    let profile_name = Profile::chosen_name(req.profile.as_deref());
    let mut profile = Profile::load_or_new(&profile_name).map_err(|e| {
        err(
            name,
            Step::Profile,
            e.to_string(),
            "fix or remove the profile file",
        )
    })?;
    let others: Vec<&ProfileNode> = profile.nodes.iter().filter(|n| n.name != name).collect();
    let via = match role {
        Role::First => {
            if !others.is_empty() {
                return Err(err(
                    name,
                    Step::Profile,
                    format!(
                        "the profile {profile_name:?} already holds a cluster ({})",
                        others
                            .iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    format!(
                        "add this host to it with `maki machine add {name} {}`, or start another cluster with --profile NAME",
                        req.login
                    ),
                ));
            }
            None
        }
        Role::Join => {
            let via = match &req.via {
                Some(v) => others.iter().find(|n| n.name == *v).copied(),
                None => others.first().copied(),
            };
            let Some(via) = via else {
                return Err(err(
                    name,
                    Step::Join,
                    format!("the profile {profile_name:?} has no node to join through"),
                    "provision the first node with `maki machine init NAME root@HOST` (or name one with --via)",
                ));
            };
            Some(via.clone())
        }
    };

    let binary_path = Binary::locate(req.binary.as_deref())
        .map_err(|e| err(name, Step::Upload, e, "pass --binary PATH"))?;
    let binary = Binary::read(&binary_path).map_err(|e| {
        err(
            name,
            Step::Upload,
            e,
            "pass --binary with a Linux build of makiatto",
        )
    })?;
    let key = operator_key(name, req.key.as_ref())?;
    let geoip = match &req.geoip_db {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            err(
                name,
                Step::Upload,
                format!("cannot read {}: {e}", path.display()),
                "pass --geoip-db with an MMDB city database (GeoLite2-City.mmdb)",
            )
        })?),
        None => None,
    };
    let given_coordinates = match (req.lat, req.lon) {
        (Some(lat), Some(lon))
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
        {
            Some((lat, lon))
        }
        (None, None) => None,
        _ => {
            return Err(err(
                name,
                Step::Locate,
                "--lat and --lon go together, in decimal degrees (-90..90, -180..180)",
                "pass both, e.g. --lat 51.51 --lon -0.13",
            ));
        }
    };

    let running = progress.start(name, Step::Probe, &format!("checking {login}"));
    let probe = probe(name, &login)?;
    if let Some((cause, fix)) = probe.refusal(binary.arch, req.disable_stub_resolver) {
        return Err(err(name, Step::Probe, cause, fix));
    }
    let public = probe.public_v4(req.ipv4, login.host());
    let nat = match public {
        Some(ip) => match addressing::classify(&probe.addr_lines, ip) {
            Addressing::Direct => "direct",
            Addressing::BehindNat { .. } => "behind-nat",
        },
        None => "unknown",
    };
    running.done(&format!(
        "{} {}, systemd, ports free, public address {} ({nat})",
        probe.os,
        probe.arch,
        public.map_or("unknown".to_string(), |ip| ip.to_string())
    ));
    let admin_host = public.map_or(login.host().to_string(), |ip| ip.to_string());
    let admin = NodeAddr {
        user: "git".into(),
        host: admin_host,
        port: remote::DEFAULT_PORT,
    };

    let mut spec = NodeSpec {
        name: name.to_string(),
        ipv4: public,
        ipv6: req.ipv6,
        coordinates: given_coordinates,
        operator_key: key,
        geoip: geoip.is_some() || probe.geoip,
        prefix_v4: req.mesh_prefix_v4.clone(),
        prefix_v6: req.mesh_prefix_v6.clone(),
        join: None,
    };

    let mut report = Report {
        name: name.to_string(),
        machine: login.short(),
        admin: admin.to_string(),
        ipv4: public,
        addressing: nat.to_string(),
        coordinates: given_coordinates,
        changed: Vec::new(),
        profile: profile.path.display().to_string(),
        plan: Vec::new(),
    };
    if req.dry_run {
        report.plan = plan::provision(
            &probe,
            &binary,
            &spec,
            via.as_ref().map(|v| v.name.as_str()),
            geoip.is_some(),
            req.disable_stub_resolver,
        );
        return Ok(report);
    }

    let new_binary = !probe.has_binary(&binary.sha256);
    if new_binary {
        let running = progress.start(
            name,
            Step::Upload,
            &format!(
                "{} ({} MB, sha256 {}) to {login}",
                binary.path.display(),
                binary.bytes.len() / 1_000_000,
                binary.short()
            ),
        );
        upload::send(name, &login, &binary)?;
        running.done("hash checked on the host");
    } else {
        progress.note(
            name,
            &format!(
                "upload: {} already there (sha256 {})",
                paths::BINARY,
                binary.short()
            ),
        );
    }
    let running = progress.start(
        name,
        Step::Install,
        "user makiatto, /etc/makiatto, binary, GeoIP database",
    );
    let changes = install::prepare(
        name,
        &login,
        &Prepare {
            geoip: geoip.as_deref(),
            new_binary,
            free_stub: req.disable_stub_resolver && probe.resolved == "active",
        },
    )?;
    running.done(if changes.any() {
        "done"
    } else {
        "already in place"
    });

    if spec.coordinates.is_none() {
        spec.coordinates = coordinates::locate(name, &login, None, spec.geoip, public)?;
        if let Some((lat, lon)) = spec.coordinates {
            progress.note(
                name,
                &format!("locate: {lat} {lon} from the GeoIP database"),
            );
        } else {
            progress.note(name, "locate: no coordinates (pass --lat/--lon or --geoip-db): DNS treats this node as near to everyone");
        }
    }
    report.coordinates = spec.coordinates;

    if let Some(via) = &via {
        spec.join = Some(join_of(name, &login, &probe, via, progress)?);
    }
    let running = progress.start(
        name,
        Step::Install,
        &format!("{} and {}", paths::CONFIG, paths::UNIT),
    );
    let changes = install::configure(name, &login, &spec.render(), changes)?;
    running.done(if changes.any() {
        "written; service (re)started"
    } else {
        "unchanged; service left running"
    });
    report.changed = changes.changed;

    let running = progress.start(
        name,
        Step::Healthy,
        &format!("systemd ready, then `status` on {admin}"),
    );
    healthy::wait(name, &login, &admin, req.wait)?;
    running.done("healthy");

    profile
        .add_node(ProfileNode {
            name: name.to_string(),
            admin: admin.to_string(),
            machine: Some(login.short()),
        })
        .and_then(|()| profile.save())
        .map_err(|e| {
            err(
                name,
                Step::Profile,
                e.to_string(),
                "check that your config directory is writable",
            )
        })?;
    progress.note(name, &format!("profile: {}", profile.path.display()));
    Ok(report)
}

/// The `[cluster]` join of a new node: the one its node.toml already has
/// (it joined before; a token is spent once), else a fresh token from
/// `via` over its admin endpoint.
fn join_of(
    name: &str,
    login: &Login,
    probe: &Probe,
    via: &ProfileNode,
    progress: &Progress,
) -> Result<Join, MachineError> {
    if probe.config {
        let ran = login.step(name, Step::Join, &format!("cat {}", paths::CONFIG), None)?;
        if let Some(join) = Join::from_lines(&ran.stdout) {
            progress.note(name, "join: keeps the join its node.toml already has");
            return Ok(join);
        }
    }
    let admin = NodeAddr::parse(&via.admin).map_err(|e| {
        err(
            name,
            Step::Join,
            e.to_string(),
            "fix the node's admin address in the profile",
        )
    })?;
    let running = progress.start(
        name,
        Step::Join,
        &format!("a join token from {} ({admin})", via.name),
    );
    let answer = remote::call(&admin, "join-token", None)
        .map_err(|e| err(name, Step::Join, e.to_string(), "install OpenSSH's client"))?;
    if !answer.ok {
        return Err(err(
            name,
            Step::Join,
            format!(
                "{} did not give a join token: {}",
                via.name,
                answer.stderr.trim()
            ),
            format!(
                "check that `maki status --node {admin}` works (is {} up and your key authorised?)",
                via.name
            ),
        ));
    }
    let join = Join::from_lines(&answer.stdout).ok_or_else(|| {
        err(
            name,
            Step::Join,
            format!("{} answered no join lines: {:?}", via.name, answer.stdout),
            "upgrade that node (maki machine upgrade)",
        )
    })?;
    running.done(&format!("joins through {}", join.address));
    Ok(join)
}
