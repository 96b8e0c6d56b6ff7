//! WebAssembly entries of a domain (`[[domain.functions]]`,
//! `[[domain.transforms]]`): module paths, methods, environment and limits,
//! checked so the WASM host only ever loads a module from inside the served
//! tree with sane limits.

use std::collections::BTreeMap;

use serde_spanned::Spanned;

use super::diagnostic::Source;
use super::raw::{RawFunction, RawTransform};
use super::{ConfigError, repo_path, rules, suggest};

/// One `[[domain.functions]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Path of the component in the served tree; the route is this path
    /// without the `.wasm` extension.
    pub path: String,
    /// Allowed methods, uppercase; empty means all.
    pub methods: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub env_file: Option<String>,
    pub timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
}

/// What a failing transform does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Serve the untransformed file and log the failure.
    #[default]
    Skip,
    /// Refuse the deploy, naming the transform and the file; the previous
    /// revision stays live.
    Fail,
}

/// One `[[domain.transforms]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    pub path: String,
    /// Glob over served file paths (relative, no leading `/`).
    pub files: String,
    pub env: BTreeMap<String, String>,
    pub env_file: Option<String>,
    pub timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
    pub max_file_size_kb: Option<u64>,
    pub on_error: OnError,
}

/// Checks one `[[domain.functions]]` entry.
pub(super) fn function(
    src: Source<'_>,
    raw: &Spanned<RawFunction>,
) -> Result<Function, ConfigError> {
    let table = raw.span();
    let raw = raw.get_ref();
    let path = module_path(src, &raw.path, table.clone(), "functions", "api/hello.wasm")?;
    let mut methods: Vec<String> = Vec::new();
    for method in raw.methods.iter().flatten() {
        let upper = method.get_ref().to_ascii_uppercase();
        let is_token = !upper.is_empty() && upper.bytes().all(is_tchar);
        if !is_token || hyper::Method::from_bytes(upper.as_bytes()).is_err() {
            return Err(src.at(
                method.span(),
                format!(
                    "{:?} is not an HTTP method; write one such as \"GET\" or \"POST\"",
                    method.get_ref()
                ),
            ));
        }
        if !methods.contains(&upper) {
            methods.push(upper);
        }
    }
    if raw.methods.as_ref().is_some_and(Vec::is_empty) {
        // An empty list would read as "all methods", the opposite of what it says.
        return Err(src.at(
            table,
            "methods = [] would allow no request; remove it to allow every method, or list some, e.g. [\"GET\"]",
        ));
    }
    Ok(Function {
        path,
        methods,
        env: env(src, &raw.env)?,
        env_file: env_file(src, &raw.env_file)?,
        timeout_ms: positive(src, &raw.timeout_ms, "timeout_ms")?,
        max_memory_mb: positive(src, &raw.max_memory_mb, "max_memory_mb")?,
    })
}

/// Checks one `[[domain.transforms]]` entry.
pub(super) fn transform(
    src: Source<'_>,
    raw: &Spanned<RawTransform>,
) -> Result<Transform, ConfigError> {
    let table = raw.span();
    let raw = raw.get_ref();
    let path = module_path(src, &raw.path, table.clone(), "transforms", "inject.wasm")?;
    let Some(files) = &raw.files else {
        return Err(src.at(
            table,
            "missing field \"files\" in [[domain.transforms]]; add the files it applies to, e.g. files = \"**/*.html\"",
        ));
    };
    let files_text = files.get_ref();
    if files_text.starts_with('/') {
        return Err(src.at(
            files.span(),
            format!(
                "transform files {files_text:?} must be relative to the served tree, without a leading \"/\": write {:?}",
                files_text.trim_start_matches('/')
            ),
        ));
    }
    rules::glob(files_text).map_err(|m| src.at(files.span(), m))?;
    let on_error = match &raw.on_error {
        None => OnError::default(),
        Some(v) => match v.get_ref().as_str() {
            "skip" => OnError::Skip,
            "fail" => OnError::Fail,
            other => {
                let hint = match suggest::closest(other, &["skip", "fail"]) {
                    Some(c) => format!(", did you mean {c:?}?"),
                    None => {
                        "; use \"skip\" (serve the file untransformed) or \"fail\" (refuse the deploy)"
                            .to_string()
                    }
                };
                return Err(src.at(
                    v.span(),
                    format!("on_error {other:?} is not supported{hint}"),
                ));
            }
        },
    };
    Ok(Transform {
        path,
        files: files_text.clone(),
        env: env(src, &raw.env)?,
        env_file: env_file(src, &raw.env_file)?,
        timeout_ms: positive(src, &raw.timeout_ms, "timeout_ms")?,
        max_memory_mb: positive(src, &raw.max_memory_mb, "max_memory_mb")?,
        max_file_size_kb: positive(src, &raw.max_file_size_kb, "max_file_size_kb")?,
        on_error,
    })
}

/// The required `.wasm` path of a function or transform, normalised.
fn module_path(
    src: Source<'_>,
    raw: &Option<Spanned<String>>,
    table: std::ops::Range<usize>,
    kind: &str,
    example: &str,
) -> Result<String, ConfigError> {
    let Some(path) = raw else {
        return Err(src.at(
            table,
            format!(
                "missing field \"path\" in [[domain.{kind}]]; add the module's path in the served tree, e.g. path = {example:?}"
            ),
        ));
    };
    let normal =
        repo_path::normalise("path", path.get_ref()).map_err(|m| src.at(path.span(), m))?;
    if !normal.ends_with(".wasm") || normal.len() == ".wasm".len() {
        return Err(src.at(
            path.span(),
            format!(
                "path {:?} must name a WebAssembly component ending in \".wasm\", e.g. {example:?}",
                path.get_ref()
            ),
        ));
    }
    Ok(normal)
}

/// Environment variable names must be portable identifiers.
pub(super) fn env(
    src: Source<'_>,
    raw: &BTreeMap<Spanned<String>, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let n = name.get_ref();
        let ok = n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(src.at(
                name.span(),
                format!(
                    "environment variable name {n:?} is invalid; use letters, digits and \"_\", not starting with a digit, e.g. \"API_URL\""
                ),
            ));
        }
        out.insert(n.clone(), value.clone());
    }
    Ok(out)
}

fn env_file(src: Source<'_>, raw: &Option<Spanned<String>>) -> Result<Option<String>, ConfigError> {
    let Some(file) = raw else { return Ok(None) };
    let normal =
        repo_path::normalise("env_file", file.get_ref()).map_err(|m| src.at(file.span(), m))?;
    if normal.is_empty() {
        return Err(src.at(
            file.span(),
            "env_file must name a file in the repository, e.g. \".env.functions\"",
        ));
    }
    Ok(Some(normal))
}

/// A limit that must be at least 1 when given (0 would make every call fail).
pub(super) fn positive(
    src: Source<'_>,
    raw: &Option<Spanned<u64>>,
    field: &str,
) -> Result<Option<u64>, ConfigError> {
    match raw {
        Some(v) if *v.get_ref() == 0 => Err(src.at(
            v.span(),
            format!("{field} must be at least 1; remove it to use the default"),
        )),
        Some(v) => Ok(Some(*v.get_ref())),
        None => Ok(None),
    }
}

/// RFC 9110 token characters, the alphabet of method names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
