//! Protobuf well-known and common types to and from the `time` crate, checked at the edge:
//! a malformed value is INVALID_ARGUMENT naming its field.

use qaward_proto::qaward::common::v1 as common;
use time::{Date, Month, OffsetDateTime};

use crate::{Error, Result};

/// A `qaward.common.v1.Date` that must be a real calendar date.
pub fn date_from_pb(d: &common::Date, field: &str) -> Result<Date> {
    let month = u8::try_from(d.month)
        .ok()
        .and_then(|m| Month::try_from(m).ok());
    match (month, u8::try_from(d.day)) {
        (Some(m), Ok(day)) => Date::from_calendar_date(d.year, m, day).ok(),
        _ => None,
    }
    .filter(|d| (1900..=2200).contains(&d.year()))
    .ok_or_else(|| Error::invalid(field, "is not a real date"))
}

pub fn date_to_pb(d: Date) -> common::Date {
    common::Date {
        year: d.year(),
        month: i32::from(u8::from(d.month())),
        day: i32::from(d.day()),
    }
}

/// A `google.protobuf.Timestamp` as a time.
pub fn timestamp_from_pb(t: &prost_types::Timestamp, field: &str) -> Result<OffsetDateTime> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(field, "nanos must be 0-999999999"));
    }
    OffsetDateTime::from_unix_timestamp(t.seconds)
        .map(|d| d + time::Duration::nanoseconds(i64::from(t.nanos)))
        .map_err(|_| Error::invalid(field, "is not a valid time"))
}

/// `YYYY-MM-DD`, how dates are stored.
pub fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A date as people read it in a notice: `2026年6月30日`.
pub fn chinese_date(d: Date) -> String {
    format!("{}年{}月{}日", d.year(), u8::from(d.month()), d.day())
}

/// The inverse of [`iso_date`].
pub fn parse_iso_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_real_and_round_trip() {
        let d = common::Date {
            year: 2024,
            month: 2,
            day: 29,
        };
        let parsed = date_from_pb(&d, "x").unwrap();
        assert_eq!(date_to_pb(parsed), d);
        assert_eq!(parse_iso_date(&iso_date(parsed)), Some(parsed));
        for bad in [
            (2025, 2, 29),
            (2025, 13, 1),
            (2025, 0, 1),
            (2025, 1, 0),
            (2025, 1, 256),
        ] {
            let d = common::Date {
                year: bad.0,
                month: bad.1,
                day: bad.2,
            };
            assert_eq!(
                date_from_pb(&d, "when").unwrap_err().violations[0].field,
                "when"
            );
        }
        assert!(
            timestamp_from_pb(
                &prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1
                },
                "t"
            )
            .is_err()
        );
    }
}
