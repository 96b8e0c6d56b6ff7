//! Generated request targets and headers through the request pipeline
//! (target parsing, path decoding, rules, conditional requests, ranges,
//! encoding negotiation) and the client limits' header checks. Each input
//! is a request target, then `name: value` header lines; whatever the
//! `http` crate accepts of it is served by a small real site. None may
//! panic.

#![cfg(test)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Uri};

use super::limits::ClientLimits;
use super::{path, serve};
use crate::cas::Cas;
use crate::config::{HttpLimits, SiteConfig};
use crate::fuzz::{self, input};
use crate::limits::Counters;
use crate::live::Site;
use crate::tree::{Entry, Manifest, Mode};

const SITE: &str = r#"
[[domain]]
name = "example.com"
[[domain.headers]]
for = "/assets/**"
values = { "cache-control" = "public, max-age=31536000, immutable" }
[[domain.redirects]]
from = "/old/*"
to = "/new/:splat"
status = 301
"#;

/// A served site with text, a subdirectory index and a larger asset
/// (stored with its precompressed variants).
fn site(dir: &Path) -> Site {
    let cas = Cas::open(&dir.join("objects")).unwrap_or_else(|e| panic!("{e}"));
    let mut manifest = Manifest::new();
    let big = "console.log('x');".repeat(200);
    let files: [(&str, &[u8]); 5] = [
        ("index.html", b"<h1>home</h1>"),
        ("docs/index.html", b"<p>docs</p>"),
        ("assets/app.js", big.as_bytes()),
        ("404.html", b"missing"),
        ("caf\u{e9} b.txt", b"unicode"),
    ];
    for (rel, bytes) in files {
        let hash = cas.put_bytes(bytes).unwrap_or_else(|e| panic!("{e}"));
        let _ = cas.ensure_variants(&hash, true);
        let entry = Entry {
            mode: Mode::File,
            size: bytes.len() as u64,
            hash,
        };
        manifest
            .insert(rel, entry)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let config = SiteConfig::parse("makiatto.toml", SITE).unwrap_or_else(|e| panic!("{e}"));
    Site::build(&config.domains[0], &manifest, &cas, SystemTime::now())
}

/// Splits an input into a request for the pipeline, dropping what the
/// `http` crate refuses (a header it refuses never reaches hyper's users).
fn request(raw: &[u8]) -> (String, Option<Request<()>>) {
    let mut lines = raw.split(|b| *b == b'\n');
    let target = lines.next().unwrap_or(&[]);
    let target_text = String::from_utf8_lossy(target).into_owned();
    let Ok(uri) = Uri::try_from(target) else {
        return (target_text, None);
    };
    let mut req = Request::new(());
    *req.uri_mut() = uri;
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            req.headers_mut().append(name, value);
        }
    }
    (target_text, Some(req))
}

#[test]
fn generated_paths_and_headers_never_panic() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let site = site(dir.path());
    let limits = ClientLimits::new(
        HttpLimits {
            requests_per_second: u32::MAX,
            request_burst: u32::MAX,
            ..HttpLimits::default()
        },
        Arc::new(Counters::default()),
    );
    let peer = SocketAddr::from(([198, 51, 100, 7], 40000));
    let seeds: Vec<Vec<u8>> = [
        "/\nhost: example.com",
        "/index.html\nif-none-match: \"abc\", W/\"def\"\naccept-encoding: br;q=0.9, gzip, zstd;q=0",
        "/assets/app.js\nrange: bytes=0-10,20-\naccept-encoding: gzip",
        "/assets/app.js\nrange: bytes=-5\nif-range: \"x\"",
        "/docs\nif-modified-since: Sun, 06 Nov 1994 08:49:37 GMT",
        "/docs/\ncontent-length: 12",
        "/old/a/b?x=1\nhost: example.com",
        "/caf%C3%A9%20b.txt",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/a/../../b//c/./d",
        "*",
        "http://example.com/index.html",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let dictionary: [&[u8]; 12] = [
        b"%", b"%2f", b"%00", b"%c0%af", b"..", b"/", b"\n", b": ", b"bytes=", b",", b";q=", b"\"",
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    fuzz::run(
        "http paths and headers",
        0x4770,
        |rng| input::generate(rng, &seeds, &dictionary),
        |raw| {
            let (target, req) = request(raw);
            let _ = path::parse(&target);
            if let Some(req) = req {
                let _ = limits.refusal(&req, peer);
                let routed = runtime.block_on(serve::site_response(
                    &req,
                    &site,
                    &crate::live::Visitor::ANYONE,
                ));
                if let serve::Routed::Answer(resp) = routed {
                    assert!(resp.status().as_u16() < 500 || resp.status().as_u16() == 503);
                }
            }
        },
    );
}
