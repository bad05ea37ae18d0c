//! Resource names (AIP-122): the ids a client chooses for the resources it creates.

/// A client-chosen id: 1-63 lower-case letters, digits or '-' (`yunyang`, `gbt-19580-2012`).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The id of `programmes/{id}`, or INVALID_ARGUMENT naming `field`.
pub fn programme_id(name: &str, field: &str) -> crate::Result<String> {
    name.strip_prefix("programmes/")
        .filter(|id| valid_id(id))
        .map(str::to_string)
        .ok_or_else(|| crate::Error::invalid(field, "must be programmes/{programme}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_short_lower_case_words() {
        assert!(super::valid_id("gbt-19580-2012"));
        assert!(!super::valid_id(""));
        assert!(!super::valid_id("Yunyang"));
        assert!(!super::valid_id("a/b"));
        assert!(!super::valid_id(&"a".repeat(64)));
    }
}
