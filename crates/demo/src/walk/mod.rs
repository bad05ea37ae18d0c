//! The cycle, step by step, as the county platform drives it for each of its users: the
//! award office, enterprises, the recommending unit, reviewers, departments, the public. Every
//! decision is the services'; the walk reports it with its rule and its numbers.

mod dossiers;
mod reviews;
mod selection;
mod setup;
mod site_stop;

use crate::door::rid;
use qaward_kit::auth::Role;
use qaward_proto::qaward::{
    applications::v1 as pb,
    common::v1::{Date, Decimal, Explanation},
};
use std::{collections::BTreeMap, path::PathBuf, time::Instant};
use time::{Duration, OffsetDateTime};
use tonic::Status;

use crate::{
    door::{Door, Tokens},
    narrate::Narrator,
    sample::Plan,
};

/// Why the walk stopped.
#[derive(Debug, Clone)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// The reason and rule a service gave with a refusal (`google.rpc.ErrorInfo`).
pub fn reason_and_rule(s: &Status) -> (String, String) {
    tonic_types::StatusExt::get_error_details(s)
        .error_info()
        .map(|i| {
            (
                i.reason.clone(),
                i.metadata.get("rule").cloned().unwrap_or_default(),
            )
        })
        .unwrap_or_default()
}

fn failed(step: &str) -> impl FnOnce(Status) -> Failure + '_ {
    move |s| {
        let (reason, rule) = reason_and_rule(&s);
        Failure(format!(
            "{step}: {:?} {reason} {rule}: {}",
            s.code(),
            s.message()
        ))
    }
}

fn already_there(p: &str) -> Failure {
    Failure(format!(
        "programme {p} already exists on this server: the demo has run here before. Start \
         `qaward serve` on a fresh data directory (or database), or pass --programme with \
         another id"
    ))
}

/// What the cycle came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// `programmes/{p}/cycles/{year}`.
    pub cycle: String,
    pub vacant: bool,
    /// The entrants (by index in the plan) that became candidates.
    pub candidates: Vec<usize>,
    /// The entrants awarded, once approved.
    pub winners: Vec<usize>,
    /// Every draw made, by name.
    pub draws: Vec<String>,
    /// What the office was told when a tie stood at the cut line.
    pub tie_reported: Option<String>,
    /// Every decision taken on each entrant, in order.
    pub decisions: BTreeMap<usize, Vec<(i32, Explanation)>>,
}

/// The server's time, as the services report it in what they return: the walk never reads
/// its own wall clock for a date it sends. The speed is estimated from the first and the
/// latest stamp; the time runs on from the latest stamp seen and never goes back (a slow
/// answer makes its stamp look older than it is, which must not move the walk's day back).
struct ServerClock {
    first: Option<(OffsetDateTime, Instant)>,
    latest: Option<(OffsetDateTime, Instant)>,
    speed: f64,
    /// The latest time this clock has told: it never tells an earlier one.
    told: std::cell::Cell<Option<OffsetDateTime>>,
}

impl ServerClock {
    fn new() -> ServerClock {
        ServerClock {
            first: None,
            latest: None,
            speed: 1.0,
            told: std::cell::Cell::new(None),
        }
    }

    fn observe(&mut self, t: &Option<prost_types::Timestamp>) {
        let Some(t) = t else { return };
        let Ok(at) = OffsetDateTime::from_unix_timestamp(t.seconds) else {
            return;
        };
        let now = Instant::now();
        match self.first {
            None => self.first = Some((at, now)),
            Some((t0, r0)) => {
                let real = now.duration_since(r0).as_secs_f64();
                if real > 0.05 {
                    self.speed = (at - t0).as_seconds_f64() / real;
                }
            }
        }
        self.latest = Some((at, now));
    }

    fn now(&self) -> OffsetDateTime {
        let estimate = match self.latest {
            None => OffsetDateTime::now_utc(),
            Some((at, seen)) => {
                at + Duration::seconds_f64(seen.elapsed().as_secs_f64() * self.speed)
            }
        };
        let told = self.told.get().map_or(estimate, |t| t.max(estimate));
        self.told.set(Some(told));
        told
    }

    /// Today in the county (UTC+8), `days` on.
    fn date(&self, days: i64) -> Date {
        let d = (self.now() + Duration::days(days))
            .to_offset(qaward_kit::clock::CHINA)
            .date();
        Date {
            year: d.year(),
            month: d.month() as i32,
            day: d.day() as i32,
        }
    }
}

/// The departments whose opinions the consultation asks for, and the committee's member units,
/// come from the programme's settings.
const UNIT: &str = "qinglong-street";
const OBJECTING_DEPARTMENT: &str = "税务局";

pub struct Walk {
    door: Door,
    tokens: Tokens,
    plan: Plan,
    say: Narrator,
    office: String,
    codes: Vec<String>,
    clock: ServerClock,
    settings: Option<pb::ProgrammeSettings>,
    /// Where exported draw records go, for `qaward draw verify`.
    records: Option<PathBuf>,
    /// Where the draw parties' secrets come from.
    randomness: qaward_kit::clock::SharedRandomness,
    pub outcome: Outcome,
}

fn date_of(d: &Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

fn decimal(v: &Option<Decimal>) -> String {
    v.as_ref().map(|d| d.value.clone()).unwrap_or_default()
}

fn stage_name(stage: i32) -> String {
    pb::ApplicationStage::try_from(stage)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("APPLICATION_STAGE_")
                .to_string()
        })
        .unwrap_or_else(|_| stage.to_string())
}

fn inputs(e: &Explanation) -> String {
    e.inputs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Walk {
    pub fn new(door: Door, tokens: Tokens, plan: Plan, say: Narrator) -> Walk {
        let office = tokens.issue(Role::Office, "office-demo", None, Some(&plan.programme));
        let codes = plan.codes();
        Walk {
            door,
            tokens,
            plan,
            say,
            office,
            codes,
            clock: ServerClock::new(),
            settings: None,
            records: None,
            randomness: std::sync::Arc::new(qaward_kit::clock::OsRandomness),
            outcome: Outcome::default(),
        }
    }

    /// The draw parties' secrets from `randomness` instead of the operating system's generator:
    /// a test that needs the same draws on every run seeds it.
    pub fn with_randomness(mut self, randomness: qaward_kit::clock::SharedRandomness) -> Walk {
        self.randomness = randomness;
        self
    }

    /// The randomness the draw parties' secrets come from.
    pub fn randomness(&self) -> qaward_kit::clock::SharedRandomness {
        self.randomness.clone()
    }

    /// Exported draw records are written here (`draw-N.json`).
    pub fn with_records(mut self, dir: PathBuf) -> Walk {
        self.records = Some(dir);
        self
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The credit code of entrant `i`.
    pub fn code(&self, i: usize) -> &str {
        &self.codes[i]
    }

    /// The server's time now, as estimated from the times it has reported.
    pub fn server_now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The tokens the walk signs with.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn office_token(&self) -> &str {
        &self.office
    }

    /// The programme's supervisor, a party to every draw's entropy.
    pub fn supervisor_token(&self) -> String {
        self.tokens.issue(
            Role::Supervisor,
            "supervisor-demo",
            None,
            Some(&self.plan.programme),
        )
    }

    pub fn door(&self) -> &Door {
        &self.door
    }

    fn cycle(&self) -> String {
        self.outcome.cycle.clone()
    }

    /// The application of entrant `i` in this cycle.
    pub fn app(&self, i: usize) -> String {
        format!("{}/applications/{}", self.cycle(), self.codes[i])
    }

    fn index_of(&self, application: &str) -> Option<usize> {
        self.codes
            .iter()
            .position(|c| application.ends_with(&format!("/applications/{c}")))
    }

    fn name(&self, i: usize) -> &str {
        &self.plan.entrants[i].name
    }

    fn enterprise_token(&self, i: usize) -> String {
        let code = &self.codes[i];
        self.tokens
            .issue(Role::Enterprise, &format!("user-{code}"), Some(code), None)
    }

    fn record(&mut self, a: &pb::Application) {
        if let (Some(i), Some(d)) = (self.index_of(&a.name), &a.last_decision) {
            let list = self.outcome.decisions.entry(i).or_default();
            if list.last().map(|(s, e)| (*s, e)) != Some((a.stage, d)) {
                list.push((a.stage, d.clone()));
            }
        }
    }

    /// The whole cycle: notice to approval (or to the vacancy).
    pub async fn run(&mut self) -> Result<Outcome, Failure> {
        self.set_up().await?;
        self.open_cycle().await?;
        self.applications().await?;
        let accepted = self.accepted();
        self.materials(&accepted).await?;
        self.recheck().await?;
        self.tip_off().await?;
        let passed = self.in_stage(&[pb::ApplicationStage::MaterialsPassed]);
        if passed.is_empty() {
            self.say
                .heading("No application passed the materials review");
        } else {
            self.defence_and_site(&passed).await?;
            if !self.select().await? {
                self.consult_and_notify().await?;
                self.decide().await?;
            }
        }
        self.dossiers().await?;
        Ok(self.outcome.clone())
    }

    pub fn accepted(&self) -> Vec<usize> {
        self.in_stage(&[pb::ApplicationStage::Accepted])
    }

    /// The entrants whose latest decision left them in one of `stages`.
    pub fn in_stage(&self, stages: &[pb::ApplicationStage]) -> Vec<usize> {
        self.outcome
            .decisions
            .iter()
            .filter(|(_, d)| {
                d.last()
                    .is_some_and(|(s, _)| stages.iter().any(|x| *x as i32 == *s))
            })
            .map(|(i, _)| *i)
            .collect()
    }
}
