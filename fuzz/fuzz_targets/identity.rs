//! Credit codes, resident identity numbers, mobile numbers, industry codes and masking: no
//! input panics, and what is accepted is canonical (parsing it again gives it back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use qaward_kit::cn::{CreditCode, industry, mask, mobile, resident_id};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(code) = CreditCode::parse(&input) {
        assert_eq!(code.as_str().len(), 18);
        assert_eq!(CreditCode::parse(code.as_str()).as_ref(), Ok(&code));
    }
    if let Ok(id) = resident_id(&input) {
        assert_eq!(id.len(), 18);
        assert_eq!(resident_id(&id).as_deref(), Ok(id.as_str()));
    }
    if let Ok(m) = mobile(&input) {
        assert!(m.len() == 11 && m.bytes().all(|b| b.is_ascii_digit()));
    }
    let _ = industry(&input);
    assert!(mask(&input).chars().count() <= input.chars().count().max(7));
});
