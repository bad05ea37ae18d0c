//! the organisation profile may have at most 3,000 characters and the self-assessment
//! report at most 60,000 — Unicode characters, not counting white space. Counting bytes would
//! refuse a valid Chinese report (each Han character is three bytes of UTF-8).

/// The characters of `text` that count: every Unicode scalar value that is not white space
/// (spaces, tabs, line breaks, the ideographic space U+3000).
pub fn count(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::count;

    const ALPHABET: &[&str] = &[
        "质", "量", " ", "\u{3000}", "\n", "\t", "a", "😀", "\u{0301}", "\u{200b}", "\r\n", "9",
    ];

    proptest::proptest! {
        #![proptest_config(qaward_kit::fuzz::config())]
        #[test]
        fn fuzz_r05_counting_never_panics_and_adds_up(
            raw in qaward_kit::fuzz::bytes(64),
            a in qaward_kit::fuzz::text(ALPHABET, 32),
            b in qaward_kit::fuzz::text(ALPHABET, 32),
            from_bytes in proptest::bool::weighted(0.33),
        ) {
            let a = if from_bytes { String::from_utf8_lossy(&raw).to_string() } else { a };
            // Counting is additive and never exceeds the characters there are.
            assert_eq!(count(&format!("{a}{b}")), count(&a) + count(&b));
            assert!(count(&a) <= a.chars().count());
            assert_eq!(count(&format!("{a} \u{3000}\n")), count(&a));
        }
    }

    #[test]
    fn r05_characters_are_unicode_characters_without_white_space() {
        assert_eq!(count("质量奖"), 3);
        assert_eq!(count("质量 奖\n\t"), 3);
        assert_eq!(
            count("质量\u{3000}奖"),
            3,
            "the ideographic space is white space"
        );
        assert_eq!(count("GB/T 19580"), 9);
        assert_eq!(count("😀"), 1);
        assert_eq!(count(""), 0);
    }

    #[test]
    fn r05_a_chinese_report_at_the_limit_fits_although_its_bytes_do_not() {
        let report = "卓越绩效".repeat(15_000);
        assert_eq!(count(&report), 60_000);
        assert_eq!(report.len(), 180_000, "three bytes per character");
        let with_paragraphs = report.replace("效卓", "效\n\n卓");
        assert_eq!(count(&with_paragraphs), 60_000);
    }
}
