//! Who may read or act on an application (R-43, docs/roles.md): the enterprise itself, its
//! recommending unit, the office, and a reviewer drawn into a running review of it.

use qaward_kit::{
    Error, Result,
    auth::{Caller, Role},
    cn::CreditCode,
    db::Conn,
};

use crate::{
    domain::review::{self, GroupState, ReviewStage},
    store::{self, ApplicationRow, CycleRow, EnterpriseRow, stage_of},
};

use super::is_enterprise;

pub(crate) struct Loaded {
    pub row: ApplicationRow,
    pub cycle: CycleRow,
    pub enterprise: EnterpriseRow,
}

pub(crate) async fn load(conn: &mut Conn, p: &str, y: i64, code: &CreditCode) -> Result<Loaded> {
    let row = store::get_application(conn, &ApplicationRow::key(p, y, code.as_str())).await?;
    let cycle = store::get_cycle(conn, p, y).await?;
    let enterprise = store::get_enterprise(conn, code.as_str()).await?;
    Ok(Loaded {
        row,
        cycle,
        enterprise,
    })
}

/// Who reads an application: the office and supervisor of its programme, the enterprise, and
/// its recommending unit.
pub(crate) fn may_read(c: &Caller, l: &Loaded) -> Result<()> {
    if is_enterprise(c, &l.row.credit_code)
        || (c.role == Role::RecommendingUnit
            && c.org.as_deref() == Some(l.enterprise.recommending_unit.as_str()))
    {
        return Ok(());
    }
    if c.role == Role::Reviewer {
        return Err(Error::permission_denied(
            "a reviewer reads an application only while a review it is drawn for runs (R-43)",
        ));
    }
    c.require_programme(&l.row.programme_id, &[Role::Office, Role::Supervisor])
}

pub(super) fn only_the_enterprise(c: &Caller, code: &str) -> Result<()> {
    if is_enterprise(c, code) {
        Ok(())
    } else {
        Err(Error::permission_denied(
            "only the applying enterprise does this",
        ))
    }
}

/// whether a reviewer may read an application now — drawn into a started group of a
/// review that is running for it.
pub(crate) async fn reviewer_may_read(
    conn: &mut Conn,
    c: &Caller,
    row: &ApplicationRow,
) -> Result<bool> {
    if c.role != Role::Reviewer {
        return Ok(false);
    }
    let mut drawn_for = Vec::new();
    for stage in ReviewStage::ALL {
        if let Some(g) = store::group_of(conn, &row.id, stage.as_str()).await?
            && g.state == GroupState::Started
            && g.members
                .iter()
                .any(|(m, _)| m.eq_ignore_ascii_case(&c.subject))
        {
            drawn_for.push(stage);
        }
    }
    Ok(review::reviewer_may_read(stage_of(row)?, &drawn_for))
}
