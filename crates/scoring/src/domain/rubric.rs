//! The rubric: categories and items with their points, as data. A rubric whose items do
//! not add up to their category, or whose categories do not add up to the total, is refused.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemKind {
    /// Approach, deployment, learning, integration.
    Process,
    /// Levels, trends, comparisons, integration.
    Results,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub code: String,
    pub title: String,
    pub points: Decimal,
    pub kind: ItemKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub code: String,
    pub title: String,
    pub points: Decimal,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rubric {
    pub title: String,
    /// "GB/T 19580-2012": item codes follow the edition the programme names.
    pub edition: String,
    pub total: Decimal,
    pub categories: Vec<Category>,
}

/// What is wrong with a rubric: (field path, description).
pub type Violation = (String, String);

impl Rubric {
    /// Every problem at once.
    pub fn validate(&self) -> Vec<Violation> {
        let mut v = Vec::new();
        if self.categories.is_empty() {
            v.push(("rubric.categories".into(), "at least one category".into()));
        }
        let mut codes = std::collections::HashSet::new();
        let mut sum = Decimal::ZERO;
        for (ci, c) in self.categories.iter().enumerate() {
            let at = format!("rubric.categories[{ci}]");
            if c.points <= Decimal::ZERO {
                v.push((format!("{at}.points"), "must be positive".into()));
            }
            if c.items.is_empty() {
                v.push((format!("{at}.items"), "at least one item".into()));
            }
            let mut items = Decimal::ZERO;
            for (ii, item) in c.items.iter().enumerate() {
                if item.points <= Decimal::ZERO {
                    v.push((
                        format!("{at}.items[{ii}].points"),
                        "must be positive".into(),
                    ));
                }
                if item.code.trim().is_empty() || !codes.insert(item.code.clone()) {
                    v.push((
                        format!("{at}.items[{ii}].code"),
                        "must be present and unique".into(),
                    ));
                }
                items += item.points;
            }
            if items != c.points {
                v.push((
                    format!("{at}.points"),
                    format!(
                        "category {} has {} points but its items add up to {items}",
                        c.code, c.points
                    ),
                ));
            }
            sum += c.points;
        }
        if sum != self.total {
            v.push((
                "rubric.total_points".into(),
                format!(
                    "the total is {} but the categories add up to {sum}",
                    self.total
                ),
            ));
        }
        v
    }

    pub fn item(&self, code: &str) -> Option<&Item> {
        self.categories
            .iter()
            .flat_map(|c| &c.items)
            .find(|i| i.code == code)
    }

    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.categories.iter().flat_map(|c| &c.items)
    }

    /// The default rubric of R-10: GB/T 19580-2012, 7 categories, 23 items, 1,000 points,
    /// items numbered sequentially as in DOMAIN.md.
    pub fn gbt_19580_2012() -> Rubric {
        use ItemKind::{Process as P, Results as R};
        let cat = |code: &str, title: &str, items: &[(&str, &str, i64, ItemKind)]| Category {
            code: code.into(),
            title: title.into(),
            points: items.iter().map(|i| Decimal::from(i.2)).sum(),
            items: items
                .iter()
                .map(|(c, t, p, k)| Item {
                    code: (*c).into(),
                    title: (*t).into(),
                    points: Decimal::from(*p),
                    kind: *k,
                })
                .collect(),
        };
        Rubric {
            title: "卓越绩效评价准则".into(),
            edition: "GB/T 19580-2012".into(),
            total: Decimal::from(1000),
            categories: vec![
                cat(
                    "4.1",
                    "领导",
                    &[
                        ("4.1.1", "高层领导的作用", 50, P),
                        ("4.1.2", "组织治理", 20, P),
                        ("4.1.3", "社会责任", 30, P),
                    ],
                ),
                cat(
                    "4.2",
                    "战略",
                    &[("4.2.1", "战略制定", 40, P), ("4.2.2", "战略部署", 40, P)],
                ),
                cat(
                    "4.3",
                    "顾客与市场",
                    &[
                        ("4.3.1", "顾客和市场的了解", 40, P),
                        ("4.3.2", "顾客关系与顾客满意", 50, P),
                    ],
                ),
                cat(
                    "4.4",
                    "资源",
                    &[
                        ("4.4.1", "人力资源", 40, P),
                        ("4.4.2", "财务资源", 15, P),
                        ("4.4.3", "信息和知识资源", 20, P),
                        ("4.4.4", "技术资源", 20, P),
                        ("4.4.5", "基础设施", 15, P),
                        ("4.4.6", "相关方关系", 10, P),
                    ],
                ),
                cat(
                    "4.5",
                    "过程管理",
                    &[
                        ("4.5.1", "过程的识别与设计", 50, P),
                        ("4.5.2", "过程的实施与改进", 60, P),
                    ],
                ),
                cat(
                    "4.6",
                    "测量、分析与改进",
                    &[
                        ("4.6.1", "测量、分析和评价", 40, P),
                        ("4.6.2", "改进与创新", 60, P),
                    ],
                ),
                cat(
                    "4.7",
                    "结果",
                    &[
                        ("4.7.1", "产品和服务结果", 80, R),
                        ("4.7.2", "顾客与市场结果", 80, R),
                        ("4.7.3", "财务结果", 80, R),
                        ("4.7.4", "资源结果", 60, R),
                        ("4.7.5", "过程有效性结果", 50, R),
                        ("4.7.6", "领导方面的结果", 50, R),
                    ],
                ),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r10_the_default_rubric_is_gbt_19580_with_1000_points() {
        let r = Rubric::gbt_19580_2012();
        assert!(r.validate().is_empty(), "{:?}", r.validate());
        assert_eq!(r.categories.len(), 7);
        assert_eq!(r.items().count(), 23);
        let points: Vec<i64> = r
            .categories
            .iter()
            .map(|c| c.points.try_into().unwrap())
            .collect();
        assert_eq!(points, [100, 80, 90, 120, 110, 100, 400]);
    }

    #[test]
    fn r10_a_rubric_that_does_not_add_up_is_refused() {
        let mut r = Rubric::gbt_19580_2012();
        r.categories[0].items[0].points = Decimal::from(45);
        r.total = Decimal::from(990);
        let fields: Vec<String> = r.validate().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["rubric.categories[0].points", "rubric.total_points"]
        );
    }
}
