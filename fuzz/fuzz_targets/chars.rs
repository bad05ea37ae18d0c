//! R-05 character counting: additive, never more than the characters there are, white space
//! not counted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qaward_applications::domain::chars::count;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_at(text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i));
    assert_eq!(count(&format!("{a}{b}")), count(a) + count(b));
    assert!(count(a) <= a.chars().count());
    assert_eq!(count(&format!("{a} \u{3000}\n")), count(a));
});
