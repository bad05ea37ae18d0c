//! Bounded fuzzing on the stable toolchain: every parser of outside input (registry imports,
//! credit codes, identity numbers, character counting, JSON transcoding) is fed generated and
//! mutated inputs, beside its own unit tests, for a bounded number of cases and seconds.
//!
//! Why not cargo-fuzz: it needs a nightly toolchain (`-Zsanitizer`), and this project builds on
//! the one stable toolchain its machines have. The loop here keeps what matters for CI — no
//! input may panic, and each parser's own invariants hold — and says how to replay a failure:
//! each case has its own seed, printed when it panics. `QAWARD_FUZZ_CASES` (default 2,000)
//! and `QAWARD_FUZZ_SECONDS` (default 5) bound a run, whichever comes first;
//! `QAWARD_FUZZ_SEED` changes the base seed (default fixed, so CI is repeatable).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, Instant},
};

use crate::clock::{Randomness, SeededRandomness};

/// A case's source of choices.
pub struct Gen(SeededRandomness);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(SeededRandomness::new(seed))
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.0.next_u64() % n as u64) as usize
        }
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max` arbitrary bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        let mut v = vec![0u8; n];
        self.0.fill(&mut v);
        v
    }

    /// Up to `max` pieces drawn from `alphabet`, joined: text shaped like the input.
    pub fn text(&mut self, max: usize, alphabet: &[&str]) -> String {
        let n = self.below(max + 1);
        (0..n).map(|_| *self.pick(alphabet)).collect()
    }

    /// `valid` with one to four edits: a byte changed, bytes inserted (arbitrary or from
    /// `alphabet`), a range deleted or repeated, the end cut off.
    pub fn mutate(&mut self, valid: &[u8], alphabet: &[&str]) -> Vec<u8> {
        let mut v = valid.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(v.len() + 1);
            match self.below(6) {
                0 if !v.is_empty() => {
                    let i = self.below(v.len());
                    v[i] = self.bytes(1).first().copied().unwrap_or(0);
                }
                1 => {
                    let extra = self.bytes(4);
                    v.splice(at..at, extra);
                }
                2 => {
                    let piece = self.pick(alphabet).as_bytes().to_vec();
                    v.splice(at..at, piece);
                }
                3 => {
                    let end = (at + self.below(8)).min(v.len());
                    v.drain(at..end);
                }
                4 => {
                    let end = (at + self.below(16)).min(v.len());
                    let copy = v[at..end].to_vec();
                    v.splice(at..at, copy);
                }
                _ => v.truncate(at),
            }
        }
        v
    }
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `case` on generated input until the case or time budget is spent; a panicking case
/// fails the test naming its seed. Returns the number of cases run.
pub fn run(name: &str, mut case: impl FnMut(&mut Gen)) -> u64 {
    let cases = setting("QAWARD_FUZZ_CASES", 2_000);
    let budget = Duration::from_secs(setting("QAWARD_FUZZ_SECONDS", 5));
    let base = setting("QAWARD_FUZZ_SEED", 0x7161_7761_7264);
    let started = Instant::now();
    let mut ran = 0;
    while ran < cases && started.elapsed() < budget {
        let seed = base.wrapping_add(ran.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let outcome = catch_unwind(AssertUnwindSafe(|| case(&mut Gen::new(seed))));
        if let Err(panic) = outcome {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("fuzz {name}: case {ran} (seed {seed}) panicked: {what}");
        }
        ran += 1;
    }
    ran
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_case_and_a_panic_names_its_seed() {
        let alphabet = ["a", "中", ","];
        let (a, b) = (
            Gen::new(7).mutate(b"valid,input", &alphabet),
            Gen::new(7).mutate(b"valid,input", &alphabet),
        );
        assert_eq!(a, b);
        let caught = catch_unwind(|| {
            run("always", |g| {
                if g.below(3) == 2 {
                    panic!("boom")
                }
            })
        });
        let message = caught.unwrap_err().downcast::<String>().unwrap();
        assert!(
            message.contains("(seed ") && message.contains("boom"),
            "{message}"
        );
    }
}
