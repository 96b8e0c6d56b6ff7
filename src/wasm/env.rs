//! A module's environment: the `env` table of its config entry on top of
//! the `NAME=value` lines of its `env_file`.

use std::collections::BTreeMap;

use super::WasmError;

/// Parses an env file: `NAME=value` lines, `#` comments and blank lines;
/// a value may be wrapped in double or single quotes.
pub fn parse(file: &str, text: &str) -> Result<BTreeMap<String, String>, WasmError> {
    let mut vars = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let bad = |message: &str| WasmError::EnvFile {
            file: file.to_string(),
            line: i + 1,
            message: message.to_string(),
        };
        let Some((name, value)) = line.split_once('=') else {
            return Err(bad("expected NAME=value"));
        };
        let name = name.trim();
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad(
                "the name must be letters, digits and \"_\", not starting with a digit",
            ));
        }
        let value = value.trim();
        let unquoted = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(open, close)| {
                value
                    .strip_prefix(*open)
                    .and_then(|v| v.strip_suffix(*close))
            })
            .unwrap_or(value);
        vars.insert(name.to_string(), unquoted.to_string());
    }
    Ok(vars)
}

/// The environment of a module: the env file's variables, then `env`
/// (which wins on a clash, being the more specific).
pub fn merge(
    file_vars: BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut vars = file_vars;
    for (k, v) in env {
        vars.insert(k.clone(), v.clone());
    }
    vars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_names_values_and_quotes() {
        let vars = parse(
            ".env",
            "# comment\n\nA=1\nexport B = \"two words\"\nC='x=y'\n",
        )
        .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
    }

    #[test]
    fn env_file_errors_name_the_line() {
        let err = parse(".env", "A=1\nnot a pair\n").unwrap_err();
        assert_eq!(err.to_string(), ".env:2: expected NAME=value");
        assert!(parse(".env", "1A=x\n").is_err());
    }

    #[test]
    fn config_env_wins_over_the_file() {
        let file = parse(".env", "A=file\nB=file\n").unwrap();
        let env = BTreeMap::from([("A".to_string(), "config".to_string())]);
        assert_eq!(
            merge(file, &env),
            vec![
                ("A".to_string(), "config".to_string()),
                ("B".to_string(), "file".to_string())
            ]
        );
    }
}
