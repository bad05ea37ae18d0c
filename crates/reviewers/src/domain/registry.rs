//! The municipal reviewer registry (R-40, R-42): reading an export (CSV or JSON, UTF-8 or
//! GB18030, English or Chinese column names) and validating every row.

use std::collections::{BTreeMap, HashSet};

use qaward_kit::cn;
use serde::{Deserialize, Serialize};

/// The largest export accepted in one import.
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// A validated registry row. The certificate number identifies the reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerRecord {
    pub certificate_number: String,
    pub name: String,
    pub mobile: String,
    pub resident_id: String,
    pub cert_valid_from: String,
    pub cert_valid_until: String,
    /// Lettered GB/T 4754 codes, sorted, no repeats.
    pub specialities: Vec<String>,
    pub employer_code: String,
    pub leader_qualified: bool,
    /// ACTIVE, SUSPENDED or RETIRED.
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Gb18030,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1 for the first data row (the header does not count).
    pub row: usize,
    pub field: String,
    pub reason: String,
}

/// Why a file is not a registry export at all; nothing is imported from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotARegistry(pub String);

/// Canonical field names and the column titles that mean them.
const COLUMNS: [(&str, &[&str]); 10] = [
    ("name", &["name", "姓名"]),
    (
        "mobile",
        &["mobile", "手机号", "手机", "手机号码", "联系电话"],
    ),
    (
        "resident_id",
        &["resident_id", "身份证号", "身份证号码", "公民身份号码"],
    ),
    (
        "certificate_number",
        &["certificate_number", "证书编号", "评审员证书编号"],
    ),
    (
        "certificate_valid_from",
        &["certificate_valid_from", "证书有效期起", "发证日期"],
    ),
    (
        "certificate_valid_until",
        &["certificate_valid_until", "证书有效期止", "有效期至"],
    ),
    (
        "specialities",
        &["specialities", "专业", "专业领域", "行业代码"],
    ),
    (
        "employer_code",
        &["employer_code", "工作单位统一社会信用代码", "单位信用代码"],
    ),
    ("leader_qualified", &["leader_qualified", "组长资格"]),
    ("status", &["status", "状态"]),
];

const REQUIRED: [&str; 6] = [
    "name",
    "mobile",
    "resident_id",
    "certificate_number",
    "certificate_valid_from",
    "certificate_valid_until",
];

fn canonical(title: &str) -> Option<&'static str> {
    let t = title.trim().trim_start_matches('\u{feff}');
    COLUMNS
        .iter()
        .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(t)))
        .map(|(c, _)| *c)
}

/// Decodes the bytes to text.
pub fn decode(content: &[u8], encoding: Encoding) -> Result<String, NotARegistry> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(content)
            .map(|s| s.trim_start_matches('\u{feff}').to_string())
            .map_err(|e| NotARegistry(format!("content is not valid UTF-8 ({e}); is it GB18030?"))),
        Encoding::Gb18030 => encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(content)
            .map(|s| s.into_owned())
            .ok_or_else(|| NotARegistry("content is not valid GB18030".to_string())),
    }
}

/// One row of an export: canonical field name → raw text.
pub type Row = BTreeMap<&'static str, String>;

/// The rows of an export, and the columns (or JSON keys) it ignored, as the export names them,
/// in first-seen order.
pub fn rows(text: &str, format: Format) -> Result<(Vec<Row>, Vec<String>), NotARegistry> {
    let mut ignored: Vec<String> = Vec::new();
    let mut ignore = |name: &str| {
        let name = name.trim();
        if !name.is_empty() && !ignored.iter().any(|x| x == name) {
            ignored.push(name.to_string());
        }
    };
    let rows = match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(text.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| NotARegistry(format!("not CSV: {e}")))?
                .clone();
            let fields: Vec<Option<&'static str>> = headers.iter().map(canonical).collect();
            check_columns(fields.iter().flatten().copied())?;
            for (h, f) in headers.iter().zip(&fields) {
                if f.is_none() {
                    ignore(h);
                }
            }
            let mut out = Vec::new();
            for record in reader.records() {
                let record = record.map_err(|e| NotARegistry(format!("not CSV: {e}")))?;
                let mut row = BTreeMap::new();
                for (i, value) in record.iter().enumerate() {
                    if let Some(Some(f)) = fields.get(i) {
                        row.insert(*f, value.to_string());
                    }
                }
                out.push(row);
            }
            out
        }
        Format::Json => {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| NotARegistry(format!("not JSON: {e}")))?;
            let items = value
                .as_array()
                .or_else(|| value.get("reviewers").and_then(|v| v.as_array()))
                .ok_or_else(|| NotARegistry("JSON must be an array of reviewers".to_string()))?;
            let mut out = Vec::new();
            let mut seen = HashSet::new();
            for item in items {
                let obj = item
                    .as_object()
                    .ok_or_else(|| NotARegistry("every JSON item must be an object".to_string()))?;
                let mut row = BTreeMap::new();
                for (k, v) in obj {
                    if canonical(k).is_none() {
                        ignore(k);
                    }
                    if let Some(f) = canonical(k) {
                        seen.insert(f);
                        let text = match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Array(a) => a
                                .iter()
                                .map(|x| {
                                    x.as_str()
                                        .map(str::to_string)
                                        .unwrap_or_else(|| x.to_string())
                                })
                                .collect::<Vec<_>>()
                                .join(";"),
                            serde_json::Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        row.insert(f, text);
                    }
                }
                out.push(row);
            }
            if !out.is_empty() {
                check_columns(seen.into_iter())?;
            }
            out
        }
    };
    if rows.is_empty() {
        return Err(NotARegistry("no reviewer rows".to_string()));
    }
    Ok((rows, ignored))
}

fn check_columns(present: impl Iterator<Item = &'static str>) -> Result<(), NotARegistry> {
    let present: HashSet<&str> = present.collect();
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|r| !present.contains(r))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(NotARegistry(format!(
            "not a reviewer registry: missing columns {}",
            missing.join(", ")
        )))
    }
}

fn date(raw: &str) -> Option<String> {
    let t = raw
        .trim()
        .replace(['/', '.', '年', '月'], "-")
        .replace('日', "");
    let parts: Vec<&str> = t.split('-').collect();
    if parts.len() != 3 {
        return None;
    }
    let s = format!(
        "{:04}-{:02}-{:02}",
        parts[0].parse::<u32>().ok()?,
        parts[1].parse::<u32>().ok()?,
        parts[2].parse::<u32>().ok()?
    );
    super::eligibility::parse_date(&s).map(|_| s)
}

fn yes(raw: &str) -> Option<bool> {
    match raw.trim().to_lowercase().as_str() {
        "" | "0" | "false" | "n" | "no" | "否" | "无" => Some(false),
        "1" | "true" | "y" | "yes" | "是" | "有" => Some(true),
        _ => None,
    }
}

/// Validates one row; every problem at once.
pub fn validate(
    row: &BTreeMap<&'static str, String>,
) -> Result<ReviewerRecord, Vec<(String, String)>> {
    let mut bad: Vec<(String, String)> = Vec::new();
    let get = |f: &str| row.get(f).map(|s| s.trim().to_string()).unwrap_or_default();
    let mut fail = |f: &str, why: String| bad.push((f.to_string(), why));

    let name = get("name");
    if name.is_empty() || name.chars().count() > 50 {
        fail("name", "must be 1-50 characters".into());
    }
    let mobile = cn::mobile(&get("mobile")).unwrap_or_else(|e| {
        fail("mobile", e.to_string());
        String::new()
    });
    let resident_id = cn::resident_id(&get("resident_id")).unwrap_or_else(|e| {
        fail("resident_id", e.to_string());
        String::new()
    });
    let certificate_number = get("certificate_number").to_ascii_uppercase();
    if certificate_number.is_empty()
        || certificate_number.len() > 40
        || !certificate_number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        fail(
            "certificate_number",
            "must be 1-40 letters, digits or '-'".into(),
        );
    }
    let from = date(&get("certificate_valid_from"));
    let until = date(&get("certificate_valid_until"));
    if from.is_none() {
        fail(
            "certificate_valid_from",
            "must be a date like 2024-01-31".into(),
        );
    }
    if until.is_none() {
        fail(
            "certificate_valid_until",
            "must be a date like 2027-01-31".into(),
        );
    }
    if let (Some(f), Some(u)) = (&from, &until)
        && f > u
    {
        fail(
            "certificate_valid_until",
            "is before certificate_valid_from".into(),
        );
    }
    let mut specialities = Vec::new();
    for s in get("specialities")
        .split([';', ',', '，', '、', '；', ' ', '|'])
        .filter(|s| !s.trim().is_empty())
    {
        match cn::industry(s) {
            Ok(code) => specialities.push(code),
            Err(e) => fail("specialities", format!("{s} {e}")),
        }
    }
    specialities.sort();
    specialities.dedup();
    if get("specialities").trim().is_empty() {
        fail("specialities", "at least one GB/T 4754 code".into());
    }
    let employer_raw = get("employer_code");
    let employer_code = if employer_raw.is_empty() {
        String::new()
    } else {
        match cn::CreditCode::parse(&employer_raw) {
            Ok(c) => c.to_string(),
            Err(e) => {
                fail("employer_code", e.to_string());
                String::new()
            }
        }
    };
    let leader_qualified = yes(&get("leader_qualified")).unwrap_or_else(|| {
        fail("leader_qualified", "must be yes/no (是/否)".into());
        false
    });
    let status = match get("status").to_uppercase().as_str() {
        "" | "ACTIVE" | "在册" | "正常" | "有效" => "ACTIVE",
        "SUSPENDED" | "暂停" => "SUSPENDED",
        "RETIRED" | "退出" | "注销" => "RETIRED",
        _ => {
            fail("status", "must be ACTIVE, SUSPENDED or RETIRED".into());
            "ACTIVE"
        }
    };
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(ReviewerRecord {
        certificate_number,
        name,
        mobile,
        resident_id,
        cert_valid_from: from.unwrap_or_default(),
        cert_valid_until: until.unwrap_or_default(),
        specialities,
        employer_code,
        leader_qualified,
        status: status.to_string(),
    })
}

/// A whole export, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// One record per certificate number, the first row winning.
    pub good: Vec<ReviewerRecord>,
    pub rejected: Vec<Rejected>,
    /// The columns (JSON keys) that are no registry field, as the export names them: the
    /// office sees what it sent that was not read.
    pub ignored: Vec<String>,
}

/// Parses and validates a whole export.
pub fn parse(content: &[u8], format: Format, encoding: Encoding) -> Result<Import, NotARegistry> {
    if content.len() > MAX_IMPORT_BYTES {
        return Err(NotARegistry(format!(
            "{} bytes exceed the import limit of {} bytes",
            content.len(),
            MAX_IMPORT_BYTES
        )));
    }
    let text = decode(content, encoding)?;
    let mut good = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = HashSet::new();
    let (rows, ignored) = rows(&text, format)?;
    for (i, row) in rows.iter().enumerate() {
        match validate(row) {
            Ok(r) if !seen.insert(r.certificate_number.clone()) => rejected.push(Rejected {
                row: i + 1,
                field: "certificate_number".into(),
                reason: "repeats an earlier row".into(),
            }),
            Ok(r) => good.push(r),
            Err(problems) => {
                rejected.extend(problems.into_iter().map(|(field, reason)| Rejected {
                    row: i + 1,
                    field,
                    reason,
                }))
            }
        }
    }
    Ok(Import {
        good,
        rejected,
        ignored,
    })
}

/// A reviewer's booked review day and the panel it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booked {
    pub day: String,
    pub panel: String,
}

/// R-54 (PIPL Art. 47): a reviewer's personal data may be erased at their request unless a
/// rule still needs it: a panel that seats them and whose days are not past must be able to
/// reach them (R-40, R-41). `booked` are their booked days from today on.
pub fn may_erase(booked: &[Booked]) -> Result<(), qaward_kit::Error> {
    match booked.first() {
        None => Ok(()),
        Some(b) => Err(qaward_kit::Error::rule(
            "R-54",
            "NEEDED_BY_A_PANEL",
            format!(
                "{} booked day(s) from {} ({}) still need the reviewer reachable; ask again after the last one, or decline the seat first",
                booked.len(),
                b.day,
                b.panel
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn employer() -> String {
        cn::with_check("91500235MA5U7XXX0").unwrap()
    }

    const ALPHABET: &[&str] = &[
        ",",
        "\"",
        "\n",
        "\r\n",
        ";",
        "是",
        "否",
        "在册",
        "2024-01-01",
        "C13",
        "{",
        "}",
        "[",
        "]",
        ":",
        "\"name\"",
        "\u{feff}",
        "张三",
        "13800235678",
        "11010519491231002X",
    ];

    /// Valid exports to edit: a CSV and a JSON export in UTF-8, and the CSV in GB18030.
    fn valid_exports() -> [(Vec<u8>, Format, Encoding); 3] {
        let good_csv = csv(&[
            "张三,13800235678,11010519491231002X,CQ-2024-0001,2024-01-01,2027-12-31,C13;C1311,,是,在册",
            "李四,13900235678,11010519491231002X,CQ-2024-0002,2024-01-01,2027-12-31,C34,,否,在册",
        ]);
        let good_json = r#"[{"name":"张三","mobile":"13800235678","resident_id":"11010519491231002X","certificate_number":"CQ-1","certificate_valid_from":"2024-01-01","certificate_valid_until":"2027-12-31","specialities":"C13","leader_qualified":"是","status":"在册"}]"#;
        let (gb, _, _) = encoding_rs::GB18030.encode(&good_csv);
        [
            (good_csv.clone().into_bytes(), Format::Csv, Encoding::Utf8),
            (good_json.as_bytes().to_vec(), Format::Json, Encoding::Utf8),
            (gb.into_owned(), Format::Csv, Encoding::Gb18030),
        ]
    }

    proptest::proptest! {
        #![proptest_config(qaward_kit::fuzz::config())]
        #[test]
        fn fuzz_a_registry_import_never_panics_and_keeps_only_valid_records(
            which in 0..3usize,
            edits in qaward_kit::fuzz::edits(),
            raw in qaward_kit::fuzz::bytes(300),
            arbitrary in proptest::bool::weighted(0.2),
        ) {
            let (base, format, encoding) = &valid_exports()[which];
            let content = if arbitrary {
                raw
            } else {
                qaward_kit::fuzz::apply(base, ALPHABET, &edits)
            };
            if let Ok(Import { good, .. }) = parse(&content, *format, *encoding) {
                let mut seen = std::collections::BTreeSet::new();
                for r in &good {
                    assert!(
                        seen.insert(r.certificate_number.clone()),
                        "one record per certificate"
                    );
                    assert!(qaward_kit::cn::resident_id(&r.resident_id).is_ok());
                    assert!(qaward_kit::cn::mobile(&r.mobile).is_ok());
                    assert!(r.cert_valid_from <= r.cert_valid_until, "{r:?}");
                    assert!(["ACTIVE", "SUSPENDED", "RETIRED"].contains(&r.status.as_str()));
                }
            }
        }
    }

    fn csv(rows: &[&str]) -> String {
        let mut s = "姓名,手机号,身份证号,证书编号,证书有效期起,证书有效期止,专业,工作单位统一社会信用代码,组长资格,状态\n".to_string();
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s
    }

    #[test]
    fn a_gb18030_csv_with_chinese_headers_imports() {
        let text = csv(&[&format!(
            "张三,13800235678,11010519491231002X,CQ-2024-0001,2024-01-01,2027-12-31,C13;C1311,{},是,在册",
            employer()
        )]);
        let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
        let Import {
            good,
            rejected,
            ignored,
        } = parse(&bytes, Format::Csv, Encoding::Gb18030).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        assert!(ignored.is_empty(), "{ignored:?}");
        assert_eq!(good[0].name, "张三");
        assert_eq!(good[0].specialities, ["C13", "C1311"]);
        assert!(good[0].leader_qualified);
        // The same bytes read as UTF-8 are refused whole, with a hint.
        assert!(
            parse(&bytes, Format::Csv, Encoding::Utf8)
                .unwrap_err()
                .0
                .contains("GB18030")
        );
    }

    #[test]
    fn r42_each_bad_row_is_reported_by_field_and_the_good_ones_kept() {
        let text = csv(&[
            &format!(
                "张三,13800235678,11010519491231002X,CQ-1,2024-01-01,2027-12-31,C13,{},否,",
                employer()
            ),
            "李四,12345,110105194912310021,CQ-2,2024-01-01,2023-12-31,Z99,91500235MA5U7XXX0Z,也许,在册",
            &format!(
                "王五,13900235678,11010519491231002X,CQ-1,2024-01-01,2027-12-31,C13,{},否,",
                employer()
            ),
        ]);
        let Import { good, rejected, .. } =
            parse(text.as_bytes(), Format::Csv, Encoding::Utf8).unwrap();
        assert_eq!(good.len(), 1);
        let row2: Vec<&str> = rejected
            .iter()
            .filter(|r| r.row == 2)
            .map(|r| r.field.as_str())
            .collect();
        assert_eq!(
            row2,
            [
                "mobile",
                "resident_id",
                "certificate_valid_until",
                "specialities",
                "employer_code",
                "leader_qualified"
            ]
        );
        assert_eq!(
            rejected.iter().filter(|r| r.row == 3).count(),
            1,
            "duplicate certificate"
        );
    }

    #[test]
    fn a_file_that_is_not_a_registry_is_refused_whole() {
        let e = parse(b"a,b,c\n1,2,3\n", Format::Csv, Encoding::Utf8).unwrap_err();
        assert!(e.0.contains("missing columns"), "{e:?}");
        assert!(parse(b"{\"x\": 1}", Format::Json, Encoding::Utf8).is_err());
        assert!(parse(b"", Format::Csv, Encoding::Utf8).is_err());
    }

    #[test]
    fn an_import_over_the_limit_is_refused_naming_the_limit() {
        let big = vec![b' '; MAX_IMPORT_BYTES + 1];
        let e = parse(&big, Format::Csv, Encoding::Utf8).unwrap_err();
        assert!(e.0.contains(&MAX_IMPORT_BYTES.to_string()), "{e:?}");
    }

    #[test]
    fn json_exports_import_too() {
        let json = serde_json::json!([{
            "name": "Zhao Liu", "mobile": "+86 139 0023 5678", "resident_id": "11010519491231002X",
            "certificate_number": "cq-9", "certificate_valid_from": "2024/1/1",
            "certificate_valid_until": "2027年12月31日", "specialities": ["13", "C26"],
            "employer_code": "", "leader_qualified": true, "status": "ACTIVE"
        }]);
        let Import { good, rejected, .. } =
            parse(json.to_string().as_bytes(), Format::Json, Encoding::Utf8).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(good[0].certificate_number, "CQ-9");
        assert_eq!(good[0].mobile, "13900235678");
        assert_eq!(good[0].cert_valid_until, "2027-12-31");
        assert_eq!(good[0].specialities, ["C13", "C26"]);
    }

    #[test]
    fn an_import_names_the_columns_it_ignored() {
        // Issue 25, item 7: an export with columns the registry has no field for is read, and
        // the office is told which were not (a misspelt header would otherwise vanish).
        let text = format!(
            "姓名,手机号,身份证号,证书编号,证书有效期起,证书有效期止,专业,工作单位统一社会信用代码,组长资格,状态,备注,职称\n张三,13800235678,11010519491231002X,CQ-2024-0001,2024-01-01,2027-12-31,C13,{},是,在册,无,高级工程师\n",
            employer()
        );
        let i = parse(text.as_bytes(), Format::Csv, Encoding::Utf8).unwrap();
        assert_eq!(i.good.len(), 1);
        assert_eq!(i.ignored, ["备注", "职称"]);
        let json = format!(
            r#"[{{"name":"张三","mobile":"13800235678","resident_id":"11010519491231002X","certificate_number":"CQ-1","certificate_valid_from":"2024-01-01","certificate_valid_until":"2027-12-31","specialities":["C13"],"employer_code":"{}","leader_qualified":true,"status":"ACTIVE","title":"x"}}]"#,
            employer()
        );
        let i = parse(json.as_bytes(), Format::Json, Encoding::Utf8).unwrap();
        assert_eq!(i.ignored, ["title"], "{:?}", i.rejected);
    }

    #[test]
    fn r54_personal_data_is_erased_on_request_unless_a_panel_still_needs_it() {
        assert!(may_erase(&[]).is_ok());
        let e = may_erase(&[Booked {
            day: "2027-05-11".into(),
            panel: "programmes/yunyang/panels/p1".into(),
        }])
        .unwrap_err();
        assert_eq!(e.reason, "NEEDED_BY_A_PANEL");
        assert_eq!(e.rule.as_deref(), Some("R-54"));
        assert!(e.message.contains("2027-05-11"), "{}", e.message);
    }
}
