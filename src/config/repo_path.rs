//! Paths inside the pushed repository (`path`, `build.output`, WASM modules,
//! env files). A config must never reach outside the repository, so these are
//! checked and normalised once here: no absolute paths, no `..` that climbs
//! above the root, no `.` components, no leading or trailing `/`.

/// Normalises `raw` (`./public/` → `public`, `.` → ``); `field` names it in
/// messages.
pub(super) fn normalise(field: &str, raw: &str) -> Result<String, String> {
    if raw.starts_with('/') {
        return Err(format!(
            "{field} {raw:?} is absolute; write it relative to the repository root, e.g. {:?}",
            raw.trim_start_matches('/')
        ));
    }
    if raw.contains('\\') {
        return Err(format!(
            "{field} {raw:?} contains \"\\\"; separate directories with \"/\""
        ));
    }
    if raw.contains('\0') {
        return Err(format!("{field} {raw:?} contains a NUL character"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "{field} {raw:?} leads outside the repository; it must stay inside it"
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_relative_paths() {
        assert_eq!(normalise("path", "./public/").as_deref(), Ok("public"));
        assert_eq!(normalise("path", ".").as_deref(), Ok(""));
        assert_eq!(normalise("path", "").as_deref(), Ok(""));
        assert_eq!(normalise("path", "a//b/../c").as_deref(), Ok("a/c"));
    }

    #[test]
    fn rejects_paths_leaving_the_repository() {
        assert_eq!(
            normalise("path", "/srv/www"),
            Err("path \"/srv/www\" is absolute; write it relative to the repository root, e.g. \"srv/www\"".into())
        );
        assert_eq!(
            normalise("build.output", "a/../../b"),
            Err(
                "build.output \"a/../../b\" leads outside the repository; it must stay inside it"
                    .into()
            )
        );
        assert!(normalise("path", "a\\b").is_err());
    }
}
