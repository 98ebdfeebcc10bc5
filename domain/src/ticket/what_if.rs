//! What-if SLA: a ticket's history re-lived under policies it never had, beside the outcome its
//! log actually recorded. Pure: feed both the same events in log order, then ask for outcomes
//! at an instant.
//!
//! The candidate keeps what people did — opening, edits, status changes, replies — and drops
//! what the recorded SLA caused: its own clock events, and the system's actions (automatic
//! escalations, rule actions), which the candidate policies decide afresh. Deadlines are
//! checked as an ideal scheduler would: at every later event and at the end, so a breach is
//! counted exactly when the recorded one would have been.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;

use super::aggregate::{Ticket, TicketState};
use super::events::{SlaReason, TicketEvent};
use super::sla::{consequences, deadlines};
use crate::sla::{ClockState, SlaCatalog, SlaMetric};
use crate::values::{Priority, Role};

/// How one metric of one ticket turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaOutcome {
    Met,
    Breached,
    /// Still counting (or paused) at the instant asked about.
    Open,
}

impl SlaOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaOutcome::Met => "met",
            SlaOutcome::Breached => "breached",
            SlaOutcome::Open => "open",
        }
    }
}

/// Outcomes of one ticket, per metric. A metric breached in any cycle counts as breached.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TicketOutcomes {
    pub metrics: BTreeMap<SlaMetric, SlaOutcome>,
}

/// Follows a ticket and its SLA through events, remembering every metric that ever breached.
#[derive(Debug, Clone, Default)]
struct Followed {
    ticket: Ticket,
    breached: BTreeSet<SlaMetric>,
}

impl Followed {
    fn record(&mut self, event: TicketEvent) {
        if let TicketEvent::SlaBreached { metric, .. } = &event {
            self.breached.insert(*metric);
        }
        self.ticket.apply(event);
    }

    fn state(&self) -> Option<&TicketState> {
        self.ticket.state()
    }

    fn outcomes(&self, at: DateTime<Utc>) -> Option<TicketOutcomes> {
        let sla = self.state()?.sla.as_ref()?;
        let mut metrics = BTreeMap::new();
        for view in sla.views(at) {
            let outcome = match view.state {
                _ if self.breached.contains(&view.metric) => SlaOutcome::Breached,
                ClockState::Breached => SlaOutcome::Breached,
                ClockState::Met => SlaOutcome::Met,
                ClockState::Running | ClockState::Paused | ClockState::AtRisk => SlaOutcome::Open,
            };
            metrics.insert(view.metric, outcome);
        }
        // A metric whose clock is gone (a cycle that ended) still counts if it breached.
        for metric in &self.breached {
            metrics.insert(*metric, SlaOutcome::Breached);
        }
        Some(TicketOutcomes { metrics })
    }
}

/// The SLA outcome the log recorded.
#[derive(Debug, Clone, Default)]
pub struct RecordedSla {
    followed: Followed,
}

impl RecordedSla {
    pub fn observe(&mut self, event: TicketEvent) {
        self.followed.record(event);
    }

    /// The ticket as the log has it now.
    pub fn state(&self) -> Option<&TicketState> {
        self.followed.state()
    }

    /// Outcomes at `at`; `None` when the log never tracked an SLA for the ticket (it predates
    /// SLA tracking).
    pub fn outcomes(&self, at: DateTime<Utc>) -> Option<TicketOutcomes> {
        self.followed.outcomes(at)
    }
}

/// The same ticket re-lived under candidate policies.
#[derive(Debug, Clone, Default)]
pub struct CandidateSla {
    followed: Followed,
}

impl CandidateSla {
    /// Feeds the next event from the log.
    pub fn observe(&mut self, event: &TicketEvent, catalog: &SlaCatalog) {
        if event.is_sla() || event.actor().role == Role::System {
            return;
        }
        let at = event.occurred_at();
        self.check_deadlines(at);
        self.followed.record(event.clone());
        let Some(after) = self.followed.state() else {
            return;
        };
        let (catalog, reason) = match event {
            TicketEvent::TicketCreated { .. } => (Some(catalog), SlaReason::TicketCreated),
            TicketEvent::TicketDetailsUpdated { .. }
            | TicketEvent::TicketPriorityChanged { .. } => {
                (Some(catalog), SlaReason::TicketChanged)
            }
            _ => (None, SlaReason::TicketChanged),
        };
        for consequence in consequences(after, std::slice::from_ref(event), catalog, reason, at) {
            self.followed.record(consequence);
        }
    }

    /// Records the deadlines passed by `at`, then the outcomes then.
    pub fn outcomes(&mut self, at: DateTime<Utc>) -> Option<TicketOutcomes> {
        self.check_deadlines(at);
        self.followed.outcomes(at)
    }

    fn check_deadlines(&mut self, at: DateTime<Utc>) {
        let passed = match self.followed.state() {
            Some(state) => deadlines(state, at),
            None => return,
        };
        for event in passed {
            self.followed.record(event);
        }
    }

    /// The priority the candidate run ended with (rules are not re-run, so it is the people's).
    pub fn priority(&self) -> Option<Priority> {
        self.followed.state().map(|s| s.priority)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use uuid::Uuid;

    use super::*;
    use crate::sla::{AppliedPolicy, MetricTargets, PriorityTargets};
    use crate::ticket::{
        AddComment, ChangeTicketStatus, CheckSlaDeadlines, OpenTicket, TicketCommand, UserStanding,
    };
    use crate::values::{
        Actor, CommentBody, CommentId, Description, Subject, Tags, TicketId, TicketNumber,
        TicketStatus, UserId,
    };

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn minutes(n: i64) -> DateTime<Utc> {
        t0() + Duration::minutes(n)
    }

    fn customer() -> Actor {
        Actor::new(UserId(Uuid::from_u128(1)), Role::Customer)
    }

    fn agent() -> Actor {
        Actor::new(UserId(Uuid::from_u128(2)), Role::Agent)
    }

    /// One policy for every ticket: respond within `seconds`, resolve within four times that,
    /// escalate after eight times that.
    fn catalog(seconds: u64) -> SlaCatalog {
        let targets = MetricTargets {
            first_response: seconds,
            next_response: seconds,
            resolution: seconds * 4,
            escalation: seconds * 8,
        };
        let mut policy = AppliedPolicy::default_policy();
        policy.policy_id = Uuid::from_u128(7);
        policy.name = format!("{seconds}s");
        policy.targets = PriorityTargets {
            critical: targets,
            high: targets,
            medium: targets,
            low: targets,
        };
        SlaCatalog::new(vec![policy])
    }

    fn open(sla: &SlaCatalog) -> TicketCommand {
        TicketCommand::Open(OpenTicket {
            ticket_id: TicketId(Uuid::from_u128(9)),
            number: TicketNumber(1),
            customer: UserStanding {
                user_id: customer().user_id,
                role: Role::Customer,
                active: true,
            },
            subject: Subject::parse("Printer").unwrap_or_else(|e| panic!("{e}")),
            description: Description::parse("On fire").unwrap_or_else(|e| panic!("{e}")),
            priority: Priority::High,
            category: None,
            tags: Tags::parse::<&str>(&[]).unwrap_or_else(|e| panic!("{e}")),
            sla: sla.clone(),
            actor: customer(),
            at: t0(),
        })
    }

    fn reply(at: DateTime<Utc>) -> TicketCommand {
        TicketCommand::AddComment(AddComment {
            comment_id: CommentId(Uuid::from_u128(at.timestamp_millis() as u128)),
            body: CommentBody::parse("Looking").unwrap_or_else(|e| panic!("{e}")),
            internal: false,
            automated: false,
            actor: agent(),
            at,
        })
    }

    fn resolve(at: DateTime<Utc>) -> TicketCommand {
        TicketCommand::ChangeStatus(ChangeTicketStatus {
            to: TicketStatus::Resolved,
            comment: None,
            actor: agent(),
            at,
        })
    }

    fn check(at: DateTime<Utc>) -> TicketCommand {
        TicketCommand::CheckSlaDeadlines(CheckSlaDeadlines { at })
    }

    /// The log the real aggregate writes for `commands`.
    fn log(commands: &[TicketCommand]) -> Vec<TicketEvent> {
        let mut ticket = Ticket::default();
        let mut events = Vec::new();
        for command in commands {
            let decided = ticket.decide(command).unwrap_or_else(|e| panic!("{e}"));
            for event in decided {
                ticket.apply(event.clone());
                events.push(event);
            }
        }
        events
    }

    fn replay(
        events: &[TicketEvent],
        candidate: &SlaCatalog,
        until: DateTime<Utc>,
    ) -> (TicketOutcomes, TicketOutcomes) {
        let mut recorded = RecordedSla::default();
        let mut relived = CandidateSla::default();
        for event in events {
            relived.observe(event, candidate);
            recorded.observe(event.clone());
        }
        (
            recorded.outcomes(until).unwrap_or_default(),
            relived.outcomes(until).unwrap_or_default(),
        )
    }

    #[test]
    fn a_reply_that_met_a_loose_target_breaches_a_tight_one() {
        // Given a ticket answered after 30 minutes under one-hour targets
        let actual = catalog(3600);
        let events = log(&[open(&actual), reply(minutes(30))]);
        // When re-lived under fifteen-minute targets
        let (recorded, candidate) = replay(&events, &catalog(900), minutes(40));
        // Then the first response flips from met to breached
        assert_eq!(recorded.metrics[&SlaMetric::FirstResponse], SlaOutcome::Met);
        assert_eq!(
            candidate.metrics[&SlaMetric::FirstResponse],
            SlaOutcome::Breached
        );
        // and resolution (one hour under the candidate) is still open at 40 minutes.
        assert_eq!(candidate.metrics[&SlaMetric::Resolution], SlaOutcome::Open);
    }

    #[test]
    fn a_recorded_breach_is_met_under_a_looser_policy_without_the_automatic_escalation() {
        // Given a ticket that breached everything under five-minute targets (escalated by the
        // system at 50 minutes), answered at 55 and resolved after two hours
        let actual = catalog(300);
        let events = log(&[
            open(&actual),
            check(minutes(50)),
            reply(minutes(55)),
            resolve(minutes(120)),
        ]);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, TicketEvent::TicketEscalated { .. }))
        );
        // When re-lived under one-hour targets (resolution 4 h, escalation 8 h)
        let mut relived = CandidateSla::default();
        for event in &events {
            relived.observe(event, &catalog(3600));
        }
        let (recorded, candidate) = replay(&events, &catalog(3600), minutes(180));
        // Then what breached is met, and the candidate never escalated
        for metric in [
            SlaMetric::FirstResponse,
            SlaMetric::Resolution,
            SlaMetric::Escalation,
        ] {
            assert_eq!(
                recorded.metrics[&metric],
                SlaOutcome::Breached,
                "{metric:?}"
            );
            assert_eq!(candidate.metrics[&metric], SlaOutcome::Met, "{metric:?}");
        }
        assert_eq!(
            relived.followed.state().map(|s| s.escalation_level),
            Some(0)
        );
    }

    #[test]
    fn the_same_policies_give_the_same_outcomes() {
        // Given a ticket answered late (20 minutes against 10) and resolved in time
        let actual = catalog(600);
        let events = log(&[open(&actual), reply(minutes(20)), resolve(minutes(30))]);
        // When re-lived under the very same policy
        let (recorded, candidate) = replay(&events, &actual, minutes(60));
        // Then nothing flips
        assert_eq!(recorded, candidate);
        assert_eq!(
            recorded.metrics[&SlaMetric::FirstResponse],
            SlaOutcome::Breached
        );
        assert_eq!(recorded.metrics[&SlaMetric::Resolution], SlaOutcome::Met);
    }

    #[test]
    fn a_ticket_without_recorded_sla_has_no_recorded_outcome() {
        assert_eq!(RecordedSla::default().outcomes(t0()), None);
    }
}
