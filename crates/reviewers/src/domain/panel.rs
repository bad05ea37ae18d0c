//! A drawn group's seats and their life: seating a draw's members and
//! backups, a member's answer, and handing a leaving member's seat to the next backup that
//! keeps the group's needs. The handler loads the panel, calls one of these, and stores the
//! seats; nothing here reads a clock (times come in as Unix microseconds).

use qaward_kit::Error;

use crate::domain::{
    Purpose,
    draw::{self, Outcome, Prepared},
    eligibility,
};

/// How long a drawn (or called) reviewer has to accept or decline.
pub const RESPONSE_HOURS: i64 = 72;

/// When a seat given at `now` must be answered by (Unix microseconds).
pub fn respond_by(now: time::OffsetDateTime) -> i64 {
    qaward_kit::clock::unix_micros(now + time::Duration::hours(RESPONSE_HOURS))
}

/// the seat named is not a sitting member's.
pub const NOT_A_MEMBER: &str = "NOT_A_MEMBER";
/// no waiting backup keeps the group's needs.
pub const NO_BACKUP_LEFT: &str = "NO_BACKUP_LEFT";
/// the member has already accepted or declined.
pub const ALREADY_ANSWERED: &str = "ALREADY_ANSWERED";
/// the answer came after the seat's deadline.
pub const RESPONSE_DEADLINE_PASSED: &str = "RESPONSE_DEADLINE_PASSED";
/// a replacement for a missed deadline, though the member answered or still may.
pub const DEADLINE_NOT_MISSED: &str = "DEADLINE_NOT_MISSED";
/// a replacement for a late conflict, though none is recorded.
pub const NO_CONFLICT_FOUND: &str = "NO_CONFLICT_FOUND";

/// A member's seat or a backup's place in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatKind {
    Member,
    Backup,
}

impl SeatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatKind::Member => "MEMBER",
            SeatKind::Backup => "BACKUP",
        }
    }

    pub fn parse(s: &str) -> Option<SeatKind> {
        [SeatKind::Member, SeatKind::Backup]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A seat's state: a member's is pending until answered, then accepted or declined, or ends
/// expired or replaced; a backup waits until called to a seat (it then becomes a pending
/// member).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    Pending,
    Accepted,
    Declined,
    Expired,
    Replaced,
    Waiting,
}

impl SeatState {
    pub const ALL: [SeatState; 6] = [
        SeatState::Pending,
        SeatState::Accepted,
        SeatState::Declined,
        SeatState::Expired,
        SeatState::Replaced,
        SeatState::Waiting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SeatState::Pending => "PENDING",
            SeatState::Accepted => "ACCEPTED",
            SeatState::Declined => "DECLINED",
            SeatState::Expired => "EXPIRED",
            SeatState::Replaced => "REPLACED",
            SeatState::Waiting => "WAITING",
        }
    }

    pub fn parse(s: &str) -> Option<SeatState> {
        SeatState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether a member in this state still sits on the panel.
    pub fn sits(self) -> bool {
        matches!(self, SeatState::Pending | SeatState::Accepted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub position: i64,
    pub reviewer_id: String,
    pub kind: SeatKind,
    pub state: SeatState,
    pub leader: bool,
    pub reason: String,
    pub replaced_by: String,
    /// When this seat's answer is due (a backup called later gets its own deadline); 0 for a
    /// backup not called.
    pub respond_by_micros: i64,
}

impl Seat {
    pub fn is_member(&self) -> bool {
        self.kind == SeatKind::Member
    }
}

/// The group a draw seated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panel {
    pub id: String,
    pub programme_id: String,
    pub draw_id: String,
    pub purpose: String,
    pub enterprise_codes: Vec<String>,
    pub window_start: String,
    pub window_end: String,
    pub released: bool,
    pub respond_by_micros: i64,
    pub seats: Vec<Seat>,
}

/// What a replacement did: who left (and how), and who took the seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub leaving: String,
    pub next: String,
}

impl Panel {
    /// Seats a draw's outcome: its members pending, each to answer by `respond_by`, the
    /// leader marked; its backups waiting, in draw order.
    pub fn seat(
        id: &str,
        programme: &str,
        draw_id: &str,
        prepared: &Prepared,
        outcome: &Outcome,
        respond_by: i64,
    ) -> Panel {
        let members = outcome.members.iter().map(|m| Seat {
            position: 0,
            reviewer_id: m.clone(),
            kind: SeatKind::Member,
            state: SeatState::Pending,
            leader: *m == outcome.leader,
            reason: String::new(),
            replaced_by: String::new(),
            respond_by_micros: respond_by,
        });
        let backups = outcome.backups.iter().map(|b| Seat {
            position: 0,
            reviewer_id: b.clone(),
            kind: SeatKind::Backup,
            state: SeatState::Waiting,
            leader: false,
            reason: String::new(),
            replaced_by: String::new(),
            respond_by_micros: 0,
        });
        let seats = members
            .chain(backups)
            .enumerate()
            .map(|(i, s)| Seat {
                position: i as i64,
                ..s
            })
            .collect();
        Panel {
            id: id.to_string(),
            programme_id: programme.to_string(),
            draw_id: draw_id.to_string(),
            purpose: prepared.purpose.clone(),
            enterprise_codes: prepared.enterprise_codes.clone(),
            window_start: prepared.window_start.clone(),
            window_end: prepared.window_end.clone(),
            released: false,
            respond_by_micros: respond_by,
            seats,
        }
    }

    /// Whether the panel reviews applicants (and so books its members' days, R-44): every
    /// purpose but an annual appointment.
    pub fn is_review(&self) -> bool {
        Purpose::parse(&self.purpose).is_none_or(|x| x.is_review())
    }

    /// The member seat of `reviewer` (a certificate number, any case), if any.
    pub fn member(&self, reviewer: &str) -> Option<&Seat> {
        self.seats
            .iter()
            .find(|s| s.is_member() && s.reviewer_id.eq_ignore_ascii_case(reviewer))
    }

    /// The members still sitting (pending or accepted), in seat order.
    pub fn sitting(&self) -> Vec<String> {
        self.seats
            .iter()
            .filter(|s| s.is_member() && s.state.sits())
            .map(|s| s.reviewer_id.clone())
            .collect()
    }

    /// Backups not yet called, in draw order.
    pub fn waiting(&self) -> Vec<String> {
        self.seats
            .iter()
            .filter(|s| s.kind == SeatKind::Backup && s.state == SeatState::Waiting)
            .map(|s| s.reviewer_id.clone())
            .collect()
    }

    /// `reviewer` answers their seat at `now`: only a pending member, before the seat's
    /// deadline. An acceptance is recorded here; a decline frees the seat for [`Panel::replace`].
    pub fn answer(&mut self, reviewer: &str, accept: bool, now: i64) -> Result<(), Error> {
        let Some(seat) = self
            .seats
            .iter_mut()
            .find(|s| s.is_member() && s.reviewer_id == reviewer)
        else {
            return Err(Error::permission_denied(
                "this reviewer holds no seat on the panel",
            ));
        };
        if seat.state != SeatState::Pending {
            return Err(Error::rule(
                "R-45",
                ALREADY_ANSWERED,
                format!("the seat is {}", seat.state.as_str().to_lowercase()),
            ));
        }
        if now > seat.respond_by_micros {
            return Err(Error::rule(
                "R-45",
                RESPONSE_DEADLINE_PASSED,
                format!(
                    "answers were due by {}",
                    qaward_kit::clock::from_unix_micros(seat.respond_by_micros)
                ),
            ));
        }
        if accept {
            seat.state = SeatState::Accepted;
        }
        Ok(())
    }

    /// a replacement for a missed deadline needs `reviewer` pending past it at `now`.
    pub fn check_overdue(&self, reviewer: &str, now: i64) -> Result<(), Error> {
        let overdue = self.seats.iter().any(|s| {
            s.reviewer_id == reviewer && s.state == SeatState::Pending && now > s.respond_by_micros
        });
        if overdue {
            Ok(())
        } else {
            Err(Error::rule(
                "R-45",
                DEADLINE_NOT_MISSED,
                "the reviewer has answered or the deadline has not passed",
            ))
        }
    }

    /// hands `leaving`'s seat to the next waiting backup that keeps the group's needs
    /// (the draw's own rule, [`draw::replacement`]); `leaving` ends in `state` with `reason`,
    /// the called backup becomes a pending member answering by `respond_by`. When the leader
    /// leaves, the draw's leader rule picks a new one among those still sitting, in draw order.
    pub fn replace(
        &mut self,
        prepared: &Prepared,
        outcome: Option<&Outcome>,
        leaving: &str,
        state: SeatState,
        reason: &str,
        respond_by: i64,
    ) -> Result<Replacement, Error> {
        let members = self.sitting();
        if !members.iter().any(|m| m == leaving) {
            return Err(Error::rule(
                "R-45",
                NOT_A_MEMBER,
                format!("reviewers/{leaving} holds no seat on this panel"),
            ));
        }
        let waiting = self.waiting();
        let Some(next) = draw::replacement(prepared, &members, leaving, &waiting).cloned() else {
            return Err(Error::rule(
                "R-45",
                NO_BACKUP_LEFT,
                "no remaining backup keeps the group's needs; prepare a new draw naming this one",
            ));
        };
        let was_leader = self
            .seats
            .iter()
            .any(|s| s.reviewer_id == leaving && s.leader);
        for s in self.seats.iter_mut() {
            if s.reviewer_id == leaving {
                s.state = state;
                s.reason = reason.to_string();
                s.replaced_by = next.clone();
                s.leader = false;
            } else if s.reviewer_id == next {
                // The called backup gets the full time to answer, from now.
                s.kind = SeatKind::Member;
                s.state = SeatState::Pending;
                s.respond_by_micros = respond_by;
            }
        }
        if was_leader {
            let sitting = self.sitting();
            let active: Vec<String> = outcome
                .into_iter()
                .flat_map(|o| o.members.iter().chain(&o.backups))
                .filter(|id| sitting.contains(id))
                .cloned()
                .collect();
            if let Some(l) = draw::leader(prepared, &active).cloned() {
                for s in self.seats.iter_mut() {
                    s.leader = s.reviewer_id == l;
                }
            }
        }
        Ok(Replacement {
            leaving: leaving.to_string(),
            next,
        })
    }
}

/// a replacement for a late-found conflict needs a recorded one; the reasons, as the
/// replaced seat's reason text.
pub fn late_conflict(reasons: &[eligibility::Reason]) -> Result<String, Error> {
    if reasons.is_empty() {
        return Err(Error::rule(
            "R-41",
            NO_CONFLICT_FOUND,
            "no conflict is recorded for this reviewer and these applicants; record the relation or flag first",
        ));
    }
    Ok(format!(
        "late conflict: {}",
        reasons
            .iter()
            .map(|x| format!("{} ({})", x.code, x.rule))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::draw::{PoolEntry, SpecialityNeed};

    const HOUR: i64 = 3_600_000_000;

    fn prepared() -> Prepared {
        let entry = |id: &str, leader| PoolEntry {
            id: id.into(),
            specialities: vec!["C13".into()],
            leader,
        };
        Prepared {
            algorithm: draw::ALGORITHM.into(),
            draw: "programmes/p/draws/d".into(),
            programme: "programmes/p".into(),
            purpose: "MATERIALS_GROUP".into(),
            enterprise_codes: vec![],
            size: 2,
            backups: 2,
            specialities: vec![SpecialityNeed {
                code: "C13".into(),
                min: 1,
            }],
            leader_required: true,
            window_start: "2026-03-02".into(),
            window_end: "2026-03-03".into(),
            policy_version: 1,
            entropy_source: "dice".into(),
            entropy_commitment: String::new(),
            replaces_draw: String::new(),
            pool: vec![
                entry("A", true),
                entry("B", false),
                entry("C", true),
                entry("D", false),
            ],
            pool_hash: String::new(),
            exclusions: vec![],
            entropy_parties: vec![],
            fixes_public_value: false,
            reveal_deadline_micros: 0,
        }
        .normalise()
    }

    fn outcome() -> Outcome {
        Outcome {
            members: vec!["A".into(), "B".into()],
            leader: "A".into(),
            backups: vec!["C".into(), "D".into()],
        }
    }

    fn panel() -> Panel {
        Panel::seat("x", "p", "d", &prepared(), &outcome(), 72 * HOUR)
    }

    #[test]
    fn r45_a_draw_seats_its_members_pending_and_its_backups_waiting_in_order() {
        let p = panel();
        let kinds: Vec<_> = p
            .seats
            .iter()
            .map(|s| {
                (
                    s.position,
                    s.reviewer_id.as_str(),
                    s.kind,
                    s.state,
                    s.leader,
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (0, "A", SeatKind::Member, SeatState::Pending, true),
                (1, "B", SeatKind::Member, SeatState::Pending, false),
                (2, "C", SeatKind::Backup, SeatState::Waiting, false),
                (3, "D", SeatKind::Backup, SeatState::Waiting, false),
            ]
        );
        assert_eq!(p.seats[2].respond_by_micros, 0);
    }

    #[test]
    fn r45_a_member_answers_once_and_before_the_deadline() {
        let mut p = panel();
        p.answer("B", true, HOUR).unwrap();
        assert_eq!(p.member("b").unwrap().state, SeatState::Accepted);
        assert_eq!(
            p.answer("B", false, HOUR).unwrap_err().reason,
            ALREADY_ANSWERED
        );
        assert_eq!(
            p.answer("A", true, 73 * HOUR).unwrap_err().reason,
            RESPONSE_DEADLINE_PASSED
        );
        // A backup holds no seat to answer.
        assert_eq!(
            p.answer("C", true, HOUR).unwrap_err().code,
            qaward_kit::ErrorCode::PermissionDenied
        );
        assert_eq!(
            p.check_overdue("B", 73 * HOUR).unwrap_err().reason,
            DEADLINE_NOT_MISSED
        );
        assert!(p.check_overdue("A", 73 * HOUR).is_ok());
    }

    #[test]
    fn r45_the_leaders_seat_goes_to_the_next_backup_and_leadership_to_a_qualified_member() {
        let mut p = panel();
        let r = p
            .replace(
                &prepared(),
                Some(&outcome()),
                "A",
                SeatState::Declined,
                "ill",
                100 * HOUR,
            )
            .unwrap();
        assert_eq!(r.next, "C");
        let a = p.seats.iter().find(|s| s.reviewer_id == "A").unwrap();
        assert_eq!(
            (a.state, a.replaced_by.as_str(), a.leader),
            (SeatState::Declined, "C", false)
        );
        let c = p.member("C").unwrap();
        assert_eq!(
            (c.state, c.respond_by_micros, c.leader),
            (SeatState::Pending, 100 * HOUR, true)
        );
        assert_eq!(p.sitting(), ["B", "C"]);
        // A reviewer who left holds no seat to leave again.
        let again = p.replace(
            &prepared(),
            Some(&outcome()),
            "A",
            SeatState::Replaced,
            "x",
            0,
        );
        assert_eq!(again.unwrap_err().reason, NOT_A_MEMBER);
    }

    #[test]
    fn r41_a_late_conflict_replacement_needs_a_recorded_conflict() {
        assert_eq!(late_conflict(&[]).unwrap_err().reason, NO_CONFLICT_FOUND);
        let reason = eligibility::Reason {
            code: "SHAREHOLDING".into(),
            rule: "R-41",
            enterprise_code: String::new(),
            record: String::new(),
            message: String::new(),
        };
        assert_eq!(
            late_conflict(&[reason]).unwrap(),
            "late conflict: SHAREHOLDING (R-41)"
        );
    }
}
