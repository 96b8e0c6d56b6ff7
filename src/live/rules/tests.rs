//! Behaviour of compiled rules through the public API.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{RuleAction, Rules};
use crate::config::{Domain, HeaderRule, Redirect};

fn domain(redirects: &[(&str, &str, u16)], headers: &[(&str, &[(&str, &str)])]) -> Domain {
    Domain {
        headers: headers
            .iter()
            .map(|(pattern, values)| HeaderRule {
                pattern: (*pattern).into(),
                values: values
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            })
            .collect(),
        redirects: redirects
            .iter()
            .map(|(from, to, status)| Redirect {
                from: (*from).into(),
                to: (*to).into(),
                status: *status,
            })
            .collect(),
        ..Domain::bare("example.com")
    }
}

fn redirects(rules: &[(&str, &str, u16)]) -> Rules {
    Rules::compile(&domain(rules, &[]))
}

fn no_files(_: &str) -> bool {
    false
}

fn all_files(_: &str) -> bool {
    true
}

fn redirect(status: u16, location: &str) -> Option<RuleAction> {
    Some(RuleAction::Redirect {
        status,
        location: location.into(),
    })
}

fn rewrite(path: &str) -> Option<RuleAction> {
    Some(RuleAction::Rewrite { path: path.into() })
}

fn headers(rules: &Rules, path: &str) -> Vec<(String, String)> {
    rules
        .headers_for(path)
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                v.to_str().unwrap_or("<opaque>").to_owned(),
            )
        })
        .collect()
}

#[test]
fn splat_is_captured_into_the_target() {
    let rules = redirects(&[("/old/*", "/new/:splat", 301)]);
    assert_eq!(
        rules.route("/old/a/b.html", None, &no_files),
        redirect(301, "/new/a/b.html")
    );
    assert_eq!(rules.route("/old", None, &no_files), redirect(301, "/new/"));
    assert_eq!(
        rules.route("/old/", None, &no_files),
        redirect(301, "/new/")
    );
    assert_eq!(rules.route("/older", None, &no_files), None);
}

#[test]
fn splat_keeps_a_trailing_slash() {
    let rules = redirects(&[("/old/*", "/new/:splat", 301)]);
    assert_eq!(
        rules.route("/old/dir/", None, &no_files),
        redirect(301, "/new/dir/")
    );
}

#[test]
fn placeholder_matches_exactly_one_non_empty_segment() {
    let rules = redirects(&[("/users/:id", "/people/:id", 302)]);
    assert_eq!(
        rules.route("/users/42", None, &no_files),
        redirect(302, "/people/42")
    );
    assert_eq!(rules.route("/users/42/posts", None, &no_files), None);
    assert_eq!(rules.route("/users", None, &no_files), None);
    assert_eq!(rules.route("/users//", None, &no_files), None);
}

#[test]
fn several_placeholders_and_a_splat_fill_one_target() {
    let rules = redirects(&[("/blog/:year/:month/*", "/archive/:month-:year/:splat", 308)]);
    assert_eq!(
        rules.route("/blog/2024/05/hello/world", None, &no_files),
        redirect(308, "/archive/05-2024/hello/world")
    );
}

#[test]
fn literal_segments_are_case_sensitive() {
    let rules = redirects(&[("/About", "/about", 301)]);
    assert_eq!(rules.route("/about", None, &no_files), None);
    assert_eq!(
        rules.route("/About", None, &no_files),
        redirect(301, "/about")
    );
}

#[test]
fn trailing_slash_on_the_request_is_ignored() {
    let rules = redirects(&[("/about", "/about-us", 301), ("/team/", "/people", 301)]);
    assert_eq!(
        rules.route("/about/", None, &no_files),
        redirect(301, "/about-us")
    );
    assert_eq!(
        rules.route("/about", None, &no_files),
        redirect(301, "/about-us")
    );
    assert_eq!(
        rules.route("/team", None, &no_files),
        redirect(301, "/people")
    );
}

#[test]
fn root_rule_matches_only_the_root() {
    let rules = redirects(&[("/", "/en/", 302)]);
    assert_eq!(rules.route("/", None, &no_files), redirect(302, "/en/"));
    assert_eq!(rules.route("/x", None, &no_files), None);
}

#[test]
fn first_matching_rule_wins() {
    let rules = redirects(&[
        ("/docs/latest/*", "/docs/v2/:splat", 302),
        ("/docs/*", "/documentation/:splat", 301),
    ]);
    assert_eq!(
        rules.route("/docs/latest/intro", None, &no_files),
        redirect(302, "/docs/v2/intro")
    );
    assert_eq!(
        rules.route("/docs/v1/intro", None, &no_files),
        redirect(301, "/documentation/v1/intro")
    );
}

#[test]
fn existing_file_shadows_rewrite_but_not_redirect() {
    let rules = redirects(&[("/*", "/index.html", 200)]);
    assert_eq!(rules.route("/app.js", None, &all_files), None);
    assert_eq!(
        rules.route("/settings", None, &no_files),
        rewrite("/index.html")
    );

    let rules = redirects(&[("/legacy.html", "/modern", 301)]);
    assert_eq!(
        rules.route("/legacy.html", None, &all_files),
        redirect(301, "/modern")
    );
}

#[test]
fn shadowed_rewrite_falls_through_to_later_rules() {
    let rules = redirects(&[("/*", "/index.html", 200), ("/*", "/elsewhere", 302)]);
    assert_eq!(
        rules.route("/app.js", None, &all_files),
        redirect(302, "/elsewhere")
    );
}

#[test]
fn has_file_is_asked_about_the_request_path_at_most_once() {
    let rules = redirects(&[("/*", "/a.html", 200), ("/*", "/b.html", 404)]);
    let asked = std::cell::RefCell::new(Vec::new());
    let has_file = |path: &str| {
        asked.borrow_mut().push(path.to_owned());
        true
    };
    assert_eq!(rules.route("/x/y", None, &has_file), None);
    assert_eq!(*asked.borrow(), ["/x/y"]);
}

#[test]
fn has_file_is_not_asked_for_redirects() {
    let rules = redirects(&[("/*", "/new", 301)]);
    let has_file = |_: &str| -> bool { panic!("a redirect does not depend on files") };
    assert_eq!(rules.route("/x", None, &has_file), redirect(301, "/new"));
}

#[test]
fn rewrite_gets_decoded_captures_and_no_query() {
    let rules = redirects(&[("/p/:name", "/pages/:name.html?x=1#top", 200)]);
    assert_eq!(
        rules.route("/p/a b", Some("q=1"), &no_files),
        rewrite("/pages/a b.html")
    );
}

#[test]
fn request_query_is_appended_when_target_has_none() {
    let rules = redirects(&[("/search", "/find#results", 302)]);
    assert_eq!(
        rules.route("/search", Some("q=rust&page=2"), &no_files),
        redirect(302, "/find?q=rust&page=2#results")
    );
    assert_eq!(
        rules.route("/search", Some(""), &no_files),
        redirect(302, "/find#results")
    );
    assert_eq!(
        rules.route("/search", None, &no_files),
        redirect(302, "/find#results")
    );
}

#[test]
fn target_query_replaces_the_request_query() {
    let rules = redirects(&[("/search", "/find?source=old", 302)]);
    assert_eq!(
        rules.route("/search", Some("q=rust"), &no_files),
        redirect(302, "/find?source=old")
    );
}

#[test]
fn absolute_url_targets_are_allowed_for_redirects() {
    let rules = redirects(&[("/blog/*", "https://blog.example.org:8443/:splat", 301)]);
    assert_eq!(
        rules.route("/blog/post/1", Some("ref=a"), &no_files),
        redirect(301, "https://blog.example.org:8443/post/1?ref=a")
    );
}

#[test]
fn absolute_url_rewrite_is_a_proxy_rule() {
    let rules = redirects(&[("/api/*", "https://other.example/:splat", 200)]);
    assert_eq!(
        rules.route("/api/a/b", Some("q=1"), &no_files),
        Some(RuleAction::Proxy {
            url: "https://other.example/a/b?q=1".into()
        })
    );
    assert_eq!(rules.route("/api/a/b", None, &all_files), None);
}

#[test]
fn a_proxy_rule_whose_host_is_captured_is_skipped() {
    let rules = redirects(&[
        ("/go/:host/*", "https://:host/:splat", 200),
        ("/to/*", "http://:splat", 200),
        ("/fine/*", "http://backend.example:8080/:splat", 200),
    ]);
    assert_eq!(rules.route("/go/evil.example/x", None, &no_files), None);
    assert_eq!(rules.route("/to/evil.example", None, &no_files), None);
    assert_eq!(
        rules.route("/fine/x", None, &no_files),
        Some(RuleAction::Proxy {
            url: "http://backend.example:8080/x".into()
        })
    );
}

#[test]
fn absolute_url_not_found_rule_is_skipped() {
    let rules = redirects(&[("/*", "https://other.example/", 404)]);
    assert!(rules.is_empty());
}

#[test]
fn not_found_rule_serves_its_target() {
    let rules = redirects(&[("/private/*", "/404.html", 404)]);
    assert_eq!(
        rules.route("/private/keys", None, &no_files),
        Some(RuleAction::NotFound {
            path: "/404.html".into()
        })
    );
    assert_eq!(rules.route("/private/keys", None, &all_files), None);
}

#[test]
fn location_captures_are_percent_encoded() {
    let rules = redirects(&[("/old/*", "/new/:splat", 301)]);
    assert_eq!(
        rules.route("/old/a b/c?d#e/100%/é", None, &no_files),
        redirect(301, "/new/a%20b/c%3Fd%23e/100%25/%C3%A9")
    );
}

#[test]
fn local_redirect_cannot_become_protocol_relative() {
    let rules = redirects(&[("/*", "/:splat", 301)]);
    assert_eq!(
        rules.route("//evil.example/x", None, &no_files),
        redirect(301, "/evil.example/x")
    );
    assert_eq!(
        rules.route("/\\evil.example", None, &no_files),
        redirect(301, "/%5Cevil.example")
    );
}

#[test]
fn unknown_words_after_a_colon_stay_literal() {
    let rules = redirects(&[("/a/:id", "/b/:ids/:splat/:id", 301)]);
    assert_eq!(
        rules.route("/a/7", None, &no_files),
        redirect(301, "/b/:ids/:splat/7")
    );
}

#[test]
fn invalid_rules_are_skipped_and_the_rest_kept() {
    let rules = redirects(&[
        ("/a*", "/b", 301),
        ("/a/*/b", "/b", 301),
        ("/:", "/b", 301),
        ("/:x/:x", "/b", 301),
        ("/q?x=1", "/b", 301),
        ("/c", "relative", 301),
        ("/c", "/b", 418),
        ("/keep", "/kept", 301),
    ]);
    assert_eq!(rules.route("/a/x/b", None, &no_files), None);
    assert_eq!(rules.route("/c", None, &no_files), None);
    assert_eq!(
        rules.route("/keep", None, &no_files),
        redirect(301, "/kept")
    );
}

#[test]
fn double_star_crosses_slashes_but_single_star_does_not() {
    let rules = Rules::compile(&domain(
        &[],
        &[
            ("/assets/**", &[("cache-control", "immutable")]),
            ("/img/*", &[("x-img", "1")]),
        ],
    ));
    assert_eq!(
        headers(&rules, "/assets/js/vendor/app.js"),
        [("cache-control".into(), "immutable".into())]
    );
    assert_eq!(
        headers(&rules, "/img/a.png"),
        [("x-img".into(), "1".into())]
    );
    assert!(headers(&rules, "/img/thumbs/a.png").is_empty());
}

#[test]
fn several_rules_add_headers_in_rule_order() {
    let rules = Rules::compile(&domain(
        &[],
        &[
            ("/**", &[("x-frame-options", "DENY"), ("link", "</a.css>")]),
            ("/*.html", &[("link", "</b.css>")]),
            ("/other/**", &[("x-other", "1")]),
        ],
    ));
    assert_eq!(
        headers(&rules, "/index.html"),
        [
            ("link".into(), "</a.css>".into()),
            ("x-frame-options".into(), "DENY".into()),
            ("link".into(), "</b.css>".into()),
        ]
    );
}

#[test]
fn non_matching_paths_get_no_headers() {
    let rules = Rules::compile(&domain(&[], &[("/assets/**", &[("x-a", "1")])]));
    assert!(headers(&rules, "/index.html").is_empty());
    assert!(headers(&rules, "/Assets/a.js").is_empty());
}

#[test]
fn invalid_headers_rule_is_skipped_and_the_rest_kept() {
    let rules = Rules::compile(&domain(
        &[],
        &[
            ("/[", &[("x-a", "1")]),
            ("/**", &[("bad name", "1")]),
            ("/**", &[("x-b", "bad\nvalue")]),
            ("/**", &[("x-c", "1")]),
        ],
    ));
    assert_eq!(headers(&rules, "/x"), [("x-c".into(), "1".into())]);
}

#[test]
fn empty_domain_has_empty_rules() {
    let rules = Rules::compile(&domain(&[], &[]));
    assert!(rules.is_empty());
    assert_eq!(rules.route("/", None, &no_files), None);
    assert!(headers(&rules, "/").is_empty());
    assert!(!redirects(&[("/a", "/b", 301)]).is_empty());
}

proptest! {
    #[test]
    fn route_never_panics_and_stays_on_site(
        path in "/\\PC{0,40}",
        query in proptest::option::of("\\PC{0,10}"),
        exists in any::<bool>(),
    ) {
        let rules = redirects(&[
            ("/a/:x/*", "/b/:x/:splat", 301),
            ("/:one/:two", "/:two/:one", 302),
            ("/*", "/:splat", 308),
            ("/*", "/index.html", 200),
        ]);
        let has_file = move |_: &str| exists;
        if let Some(RuleAction::Redirect { location, .. }) = rules.route(&path, query.as_deref(), &has_file) {
            prop_assert!(location.starts_with('/') && !location.starts_with("//"), "{location}");
            // Browsers read `\` in a path as `/`; the query is the client's own.
            let location_path = location.split('?').next().unwrap_or_default();
            prop_assert!(!location_path.contains('\\'), "{location}");
            if query.is_none() {
                prop_assert!(hyper::header::HeaderValue::from_str(&location).is_ok(), "{location}");
            }
        }
    }

    #[test]
    fn route_never_panics_on_arbitrary_rules(
        from in "/[a-z:*/]{0,12}",
        to in "(/|https://h)[a-z:/?#]{0,12}",
        status in proptest::sample::select(vec![200u16, 301, 302, 303, 307, 308, 404, 500]),
        path in "/[a-z/]{0,12}",
    ) {
        let rules = redirects(&[(&from, &to, status)]);
        let _ = rules.route(&path, Some("q"), &no_files);
    }
}
