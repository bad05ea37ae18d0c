//! What a disqualification sets off, wherever it was decided — a site-visit stop confirmed
//! a department's objection upheld, a complaint substantiated: one
//! place, so no path forgets one (issue 24).

use qaward_kit::{Result, clock::unix_micros, db::Conn};

use super::convert::{china_date, result_settings};
use crate::{follow, store};

/// Scoring takes the application out of the ranking, with the rule and finding (through the
/// outbox, so it happens once the transaction commits; a ranking already released gets a new
/// version, R-51); a finding of fraud in this award bars
/// the applicant for the programme's ban years (Art. 12(2), R-04) — on every path, not only
/// the site visit's.
pub(super) async fn consequences(
    tx: &mut Conn,
    now: time::OffsetDateTime,
    row: &store::ApplicationRow,
    rule: &str,
    finding: &str,
    fraud: bool,
) -> Result<()> {
    let cycle = store::get_cycle(tx, &row.programme_id, row.year).await?;
    let settings = store::settings_version(tx, &row.programme_id, cycle.settings_version).await?;
    follow::exclude_from_results(tx, now, row, rule, finding, result_settings(&settings)).await?;
    if fraud {
        bar(tx, now, row, rule, finding).await?;
    }
    Ok(())
}

/// Art. 12(2), R-04: a finding of fraud in this award bars the applicant for the programme's
/// ban years.
pub(super) async fn bar(
    tx: &mut Conn,
    now: time::OffsetDateTime,
    row: &store::ApplicationRow,
    rule: &str,
    finding: &str,
) -> Result<()> {
    store::add_record(
        tx,
        &row.credit_code,
        &row.programme_id,
        "fraud",
        &qaward_kit::convert::iso_date(china_date(unix_micros(now))),
        &format!("{rule}: {finding}"),
        unix_micros(now),
    )
    .await
}
