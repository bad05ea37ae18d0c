//! The committee as a body: each member unit's ballot and votes, the meeting and its
//! decisions; and the government's decision on each adopted candidate.

use qaward_kit::{Error, Result, db::Conn};
use sqlx::Row;

/// One unit's ballot as stored, with its votes as (application id, credit code, vote, note).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BallotRow {
    pub unit: String,
    pub ordinal: i64,
    pub representative: String,
    pub cast_micros: i64,
    #[sqlx(skip)]
    pub votes: Vec<VoteRow>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VoteRow {
    pub unit: String,
    pub application_id: String,
    pub credit_code: String,
    pub vote: String,
    pub note: String,
}

/// Whether a unit has cast its ballot on a cycle.
pub async fn ballot_cast(conn: &mut Conn, programme: &str, year: i64, unit: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM committee_ballots WHERE programme_id = $1 AND year = $2 AND unit = $3",
    )
    .bind(programme)
    .bind(year)
    .bind(unit)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>(0)? > 0)
}

pub async fn insert_ballot(
    conn: &mut Conn,
    programme: &str,
    year: i64,
    ballot: &BallotRow,
    caller: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO committee_ballots (programme_id, year, unit, ordinal, representative, caller, cast_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(programme)
    .bind(year)
    .bind(&ballot.unit)
    .bind(ballot.ordinal)
    .bind(&ballot.representative)
    .bind(caller)
    .bind(ballot.cast_micros)
    .execute(&mut *conn)
    .await?;
    for v in &ballot.votes {
        sqlx::query(
            "INSERT INTO committee_votes (programme_id, year, unit, application_id, vote, note)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(programme)
        .bind(year)
        .bind(&ballot.unit)
        .bind(&v.application_id)
        .bind(&v.vote)
        .bind(&v.note)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A cycle's ballots in the order of the member list, each with its votes.
pub async fn ballots(conn: &mut Conn, programme: &str, year: i64) -> Result<Vec<BallotRow>> {
    let mut out: Vec<BallotRow> = sqlx::query_as(
        "SELECT unit, ordinal, representative, cast_micros FROM committee_ballots
         WHERE programme_id = $1 AND year = $2 ORDER BY ordinal",
    )
    .bind(programme)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    let votes: Vec<VoteRow> = sqlx::query_as(
        "SELECT v.unit, v.application_id, a.credit_code, v.vote, v.note
         FROM committee_votes v JOIN applications a ON a.id = v.application_id
         WHERE v.programme_id = $1 AND v.year = $2 ORDER BY v.unit, a.credit_code",
    )
    .bind(programme)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    for v in votes {
        if let Some(b) = out.iter_mut().find(|b| b.unit == v.unit) {
            b.votes.push(v);
        }
    }
    Ok(out)
}

/// the government's decision on one adopted candidate.
pub async fn insert_government_decision(
    conn: &mut Conn,
    application: &str,
    approved: bool,
    note: &str,
    document: &str,
    date: &str,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO government_decisions (application_id, approved, note, document, decision_date, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(application)
    .bind(i64::from(approved))
    .bind(note)
    .bind(document)
    .bind(date)
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn insert_meeting(
    conn: &mut Conn,
    id: &str,
    programme: &str,
    year: i64,
    units_present: &[String],
    recusals: &serde_json::Value,
    now_micros: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO committee_meetings (id, programme_id, year, units_present, recusals, created_micros)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(programme)
    .bind(year)
    .bind(serde_json::to_string(units_present).map_err(Error::internal)?)
    .bind(recusals.to_string())
    .bind(now_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn insert_committee_decision(
    conn: &mut Conn,
    application: &str,
    meeting: &str,
    adopted: bool,
    note: &str,
    tally: &serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO committee_decisions (application_id, meeting_id, adopted, note, tally)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(application)
    .bind(meeting)
    .bind(i64::from(adopted))
    .bind(note)
    .bind(tally.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether the committee adopted an application; `None` when it has not decided on it.
pub async fn adopted(conn: &mut Conn, application: &str) -> Result<Option<bool>> {
    let row = sqlx::query("SELECT adopted FROM committee_decisions WHERE application_id = $1")
        .bind(application)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok(r.try_get::<i64, _>(0)? != 0)).transpose()
}
