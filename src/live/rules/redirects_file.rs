//! The `_redirects` file at the root of the served tree, in the syntax
//! Netlify and Cloudflare Pages read, so a site moves over unchanged.
//!
//! One rule a line: `FROM [KEY=VALUE...] TO [STATUS[!]] [Country=..] [Language=..]`.
//! `FROM` is a path pattern (`*` splat at the end, `:name` segments) or a
//! full `http(s)://host/path` URL, which limits the rule to that host; the
//! `KEY=VALUE` tokens before `TO` are query parameters the request must
//! carry (`:name` captures the value); `STATUS` defaults to 301, and a `!`
//! forces the rule even where a file exists at the path. `#` starts a
//! comment. A line that cannot be read is skipped with a warning naming
//! the token and the fix; the rest of the file still applies.

use std::collections::HashMap;

use super::redirect::RuleSpec;
use super::warning::{RuleFileWarning, Token, lines, tokens};

/// The file's name in the served tree.
pub const FILE: &str = "_redirects";

/// One readable line, with where its parts were for later errors.
#[derive(Debug, Clone)]
pub(super) struct FileRule<'a> {
    pub spec: RuleSpec<'a>,
    pub line: usize,
    /// Column of the `FROM` token.
    pub column: usize,
}

/// Reads every line of `text`, returning the readable rules in file order
/// and a warning for each skipped line.
pub(super) fn parse(text: &str) -> (Vec<FileRule<'_>>, Vec<RuleFileWarning>) {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    // Source key → line of its first rule, to report rules that can never
    // apply because an identical source came first.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (number, line) in lines(text) {
        let words = tokens(line);
        if words.is_empty() {
            continue;
        }
        match parse_line(&words) {
            Ok(spec) => {
                let key = source_key(&spec);
                if let Some(first) = seen.get(&key) {
                    warnings.push(RuleFileWarning {
                        file: FILE,
                        line: number,
                        column: words[0].column,
                        problem: format!(
                            "`{}` repeats the source of line {first}, whose rule always wins",
                            words[0].text
                        ),
                        fix: "remove one of the two lines".into(),
                    });
                    continue;
                }
                seen.insert(key, number);
                rules.push(FileRule {
                    spec,
                    line: number,
                    column: words[0].column,
                });
            }
            Err((token, problem, fix)) => warnings.push(RuleFileWarning {
                file: FILE,
                line: number,
                column: token.column,
                problem,
                fix,
            }),
        }
    }
    (rules, warnings)
}

/// What decides whether two rules match the same requests.
fn source_key(spec: &RuleSpec<'_>) -> String {
    format!(
        "{:?} {} {:?} {:?} {:?}",
        spec.host, spec.from, spec.query, spec.countries, spec.languages
    )
}

type LineError<'a> = (Token<'a>, String, String);

fn parse_line<'a>(words: &[Token<'a>]) -> Result<RuleSpec<'a>, LineError<'a>> {
    let from_token = words[0];
    let (host, from) = split_source(from_token)?;
    let mut rest = words[1..].iter().copied().peekable();

    let mut query = Vec::new();
    let to = loop {
        let Some(word) = rest.next() else {
            return Err((
                from_token,
                format!("`{}` has no target", from_token.text),
                format!(
                    "write where it goes after it, e.g. `{} /new-path 301`",
                    from_token.text
                ),
            ));
        };
        if is_target(word.text) {
            break word;
        }
        if let Some((key, value)) = word.text.split_once('=')
            && !key.is_empty()
        {
            query.push((key, value));
            continue;
        }
        if is_status(word.text) {
            return Err((
                word,
                format!(
                    "status `{}` comes before any target, so the rule has none",
                    word.text
                ),
                format!(
                    "write the target path or URL before the status, e.g. `{} /page.html {}`",
                    from_token.text, word.text
                ),
            ));
        }
        if word.text.contains("://") {
            return Err((
                word,
                format!("target `{}` is not an http(s):// URL", word.text),
                "only http:// and https:// URLs (or paths starting with `/`) can be targets; proxy or redirect to the service's http(s) address".into(),
            ));
        }
        return Err((
            word,
            format!("`{}` is neither a query condition nor a target", word.text),
            "write the target as a path starting with `/` or an http(s):// URL".into(),
        ));
    };

    let mut status = 301;
    let mut force = false;
    let mut countries = Vec::new();
    let mut languages = Vec::new();
    let mut seen_status = false;
    for word in rest {
        if is_status(word.text) && !seen_status && countries.is_empty() && languages.is_empty() {
            let digits = word.text.trim_end_matches('!');
            force = word.text.ends_with('!');
            status = digits.parse().unwrap_or(301);
            seen_status = true;
            if !matches!(status, 200 | 301 | 302 | 303 | 307 | 308 | 400..=599) {
                return Err((
                    word,
                    format!("status {status} is not a redirect, rewrite or error status"),
                    "use 301, 302, 303, 307 or 308 to redirect, 200 to rewrite, or a 4xx/5xx status to serve the target as an error page".into(),
                ));
            }
            continue;
        }
        let Some((key, values)) = word.text.split_once('=') else {
            return Err((
                word,
                format!("unexpected `{}` after the target", word.text),
                "after the target only a status (e.g. `301`, `200!`) and `Country=`/`Language=` conditions may follow; remove it".into(),
            ));
        };
        if key.eq_ignore_ascii_case("country") {
            for code in values.split(',').filter(|c| !c.is_empty()) {
                match <[u8; 2]>::try_from(code.as_bytes()) {
                    Ok(bytes) if bytes.iter().all(u8::is_ascii_alphabetic) => {
                        countries.push(bytes.map(|b| b.to_ascii_uppercase()))
                    }
                    _ => {
                        return Err((
                            word,
                            format!("`{code}` is not a two-letter country code"),
                            "write ISO 3166 codes separated by commas, e.g. `Country=se,no`".into(),
                        ));
                    }
                }
            }
            if countries.is_empty() {
                return Err((
                    word,
                    "`Country=` names no country".into(),
                    "write codes separated by commas, e.g. `Country=se,no`".into(),
                ));
            }
        } else if key.eq_ignore_ascii_case("language") {
            for tag in values.split(',').filter(|t| !t.is_empty()) {
                if !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err((
                        word,
                        format!("`{tag}` is not a language tag"),
                        "write tags separated by commas, e.g. `Language=en,pt-BR`".into(),
                    ));
                }
                languages.push(tag.to_ascii_lowercase());
            }
            if languages.is_empty() {
                return Err((
                    word,
                    "`Language=` names no language".into(),
                    "write tags separated by commas, e.g. `Language=en,de`".into(),
                ));
            }
        } else if key.eq_ignore_ascii_case("role") || key.eq_ignore_ascii_case("cookie") {
            return Err((
                word,
                format!("`{key}=` conditions are not supported"),
                "remove the line, or the condition if the rule should apply to every visitor"
                    .into(),
            ));
        } else {
            return Err((
                word,
                format!("unknown condition `{key}=`"),
                "the conditions are `Country=` and `Language=`".into(),
            ));
        }
    }
    Ok(RuleSpec {
        host,
        from,
        query,
        to: to.text,
        status,
        yields_to_files: !force,
        countries,
        languages,
    })
}

/// The host a full-URL source is limited to, and its path.
fn split_source(token: Token<'_>) -> Result<(Option<String>, &str), LineError<'_>> {
    let text = token.text;
    let without_scheme = ["http://", "https://"].iter().find_map(|scheme| {
        let head = text.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| &text[scheme.len()..])
    });
    let Some(rest) = without_scheme else {
        if !text.starts_with('/') {
            return Err((
                token,
                format!("source `{text}` does not start with `/`"),
                format!("write it as a path, e.g. `/{text}`, or a full http(s):// URL"),
            ));
        }
        return Ok((None, text));
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err((
            token,
            format!("source `{text}` has no usable host name"),
            "write it as `https://host.example/path`, or as a path starting with `/`".into(),
        ));
    }
    Ok((Some(host.to_ascii_lowercase()), path))
}

fn is_target(text: &str) -> bool {
    text.starts_with('/')
        || ["http://", "https://"].iter().any(|scheme| {
            text.get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        })
}

/// Three digits, optionally followed by `!`.
fn is_status(text: &str) -> bool {
    let digits = text.strip_suffix('!').unwrap_or(text);
    digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit())
}
