//! The request pipeline for one site: path → rules → method → file →
//! conditional → encoding → range → response. A proxy rule's match leaves
//! the pipeline at the rules step (`Routed::Proxy`), for any method: the
//! caller forwards the request (`proxy/`) and applies the headers rules to
//! the backend's answer with [`proxied_headers`].
//!
//! Each step is a small function over data precomputed per revision, so a
//! request costs a few hash lookups and, for small files, no disk access.

use bytes::Bytes;
use hyper::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderValue, LAST_MODIFIED, LOCATION, RANGE, VARY,
};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use super::body::Body;
use super::path::{self, SitePath};
use super::range::{self, RangeRequest};
use super::{conditional, negotiate};
use crate::cas::Encoding;
use crate::live::{RuleAction, Site, SiteFile, Visitor, cacheable};

/// HTML and other files revalidate on every visit by default, so a deploy
/// shows at once; a headers rule can set a longer cache for assets.
const DEFAULT_CACHE_CONTROL: HeaderValue =
    HeaderValue::from_static("public, max-age=0, must-revalidate");

/// What the pipeline made of a request.
#[derive(Debug)]
pub enum Routed {
    /// The site's answer.
    Answer(Response<Body>),
    /// A proxy rule matched: forward the request to `url`; `path` is the
    /// decoded request path, which headers rules match.
    Proxy { url: String, path: String },
}

/// The answer of `site` to `req` from `visitor`, or the proxy rule it
/// matched.
pub async fn site_response<B>(req: &Request<B>, site: &Site, visitor: &Visitor<'_>) -> Routed {
    let path = match path::parse(req.uri().path()) {
        Ok(path) => path,
        Err(e) => {
            let status = match e {
                path::PathError::TooLong => StatusCode::URI_TOO_LONG,
                _ => StatusCode::BAD_REQUEST,
            };
            return Routed::Answer(text(status, e.message()));
        }
    };
    let query = req.uri().query();

    let has_file =
        |p: &str| path::parse(p).is_ok_and(|sp| !matches!(resolve(site, &sp), Resolved::Missing));
    let action = site.rules.route_for(visitor, &path.path, query, &has_file);
    if let Some(RuleAction::Proxy { url }) = action {
        return Routed::Proxy {
            url,
            path: path.path,
        };
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Routed::Answer(resp);
    }
    let (resolved, status) = match action {
        Some(RuleAction::Redirect { status, location }) => {
            return Routed::Answer(redirect(status, &location));
        }
        // Handled above.
        Some(RuleAction::Proxy { .. }) => (Resolved::Missing, StatusCode::NOT_FOUND),
        Some(RuleAction::Rewrite { path: target }) => {
            (resolve_target(site, &target), StatusCode::OK)
        }
        Some(RuleAction::NotFound { path: target }) => {
            (resolve_target(site, &target), StatusCode::NOT_FOUND)
        }
        Some(RuleAction::Status {
            status,
            path: target,
        }) => (
            resolve_target(site, &target),
            StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND),
        ),
        None => (resolve(site, &path), StatusCode::OK),
    };
    let mut resp = match resolved {
        Resolved::File(key, file) => {
            let mut resp = file_response(req, site, file, status).await;
            add_rule_headers(&mut resp, site, key, &path.path, visitor.host);
            resp
        }
        Resolved::AddSlash => {
            let mut location = format!("{}/", req.uri().path());
            if let Some(q) = query {
                location.push('?');
                location.push_str(q);
            }
            redirect(308, &location)
        }
        Resolved::Missing => not_found(req, site, &path.path, visitor.host).await,
    };
    if head {
        *resp.body_mut() = Body::Empty;
    }
    Routed::Answer(resp)
}

/// Applies `site`'s headers rules to a proxied answer, both kinds matched
/// against the request path (there is no served file).
pub fn proxied_headers(resp: &mut Response<Body>, site: &Site, request_path: &str, host: &str) {
    if site.rules.is_empty() {
        return;
    }
    site.rules
        .apply_headers(resp.headers_mut(), request_path, request_path, host);
}

/// The plain answer for a host no site claims.
pub fn unknown_host(host: &str) -> Response<Body> {
    let shown: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    text(
        StatusCode::NOT_FOUND,
        &format!(
            "No site is configured for host \"{shown}\" on this makiatto node.\n\
             Add it as a [[domain]] name or alias in the site's makiatto.toml and deploy.\n"
        ),
    )
}

/// What a site path resolved to.
enum Resolved<'a> {
    File(&'a str, &'a SiteFile),
    /// A directory with an index: redirect so relative links keep working.
    AddSlash,
    Missing,
}

/// Clean-URL resolution: `/` → `index.html`; `/a` → `a`, `a.html`, or a
/// redirect to `/a/` when `a/index.html` exists; `/a/` → `a/index.html`.
fn resolve<'a>(site: &'a Site, path: &SitePath) -> Resolved<'a> {
    let key = path.key();
    let found = |k: String| {
        site.files
            .get_key_value(k.as_str())
            .map(|(k, f)| Resolved::File(k, f))
    };
    if key.is_empty() {
        return found("index.html".into()).unwrap_or(Resolved::Missing);
    }
    if path.trailing_slash {
        return found(format!("{key}/index.html")).unwrap_or(Resolved::Missing);
    }
    if let Some((k, file)) = site.files.get_key_value(key) {
        return Resolved::File(k, file);
    }
    if let Some(r) = found(format!("{key}.html")) {
        return r;
    }
    if site
        .files
        .contains_key(format!("{key}/index.html").as_str())
    {
        return Resolved::AddSlash;
    }
    Resolved::Missing
}

/// Resolution of a rewrite target (a path from the site config).
fn resolve_target<'a>(site: &'a Site, target: &str) -> Resolved<'a> {
    match path::parse(target) {
        Ok(path) => match resolve(site, &path) {
            // A rewrite serves content; it never bounces the client.
            Resolved::AddSlash => site
                .files
                .get_key_value(format!("{}/index.html", path.key()).as_str())
                .map_or(Resolved::Missing, |(k, f)| Resolved::File(k, f)),
            other => other,
        },
        Err(_) => Resolved::Missing,
    }
}

async fn not_found<B>(
    req: &Request<B>,
    site: &Site,
    request_path: &str,
    host: &str,
) -> Response<Body> {
    match site.files.get_key_value("404.html") {
        Some((key, file)) => {
            let mut resp = file_response(req, site, file, StatusCode::NOT_FOUND).await;
            add_rule_headers(&mut resp, site, key, request_path, host);
            resp
        }
        None => text(StatusCode::NOT_FOUND, "404 not found\n"),
    }
}

/// The response carrying `file` with `status` (200, or 404 for error pages).
async fn file_response<B>(
    req: &Request<B>,
    site: &Site,
    file: &SiteFile,
    status: StatusCode,
) -> Response<Body> {
    let headers = req.headers();
    let hash_hex = file.hash.to_hex();
    let hex = hash_hex.as_str();
    let mut builder = Response::builder()
        .header(CONTENT_TYPE, file.content_type.clone())
        .header(LAST_MODIFIED, site.last_modified_header.clone())
        .header(CACHE_CONTROL, DEFAULT_CACHE_CONTROL);
    for (name, value) in &file.extra_headers {
        builder = builder.header(name, value.clone());
    }
    let has_variants = file.variants != Default::default();
    if has_variants {
        builder = builder.header(VARY, HeaderValue::from_static("accept-encoding"));
    }
    let ok = status == StatusCode::OK;
    if ok && conditional::not_modified(headers, hex, site.last_modified) {
        let encoding = negotiate::choose(accept(headers, ACCEPT_ENCODING), &file.variants);
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .header(ETAG, file.etag(encoding).clone())
            .body(Body::Empty)
            .unwrap_or_else(|_| internal_error());
    }

    let range_header = accept(headers, RANGE);
    let wants_range = ok
        && range_header.is_some()
        && conditional::range_applies(headers, hex, site.last_modified);
    let range = if wants_range {
        range::parse(range_header, file.size)
    } else {
        RangeRequest::Full
    };
    if ok {
        builder = builder.header(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    match range {
        RangeRequest::Unsatisfiable => builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(CONTENT_RANGE, format!("bytes */{}", file.size))
            .header(CONTENT_LENGTH, 0)
            .body(Body::Empty)
            .unwrap_or_else(|_| internal_error()),
        RangeRequest::Partial { start, end } => {
            let len = end - start + 1;
            match body(file, Encoding::Identity, file.size, start, len).await {
                Ok(body) => builder
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(ETAG, file.etag(Encoding::Identity).clone())
                    .header(CONTENT_RANGE, format!("bytes {start}-{end}/{}", file.size))
                    .header(CONTENT_LENGTH, len)
                    .body(body)
                    .unwrap_or_else(|_| internal_error()),
                Err(e) => object_error(file, e),
            }
        }
        RangeRequest::Full => {
            let encoding = negotiate::choose(accept(headers, ACCEPT_ENCODING), &file.variants);
            let len = negotiate::size_of(&file.variants, encoding).unwrap_or(file.size);
            if encoding != Encoding::Identity {
                builder = builder.header(
                    CONTENT_ENCODING,
                    HeaderValue::from_static(encoding.as_str()),
                );
            }
            match body(file, encoding, len, 0, len).await {
                Ok(body) => builder
                    .status(status)
                    .header(ETAG, file.etag(encoding).clone())
                    .header(CONTENT_LENGTH, len)
                    .body(body)
                    .unwrap_or_else(|_| internal_error()),
                Err(e) => object_error(file, e),
            }
        }
    }
}

/// `len` bytes from `start` of the `encoding` object (of `total` bytes).
///
/// Small objects are read once and kept in memory; large ones are mapped
/// once (objects never change after they are stored, and a deleted object's
/// inode lives on while mapped), so every response is a zero-copy slice.
/// What is read is checked against the object's name before it is kept
/// (`sound`), so a damaged file is answered with a 500, never served.
async fn body(
    file: &SiteFile,
    encoding: Encoding,
    total: u64,
    start: u64,
    len: u64,
) -> std::io::Result<Body> {
    let slice = |bytes: &Bytes| bytes.slice(start as usize..(start + len) as usize);
    if let Some(bytes) = file.cached_body(encoding) {
        return Ok(Body::full(slice(bytes)));
    }
    let path = file.object_path(encoding);
    let (hash, size) = (file.hash, file.size);
    let bytes = if cacheable(total) {
        let bytes = Bytes::from(tokio::fs::read(&path).await?);
        sound(&bytes, &path, total, hash, size, encoding)?;
        bytes
    } else {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = map_object(&path)?;
            sound(&bytes, &path, total, hash, size, encoding)?;
            Ok::<_, std::io::Error>(bytes)
        })
        .await
        .map_err(std::io::Error::other)??
    };
    file.offer_body(encoding, &bytes);
    Ok(Body::full(slice(&bytes)))
}

/// Checks that `bytes`, read from `path` as the `encoding` form of object
/// `hash` (`size` bytes), are `total` bytes long and that the object's
/// bytes hash to its name: always for the object itself, by decoding for
/// a small variant. A large variant is left to the scrub, which reads
/// every variant at its own pace.
fn sound(
    bytes: &[u8],
    path: &std::path::Path,
    total: u64,
    hash: blake3::Hash,
    size: u64,
    encoding: Encoding,
) -> std::io::Result<()> {
    let damaged = |what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} {what}", path.display()),
        )
    };
    if bytes.len() as u64 != total {
        return Err(damaged(format!(
            "has {} bytes, expected {total}",
            bytes.len()
        )));
    }
    let decoded;
    let object = match encoding {
        Encoding::Identity => bytes,
        _ if !cacheable(size) => return Ok(()),
        _ => {
            decoded = crate::cas::decompress(encoding, bytes, size)
                .map_err(|e| damaged(format!("does not decode: {e}")))?;
            &decoded[..]
        }
    };
    if blake3::hash(object) != hash {
        return Err(damaged(
            "holds bytes that do not hash to its object's name (damaged on disk; the scrub sets it aside)"
                .to_string(),
        ));
    }
    Ok(())
}

/// Maps a stored object read-only.
fn map_object(path: &std::path::Path) -> std::io::Result<Bytes> {
    let file = std::fs::File::open(path)?;
    // SAFETY: CAS objects are written once under a temp name, made
    // read-only, and linked into place; nothing writes or truncates them
    // afterwards (gc only unlinks), so the mapping never changes under us.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}

fn add_rule_headers(
    resp: &mut Response<Body>,
    site: &Site,
    key: &str,
    request_path: &str,
    host: &str,
) {
    if site.rules.is_empty() {
        return;
    }
    site.rules
        .apply_headers(resp.headers_mut(), &format!("/{key}"), request_path, host);
}

fn accept(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<&[u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

fn redirect(status: u16, location: &str) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::PERMANENT_REDIRECT);
    match HeaderValue::from_str(location) {
        Ok(value) => Response::builder()
            .status(status)
            .header(LOCATION, value)
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::full(format!("redirecting to {location}\n")))
            .unwrap_or_else(|_| internal_error()),
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid redirect target\n",
        ),
    }
}

fn object_error(file: &SiteFile, e: std::io::Error) -> Response<Body> {
    tracing::error!(object = %file.object.display(), error = %e, "cannot read stored object");
    internal_error()
}

fn internal_error() -> Response<Body> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error reading the site\n",
    )
}

/// A short plain-text response.
pub fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = Response::new(Body::full(Bytes::copy_from_slice(message.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
