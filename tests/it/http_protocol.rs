//! HTTP semantics of static responses: validators and 304, ranges, HEAD,
//! content-encoding negotiation over precompressed variants, and methods.

use std::io::Read;

use crate::support::{Node, Reply, Xorshift, temp_dir, write_file};

/// A compressible page (repetitive HTML, ~40 KiB) and an incompressible blob.
struct Fixture {
    _site: tempfile::TempDir,
    node: Node,
    page: Vec<u8>,
    blob: Vec<u8>,
}

fn fixture() -> Fixture {
    let site = temp_dir();
    let mut page = String::from("<!doctype html><title>long</title>\n");
    for i in 0..800 {
        page.push_str(&format!(
            "<p class=\"row\">paragraph number {i} of the long page</p>\n"
        ));
    }
    let page = page.into_bytes();
    let blob = Xorshift::new(42).bytes(10_000);
    write_file(site.path(), "index.html", "<h1>home</h1>\n");
    write_file(site.path(), "long.html", &page);
    write_file(site.path(), "blob.bin", &blob);
    let node = Node::start(site.path());
    Fixture {
        _site: site,
        node,
        page,
        blob,
    }
}

fn quoted_blake3(bytes: &[u8]) -> String {
    format!("\"{}\"", blake3::hash(bytes).to_hex())
}

#[test]
fn etag_is_the_quoted_blake3_of_the_file() {
    let f = fixture();
    let reply = f.node.get("/blob.bin");
    assert_eq!(
        reply.header("etag"),
        Some(quoted_blake3(&f.blob).as_str()),
        "GET /blob.bin: {}",
        reply.describe()
    );
}

#[test]
fn if_none_match_with_the_current_etag_gets_304_without_body() {
    let f = fixture();
    let first = f.node.get("/blob.bin");
    let etag = first.header("etag").expect("an etag").to_string();
    let reply = f.node.get_with("/blob.bin", &[("if-none-match", &etag)]);
    assert_eq!(
        reply.status,
        304,
        "GET /blob.bin If-None-Match {etag}: {}",
        reply.describe()
    );
    assert!(
        reply.body.is_empty(),
        "304 with a body: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("etag"),
        Some(etag.as_str()),
        "304 without its etag: {}",
        reply.describe()
    );
}

#[test]
fn if_none_match_with_another_etag_gets_the_full_file() {
    let f = fixture();
    let other = quoted_blake3(b"something else");
    let reply = f.node.get_with("/blob.bin", &[("if-none-match", &other)]);
    assert_eq!(
        reply.status,
        200,
        "GET /blob.bin If-None-Match {other}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.body, f.blob,
        "GET /blob.bin If-None-Match {other}: wrong body"
    );
}

#[test]
fn if_modified_since_last_modified_gets_304() {
    let f = fixture();
    let first = f.node.get("/blob.bin");
    let date = first
        .header("last-modified")
        .unwrap_or_else(|| panic!("GET /blob.bin has no last-modified: {}", first.describe()))
        .to_string();
    assert!(
        httpdate::parse_http_date(&date).is_ok(),
        "last-modified {date:?} is not an HTTP date"
    );
    let reply = f
        .node
        .get_with("/blob.bin", &[("if-modified-since", &date)]);
    assert_eq!(
        reply.status,
        304,
        "GET /blob.bin If-Modified-Since {date}: {}",
        reply.describe()
    );
    assert!(
        reply.body.is_empty(),
        "304 with a body: {}",
        reply.describe()
    );
}

#[test]
fn if_modified_since_an_older_date_gets_the_full_file() {
    let f = fixture();
    let old = "Sat, 01 Jan 2000 00:00:00 GMT";
    let reply = f.node.get_with("/blob.bin", &[("if-modified-since", old)]);
    assert_eq!(
        reply.status,
        200,
        "GET /blob.bin If-Modified-Since {old}: {}",
        reply.describe()
    );
    assert_eq!(reply.body, f.blob);
}

fn assert_range(f: &Fixture, range: &str, start: usize, end_inclusive: usize) {
    let reply = f.node.get_with("/blob.bin", &[("range", range)]);
    let size = f.blob.len();
    assert_eq!(
        reply.status,
        206,
        "GET /blob.bin Range {range}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes {start}-{end_inclusive}/{size}").as_str()),
        "GET /blob.bin Range {range}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.body,
        &f.blob[start..=end_inclusive],
        "GET /blob.bin Range {range}: wrong bytes ({} received)",
        reply.body.len()
    );
}

#[test]
fn range_of_the_first_bytes_gets_206_with_those_bytes() {
    let f = fixture();
    assert_range(&f, "bytes=0-99", 0, 99);
}

#[test]
fn suffix_range_gets_the_last_bytes() {
    let f = fixture();
    let size = f.blob.len();
    assert_range(&f, "bytes=-100", size - 100, size - 1);
}

#[test]
fn open_ended_range_gets_the_rest_of_the_file() {
    let f = fixture();
    let size = f.blob.len();
    assert_range(&f, "bytes=9000-", 9000, size - 1);
}

#[test]
fn unsatisfiable_range_gets_416_with_the_size() {
    let f = fixture();
    let size = f.blob.len();
    let range = format!("bytes={size}-");
    let reply = f.node.get_with("/blob.bin", &[("range", &range)]);
    assert_eq!(
        reply.status,
        416,
        "GET /blob.bin Range {range}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes */{size}").as_str()),
        "GET /blob.bin Range {range}: {}",
        reply.describe()
    );
}

#[test]
fn range_inside_a_large_file_gets_exactly_those_bytes() {
    let site = temp_dir();
    let big = Xorshift::new(7).bytes(20 * 1024 * 1024);
    write_file(site.path(), "big.bin", &big);
    let node = Node::start(site.path());
    let (start, end) = (12_345_678usize, 12_545_677usize);
    let range = format!("bytes={start}-{end}");
    let reply = node.get_with("/big.bin", &[("range", &range)]);
    assert_eq!(
        reply.status,
        206,
        "GET /big.bin Range {range}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("content-range"),
        Some(format!("bytes {start}-{end}/{}", big.len()).as_str()),
        "GET /big.bin Range {range}: {}",
        reply.describe()
    );
    assert!(
        reply.body == big[start..=end],
        "GET /big.bin Range {range}: {} bytes came back, not the requested slice",
        reply.body.len()
    );
}

#[test]
fn responses_advertise_byte_ranges() {
    let f = fixture();
    let reply = f.node.get("/blob.bin");
    assert_eq!(
        reply.header("accept-ranges"),
        Some("bytes"),
        "GET /blob.bin: {}",
        reply.describe()
    );
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let f = fixture();
    let get = f.node.get("/long.html");
    let head = f.node.head_with("/long.html", &[]);
    assert_eq!(head.status, 200, "HEAD /long.html: {}", head.describe());
    assert!(
        head.body.is_empty(),
        "HEAD /long.html sent a body: {}",
        head.describe()
    );
    for name in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "x-makiatto-revision",
    ] {
        assert_eq!(
            head.header(name),
            get.header(name),
            "header {name} differs between HEAD and GET /long.html\nHEAD: {}\nGET: {}",
            head.describe(),
            get.describe()
        );
    }
    assert_eq!(
        head.header("content-length"),
        Some(f.page.len().to_string().as_str()),
        "HEAD /long.html: {}",
        head.describe()
    );
}

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        "br" => {
            brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        "zstd" => out = zstd::decode_all(bytes).expect("valid zstd"),
        other => panic!("no decoder for {other}"),
    }
    out
}

fn assert_encoded(f: &Fixture, encoding: &str) -> Reply {
    let reply = f
        .node
        .get_with("/long.html", &[("accept-encoding", encoding)]);
    assert_eq!(
        reply.status,
        200,
        "GET /long.html Accept-Encoding {encoding}: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("content-encoding"),
        Some(encoding),
        "GET /long.html Accept-Encoding {encoding}: {}",
        reply.describe()
    );
    assert!(
        reply.body.len() < f.page.len(),
        "the {encoding} variant ({} bytes) is not smaller than the page ({} bytes)",
        reply.body.len(),
        f.page.len()
    );
    assert!(
        decode(encoding, &reply.body) == f.page,
        "GET /long.html Accept-Encoding {encoding}: the decoded body differs from the file"
    );
    let etag = format!("\"{}-{encoding}\"", blake3::hash(&f.page).to_hex());
    assert_eq!(
        reply.header("etag"),
        Some(etag.as_str()),
        "GET /long.html Accept-Encoding {encoding}: {}",
        reply.describe()
    );
    reply
}

#[test]
fn brotli_variant_decodes_to_the_original() {
    assert_encoded(&fixture(), "br");
}

#[test]
fn zstd_variant_decodes_to_the_original() {
    assert_encoded(&fixture(), "zstd");
}

#[test]
fn gzip_variant_decodes_to_the_original() {
    assert_encoded(&fixture(), "gzip");
}

#[test]
fn negotiated_responses_vary_on_accept_encoding() {
    let f = fixture();
    for accept in [None, Some("gzip"), Some("br, zstd, gzip")] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("accept-encoding", a)).into_iter().collect();
        let reply = f.node.get_with("/long.html", &headers);
        let vary = reply
            .header("vary")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            vary.contains("accept-encoding"),
            "GET /long.html Accept-Encoding {accept:?}: {}",
            reply.describe()
        );
    }
}

#[test]
fn no_accept_encoding_gets_identity_bytes() {
    let f = fixture();
    let reply = f.node.get("/long.html");
    assert_eq!(
        reply.header("content-encoding"),
        None,
        "GET /long.html: {}",
        reply.describe()
    );
    assert!(
        reply.body == f.page,
        "GET /long.html: body differs from the file"
    );
    assert_eq!(reply.header("etag"), Some(quoted_blake3(&f.page).as_str()));
}

#[test]
fn incompressible_type_is_sent_as_identity_even_when_encodings_are_accepted() {
    let f = fixture();
    let reply = f
        .node
        .get_with("/blob.bin", &[("accept-encoding", "br, zstd, gzip")]);
    assert_eq!(
        reply.header("content-encoding"),
        None,
        "GET /blob.bin: {}",
        reply.describe()
    );
    assert_eq!(reply.body, f.blob);
}

#[test]
fn conditional_request_on_an_encoded_variant_gets_304() {
    let f = fixture();
    let first = assert_encoded(&f, "br");
    let etag = first.header("etag").expect("etag").to_string();
    let reply = f.node.get_with(
        "/long.html",
        &[("accept-encoding", "br"), ("if-none-match", &etag)],
    );
    assert_eq!(
        reply.status,
        304,
        "GET /long.html br If-None-Match {etag}: {}",
        reply.describe()
    );
}

#[test]
fn other_methods_get_405_with_allow_get_head() {
    let f = fixture();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let request = format!(
            "{method} /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let reply = f.node.raw(request.as_bytes());
        assert_eq!(
            reply.status,
            Some(405),
            "{method} /index.html got:\n{}",
            reply.text
        );
        let allow = reply
            .text
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("allow")
                    .then(|| value.trim().to_string())
            });
        assert_eq!(
            allow.as_deref(),
            Some("GET, HEAD"),
            "{method} /index.html got:\n{}",
            reply.text
        );
    }
}
