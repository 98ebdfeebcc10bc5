//! Alerts: something needs a person's attention now — a critical ticket breached its SLA, a
//! ticket went to the second escalation level, the queue stayed too long, a webhook endpoint
//! failed, a projector stopped, or a rule said so.
//!
//! An alert is an aggregate, so who raised, acknowledged and resolved it, and when, is in the
//! log. It names its **cause** (`sla_breach:<ticket>`, `queue_length`, …): whoever raises alerts
//! raises none for a cause while one for it is unresolved.

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{self, Permission};
use crate::ticket::TicketEvent;
use crate::values::{Actor, Note, Priority, Role, TicketNumber, ValidationError};

/// Identifies an alert. Also its aggregate id in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(pub Uuid);

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

crate::values::wire_enum!(
    /// What raised an alert.
    AlertKind, "kind" {
        SlaBreach => "sla_breach",
        Escalation => "escalation",
        QueueLength => "queue_length",
        WebhookFailing => "webhook_failing",
        ProjectorStopped => "projector_stopped",
        Rule => "rule",
    }
);

crate::values::wire_enum!(
    /// How urgent an alert is.
    Severity, "severity" {
        Info => "info",
        Warning => "warning",
        Critical => "critical",
    }
);

crate::values::wire_enum!(
    /// Where an alert stands: raised and unanswered, someone is on it, or over.
    AlertState, "state" {
        Active => "active",
        Acknowledged => "acknowledged",
        Resolved => "resolved",
    }
);

/// What an alert is about: its cause (the key de-duplication goes by), kind, severity, a title
/// and detail for people, and the ticket or endpoint it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSubject {
    pub cause: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<Uuid>,
}

impl AlertSubject {
    pub const MAX_CAUSE: usize = 200;
    pub const MAX_TITLE: usize = 200;
    pub const MAX_DETAIL: usize = 2_000;

    pub fn new(
        cause: impl Into<String>,
        kind: AlertKind,
        severity: Severity,
        title: impl Into<String>,
        detail: Option<String>,
        ticket_id: Option<Uuid>,
    ) -> Result<Self, ValidationError> {
        let cause = cause.into().trim().to_string();
        let title = title.into().trim().to_string();
        if cause.is_empty() || cause.chars().count() > Self::MAX_CAUSE {
            return Err(ValidationError::new(
                "cause",
                format!("must be 1 to {} characters", Self::MAX_CAUSE),
            ));
        }
        if title.is_empty() || title.chars().count() > Self::MAX_TITLE {
            return Err(ValidationError::new(
                "title",
                format!("must be 1 to {} characters", Self::MAX_TITLE),
            ));
        }
        let detail = detail
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty());
        if detail
            .as_ref()
            .is_some_and(|d| d.chars().count() > Self::MAX_DETAIL)
        {
            return Err(ValidationError::new(
                "detail",
                format!("must be at most {} characters", Self::MAX_DETAIL),
            ));
        }
        Ok(Self {
            cause,
            kind,
            severity,
            title,
            detail,
            ticket_id,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertCommand {
    Raise {
        alert_id: AlertId,
        subject: AlertSubject,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Acknowledge {
        note: Option<Note>,
        actor: Actor,
        at: DateTime<Utc>,
    },
    Resolve {
        note: Option<Note>,
        actor: Actor,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertEvent {
    AlertRaised {
        alert_id: AlertId,
        #[serde(flatten)]
        subject: AlertSubject,
        raised_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    AlertAcknowledged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<Note>,
        acknowledged_by: Actor,
        occurred_at: DateTime<Utc>,
    },
    AlertResolved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<Note>,
        resolved_by: Actor,
        occurred_at: DateTime<Utc>,
    },
}

impl AlertEvent {
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            AlertEvent::AlertRaised { occurred_at, .. }
            | AlertEvent::AlertAcknowledged { occurred_at, .. }
            | AlertEvent::AlertResolved { occurred_at, .. } => *occurred_at,
        }
    }
}

crate::event_names!(AlertEvent {
    AlertRaised,
    AlertAcknowledged,
    AlertResolved,
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("no such alert")]
    NotFound,
    #[error("the alert was raised already")]
    AlreadyRaised,
    #[error("the alert is {0} already")]
    AlreadyIs(AlertState),
    #[error("{role} may not {action}")]
    NotPermitted { role: Role, action: &'static str },
}

/// An alert as its events leave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: AlertId,
    pub subject: AlertSubject,
    pub state: AlertState,
    pub raised_by: Actor,
    pub raised_at: DateTime<Utc>,
    pub acknowledged: Option<(Actor, DateTime<Utc>, Option<Note>)>,
    pub resolved: Option<(Actor, DateTime<Utc>, Option<Note>)>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    state: Option<AlertView>,
}

/// People who work tickets answer alerts; the system (rules, the alerter) may too.
fn require(actor: &Actor, action: &'static str) -> Result<(), AlertError> {
    if actor.role == Role::System {
        return Ok(());
    }
    access::require_actor(actor, Permission::WorkTickets, action).map_err(|refusal| {
        AlertError::NotPermitted {
            role: refusal.role,
            action: refusal.action,
        }
    })
}

impl Alert {
    pub fn view(&self) -> Option<&AlertView> {
        self.state.as_ref()
    }

    pub fn decide(&self, command: &AlertCommand) -> Result<Vec<AlertEvent>, AlertError> {
        match (command, &self.state) {
            (
                AlertCommand::Raise {
                    alert_id,
                    subject,
                    actor,
                    at,
                },
                None,
            ) => {
                require(actor, "raise alerts")?;
                Ok(vec![AlertEvent::AlertRaised {
                    alert_id: *alert_id,
                    subject: subject.clone(),
                    raised_by: *actor,
                    occurred_at: *at,
                }])
            }
            (AlertCommand::Raise { .. }, Some(_)) => Err(AlertError::AlreadyRaised),
            (_, None) => Err(AlertError::NotFound),
            (AlertCommand::Acknowledge { note, actor, at }, Some(alert)) => {
                require(actor, "acknowledge alerts")?;
                if alert.state != AlertState::Active {
                    return Err(AlertError::AlreadyIs(alert.state));
                }
                Ok(vec![AlertEvent::AlertAcknowledged {
                    note: note.clone(),
                    acknowledged_by: *actor,
                    occurred_at: *at,
                }])
            }
            (AlertCommand::Resolve { note, actor, at }, Some(alert)) => {
                require(actor, "resolve alerts")?;
                if alert.state == AlertState::Resolved {
                    return Err(AlertError::AlreadyIs(alert.state));
                }
                Ok(vec![AlertEvent::AlertResolved {
                    note: note.clone(),
                    resolved_by: *actor,
                    occurred_at: *at,
                }])
            }
        }
    }

    pub fn from_events<I: IntoIterator<Item = AlertEvent>>(events: I) -> Self {
        let mut alert = Alert::default();
        for event in events {
            alert.apply(event);
        }
        alert
    }
}

impl Aggregate for Alert {
    const TYPE: &'static str = "alert";
    type Command = AlertCommand;
    type Event = AlertEvent;
    type Error = AlertError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decision = self.decide(&command);
        crate::record(self, decision, sink).await
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AlertEvent::AlertRaised {
                alert_id,
                subject,
                raised_by,
                occurred_at,
            } => {
                self.state = Some(AlertView {
                    id: alert_id,
                    subject,
                    state: AlertState::Active,
                    raised_by,
                    raised_at: occurred_at,
                    acknowledged: None,
                    resolved: None,
                });
            }
            AlertEvent::AlertAcknowledged {
                note,
                acknowledged_by,
                occurred_at,
            } => {
                if let Some(alert) = &mut self.state {
                    alert.state = AlertState::Acknowledged;
                    alert.acknowledged = Some((acknowledged_by, occurred_at, note));
                }
            }
            AlertEvent::AlertResolved {
                note,
                resolved_by,
                occurred_at,
            } => {
                if let Some(alert) = &mut self.state {
                    alert.state = AlertState::Resolved;
                    alert.resolved = Some((resolved_by, occurred_at, note));
                }
            }
        }
    }
}

/// The alert a ticket event calls for, given what is known of the ticket at that event: a
/// breach of a critical ticket's SLA, an escalation to level 2 or higher.
pub fn called_for_by_ticket(
    ticket_id: Uuid,
    number: TicketNumber,
    subject: &str,
    priority: Priority,
    event: &TicketEvent,
) -> Option<AlertSubject> {
    let made = match event {
        TicketEvent::SlaBreached { metric, .. } if priority == Priority::Critical => {
            AlertSubject::new(
                format!("sla_breach:{ticket_id}"),
                AlertKind::SlaBreach,
                Severity::Critical,
                format!(
                    "{number} (critical) breached its {} target",
                    metric.as_str()
                ),
                Some(subject.to_string()),
                Some(ticket_id),
            )
        }
        TicketEvent::TicketEscalated {
            to_level, reason, ..
        } if *to_level >= 2 => AlertSubject::new(
            format!("escalation:{ticket_id}"),
            AlertKind::Escalation,
            if *to_level >= 3 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            format!("{number} escalated to level {to_level}"),
            Some(format!("{subject}: {}", reason.as_str())),
            Some(ticket_id),
        ),
        _ => return None,
    };
    made.ok()
}

/// The alert a webhook endpoint disabled by Docket calls for.
pub fn called_for_by_disabled_webhook(webhook_id: Uuid, why: &str) -> Option<AlertSubject> {
    AlertSubject::new(
        format!("webhook:{webhook_id}"),
        AlertKind::WebhookFailing,
        Severity::Warning,
        "A webhook endpoint was disabled",
        Some(format!("Endpoint {webhook_id}: {why}.")),
        None,
    )
    .ok()
}

impl FromStr for AlertId {
    type Err = ValidationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text)
            .map(AlertId)
            .map_err(|_| ValidationError::new("id", "must be a UUID"))
    }
}
