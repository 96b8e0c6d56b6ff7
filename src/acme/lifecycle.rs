//! The certificate lifecycle of one node: keeps the TLS snapshot in step
//! with the stored certificates, and, where this node is a domain's issuer,
//! orders a certificate when the domain appears, when its names change and
//! when it is due for renewal, backing off after failures.
//!
//! Every decision reads the store and the site table afresh, so the same
//! loop serves a single node and a cluster whose rows the mesh replicates.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, error, info, warn};

use super::certificate::{self, Parsed};
use super::{AcmeError, account, issuer, order, renewal_info, schedule};
use crate::config::AcmeSettings;
use crate::live::{CertEntry, CertSnapshot, CertTable, Site, SiteTable};
use crate::shutdown::Shutdown;
use crate::store::{CertOrder, CertRow, Store};

/// One order's time limit. A live issuer marks its order as progressing
/// while it runs (see `keep_alive`), so other nodes wait for it whatever
/// the takeover timeout (`[acme] takeover_secs`).
const ORDER_LIMIT: Duration = Duration::from_secs(5 * 60);
/// How many progress marks an issuer writes per takeover timeout: enough
/// that one slow replication round does not hand a live order over.
const MARKS_PER_TIMEOUT: u32 = 4;
/// How long one question about renewal information (ARI) may take.
const ARI_LIMIT: Duration = Duration::from_secs(30);
/// Longest sleep between two looks at the state, so renewals and other
/// nodes' stalled orders are noticed without any event.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// Shortest sleep, so a clock in the past cannot spin the loop.
const MIN_IDLE: Duration = Duration::from_millis(200);

/// What the lifecycle needs from the node.
pub(super) struct Lifecycle {
    pub(super) store: Arc<Store>,
    /// Read for the domains to certify.
    pub(super) sites: Arc<SiteTable>,
    /// Where the certificates are published.
    pub(super) certs: Arc<CertTable>,
    /// `None`: no CA; every domain gets a self-signed certificate (dev).
    pub(super) acme: Option<AcmeSettings>,
    /// This node's name.
    pub(super) node: String,
    /// This node's DNS listener, where challenge publication is checked.
    pub(super) dns: Option<SocketAddr>,
    /// Where orders are counted by result.
    pub(super) metrics: Arc<crate::metrics::Metrics>,
}

/// State kept between passes.
#[derive(Default)]
struct Memory {
    /// Parsed certificates by (domain, not_after, chain length): parsing
    /// once per stored certificate, not per pass.
    parsed: HashMap<(String, u64, usize), Parsed>,
    /// Self-signed certificates by the names they cover.
    self_signed: HashMap<Vec<String>, Parsed>,
    /// The issuer last logged per domain, so a change is logged once.
    issuers: HashMap<String, Option<String>>,
    /// What the CA's renewal information (ARI) said per domain.
    ari: HashMap<String, AriMemo>,
}

/// The CA's renewal suggestion for one certificate, and when to ask again.
struct AriMemo {
    /// The certificate it is about.
    not_after_ms: u64,
    /// When the CA suggests renewing; `None`: no suggestion (no ARI).
    due_ms: Option<u64>,
    next_check_ms: u64,
}

impl Memory {
    /// The CA's suggested renewal time for the certificate ending at
    /// `not_after_ms`, if known.
    fn ari_due(&self, domain: &str, not_after_ms: u64) -> Option<u64> {
        self.ari
            .get(domain)
            .filter(|m| m.not_after_ms == not_after_ms)
            .and_then(|m| m.due_ms)
    }

    /// Whether it is time to ask the CA about this certificate.
    fn ari_check_due(&self, domain: &str, not_after_ms: u64, now: u64) -> bool {
        self.ari
            .get(domain)
            .is_none_or(|m| m.not_after_ms != not_after_ms || now >= m.next_check_ms)
    }

    /// Remembers what the CA answered.
    fn record_ari(
        &mut self,
        domain: &str,
        not_after_ms: u64,
        now: u64,
        asked: Result<Option<renewal_info::Suggestion>, AcmeError>,
    ) {
        let previous = self.ari_due(domain, not_after_ms);
        let (due_ms, next) = match asked {
            Ok(Some(s)) => {
                if previous != Some(s.due_ms) {
                    info!(%domain, due_ms = s.due_ms, "the CA's renewal information (ARI) suggests a renewal time");
                }
                (Some(s.due_ms), s.next_check)
            }
            Ok(None) => {
                debug!(%domain, "the CA offers no renewal information (ARI); renewing on our own schedule");
                (None, renewal_info::unsupported_recheck())
            }
            Err(e) => {
                warn!(%domain, error = %e, "cannot read the CA's renewal information (ARI); asking again in an hour");
                (previous, Duration::from_secs(3600))
            }
        };
        self.ari.insert(
            domain.to_string(),
            AriMemo {
                not_after_ms,
                due_ms,
                next_check_ms: now.saturating_add(next.as_millis() as u64),
            },
        );
    }
}

impl Lifecycle {
    /// Runs until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut memory = Memory::default();
        if self.acme.is_some() && self.dns.is_none() {
            warn!(
                "this node runs no DNS server: DNS-01 challenges it publishes are answered only by other nodes' DNS; add [dns] to node.toml"
            );
        }
        let mut sites = self.sites.subscribe();
        let mut certs = self.store.subscribe_certs();
        // Node table and health: an issuer marked down is replaced at once.
        let mut nodes = self.store.subscribe_dns();
        loop {
            sites.mark_unchanged();
            certs.mark_unchanged();
            nodes.mark_unchanged();
            self.publish(&mut memory);
            if let Err(e) = super::tickets::keep(&self.store, self.certs.tickets(), now_ms()) {
                error!(error = %e, "TLS session ticket keys not updated; keeping the previous ones");
            }
            let wake = match &self.acme {
                Some(acme) => match self.order_due(acme, &mut memory, &mut shutdown).await {
                    Some(wake) => wake,
                    None => return,
                },
                None => MAX_IDLE,
            };
            tokio::select! {
                changed = sites.changed() => if changed.is_err() { return },
                changed = certs.changed() => if changed.is_err() { return },
                changed = nodes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(wake.clamp(MIN_IDLE, MAX_IDLE)) => {},
                _ = shutdown.wait() => return,
            }
        }
    }

    /// Rebuilds the TLS snapshot from the stored certificates (and, without
    /// a CA, self-signed ones for every domain).
    fn publish(&self, memory: &mut Memory) {
        let rows = match self.store.certificates() {
            Ok(rows) => rows,
            Err(e) => {
                error!(error = %e, "certificates not reloaded; serving the previous ones");
                return;
            }
        };
        let mut entries = Vec::new();
        let mut live = std::collections::HashSet::new();
        for row in rows {
            let key = (row.domain.clone(), row.not_after_ms, row.chain_pem.len());
            live.insert(key.clone());
            let parsed = match memory.parsed.get(&key) {
                Some(p) => p.clone(),
                None => match certificate::parse(&row.domain, &row.chain_pem, &row.key_pem) {
                    Ok(p) => {
                        memory.parsed.insert(key, p.clone());
                        p
                    }
                    Err(e) => {
                        error!(domain = %row.domain, error = %e, "stored certificate unusable");
                        continue;
                    }
                },
            };
            entries.push(CertEntry {
                names: row.names.clone(),
                key: parsed.key,
                trusted: true,
            });
        }
        memory.parsed.retain(|k, _| live.contains(k));
        if self.acme.is_none() {
            for site in domain_sites(&self.sites) {
                let names = schedule::names(&site.config);
                if entries
                    .iter()
                    .any(|e| schedule::covers(&e.names, &names[..1]))
                {
                    continue;
                }
                let parsed = match memory.self_signed.get(&names) {
                    Some(p) => p.clone(),
                    None => match certificate::self_signed(&names) {
                        Ok(p) => {
                            info!(domain = %site.domain, "serving a self-signed certificate (no ACME directory configured)");
                            memory.self_signed.insert(names.clone(), p.clone());
                            p
                        }
                        Err(e) => {
                            error!(domain = %site.domain, error = %e, "no certificate");
                            continue;
                        }
                    },
                };
                entries.push(CertEntry {
                    names,
                    key: parsed.key,
                    trusted: false,
                });
            }
        }
        self.certs.publish(CertSnapshot::new(entries));
    }

    /// Orders whatever this node must order now; returns how long to sleep
    /// before looking again, or `None` on shutdown.
    async fn order_due(
        &self,
        acme: &AcmeSettings,
        memory: &mut Memory,
        shutdown: &mut Shutdown,
    ) -> Option<Duration> {
        let mut wake = MAX_IDLE;
        let sites = domain_sites(&self.sites);
        let stored: HashMap<String, CertRow> = match self.store.certificates() {
            Ok(rows) => rows.into_iter().map(|r| (r.domain.clone(), r)).collect(),
            Err(e) => {
                error!(error = %e, "cannot read certificates; trying again later");
                return Some(MAX_IDLE);
            }
        };
        for site in sites {
            let domain = &site.domain;
            // `localhost` and other single-label names cannot get a
            // certificate from a public CA.
            if !domain.contains('.') {
                continue;
            }
            let names = schedule::names(&site.config);
            let now = now_ms();
            let due = |memory: &Memory| {
                stored.get(domain.as_str()).and_then(|cert| {
                    schedule::covers(&cert.names, &names).then(|| {
                        let ours = schedule::renew_at(cert.not_before_ms, cert.not_after_ms);
                        memory
                            .ari_due(domain, cert.not_after_ms)
                            .map_or(ours, |ari| ari.min(ours))
                    })
                })
            };
            let mut due_at = due(memory);
            // The node that ordered a certificate asks the CA about it; the
            // answer can only bring the renewal earlier.
            if let (Some(at), Some(cert)) = (due_at, stored.get(domain.as_str()))
                && now < at
                && cert.issued_by == self.node
                && cert.directory == acme.directory
                && memory.ari_check_due(domain, cert.not_after_ms, now)
            {
                let asked = tokio::select! {
                    r = tokio::time::timeout(ARI_LIMIT, self.renewal_info(acme, cert)) => {
                        r.unwrap_or(Err(AcmeError::Timeout(ARI_LIMIT)))
                    }
                    _ = shutdown.wait() => return None,
                };
                memory.record_ari(domain, cert.not_after_ms, now, asked);
                due_at = due(memory);
            }
            if let Some(due_at) = due_at
                && now < due_at
            {
                wake = wake.min(Duration::from_millis(due_at - now));
                continue;
            }
            let held = match self.store.cert_order(domain) {
                Ok(held) => held,
                Err(e) => {
                    error!(%domain, error = %e, "cannot read the certificate order");
                    continue;
                }
            };
            let nodes = match self.store.nodes() {
                Ok(nodes) => nodes,
                Err(e) => {
                    error!(error = %e, "cannot read the node table");
                    continue;
                }
            };
            let timeout = acme.takeover_secs.saturating_mul(1000).max(1);
            let chosen = issuer::issuer(domain, &nodes, held.as_ref(), now, timeout);
            let logged = memory.issuers.get(domain.as_str()).cloned().flatten();
            if logged.as_deref() != chosen {
                match chosen {
                    Some(node) if node == self.node => {
                        info!(%domain, issuer = %node, "this node orders the certificate")
                    }
                    Some(node) => {
                        info!(%domain, issuer = %node, "another node orders the certificate")
                    }
                    None => warn!(%domain, "no healthy node to order the certificate"),
                }
                memory
                    .issuers
                    .insert(domain.clone(), chosen.map(str::to_string));
            }
            if chosen != Some(self.node.as_str()) {
                // Another node orders; look again when it might time out.
                let since = held.as_ref().map_or(now, |h| h.since_ms);
                let left = if now < since {
                    since - now + timeout
                } else {
                    timeout - (now - since) % timeout.max(1)
                };
                wake = wake.min(Duration::from_millis(left.max(1000)));
                continue;
            }
            let mine = held.filter(|h| h.node == self.node);
            if let Some(h) = &mine
                && h.since_ms > now
            {
                // Backing off after a failure.
                wake = wake.min(Duration::from_millis(h.since_ms - now));
                continue;
            }
            let attempts = mine.as_ref().map_or(0, |h| h.attempts);
            let claim = CertOrder {
                domain: domain.clone(),
                node: self.node.clone(),
                since_ms: now,
                attempts,
                last_error: mine.and_then(|h| h.last_error),
            };
            if let Err(e) = self.store.put_cert_order(&claim) {
                error!(%domain, error = %e, "cannot record the certificate order");
                continue;
            }
            for alias in schedule::uncovered_aliases(&site.config) {
                warn!(%domain, %alias, "alias is outside the domain's zone: our DNS cannot answer its DNS-01 challenge, so HTTPS for it is not covered");
            }
            info!(%domain, names = ?names, directory = %acme.directory, "ordering a certificate");
            let attempt = tokio::time::timeout(ORDER_LIMIT, self.issue(acme, domain, &names));
            let result = tokio::select! {
                r = attempt => r.unwrap_or(Err(AcmeError::Timeout(ORDER_LIMIT))),
                e = self.keep_alive(domain, Duration::from_millis(timeout) / MARKS_PER_TIMEOUT) => Err(e),
                _ = shutdown.wait() => return None,
            };
            match result {
                Ok(cert) => {
                    info!(%domain, not_after_ms = cert.not_after_ms, "certificate issued");
                    if let Err(e) = self.store.finish_cert_order(domain) {
                        error!(%domain, error = %e, "cannot close the certificate order");
                    }
                    // Certificates changed: the next pass republishes.
                    wake = MIN_IDLE;
                }
                Err(e @ AcmeError::TakenOver { .. }) => {
                    // The order row is the new holder's now; writing a
                    // failure would take it back.
                    warn!(%domain, error = %e, "stopped ordering");
                }
                Err(e) => {
                    let attempts = attempts.saturating_add(1);
                    let backoff = schedule::backoff_ms(
                        attempts,
                        acme.retry_secs.saturating_mul(1000),
                        e.rate_limited(),
                    );
                    let retry = now_ms() + backoff;
                    let message = e.to_string();
                    let failed = CertOrder {
                        domain: domain.clone(),
                        node: self.node.clone(),
                        since_ms: retry,
                        attempts,
                        last_error: Some(message.clone()),
                    };
                    if let Err(e) = self.store.put_cert_order(&failed) {
                        error!(%domain, error = %e, "cannot record the failed order");
                    }
                    if stored.contains_key(domain.as_str()) {
                        warn!(%domain, attempts, retry_in_secs = backoff / 1000, error = %message, "certificate renewal failed; still serving the current certificate");
                    } else {
                        warn!(%domain, attempts, retry_in_secs = backoff / 1000, error = %message, "no certificate yet: serving {domain} over HTTP only until the CA issues one");
                    }
                    wake = wake.min(Duration::from_millis(backoff));
                }
            }
        }
        Some(wake)
    }

    /// Marks this node's order for `domain` as progressing every `every`,
    /// so a live issuer keeps it however long the CA takes; returns only
    /// when another node has taken the order over (or the store fails).
    async fn keep_alive(&self, domain: &str, every: Duration) -> AcmeError {
        let every = every.max(Duration::from_millis(250));
        loop {
            tokio::time::sleep(every).await;
            match self.store.touch_cert_order(domain, &self.node, now_ms()) {
                Ok(true) => {}
                Ok(false) => {
                    return AcmeError::TakenOver {
                        domain: domain.to_string(),
                    };
                }
                Err(e) => return e.into(),
            }
        }
    }

    /// Asks the CA for `cert`'s renewal window (ARI).
    async fn renewal_info(
        &self,
        acme: &AcmeSettings,
        cert: &CertRow,
    ) -> Result<Option<renewal_info::Suggestion>, AcmeError> {
        let account = account::load_or_create(&self.store, acme).await?;
        renewal_info::suggestion(&account, &acme.directory, cert).await
    }

    /// Runs one order and stores the certificate.
    async fn issue(
        &self,
        acme: &AcmeSettings,
        domain: &str,
        names: &[String],
    ) -> Result<CertRow, AcmeError> {
        let account = account::load_or_create(&self.store, acme).await?;
        let job = order::Job {
            directory: &acme.directory,
            domain,
            names,
            node: &self.node,
            store: &self.store,
            dns: self.dns,
        };
        let started = std::time::Instant::now();
        let issued = order::order(&account, &job).await;
        let outcome = match &issued {
            Ok(_) => crate::metrics::Outcome::Ok,
            Err(AcmeError::TakenOver { .. }) => crate::metrics::Outcome::Refused,
            Err(_) => crate::metrics::Outcome::Failed,
        };
        self.metrics
            .deploys
            .orders
            .record(outcome, started.elapsed());
        let issued = issued?;
        let parsed = certificate::parse(domain, &issued.chain_pem, &issued.key_pem)?;
        let row = CertRow {
            domain: domain.to_string(),
            names: names.to_vec(),
            chain_pem: issued.chain_pem,
            key_pem: issued.key_pem,
            not_before_ms: parsed.not_before_ms,
            not_after_ms: parsed.not_after_ms,
            directory: acme.directory.clone(),
            issued_by: self.node.clone(),
        };
        self.store.put_certificate(&row)?;
        Ok(row)
    }
}

/// The served sites that need a certificate of their own: every domain,
/// not its previews (the domain's `*.preview` name covers them).
fn domain_sites(sites: &SiteTable) -> Vec<Arc<Site>> {
    let all = sites.load().sites();
    let domains: Vec<String> = all.iter().map(|s| s.domain.clone()).collect();
    all.into_iter()
        .filter(|s| !schedule::is_preview_host(&s.domain, domains.iter().map(String::as_str)))
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
