//! Reading a revision's `_redirects` and `_headers` from its manifest.
//!
//! The files travel in the tree like any other (so replicas get them with
//! the revision) but are never served: they are read from the object store
//! once per revision and compiled with the domain's rules. Deploy reads
//! them the same way before activation, to report skipped lines to the
//! pusher or refuse the push when the site asks for that.

use super::rules::{HEADERS_FILE, REDIRECTS_FILE, RuleFileWarning, RuleFiles, Rules};
use crate::cas::Cas;
use crate::config::Domain;
use crate::tree::Manifest;

/// Largest rule file read; Netlify's own limits are far below this, and a
/// larger one is more likely an accident than a site.
const MAX_RULE_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Whether a manifest path is one of the rule files (never served).
pub fn is_rule_file(path: &str) -> bool {
    path == REDIRECTS_FILE || path == HEADERS_FILE
}

/// The domain's rules compiled with the rule files of `manifest`, and a
/// warning for every line (or file) skipped.
pub fn compile_rules(
    domain: &Domain,
    manifest: &Manifest,
    cas: &Cas,
) -> (Rules, Vec<RuleFileWarning>) {
    let mut warnings = Vec::new();
    let redirects = read(REDIRECTS_FILE, manifest, cas, &mut warnings);
    let headers = read(HEADERS_FILE, manifest, cas, &mut warnings);
    let (rules, mut skipped) = Rules::compile_with_files(
        domain,
        RuleFiles {
            redirects: redirects.as_deref(),
            headers: headers.as_deref(),
        },
    );
    warnings.append(&mut skipped);
    (rules, warnings)
}

fn read(
    file: &'static str,
    manifest: &Manifest,
    cas: &Cas,
    warnings: &mut Vec<RuleFileWarning>,
) -> Option<String> {
    let entry = manifest.get(file)?;
    let whole = |problem: String, fix: &str| RuleFileWarning {
        file,
        line: 1,
        column: 1,
        problem,
        fix: fix.to_string(),
    };
    if entry.size > MAX_RULE_FILE_BYTES {
        warnings.push(whole(
            format!(
                "the file has {} bytes, more than the {MAX_RULE_FILE_BYTES} read",
                entry.size
            ),
            "split the rules or remove unused ones; the whole file is ignored",
        ));
        return None;
    }
    let bytes = match cas.read(&entry.hash) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(file, error = %e, "cannot read a rule file");
            warnings.push(whole(
                format!("the file cannot be read on this node: {e}"),
                "push it again",
            ));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(_) => {
            warnings.push(whole(
                "the file is not UTF-8 text".into(),
                "save it as UTF-8; the whole file is ignored",
            ));
            None
        }
    }
}
