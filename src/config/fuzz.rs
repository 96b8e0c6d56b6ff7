//! Generated config text for both parsers: the tables of the example files
//! (each alone, and the whole file now and then), mutated with the tokens
//! TOML and our checks care about. A config is text from outside (an
//! operator's file, a pushed repository), so none may panic a parser.

#![cfg(test)]

use super::{NodeConfig, SiteConfig};
use crate::fuzz::{self, input};

const SITE: &str = include_str!("../../makiatto.toml.example");
const NODE: &str = include_str!("../../node.toml.example");

/// Tokens that matter to TOML and to our validators.
const DICTIONARY: [&[u8]; 20] = [
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"=",
    b"\"",
    b"'",
    b"\n",
    b".",
    b"..",
    b"/",
    b"*",
    b"{",
    b"}",
    "é".as_bytes(),
    b"0",
    b"-1",
    b"1e400",
    b"\"\"\"",
    b"\\u0000",
];

/// Every table of `text` as one seed (comments dropped, so mutations land
/// on values), plus the whole text.
fn seeds(text: &str) -> Vec<Vec<u8>> {
    let mut seeds = vec![text.as_bytes().to_vec()];
    let mut current = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with('[') && !current.trim().is_empty() {
            seeds.push(std::mem::take(&mut current).into_bytes());
        }
        current.push_str(line);
        current.push('\n');
    }
    seeds.push(current.into_bytes());
    seeds
}

/// Mostly one table; one time in 50 the whole file.
fn generate(rng: &mut fuzz::Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.one_in(50) {
        return input::generate(rng, &seeds[..1], &DICTIONARY);
    }
    let tables = &seeds[1..];
    let mut text = input::generate(rng, tables, &DICTIONARY);
    if rng.one_in(4) {
        // Two tables together, so cross-table checks run.
        text.extend(input::generate(rng, tables, &DICTIONARY));
    }
    text
}

#[test]
fn generated_node_toml_never_panics() {
    let seeds = seeds(NODE);
    fuzz::run(
        "node.toml",
        0x70de,
        |rng| generate(rng, &seeds),
        |raw| {
            let _ = NodeConfig::parse("node.toml", &String::from_utf8_lossy(raw));
        },
    );
}

#[test]
fn generated_makiatto_toml_never_panics() {
    let seeds = seeds(SITE);
    fuzz::run(
        "makiatto.toml",
        0x5173,
        |rng| generate(rng, &seeds),
        |raw| {
            let _ = SiteConfig::parse("makiatto.toml", &String::from_utf8_lossy(raw));
        },
    );
}
