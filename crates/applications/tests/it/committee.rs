//! The committee as a body (Art. 5, 16(9); R-22): each member unit votes with its own token.
//! Helpers for the walks that reach the committee; the walk itself is in `award.rs`.

use qaward_kit::auth::Role;
use qaward_proto::qaward::applications::v1 as pb;

use super::{
    as_,
    reviews::{CYCLE, World, app},
};

pub use pb::CommitteeVoteChoice as Choice;

/// The eight member units of Art. 5: the programme's default list.
pub use qaward_applications::domain::committee::YUNYANG_UNITS as UNITS;

/// A committee member's token: its unit is its `org` (Art. 5).
pub fn member(w: &World, n: usize) -> String {
    w.keys.token_in(
        &format!("head-{n}"),
        Role::CommitteeMember,
        UNITS[n],
        "yunyang",
    )
}

pub fn ballot_of(code: &str, n: usize, choice: Choice) -> pb::CastCommitteeBallotRequest {
    pb::CastCommitteeBallotRequest {
        parent: CYCLE.into(),
        ballot: Some(pb::CommitteeBallot {
            representative: format!("{}负责人", UNITS[n]),
            votes: vec![pb::CommitteeVote {
                application: app(code),
                choice: choice as i32,
                note: String::new(),
            }],
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// unit `n` votes on the one candidate `code`, with its own token.
pub async fn ballot(
    w: &mut World,
    n: usize,
    code: &str,
    choice: Choice,
) -> Result<tonic::Response<pb::CommitteeBallot>, tonic::Status> {
    let token = member(w, n);
    w.apps
        .cast_committee_ballot(as_(&token, ballot_of(code, n, choice)))
        .await
}

/// unit `n`, chairing, closes the meeting.
pub async fn close(
    w: &mut World,
    n: usize,
) -> Result<tonic::Response<pb::CommitteeMeeting>, tonic::Status> {
    let token = member(w, n);
    w.apps
        .record_committee_meeting(as_(
            &token,
            pb::RecordCommitteeMeetingRequest {
                name: CYCLE.into(),
                request_id: String::new(),
            },
        ))
        .await
}
