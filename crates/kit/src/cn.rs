//! China's national identifier formats, checked the way the standards define them. Not award
//! rules: any service that takes these identifiers from outside validates them here.
//!
//! - Unified social credit code (统一社会信用代码), GB 32100-2015.
//! - Citizen identity number (公民身份号码), GB 11643-1999.
//! - Mainland mobile numbers.
//! - Industry codes, GB/T 4754-2017.

use time::{Date, Month};

/// The 31 characters of GB 32100 (no I, O, S, V, Z), in value order.
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Why an identifier is not valid; `Display` is a sentence for a field violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be {0} characters")]
    Length(usize),
    #[error("has a character the standard does not allow at position {0}")]
    Character(usize),
    #[error("check character does not match")]
    Check,
    #[error("birth date is not a real date")]
    BirthDate,
    #[error("is not a mainland mobile number (11 digits starting 13-19)")]
    Mobile,
    #[error("is not a GB/T 4754 industry code (like C13 or C1311)")]
    Industry,
}

/// A validated unified social credit code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

impl CreditCode {
    /// Validates a code, accepting lower case and surrounding white space.
    pub fn parse(raw: &str) -> Result<CreditCode, IdError> {
        let code = raw.trim().to_ascii_uppercase();
        let bytes = code.as_bytes();
        if bytes.len() != 18 {
            return Err(IdError::Length(18));
        }
        let mut sum = 0u32;
        for (i, b) in bytes[..17].iter().enumerate() {
            let v = USCC_CHARS
                .iter()
                .position(|c| c == b)
                .ok_or(IdError::Character(i + 1))? as u32;
            sum += v * USCC_WEIGHTS[i];
        }
        // Positions 3-8 are the administrative division code: digits only.
        if !bytes[2..8].iter().all(u8::is_ascii_digit) {
            return Err(IdError::Character(3));
        }
        let check = (31 - sum % 31) % 31;
        if bytes[17] != USCC_CHARS[check as usize] {
            return Err(IdError::Check);
        }
        Ok(CreditCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Characters 3-8: the administrative division of registration (Yunyang: 500235).
    pub fn division(&self) -> &str {
        &self.0[2..8]
    }
}

impl std::fmt::Display for CreditCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// Validates an 18-character citizen identity number: digits, a real birth date, and the
/// ISO 7064 MOD 11-2 check character (`X` for 10). Returns it with an upper-case `X`.
pub fn resident_id(raw: &str) -> Result<String, IdError> {
    let id = raw.trim().to_ascii_uppercase();
    let bytes = id.as_bytes();
    if bytes.len() != 18 {
        return Err(IdError::Length(18));
    }
    if let Some(i) = bytes[..17].iter().position(|b| !b.is_ascii_digit()) {
        return Err(IdError::Character(i + 1));
    }
    let num = |r: std::ops::Range<usize>| id[r].parse::<u32>().unwrap_or(0);
    let month = Month::try_from(num(10..12) as u8).map_err(|_| IdError::BirthDate)?;
    Date::from_calendar_date(num(6..10) as i32, month, num(12..14) as u8)
        .map_err(|_| IdError::BirthDate)?;
    if bytes[17] != resident_id_check(&bytes[..17]) {
        return Err(IdError::Check);
    }
    Ok(id)
}

/// The ISO 7064 MOD 11-2 check character of 17 digits.
fn resident_id_check(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    ID_CHECK[(sum % 11) as usize]
}

/// Completes 17 digits (division, birth date, sequence) with the check character, for sample
/// data; `None` unless they are 17 ASCII digits.
pub fn resident_id_with_check(first17: &str) -> Option<String> {
    let b = first17.as_bytes();
    (b.len() == 17 && b.iter().all(u8::is_ascii_digit))
        .then(|| format!("{first17}{}", resident_id_check(b) as char))
}

/// Validates a mainland mobile number, accepting `+86`/`86` prefixes, spaces and dashes;
/// returns the 11 digits.
pub fn mobile(raw: &str) -> Result<String, IdError> {
    let digits: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect::<String>();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("86").filter(|d| d.len() == 11))
        .unwrap_or(&digits)
        .to_string();
    let b = digits.as_bytes();
    if b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
    {
        Ok(digits)
    } else {
        Err(IdError::Mobile)
    }
}

/// Shows the first 3 and last 4 characters, masking the rest: `138****5678`.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let mut out: String = chars[..3].iter().collect();
    out.push_str(&"*".repeat(chars.len() - 7));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// The sections of GB/T 4754-2017 and the two-digit divisions each covers.
const SECTIONS: [(char, u8, u8); 20] = [
    ('A', 1, 5),
    ('B', 6, 12),
    ('C', 13, 43),
    ('D', 44, 46),
    ('E', 47, 50),
    ('F', 51, 52),
    ('G', 53, 60),
    ('H', 61, 62),
    ('I', 63, 65),
    ('J', 66, 69),
    ('K', 70, 70),
    ('L', 71, 72),
    ('M', 73, 75),
    ('N', 76, 79),
    ('O', 80, 82),
    ('P', 83, 83),
    ('Q', 84, 85),
    ('R', 86, 90),
    ('S', 91, 97),
    ('T', 98, 98),
];

/// Validates a GB/T 4754-2017 industry code — a section letter (`C`), or a division, group or
/// class with or without its letter (`13`, `C13`, `C131`, `C1311`) — and returns it in the
/// lettered form (`C13`), so `13` and `C13` are the same speciality.
pub fn industry(raw: &str) -> Result<String, IdError> {
    let code = raw.trim().to_ascii_uppercase();
    let (letter, digits) = match code.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => (Some(c), &code[1..]),
        _ => (None, code.as_str()),
    };
    if digits.is_empty() {
        return match letter {
            Some(l) if SECTIONS.iter().any(|s| s.0 == l) => Ok(l.to_string()),
            _ => Err(IdError::Industry),
        };
    }
    if !(2..=4).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::Industry);
    }
    let division: u8 = digits[..2].parse().map_err(|_| IdError::Industry)?;
    let section = SECTIONS
        .iter()
        .find(|(_, lo, hi)| (*lo..=*hi).contains(&division))
        .ok_or(IdError::Industry)?;
    if letter.is_some_and(|l| l != section.0) {
        return Err(IdError::Industry);
    }
    Ok(format!("{}{digits}", section.0))
}

/// Completes the first 17 characters of a credit code with its check character (for test
/// data and fixtures); `None` if a character is outside GB 32100's set.
pub fn with_check(first17: &str) -> Option<String> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (i, b) in first17.bytes().enumerate() {
        sum += USCC_CHARS.iter().position(|c| *c == b)? as u32 * USCC_WEIGHTS[i];
    }
    Some(format!(
        "{first17}{}",
        USCC_CHARS[((31 - sum % 31) % 31) as usize] as char
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_ALPHABET: &[&str] = &[
        "0", "1", "5", "9", "A", "M", "X", "x", "Y", "Z", "I", "O", " ", "-", "+86", "86", "中",
        "\u{3000}", "😀", "\n", "\u{0301}",
    ];

    const VALID: [&str; 4] = [
        "91500235MA5U7XXX0W",
        "11010519491231002X",
        "+86 138-0023-5678",
        "C3411",
    ];

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]
        #[test]
        fn fuzz_identity_parsers_never_panic_and_what_they_accept_is_canonical(
            shaped in crate::fuzz::text(ID_ALPHABET, 24),
            which in 0..VALID.len(),
            edits in crate::fuzz::edits(),
            raw in proptest::bool::weighted(0.25),
        ) {
            let input = if raw {
                shaped
            } else {
                let edited = crate::fuzz::apply(VALID[which].as_bytes(), ID_ALPHABET, &edits);
                String::from_utf8_lossy(&edited).to_string()
            };
            if let Ok(code) = CreditCode::parse(&input) {
                assert_eq!(code.as_str().len(), 18);
                assert_eq!(CreditCode::parse(code.as_str()).as_ref(), Ok(&code));
                assert_eq!(code.division().len(), 6);
            }
            if let Ok(id) = resident_id(&input) {
                assert_eq!(id.len(), 18);
                assert_eq!(resident_id(&id).as_deref(), Ok(id.as_str()));
            }
            if let Ok(m) = mobile(&input) {
                assert!(
                    m.len() == 11 && m.bytes().all(|b| b.is_ascii_digit()),
                    "{m}"
                );
            }
            let _ = industry(&input);
            let masked = mask(&input);
            assert!(masked.chars().count() <= input.chars().count().max(7));
            if input.len() == 17 {
                let _ = with_check(&input);
                let _ = resident_id_with_check(&input);
            }
        }
    }

    #[test]
    fn a_completed_resident_id_passes_the_check() {
        assert_eq!(
            resident_id_with_check("11010519491231002").as_deref(),
            Some("11010519491231002X")
        );
        let id = resident_id_with_check("50023519780412003").unwrap();
        assert_eq!(resident_id(&id), Ok(id.clone()));
        assert_eq!(resident_id_with_check("5002351978041200A"), None);
    }

    #[test]
    fn credit_codes_are_checked_by_gb_32100() {
        // Published example codes.
        assert!(CreditCode::parse("91350100M000100Y43").is_ok());
        let code = with_check("91500235MA5U7XXX0").unwrap();
        let parsed = CreditCode::parse(&code.to_lowercase()).unwrap();
        assert_eq!(parsed.division(), "500235");
        // One changed character breaks the check.
        let mut wrong = code.clone().into_bytes();
        wrong[10] = if wrong[10] == b'1' { b'2' } else { b'1' };
        assert_eq!(
            CreditCode::parse(std::str::from_utf8(&wrong).unwrap()),
            Err(IdError::Check)
        );
        assert_eq!(CreditCode::parse("9150023"), Err(IdError::Length(18)));
        assert_eq!(
            CreditCode::parse("91500235MA5U7XXXOI"),
            Err(IdError::Character(17))
        );
    }

    #[test]
    fn resident_ids_are_checked_by_gb_11643() {
        // The standard's own example.
        assert_eq!(
            resident_id("11010519491231002x").unwrap(),
            "11010519491231002X"
        );
        assert_eq!(resident_id("110105194912310021"), Err(IdError::Check));
        assert_eq!(resident_id("110105194913310020"), Err(IdError::BirthDate));
        assert_eq!(resident_id("1101051949123100"), Err(IdError::Length(18)));
    }

    #[test]
    fn mobiles_are_mainland_numbers() {
        assert_eq!(mobile("+86 138-0023-5678").unwrap(), "13800235678");
        assert_eq!(mobile("8613800235678").unwrap(), "13800235678");
        assert_eq!(mobile("12800235678"), Err(IdError::Mobile));
        assert_eq!(mobile("023-55123456"), Err(IdError::Mobile));
    }

    #[test]
    fn masks_keep_only_the_ends() {
        assert_eq!(mask("13800235678"), "138****5678");
        assert_eq!(mask("11010519491231002X"), "110***********002X");
    }

    #[test]
    fn industry_codes_follow_gb_t_4754() {
        assert_eq!(industry("13").unwrap(), "C13");
        assert_eq!(industry("c1311").unwrap(), "C1311");
        assert_eq!(industry("E").unwrap(), "E");
        assert_eq!(industry("A13"), Err(IdError::Industry));
        assert_eq!(industry("99"), Err(IdError::Industry));
        assert_eq!(industry("C13111"), Err(IdError::Industry));
    }
}
