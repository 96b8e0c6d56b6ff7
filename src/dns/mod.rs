//! Authoritative GeoDNS for every hosted domain.
//!
//! Every node answers for every domain it serves, sending each visitor to
//! the nearest healthy node by great-circle distance from where the client
//! (its EDNS Client Subnet, else the resolver) is, so no anycast or BGP is
//! needed. Queries are answered from an immutable [`zone::Snapshot`] swapped
//! whole when sites, nodes, node health or ACME challenges change; a query
//! never touches SQLite and never leaves the snapshot (no recursion: names
//! outside hosted zones are REFUSED).
//!
//! - `server.rs`: binding and the request handler (hickory-server's)
//! - `udp.rs`, `tcp.rs`: the listeners, with bounded work and connections
//! - `exchange.rs`: one message in, one out; FORMERR for short messages
//! - `fast.rs`: the UDP fast path, answering plain queries from bytes
//! - `prepared.rs`: the snapshot's answers rendered to wire bytes
//! - `mmsg.rs`: batched UDP receive and send (`recvmmsg`, `sendmmsg`)
//! - `rrl.rs`: response rate limiting per client prefix
//! - `answer.rs`: one question → sections and response code
//! - `zone.rs`: the snapshot and how it is built
//! - `select.rs`: nearest healthy nodes
//! - `geo.rs`: the MMDB database, reloaded on change
//! - `ecs.rs`: EDNS Client Subnet
//! - `setup.rs`: the registrar steps `maki dns setup` prints
//! - `caa.rs`: the default CAA record, naming the configured CA
//! - `tls.rs`: DNS over TLS (RFC 7858) with the node's certificates

pub mod answer;
pub mod caa;
pub mod ecs;
pub mod exchange;
pub mod fast;
mod fuzz;
pub mod geo;
pub mod mmsg;
pub mod prepared;
pub mod rrl;
pub mod select;
pub mod server;
pub mod setup;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod zone;

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tracing::{error, info};

use crate::config::NodeConfig;
use crate::live::SiteTable;
use crate::services::Services;
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use geo::{GeoError, GeoIp};
use zone::{Settings, Snapshot, ZoneSource};

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}; fix [dns] geoip_db in node.toml")]
    Geo(#[from] GeoError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for DNS over TLS on {addr}: {source}")]
    TlsListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the DNS server answers from and how it changes.
struct Sources {
    sites: Arc<SiteTable>,
    store: Arc<Store>,
    geo: Arc<GeoIp>,
    settings: Settings,
    /// CAA values of domains that list none (`caa.rs`).
    default_caa: Vec<String>,
}

impl Sources {
    /// A fresh snapshot of everything DNS answers.
    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let snapshot = self.sites.load();
        let sources: Vec<ZoneSource> = snapshot
            .sites()
            .iter()
            .map(|site| ZoneSource {
                domain: caa::with_defaults(&site.config, &self.default_caa),
                previews: Vec::new(),
                permalinks: snapshot.permalinks(&site.domain),
            })
            .collect();
        let nodes = self.store.nodes()?;
        let acme = self.store.acme_challenges()?;
        Ok(zone::build(
            &sources,
            &nodes,
            &acme,
            &self.geo,
            self.settings,
        ))
    }
}

/// The running DNS server.
pub struct Dns {
    /// Where UDP and TCP are bound (same port); `None` when the node has
    /// no DNS listener configured.
    pub addr: Option<SocketAddr>,
    /// Where DNS over TLS is bound, when `[dns] tls_listen` asks for it.
    pub dot_addr: Option<SocketAddr>,
    /// The server's tasks; they end on shutdown.
    pub tasks: JoinSet<()>,
}

/// The GeoIP database `config` names (`[dns] geoip_db`), or one that knows
/// nothing.
pub fn open_geo(config: &NodeConfig) -> Result<GeoIp, DnsError> {
    match config.dns.as_ref().and_then(|d| d.geoip_db.as_ref()) {
        Some(path) => Ok(GeoIp::open(path)?),
        None => Ok(GeoIp::none()),
    }
}

/// Binds UDP and TCP on `config.dns`'s `listen` (and DNS over TLS on its
/// `tls_listen`, with the live certificates) and answers from
/// the live sites and the store until `shutdown`. Does nothing (no
/// addresses) when the node has no DNS listener configured.
pub async fn start(
    config: &NodeConfig,
    services: &Services,
    shutdown: Shutdown,
) -> Result<Dns, DnsError> {
    let mut tasks = JoinSet::new();
    let Some(dns) = &config.dns else {
        return Ok(Dns {
            addr: None,
            dot_addr: None,
            tasks,
        });
    };
    let store = services.store.clone();
    let certs = services.live.certs.clone();
    let listen = dns.listen;
    let geo = services.geo.clone();
    let sources = Arc::new(Sources {
        sites: services.live.sites.clone(),
        store: store.clone(),
        geo: geo.clone(),
        settings: Settings {
            ttl: dns.ttl,
            answers: dns.answers,
        },
        default_caa: caa::default_values(config.acme_settings().as_ref()),
    });
    let snapshot = Arc::new(ArcSwap::from_pointee(sources.snapshot()?));
    let (udp, tcp) = server::bind(listen)
        .await
        .map_err(|source| DnsError::Listen {
            addr: listen,
            source,
        })?;
    let addr = udp.local_addr().map_err(|source| DnsError::Listen {
        addr: listen,
        source,
    })?;

    let geo_reloaded = Arc::new(Notify::new());
    let notify = geo_reloaded.clone();
    tasks.spawn(geo::watch(geo.clone(), shutdown.clone(), move || {
        notify.notify_one()
    }));
    tasks.spawn(rebuild_on_change(
        sources,
        snapshot.clone(),
        geo_reloaded,
        shutdown.clone(),
    ));

    let handler = Arc::new(server::Handler {
        snapshot,
        geo,
        metrics: services.metrics.clone(),
    });
    let limits = config.limits.dns.clone();
    if dns.tls_listen.is_none()
        && let Some(dot) = dns.tls_auto
    {
        tasks.spawn(tls::serve_once_certified(
            handler.clone(),
            dot,
            certs.clone(),
            store.clone(),
            config.place.name.clone(),
            limits.clone(),
            services.limited.clone(),
            shutdown.clone(),
        ));
    }
    let dot_addr = match dns.tls_listen {
        Some(addr) => {
            let (listener, acceptor, bound) = tls::bind(addr, certs).await?;
            let (handler, limits, counters) =
                (handler.clone(), limits.clone(), services.limited.clone());
            let dot_shutdown = shutdown.clone();
            tasks.spawn(async move {
                tcp::serve_tls(listener, acceptor, handler, &limits, counters, dot_shutdown).await
            });
            Some(bound)
        }
        None => None,
    };
    tasks.spawn(udp::serve(
        udp,
        handler.clone(),
        Arc::new(rrl::Rrl::new(&limits)),
        services.limited.clone(),
        limits.udp_workers,
        shutdown.clone(),
    ));
    let counters = services.limited.clone();
    tasks.spawn(async move { tcp::serve(tcp, handler, &limits, counters, shutdown).await });
    info!(dns = %addr, dot = ?dot_addr, geoip = ?dns.geoip_db.as_deref(), "DNS listening");
    Ok(Dns {
        addr: Some(addr),
        dot_addr,
        tasks,
    })
}

/// Rebuilds the snapshot whenever sites, the store's DNS rows or the GeoIP
/// database change. Bursts coalesce: watch channels keep only the latest.
async fn rebuild_on_change(
    sources: Arc<Sources>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    geo_reloaded: Arc<Notify>,
    mut shutdown: Shutdown,
) {
    let mut sites = sources.sites.subscribe();
    let mut store = sources.store.subscribe_dns();
    loop {
        tokio::select! {
            changed = sites.changed() => if changed.is_err() { return },
            changed = store.changed() => if changed.is_err() { return },
            _ = geo_reloaded.notified() => {},
            _ = shutdown.wait() => return,
        }
        sites.mark_unchanged();
        store.mark_unchanged();
        let sources = sources.clone();
        match tokio::task::spawn_blocking(move || sources.snapshot()).await {
            Ok(Ok(fresh)) => snapshot.store(Arc::new(fresh)),
            Ok(Err(e)) => {
                error!(error = %e, "DNS zones not rebuilt; answering from the previous ones")
            }
            Err(e) => error!(error = %e, "DNS zone rebuild failed"),
        }
    }
}
