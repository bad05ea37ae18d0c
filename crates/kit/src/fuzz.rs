//! Property tests for every parser of outside input (registry imports, credit codes, identity
//! numbers, character counting, JSON transcoding), with proptest on the stable toolchain: each
//! parser is fed arbitrary bytes, text shaped like its input, and valid inputs with a few edits,
//! beside its own unit tests. A failing input is shrunk to a small one (fewer edits, shorter
//! text) and persisted under the crate's `proptest-regressions/`, so it is tried first on every
//! later run; commit those files.
//!
//! `QAWARD_FUZZ_CASES` (default 2,000) bounds a run, as before; proptest's own `PROPTEST_*`
//! variables work too. The same parsers have cargo-fuzz targets under `fuzz/`, run by hand.

use proptest::{
    prelude::*,
    sample::Index,
    test_runner::{Config, FileFailurePersistence},
};

/// One edit of a valid input.
#[derive(Debug, Clone)]
pub enum Edit {
    /// A byte changed.
    Set(Index, u8),
    /// Arbitrary bytes inserted.
    Insert(Index, Vec<u8>),
    /// A piece of the alphabet inserted.
    Piece(Index, Index),
    /// Up to this many bytes deleted.
    Delete(Index, usize),
    /// Up to this many bytes repeated.
    Repeat(Index, usize),
    /// The end cut off.
    Cut(Index),
}

/// One to four edits.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..=4))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, p)| Edit::Piece(i, p)),
        (any::<Index>(), 1..8usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), 1..16usize).prop_map(|(i, n)| Edit::Repeat(i, n)),
        any::<Index>().prop_map(Edit::Cut),
    ];
    prop::collection::vec(edit, 1..=4)
}

/// `valid` with `edits` made, the pieces drawn from `alphabet`.
pub fn apply(valid: &[u8], alphabet: &[&str], edits: &[Edit]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for e in edits {
        // A position in 0..=len (an edit may act at the very end).
        let at = |i: &Index, v: &Vec<u8>| i.index(v.len() + 1);
        match e {
            Edit::Set(i, b) if !v.is_empty() => {
                let i = i.index(v.len());
                v[i] = *b;
            }
            Edit::Set(..) => {}
            Edit::Insert(i, bytes) => {
                let at = at(i, &v);
                v.splice(at..at, bytes.iter().copied());
            }
            Edit::Piece(i, p) if !alphabet.is_empty() => {
                let at = at(i, &v);
                let piece = alphabet[p.index(alphabet.len())].as_bytes().to_vec();
                v.splice(at..at, piece);
            }
            Edit::Piece(..) => {}
            Edit::Delete(i, n) => {
                let at = at(i, &v);
                let end = (at + n).min(v.len());
                v.drain(at..end);
            }
            Edit::Repeat(i, n) => {
                let at = at(i, &v);
                let end = (at + n).min(v.len());
                let copy = v[at..end].to_vec();
                v.splice(at..at, copy);
            }
            Edit::Cut(i) => {
                let at = at(i, &v);
                v.truncate(at);
            }
        }
    }
    v
}

/// Up to `max` pieces of `alphabet`, joined: text shaped like the input.
pub fn text(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), 0..=max).prop_map(|p| p.concat())
}

/// Up to `max` arbitrary bytes.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

/// How every parser's property runs: `QAWARD_FUZZ_CASES` cases (default 2,000), failures
/// persisted beside the source and shrunk for at most ten seconds.
pub fn config() -> Config {
    let cases = std::env::var("QAWARD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        max_shrink_time: 10_000,
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_act_anywhere_in_the_input_and_never_panic_on_an_empty_one() {
        use proptest::strategy::ValueTree;
        let alphabet = ["中", ","];
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..500 {
            let e = edits().new_tree(&mut runner).unwrap().current();
            let _ = apply(b"", &alphabet, &e);
            let _ = apply(b"valid,input", &[], &e);
            let out = apply(b"valid,input", &alphabet, &e);
            assert!(out.len() <= "valid,input".len() + 4 * 16);
        }
    }

    #[test]
    fn a_failing_property_is_shrunk_to_a_small_input() {
        let mut runner = proptest::test_runner::TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&bytes(64), |b| {
            prop_assert!(b.len() < 4);
            Ok(())
        });
        match result {
            Err(proptest::test_runner::TestError::Fail(_, minimal)) => {
                assert_eq!(minimal.len(), 4, "shrunk to the smallest failing input")
            }
            other => panic!("expected a shrunk failure, got {other:?}"),
        }
    }
}
