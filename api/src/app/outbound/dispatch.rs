//! The webhook dispatcher: a subscriber of the log (DESIGN.md decisions 5 and 14). It reads
//! ticket and webhook events in the safe order with a checkpoint of its own, keeps its own copy
//! of the endpoints (`webhook_subscriptions`), and for every ticket event an endpoint is
//! subscribed to writes one row into `webhook_deliveries`, in the same transaction as its
//! checkpoint. Each row's id is derived from the endpoint and the event, so reading a batch again
//! after a crash adds nothing; the deliverer (`delivery`) sends what is here.
//!
//! An event goes to the endpoints subscribed at its place in the log: one created later does
//! not get it, one disabled earlier does not either, however far behind the dispatcher runs.

use std::collections::HashMap;

use chrono::SecondsFormat;
use docket_domain::ticket::TicketEvent;
use docket_domain::values::EventKind;
use docket_domain::webhook::WebhookEvent;
use docket_projections::fold::decode;
use docket_projections::log::{Metadata, RecordedEvent};
use docket_projections::registry::Projector;
use docket_projections::runtime::{Projection, ProjectionError};
use docket_projections::webhooks::{self, Outcome, WebhookRow};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::app::audit::event_data;

/// The namespace of the ids of messages and deliveries (UUID v5).
const OUTBOUND_NAMESPACE: Uuid = Uuid::from_u128(0x6b3f_0c2e_9d41_4a57_8e12_d0c6_e7a1_5b94);

/// The dispatcher as the runtime runs it and `/ready` reports it.
pub static WEBHOOK_DISPATCH: Projector = Projector::of::<WebhookDispatch>();

#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookDispatch;

/// One message as every endpoint subscribed to it gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The `webhook-id` header: the same for every attempt and every endpoint.
    pub id: String,
    pub kind: EventKind,
    /// `{type, timestamp, data}`, exactly as sent.
    pub body: String,
}

impl Message {
    /// The message telling of `event` as `kind`.
    pub fn of(event: &RecordedEvent, payload: &TicketEvent, kind: EventKind) -> Self {
        let seed = format!(
            "{}/{}/{}",
            event.aggregate_id,
            event.sequence,
            kind.as_str()
        );
        let actor = payload.actor();
        let body = serde_json::json!({
            "type": kind.as_str(),
            "timestamp": payload.occurred_at().to_rfc3339_opts(SecondsFormat::Micros, true),
            "data": {
                "ticket_id": event.aggregate_id,
                "event_type": event.event_type,
                "sequence": event.sequence,
                "position": event.global_position,
                "actor": {"id": actor.user_id, "role": actor.role},
                "event": event_data("ticket", event.data()),
            },
        });
        Self {
            id: format!(
                "msg_{}",
                Uuid::new_v5(&OUTBOUND_NAMESPACE, seed.as_bytes()).simple()
            ),
            kind,
            body: body.to_string(),
        }
    }

    /// The id of this message's delivery to `webhook`.
    pub fn delivery_id(&self, webhook: Uuid) -> Uuid {
        delivery_id(webhook, &self.id)
    }
}

pub fn delivery_id(webhook: Uuid, message_id: &str) -> Uuid {
    Uuid::new_v5(
        &OUTBOUND_NAMESPACE,
        format!("{webhook}/{message_id}").as_bytes(),
    )
}

/// Whether `endpoint` gets `payload` as `kind`.
fn wants(endpoint: &WebhookRow, payload: &TicketEvent, kind: EventKind) -> bool {
    endpoint.receives()
        && endpoint.subscribed_to(kind.as_str())
        && (endpoint.include_internal || !payload.is_internal_comment())
}

/// The deliveries of one batch, as columns, and the bodies of their messages (each once).
#[derive(Default)]
struct Outgoing {
    ids: Vec<Uuid>,
    webhooks: Vec<Uuid>,
    messages: Vec<String>,
    kinds: Vec<&'static str>,
    positions: Vec<i64>,
    message_ids: Vec<String>,
    bodies: Vec<String>,
}

impl Outgoing {
    fn push(&mut self, webhook: Uuid, message: &Message, position: i64) {
        if self.message_ids.last() != Some(&message.id) {
            self.message_ids.push(message.id.clone());
            self.bodies.push(message.body.clone());
        }
        self.ids.push(message.delivery_id(webhook));
        self.webhooks.push(webhook);
        self.messages.push(message.id.clone());
        self.kinds.push(message.kind.as_str());
        self.positions.push(position);
    }
}

impl Projection for WebhookDispatch {
    const NAME: &'static str = "webhook_dispatch";
    const METADATA: Metadata = Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["ticket", "webhook"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &[
        "webhook_subscriptions",
        "webhook_deliveries",
        "webhook_messages",
    ];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut endpoints: HashMap<Uuid, Option<WebhookRow>> = webhooks::subscriptions(conn)
            .await?
            .into_iter()
            .map(|row| (row.id, Some(row)))
            .collect();
        let mut changed: Vec<Uuid> = Vec::new();
        let mut deleted: Vec<Uuid> = Vec::new();
        let mut outgoing = Outgoing::default();
        for event in events {
            match event.aggregate_type.as_str() {
                "webhook" => {
                    let id = Uuid::parse_str(&event.aggregate_id)
                        .map_err(|e| ProjectionError::unapplicable(event, e))?;
                    let payload: WebhookEvent = decode(event)?;
                    let row = endpoints.entry(id).or_insert(None);
                    match webhooks::fold(row, id, event.sequence, payload)
                        .map_err(|reason| ProjectionError::unapplicable(event, reason))?
                    {
                        Some(Outcome::Deleted(id)) => {
                            *row = None;
                            deleted.push(id);
                        }
                        Some(Outcome::Kept) if !changed.contains(&id) => changed.push(id),
                        Some(Outcome::Kept) | None => {}
                    }
                }
                "ticket" => {
                    // Most logs have no endpoint listening: nothing to decode then.
                    if !endpoints.values().flatten().any(WebhookRow::receives) {
                        continue;
                    }
                    let payload: TicketEvent = decode(event)?;
                    for kind in payload.kinds() {
                        let message = Message::of(event, &payload, kind);
                        for endpoint in endpoints.values().flatten() {
                            if wants(endpoint, &payload, kind) {
                                outgoing.push(endpoint.id, &message, event.global_position);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let rows: Vec<WebhookRow> = changed
            .iter()
            .filter_map(|id| endpoints.get(id).cloned().flatten())
            .collect();
        webhooks::persist(conn, "webhook_subscriptions", &rows, &deleted).await?;
        if !outgoing.ids.is_empty() {
            // A batch read again after a crash adds nothing.
            sqlx::query(
                "WITH bodies AS (
                    INSERT INTO webhook_messages (id, body)
                    SELECT * FROM UNNEST($6::text[], $7::text[])
                    ON CONFLICT (id) DO NOTHING)
                 INSERT INTO webhook_deliveries
                        (id, webhook_id, message_id, event_type, position, created_at,
                         next_attempt_at)
                 SELECT id, webhook_id, message_id, event_type, position, now(), now()
                   FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[])
                        AS d(id, webhook_id, message_id, event_type, position)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&outgoing.ids)
            .bind(&outgoing.webhooks)
            .bind(&outgoing.messages)
            .bind(&outgoing.kinds)
            .bind(&outgoing.positions)
            .bind(&outgoing.message_ids)
            .bind(&outgoing.bodies)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use docket_domain::values::{CommentBody, CommentId, Role, UserId};
    use docket_domain::{Actor, TicketStatus};
    use docket_projections::log::StoredJson;

    fn recorded(payload: &TicketEvent, sequence: i64) -> RecordedEvent {
        let stored = serde_json::to_string(payload).unwrap_or_default();
        RecordedEvent {
            global_position: 40 + sequence,
            txid: 7,
            aggregate_type: "ticket".into(),
            aggregate_id: "0195f0f0-0000-7000-8000-000000000001".into(),
            sequence,
            event_type: payload.name().into(),
            event_version: "1".into(),
            payload: StoredJson::from_text(stored),
            metadata: StoredJson::from_text("{}".into()),
            recorded_at: Utc::now(),
        }
    }

    fn comment(internal: bool) -> TicketEvent {
        TicketEvent::CommentAdded {
            comment_id: CommentId(Uuid::from_u128(3)),
            body: CommentBody::parse("Looking.").unwrap_or_else(|e| panic!("{e}")),
            internal,
            automated: false,
            author: Actor::new(UserId(Uuid::from_u128(2)), Role::Agent),
            occurred_at: Utc::now(),
        }
    }

    fn endpoint(events: &[&str], include_internal: bool) -> WebhookRow {
        WebhookRow {
            id: Uuid::from_u128(99),
            url: "https://hooks.example.com/".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            description: None,
            enabled: true,
            include_internal,
            disabled: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        }
    }

    #[test]
    fn a_message_is_the_same_every_time_and_differs_per_kind() {
        let resolved = TicketEvent::TicketStatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::Resolved,
            comment: None,
            changed_by: Actor::new(UserId(Uuid::from_u128(2)), Role::Agent),
            occurred_at: Utc::now(),
        };
        let event = recorded(&resolved, 4);
        let once = Message::of(&event, &resolved, EventKind::TicketResolved);
        assert_eq!(
            once,
            Message::of(&event, &resolved, EventKind::TicketResolved)
        );
        let other = Message::of(&event, &resolved, EventKind::TicketStatusChanged);
        assert_ne!(once.id, other.id);
        assert!(once.id.starts_with("msg_"));
        let body: serde_json::Value = serde_json::from_str(&once.body).unwrap_or_default();
        assert_eq!(body["type"], "ticket.resolved");
        assert_eq!(body["data"]["event_type"], "TicketStatusChanged");
        assert_eq!(body["data"]["event"]["to"], "resolved");
        assert_eq!(body["data"]["position"], 44);
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_ne!(
            once.delivery_id(Uuid::from_u128(1)),
            once.delivery_id(Uuid::from_u128(2))
        );
    }

    #[test]
    fn internal_notes_go_only_where_they_are_asked_for() {
        let note = comment(true);
        assert!(!wants(
            &endpoint(&["comment.added"], false),
            &note,
            EventKind::CommentAdded
        ));
        assert!(wants(
            &endpoint(&["comment.added"], true),
            &note,
            EventKind::CommentAdded
        ));
        let reply = comment(false);
        assert!(wants(
            &endpoint(&["comment.added"], false),
            &reply,
            EventKind::CommentAdded
        ));
        assert!(!wants(
            &endpoint(&["ticket.created"], true),
            &reply,
            EventKind::CommentAdded
        ));
        let mut off = endpoint(&["comment.added"], true);
        off.disabled = Some(serde_json::json!({"reason": "gone"}));
        assert!(!wants(&off, &reply, EventKind::CommentAdded));
    }
}
