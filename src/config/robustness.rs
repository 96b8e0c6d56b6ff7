//! Both parsers face text from outside (a pushed repository, an operator's
//! file), so no input may make them panic. These tests throw truncated and
//! mangled config text at them and only check that they return.

#![cfg(test)]

use super::{NodeConfig, SiteConfig};

const SITE: &str = include_str!("../../makiatto.toml.example");
const NODE: &str = include_str!("../../node.toml.example");

/// Feeds `text` to both parsers; a panic fails the test.
fn parse_both(text: &str) {
    let _ = SiteConfig::parse("makiatto.toml", text);
    let _ = NodeConfig::parse("node.toml", text);
}

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn truncated_examples_never_panic() {
    for source in [SITE, NODE] {
        for (i, _) in source.char_indices() {
            parse_both(&source[..i]);
        }
    }
}

#[test]
fn mangled_examples_never_panic() {
    // Characters that matter to TOML and to our checks, plus multi-byte ones
    // that would break careless slicing.
    const PIECES: [&str; 16] = [
        "[",
        "]",
        "[[",
        "=",
        "\"",
        "'",
        "\n",
        ".",
        "..",
        "/",
        "*",
        "{",
        "}",
        "é",
        "\u{1F600}",
        "0",
    ];
    let mut rng = Lcg(7);
    for source in [SITE, NODE] {
        let chars: Vec<char> = source.chars().collect();
        for _ in 0..1500 {
            let mut text: String = chars.iter().collect();
            for _ in 0..(1 + rng.next() % 4) {
                let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                let at = boundaries
                    .get(rng.next() as usize % boundaries.len().max(1))
                    .copied()
                    .unwrap_or(0);
                match rng.next() % 3 {
                    0 => text.insert_str(at, PIECES[rng.next() as usize % PIECES.len()]),
                    1 => {
                        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                        text.replace_range(at..end, "");
                    }
                    _ => text.truncate(at),
                }
            }
            parse_both(&text);
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Lcg(42);
    for len in 0..400 {
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() % 256) as u8).collect();
        parse_both(&String::from_utf8_lossy(&bytes));
    }
    for text in [
        "",
        "\0",
        "=",
        "[",
        "[[",
        "[[domain]]",
        "[[domain]]\nname",
        "\u{feff}[[domain]]",
        "[[domain]]\nname = \"\u{0}\"",
        "a.b.c.d = 1",
        "\"\" = 1",
        "domain = \"x\"",
        "nodes = 1",
        "[[nodes]]\n[[nodes]]",
        "name = \"a\"\nhttp = []",
    ] {
        parse_both(text);
    }
}
