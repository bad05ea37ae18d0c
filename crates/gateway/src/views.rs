//! Composed views (`qaward.gateway.v1.GatewayService`): a page's worth of reads from the
//! services in one call. Every part is asked for concurrently, with the caller's own token (so
//! each service applies its own rules to its part) and with what is left of the call's deadline;
//! a part that is refused or late is named in `omitted` rather than failing the page. The views
//! decide nothing a service owns: which applications are overdue is the applications service's
//! board; the gateway only gathers.

use std::{
    collections::HashMap,
    future::Future,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use qaward_proto::qaward::{
    applications::v1::{
        self as apb, application_service_client::ApplicationServiceClient as Applications,
    },
    gateway::v1::{self as pb, gateway_service_server::GatewayService},
    notifications::v1::{
        self as npb, notification_service_client::NotificationServiceClient as Notifications,
    },
    reviewers::v1::{self as rpb, reviewer_service_client::ReviewerServiceClient as Reviewers},
    scoring::v1::{self as spb, scoring_service_client::ScoringServiceClient as Scoring},
};
use tonic::{
    Request, Response, Status,
    metadata::{AsciiMetadataValue, MetadataMap},
};

use crate::transcode::code_name;
use qaward_kit::upstream::{Upstream, parse_grpc_timeout};

/// The views, over channels to the four services.
#[derive(Clone)]
pub struct Views {
    channels: HashMap<&'static str, Upstream>,
    max_timeout: Duration,
    /// Counts the caller's rate when the views are called over gRPC (the HTTP port has
    /// counted it already when it calls them in-process).
    rate: Option<std::sync::Arc<crate::edge::Edge>>,
}

/// What every part's request carries from the caller.
struct Call {
    metadata: MetadataMap,
    deadline: Instant,
}

impl Call {
    fn of<T>(request: &Request<T>, max: Duration) -> Call {
        let timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
            .map_or(max, |t| t.min(max));
        let mut metadata = MetadataMap::new();
        for name in ["authorization", "x-request-id", "traceparent", "tracestate"] {
            if let Some(v) = request.metadata().get(name) {
                metadata.insert(name, v.clone());
            }
        }
        Call {
            metadata,
            deadline: Instant::now() + timeout,
        }
    }

    /// A request to a service with the caller's token, request id and trace context, and
    /// what is left of the deadline as its `grpc-timeout`.
    fn request<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        for name in ["authorization", "x-request-id", "traceparent", "tracestate"] {
            if let Some(v) = self.metadata.get(name) {
                let v: AsciiMetadataValue = v.clone();
                r.metadata_mut().insert(name, v);
            }
        }
        qaward_kit::telemetry::inject_context(r.metadata_mut());
        r.set_timeout(self.left());
        r
    }

    fn left(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    }

    /// One part: its answer, or why it is left out.
    async fn part<T>(
        &self,
        part: &str,
        answer: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, pb::Omitted> {
        let omitted = |status: &str, message: String| pb::Omitted {
            part: part.to_string(),
            status: status.to_string(),
            message,
        };
        match tokio::time::timeout_at(self.deadline.into(), answer).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) if Instant::now() >= self.deadline => Err(omitted(
                "DEADLINE_EXCEEDED",
                format!("no answer in time ({})", s.message()),
            )),
            Ok(Err(s)) => Err(omitted(&code_name(s.code()), s.message().to_string())),
            Err(_) => Err(omitted(
                "DEADLINE_EXCEEDED",
                "no answer within the call's deadline".to_string(),
            )),
        }
    }
}

fn invalid(field: &str, description: &str) -> Status {
    qaward_kit::Error::invalid(field, description).to_status()
}

/// `programmes/{p}/cycles/{year}`: (p, year).
fn cycle_of(name: &str, field: &str) -> Result<(String, i64), Status> {
    let bad = || invalid(field, "must be programmes/{programme}/cycles/{year}");
    let rest = name.strip_prefix("programmes/").ok_or_else(bad)?;
    let (p, year) = rest.split_once("/cycles/").ok_or_else(bad)?;
    if !qaward_kit::names::valid_id(p) {
        return Err(bad());
    }
    let year: i64 = year
        .parse()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(bad)?;
    Ok((p.to_string(), year))
}

/// `programmes/{p}/cycles/{year}/applications/{code}`: (cycle name, p, year, code).
fn application_of(name: &str) -> Result<(String, String, i64, String), Status> {
    let bad = || {
        invalid(
            "name",
            "must be programmes/{programme}/cycles/{year}/applications/{credit code}",
        )
    };
    let (cycle, code) = name.split_once("/applications/").ok_or_else(bad)?;
    let (p, year) = cycle_of(cycle, "name").map_err(|_| bad())?;
    if code.len() != 18 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    Ok((cycle.to_string(), p, year, code.to_string()))
}

impl Views {
    pub fn new(
        channels: HashMap<&'static str, Upstream>,
        max_timeout: Duration,
        rate: Option<std::sync::Arc<crate::edge::Edge>>,
    ) -> Views {
        Views {
            channels,
            max_timeout,
            rate,
        }
    }

    /// The caller's rate, over gRPC (the host has admitted the token and the role).
    fn count<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match (
            &self.rate,
            request.extensions().get::<qaward_kit::auth::Caller>(),
        ) {
            (Some(edge), Some(caller)) => edge.count(caller),
            _ => Ok(()),
        }
    }

    fn channel(&self, service: &str) -> Result<Upstream, Status> {
        self.channels
            .get(service)
            .cloned()
            .ok_or_else(|| Status::unavailable(format!("{service} is not behind this gateway")))
    }

    fn applications(&self) -> Result<Applications<Upstream>, Status> {
        Ok(Applications::new(
            self.channel("qaward.applications.v1.ApplicationService")?,
        ))
    }
    fn reviewers(&self) -> Result<Reviewers<Upstream>, Status> {
        Ok(Reviewers::new(
            self.channel("qaward.reviewers.v1.ReviewerService")?,
        ))
    }
    fn scoring(&self) -> Result<Scoring<Upstream>, Status> {
        Ok(Scoring::new(
            self.channel("qaward.scoring.v1.ScoringService")?,
        ))
    }
    fn notifications(&self) -> Result<Notifications<Upstream>, Status> {
        Ok(Notifications::new(
            self.channel("qaward.notifications.v1.NotificationService")?,
        ))
    }
}

#[tonic::async_trait]
impl GatewayService for Views {
    async fn get_dossier(
        &self,
        request: Request<pb::GetDossierRequest>,
    ) -> Result<Response<pb::Dossier>, Status> {
        self.count(&request)?;
        let call = Call::of(&request, self.max_timeout);
        let name = request.into_inner().name;
        let (cycle, _, _, code) = application_of(&name)?;
        // The application is the page: without it there is no dossier, and its refusal
        // (not found, not yours) is the answer.
        let application = self
            .applications()?
            .get_application(call.request(apb::GetApplicationRequest { name: name.clone() }))
            .await?
            .into_inner();

        let mut applications = self.applications()?;
        let groups = call.part(
            "review_groups",
            applications.list_review_groups(call.request(apb::ListReviewGroupsRequest {
                parent: cycle.clone(),
                page_size: 100,
                page_token: String::new(),
            })),
        );
        let mut scoring = self.scoring()?;
        let report = call.part(
            "feedback_report",
            scoring.get_feedback_report(call.request(spb::GetFeedbackReportRequest {
                name: qaward_proto::names::feedback_report(&name),
                include_html: false,
            })),
        );
        let mut notifications = self.notifications()?;
        let messages = call.part(
            "messages",
            notifications.list_inbox_messages(call.request(npb::ListInboxMessagesRequest {
                parent: format!("inboxes/{code}"),
                page_size: 100,
                page_token: String::new(),
                unread_only: false,
            })),
        );
        let (groups, report, messages) = tokio::join!(groups, report, messages);

        let mut dossier = pb::Dossier {
            application: Some(application),
            ..Default::default()
        };
        match groups {
            Ok(r) => {
                dossier.review_groups = r
                    .review_groups
                    .into_iter()
                    .filter(|g| g.applications.contains(&name))
                    .collect();
            }
            Err(o) => dossier.omitted.push(o),
        }
        // The panels of those groups, as the reviewers service shows them to this caller:
        // only released ones go in the dossier.
        let reviewers = self.reviewers()?;
        let panels = dossier
            .review_groups
            .iter()
            .filter(|g| !g.panel.is_empty())
            .map(|g| {
                let mut client = reviewers.clone();
                let request = call.request(rpb::GetPanelRequest {
                    name: g.panel.clone(),
                });
                let call = &call;
                async move { call.part("panels", client.get_panel(request)).await }
            });
        for panel in join_all(panels).await {
            match panel {
                Ok(p) if p.released => dossier.panels.push(p),
                Ok(_) => {}
                Err(o) => dossier.omitted.push(o),
            }
        }
        match report {
            Ok(r) => dossier.feedback_report = Some(r),
            Err(o) => dossier.omitted.push(o),
        }
        match messages {
            Ok(r) => dossier.messages = r.messages,
            Err(o) => dossier.omitted.push(o),
        }
        Ok(Response::new(dossier))
    }

    async fn get_cycle_overview(
        &self,
        request: Request<pb::GetCycleOverviewRequest>,
    ) -> Result<Response<pb::CycleOverview>, Status> {
        self.count(&request)?;
        let call = Call::of(&request, self.max_timeout);
        let name = request.into_inner().name;
        let (programme, _) = cycle_of(&name, "name")?;
        // The board is the page: its refusal is the answer.
        let board = self
            .applications()?
            .get_cycle_board(call.request(apb::GetCycleBoardRequest { name: name.clone() }))
            .await?
            .into_inner();

        let applications = self.applications()?;
        let mut groups_client = applications.clone();
        let groups = call.part(
            "review_groups",
            groups_client.list_review_groups(call.request(apb::ListReviewGroupsRequest {
                parent: name.clone(),
                page_size: 100,
                page_token: String::new(),
            })),
        );
        let mut reports_client = applications.clone();
        let reports = call.part(
            "overdue_reports",
            reports_client.list_overdue_reports(call.request(apb::ListOverdueReportsRequest {
                programme: format!("programmes/{programme}"),
                page_size: 100,
                page_token: String::new(),
            })),
        );
        let mut notifications = self.notifications()?;
        let dead = call.part(
            "dead_letters",
            notifications.list_dead_letters(call.request(npb::ListDeadLettersRequest {
                page_size: 100,
                page_token: String::new(),
            })),
        );
        let complaints = join_all(board.rows.iter().map(|row| {
            let mut client = applications.clone();
            let request = call.request(apb::ListComplaintsRequest {
                parent: row.application.clone(),
                page_size: 100,
                page_token: String::new(),
            });
            let call = &call;
            async move {
                call.part("complaints", client.list_complaints(request))
                    .await
            }
        }));
        let (groups, reports, dead, complaints) = tokio::join!(groups, reports, dead, complaints);

        let mut overview = pb::CycleOverview::default();
        // The applications service decides what is late.
        for row in &board.rows {
            if let Some(e) = &row.overdue {
                overview.overdue.push(pb::OverdueItem {
                    resource: row.application.clone(),
                    due_date: e
                        .inputs
                        .get("due_date")
                        .and_then(|d| qaward_kit::convert::parse_iso_date(d))
                        .map(qaward_kit::convert::date_to_pb),
                    rule: e.rule.clone(),
                    description: e.message.clone(),
                });
            }
        }
        match reports {
            Ok(r) => {
                for report in r.reports {
                    overview.overdue.push(pb::OverdueItem {
                        description: format!(
                            "逾期：{}未提交{}年度自评报告（R-30）",
                            report.enterprise, report.report_year
                        ),
                        resource: report.enterprise,
                        due_date: report.due_date,
                        rule: "R-30".to_string(),
                    });
                }
            }
            Err(o) => overview.omitted.push(o),
        }
        match groups {
            Ok(r) => overview.review_groups = r.review_groups,
            Err(o) => overview.omitted.push(o),
        }
        match dead {
            Ok(r) => overview.dead_letters = r.dead_letters.len() as i32,
            Err(o) => overview.omitted.push(o),
        }
        for c in complaints {
            match c {
                Ok(r) => overview.complaints.extend(r.complaints),
                Err(o) => overview.omitted.push(o),
            }
        }
        overview.board = Some(board);
        Ok(Response::new(overview))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt;

    #[test]
    fn names_are_checked_before_any_service_is_called() {
        assert!(
            application_of("programmes/yunyang/cycles/2027/applications/91500235MA5U00001X")
                .is_ok()
        );
        for bad in [
            "",
            "programmes/yunyang/cycles/2027",
            "programmes/Yunyang/cycles/2027/applications/91500235MA5U00001X",
            "programmes/yunyang/cycles/year/applications/91500235MA5U00001X",
            "programmes/yunyang/cycles/2027/applications/short",
        ] {
            let s = application_of(bad).unwrap_err();
            assert_eq!(s.code(), tonic::Code::InvalidArgument, "{bad}");
            assert_eq!(
                s.get_error_details()
                    .bad_request()
                    .unwrap()
                    .field_violations[0]
                    .field,
                "name"
            );
        }
        assert_eq!(
            code_name(tonic::Code::PermissionDenied),
            "PERMISSION_DENIED"
        );
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
    }
}
