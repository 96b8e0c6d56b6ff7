//! `makiatto dev`: the same node with single-machine defaults, serving a
//! directory at once and redeploying it atomically whenever it changes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::build::{BuildFailure, Builder, BuiltSource, Job};
use crate::config::{DnsSettings, NodeConfig, SiteConfig};
use crate::deploy::{DeployError, Deployed, Deployer, LOCAL_OWNER, SITE_CONFIG_FILE};
use crate::live::SiteTable;
use crate::node::{Node, NodeError};
use crate::shutdown::Shutdown;

/// Quiet time after the last change before redeploying, so an editor's
/// save (several writes and renames) becomes one deploy.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// What `makiatto dev` was asked to do.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub site: Option<PathBuf>,
    pub data: PathBuf,
    pub http: SocketAddr,
    /// DNS listen address (UDP and TCP).
    pub dns: SocketAddr,
    /// The SSH (git push and admin) listen address.
    pub ssh: SocketAddr,
    /// Public key files authorised besides `~/.ssh/*.pub`.
    pub authorized_keys: Vec<PathBuf>,
    /// A node.toml read over the dev defaults.
    pub config: Option<NodeConfig>,
    /// HTTPS listen address; `None`: HTTP only.
    pub https: Option<SocketAddr>,
    /// DNS over TLS listen address; `None`: none.
    pub dot: Option<SocketAddr>,
}

/// Runs a dev node until `shutdown` fires.
pub async fn run(options: DevOptions, shutdown: Shutdown) -> Result<(), DevError> {
    let mut config = match options.config {
        Some(mut config) => {
            config.http.fallback_to_first_site = true;
            config.http.listen = options.http;
            config.data_dir = options.data.clone();
            config
        }
        None => NodeConfig::dev(options.data.clone(), options.http),
    };
    let dns = config
        .dns
        .get_or_insert_with(|| DnsSettings::listening_on(options.dns));
    dns.listen = options.dns;
    config.http.fallback_to_first_site = true;
    // Without an [acme] table dev serves self-signed certificates rather
    // than asking Let's Encrypt for names that may not point here.
    config.self_signed_without_acme = true;
    if options.https.is_some() {
        config.https_listen = options.https;
    }
    if options.dot.is_some() {
        dns.tls_listen = options.dot;
    }
    // Dev listens only where its flags say: DNS over TLS is `--dot`, never
    // port 853 by itself.
    dns.tls_auto = None;
    let mut ssh = config.ssh.take().unwrap_or_default();
    ssh.listen = options.ssh;
    for path in &options.authorized_keys {
        let text = std::fs::read_to_string(path).map_err(|source| DevError::Read {
            path: path.clone(),
            source,
        })?;
        let row = crate::git::keys::parse_line(&text).map_err(|source| DevError::Key {
            path: path.clone(),
            source,
        })?;
        ssh.authorized_keys
            .push(format!("{} {}", row.public_key, row.comment));
    }
    for row in crate::git::keys::user_keys() {
        ssh.authorized_keys
            .push(format!("{} {}", row.public_key, row.comment));
    }
    config.ssh = Some(ssh);
    // Dev picks a free loopback port for the exposition (printed below),
    // so several dev nodes can run at once.
    config
        .metrics
        .listen
        .get_or_insert(SocketAddr::from(([127, 0, 0, 1], 0)));
    let node = Node::open(config)?;
    let target = SiteTarget {
        deployer: node.deployer.clone(),
        builder: node.builder.clone(),
        data: std::fs::canonicalize(&options.data).unwrap_or_else(|_| options.data.clone()),
        url: format!("http://{}/", options.http),
    };
    let sites = node.live.sites.clone();
    let site = match &options.site {
        Some(dir) => Some(
            std::fs::canonicalize(dir).map_err(|source| DevError::NoSite {
                dir: dir.clone(),
                source,
            })?,
        ),
        None => None,
    };
    // Watch before the first deploy: an edit made while it runs, or right
    // after the URLs are printed, must still trigger a redeploy.
    let (watcher, changes) = match &site {
        Some(dir) => {
            let (watcher, changes) = watch(dir, options.data.clone())?;
            (Some(watcher), Some(changes))
        }
        None => (None, None),
    };
    let mut deployed = Vec::new();
    if let Some(dir) = &site {
        deployed = deploy(&target, dir)
            .await
            .map_err(|source| DevError::Site {
                dir: dir.clone(),
                source,
            })?;
    }
    let running = node.start(shutdown.clone()).await?;
    // Before the URLs, like the DNS line: tools waiting for the first URL
    // line have then seen these too.
    if let Some(https) = running.https_addr {
        println!("  https {https}");
    }
    if let Some(dot) = running.dot_addr {
        println!("  dot {dot} (dns over tls)");
    }
    if let Some(metrics) = running.metrics_addr {
        println!("  metrics {metrics} (prometheus)");
    }
    print_urls(
        running.http_addr,
        running.dns_addr,
        running.ssh_addr,
        &deployed,
        &sites,
    );
    if let (Some(dir), Some(changes)) = (site, changes) {
        tokio::spawn(redeploy_on_change(dir, changes, target, shutdown));
    }
    running.wait().await;
    drop(watcher);
    Ok(())
}

/// Why dev mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("cannot serve {dir}: {source}")]
    NoSite {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serve {dir}: {source}")]
    Site { dir: PathBuf, source: SiteError },
    #[error("cannot authorise the key in {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot authorise the key in {path}: {source}")]
    Key {
        path: PathBuf,
        source: crate::git::keys::KeyError,
    },
    #[error("cannot watch {dir} for changes: {source}")]
    Watch { dir: PathBuf, source: notify::Error },
}

/// Why deploying the served directory failed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("deploy task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error("build refused: {0}")]
    Build(#[from] BuildFailure),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the served directory goes: built (when its config says so), then
/// deployed.
#[derive(Clone)]
struct SiteTarget {
    deployer: Arc<Deployer>,
    builder: Arc<Builder>,
    /// The data directory, canonical: never copied into a build.
    data: PathBuf,
    /// Where the site is served, for `MAKIATTO_URL`.
    url: String,
}

async fn deploy(target: &SiteTarget, dir: &Path) -> Result<Vec<Deployed>, SiteError> {
    let target = target.clone();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || deploy_site(&target, &dir)).await?
}

/// Deploys `dir`, building a copy of it first when its `makiatto.toml`
/// has `[build]` (the build never writes into the watched directory).
fn deploy_site(target: &SiteTarget, dir: &Path) -> Result<Vec<Deployed>, SiteError> {
    let path = dir.join(SITE_CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(target.deployer.deploy_dir(dir, LOCAL_OWNER)?);
        }
        Err(source) => return Err(SiteError::Read { path, source }),
    };
    let config = SiteConfig::parse(SITE_CONFIG_FILE, &text).map_err(DeployError::from)?;
    let Some(build) = &config.build else {
        return Ok(target.deployer.deploy_dir(dir, LOCAL_OWNER)?);
    };
    let builder = &target.builder;
    let _turn = builder.turn(LOCAL_OWNER).map_err(BuildFailure::from)?;
    let workspace = builder.workspace(LOCAL_OWNER).map_err(BuildFailure::from)?;
    let skip = [target.data.clone(), dir.join(&build.output)];
    workspace
        .copy_from(dir, &skip)
        .map_err(|source| SiteError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
    let job = Job {
        repo: LOCAL_OWNER,
        branch: "",
        commit: "",
        domain: config.domains.first().map_or("", |d| d.name.as_str()),
        url: &target.url,
        build,
    };
    eprintln!("building {}: {}", dir.display(), build.command);
    let built = builder.run(&job, &workspace, &mut |line| eprintln!("  {line}"))?;
    eprintln!("built in {:.1} s", built.duration.as_secs_f64());
    let source = BuiltSource {
        dir: workspace.dir(),
        config: Some(text),
        label: dir.display().to_string(),
    };
    Ok(target.deployer.deploy(&source, LOCAL_OWNER, None)?)
}

fn print_urls(
    addr: SocketAddr,
    dns: Option<SocketAddr>,
    ssh: Option<SocketAddr>,
    deployed: &[Deployed],
    sites: &SiteTable,
) {
    let sites = sites.load().sites();
    println!("makiatto dev node ready");
    // Before the URLs: tools that wait for the first URL line have then
    // seen the DNS address too.
    if let Some(dns) = dns {
        println!("  dns {dns} (udp+tcp)");
    }
    if let Some(ssh) = ssh {
        println!("  ssh://git@{ssh}/  (git push ssh://git@{ssh}/NAME.git main)");
    }
    match sites.first() {
        Some(first) => {
            println!(
                "  http://{addr}/  → {} (revision {})",
                first.domain,
                &first.root.to_hex()[..12]
            );
            for site in &sites {
                for host in &site.hosts {
                    println!("  http://{host}:{}/  (Host: {host})", addr.port());
                }
            }
        }
        None => println!("  http://{addr}/  (no site deployed yet: pass --site DIR)"),
    }
    for d in deployed {
        println!("  deployed {} files for {}", d.files, d.domain);
    }
}

/// Watches `dir`, sending a signal per burst of changes. Changes under the
/// data directory (when it sits inside the site) are ignored.
fn watch(
    dir: &Path,
    data: PathBuf,
) -> Result<(notify::RecommendedWatcher, mpsc::Receiver<()>), DevError> {
    let data = std::fs::canonicalize(&data).unwrap_or(data);
    let (tx, rx) = mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event.paths.iter().any(|p| !p.starts_with(&data))
            && !event.kind.is_access()
        {
            // A full channel already means "redeploy pending".
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| DevError::Watch {
        dir: dir.to_path_buf(),
        source,
    })?;
    watcher
        .watch(dir, RecursiveMode::Recursive)
        .map_err(|source| DevError::Watch {
            dir: dir.to_path_buf(),
            source,
        })?;
    Ok((watcher, rx))
}

/// Redeploys `dir` after each burst of changes until shutdown; a failed
/// redeploy keeps the previous revision live and says why.
async fn redeploy_on_change(
    dir: PathBuf,
    mut changes: mpsc::Receiver<()>,
    target: SiteTarget,
    mut shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            got = changes.recv() => if got.is_none() { break },
            _ = shutdown.wait() => break,
        }
        // Debounce: wait until changes stop arriving.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
        match deploy(&target, &dir).await {
            Ok(deployed) => {
                for d in deployed {
                    info!(domain = %d.domain, revision = %&d.root[..12], files = d.files, "redeployed");
                }
            }
            Err(e) => {
                error!(dir = %dir.display(), "redeploy failed, still serving the previous revision: {e}");
            }
        }
    }
}
