//! Score sheets: an item's percentage is 0-100 in steps of 5; its score is the
//! percentage of its points, exactly; the GB/Z 19579 bands say how far apart two scores are.

use rust_decimal::Decimal;

use super::rubric::Rubric;

/// The bands of GB/Z 19579, as percentage ranges.
pub const BANDS: [(u32, u32); 6] = [(0, 5), (10, 25), (30, 45), (50, 65), (70, 85), (90, 100)];

/// Is `percent` a valid item score?
pub fn valid_percent(percent: i32) -> Result<u32, String> {
    if !(0..=100).contains(&percent) {
        Err("must be 0-100".into())
    } else if percent % 5 != 0 {
        Err("must be a multiple of 5".into())
    } else {
        Ok(percent as u32)
    }
}

/// The band (0-5) of a valid percentage.
pub fn band(percent: u32) -> usize {
    BANDS
        .iter()
        .position(|(lo, hi)| (*lo..=*hi).contains(&percent))
        .unwrap_or(0)
}

/// "50-65%".
pub fn band_label(percent: u32) -> String {
    let (lo, hi) = BANDS[band(percent)];
    format!("{lo}-{hi}%")
}

/// An item's score: percent × points / 100, exact.
pub fn item_score(points: Decimal, percent: u32) -> Decimal {
    (points * Decimal::from(percent) / Decimal::from(100)).normalize()
}

/// A sheet's total over the rubric: every item must be scored.
pub fn total(rubric: &Rubric, percents: &[(String, u32)]) -> Result<Decimal, String> {
    let mut sum = Decimal::ZERO;
    for item in rubric.items() {
        let p = percents
            .iter()
            .find(|(c, _)| c == &item.code)
            .ok_or_else(|| format!("item {} is not scored", item.code))?;
        sum += item_score(item.points, p.1);
    }
    Ok(sum)
}

/// One item across the group's independent sheets, for the consensus discussion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spread {
    pub item_code: String,
    pub spread: u32,
    /// The scores lie more than one band apart: discuss this item first.
    pub discuss_first: bool,
}

pub fn spread(item_code: &str, percents: &[u32]) -> Spread {
    let (min, max) = (
        percents.iter().min().copied().unwrap_or(0),
        percents.iter().max().copied().unwrap_or(0),
    );
    Spread {
        item_code: item_code.into(),
        spread: max - min,
        discuss_first: band(max) - band(min) > 1,
    }
}

/// The consensus items (code, agreed percentage, reason) whose agreed score departs from an
/// independent score (code, percentage) of the group without a reason: their positions.
pub fn unexplained_changes(
    agreed: &[(&str, u32, &str)],
    independent: &[(&str, u32)],
) -> Vec<usize> {
    agreed
        .iter()
        .enumerate()
        .filter(|(_, (code, percent, reason))| {
            reason.trim().is_empty() && independent.iter().any(|(c, p)| c == code && p != percent)
        })
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r11_percentages_are_0_to_100_in_steps_of_5() {
        assert_eq!(valid_percent(35), Ok(35));
        assert!(valid_percent(37).is_err());
        assert!(valid_percent(105).is_err());
        assert!(valid_percent(-5).is_err());
    }

    #[test]
    fn r11_an_item_score_is_exact() {
        // 65 % of 15 points = 9.75, not 9.749999….
        assert_eq!(item_score(Decimal::from(15), 65).to_string(), "9.75");
        assert_eq!(item_score(Decimal::from(50), 5).to_string(), "2.5");
    }

    #[test]
    fn r11_a_sheet_scores_every_item() {
        let r = Rubric::gbt_19580_2012();
        let all: Vec<(String, u32)> = r.items().map(|i| (i.code.clone(), 50)).collect();
        assert_eq!(total(&r, &all).unwrap(), Decimal::from(500));
        assert!(total(&r, &all[1..]).unwrap_err().contains("4.1.1"));
    }

    #[test]
    fn r12_a_consensus_that_departs_from_an_independent_score_says_why() {
        let independent = [("4.1.1", 50), ("4.1.1", 60), ("4.1.2", 40)];
        let agreed = [
            ("4.1.1", 55, ""),
            ("4.1.2", 40, ""),
            ("4.1.1", 55, "讨论一致"),
        ];
        assert_eq!(unexplained_changes(&agreed, &independent), [0]);
    }

    #[test]
    fn r12_scores_more_than_one_band_apart_are_discussed_first() {
        assert_eq!(band_label(55), "50-65%");
        assert!(
            !spread("4.1.1", &[50, 65, 70]).discuss_first,
            "adjacent bands"
        );
        assert!(spread("4.1.1", &[45, 70]).discuss_first, "30-45 vs 70-85");
        assert_eq!(spread("4.1.1", &[45, 70]).spread, 25);
    }
}
