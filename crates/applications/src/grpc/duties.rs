//! Winners' duties after the award: yearly reports, overdue reports. Revocation
//! is `revocation.rs`.

use qaward_kit::{
    Error, Result,
    audit::AuditRecord,
    auth::{Caller, Role},
    change::Done,
    clock::unix_micros,
    convert::{date_from_pb, date_to_pb, iso_date, parse_iso_date},
    error::FieldViolation,
    idempotency::RequestKey,
    names::programme_id,
    notify,
};
use qaward_proto::qaward::applications::v1 as pb;

use crate::{
    domain::{Explanation, duties, refused},
    store::{self, ReportRow},
};

use super::{
    ApplicationsApi,
    convert::{china_date, notice, report_pb},
    is_enterprise,
    names::enterprise_code,
};

impl ApplicationsApi {
    pub(super) async fn duties_file(
        &self,
        c: &Caller,
        r: pb::FileReportRequest,
    ) -> Result<pb::WinnerReport> {
        let code = enterprise_code(&r.parent, "parent")?;
        if !is_enterprise(c, code.as_str()) {
            return Err(Error::permission_denied(
                "an award holder files its own reports",
            ));
        }
        let report = r
            .report
            .as_ref()
            .ok_or_else(|| Error::invalid("report", "is required"))?;
        let mut bad = Vec::new();
        let text = report.text.trim().to_string();
        if text.is_empty() || text.chars().count() > 60_000 {
            bad.push(FieldViolation::new(
                "report.text",
                "must be 1-60000 characters",
            ));
        }
        let kind = match pb::ReportKind::try_from(report.kind) {
            Ok(pb::ReportKind::Annual) => "ANNUAL",
            Ok(pb::ReportKind::Incident) => "INCIDENT",
            _ => {
                bad.push(FieldViolation::new(
                    "report.kind",
                    "must be ANNUAL or INCIDENT",
                ));
                ""
            }
        };
        let event = match (&report.event_date, kind) {
            (Some(d), _) => date_from_pb(d, "report.event_date")
                .map_err(|e| bad.extend(e.violations.clone()))
                .ok(),
            (None, "INCIDENT") => {
                bad.push(FieldViolation::new(
                    "report.event_date",
                    "the date of the accident or the failed spot check is required (R-31)",
                ));
                None
            }
            (None, _) => None,
        };
        if kind == "ANNUAL" && !(2000..=2200).contains(&report.year) {
            bad.push(FieldViolation::new(
                "report.year",
                "the report year, 2000-2200",
            ));
        }
        if !bad.is_empty() {
            return Err(Error::invalid_fields(bad));
        }
        let key = RequestKey::new("FileReport", c, &r.request_id, &r)?;
        let now = self.now();
        let today = china_date(unix_micros(now));
        self.change(key, |mut tx| async move {
            let awards = store::awards_of(&mut tx, code.as_str()).await?;
            let Some(award) = awards.iter().find(|a| !a.revoked) else {
                return Err(refused(Explanation::new(
                    "R-30",
                    "NOT_AN_AWARD_HOLDER",
                    "只有获奖企业报送年度自评报告和事故报告",
                )));
            };
            let award_date = parse_iso_date(&award.award_date)
                .ok_or_else(|| Error::internal("stored award date"))?;
            let settings = store::award_settings(&mut tx, award).await?;
            let (rule, year, due) = if kind == "ANNUAL" {
                let y = report.year;
                if y < award_date.year() || y >= today.year() {
                    return Err(Error::invalid(
                        "report.year",
                        format!(
                            "a report is on a past year from the award year {} on (R-30)",
                            award_date.year()
                        ),
                    ));
                }
                if store::annual_years_filed(&mut tx, code.as_str())
                    .await?
                    .contains(&y)
                {
                    return Err(Error::already_exists(format!(
                        "{}/reports (annual {y})",
                        r.parent
                    )));
                }
                ("R-30", y, duties::annual_due(y, settings.annual_due_day()))
            } else {
                let e = event.expect("checked above");
                if e > today {
                    return Err(Error::invalid(
                        "report.event_date",
                        "must not be in the future",
                    ));
                }
                if let Some(why) = duties::incident_date_problem(e, award_date) {
                    return Err(Error::invalid("report.event_date", why));
                }
                let due = duties::incident_due(
                    &self.calendar(),
                    e,
                    settings.incident_report_working_days,
                )
                .map_err(|x| Error::invalid("report.event_date", x.to_string()))?;
                ("R-31", e.year(), due)
            };
            let late = duties::lateness(rule, today, due);
            let row = ReportRow {
                id: self.new_id(),
                credit_code: code.as_str().to_string(),
                kind: kind.to_string(),
                year: i64::from(year),
                text,
                event_date: event.map(iso_date).unwrap_or_default(),
                due_date: iso_date(due),
                filed_micros: unix_micros(now),
                late: late.is_some(),
            };
            store::insert_report(&mut tx, &row).await?;
            let response = report_pb(&row);
            if kind == "INCIDENT" {
                // an accident or a failed spot check may be a ground for revocation; the
                // office is given the task of considering it.
                let e = store::get_enterprise(&mut tx, code.as_str()).await?;
                notify::enqueue(
                    &mut tx,
                    now,
                    &notice(
                        "incident_report.review",
                        &format!("office.{}", award.programme_id),
                        "",
                        &[
                            ("enterprise_name", e.display_name.clone()),
                            ("certificate_number", award.certificate_number.clone()),
                            ("event_date", row.event_date.clone()),
                            ("report", response.name.clone()),
                        ],
                    ),
                )
                .await?;
            }
            let record = AuditRecord::by(c, "report.file", response.name.clone())
                .because(rule)
                .with_detail(serde_json::json!({
                    "kind": kind, "due_date": row.due_date, "late": row.late,
                }));
            Ok(Done::new(tx, record, response))
        })
        .await
    }

    pub(super) async fn duties_list(
        &self,
        c: &Caller,
        r: pb::ListReportsRequest,
    ) -> Result<pb::ListReportsResponse> {
        let code = enterprise_code(&r.parent, "parent")?;
        if !is_enterprise(c, code.as_str()) {
            c.require(&[Role::Office, Role::Supervisor])?;
        }
        let page = qaward_kit::paging::Page::parse(r.page_size, &r.page_token)?;
        let mut conn = self.db().pool().acquire().await?;
        let mut rows = store::reports_of(&mut conn, code.as_str(), &page).await?;
        let next_page_token = page.finish(&mut rows, |x| x.id.clone());
        Ok(pb::ListReportsResponse {
            reports: rows.iter().map(report_pb).collect(),
            next_page_token,
        })
    }

    pub(super) async fn duties_overdue(
        &self,
        c: &Caller,
        r: pb::ListOverdueReportsRequest,
    ) -> Result<pb::ListOverdueReportsResponse> {
        let p = programme_id(&r.programme, "programme")?;
        c.acts_for(&p)?;
        let page = qaward_kit::paging::Page::parse(r.page_size, &r.page_token)?;
        let today = china_date(unix_micros(self.now()));
        let mut conn = self.db().pool().acquire().await?;
        let mut reports = Vec::new();
        for a in store::standing_awards(&mut conn, &p).await? {
            let Some(awarded) = parse_iso_date(&a.award_date) else {
                continue;
            };
            let filed = store::annual_years_filed(&mut conn, &a.credit_code).await?;
            let due_day = store::award_settings(&mut conn, &a).await?.annual_due_day();
            for (year, due) in duties::overdue_annual(awarded, &filed, today, due_day) {
                reports.push(pb::OverdueReport {
                    enterprise: format!("enterprises/{}", a.credit_code),
                    report_year: year,
                    due_date: Some(date_to_pb(due)),
                });
            }
        }
        // Ordered by enterprise and year; a page continues after the last of the previous one.
        let key = |o: &pb::OverdueReport| format!("{}:{:04}", o.enterprise, o.report_year);
        reports.sort_by_key(key);
        let mut reports: Vec<pb::OverdueReport> = reports
            .into_iter()
            .filter(|o| page.after.is_empty() || key(o) > page.after)
            .take(page.fetch() as usize)
            .collect();
        let next_page_token = page.finish(&mut reports, key);
        Ok(pb::ListOverdueReportsResponse {
            reports,
            next_page_token,
        })
    }
}
