//! AIP-158 pagination: `page_size` (0 means the default, capped at the maximum), an opaque
//! `page_token` that resumes after the last key returned, and `next_page_token` (empty on
//! the last page). Keys are the resources' sort keys, so pages stay stable under inserts.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::{Error, Result};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Rows to return.
    pub size: i64,
    /// Resume strictly after this key; empty for the first page.
    pub after: String,
}

impl Page {
    pub fn parse(page_size: i32, page_token: &str) -> Result<Page> {
        if page_size < 0 {
            return Err(Error::invalid("page_size", "must not be negative"));
        }
        let size = match i64::from(page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            String::new()
        } else {
            URL_SAFE_NO_PAD
                .decode(page_token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("after:").map(str::to_string))
                .ok_or_else(|| Error::invalid("page_token", "is not a token this service issued"))?
        };
        Ok(Page { size, after })
    }

    /// Rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// Trims `rows` to the page and returns the next token (empty when this is the last page).
    pub fn finish<T>(&self, rows: &mut Vec<T>, key: impl Fn(&T) -> String) -> String {
        if rows.len() as i64 > self.size {
            rows.truncate(self.size as usize);
            rows.last()
                .map(|last| URL_SAFE_NO_PAD.encode(format!("after:{}", key(last))))
                .unwrap_or_default()
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_resume_after_the_last_key() {
        let page = Page::parse(2, "").unwrap();
        let mut rows = vec!["a", "b", "c"];
        let token = page.finish(&mut rows, |r| r.to_string());
        assert_eq!(rows, ["a", "b"]);
        assert_eq!(Page::parse(2, &token).unwrap().after, "b");
        let mut last = vec!["c"];
        assert_eq!(
            Page::parse(2, &token)
                .unwrap()
                .finish(&mut last, |r| r.to_string()),
            ""
        );
    }

    #[test]
    fn sizes_default_and_cap_and_bad_tokens_are_invalid() {
        assert_eq!(Page::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(Page::parse(5000, "").unwrap().size, MAX_PAGE_SIZE);
        assert_eq!(
            Page::parse(-1, "").unwrap_err().violations[0].field,
            "page_size"
        );
        assert_eq!(
            Page::parse(10, "!!").unwrap_err().violations[0].field,
            "page_token"
        );
    }
}
