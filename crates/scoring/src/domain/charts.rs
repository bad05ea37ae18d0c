//! Pictures of the numbers, drawn here as SVG (no external service, no script): the applicant's
//! profile across the rubric's categories against their maximum, for the feedback report
//! and the distribution of a cycle's scores with the line a rule draws through them,
//! for the office (R-13's 500 on materials scores, R-17's 400 on composites).
//!
//! Every drawn value is also written on its element (`data-*` attributes) and as text, so a
//! screen reader, a test or an auditor reads the same numbers the picture shows.

use rust_decimal::{Decimal, prelude::ToPrimitive};

/// One category of the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub code: String,
    pub title: String,
    pub score: Decimal,
    pub max: Decimal,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

/// Pixels with one decimal, so the same numbers always draw the same bytes.
fn px(v: f64) -> String {
    format!("{:.1}", v)
}

const WIDTH: f64 = 640.0;
const LABEL: f64 = 170.0;
const ROW: f64 = 34.0;

/// The profile as horizontal bars: for each category a grey bar as long as its maximum and a
/// coloured one as long as the score, on one scale (the largest maximum), with the numbers
/// written beside them.
pub fn profile_svg(title: &str, bars: &[Bar]) -> String {
    let top = 40.0;
    let height = top + ROW * bars.len() as f64 + 20.0;
    let scale_max = bars.iter().map(|b| f(b.max)).fold(0.0, f64::max).max(1.0);
    let span = WIDTH - LABEL - 110.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"profile\" width=\"{w}\" height=\"{h}\" \
viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>\n\
<text x=\"10\" y=\"24\" font-size=\"16\">{t}</text>\n",
        w = px(WIDTH),
        h = px(height),
        t = esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = top + ROW * i as f64;
        let max_w = span * f(b.max) / scale_max;
        let score_w = if b.max > Decimal::ZERO {
            max_w * (f(b.score) / f(b.max)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        out.push_str(&format!(
            "<g class=\"category\" data-code=\"{code}\" data-title=\"{title}\" data-score=\"{score}\" data-max=\"{max}\">\
<text x=\"10\" y=\"{ty}\" font-size=\"13\">{title}</text>\
<rect class=\"max\" x=\"{x}\" y=\"{y}\" width=\"{mw}\" height=\"20\" fill=\"#e3e3e3\"/>\
<rect class=\"score\" x=\"{x}\" y=\"{y}\" width=\"{sw}\" height=\"20\" fill=\"#2b6cb0\"/>\
<text x=\"{nx}\" y=\"{ty}\" font-size=\"13\">{score} / {max}</text></g>\n",
            code = esc(&b.code),
            title = esc(&b.title),
            score = b.score.normalize(),
            max = b.max.normalize(),
            x = px(LABEL),
            y = px(y),
            ty = px(y + 15.0),
            mw = px(max_w),
            sw = px(score_w),
            nx = px(LABEL + span + 8.0),
        ));
    }
    out.push_str("</svg>\n");
    out
}

/// A histogram of `values` in bins of `bin` points from 0 to `max`, with a dashed vertical line
/// at `line` labelled `line_label` (for example "500分线 (R-13)"). Each bar carries its range
/// (`data-from` inclusive, `data-to` exclusive; the last bin includes `max`) and its count.
pub fn distribution_svg(
    title: &str,
    values: &[Decimal],
    bin: Decimal,
    max: Decimal,
    line: Decimal,
    line_label: &str,
) -> String {
    let bin = if bin > Decimal::ZERO {
        bin
    } else {
        Decimal::ONE
    };
    let bins = (max / bin).ceil().to_usize().unwrap_or(1).max(1);
    let mut counts = vec![0usize; bins];
    for v in values {
        let i = (*v / bin).floor().to_usize().unwrap_or(0).min(bins - 1);
        counts[i] += 1;
    }
    let (left, top, plot_w, plot_h) = (50.0, 40.0, WIDTH - 70.0, 200.0);
    let height = top + plot_h + 50.0;
    let highest = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let x_of = |d: Decimal| left + plot_w * (f(d) / f(max)).clamp(0.0, 1.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"distribution\" width=\"{w}\" height=\"{h}\" \
viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\" data-count=\"{n}\">\n<title>{t}</title>\n\
<text x=\"10\" y=\"24\" font-size=\"16\">{t}</text>\n\
<line class=\"axis\" x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/>\n",
        w = px(WIDTH),
        h = px(height),
        t = esc(title),
        n = values.len(),
        l = px(left),
        r = px(left + plot_w),
        b = px(top + plot_h),
    );
    for (i, count) in counts.iter().enumerate() {
        let from = bin * Decimal::from(i);
        let to = (from + bin).min(max);
        let bar_h = plot_h * (*count as f64) / highest;
        let (x0, x1) = (x_of(from), x_of(to));
        out.push_str(&format!(
            "<rect class=\"bin\" data-from=\"{from}\" data-to=\"{to}\" data-count=\"{count}\" \
x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#2b6cb0\"><title>{from}–{to}：{count}</title></rect>\n",
            from = from.normalize(),
            to = to.normalize(),
            x = px(x0 + 1.0),
            y = px(top + plot_h - bar_h),
            w = px((x1 - x0 - 2.0).max(0.0)),
            h = px(bar_h),
        ));
    }
    // Axis labels every five bins, and at the end.
    for i in (0..=bins).step_by(5.max(bins / 10)) {
        let at = (bin * Decimal::from(i)).min(max);
        out.push_str(&format!(
            "<text x=\"{x}\" y=\"{y}\" font-size=\"11\" text-anchor=\"middle\">{at}</text>\n",
            x = px(x_of(at)),
            y = px(top + plot_h + 16.0),
            at = at.normalize(),
        ));
    }
    let lx = x_of(line);
    out.push_str(&format!(
        "<line class=\"threshold\" data-value=\"{v}\" x1=\"{x}\" y1=\"{t}\" x2=\"{x}\" y2=\"{b}\" \
stroke=\"#c53030\" stroke-dasharray=\"6 4\"/>\n<text x=\"{x}\" y=\"{ly}\" font-size=\"12\" fill=\"#c53030\" \
text-anchor=\"middle\">{label}</text>\n</svg>\n",
        v = line.normalize(),
        x = px(lx),
        t = px(top - 4.0),
        b = px(top + plot_h),
        ly = px(top + plot_h + 34.0),
        label = esc(line_label),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn r13_the_profile_writes_each_category_score_and_maximum() {
        let svg = profile_svg(
            "a & b",
            &[
                Bar {
                    code: "4.1".into(),
                    title: "领导".into(),
                    score: d("62.5"),
                    max: d("110"),
                },
                Bar {
                    code: "4.7".into(),
                    title: "结果".into(),
                    score: d("0"),
                    max: d("400"),
                },
            ],
        );
        assert!(svg.contains(
            "data-code=\"4.1\" data-title=\"领导\" data-score=\"62.5\" data-max=\"110\""
        ));
        assert!(svg.contains("62.5 / 110"));
        assert!(svg.contains("<title>a &amp; b</title>"));
        // The longest maximum spans the whole scale; a 0 score draws nothing.
        assert!(svg.contains("class=\"score\" x=\"170.0\" y=\"74.0\" width=\"0.0\""));
        assert_eq!(
            svg,
            profile_svg(
                "a & b",
                &[
                    Bar {
                        code: "4.1".into(),
                        title: "领导".into(),
                        score: d("62.5"),
                        max: d("110")
                    },
                    Bar {
                        code: "4.7".into(),
                        title: "结果".into(),
                        score: d("0"),
                        max: d("400")
                    },
                ]
            ),
            "the same numbers draw the same bytes"
        );
    }

    #[test]
    fn r13_r17_a_distribution_counts_each_score_once_and_draws_the_line() {
        let values = [d("499.99"), d("500"), d("512"), d("980"), d("1000"), d("0")];
        let svg = distribution_svg(
            "资料评审得分分布",
            &values,
            d("50"),
            d("1000"),
            d("500"),
            "500分线（R-13）",
        );
        // 500 opens the bin 500-550 ("含"); 499.99 stays below it; 1000 is in the last bin.
        assert!(svg.contains("data-from=\"450\" data-to=\"500\" data-count=\"1\""));
        assert!(svg.contains("data-from=\"500\" data-to=\"550\" data-count=\"2\""));
        assert!(svg.contains("data-from=\"950\" data-to=\"1000\" data-count=\"2\""));
        assert!(svg.contains("data-from=\"0\" data-to=\"50\" data-count=\"1\""));
        assert_eq!(svg.matches("class=\"bin\"").count(), 20);
        assert!(svg.contains("class=\"threshold\" data-value=\"500\" x1=\"335.0\""));
        assert!(svg.contains("500分线（R-13）"));
        // No scores: empty bins, the line still drawn.
        let empty = distribution_svg("x", &[], d("50"), d("1200"), d("400"), "400");
        assert_eq!(empty.matches("class=\"bin\"").count(), 24);
        assert_eq!(empty.matches("data-count=\"0\" x=").count(), 24);
    }
}
