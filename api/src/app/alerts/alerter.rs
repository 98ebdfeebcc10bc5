//! The alerter: a subscriber of the log that raises an alert when a critical ticket breaches
//! its SLA, a ticket is escalated to level 2 or higher, or Docket disables a webhook endpoint.
//!
//! It reads ticket, webhook and alert events in the safe order with a checkpoint of its own,
//! keeps each ticket's number, subject and priority and the causes that have an unresolved
//! alert (written with its checkpoint), asks the domain which alert an event calls for, and
//! writes a request for it (its id derived from the event) unless its cause has one already.
//! The [raiser](run_raiser) turns requests into `Raise` commands outside that transaction; a
//! request raised twice raises once. An `AlertResolved` frees its cause.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use docket_domain::alert::{
    AlertEvent, AlertSubject, called_for_by_disabled_webhook, called_for_by_ticket,
};
use docket_domain::ticket::TicketEvent;
use docket_domain::values::{Priority, TicketNumber};
use docket_domain::webhook::{DisableReason, WebhookEvent};
use docket_projections::fold::decode;
use docket_projections::log::{Metadata, RecordedEvent};
use docket_projections::registry::Projector;
use docket_projections::runtime::{Projection, ProjectionError};
use sqlx::PgConnection;
use sqlx::types::Json;
use tokio::sync::watch;
use uuid::Uuid;

use super::{ALERT_NAMESPACE, raise_as_system};
use crate::app::App;

pub static ALERTER: Projector = Projector::of::<Alerter>();

#[derive(Debug, Clone, Copy, Default)]
pub struct Alerter;

enum Decoded {
    Ticket(Uuid, TicketEvent),
    Webhook(Uuid, WebhookEvent),
    Alert(Uuid, AlertEvent),
}

fn decoded(event: &RecordedEvent) -> Result<Option<Decoded>, ProjectionError> {
    let id = || {
        Uuid::parse_str(&event.aggregate_id).map_err(|e| ProjectionError::unapplicable(event, e))
    };
    Ok(Some(match event.aggregate_type.as_str() {
        "ticket" => Decoded::Ticket(id()?, decode(event)?),
        "webhook" => Decoded::Webhook(id()?, decode(event)?),
        "alert" => Decoded::Alert(id()?, decode(event)?),
        _ => return Ok(None),
    }))
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Known {
    id: Uuid,
    number: i64,
    subject: String,
    priority: String,
}

impl Projection for Alerter {
    const NAME: &'static str = "alerter";
    const METADATA: Metadata = Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["ticket", "webhook", "alert"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["alerter_tickets", "alerter_causes"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let decoded = events.iter().map(decoded).collect::<Result<Vec<_>, _>>()?;
        let ticket_ids: Vec<Uuid> = decoded
            .iter()
            .filter_map(|d| match d {
                Some(Decoded::Ticket(id, _)) => Some(*id),
                _ => None,
            })
            .collect();
        let mut tickets: HashMap<Uuid, Known> = sqlx::query_as::<_, Known>(
            "SELECT id, number, subject, priority FROM alerter_tickets WHERE id = ANY($1)",
        )
        .bind(&ticket_ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|k| (k.id, k))
        .collect();
        let mut causes: HashMap<String, Uuid> =
            sqlx::query_as::<_, (String, Uuid)>("SELECT cause, alert_id FROM alerter_causes")
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .collect();
        let starts_after: i64 = sqlx::query_scalar(
            "SELECT from_position FROM subscriber_starts WHERE subscriber = 'alerter'",
        )
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or(0);
        let mut requests: Vec<(Uuid, AlertSubject)> = Vec::new();
        let before = causes.len();
        let mut changed_tickets: std::collections::HashSet<Uuid> = Default::default();
        let mut resolved_any = false;
        for (event, decoded) in events.iter().zip(decoded) {
            let called_for = match decoded {
                None => None,
                Some(Decoded::Alert(id, AlertEvent::AlertRaised { subject, .. })) => {
                    causes.insert(subject.cause, id);
                    None
                }
                Some(Decoded::Alert(id, AlertEvent::AlertResolved { .. })) => {
                    let had = causes.len();
                    causes.retain(|_, alert| *alert != id);
                    resolved_any |= causes.len() != had;
                    None
                }
                Some(Decoded::Alert(..)) => None,
                Some(Decoded::Webhook(id, WebhookEvent::WebhookDisabled { reason, .. })) => {
                    let why = match reason {
                        DisableReason::Gone => "it answered 410 Gone".to_string(),
                        DisableReason::Failing { since } => format!(
                            "no delivery succeeded since {}",
                            since.format("%Y-%m-%d %H:%M UTC")
                        ),
                    };
                    called_for_by_disabled_webhook(id, &why)
                }
                Some(Decoded::Webhook(..)) => None,
                Some(Decoded::Ticket(id, ticket_event)) => {
                    if fold_ticket(&mut tickets, id, &ticket_event) {
                        changed_tickets.insert(id);
                    }
                    tickets.get(&id).and_then(|known| {
                        let priority = known.priority.parse().unwrap_or(Priority::Medium);
                        called_for_by_ticket(
                            id,
                            TicketNumber(known.number),
                            &known.subject,
                            priority,
                            &ticket_event,
                        )
                    })
                }
            };
            let Some(subject) = called_for else { continue };
            if event.global_position <= starts_after || causes.contains_key(&subject.cause) {
                continue;
            }
            let alert_id = Uuid::new_v5(
                &ALERT_NAMESPACE,
                format!(
                    "{}@{}/{}/{}",
                    subject.cause, event.aggregate_type, event.aggregate_id, event.sequence
                )
                .as_bytes(),
            );
            causes.insert(subject.cause.clone(), alert_id);
            requests.push((alert_id, subject));
        }
        for known in tickets.values().filter(|k| changed_tickets.contains(&k.id)) {
            sqlx::query(
                "INSERT INTO alerter_tickets (id, number, subject, priority) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET subject = EXCLUDED.subject,
                        priority = EXCLUDED.priority",
            )
            .bind(known.id)
            .bind(known.number)
            .bind(&known.subject)
            .bind(&known.priority)
            .execute(&mut *conn)
            .await?;
        }
        // Most batches raise and resolve nothing: the causes are written only when they moved.
        let raised_any = !requests.is_empty() || causes.len() != before;
        if raised_any || resolved_any {
            sqlx::query("DELETE FROM alerter_causes")
                .execute(&mut *conn)
                .await?;
            let (names, ids): (Vec<String>, Vec<Uuid>) = causes.into_iter().unzip();
            sqlx::query(
                "INSERT INTO alerter_causes (cause, alert_id) SELECT * FROM unnest($1::text[], $2::uuid[])",
            )
            .bind(&names)
            .bind(&ids)
            .execute(&mut *conn)
            .await?;
        }
        for (id, subject) in requests {
            sqlx::query(
                "INSERT INTO alert_requests (id, subject) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(Json(&subject))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Folds what the alerter keeps of a ticket; whether that changed.
fn fold_ticket(tickets: &mut HashMap<Uuid, Known>, id: Uuid, event: &TicketEvent) -> bool {
    match event {
        TicketEvent::TicketCreated {
            number,
            subject,
            priority,
            ..
        } => {
            tickets.insert(
                id,
                Known {
                    id,
                    number: number.0,
                    subject: subject.as_str().to_string(),
                    priority: priority.as_str().to_string(),
                },
            );
            true
        }
        TicketEvent::TicketPriorityChanged { to, .. } => match tickets.get_mut(&id) {
            Some(known) => {
                known.priority = to.as_str().to_string();
                true
            }
            None => false,
        },
        TicketEvent::TicketDetailsUpdated {
            subject: Some(subject),
            ..
        } => match tickets.get_mut(&id) {
            Some(known) => {
                known.subject = subject.as_str().to_string();
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// How often the raiser looks without being woken.
const POLL: Duration = Duration::from_secs(1);

/// Raises what the alerter asked for. Every process may run it: a request raised twice (here
/// and elsewhere, or before a crash) raises one alert, under its id.
pub async fn run_raiser(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    let drain = |app: Arc<App>| async move { raise_requested(&app).await };
    crate::app::requests::follow(
        app,
        &ALERTER,
        None,
        POLL,
        "raise requested alerts",
        shutdown,
        drain,
    )
    .await;
}

async fn raise_requested(app: &App) -> Result<(), crate::app::AppError> {
    let requested: Vec<(Uuid, Json<AlertSubject>)> =
        sqlx::query_as("SELECT id, subject FROM alert_requests ORDER BY created_at LIMIT 100")
            .fetch_all(&app.pool)
            .await?;
    for (id, Json(subject)) in requested {
        raise_as_system(app, id, subject, "alerter").await?;
        sqlx::query("DELETE FROM alert_requests WHERE id = $1")
            .bind(id)
            .execute(&app.pool)
            .await?;
    }
    Ok(())
}
