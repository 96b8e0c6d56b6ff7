//! `makiatto.toml`: the site config a repository carries (DESIGN.md §3).

use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::diagnostic::Source;
use super::raw::{self, RawBuild, RawDomain, RawSite};
use super::records::{self, Record, RecordType};
use super::rules::{self, HeaderRule, Redirect};
use super::wasm::{self, Function, Transform};
use super::{ConfigError, names, repo_path};

/// A parsed and validated `makiatto.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// Every domain the repository serves; at least one, names unique.
    pub domains: Vec<Domain>,
    /// An optional build step, run on the receiving node only.
    pub build: Option<Build>,
}

/// One `[[domain]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// The apex the cluster is authoritative for, lowercase, no trailing dot.
    pub name: String,
    /// The served subtree, relative to the repository root, normalised
    /// (no `.`/`..` components, no leading or trailing `/`; "" is the root).
    pub path: String,
    /// Other host names served with the same revision, lowercase.
    pub aliases: Vec<String>,
    /// The branch whose pushes become the live revision.
    pub production_branch: String,
    /// Whether other branches are served at `<slug>.preview.<name>`.
    pub previews: bool,
    /// Extra DNS records.
    pub records: Vec<Record>,
    /// Response header rules, in file order.
    pub headers: Vec<HeaderRule>,
    /// Redirect and rewrite rules, in file order; the first match wins.
    pub redirects: Vec<Redirect>,
    /// WebAssembly request handlers.
    pub functions: Vec<Function>,
    /// WebAssembly file transformers, applied in order.
    pub transforms: Vec<Transform>,
    /// CAA record values; `None` means the default `0 issue "letsencrypt.org"`.
    pub caa: Option<Vec<String>>,
    /// `Strict-Transport-Security` max-age in seconds once HTTPS is served;
    /// `None` sends no HSTS header.
    pub hsts_max_age: Option<u64>,
    /// Whether a skipped line of `_redirects` or `_headers` refuses the
    /// push instead of being reported and left out (default false).
    pub strict_rule_files: bool,
    /// Seconds a visitor pinned to a revision (by cookie or the
    /// `x-makiatto-revision` request header) keeps getting its files after
    /// a newer one goes live; 0 (the default) turns skew protection off.
    pub skew_protection_secs: u64,
}

impl Domain {
    /// `name` with every setting at its default: what a site without a
    /// `makiatto.toml` is served with.
    pub fn bare(name: &str) -> Domain {
        Domain {
            name: name.to_string(),
            path: String::new(),
            aliases: Vec::new(),
            production_branch: "main".to_string(),
            previews: false,
            records: Vec::new(),
            headers: Vec::new(),
            redirects: Vec::new(),
            functions: Vec::new(),
            transforms: Vec::new(),
            caa: None,
            hsts_max_age: None,
            strict_rule_files: false,
            skew_protection_secs: 0,
        }
    }
}

/// The `[build]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub command: String,
    /// Build output directory, relative to the repository root, normalised.
    pub output: String,
    /// Whether the build may reach the network (default false).
    pub network: bool,
    /// Extra environment variables for the build.
    pub env: BTreeMap<String, String>,
}

impl SiteConfig {
    /// Parses and validates `text`; `file` is the name errors are reported
    /// against (usually `makiatto.toml`).
    pub fn parse(file: &str, text: &str) -> Result<SiteConfig, ConfigError> {
        let src = Source { file, text };
        let raw: RawSite = raw::parse(src)?;
        if raw.domain.is_empty() {
            return Err(src.whole(
                "no [[domain]] table: add one naming the site, e.g.\n[[domain]]\nname = \"example.com\"",
            ));
        }
        // Every host name in the file, with the line it first appears on.
        let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
        let mut domains = Vec::with_capacity(raw.domain.len());
        for d in &raw.domain {
            domains.push(domain(src, d, &mut hosts)?);
        }
        let build = raw.build.as_ref().map(|b| build(src, b)).transpose()?;
        if let Some(build) = &build {
            // A built site serves its build's output unless a domain says
            // which directory of the built tree it serves.
            for domain in domains.iter_mut().filter(|d| d.path.is_empty()) {
                domain.path = build.output.clone();
            }
        }
        Ok(SiteConfig { domains, build })
    }

    /// The domain whose name or alias is `host` (lowercase, no port).
    pub fn domain_for_host(&self, host: &str) -> Option<&Domain> {
        self.domains
            .iter()
            .find(|d| d.name == host || d.aliases.iter().any(|a| a == host))
    }
}

/// Checks one `[[domain]]` and records its host names in `hosts`.
fn domain(
    src: Source<'_>,
    raw: &Spanned<RawDomain>,
    hosts: &mut BTreeMap<String, usize>,
) -> Result<Domain, ConfigError> {
    let table = raw.span();
    let raw = raw.get_ref();
    let Some(name) = &raw.name else {
        return Err(src.at(
            table,
            "missing field \"name\" in [[domain]]; add the domain to serve, e.g. name = \"example.com\"",
        ));
    };
    let name_text = unique_host(src, name, "domain name", hosts)?;
    let mut aliases = Vec::with_capacity(raw.aliases.len());
    for alias in &raw.aliases {
        aliases.push(unique_host(src, alias, "alias", hosts)?);
    }
    let path = match &raw.path {
        Some(p) => repo_path::normalise("path", p.get_ref()).map_err(|m| src.at(p.span(), m))?,
        None => String::new(),
    };
    let production_branch = match &raw.production_branch {
        Some(b) => {
            branch_name(b.get_ref()).map_err(|m| src.at(b.span(), m))?;
            b.get_ref().clone()
        }
        None => "main".to_string(),
    };
    let caa = match &raw.caa {
        Some(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                records::caa_value(v.get_ref()).map_err(|m| src.at(v.span(), m))?;
                out.push(v.get_ref().trim().to_string());
            }
            Some(out)
        }
        None => None,
    };

    let mut record_list = Vec::with_capacity(raw.records.len());
    for r in &raw.records {
        record_list.push(records::record(src, r, &name_text)?);
    }
    // A CNAME replaces every other record at its name (RFC 1034 §3.6.2).
    for (i, r) in record_list.iter().enumerate() {
        if r.record_type != RecordType::Cname {
            continue;
        }
        if let Some(j) = (0..record_list.len()).find(|&j| j != i && record_list[j].name == r.name) {
            let (later, earlier) = if i > j { (i, j) } else { (j, i) };
            let span = raw
                .records
                .get(later)
                .map(|s| s.span())
                .unwrap_or(table.clone());
            let first = raw
                .records
                .get(earlier)
                .map_or(0, |s| src.line_of(&s.span()));
            return Err(src.at(
                span,
                format!(
                    "name {:?} has a CNAME record and another record (first at line {first}); a CNAME must be the only record at its name",
                    r.name
                ),
            ));
        }
    }

    let mut headers = Vec::with_capacity(raw.headers.len());
    for h in &raw.headers {
        headers.push(rules::header_rule(src, h)?);
    }
    let mut redirects = Vec::with_capacity(raw.redirects.len());
    for r in &raw.redirects {
        redirects.push(rules::redirect(src, r)?);
    }
    let mut functions: Vec<Function> = Vec::with_capacity(raw.functions.len());
    for f in &raw.functions {
        let function = wasm::function(src, f)?;
        if let Some(i) = functions.iter().position(|g| g.path == function.path) {
            let first = raw.functions.get(i).map_or(0, |s| src.line_of(&s.span()));
            return Err(src.at(
                f.span(),
                format!(
                    "function {:?} is declared twice (first at line {first}); merge the two, listing all methods in one",
                    function.path
                ),
            ));
        }
        functions.push(function);
    }
    // A week: longer and a pinned visitor would keep a deploy's bugs long
    // after the fix went live.
    const MAX_SKEW_SECS: u64 = 7 * 24 * 3600;
    let skew_protection_secs = match &raw.skew_protection_secs {
        Some(secs) if *secs.get_ref() > MAX_SKEW_SECS => {
            return Err(src.at(
                secs.span(),
                format!(
                    "skew_protection_secs {} is more than a week; use at most {MAX_SKEW_SECS}, e.g. 3600",
                    secs.get_ref()
                ),
            ));
        }
        Some(secs) => *secs.get_ref(),
        None => 0,
    };
    let mut transforms = Vec::with_capacity(raw.transforms.len());
    for t in &raw.transforms {
        transforms.push(wasm::transform(src, t)?);
    }

    Ok(Domain {
        name: name_text,
        path,
        aliases,
        production_branch,
        previews: raw.previews.unwrap_or(true),
        records: record_list,
        headers,
        redirects,
        functions,
        transforms,
        caa,
        hsts_max_age: raw.hsts_max_age,
        strict_rule_files: raw.strict_rule_files.unwrap_or(false),
        skew_protection_secs,
    })
}

/// Checks a domain name or alias and that no host appears twice in the file.
fn unique_host(
    src: Source<'_>,
    raw: &Spanned<String>,
    what: &str,
    hosts: &mut BTreeMap<String, usize>,
) -> Result<String, ConfigError> {
    let host = names::host_name(raw.get_ref(), what).map_err(|m| src.at(raw.span(), m))?;
    if let Some(line) = hosts.get(&host) {
        return Err(src.at(
            raw.span(),
            format!("domain {host:?} is declared twice (first at line {line}); remove one"),
        ));
    }
    hosts.insert(host.clone(), src.line_of(&raw.span()));
    Ok(host)
}

/// A branch name git would accept, written without `refs/heads/`.
fn branch_name(raw: &str) -> Result<(), String> {
    if let Some(short) = raw.strip_prefix("refs/heads/") {
        return Err(format!(
            "production_branch {raw:?} should be the branch name alone: write {short:?}"
        ));
    }
    let bad_char = raw
        .chars()
        .find(|c| c.is_ascii_control() || c.is_whitespace() || "~^:?*[\\".contains(*c));
    let bad = raw.is_empty()
        || bad_char.is_some()
        || raw.contains("..")
        || raw.contains("@{")
        || raw.contains("//")
        || raw.starts_with(['-', '/', '.'])
        || raw.ends_with(['/', '.'])
        || raw.ends_with(".lock")
        || raw == "@";
    if bad {
        return Err(format!(
            "production_branch {raw:?} is not a valid git branch name; write one such as \"main\""
        ));
    }
    Ok(())
}

/// Checks `[build]`.
fn build(src: Source<'_>, raw: &Spanned<RawBuild>) -> Result<Build, ConfigError> {
    let table = raw.span();
    let raw = raw.get_ref();
    let Some(command) = &raw.command else {
        return Err(src.at(
            table,
            "missing field \"command\" in [build]; add the command that builds the site, e.g. command = \"zola build\"",
        ));
    };
    if command.get_ref().trim().is_empty() {
        return Err(src.at(
            command.span(),
            "build command is empty; write the command that builds the site, e.g. \"zola build\", or remove [build]",
        ));
    }
    let Some(output) = &raw.output else {
        return Err(src.at(
            table,
            "missing field \"output\" in [build]; add the directory the build writes, e.g. output = \"public\"",
        ));
    };
    let output_text = repo_path::normalise("build output", output.get_ref())
        .map_err(|m| src.at(output.span(), m))?;
    Ok(Build {
        command: command.get_ref().clone(),
        output: output_text,
        network: raw.network.as_ref().is_some_and(|n| *n.get_ref()),
        env: wasm::env(src, &raw.env)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OnError;

    fn parse(text: &str) -> SiteConfig {
        match SiteConfig::parse("makiatto.toml", text) {
            Ok(c) => c,
            Err(e) => panic!("expected a valid config, got: {e}"),
        }
    }

    fn error(text: &str) -> String {
        match SiteConfig::parse("makiatto.toml", text) {
            Ok(c) => panic!("expected an error, parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// `body` inside a minimal valid domain, which takes two lines.
    fn in_domain(body: &str) -> String {
        error(&format!("[[domain]]\nname = \"example.com\"\n{body}"))
    }

    #[test]
    fn the_starter_site_config_parses() {
        // `maki init` writes this file; a new site must start valid.
        parse(include_str!("../../site-template/makiatto.toml"));
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../makiatto.toml.example");
        let config = parse(text);
        let d = &config.domains[0];
        assert_eq!(d.name, "example.com");
        assert_eq!(d.path, "public");
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.records[1].record_type, RecordType::Srv);
        assert_eq!(d.headers[0].pattern, "/assets/**");
        assert_eq!(d.functions[0].methods, ["GET", "POST"]);
        assert_eq!(d.transforms[0].on_error, OnError::Skip);
        assert_eq!(
            config.build,
            Some(Build {
                command: "zola build".into(),
                output: "public".into(),
                network: false,
                env: BTreeMap::from([("HUGO_ENV".into(), "production".into())]),
            })
        );
    }

    #[test]
    fn a_built_domain_without_path_serves_the_build_output() {
        let config = parse(
            "[[domain]]\nname = \"a.test\"\n[[domain]]\nname = \"b.test\"\npath = \"out/b\"\n[build]\ncommand = \"hugo\"\noutput = \"out\"\nnetwork = true\nenv = { A = \"1\" }\n",
        );
        assert_eq!(config.domains[0].path, "out");
        assert_eq!(config.domains[1].path, "out/b");
        let build = config.build.expect("[build] was given");
        assert!(build.network);
        assert_eq!(build.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(
            error(
                "[[domain]]\nname = \"a.test\"\n[build]\ncommand = \"x\"\noutput = \"o\"\nenv = { \"1X\" = \"\" }\n"
            ),
            "makiatto.toml:6:9: environment variable name \"1X\" is invalid; use letters, digits and \"_\", not starting with a digit, e.g. \"API_URL\""
        );
    }

    #[test]
    fn minimal_domain_gets_defaults() {
        let config = parse("[[domain]]\nname = \"Example.COM\"\n");
        assert_eq!(
            config.domains,
            [Domain {
                name: "example.com".into(),
                path: String::new(),
                aliases: vec![],
                production_branch: "main".into(),
                previews: true,
                records: vec![],
                headers: vec![],
                redirects: vec![],
                functions: vec![],
                transforms: vec![],
                caa: None,
                hsts_max_age: None,
                strict_rule_files: false,
                skew_protection_secs: 0,
            }]
        );
        assert_eq!(config.build, None);
        assert!(config.domain_for_host("example.com").is_some());
    }

    #[test]
    fn entries_are_normalised() {
        let config = parse(
            r#"[[domain]]
name = "example.com"
path = "./public/"
aliases = ["WWW.example.com"]
[[domain.records]]
type = "aaaa"
name = "WWW"
value = "2001:DB8::1"
[[domain.records]]
type = "cname"
name = "blog"
value = "Host.Example.NET."
[[domain.headers]]
for = "/*"
values = { "X-Frame-Options" = "DENY" }
[[domain.redirects]]
from = "/a"
to = "https://example.net/"
[[domain.functions]]
path = "./api/x.wasm"
methods = ["get", "GET", "post"]
[[domain.transforms]]
path = "t.wasm"
files = "*.html"
on_error = "fail"
[build]
command = "make"
output = "."
"#,
        );
        let d = &config.domains[0];
        assert_eq!(d.path, "public");
        assert_eq!(d.aliases, ["www.example.com"]);
        assert_eq!(d.records[0].name, "www");
        assert_eq!(d.records[0].value, "2001:db8::1");
        assert_eq!(d.records[1].value, "host.example.net");
        assert_eq!(
            d.headers[0]
                .values
                .get("x-frame-options")
                .map(String::as_str),
            Some("DENY")
        );
        assert_eq!(d.redirects[0].status, 301);
        assert_eq!(d.functions[0].path, "api/x.wasm");
        assert_eq!(d.functions[0].methods, ["GET", "POST"]);
        assert_eq!(d.transforms[0].on_error, OnError::Fail);
        assert_eq!(config.build.map(|b| b.output), Some(String::new()));
    }

    #[test]
    fn unknown_field_suggests_the_near_miss() {
        let text = "[[domain]]\nname = \"example.com\"\n\n# comments\n\n\npathh = \"public\"\n";
        assert_eq!(
            error(text),
            "makiatto.toml:7:1: unknown field \"pathh\", did you mean \"path\"?"
        );
    }

    #[test]
    fn unknown_field_lists_the_fields_without_a_near_miss() {
        assert_eq!(
            in_domain("zzz = 1\n"),
            "makiatto.toml:3:1: unknown field \"zzz\", expected one of \"name\", \"path\", \"aliases\", \"production_branch\", \"previews\", \"caa\", \"hsts_max_age\", \"strict_rule_files\", \"skew_protection_secs\", \"records\", \"headers\", \"redirects\", \"functions\", \"transforms\""
        );
        assert_eq!(
            error("[biuld]\ncommand = \"x\"\n"),
            "makiatto.toml:1:2: unknown field \"biuld\", did you mean \"build\"?"
        );
        assert_eq!(
            in_domain("[[domain.records]]\ntype = \"A\"\nvalue = \"192.0.2.1\"\nbogus = 1\n"),
            "makiatto.toml:6:1: unknown field \"bogus\", expected one of \"type\", \"name\", \"value\", \"priority\", \"weight\", \"port\", \"ttl\""
        );
        assert_eq!(
            in_domain(
                "[[domain.transforms]]\npath = \"t.wasm\"\nfiles = \"*\"\non-error = \"skip\"\n"
            ),
            "makiatto.toml:6:1: unknown field \"on-error\", did you mean \"on_error\"?"
        );
    }

    #[test]
    fn truncated_field_names_get_a_suggestion() {
        assert_eq!(
            in_domain("[[domain.records]]\ntype = \"MX\"\nvalue = \"m.example\"\nprio = 1\n"),
            "makiatto.toml:6:1: unknown field \"prio\", did you mean \"priority\"?"
        );
    }

    #[test]
    fn missing_fields_name_their_table() {
        assert_eq!(
            error("[[domain]]\npath = \"public\"\n"),
            "makiatto.toml:1:1: missing field \"name\" in [[domain]]; add the domain to serve, e.g. name = \"example.com\""
        );
        assert_eq!(
            in_domain("[[domain.records]]\nvalue = \"x\"\n"),
            "makiatto.toml:3:1: missing field \"type\" in [[domain.records]]; add type = \"A\" (one of A, AAAA, CNAME, MX, TXT, SRV, CAA, NS)"
        );
        assert_eq!(
            in_domain("[[domain.records]]\ntype = \"A\"\n"),
            "makiatto.toml:3:1: missing field \"value\" in [[domain.records]]; add the A record's data, e.g. value = \"192.0.2.1\""
        );
        assert_eq!(
            in_domain("[[domain.headers]]\nvalues = {}\n"),
            "makiatto.toml:3:1: missing field \"for\" in [[domain.headers]]; add the paths it applies to, e.g. for = \"/assets/**\""
        );
        assert_eq!(
            in_domain("[[domain.redirects]]\nfrom = \"/a\"\n"),
            "makiatto.toml:3:1: missing field \"to\" in [[domain.redirects]]; add where to send it, e.g. to = \"/new/:splat\""
        );
        assert_eq!(
            in_domain("[[domain.functions]]\nmethods = [\"GET\"]\n"),
            "makiatto.toml:3:1: missing field \"path\" in [[domain.functions]]; add the module's path in the served tree, e.g. path = \"api/hello.wasm\""
        );
        assert_eq!(
            in_domain("[[domain.transforms]]\npath = \"t.wasm\"\n"),
            "makiatto.toml:3:1: missing field \"files\" in [[domain.transforms]]; add the files it applies to, e.g. files = \"**/*.html\""
        );
        assert_eq!(
            in_domain("[build]\noutput = \"public\"\n"),
            "makiatto.toml:3:1: missing field \"command\" in [build]; add the command that builds the site, e.g. command = \"zola build\""
        );
        assert_eq!(
            in_domain("[build]\ncommand = \"make\"\n"),
            "makiatto.toml:3:1: missing field \"output\" in [build]; add the directory the build writes, e.g. output = \"public\""
        );
        assert_eq!(
            error("domain = [{ path = \"x\" }]\n"),
            "makiatto.toml:1:11: missing field \"name\" in [[domain]]; add the domain to serve, e.g. name = \"example.com\""
        );
    }

    #[test]
    fn wrong_types_read_cleanly() {
        assert_eq!(
            error("[[domain]]\nname = 5\n"),
            "makiatto.toml:2:8: \"name\" must be a string, not integer 5"
        );
        assert_eq!(
            in_domain("previews = \"yes\"\n"),
            "makiatto.toml:3:12: \"previews\" must be a boolean, not string \"yes\""
        );
        assert_eq!(
            in_domain("aliases = \"www.example.com\"\n"),
            "makiatto.toml:3:11: \"aliases\" must be an array, not string \"www.example.com\""
        );
        assert_eq!(
            in_domain("aliases = [\"a.example\", 1]\n"),
            "makiatto.toml:3:25: wrong type: expected a string, found integer 1"
        );
        assert_eq!(
            in_domain(
                "[[domain.records]]\ntype = \"MX\"\nvalue = \"m.example\"\npriority = 70000\n"
            ),
            "makiatto.toml:6:12: \"priority\" must be a whole number from 0 to 65535, not integer 70000"
        );
        assert_eq!(
            in_domain("hsts_max_age = -1\n"),
            "makiatto.toml:3:16: \"hsts_max_age\" must be a whole number, 0 or more, not integer -1"
        );
        assert_eq!(
            error("[domain]\nname = \"example.com\"\n"),
            "makiatto.toml:1:1: \"[domain]\" declares a table, but \"domain\" must be an array: write [[domain]]"
        );
        assert_eq!(
            in_domain("[[build]]\ncommand = \"make\"\noutput = \"o\"\n"),
            "makiatto.toml:3:1: \"[[build]]\" declares an array of tables, but \"build\" must be a string"
        );
        assert_eq!(
            in_domain("records = [1]\n"),
            "makiatto.toml:3:12: wrong type: expected a table, found integer 1"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        assert_eq!(
            error("[[domain]]\nname = 'x\n"),
            "makiatto.toml:2:10: invalid TOML: invalid literal string, expected `'`"
        );
        assert_eq!(
            error("[[domain]]\nname = \"a.example\"\nname = \"b.example\"\n"),
            "makiatto.toml:3:1: \"name\" is set twice in the same table; keep one"
        );
        assert_eq!(
            error("[[domain]\n"),
            "makiatto.toml:1:10: invalid TOML: unclosed array table, expected `]`"
        );
    }

    #[test]
    fn a_domain_is_required() {
        let expected = "makiatto.toml: no [[domain]] table: add one naming the site, e.g.\n[[domain]]\nname = \"example.com\"";
        assert_eq!(error(""), expected);
        assert_eq!(
            error("# nothing\n[build]\ncommand = \"x\"\noutput = \"o\"\n"),
            expected
        );
        assert_eq!(error("domain = []\n"), expected);
    }

    #[test]
    fn domain_names_are_checked() {
        assert_eq!(
            error("[[domain]]\nname = \"exa mple.com\"\n"),
            "makiatto.toml:2:8: domain name \"exa mple.com\" is not a valid host name: ' ' is not allowed; use letters, digits and \"-\""
        );
        assert_eq!(
            in_domain("aliases = [\"www..example.com\"]\n"),
            "makiatto.toml:3:12: alias \"www..example.com\" is not a valid host name: it has an empty label (two dots in a row, or a leading dot)"
        );
        assert_eq!(
            parse("[[domain]]\nname = \"localhost\"\n").domains[0].name,
            "localhost"
        );
    }

    #[test]
    fn duplicate_hosts_are_rejected_anywhere() {
        assert_eq!(
            error("[[domain]]\nname = \"example.com\"\n[[domain]]\nname = \"EXAMPLE.com\"\n"),
            "makiatto.toml:4:8: domain \"example.com\" is declared twice (first at line 2); remove one"
        );
        assert_eq!(
            error(
                "[[domain]]\nname = \"a.example\"\naliases = [\"www.b.example\"]\n[[domain]]\nname = \"b.example\"\naliases = [\"www.b.example\"]\n"
            ),
            "makiatto.toml:6:12: domain \"www.b.example\" is declared twice (first at line 3); remove one"
        );
        assert_eq!(
            in_domain("aliases = [\"example.com\"]\n"),
            "makiatto.toml:3:12: domain \"example.com\" is declared twice (first at line 2); remove one"
        );
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        assert_eq!(
            in_domain("path = \"/srv/site\"\n"),
            "makiatto.toml:3:8: path \"/srv/site\" is absolute; write it relative to the repository root, e.g. \"srv/site\""
        );
        assert_eq!(
            in_domain("path = \"public/../..\"\n"),
            "makiatto.toml:3:8: path \"public/../..\" leads outside the repository; it must stay inside it"
        );
        assert_eq!(
            in_domain("[build]\ncommand = \"make\"\noutput = \"../out\"\n"),
            "makiatto.toml:5:10: build output \"../out\" leads outside the repository; it must stay inside it"
        );
        assert_eq!(
            in_domain("[[domain.functions]]\npath = \"../x.wasm\"\n"),
            "makiatto.toml:4:8: path \"../x.wasm\" leads outside the repository; it must stay inside it"
        );
        assert_eq!(
            in_domain("[[domain.functions]]\npath = \"x.wasm\"\nenv_file = \"/etc/passwd\"\n"),
            "makiatto.toml:5:12: env_file \"/etc/passwd\" is absolute; write it relative to the repository root, e.g. \"etc/passwd\""
        );
        assert_eq!(
            in_domain("[[domain.transforms]]\npath = \"/t.wasm\"\nfiles = \"*\"\n"),
            "makiatto.toml:4:8: path \"/t.wasm\" is absolute; write it relative to the repository root, e.g. \"t.wasm\""
        );
    }

    #[test]
    fn globs_are_checked() {
        assert_eq!(
            in_domain("[[domain.headers]]\nfor = \"assets/*\"\nvalues = {}\n"),
            "makiatto.toml:4:7: header pattern \"assets/*\" must start with \"/\" (it matches URL paths), e.g. \"/assets/*\""
        );
        assert_eq!(
            in_domain("[[domain.headers]]\nfor = \"/a/[b\"\nvalues = {}\n"),
            "makiatto.toml:4:7: glob \"/a/[b\" is invalid: unclosed character class; missing ']'; use * within a directory, ** across directories, {a,b} for alternatives"
        );
        assert_eq!(
            in_domain("[[domain.transforms]]\npath = \"t.wasm\"\nfiles = \"/*.html\"\n"),
            "makiatto.toml:5:9: transform files \"/*.html\" must be relative to the served tree, without a leading \"/\": write \"*.html\""
        );
        assert_eq!(
            in_domain("[[domain.transforms]]\npath = \"t.wasm\"\nfiles = \"{a,b\"\n"),
            "makiatto.toml:5:9: glob \"{a,b\" is invalid: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?); use * within a directory, ** across directories, {a,b} for alternatives"
        );
    }

    #[test]
    fn redirects_are_checked() {
        let redirect = |body: &str| in_domain(&format!("[[domain.redirects]]\n{body}"));
        assert_eq!(
            redirect("from = \"/a\"\nto = \"/b\"\nstatus = 305\n"),
            "makiatto.toml:6:10: redirect status 305 is not supported; use 301, 302, 303, 307 or 308 to redirect, 200 to rewrite, or 404"
        );
        assert_eq!(
            redirect("from = \"old\"\nto = \"/b\"\n"),
            "makiatto.toml:4:8: redirect \"from\" \"old\" must be a path starting with \"/\", e.g. \"/old\""
        );
        assert_eq!(
            redirect("from = \"/a\"\nto = \"b\"\n"),
            "makiatto.toml:5:6: redirect \"to\" \"b\" must be a path starting with \"/\" or an http(s):// URL"
        );
        assert_eq!(
            redirect("from = \"/a/*/b\"\nto = \"/b\"\n"),
            "makiatto.toml:4:8: redirect \"from\" \"/a/*/b\" may use \"*\" only as its last character (it becomes :splat)"
        );
        assert_eq!(
            redirect("from = \"/a\"\nto = \"/b/:splat\"\n"),
            "makiatto.toml:5:6: redirect \"to\" uses \":splat\", which \"from\" does not capture; end \"from\" with \"*\" to capture it"
        );
        assert_eq!(
            redirect("from = \"/a\"\nto = \"https://x.example/\"\nstatus = 404\n"),
            "makiatto.toml:5:6: status 404 serves a file from this site, so \"to\" must be a path starting with \"/\", not a URL; use 301, 302, 307 or 308 to send visitors elsewhere, or 200 to proxy to that URL"
        );
        assert_eq!(
            redirect("from = \"/a/:host\"\nto = \"https://:host/\"\nstatus = 200\n"),
            "makiatto.toml:5:6: proxy \"to\" \"https://:host/\" takes its host from the request; write the backend's host literally, e.g. \"https://api.example.com/:splat\", so a visitor cannot choose the server"
        );
        assert_eq!(
            redirect("from = \"/a\"\nto = \"https:///x\"\n"),
            "makiatto.toml:5:6: redirect \"to\" \"https:///x\" has no valid host; write e.g. \"https://example.com/new\""
        );
    }

    #[test]
    fn headers_are_checked() {
        let header = |values: &str| {
            in_domain(&format!(
                "[[domain.headers]]\nfor = \"/*\"\nvalues = {values}\n"
            ))
        };
        assert_eq!(
            header("{ \"bad header\" = \"x\" }"),
            "makiatto.toml:5:12: header name \"bad header\" is not a valid HTTP header name; use letters, digits and \"-\", e.g. \"cache-control\""
        );
        assert_eq!(
            header("{ \"x-a\" = \"line\\nbreak\" }"),
            "makiatto.toml:5:20: header value \"line\\nbreak\" is not a valid HTTP header value; use printable ASCII characters and no line breaks"
        );
        assert_eq!(
            header("{ \"Cache-Control\" = \"a\", \"cache-control\" = \"b\" }"),
            "makiatto.toml:5:35: header \"cache-control\" is set twice in this rule (first at line 5); header names ignore case, keep one"
        );
        assert_eq!(
            header("{ \"Content-Length\" = \"1\" }"),
            "makiatto.toml:5:12: header \"content-length\" is managed by the server and cannot be set by a rule; remove it"
        );
    }

    #[test]
    fn records_are_checked() {
        let record = |body: &str| in_domain(&format!("[[domain.records]]\n{body}"));
        assert_eq!(
            record("type = \"A\"\nvalue = \"2001:db8::1\"\n"),
            "makiatto.toml:5:9: \"2001:db8::1\" is an IPv6 address; use type = \"AAAA\" for it"
        );
        assert_eq!(
            record("type = \"A\"\nvalue = \"192.0.2\"\n"),
            "makiatto.toml:5:9: A record value \"192.0.2\" is not an IPv4 address; write one such as \"192.0.2.1\""
        );
        assert_eq!(
            record("type = \"AAAA\"\nvalue = \"::g\"\n"),
            "makiatto.toml:5:9: AAAA record value \"::g\" is not an IPv6 address; write one such as \"2001:db8::1\""
        );
        assert_eq!(
            record("type = \"MX\"\nvalue = \"mail.example.com\"\n"),
            "makiatto.toml:3:1: MX record needs a priority; add priority = 10 (lower is preferred)"
        );
        assert_eq!(
            record(
                "type = \"SRV\"\nname = \"_sip._tcp\"\nvalue = \"sip.example.com\"\npriority = 1\nport = 5060\n"
            ),
            "makiatto.toml:3:1: SRV record needs a weight; add weight = 0 (used to share load between equal priorities)"
        );
        assert_eq!(
            record("type = \"SRV\"\nvalue = \"sip.example.com\"\npriority = 1\nweight = 1\n"),
            "makiatto.toml:3:1: SRV record needs a port; add the service's port, e.g. port = 5060"
        );
        assert_eq!(
            record("type = \"A\"\nvalue = \"192.0.2.1\"\npriority = 1\n"),
            "makiatto.toml:6:12: priority is only used by MX and SRV records, not A; remove it"
        );
        assert_eq!(
            record("type = \"CAA\"\nvalue = \"0 issue letsencrypt.org\"\n"),
            "makiatto.toml:5:9: CAA value \"0 issue letsencrypt.org\" must read: flags tag \"value\", e.g. 0 issue \"letsencrypt.org\""
        );
        assert_eq!(
            record("type = \"TXT\"\nname = \"_dmarc.example.com.\"\nvalue = \"v=DMARC1\"\n"),
            "makiatto.toml:5:8: record name \"_dmarc.example.com.\" must be relative to the domain, without a trailing dot: write \"_dmarc\""
        );
        assert_eq!(
            record("type = \"TXT\"\nname = \"a/b\"\nvalue = \"x\"\n"),
            "makiatto.toml:5:8: record name \"a/b\" contains '/'; use letters, digits, \"-\" and \"_\" (or \"@\" for the domain itself)"
        );
        assert_eq!(
            record("type = \"PTR\"\nvalue = \"x\"\n"),
            "makiatto.toml:4:8: record type \"PTR\" is not supported; use one of A, AAAA, CNAME, MX, TXT, SRV, CAA, NS"
        );
        assert_eq!(
            record("type = \"CNAME\"\nvalue = \"other.example.net\"\n"),
            "makiatto.toml:4:8: a CNAME cannot sit at the domain itself (\"@\"), next to its SOA and NS records; point an alias's name at it instead, or use A/AAAA records"
        );
        assert_eq!(
            record("type = \"MX\"\nvalue = \"192.0.2.1\"\npriority = 1\n"),
            "makiatto.toml:5:9: MX target \"192.0.2.1\" is an IP address; it must be a host name (point that name at the address with an A or AAAA record)"
        );
        assert_eq!(
            record("type = \"TXT\"\nvalue = \"x\"\nttl = 4294967295\n"),
            "makiatto.toml:6:7: ttl 4294967295 is too large; the maximum is 2147483647 seconds"
        );
        assert_eq!(
            in_domain(
                "[[domain.records]]\ntype = \"CNAME\"\nname = \"www\"\nvalue = \"x.example\"\n[[domain.records]]\ntype = \"TXT\"\nname = \"www\"\nvalue = \"y\"\n"
            ),
            "makiatto.toml:7:1: name \"www\" has a CNAME record and another record (first at line 3); a CNAME must be the only record at its name"
        );
        assert_eq!(
            in_domain("caa = [\"0 issue\"]\n"),
            "makiatto.toml:3:8: CAA value \"0 issue\" must read: flags tag \"value\", e.g. 0 issue \"letsencrypt.org\""
        );
    }

    #[test]
    fn functions_and_transforms_are_checked() {
        let function = |body: &str| in_domain(&format!("[[domain.functions]]\n{body}"));
        assert_eq!(
            function("path = \"api/hello.js\"\n"),
            "makiatto.toml:4:8: path \"api/hello.js\" must name a WebAssembly component ending in \".wasm\", e.g. \"api/hello.wasm\""
        );
        assert_eq!(
            function("path = \"a.wasm\"\nmethods = [\"GET\", \"PO ST\"]\n"),
            "makiatto.toml:5:19: \"PO ST\" is not an HTTP method; write one such as \"GET\" or \"POST\""
        );
        assert_eq!(
            function("path = \"a.wasm\"\nmethods = []\n"),
            "makiatto.toml:3:1: methods = [] would allow no request; remove it to allow every method, or list some, e.g. [\"GET\"]"
        );
        assert_eq!(
            function("path = \"a.wasm\"\nenv = { \"1BAD\" = \"x\" }\n"),
            "makiatto.toml:5:9: environment variable name \"1BAD\" is invalid; use letters, digits and \"_\", not starting with a digit, e.g. \"API_URL\""
        );
        assert_eq!(
            function("path = \"a.wasm\"\ntimeout_ms = 0\n"),
            "makiatto.toml:5:14: timeout_ms must be at least 1; remove it to use the default"
        );
        assert_eq!(
            in_domain(
                "[[domain.functions]]\npath = \"a.wasm\"\n[[domain.functions]]\npath = \"./a.wasm\"\n"
            ),
            "makiatto.toml:5:1: function \"a.wasm\" is declared twice (first at line 3); merge the two, listing all methods in one"
        );
        let transform = |on_error: &str| {
            in_domain(&format!(
                "[[domain.transforms]]\npath = \"t.wasm\"\nfiles = \"*\"\non_error = \"{on_error}\"\n"
            ))
        };
        assert_eq!(
            transform("skipp"),
            "makiatto.toml:6:12: on_error \"skipp\" is not supported, did you mean \"skip\"?"
        );
        assert_eq!(
            transform("retry"),
            "makiatto.toml:6:12: on_error \"retry\" is not supported; use \"skip\" (serve the file untransformed) or \"fail\" (refuse the deploy)"
        );
    }

    #[test]
    fn build_and_branch_are_checked() {
        assert_eq!(
            in_domain("[build]\ncommand = \"  \"\noutput = \"o\"\n"),
            "makiatto.toml:4:11: build command is empty; write the command that builds the site, e.g. \"zola build\", or remove [build]"
        );
        assert_eq!(
            in_domain("production_branch = \"refs/heads/main\"\n"),
            "makiatto.toml:3:21: production_branch \"refs/heads/main\" should be the branch name alone: write \"main\""
        );
        assert_eq!(
            in_domain("production_branch = \"a..b\"\n"),
            "makiatto.toml:3:21: production_branch \"a..b\" is not a valid git branch name; write one such as \"main\""
        );
    }
}
