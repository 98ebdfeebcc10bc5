//! The rule engine: a subscriber of the log that runs automation rules on ticket events.
//!
//! It reads ticket and rule events in the safe order with a checkpoint of its own, keeps the
//! rules and each ticket as rules see it (its [`Snapshot`]) as of that checkpoint, and for each
//! ticket event asks every enabled rule that listens to it, in position order, whether its
//! conditions hold — on the ticket as the event left it, with the event's comment and changes.
//! For each rule that acts it writes a request (id from the event and the rule) with its
//! checkpoint. The [executor](run_executor) carries requests out outside that transaction: the
//! ticket's part as one `ApplyAutomation` command (`AutomationFired` and what the rule did, by
//! the rule, caused by the event; once per rule and event, whatever is replayed), the rest as
//! mail, webhook deliveries, alerts and routing. A chain of rule-caused events deeper than
//! [`MAX_DEPTH`] stops with `AutomationLoopStopped` on the rule.
//!
//! Time-based rules have no causing event: for each ticket the engine keeps, per such rule, the
//! instant their conditions first hold if nothing happens to the ticket ([`due`]), and the
//! deadline scheduler turns due instants into requests the same executor carries out, caused by
//! the ticket's version then (once per rule and version, and only if it is still current).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::alert::{AlertKind, AlertSubject};
use docket_domain::automation::eval::{CommentFacts, Happened, Snapshot, holds, value_of};
use docket_domain::automation::{
    Action, AutomationCommand, AutomationError, AutomationEvent, Field, MAX_DEPTH, Recipient,
    RuleDefinition, Trigger, TriggerEvent,
};
use docket_domain::ticket::{ApplyAutomation, AutomationStep, TicketCommand, TicketEvent};
use docket_domain::values::{CommentBody, CommentId, Reason, Tag, TeamId, TicketNumber, UserId};
use docket_projections::fold::decode;
use docket_projections::log::{EventMetadata, Metadata, RecordedEvent};
use docket_projections::registry::Projector;
use docket_projections::runtime::{Projection, ProjectionError};
use serde_json::{Value, json};
use sqlx::PgConnection;
use sqlx::types::Json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::app::bus::CommandError;
use crate::app::caller::Origin;
use crate::app::{App, AppError, accounts, alerts};

pub mod due;

pub static AUTOMATION: Projector = Projector::of::<Engine>();

/// Request ids: UUIDv5 of the causing event and the rule.
const REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0x5a0e_2c41_8b7d_4f19_9e63_1d2a_7c48_b6f0);

#[derive(Debug, Clone, Copy, Default)]
pub struct Engine;

#[derive(Debug, Clone)]
struct KnownRule {
    id: Uuid,
    created_at: DateTime<Utc>,
    version: i64,
    definition: RuleDefinition,
}

impl KnownRule {
    fn runs_on_time(&self) -> bool {
        self.definition.enabled && self.definition.trigger == Trigger::Time
    }
}

/// A ticket as the engine keeps it: what rules see, and the version and automation depth of its
/// last event (what a time-based rule acting on it now is caused by).
#[derive(Debug, Clone)]
struct KnownTicket {
    snapshot: Snapshot,
    version: i64,
    depth: i32,
    /// When its last event happened: from when its time-based rules are due.
    at: DateTime<Utc>,
}

/// How deep in a chain of rule-caused events `event` is (0: not caused by a rule).
fn depth_of(metadata: &EventMetadata) -> i32 {
    metadata
        .automation_depth
        .as_deref()
        .and_then(|d| d.parse::<i32>().ok())
        .unwrap_or(0)
}

/// What the triggers call the event.
fn triggers_of(event: &TicketEvent) -> Vec<TriggerEvent> {
    event
        .kinds()
        .iter()
        .filter_map(|kind| kind.as_str().parse::<TriggerEvent>().ok())
        .collect()
}

/// The ticket as rules see it after `event`, from what it was before.
fn fold(before: Option<&Snapshot>, event: &TicketEvent) -> Option<Snapshot> {
    let at = event.occurred_at();
    if let TicketEvent::TicketCreated {
        customer_id,
        subject,
        description,
        priority,
        category,
        tags,
        ..
    } = event
    {
        return Some(Snapshot {
            status: "new".into(),
            priority: priority.as_str().into(),
            category: category.as_ref().map(|c| c.as_str().to_string()),
            tags: tags.to_strings(),
            assignee_id: None,
            team_id: None,
            customer_id: customer_id.0,
            subject: subject.as_str().into(),
            description: description.as_str().into(),
            created_at: at,
            updated_at: at,
            status_changed_at: at,
            clocks: HashMap::new(),
        });
    }
    let mut ticket = before?.clone();
    let clock = |ticket: &mut Snapshot, metric: &str, state: &str| {
        ticket.clocks.insert(metric.to_string(), state.to_string());
    };
    match event {
        TicketEvent::TicketDetailsUpdated {
            subject,
            description,
            category,
            tags,
            ..
        } => {
            if let Some(subject) = subject {
                ticket.subject = subject.as_str().into();
            }
            if let Some(description) = description {
                ticket.description = description.as_str().into();
            }
            if let Some(category) = category {
                ticket.category = category.as_ref().map(|c| c.as_str().to_string());
            }
            if let Some(tags) = tags {
                ticket.tags = tags.to_strings();
            }
            ticket.updated_at = at;
        }
        TicketEvent::TicketPriorityChanged { to, .. } => {
            ticket.priority = to.as_str().into();
            ticket.updated_at = at;
        }
        TicketEvent::TicketStatusChanged { to, .. } => {
            ticket.status = to.as_str().into();
            ticket.status_changed_at = at;
            ticket.updated_at = at;
        }
        TicketEvent::TicketAssigned { assignee_id, .. } => {
            ticket.assignee_id = Some(assignee_id.0);
            ticket.updated_at = at;
        }
        TicketEvent::TicketUnassigned { .. } => {
            ticket.assignee_id = None;
            ticket.updated_at = at;
        }
        TicketEvent::TicketTeamAssigned { team_id, .. } => {
            ticket.team_id = team_id.map(|t| t.0);
            ticket.updated_at = at;
        }
        TicketEvent::TicketEscalated { .. } | TicketEvent::CommentAdded { .. } => {
            ticket.updated_at = at;
        }
        TicketEvent::SlaClockStarted { metric, .. }
        | TicketEvent::SlaClockResumed { metric, .. } => {
            clock(&mut ticket, metric.as_str(), "running")
        }
        TicketEvent::SlaClockPaused { metric, .. } => clock(&mut ticket, metric.as_str(), "paused"),
        TicketEvent::SlaWarning { metric, .. } => clock(&mut ticket, metric.as_str(), "at_risk"),
        TicketEvent::SlaBreached { metric, .. } => clock(&mut ticket, metric.as_str(), "breached"),
        TicketEvent::SlaClockStopped { metric, met, .. } => clock(
            &mut ticket,
            metric.as_str(),
            if *met { "met" } else { "breached" },
        ),
        _ => {}
    }
    Some(ticket)
}

/// The fields an event changed, each before and after.
fn changes(
    before: Option<&Snapshot>,
    after: &Snapshot,
    now: DateTime<Utc>,
) -> Vec<(Field, Value, Value)> {
    let Some(before) = before else {
        return vec![];
    };
    let none = Happened::default();
    [
        Field::Status,
        Field::Priority,
        Field::Category,
        Field::Tags,
        Field::AssigneeId,
        Field::TeamId,
        Field::Subject,
        Field::Description,
    ]
    .into_iter()
    .filter_map(|field| {
        let (was, is) = (
            value_of(field, before, &none, now),
            value_of(field, after, &none, now),
        );
        (was != is).then_some((field, was, is))
    })
    .collect()
}

/// What a rule is asked to do to a ticket, for the executor.
struct RuleRequest<'a> {
    id: Uuid,
    ticket_id: Uuid,
    rule_id: Uuid,
    rule_name: &'a str,
    rule_version: i64,
    cause_sequence: i64,
    cause: &'a str,
    depth: i32,
    actions: &'a [Action],
}

/// Queues a request for the [executor](run_executor); one already queued under its id stays.
async fn queue_request(
    conn: &mut PgConnection,
    request: &RuleRequest<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO automation_requests
                (id, ticket_id, rule_id, rule_name, rule_version, cause_sequence, cause, depth,
                 actions)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(request.id)
    .bind(request.ticket_id)
    .bind(request.rule_id)
    .bind(request.rule_name)
    .bind(request.rule_version)
    .bind(request.cause_sequence)
    .bind(request.cause)
    .bind(request.depth)
    .bind(Json(request.actions))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A rule set off by an event in this batch (the rule as it stood then).
struct SetOff {
    id: Uuid,
    ticket_id: Uuid,
    rule: KnownRule,
    cause_sequence: i64,
    cause: String,
    depth: i32,
}

impl Projection for Engine {
    const NAME: &'static str = "automation";
    const METADATA: Metadata = Metadata::Read;
    const AGGREGATE_TYPES: &'static [&'static str] = &["ticket", "automation_rule"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &[
        "automation_engine_rules",
        "automation_engine_tickets",
        "automation_due",
    ];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut rules: Vec<KnownRule> =
            sqlx::query_as::<_, (Uuid, DateTime<Utc>, i64, Json<RuleDefinition>)>(
                "SELECT id, created_at, version, definition FROM automation_engine_rules",
            )
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|(id, created_at, version, Json(definition))| KnownRule {
                id,
                created_at,
                version,
                definition,
            })
            .collect();
        let mut ticket_ids: Vec<Uuid> = events
            .iter()
            .filter(|e| e.aggregate_type == "ticket")
            .filter_map(|e| Uuid::parse_str(&e.aggregate_id).ok())
            .collect();
        ticket_ids.sort_unstable();
        ticket_ids.dedup();
        let timed_before = rules.iter().any(KnownRule::runs_on_time);
        let mut tickets: HashMap<Uuid, KnownTicket> =
            sqlx::query_as::<_, (Uuid, Json<Snapshot>, i64, i32)>(
                "SELECT id, snapshot, version, depth FROM automation_engine_tickets
                  WHERE id = ANY($1)",
            )
            .bind(&ticket_ids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|(id, Json(snapshot), version, depth)| {
                let at = snapshot.updated_at;
                (
                    id,
                    KnownTicket {
                        snapshot,
                        version,
                        depth,
                        at,
                    },
                )
            })
            .collect();
        let starts_after: i64 = sqlx::query_scalar(
            "SELECT from_position FROM subscriber_starts WHERE subscriber = 'automation'",
        )
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or(0);
        // When the rules last changed in this batch (a stopped loop changes none).
        let mut rules_changed: Option<DateTime<Utc>> = None;
        let mut requests: Vec<SetOff> = Vec::new();
        for event in events {
            let id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|e| ProjectionError::unapplicable(event, e))?;
            if event.aggregate_type == "automation_rule" {
                let changed_at = match decode::<AutomationEvent>(event)? {
                    AutomationEvent::AutomationRuleCreated {
                        definition,
                        occurred_at,
                        ..
                    } => {
                        rules.push(KnownRule {
                            id,
                            created_at: occurred_at,
                            version: event.sequence,
                            definition,
                        });
                        occurred_at
                    }
                    AutomationEvent::AutomationRuleUpdated {
                        definition,
                        occurred_at,
                        ..
                    } => {
                        if let Some(rule) = rules.iter_mut().find(|r| r.id == id) {
                            rule.definition = definition;
                            rule.version = event.sequence;
                        }
                        occurred_at
                    }
                    AutomationEvent::AutomationRuleDeleted { occurred_at, .. } => {
                        rules.retain(|r| r.id != id);
                        occurred_at
                    }
                    AutomationEvent::AutomationLoopStopped { .. } => continue,
                };
                rules_changed = Some(changed_at);
                rules.sort_by_key(|r| (r.definition.position, r.created_at, r.id));
                continue;
            }
            let ticket_event: TicketEvent = decode(event)?;
            let before = tickets.get(&id).map(|known| known.snapshot.clone());
            let Some(after) = fold(before.as_ref(), &ticket_event) else {
                continue;
            };
            let metadata: EventMetadata = event.metadata();
            let now = ticket_event.occurred_at();
            tickets.insert(
                id,
                KnownTicket {
                    snapshot: after.clone(),
                    version: event.sequence,
                    depth: depth_of(&metadata),
                    at: now,
                },
            );
            let triggers = triggers_of(&ticket_event);
            if triggers.is_empty() || event.global_position <= starts_after {
                continue;
            }
            let happened = Happened {
                comment: match &ticket_event {
                    TicketEvent::CommentAdded {
                        body,
                        internal,
                        author,
                        ..
                    } => Some(CommentFacts {
                        body: body.as_str().into(),
                        internal: *internal,
                        author_role: author.role.as_str().into(),
                    }),
                    _ => None,
                },
                changes: changes(before.as_ref(), &after, now),
            };
            let depth = depth_of(&metadata) + 1;
            for rule in &rules {
                let definition = &rule.definition;
                if !definition.enabled
                    || !triggers.iter().any(|t| definition.listens_to(*t))
                    || !holds(&definition.conditions, &after, &happened, now)
                {
                    continue;
                }
                requests.push(SetOff {
                    id: Uuid::new_v5(
                        &REQUEST_NAMESPACE,
                        format!("{}/{}/{}", event.aggregate_id, event.sequence, rule.id).as_bytes(),
                    ),
                    ticket_id: id,
                    rule: rule.clone(),
                    cause_sequence: event.sequence,
                    cause: event.event_type.clone(),
                    depth,
                });
            }
        }
        if rules_changed.is_some() {
            sqlx::query("DELETE FROM automation_engine_rules")
                .execute(&mut *conn)
                .await?;
            for rule in &rules {
                sqlx::query(
                    "INSERT INTO automation_engine_rules (id, position, created_at, version, definition)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(rule.id)
                .bind(rule.definition.position)
                .bind(rule.created_at)
                .bind(rule.version)
                .bind(Json(&rule.definition))
                .execute(&mut *conn)
                .await?;
            }
        }
        // Every ticket here is one this batch touched: one write for all of them.
        if !tickets.is_empty() {
            sqlx::query(
                "INSERT INTO automation_engine_tickets (id, snapshot, version, depth)
                 SELECT * FROM UNNEST($1::uuid[], $2::jsonb[], $3::bigint[], $4::int[])
                 ON CONFLICT (id) DO UPDATE
                    SET snapshot = EXCLUDED.snapshot, version = EXCLUDED.version,
                        depth = EXCLUDED.depth",
            )
            .bind(tickets.keys().copied().collect::<Vec<_>>())
            .bind(
                tickets
                    .values()
                    .map(|known| Json(&known.snapshot))
                    .collect::<Vec<_>>(),
            )
            .bind(
                tickets
                    .values()
                    .map(|known| known.version)
                    .collect::<Vec<_>>(),
            )
            .bind(
                tickets
                    .values()
                    .map(|known| known.depth)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
        }
        let timed: Vec<&KnownRule> = rules.iter().filter(|r| r.runs_on_time()).collect();
        match rules_changed {
            Some(at) if timed_before || !timed.is_empty() => {
                due::reckon_all(conn, &timed, at).await?;
            }
            _ if !timed.is_empty() => {
                let touched: Vec<(Uuid, &KnownTicket)> =
                    tickets.iter().map(|(id, known)| (*id, known)).collect();
                due::reckon(conn, &timed, &touched).await?;
            }
            _ => {}
        }
        for set_off in &requests {
            let request = RuleRequest {
                id: set_off.id,
                ticket_id: set_off.ticket_id,
                rule_id: set_off.rule.id,
                rule_name: &set_off.rule.definition.name,
                rule_version: set_off.rule.version,
                cause_sequence: set_off.cause_sequence,
                cause: &set_off.cause,
                depth: set_off.depth,
                actions: &set_off.rule.definition.actions,
            };
            queue_request(conn, &request).await?;
        }
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct Requested {
    id: Uuid,
    ticket_id: Uuid,
    rule_id: Uuid,
    rule_name: String,
    rule_version: i64,
    cause_sequence: i64,
    cause: String,
    depth: i32,
    actions: Json<Vec<Action>>,
}

/// How often the executor looks without being woken.
const POLL: Duration = Duration::from_secs(1);

/// Carries out what the engine decided. Every process may run it: a request carried out twice
/// acts once (the ticket remembers the last event each rule acted on).
pub async fn run_executor(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    let drain = |app: Arc<App>| async move { execute_requested(&app).await };
    let what = "carry out automation requests";
    let bell: fn(&App) -> &tokio::sync::Notify = |app| &app.outbound.automation_wake;
    crate::app::requests::follow(app, &AUTOMATION, Some(bell), POLL, what, shutdown, drain).await;
}

async fn execute_requested(app: &App) -> Result<(), AppError> {
    let requested: Vec<Requested> = sqlx::query_as(
        "SELECT id, ticket_id, rule_id, rule_name, rule_version, cause_sequence, cause, depth,
                actions
           FROM automation_requests ORDER BY created_at, cause_sequence LIMIT 100",
    )
    .fetch_all(&app.pool)
    .await?;
    for request in requested {
        if let Err(error) = carry_out(app, &request).await {
            tracing::warn!(request = %request.id, ?error, "an automation request failed; it is dropped");
        }
        sqlx::query("DELETE FROM automation_requests WHERE id = $1")
            .bind(request.id)
            .execute(&app.pool)
            .await?;
    }
    Ok(())
}

/// The metadata of what a rule does: the rule as actor, the event as cause, one level deeper.
fn rule_metadata(request: &Requested) -> EventMetadata {
    let mut metadata = Origin::system("automation").metadata(None);
    metadata.actor_id = Some(request.rule_id.to_string());
    metadata.actor_role = Some("system".into());
    metadata.actor_kind = Some("automation".into());
    metadata.causation_id = Some(format!(
        "ticket/{}/{}",
        request.ticket_id, request.cause_sequence
    ));
    metadata.automation_depth = Some(request.depth.to_string());
    metadata
}

async fn carry_out(app: &App, request: &Requested) -> Result<(), AppError> {
    let cause = format!("{} #{}", request.cause, request.cause_sequence);
    if request.depth > MAX_DEPTH as i32 {
        let command = AutomationCommand::StopLoop {
            ticket_id: request.ticket_id,
            cause,
            depth: request.depth as u32,
            at: app.time.now(),
        };
        return match app
            .automations
            .execute(
                &request.rule_id.to_string(),
                None,
                command,
                rule_metadata(request),
            )
            .await
        {
            Ok(_) | Err(CommandError::Rejected(AutomationError::NotFound)) => Ok(()),
            Err(error) => Err(error.into()),
        };
    }
    let (loaded, _) = app.tickets.load(&request.ticket_id.to_string()).await?;
    let Some(ticket) = loaded.state().cloned() else {
        return Ok(());
    };
    let mut steps = Vec::new();
    let mut after: Vec<&Action> = Vec::new();
    for action in &request.actions.0 {
        let step = match action {
            Action::SetStatus { status } => Some(AutomationStep::SetStatus(*status)),
            Action::SetPriority { priority } => Some(AutomationStep::SetPriority(*priority)),
            Action::AssignAgent { agent_id } => accounts::standing(app, UserId(*agent_id))
                .await?
                .map(AutomationStep::Assign),
            Action::AssignTeam { team_id } => Some(AutomationStep::AssignTeam(TeamId(*team_id))),
            Action::AddTags { tags } | Action::RemoveTags { tags } => {
                let tags: Vec<Tag> = tags.iter().filter_map(|t| Tag::parse(t).ok()).collect();
                Some(if matches!(action, Action::AddTags { .. }) {
                    AutomationStep::AddTags(tags)
                } else {
                    AutomationStep::RemoveTags(tags)
                })
            }
            Action::AddInternalNote { body } | Action::AddPublicReply { body } => {
                CommentBody::parse(body)
                    .ok()
                    .map(|body| AutomationStep::Comment {
                        comment_id: CommentId(Uuid::new_v5(
                            &REQUEST_NAMESPACE,
                            format!("{}/comment/{}", request.id, steps.len()).as_bytes(),
                        )),
                        body,
                        internal: matches!(action, Action::AddInternalNote { .. }),
                    })
            }
            Action::Escalate { reason } => Reason::parse(reason).ok().map(AutomationStep::Escalate),
            Action::Notify {
                users,
                roles,
                team,
                message,
            } => {
                let mut recipients: Vec<UserId> = users.iter().map(|u| UserId(*u)).collect();
                if !roles.is_empty() {
                    let by_role: Vec<Uuid> = sqlx::query_scalar(
                        "SELECT id FROM users_view WHERE active AND role = ANY($1)",
                    )
                    .bind(
                        roles
                            .iter()
                            .map(|r| r.as_str().to_string())
                            .collect::<Vec<_>>(),
                    )
                    .fetch_all(&app.pool)
                    .await?;
                    recipients.extend(by_role.into_iter().map(UserId));
                }
                if *team && let Some(team_id) = ticket.team_id {
                    let members: Vec<Uuid> = sqlx::query_scalar(
                        "SELECT user_id FROM team_members_view WHERE team_id = $1",
                    )
                    .bind(team_id.0)
                    .fetch_all(&app.pool)
                    .await?;
                    recipients.extend(members.into_iter().map(UserId));
                }
                recipients.sort();
                recipients.dedup();
                Some(AutomationStep::Notify {
                    recipients,
                    message: message.clone(),
                })
            }
            Action::Route
            | Action::SendEmail { .. }
            | Action::CallWebhook { .. }
            | Action::RaiseAlert { .. } => {
                after.push(action);
                None
            }
        };
        steps.extend(step);
    }
    let command = TicketCommand::ApplyAutomation(ApplyAutomation {
        rule_id: request.rule_id,
        rule_name: request.rule_name.clone(),
        rule_version: request.rule_version,
        cause_sequence: request.cause_sequence,
        cause: request.cause.clone(),
        steps,
        at: app.time.now(),
    });
    // A time-based rule acts on the ticket as it was when it was due, or not at all: if the
    // ticket has moved on, the engine reckons the rule again on what it is now.
    let expected = (request.cause == due::CAUSE).then_some(request.cause_sequence);
    let committed = match app
        .tickets
        .execute(
            &request.ticket_id.to_string(),
            expected,
            command,
            rule_metadata(request),
        )
        .await
    {
        Ok(committed) => committed,
        Err(CommandError::VersionMismatch { .. }) if expected.is_some() => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    // Already acted on this event (a request carried out before a crash): nothing more.
    if committed.events.is_empty() {
        return Ok(());
    }
    let number = TicketNumber(ticket.number.0).to_string();
    for action in after {
        match action {
            Action::RaiseAlert { severity, title } => {
                let subject = AlertSubject::new(
                    format!("rule:{}:{}", request.rule_id, request.ticket_id),
                    AlertKind::Rule,
                    *severity,
                    title.clone(),
                    Some(format!("{number}: rule \"{}\"", request.rule_name)),
                    Some(request.ticket_id),
                )?;
                alerts::raise_unless_open(app, subject, &request.id.to_string(), "automation")
                    .await?;
            }
            Action::SendEmail { template, to } => {
                send_mail(app, request, &ticket, *template, to).await?;
            }
            Action::CallWebhook { webhook_id } => {
                let message_id = format!("msg_{}", request.id.simple());
                let body = json!({
                    "type": "automation.fired",
                    "timestamp": app.time.now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "data": {"rule_id": request.rule_id, "rule_name": request.rule_name,
                             "ticket_id": request.ticket_id, "ticket_number": number,
                             "cause": request.cause, "status": ticket.status,
                             "priority": ticket.priority},
                });
                sqlx::query(
                    "INSERT INTO webhook_deliveries (id, webhook_id, message_id, event_type, body,
                                                     created_at, next_attempt_at)
                     VALUES ($1, $2, $3, 'automation.fired', $4, now(), now())
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(crate::app::outbound::dispatch::delivery_id(
                    *webhook_id,
                    &message_id,
                ))
                .bind(webhook_id)
                .bind(&message_id)
                .bind(body.to_string())
                .execute(&app.pool)
                .await?;
                app.outbound.wake.notify_one();
            }
            Action::Route => {
                route(app, request, &ticket).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Queues the template's mail to the rule's recipient, once per request and recipient.
async fn send_mail(
    app: &App,
    request: &Requested,
    ticket: &docket_domain::ticket::TicketState,
    template: docket_domain::mail::MailKind,
    to: &Recipient,
) -> Result<(), AppError> {
    let person = match to {
        Recipient::Customer => Some(ticket.customer_id),
        Recipient::Assignee => ticket.assignee_id,
        Recipient::User(id) => Some(UserId(*id)),
        Recipient::TeamLead => match ticket.team_id {
            Some(team) => sqlx::query_scalar::<_, Uuid>(
                "SELECT user_id FROM team_members_view WHERE team_id = $1 AND team_role = 'lead'
                  LIMIT 1",
            )
            .bind(team.0)
            .fetch_optional(&app.pool)
            .await?
            .map(UserId),
            None => None,
        },
    };
    let Some(person) = person else {
        return Ok(());
    };
    let Some(user) = accounts::find_user(app, person).await? else {
        return Ok(());
    };
    let staff = user.role.is_staff();
    let mut context = crate::app::outbound::templates::sample_context(template);
    context["ticket"] = json!({
        "id": request.ticket_id, "number": ticket.number.to_string(),
        "subject": ticket.subject.as_str(), "status": ticket.status.as_str(),
        "priority": ticket.priority.as_str(),
    });
    context["recipient"] = json!({"name": user.full_name, "email": user.email, "staff": staff});
    context["actor"] = json!({"name": request.rule_name});
    let id = Uuid::new_v5(
        &REQUEST_NAMESPACE,
        format!("{}/mail/{}", request.id, person).as_bytes(),
    );
    sqlx::query(
        "INSERT INTO mail_outbox (id, kind, ticket_id, recipient_id, to_address, context, position)
         VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(template.as_str())
    .bind(request.ticket_id)
    .bind(person.0)
    .bind(&user.email)
    .bind(context)
    .execute(&app.pool)
    .await?;
    app.outbound.mail_wake.notify_one();
    Ok(())
}

/// Hands the ticket to the skill router now (within its team, if it has one).
async fn route(
    app: &App,
    request: &Requested,
    ticket: &docket_domain::ticket::TicketState,
) -> Result<(), AppError> {
    let mut turn = crate::app::router::Turn::begin(app).await?;
    let requirements = docket_domain::workforce::routing::RoutingRequirements {
        skill_id: None,
        team_id: ticket.team_id,
    };
    let at = app.time.now();
    let decision = turn.decide(requirements, app.routing_weights, at, None);
    if decision.chosen.is_some() {
        let recorded = turn
            .record(
                app,
                request.ticket_id,
                decision,
                ticket.assignee_id,
                rule_metadata(request),
                at,
            )
            .await;
        if let Err(error) = recorded {
            tracing::warn!(ticket = %request.ticket_id, ?error, "the rule could not route the ticket");
        }
    }
    turn.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_sees_what_an_event_changed() {
        let created = TicketEvent::TicketCreated {
            ticket_id: docket_domain::values::TicketId(Uuid::from_u128(1)),
            number: TicketNumber(1),
            customer_id: UserId(Uuid::from_u128(2)),
            subject: docket_domain::values::Subject::parse("Printer")
                .unwrap_or_else(|e| panic!("{e}")),
            description: docket_domain::values::Description::parse("Smoke")
                .unwrap_or_else(|e| panic!("{e}")),
            priority: docket_domain::Priority::Low,
            category: None,
            tags: docket_domain::values::Tags::default(),
            created_by: docket_domain::Actor::system(),
            occurred_at: Utc::now(),
        };
        let before = fold(None, &created).unwrap_or_else(|| panic!("no ticket"));
        let raised = TicketEvent::TicketPriorityChanged {
            from: docket_domain::Priority::Low,
            to: docket_domain::Priority::High,
            changed_by: docket_domain::Actor::system(),
            occurred_at: Utc::now(),
        };
        let after = fold(Some(&before), &raised).unwrap_or_else(|| panic!("no ticket"));
        assert_eq!(after.priority, "high");
        let changed = changes(Some(&before), &after, Utc::now());
        assert_eq!(
            changed,
            vec![(Field::Priority, json!("low"), json!("high"))]
        );
        assert_eq!(
            triggers_of(&raised),
            vec![TriggerEvent::PriorityChanged, TriggerEvent::TicketUpdated]
        );
    }
}
