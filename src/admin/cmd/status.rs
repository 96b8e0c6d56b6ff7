//! `status [--json]`: the sites this node serves, each with its revision,
//! file count and certificate state; the WebAssembly counters (JSON only);
//! how often the listeners limited a client (`limited:`); what the last
//! scrub checked, found and repaired (`scrub:`);
//! and, when the node runs a mesh, every cluster node's view.

mod cluster;

use serde::Serialize;

use super::ParseError;
use crate::acme::status::CertStatus;
use crate::admin::table::{Table, abbreviated};
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};

/// The `status` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub json: bool,
}

/// `status --json`.
#[derive(Serialize)]
struct StatusView {
    sites: Vec<SiteView>,
    wasm: WasmView,
    /// Clients limited by each listener since the node started.
    limited: crate::limits::counters::CountersView,
    /// What the last scrub checked, found and repaired.
    scrub: crate::scrub::ScrubReport,
    /// Absent when this node runs no mesh.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<Vec<cluster::NodeEntry>>,
}

/// One served site.
#[derive(Serialize)]
struct SiteView {
    domain: String,
    /// The full revision root, lowercase hex.
    revision: String,
    files: usize,
    certificate: CertificateView,
}

/// A site's certificate, as `acme::status` reads it.
#[derive(Serialize)]
struct CertificateView {
    state: &'static str,
    names: Vec<String>,
    not_after_ms: Option<u64>,
    /// `not_after_ms` as RFC 3339, for people reading the JSON.
    not_after: Option<String>,
    node: Option<String>,
    attempts: u32,
    error: Option<String>,
    retry_at_ms: Option<u64>,
    order_url: Option<String>,
    stage: Option<String>,
}

/// Edge function and transform counters since the node started.
#[derive(Serialize)]
struct WasmView {
    function_calls: u64,
    transform_runs: u64,
}

impl From<CertStatus> for CertificateView {
    fn from(cert: CertStatus) -> CertificateView {
        CertificateView {
            not_after: cert.not_after(),
            state: cert.state,
            names: cert.names,
            not_after_ms: cert.not_after_ms,
            node: cert.node,
            attempts: cert.attempts,
            error: cert.error,
            retry_at_ms: cert.retry_at_ms,
            order_url: cert.order_url,
            stage: cert.stage,
        }
    }
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("status")?;
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

impl Status {
    pub fn parse(words: &mut Words<'_>) -> Result<Status, ParseError> {
        words.end()?;
        Ok(Status { json: words.json() })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let sites = ctx.sites().load().sites();
        let mut served = Vec::with_capacity(sites.len());
        for site in &sites {
            let cert = ctx
                .cert_status(&site.domain)
                .map_err(AdminError::store("read the certificate state"))?;
            served.push((site, cert));
        }
        let cluster = ctx.cluster_views();
        if self.json {
            let wasm = ctx.deployer().wasm_stats();
            let view = StatusView {
                sites: served
                    .into_iter()
                    .map(|(site, cert)| SiteView {
                        domain: site.domain.clone(),
                        revision: site.root.to_hex().to_string(),
                        files: site.files.len(),
                        certificate: cert.into(),
                    })
                    .collect(),
                wasm: WasmView {
                    function_calls: wasm.function_calls,
                    transform_runs: wasm.transform_runs,
                },
                limited: ctx.limited(),
                scrub: ctx.scrubber().report(),
                cluster: cluster.map(|views| views.into_iter().map(Into::into).collect()),
            };
            return Ok(json::line(&view)?);
        }
        let mut table = Table::new("  ", &[]);
        for (site, cert) in &served {
            table.row([
                site.domain.clone(),
                abbreviated(&site.root.to_hex()).to_string(),
                format!("{} files", site.files.len()),
                cert.line(),
            ]);
        }
        let mut out = table.into_text();
        out.push_str(&ctx.limited().line());
        out.push('\n');
        out.push_str(&ctx.scrubber().report().lines());
        if let Some(views) = cluster {
            out.push('\n');
            out.push_str(&cluster::table(&views));
        }
        Ok(out)
    }
}
