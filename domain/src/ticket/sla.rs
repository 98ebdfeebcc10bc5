//! The ticket's SLA clocks: what each business event means for them, and which deadlines have
//! passed. Pure functions of the ticket's state, the events just decided, the policies in force
//! and the instant; the results are events in the ticket's own log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::aggregate::TicketState;
use super::events::{SlaReason, TicketEvent};
use crate::sla::{AppliedPolicy, Clock, ClockView, SlaCatalog, SlaMetric, TicketFacts};
use crate::values::{Actor, Priority, Reason, Role, TicketStatus};

/// The policy that governs a ticket and its clocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketSla {
    pub policy: AppliedPolicy,
    pub clocks: BTreeMap<SlaMetric, Clock>,
}

impl TicketSla {
    pub fn new(policy: AppliedPolicy) -> Self {
        Self {
            policy,
            clocks: BTreeMap::new(),
        }
    }

    /// Records what an SLA event says; any other event changes nothing.
    pub fn apply(&mut self, event: &TicketEvent) {
        apply(self, event);
    }

    /// Every clock as it shows at `now`.
    pub fn views(&self, now: DateTime<Utc>) -> Vec<ClockView> {
        self.clocks
            .values()
            .map(|clock| clock.view(&self.policy.calendar, self.policy.at_risk_percent, now))
            .collect()
    }
}

fn facts(ticket: &TicketState) -> TicketFacts<'_> {
    TicketFacts {
        priority: ticket.priority,
        category: ticket.category.as_ref().map(|c| c.as_str()),
        tags: ticket.tags.iter().map(|t| t.as_str()).collect(),
        customer: ticket.customer_id,
    }
}

/// Plans SLA events while keeping a working copy of the clocks up to date, so that several
/// business events in one command compose.
struct Planner {
    sla: Option<TicketSla>,
    /// The ticket's priority after the business events: whose targets apply.
    priority: Priority,
    events: Vec<TicketEvent>,
}

impl Planner {
    fn push(&mut self, event: TicketEvent) {
        if let Some(sla) = &mut self.sla {
            apply(sla, &event);
        } else if let TicketEvent::SlaPolicyApplied { policy, .. } = &event {
            self.sla = Some(TicketSla {
                policy: policy.as_ref().clone(),
                clocks: BTreeMap::new(),
            });
        }
        self.events.push(event);
    }

    fn policy(&self) -> Option<&AppliedPolicy> {
        self.sla.as_ref().map(|s| &s.policy)
    }

    fn clock(&self, metric: SlaMetric) -> Option<&Clock> {
        self.sla.as_ref().and_then(|s| s.clocks.get(&metric))
    }

    fn start(
        &mut self,
        metric: SlaMetric,
        cycle: u32,
        target_seconds: u64,
        since: DateTime<Utc>,
        at: DateTime<Utc>,
    ) {
        let Some(policy) = self.policy() else { return };
        let template = Clock {
            metric,
            cycle,
            target_seconds,
            started_at: since,
            elapsed_ms: 0,
            running_since: Some(since),
            due_at: None,
            warn_at: None,
            warned: false,
            breached: false,
            stopped_at: None,
            met: None,
        };
        let (due_at, warn_at) =
            template.schedule(&policy.calendar, since, 0, policy.at_risk_percent);
        self.push(TicketEvent::SlaClockStarted {
            metric,
            cycle,
            target_seconds,
            started_at: since,
            due_at,
            warn_at,
            occurred_at: at,
        });
    }

    fn pause(&mut self, metric: SlaMetric, at: DateTime<Utc>) {
        let (Some(policy), Some(clock)) = (self.policy(), self.clock(metric)) else {
            return;
        };
        if !clock.is_running() || clock.is_stopped() {
            return;
        }
        let event = TicketEvent::SlaClockPaused {
            metric,
            cycle: clock.cycle,
            elapsed_ms: clock.elapsed_at(&policy.calendar, at),
            occurred_at: at,
        };
        self.push(event);
    }

    fn resume(&mut self, metric: SlaMetric, at: DateTime<Utc>) {
        let (Some(policy), Some(clock)) = (self.policy(), self.clock(metric)) else {
            return;
        };
        if clock.is_running() {
            return;
        }
        let (due_at, warn_at) = clock.schedule(
            &policy.calendar,
            at,
            clock.elapsed_ms,
            policy.at_risk_percent,
        );
        let event = TicketEvent::SlaClockResumed {
            metric,
            cycle: clock.cycle,
            due_at,
            warn_at,
            occurred_at: at,
        };
        self.push(event);
    }

    fn stop(&mut self, metric: SlaMetric, at: DateTime<Utc>) {
        let (Some(policy), Some(clock)) = (self.policy(), self.clock(metric)) else {
            return;
        };
        if clock.is_stopped() {
            return;
        }
        let elapsed_ms = clock.elapsed_at(&policy.calendar, at);
        let event = TicketEvent::SlaClockStopped {
            metric,
            cycle: clock.cycle,
            elapsed_ms,
            met: !clock.breached && elapsed_ms <= clock.target_ms(),
            occurred_at: at,
        };
        self.push(event);
    }

    /// Points every clock that still counts at the targets of the current policy and priority.
    fn retarget(&mut self, ticket: &TicketState, at: DateTime<Utc>) {
        let Some(sla) = &self.sla else { return };
        let targets = sla.policy.targets.of(ticket.priority);
        let mut events = Vec::new();
        for clock in sla.clocks.values().filter(|c| !c.is_stopped()) {
            let target_seconds = targets.of(clock.metric);
            if target_seconds == clock.target_seconds {
                continue;
            }
            let retargeted = Clock {
                target_seconds,
                ..clock.clone()
            };
            let (due_at, warn_at) = match clock.running_since {
                Some(since) => retargeted.schedule(
                    &sla.policy.calendar,
                    since,
                    clock.elapsed_ms,
                    sla.policy.at_risk_percent,
                ),
                None => (None, None),
            };
            events.push(TicketEvent::SlaClockRetargeted {
                metric: clock.metric,
                cycle: clock.cycle,
                target_seconds,
                due_at,
                warn_at,
                occurred_at: at,
            });
        }
        for event in events {
            self.push(event);
        }
    }
}

/// The SLA events that follow from `business` events decided on a ticket: the policy applied
/// at creation or re-selected after a change, and clocks started, paused, resumed, retargeted
/// or stopped. `after` is the ticket with the business events applied.
pub(super) fn consequences(
    after: &TicketState,
    business: &[TicketEvent],
    catalog: Option<&crate::sla::SlaCatalog>,
    reason: SlaReason,
    at: DateTime<Utc>,
) -> Vec<TicketEvent> {
    let mut planner = Planner {
        sla: after.sla.clone(),
        priority: after.priority,
        events: Vec::new(),
    };
    // Which policy governs the ticket now.
    if let Some(catalog) = catalog {
        select_policy(&mut planner, after, catalog, reason, at);
    }
    for event in business {
        match event {
            TicketEvent::CommentAdded {
                internal: false,
                automated: false,
                author,
                occurred_at,
                ..
            } => comment(&mut planner, author, *occurred_at),
            TicketEvent::TicketStatusChanged {
                from,
                to,
                occurred_at,
                ..
            } => status(&mut planner, *from, *to, *occurred_at),
            TicketEvent::TicketPriorityChanged { occurred_at, .. } => {
                planner.retarget(after, *occurred_at);
            }
            TicketEvent::TicketCreated { .. }
            | TicketEvent::TicketDetailsUpdated { .. }
            | TicketEvent::TicketAssigned { .. }
            | TicketEvent::TicketUnassigned { .. }
            | TicketEvent::TicketEscalated { .. }
            | TicketEvent::CommentAdded { .. }
            | TicketEvent::SlaPolicyApplied { .. }
            | TicketEvent::SlaClockStarted { .. }
            | TicketEvent::SlaClockPaused { .. }
            | TicketEvent::SlaClockResumed { .. }
            | TicketEvent::SlaClockRetargeted { .. }
            | TicketEvent::SlaClockStopped { .. }
            | TicketEvent::SlaWarning { .. }
            | TicketEvent::SlaBreached { .. }
            | TicketEvent::EscalationRuleTriggered { .. }
            | TicketEvent::AutomationFired { .. }
            | TicketEvent::NotificationRequested { .. }
            | TicketEvent::TicketRouted { .. }
            | TicketEvent::TicketTeamAssigned { .. }
            | TicketEvent::TicketFollowed { .. }
            | TicketEvent::TicketUnfollowed { .. } => {}
        }
    }
    planner.events
}

fn select_policy(
    planner: &mut Planner,
    ticket: &TicketState,
    catalog: &SlaCatalog,
    reason: SlaReason,
    at: DateTime<Utc>,
) {
    let selected = catalog.select(&facts(ticket));
    match planner.sla.as_ref().map(|s| s.policy.clone()) {
        // A ticket from before SLA tracking gets its clocks only when asked to (a backfill).
        None if reason == SlaReason::TicketChanged => {}
        None => {
            // A new ticket (or a backfilled one): its clocks run from its creation.
            let reason = if reason == SlaReason::TicketCreated {
                reason
            } else {
                SlaReason::Backfill
            };
            let targets = selected.targets.of(ticket.priority);
            planner.push(TicketEvent::SlaPolicyApplied {
                policy: Box::new(selected),
                reason,
                occurred_at: at,
            });
            if ticket.status.is_finished() {
                return;
            }
            for metric in [
                SlaMetric::FirstResponse,
                SlaMetric::Resolution,
                SlaMetric::Escalation,
            ] {
                planner.start(metric, 1, targets.of(metric), ticket.created_at, at);
            }
            if planner.policy().is_some_and(|p| p.pauses_in(ticket.status)) {
                for metric in [SlaMetric::Resolution, SlaMetric::Escalation] {
                    planner.pause(metric, at);
                }
            }
        }
        Some(current)
            if current.policy_id != selected.policy_id || current.version != selected.version =>
        {
            planner.push(TicketEvent::SlaPolicyApplied {
                policy: Box::new(selected),
                reason,
                occurred_at: at,
            });
            planner.retarget(ticket, at);
        }
        Some(_) => {}
    }
}

fn comment(planner: &mut Planner, author: &Actor, at: DateTime<Utc>) {
    match author.role {
        // A person on staff answered in public: response clocks are met.
        role if role.works_tickets() => {
            planner.stop(SlaMetric::FirstResponse, at);
            planner.stop(SlaMetric::NextResponse, at);
        }
        // The customer wrote and waits: after the first answer, each message that finds no
        // next-response clock running starts one (the oldest unanswered message counts).
        Role::Customer => {
            let answered = planner
                .clock(SlaMetric::FirstResponse)
                .is_some_and(|c| c.is_stopped());
            let waiting = planner
                .clock(SlaMetric::NextResponse)
                .is_some_and(|c| !c.is_stopped());
            if answered && !waiting {
                let cycle = planner
                    .clock(SlaMetric::NextResponse)
                    .map_or(1, |c| c.cycle + 1);
                let target = planner
                    .policy()
                    .map(|p| p.targets.of(planner.priority).of(SlaMetric::NextResponse));
                if let Some(target) = target {
                    planner.start(SlaMetric::NextResponse, cycle, target, at, at);
                }
            }
        }
        _ => {}
    }
}

fn status(planner: &mut Planner, from: TicketStatus, to: TicketStatus, at: DateTime<Utc>) {
    let Some(policy) = planner.policy().cloned() else {
        return;
    };
    let pausable = [SlaMetric::Resolution, SlaMetric::Escalation];
    if to.is_finished() {
        for metric in SlaMetric::ALL {
            planner.stop(metric, at);
        }
        return;
    }
    if from.is_finished() {
        // Reopened: the same resolution clock carries on where it stopped (and escalation, if
        // it had not already fired).
        for metric in pausable {
            let resumable = planner.clock(metric).is_some_and(|c| {
                c.is_stopped() && !(metric == SlaMetric::Escalation && c.breached)
            });
            if resumable {
                planner.resume(metric, at);
            }
        }
        if policy.pauses_in(to) {
            for metric in pausable {
                planner.pause(metric, at);
            }
        }
        return;
    }
    match (policy.pauses_in(from), policy.pauses_in(to)) {
        (false, true) => {
            for metric in pausable {
                planner.pause(metric, at);
            }
        }
        (true, false) => {
            for metric in pausable {
                planner.resume(metric, at);
            }
        }
        _ => {}
    }
}

/// Records what an SLA event says on the clocks. Only assigns: every figure is in the event.
pub(super) fn apply(sla: &mut TicketSla, event: &TicketEvent) {
    match event {
        TicketEvent::SlaPolicyApplied { policy, .. } => sla.policy = policy.as_ref().clone(),
        TicketEvent::SlaClockStarted {
            metric,
            cycle,
            target_seconds,
            started_at,
            due_at,
            warn_at,
            ..
        } => {
            sla.clocks.insert(
                *metric,
                Clock {
                    metric: *metric,
                    cycle: *cycle,
                    target_seconds: *target_seconds,
                    started_at: *started_at,
                    elapsed_ms: 0,
                    running_since: Some(*started_at),
                    due_at: *due_at,
                    warn_at: *warn_at,
                    warned: false,
                    breached: false,
                    stopped_at: None,
                    met: None,
                },
            );
        }
        TicketEvent::SlaClockPaused {
            metric, elapsed_ms, ..
        } => {
            if let Some(clock) = sla.clocks.get_mut(metric) {
                clock.elapsed_ms = *elapsed_ms;
                clock.running_since = None;
                clock.due_at = None;
                clock.warn_at = None;
            }
        }
        TicketEvent::SlaClockResumed {
            metric,
            due_at,
            warn_at,
            occurred_at,
            ..
        } => {
            if let Some(clock) = sla.clocks.get_mut(metric) {
                clock.running_since = Some(*occurred_at);
                clock.due_at = *due_at;
                clock.warn_at = *warn_at;
                clock.stopped_at = None;
                clock.met = None;
            }
        }
        TicketEvent::SlaClockRetargeted {
            metric,
            target_seconds,
            due_at,
            warn_at,
            ..
        } => {
            if let Some(clock) = sla.clocks.get_mut(metric) {
                clock.target_seconds = *target_seconds;
                clock.due_at = *due_at;
                clock.warn_at = *warn_at;
            }
        }
        TicketEvent::SlaClockStopped {
            metric,
            elapsed_ms,
            met,
            occurred_at,
            ..
        } => {
            if let Some(clock) = sla.clocks.get_mut(metric) {
                clock.elapsed_ms = *elapsed_ms;
                clock.running_since = None;
                clock.stopped_at = Some(*occurred_at);
                clock.met = Some(*met);
                clock.due_at = None;
                clock.warn_at = None;
            }
        }
        TicketEvent::SlaWarning { metric, .. } => {
            if let Some(clock) = sla.clocks.get_mut(metric) {
                clock.warned = true;
            }
        }
        TicketEvent::SlaBreached { metric, .. } => {
            if let Some(clock) = sla.clocks.get_mut(metric) {
                clock.breached = true;
            }
        }
        TicketEvent::TicketCreated { .. }
        | TicketEvent::TicketDetailsUpdated { .. }
        | TicketEvent::TicketPriorityChanged { .. }
        | TicketEvent::TicketStatusChanged { .. }
        | TicketEvent::TicketAssigned { .. }
        | TicketEvent::TicketUnassigned { .. }
        | TicketEvent::TicketEscalated { .. }
        | TicketEvent::CommentAdded { .. }
        | TicketEvent::EscalationRuleTriggered { .. }
        | TicketEvent::AutomationFired { .. }
        | TicketEvent::NotificationRequested { .. }
        | TicketEvent::TicketRouted { .. }
        | TicketEvent::TicketTeamAssigned { .. }
        | TicketEvent::TicketFollowed { .. }
        | TicketEvent::TicketUnfollowed { .. } => {}
    }
}

/// The deadlines that have passed by `at` and are not yet recorded: a warning when a clock
/// crosses its at-risk threshold, a breach when it passes its target (each once per cycle),
/// and, when the escalation target passes, an automatic escalation.
pub(super) fn deadlines(ticket: &TicketState, at: DateTime<Utc>) -> Vec<TicketEvent> {
    let Some(sla) = &ticket.sla else {
        return Vec::new();
    };
    let calendar = &sla.policy.calendar;
    let mut events = Vec::new();
    for clock in sla.clocks.values().filter(|c| c.is_running()) {
        let elapsed = clock.elapsed_at(calendar, at);
        if !clock.warned
            && !clock.breached
            && elapsed >= clock.threshold_ms(sla.policy.at_risk_percent)
        {
            events.push(TicketEvent::SlaWarning {
                metric: clock.metric,
                cycle: clock.cycle,
                due_at: clock.due_at,
                occurred_at: at,
            });
        }
        if !clock.breached && elapsed >= clock.target_ms() {
            events.push(TicketEvent::SlaBreached {
                metric: clock.metric,
                cycle: clock.cycle,
                due_at: clock.due_at,
                breached_at: at,
            });
            if clock.metric == SlaMetric::Escalation && !ticket.status.is_finished() {
                let reason = Reason::parse(&format!(
                    "Unresolved past the escalation target of {} under policy \"{}\"",
                    describe_seconds(clock.target_seconds),
                    sla.policy.name
                ))
                .or_else(|_| Reason::parse("Escalation target passed"));
                if let Ok(reason) = reason {
                    events.push(TicketEvent::TicketEscalated {
                        from_level: ticket.escalation_level,
                        to_level: ticket.escalation_level.saturating_add(1),
                        reason,
                        escalated_to: None,
                        escalated_by: Actor::system(),
                        occurred_at: at,
                    });
                }
                // The escalation clock has done its job for this run.
                events.push(TicketEvent::SlaClockStopped {
                    metric: SlaMetric::Escalation,
                    cycle: clock.cycle,
                    elapsed_ms: elapsed,
                    met: false,
                    occurred_at: at,
                });
            }
        }
    }
    events
}

/// `3600` → `1h`, `5400` → `1h 30m`, `45` → `45s`.
fn describe_seconds(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}
