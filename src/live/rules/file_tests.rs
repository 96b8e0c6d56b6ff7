//! `_redirects` and `_headers` as real sites write them: parsed, with the
//! lines that cannot be used reported where they are, and the rest applied.

use hyper::HeaderMap;
use hyper::header::HeaderValue;

use super::{RuleAction, RuleFileWarning, RuleFiles, Rules, Visitor};
use crate::config::Domain;

fn domain() -> Domain {
    Domain {
        aliases: vec!["old.example.com".into()],
        ..Domain::bare("example.com")
    }
}

fn redirects(text: &str) -> (Rules, Vec<RuleFileWarning>) {
    Rules::compile_with_files(
        &domain(),
        RuleFiles {
            redirects: Some(text),
            headers: None,
        },
    )
}

fn headers(text: &str) -> (Rules, Vec<RuleFileWarning>) {
    Rules::compile_with_files(
        &domain(),
        RuleFiles {
            redirects: None,
            headers: Some(text),
        },
    )
}

fn no_files(_: &str) -> bool {
    false
}

fn all_files(_: &str) -> bool {
    true
}

fn go(status: u16, location: &str) -> Option<RuleAction> {
    Some(RuleAction::Redirect {
        status,
        location: location.into(),
    })
}

fn on_host(host: &str) -> Visitor<'_> {
    Visitor {
        host,
        accept_language: None,
        country: &|| None,
    }
}

/// Where each warning points, as `line:column`.
fn places(warnings: &[RuleFileWarning]) -> Vec<String> {
    warnings
        .iter()
        .map(|w| format!("{}:{}", w.line, w.column))
        .collect()
}

const MESSY: &str = "\u{feff}# Redirects from the old site\r
\r
/home              /                     301\r
/blog/*            /news/:splat\r
   /indented  /ok  302   # trailing comment\r
/products/:id/:name   /p/:name/:id   302\r
/store id=:id      /items/:id       301\r
/search q=rust     /rust            302\r
/app/*             /app/index.html  200\r
/legacy            /new             301!\r
/gone/*            /gone.html       410\r
/missing-target\r
/404  410\r
/stray /x 301 extra\r
nopath /x\r
/bad-status /x 999\r
/home              /elsewhere       302\r
http://old.example.com/*  https://www.example.com/:splat 301!\r
/se/*  /sv/:splat  302  Country=se,NO\r
/lang  /de  302  Language=de\r
/ftp/*  ftp://files.example.com/:splat  200\r
/role  /x  301  Role=admin\r
/a*b   /x  301\r
/*                 /404.html        404\r
";

#[test]
fn a_messy_file_keeps_its_good_rules_and_names_each_bad_line() {
    let (_, warnings) = redirects(MESSY);
    assert_eq!(
        places(&warnings),
        [
            "12:1", "13:7", "14:15", "15:1", "16:16", "17:1", "21:9", "22:17", "23:1"
        ],
        "{warnings:#?}"
    );
    let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert!(
        text[0]
            .starts_with("_redirects:12:1: `/missing-target` has no target; write where it goes"),
        "{}",
        text[0]
    );
    assert!(
        text[1].contains("status `410` comes before any target"),
        "{}",
        text[1]
    );
    assert!(
        text[2].contains("unexpected `extra` after the target"),
        "{}",
        text[2]
    );
    assert!(
        text[3].contains("source `nopath` does not start with `/`"),
        "{}",
        text[3]
    );
    assert!(text[4].contains("status 999"), "{}", text[4]);
    assert!(
        text[5].contains("repeats the source of line 3"),
        "{}",
        text[5]
    );
    assert!(
        text[6].contains("target `ftp://files.example.com/:splat` is not an http(s):// URL"),
        "{}",
        text[6]
    );
    assert!(
        text[7].contains("`Role=` conditions are not supported"),
        "{}",
        text[7]
    );
    assert!(
        text[8].contains("has a `*` other than as its whole last segment"),
        "{}",
        text[8]
    );
    assert!(text.iter().all(|t| t.ends_with("(line skipped)")));
}

#[test]
fn messy_file_rules_apply_as_written() {
    let (rules, _) = redirects(MESSY);
    let route = |path, query| rules.route(path, query, &no_files);
    assert_eq!(route("/home", None), go(301, "/"));
    assert_eq!(route("/blog/2024/hello", None), go(301, "/news/2024/hello"));
    assert_eq!(route("/indented", None), go(302, "/ok"));
    assert_eq!(route("/products/7/lamp", None), go(302, "/p/lamp/7"));
    assert_eq!(
        route("/app/settings", None),
        Some(RuleAction::Rewrite {
            path: "/app/index.html".into()
        })
    );
    assert_eq!(
        route("/gone/x", None),
        Some(RuleAction::Status {
            status: 410,
            path: "/gone.html".into()
        })
    );
    assert_eq!(
        route("/nothing/here", None),
        Some(RuleAction::NotFound {
            path: "/404.html".into()
        })
    );
}

#[test]
fn query_parameters_must_be_present_and_can_be_captured() {
    let (rules, _) = redirects(MESSY);
    let route = |query| rules.route("/store", query, &no_files);
    assert_eq!(route(Some("id=42")), go(301, "/items/42?id=42"));
    assert_eq!(
        route(Some("a=1&id=a%20b")),
        go(301, "/items/a%20b?a=1&id=a%20b")
    );
    // Without the parameter the catch-all 404 rule is next.
    assert!(matches!(route(None), Some(RuleAction::NotFound { .. })));
    let route = |query| rules.route("/search", query, &no_files);
    assert_eq!(route(Some("q=rust")), go(302, "/rust?q=rust"));
    assert!(matches!(
        route(Some("q=go")),
        Some(RuleAction::NotFound { .. })
    ));
}

#[test]
fn unforced_rules_yield_to_files_and_forced_ones_do_not() {
    let (rules, _) = redirects(MESSY);
    // `/home ... 301` is not forced: an existing file wins, as on Netlify.
    assert_eq!(rules.route("/home", None, &all_files), None);
    assert_eq!(rules.route("/legacy", None, &all_files), go(301, "/new"));
}

#[test]
fn host_qualified_rules_apply_to_their_host_only() {
    let (rules, _) = redirects(MESSY);
    assert_eq!(
        rules.route_for(&on_host("old.example.com"), "/a/b", None, &no_files),
        go(301, "https://www.example.com/a/b")
    );
    assert!(matches!(
        rules.route_for(&on_host("example.com"), "/a/b", None, &no_files),
        Some(RuleAction::NotFound { .. })
    ));
}

#[test]
fn country_and_language_conditions_select_visitors() {
    let (rules, _) = redirects(MESSY);
    let asked = std::sync::atomic::AtomicUsize::new(0);
    let sweden = || {
        asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(*b"SE")
    };
    let from_sweden = Visitor {
        host: "example.com",
        accept_language: Some("sv-SE,sv;q=0.9,de;q=0"),
        country: &sweden,
    };
    assert_eq!(
        rules.route_for(&from_sweden, "/se/x", None, &no_files),
        go(302, "/sv/x")
    );
    assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(matches!(
        rules.route("/se/x", None, &no_files),
        Some(RuleAction::NotFound { .. })
    ));
    // `de;q=0` refuses German.
    assert!(matches!(
        rules.route_for(&from_sweden, "/lang", None, &no_files),
        Some(RuleAction::NotFound { .. })
    ));
    let german = Visitor {
        host: "example.com",
        accept_language: Some("de-AT, en;q=0.5"),
        country: &|| None,
    };
    assert_eq!(
        rules.route_for(&german, "/lang", None, &no_files),
        go(302, "/de")
    );
}

#[test]
fn thousands_of_rules_find_the_right_one() {
    let mut text = String::new();
    for i in 0..2000 {
        text.push_str(&format!("/old-{i}/*  /new-{i}/:splat  301\n"));
    }
    text.push_str("/*  /index.html  200\n");
    let (rules, warnings) = redirects(&text);
    assert!(warnings.is_empty());
    assert_eq!(
        rules.route("/old-1999/a", None, &no_files),
        go(301, "/new-1999/a")
    );
    assert_eq!(rules.route("/old-0", None, &no_files), go(301, "/new-0/"));
    assert_eq!(
        rules.route("/other", None, &no_files),
        Some(RuleAction::Rewrite {
            path: "/index.html".into()
        })
    );
}

fn applied(rules: &Rules, path: &str, host: &str) -> Vec<(String, String)> {
    let mut map = HeaderMap::new();
    map.insert("cache-control", HeaderValue::from_static("default"));
    map.insert("x-powered-by", HeaderValue::from_static("default"));
    rules.apply_headers(&mut map, path, path, host);
    let mut out: Vec<(String, String)> = map
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect();
    out.sort();
    out
}

const HEADERS: &str = "Stray-Header: before-any-path
# security for every page
/*
  X-Frame-Options: DENY
  X-Content-Type-Options: nosniff
  ! X-Powered-By

/assets/*
  Cache-Control: public, max-age=31536000, immutable

/blog/:slug/index.html
  Link: </style.css>; rel=preload
  Link: </app.js>; rel=preload

https://old.example.com/*
  X-Old: yes

/bad
  No colon here
  Bad Name: x
/*.json
  Content-Type-Hint: json
";

#[test]
fn headers_file_applies_blocks_in_order_and_removes_with_bang() {
    let (rules, warnings) = headers(HEADERS);
    assert_eq!(places(&warnings), ["1:1", "19:3", "20:3"], "{warnings:#?}");
    assert!(warnings[0].to_string().contains("no path pattern"));
    let page = applied(&rules, "/about", "example.com");
    assert_eq!(
        page,
        [
            ("cache-control".into(), "default".into()),
            ("x-content-type-options".into(), "nosniff".into()),
            ("x-frame-options".into(), "DENY".into()),
        ]
    );
    let asset = applied(&rules, "/assets/css/site.css", "example.com");
    assert!(asset.contains(&(
        "cache-control".into(),
        "public, max-age=31536000, immutable".into()
    )));
    assert!(
        !asset
            .iter()
            .any(|(n, v)| n == "cache-control" && v == "default")
    );
    let post = applied(&rules, "/blog/hello/index.html", "example.com");
    assert_eq!(post.iter().filter(|(n, _)| n == "link").count(), 2);
    assert!(
        applied(&rules, "/blog/a/b/index.html", "example.com")
            .iter()
            .all(|(n, _)| n != "link")
    );
    let old = applied(&rules, "/x", "old.example.com");
    assert!(old.contains(&("x-old".into(), "yes".into())));
    assert!(
        applied(&rules, "/x", "example.com")
            .iter()
            .all(|(n, _)| n != "x-old")
    );
    let json = applied(&rules, "/data/list.json", "example.com");
    assert!(json.contains(&("content-type-hint".into(), "json".into())));
}

#[test]
fn a_proxy_rule_forwards_with_its_captures_and_the_query() {
    let (rules, warnings) = redirects(
        "/api/*  https://backend.example.com:8443/v1/:splat  200\n\
         /keyed/:id  http://backend.example.com/items/:id?key=k  200!\n",
    );
    assert!(warnings.is_empty(), "{warnings:#?}");
    let proxy = |url: &str| Some(RuleAction::Proxy { url: url.into() });
    assert_eq!(
        rules.route("/api/users/a b", Some("page=2"), &no_files),
        proxy("https://backend.example.com:8443/v1/users/a%20b?page=2")
    );
    assert_eq!(
        rules.route("/keyed/7", Some("x=1"), &all_files),
        proxy("http://backend.example.com/items/7?key=k&x=1")
    );
    // Unforced, a proxy rule yields to a file, as every `_redirects` rule.
    assert_eq!(rules.route("/api/users", None, &all_files), None);
}
