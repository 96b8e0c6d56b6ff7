//! Static serving through `makiatto dev`: every file of a site comes back
//! byte-identical, clean URLs, the 404 page, content types and host routing.

use std::path::Path;
use std::thread;

use crate::support::{Node, Xorshift, temp_dir, url_path, write_file, write_tree};

/// Writes a tree exercising awkward names and sizes; returns every file.
fn generated_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut rng = Xorshift::new(0x6d61_6b69_6174_746f);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "index.html".into(),
            b"<!doctype html><h1>generated</h1>\n".to_vec(),
        ),
        (
            "café/naïve file.txt".into(),
            "naïve café ☕\n".as_bytes().to_vec(),
        ),
        ("dir with space/x.html".into(), b"<p>spaced</p>\n".to_vec()),
        ("empty.txt".into(), Vec::new()),
        ("nested/empty.css".into(), Vec::new()),
        (
            "a/b/c/d/e/f/deep.json".into(),
            b"{\"deep\":true}\n".to_vec(),
        ),
        (
            "日本語/ファイル.txt".into(),
            "こんにちは\n".as_bytes().to_vec(),
        ),
        ("big/blob.bin".into(), rng.bytes(20 * 1024 * 1024)),
    ];
    // Mostly binary: a debug build precompresses every text file at
    // maximum levels, which would dominate the test's run time.
    for i in 0..2000 {
        let len = rng.below(3000) as usize;
        let (ext, bytes) = match i % 10 {
            0 => ("txt", format!("line {i}\n").repeat(len / 8).into_bytes()),
            1 => ("css", format!(".c{i} {{ margin: {len}px }}\n").into_bytes()),
            _ => ("bin", rng.bytes(len)),
        };
        files.push((format!("many/d{:02}/f{i:04}.{ext}", i % 20), bytes));
    }
    for (rel, bytes) in &files {
        write_file(root, rel, bytes);
    }
    files
}

#[test]
fn every_file_of_a_generated_tree_is_served_byte_identical() {
    let site = temp_dir();
    let files = generated_tree(site.path());
    let node = Node::start(site.path());

    let mismatches: Vec<String> = thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(files.len().div_ceil(4))
            .map(|chunk| {
                let node = &node;
                scope.spawn(move || {
                    let agent = node.agent();
                    let mut bad = Vec::new();
                    for (rel, expected) in chunk {
                        let path = url_path(rel);
                        let reply = match fetch_with(&agent, &node.url(&path)) {
                            Ok(reply) => reply,
                            Err(e) => {
                                bad.push(format!("GET {path}: {e}"));
                                continue;
                            }
                        };
                        if reply.0 != 200 || reply.1 != *expected {
                            bad.push(format!(
                                "GET {path}: expected 200 with {} bytes (blake3 {}), got status {} with {} bytes (blake3 {})",
                                expected.len(),
                                blake3::hash(expected).to_hex(),
                                reply.0,
                                reply.1.len(),
                                blake3::hash(&reply.1).to_hex(),
                            ));
                        }
                    }
                    bad
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("fetch worker"))
            .collect()
    });
    assert!(
        mismatches.is_empty(),
        "{} of {} files were not served byte-identical, first ones:\n{}",
        mismatches.len(),
        files.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );
}

/// GET without the harness's `Reply`, for worker threads with their own agent.
fn fetch_with(agent: &ureq::Agent, url: &str) -> Result<(u16, Vec<u8>), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let body = response
        .body_mut()
        .with_config()
        .limit(200_000_000)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    Ok((response.status().as_u16(), body))
}

fn small_site() -> tempfile::TempDir {
    let site = temp_dir();
    write_tree(
        site.path(),
        &[
            ("index.html", "<h1>home</h1>\n"),
            ("about.html", "<h1>about page</h1>\n"),
            ("guide/index.html", "<h1>guide index</h1>\n"),
            ("guide/intro.html", "<h1>intro</h1>\n"),
            ("404.html", "<h1>custom not found</h1>\n"),
            ("style.css", "body { color: black }\n"),
            ("app.js", "console.log('hi');\n"),
            ("data.json", "{\"a\":1}\n"),
            ("logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n"),
            ("notes.txt", "plain notes\n"),
            ("image.png", "\u{89}PNG not really\n"),
        ],
    );
    site
}

#[test]
fn root_serves_index_html() {
    let site = small_site();
    let node = Node::start(site.path());
    let reply = node.get("/");
    assert_eq!(reply.status, 200, "GET /: {}", reply.describe());
    assert_eq!(
        reply.text(),
        "<h1>home</h1>\n",
        "GET /: {}",
        reply.describe()
    );
}

#[test]
fn every_response_names_the_server_and_the_revision() {
    let site = small_site();
    let node = Node::start(site.path());
    for path in ["/", "/style.css", "/about", "/does-not-exist"] {
        let reply = node.get(path);
        assert_eq!(
            reply.header("server"),
            Some("makiatto"),
            "GET {path}: {}",
            reply.describe()
        );
        assert_eq!(
            reply.header("x-makiatto-revision"),
            Some(node.revision.as_str()),
            "GET {path} should carry the revision the node printed: {}",
            reply.describe()
        );
    }
}

#[test]
fn content_type_follows_the_extension_with_utf8_for_text() {
    let site = small_site();
    let node = Node::start(site.path());
    let cases = [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/notes.txt", "text/plain; charset=utf-8"),
        ("/image.png", "image/png"),
    ];
    for (path, expected) in cases {
        let reply = node.get(path);
        assert_eq!(
            reply.header("content-type"),
            Some(expected),
            "GET {path}: {}",
            reply.describe()
        );
    }
    let js = node.get("/app.js");
    let js_type = js.header("content-type").unwrap_or_default();
    assert!(
        js_type.contains("javascript") && js_type.ends_with("charset=utf-8"),
        "GET /app.js: {}",
        js.describe()
    );
    let json = node.get("/data.json");
    assert!(
        json.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "GET /data.json: {}",
        json.describe()
    );
}

#[test]
fn extensionless_path_serves_the_html_file() {
    let site = small_site();
    let node = Node::start(site.path());
    let reply = node.get("/about");
    assert_eq!(reply.status, 200, "GET /about: {}", reply.describe());
    assert_eq!(
        reply.text(),
        "<h1>about page</h1>\n",
        "GET /about: {}",
        reply.describe()
    );
}

#[test]
fn directory_without_trailing_slash_redirects_308_to_the_slash() {
    let site = small_site();
    let node = Node::start(site.path());
    let reply = node.get("/guide");
    assert_eq!(reply.status, 308, "GET /guide: {}", reply.describe());
    assert_eq!(
        reply.header("location"),
        Some("/guide/"),
        "GET /guide: {}",
        reply.describe()
    );
}

#[test]
fn directory_with_trailing_slash_serves_its_index() {
    let site = small_site();
    let node = Node::start(site.path());
    let reply = node.get("/guide/");
    assert_eq!(reply.status, 200, "GET /guide/: {}", reply.describe());
    assert_eq!(
        reply.text(),
        "<h1>guide index</h1>\n",
        "GET /guide/: {}",
        reply.describe()
    );
    let intro = node.get("/guide/intro");
    assert_eq!(
        intro.text(),
        "<h1>intro</h1>\n",
        "GET /guide/intro: {}",
        intro.describe()
    );
}

#[test]
fn missing_path_serves_the_site_404_page_with_status_404() {
    let site = small_site();
    let node = Node::start(site.path());
    let reply = node.get("/no/such/page");
    assert_eq!(reply.status, 404, "GET /no/such/page: {}", reply.describe());
    assert_eq!(
        reply.text(),
        "<h1>custom not found</h1>\n",
        "GET /no/such/page: {}",
        reply.describe()
    );
}

#[test]
fn missing_path_without_a_404_page_is_a_plain_text_404() {
    let site = temp_dir();
    write_tree(site.path(), &[("index.html", "<h1>home</h1>\n")]);
    let node = Node::start(site.path());
    let reply = node.get("/missing.html");
    assert_eq!(reply.status, 404, "GET /missing.html: {}", reply.describe());
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "GET /missing.html: {}",
        reply.describe()
    );
    assert!(
        !reply.body.is_empty(),
        "GET /missing.html: {}",
        reply.describe()
    );
}

/// Two domains with different served subtrees; `a.test` is listed first.
fn two_domain_site() -> tempfile::TempDir {
    let site = temp_dir();
    write_tree(
        site.path(),
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"a.test\"\npath = \"site-a\"\naliases = [\"www.a.test\"]\n\n\
                 [[domain]]\nname = \"b.test\"\npath = \"site-b\"\n",
            ),
            ("site-a/index.html", "site A\n"),
            ("site-b/index.html", "site B\n"),
            ("site-b/only-b.txt", "only in B\n"),
        ],
    );
    site
}

#[test]
fn each_domain_host_is_served_its_own_site() {
    let site = two_domain_site();
    let node = Node::start(site.path());
    for (host, expected) in [("a.test", "site A\n"), ("b.test", "site B\n")] {
        let reply = node.get_with("/", &[("host", host)]);
        assert_eq!(reply.status, 200, "GET / Host {host}: {}", reply.describe());
        assert_eq!(
            reply.text(),
            expected,
            "GET / Host {host}: {}",
            reply.describe()
        );
    }
    let only_b = node.get_with("/only-b.txt", &[("host", "b.test")]);
    assert_eq!(
        only_b.text(),
        "only in B\n",
        "GET /only-b.txt Host b.test: {}",
        only_b.describe()
    );
    let not_in_a = node.get_with("/only-b.txt", &[("host", "a.test")]);
    assert_eq!(
        not_in_a.status,
        404,
        "GET /only-b.txt Host a.test: {}",
        not_in_a.describe()
    );
}

#[test]
fn alias_host_and_host_with_port_route_to_their_domain() {
    let site = two_domain_site();
    let node = Node::start(site.path());
    let b_port = format!("b.test:{}", node.addr.port());
    for (host, expected) in [
        ("www.a.test", "site A\n"),
        ("WWW.A.TEST", "site A\n"),
        (b_port.as_str(), "site B\n"),
    ] {
        let reply = node.get_with("/", &[("host", host)]);
        assert_eq!(
            reply.text(),
            expected,
            "GET / Host {host}: {}",
            reply.describe()
        );
    }
}

#[test]
fn unknown_host_is_served_the_first_site_in_dev_mode() {
    let site = two_domain_site();
    let node = Node::start(site.path());
    let first = match node.domain.as_str() {
        "a.test" => "site A\n",
        "b.test" => "site B\n",
        other => panic!("the URL line names {other:?}, not one of the configured domains"),
    };
    let reply = node.get_with("/", &[("host", "nobody.example")]);
    assert_eq!(
        reply.status,
        200,
        "GET / Host nobody.example: {}",
        reply.describe()
    );
    assert_eq!(
        reply.text(),
        first,
        "GET / Host nobody.example: {}",
        reply.describe()
    );
}
