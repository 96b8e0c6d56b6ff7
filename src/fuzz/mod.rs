//! Generated-input testing on stable Rust: every parser that faces the
//! network, a repository or an operator's file is fed generated inputs
//! (mutations of valid seeds, and noise), and must return without
//! panicking. The targets sit beside what they test (`dns/fuzz.rs`,
//! `git/fuzz.rs`, `http/fuzz.rs`, `config/fuzz.rs`) and run through
//! [`run`], which draws inputs from a fixed seed, so a failure reproduces.
//!
//! Ordinary test runs try `DEFAULT_INPUTS` per target; CI sets
//! `MAKIATTO_FUZZ_INPUTS=1000000` (`scripts/test` does). A panic prints
//! the input in hex, which becomes a regression test beside the target.

#![cfg(test)]

pub mod input;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Instant;

pub use input::Rng;

/// Inputs per target in an ordinary `cargo test` run.
const DEFAULT_INPUTS: u64 = 20_000;

/// How many inputs each target runs: `MAKIATTO_FUZZ_INPUTS`, else
/// `DEFAULT_INPUTS`.
pub fn inputs() -> u64 {
    std::env::var("MAKIATTO_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_INPUTS)
}

/// Runs `check` on [`inputs`] inputs made by `generate` from a generator
/// seeded with `seed`, and prints the count and the wall time. A panic in
/// `check` is reported with its input (hex) and index, then re-raised.
pub fn run(
    target: &str,
    seed: u64,
    mut generate: impl FnMut(&mut Rng) -> Vec<u8>,
    mut check: impl FnMut(&[u8]),
) {
    let total = inputs();
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    for index in 0..total {
        let input = generate(&mut rng);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&input))) {
            eprintln!(
                "fuzz {target}: input {index} panicked; add it as a regression test:\n{}",
                hex(&input)
            );
            resume_unwind(panic);
        }
    }
    println!(
        "fuzz {target}: {total} inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
