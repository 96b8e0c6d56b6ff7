//! The site snapshot: the sites this node serves, as one immutable value.
//!
//! A `Site` is one domain at one revision with everything a request needs
//! computed once: each file's object path, ETag, content type and stored
//! encodings, and the compiled rules. Deploys publish a new `Sites` by a
//! single pointer swap, so a request sees the old revision or the new one,
//! never a mix, and the request path never touches SQLite. DNS and ACME
//! read the same snapshot for the domains it names.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};

use super::Rules;
use super::body_cache;
use crate::cas::{Cas, Encoding, Variants, is_compressible};
use crate::config::Domain;
use crate::tree::Manifest;
use crate::wasm::Function;

/// One servable file of a revision.
#[derive(Debug)]
pub struct SiteFile {
    pub hash: blake3::Hash,
    pub size: u64,
    /// Path of the object in the CAS.
    pub object: PathBuf,
    /// Strong ETags per encoding (see `encoding_index`): the quoted blake3 of
    /// the identity bytes, suffixed with the coding for compressed variants.
    etags: [HeaderValue; 4],
    pub content_type: HeaderValue,
    /// Precompressed variants stored beside the object.
    pub variants: Variants,
    /// Bodies per encoding, read once for small files.
    bodies: [OnceLock<Bytes>; 4],
    /// Headers a transform attached to this file.
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Slot of an encoding in per-encoding arrays.
fn encoding_index(encoding: Encoding) -> usize {
    match encoding {
        Encoding::Identity => 0,
        Encoding::Gzip => 1,
        Encoding::Zstd => 2,
        Encoding::Brotli => 3,
    }
}

impl SiteFile {
    /// The ETag of the `encoding` representation.
    pub fn etag(&self, encoding: Encoding) -> &HeaderValue {
        &self.etags[encoding_index(encoding)]
    }

    /// The cached body in `encoding`, if it has been read before.
    pub fn cached_body(&self, encoding: Encoding) -> Option<&Bytes> {
        self.bodies[encoding_index(encoding)].get()
    }

    /// Offers a freshly read body to the cache. Mapped (large) bodies are
    /// always kept: they cost address space, not memory. Read (small)
    /// bodies are kept while the body cache's budget allows.
    pub fn offer_body(&self, encoding: Encoding, bytes: &Bytes) {
        if !body_cache::cacheable(bytes.len() as u64) {
            let _ = self.bodies[encoding_index(encoding)].set(bytes.clone());
            return;
        }
        let len = bytes.len();
        if body_cache::reserve(len)
            && self.bodies[encoding_index(encoding)]
                .set(bytes.clone())
                .is_err()
        {
            body_cache::release(len);
        }
    }

    /// Path of the stored object for `encoding`.
    pub fn object_path(&self, encoding: Encoding) -> PathBuf {
        if encoding == Encoding::Identity {
            return self.object.clone();
        }
        let mut path = self.object.clone().into_os_string();
        path.push(encoding.suffix());
        PathBuf::from(path)
    }
}

impl Drop for SiteFile {
    fn drop(&mut self) {
        for body in self.bodies.iter().filter_map(OnceLock::get) {
            if body_cache::cacheable(body.len() as u64) {
                body_cache::release(body.len());
            }
        }
    }
}

/// One domain at one revision.
#[derive(Debug)]
pub struct Site {
    /// The apex name.
    pub domain: String,
    /// Every host name this site answers (apex and aliases), lowercase.
    pub hosts: Vec<String>,
    /// Merkle root of the served tree.
    pub root: blake3::Hash,
    /// `x-makiatto-revision` value: the first 12 hex digits of the root.
    pub revision_header: HeaderValue,
    /// `Last-Modified` for every file: when the revision was deployed.
    pub last_modified: SystemTime,
    pub last_modified_header: HeaderValue,
    /// Request-path key (no leading `/`) → file.
    pub files: HashMap<Box<str>, SiteFile>,
    pub rules: Rules,
    /// The domain's config at this revision, for subsystems beside HTTP
    /// that answer from the same snapshot (DNS records, CAA).
    pub config: Arc<Domain>,
    /// Edge functions by route (the module path without `.wasm`, no
    /// leading `/`).
    pub functions: HashMap<Box<str>, Arc<Function>>,
}

/// The WebAssembly parts of a revision, prepared by deploy.
#[derive(Debug, Default)]
pub struct SiteWasm {
    /// Functions by route.
    pub functions: HashMap<String, Arc<Function>>,
    /// Paths in the tree never served as files: configured modules and
    /// env files.
    pub hidden: HashSet<String>,
    /// What transforms changed about a file besides its bytes.
    pub overrides: HashMap<String, FileOverride>,
}

/// A transform's content type and headers for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOverride {
    pub content_type: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Site {
    /// Indexes `manifest` (already stored in `cas`) for serving as `domain`.
    pub fn build(domain: &Domain, manifest: &Manifest, cas: &Cas, deployed_at: SystemTime) -> Site {
        Site::build_with_wasm(domain, manifest, cas, deployed_at, SiteWasm::default())
    }

    /// [`Site::build`] with the revision's functions, hidden module files
    /// and transform overrides.
    pub fn build_with_wasm(
        domain: &Domain,
        manifest: &Manifest,
        cas: &Cas,
        deployed_at: SystemTime,
        wasm: SiteWasm,
    ) -> Site {
        let root = manifest.root();
        let files = manifest
            .iter()
            .filter(|(path, _)| !wasm.hidden.contains(*path) && !super::is_rule_file(path))
            .map(|(path, entry)| {
                let found = wasm.overrides.get(path);
                let file = SiteFile {
                    hash: entry.hash,
                    size: entry.size,
                    object: cas.path(&entry.hash),
                    etags: etags(&entry.hash),
                    content_type: found
                        .and_then(|o| o.content_type.as_deref())
                        .and_then(|t| HeaderValue::from_str(t).ok())
                        .unwrap_or_else(|| content_type(path)),
                    variants: if is_compressible(path) {
                        cas.variants(&entry.hash)
                    } else {
                        Variants::default()
                    },
                    bodies: Default::default(),
                    extra_headers: found
                        .map(|o| parsed_headers(&o.headers))
                        .unwrap_or_default(),
                };
                (Box::from(path), file)
            })
            .collect();
        let mut hosts = vec![domain.name.clone()];
        hosts.extend(domain.aliases.iter().cloned());
        // Whole seconds: HTTP dates have no finer resolution, and
        // If-Modified-Since comparisons must round-trip.
        let last_modified = deployed_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(SystemTime::UNIX_EPOCH, |d| {
                SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs())
            });
        Site {
            domain: domain.name.clone(),
            hosts,
            root,
            revision_header: header_value(&root.to_hex()[..12]),
            last_modified,
            last_modified_header: header_value(&httpdate::fmt_http_date(last_modified)),
            files,
            rules: super::compile_rules(domain, manifest, cas).0,
            config: Arc::new(domain.clone()),
            functions: wasm
                .functions
                .into_iter()
                .map(|(route, f)| (Box::from(route), f))
                .collect(),
        }
    }

    /// The function answering request path `path` (with its leading `/`).
    pub fn function(&self, path: &str) -> Option<&Arc<Function>> {
        if self.functions.is_empty() {
            return None;
        }
        self.functions.get(path.strip_prefix('/').unwrap_or(path))
    }

    /// The file at request-path key `key` (no leading `/`).
    pub fn file(&self, key: &str) -> Option<&SiteFile> {
        self.files.get(key)
    }
}

/// The routing table of one snapshot: host → site.
#[derive(Debug, Default)]
pub struct Sites {
    hosts: HashMap<String, Arc<Site>>,
    /// Served for unknown hosts in dev mode, so `http://127.0.0.1:8080/` works.
    fallback: Option<Arc<Site>>,
}

impl Sites {
    /// The site for a `Host` value (port and trailing dot ignored, any case).
    pub fn for_host(&self, host: &str) -> Option<&Arc<Site>> {
        let name = host_name(host);
        let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.hosts.get(&name.to_ascii_lowercase())
        } else {
            self.hosts.get(name)
        };
        found.or(self.fallback.as_ref())
    }

    /// Every site, in domain order.
    pub fn sites(&self) -> Vec<Arc<Site>> {
        let mut sites: Vec<_> = self.hosts.values().cloned().collect();
        sites.sort_by(|a, b| a.domain.cmp(&b.domain));
        sites.dedup_by(|a, b| Arc::ptr_eq(a, b));
        sites
    }
}

/// The live snapshot, swapped whole on every activation.
#[derive(Debug)]
pub struct SiteTable {
    current: ArcSwap<Sites>,
    /// Whether unknown hosts get the first site (dev mode).
    fallback_to_first: bool,
    /// Counts publications, so other subsystems (DNS zones) can rebuild
    /// their own snapshots when the set of sites changes.
    version: tokio::sync::watch::Sender<u64>,
}

impl SiteTable {
    /// An empty table.
    pub fn new(fallback_to_first: bool) -> SiteTable {
        SiteTable {
            current: ArcSwap::from_pointee(Sites::default()),
            fallback_to_first,
            version: tokio::sync::watch::Sender::new(0),
        }
    }

    /// A receiver that changes whenever a new snapshot is published.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Sites> {
        self.current.load_full()
    }

    /// Replaces the snapshot with `sites`; the first one is the dev-mode
    /// fallback.
    pub fn publish(&self, sites: Vec<Arc<Site>>) {
        let mut hosts = HashMap::new();
        for site in &sites {
            for host in &site.hosts {
                hosts.insert(host.clone(), site.clone());
            }
        }
        let fallback = if self.fallback_to_first {
            sites.first().cloned()
        } else {
            None
        };
        self.current.store(Arc::new(Sites { hosts, fallback }));
        self.version.send_modify(|v| *v += 1);
    }
}

/// The host part of a `Host` header value: no port, no trailing dot.
pub fn host_name(host: &str) -> &str {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: "[::1]:8080".
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    name.strip_suffix('.').unwrap_or(name)
}

fn etags(hash: &blake3::Hash) -> [HeaderValue; 4] {
    let hex = hash.to_hex();
    [
        Encoding::Identity,
        Encoding::Gzip,
        Encoding::Zstd,
        Encoding::Brotli,
    ]
    .map(|encoding| match encoding {
        Encoding::Identity => header_value(&format!("\"{hex}\"")),
        other => header_value(&format!("\"{hex}-{}\"", other.as_str())),
    })
}

/// Header pairs a transform returned, minus any that are not valid HTTP.
fn parsed_headers(pairs: &[(String, String)]) -> Vec<(HeaderName, HeaderValue)> {
    pairs
        .iter()
        .filter_map(|(n, v)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect()
}

/// The content type a file is served with, from its name.
pub fn content_type(path: &str) -> HeaderValue {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "json" | "xml" | "svg" | "manifest+json"
        );
    if textual {
        header_value(&format!("{}; charset=utf-8", mime.essence_str()))
    } else {
        header_value(mime.essence_str())
    }
}

fn header_value(text: &str) -> HeaderValue {
    // Every caller passes hex, an HTTP date or a MIME type: all visible ASCII.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_ports_and_trailing_dots() {
        assert_eq!(host_name("example.com:8080"), "example.com");
        assert_eq!(host_name("example.com."), "example.com");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("example.com"), "example.com");
    }

    #[test]
    fn text_types_carry_a_charset() {
        assert_eq!(content_type("a/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("logo.png"), "image/png");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}
