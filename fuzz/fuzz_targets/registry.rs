//! Registry imports: no export panics the parser, and every record it keeps is
//! valid and unique by certificate number. The first byte picks CSV or JSON, UTF-8 or GB18030.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qaward_reviewers::domain::registry::{Encoding, Format, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&how, content)) = data.split_first() else {
        return;
    };
    let format = if how & 1 == 0 { Format::Csv } else { Format::Json };
    let encoding = if how & 2 == 0 { Encoding::Utf8 } else { Encoding::Gb18030 };
    if let Ok((good, _rejected)) = parse(content, format, encoding) {
        let mut seen = std::collections::BTreeSet::new();
        for r in &good {
            assert!(seen.insert(r.certificate_number.clone()));
            assert!(qaward_kit::cn::resident_id(&r.resident_id).is_ok());
            assert!(qaward_kit::cn::mobile(&r.mobile).is_ok());
            assert!(r.cert_valid_from <= r.cert_valid_until);
        }
    }
});
