//! The feedback report an applicant receives after the materials review: every item of
//! the consensus with its score, band, strengths and opportunities; each category's total
//! against its points, as numbers and as the profile chart; and the whole as a printable HTML
//! document in Chinese.

use rust_decimal::Decimal;

use super::{
    charts,
    lifecycle::Sheet,
    rubric::Rubric,
    sheet::{band_label, item_score},
};

/// One item of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub item_code: String,
    pub title: String,
    pub score: Decimal,
    pub band: String,
    pub strengths: String,
    pub opportunities: String,
}

/// What the report says, from the group's consensus sheet over its rubric.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback {
    pub total: Decimal,
    pub items: Vec<Item>,
    /// Each category's items added up, against the category's points.
    pub categories: Vec<charts::Bar>,
    pub profile_svg: String,
}

/// The report of `consensus` scored over `rubric`.
pub fn feedback(rubric: &Rubric, consensus: &Sheet) -> Feedback {
    let entry = |code: &str| consensus.items.iter().find(|i| i.code == code);
    let items = rubric
        .items()
        .filter_map(|item| {
            let e = entry(&item.code)?;
            Some(Item {
                item_code: item.code.clone(),
                title: item.title.clone(),
                score: item_score(item.points, e.percent),
                band: band_label(e.percent),
                strengths: e.strengths.clone(),
                opportunities: e.opportunities.clone(),
            })
        })
        .collect();
    let categories: Vec<charts::Bar> = rubric
        .categories
        .iter()
        .map(|cat| charts::Bar {
            code: cat.code.clone(),
            title: cat.title.clone(),
            score: cat
                .items
                .iter()
                .filter_map(|item| Some(item_score(item.points, entry(&item.code)?.percent)))
                .sum(),
            max: cat.points,
        })
        .collect();
    let profile_svg = charts::profile_svg("各类目得分与满分（材料评审）", &categories);
    Feedback {
        total: consensus.total.parse().unwrap_or_default(),
        items,
        categories,
        profile_svg,
    }
}

/// The report as a printable HTML document in Chinese, the profile chart embedded.
pub fn html(application: &str, f: &Feedback) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut rows = String::new();
    for i in &f.items {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&i.item_code),
            esc(&i.title),
            i.score.normalize(),
            esc(&i.band),
            esc(&i.strengths),
            esc(&i.opportunities)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>材料评审反馈报告</title>\
<style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:4px}}</style></head>\
<body><h1>材料评审反馈报告</h1><p>申报：{}</p><p>材料评审得分：{}</p>\
<figure>{}</figure>\
<table><tr><th>条款</th><th>名称</th><th>得分</th><th>分段</th><th>优势</th><th>改进机会</th></tr>\n{}</table></body></html>\n",
        esc(application),
        f.total.normalize(),
        f.profile_svg,
        rows
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::{ItemEntry, SheetKind};

    #[test]
    fn r13_the_report_gives_every_item_and_category_of_the_consensus() {
        let rubric = Rubric::gbt_19580_2012();
        let items = rubric
            .items()
            .map(|i| ItemEntry {
                code: i.code.clone(),
                percent: 50,
                strengths: "<优势>".into(),
                opportunities: String::new(),
                reason: String::new(),
            })
            .collect();
        let mut s = Sheet::draft("a1", "CQ-1", SheetKind::Independent, items, String::new());
        s.total = "500".into();
        let f = feedback(&rubric, &s);
        assert_eq!(f.items.len(), rubric.items().count());
        assert_eq!(f.items[0].band, "50-65%");
        let sum: Decimal = f.categories.iter().map(|c| c.score).sum();
        assert_eq!(sum, Decimal::from(500));
        assert_eq!(f.total, Decimal::from(500));
        let page = html("programmes/p/cycles/2026/applications/x", &f);
        assert!(page.contains("材料评审得分：500"));
        assert!(page.contains("&lt;优势&gt;"), "escaped");
        assert!(page.contains("<svg"));
    }
}
