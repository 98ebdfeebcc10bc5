//! The live stream: committed ticket events, and ephemeral typing and presence messages, pushed
//! to WebSocket and Server-Sent-Events clients.
//!
//! One hub per process follows the log in the safe order (woken by `docket_events`
//! notifications), turns each ticket event into a typed message and broadcasts it; every
//! connection filters what its viewer may see. Because each process reads the log itself, a
//! client connected to one process sees changes made through any other. Typing and presence
//! travel through `docket_ephemeral` notifications and are never stored.
//!
//! A client that resumes (`Last-Event-ID`), or falls behind the broadcast, is served from the log
//! up to the hub's watermark and then from the broadcast beyond it, so it misses nothing and gets
//! nothing twice.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use docket_domain::alert::AlertEvent;
use docket_domain::ticket::TicketEvent;
use docket_domain::workforce::agent::AgentEvent;
use docket_projections::fold;
use docket_projections::log::{self, Checkpoint, RecordedEvent};
use docket_projections::notify::{EPHEMERAL_CHANNEL, LogNotifications};
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

use crate::app::Caller;

/// One message for clients.
#[derive(Debug, Clone)]
pub struct LiveMessage {
    /// Where the event sits in the safe order; `None` for ephemeral messages.
    pub checkpoint: Option<Checkpoint>,
    pub ticket_id: Option<Uuid>,
    /// The customer whose ticket it concerns, for authorisation.
    pub customer_id: Option<Uuid>,
    /// Staff only (internal comments, typing on an internal note, presence).
    pub staff_only: bool,
    /// For one person only (a notification), whoever else watches the ticket.
    pub recipient: Option<Uuid>,
    /// The JSON sent to clients: `{"type": …, …}`.
    pub body: Value,
}

impl LiveMessage {
    pub fn kind(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }

    /// The SSE event id: the event's global position.
    pub fn id(&self) -> Option<String> {
        self.checkpoint.map(|c| c.position.to_string())
    }
}

/// Who is watching, and what they asked for.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: Uuid,
    pub staff: bool,
    /// When non-empty, only these tickets (presence always passes).
    pub tickets: HashSet<Uuid>,
}

impl Viewer {
    pub fn of(user: &Caller) -> Self {
        Self {
            user_id: user.id.0,
            staff: user.role.is_staff(),
            tickets: HashSet::new(),
        }
    }

    /// Whether this viewer may and wants to receive `message`.
    pub fn accepts(&self, message: &LiveMessage) -> bool {
        if let Some(recipient) = message.recipient {
            return recipient == self.user_id;
        }
        if message.staff_only && !self.staff {
            return false;
        }
        if !self.staff && message.customer_id != Some(self.user_id) {
            return false;
        }
        match message.ticket_id {
            Some(ticket) if !self.tickets.is_empty() => self.tickets.contains(&ticket),
            _ => true,
        }
    }
}

/// The aggregates whose events reach the stream: tickets, and agents (their status, as
/// `agent_status` presence for staff).
const STREAMED_TYPES: &[&str] = &["ticket", "agent", "alert"];

/// The message type a ticket event becomes on the stream; `None` for bookkeeping that is not
/// streamed (clock starts and pauses, rule triggers).
pub fn message_kind(event: &TicketEvent) -> Option<&'static str> {
    Some(match event {
        TicketEvent::TicketCreated { .. } => "ticket_created",
        TicketEvent::TicketDetailsUpdated { .. }
        | TicketEvent::TicketPriorityChanged { .. }
        | TicketEvent::TicketTeamAssigned { .. }
        | TicketEvent::TicketFollowed { .. }
        | TicketEvent::TicketUnfollowed { .. } => "ticket_updated",
        TicketEvent::TicketAssigned { .. } | TicketEvent::TicketUnassigned { .. } => {
            "ticket_assigned"
        }
        TicketEvent::TicketStatusChanged { .. } => "ticket_status_changed",
        TicketEvent::CommentAdded { .. } => "new_comment",
        TicketEvent::TicketEscalated { .. } => "ticket_escalated",
        TicketEvent::SlaWarning { .. } => "sla_warning",
        TicketEvent::SlaBreached { .. } => "sla_breach",
        TicketEvent::SlaPolicyApplied { .. }
        | TicketEvent::SlaClockStarted { .. }
        | TicketEvent::SlaClockPaused { .. }
        | TicketEvent::SlaClockResumed { .. }
        | TicketEvent::SlaClockRetargeted { .. }
        | TicketEvent::SlaClockStopped { .. }
        | TicketEvent::EscalationRuleTriggered { .. }
        | TicketEvent::AutomationFired { .. }
        | TicketEvent::NotificationRequested { .. }
        | TicketEvent::TicketRouted { .. } => return None,
    })
}

/// An agent's status change, for staff: `{"type": "agent_status", "user_id", "status", …}`.
/// An alert raised, acknowledged or resolved, for staff.
fn alert_message(event: &RecordedEvent) -> Option<LiveMessage> {
    let decoded: AlertEvent = fold::decode(event).ok()?;
    let (state, actor, mut data) = match &decoded {
        AlertEvent::AlertRaised {
            subject, raised_by, ..
        } => (
            "active",
            raised_by,
            json!({"cause": subject.cause, "kind": subject.kind, "severity": subject.severity,
                   "title": subject.title, "detail": subject.detail,
                   "ticket_id": subject.ticket_id}),
        ),
        AlertEvent::AlertAcknowledged {
            note,
            acknowledged_by,
            ..
        } => ("acknowledged", acknowledged_by, json!({"note": note})),
        AlertEvent::AlertResolved {
            note, resolved_by, ..
        } => ("resolved", resolved_by, json!({"note": note})),
    };
    data["alert_id"] = json!(event.aggregate_id);
    data["state"] = json!(state);
    let ticket_id = match &decoded {
        AlertEvent::AlertRaised { subject, .. } => subject.ticket_id,
        _ => None,
    };
    Some(LiveMessage {
        checkpoint: Some(event.checkpoint()),
        ticket_id,
        customer_id: None,
        staff_only: true,
        recipient: None,
        body: json!({
            "type": "alert",
            "position": event.global_position,
            "event_type": event.event_type,
            "ticket_id": ticket_id,
            "status": state,
            "occurred_at": decoded.occurred_at(),
            "recorded_at": event.recorded_at,
            "actor": {"id": actor.user_id, "role": actor.role},
            "data": data,
        }),
    })
}

fn agent_message(event: &RecordedEvent) -> Option<LiveMessage> {
    let decoded: AgentEvent = fold::decode(event).ok()?;
    let AgentEvent::AgentStatusChanged {
        agent_id,
        from,
        to,
        changed_by,
        occurred_at,
    } = decoded
    else {
        return None;
    };
    Some(LiveMessage {
        checkpoint: Some(event.checkpoint()),
        ticket_id: None,
        customer_id: None,
        staff_only: true,
        recipient: None,
        body: json!({
            "type": "agent_status",
            "position": event.global_position,
            "event_type": event.event_type,
            "user_id": agent_id,
            "status": to,
            "occurred_at": occurred_at,
            "recorded_at": event.recorded_at,
            "actor": {"id": changed_by.user_id, "role": changed_by.role},
            "data": {"agent_id": agent_id, "from": from, "to": to},
        }),
    })
}

/// Ticket → customer, remembered so authorising a message rarely needs the database.
#[derive(Default)]
struct Owners {
    known: HashMap<Uuid, Uuid>,
}

impl Owners {
    const CAPACITY: usize = 200_000;

    fn remember(&mut self, ticket: Uuid, owner: Uuid) {
        if self.known.len() >= Self::CAPACITY {
            self.known.clear();
        }
        self.known.insert(ticket, owner);
    }
}

/// The customers of `tickets` (ids as the log spells them), from each one's first event; tickets
/// the log does not know are left out.
///
/// One primary-key probe per ticket, whatever the statistics say: the `LIMIT` keeps the lookup a
/// subquery run per ticket. Written as a join (or `aggregate_id = ANY($1)`), a young log whose
/// statistics predate most of its rows (autovacuum off, or not yet run) was planned as a walk
/// over every ticket's first event: 300-550 ms for a thousand tickets at 100,000, against
/// 5-10 ms by key.
async fn owners_in_log<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    tickets: &[String],
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    let found: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT e.aggregate_id, e.payload -> 'TicketCreated' ->> 'customer_id'
           FROM unnest($1::text[]) AS wanted(id)
           CROSS JOIN LATERAL (
                SELECT aggregate_id, payload FROM events
                 WHERE aggregate_type = 'ticket' AND aggregate_id = wanted.id
                   AND sequence = 1
                 LIMIT 1) e",
    )
    .bind(tickets)
    .fetch_all(executor)
    .await?;
    Ok(found
        .into_iter()
        .filter_map(|(ticket, owner)| {
            Some((
                Uuid::parse_str(&ticket).ok()?,
                Uuid::parse_str(&owner?).ok()?,
            ))
        })
        .collect())
}

/// The hub: one per process.
#[derive(Clone)]
pub struct LiveHub {
    pool: PgPool,
    /// Connections that read the log (see `log::reader_pool`): the follower's and replays'.
    reader: PgPool,
    broadcast: broadcast::Sender<Arc<LiveMessage>>,
    /// Everything at or before this has been broadcast (it is raised *before* a batch goes out).
    watermark: Arc<Mutex<Checkpoint>>,
    owners: Arc<Mutex<Owners>>,
    shutdown: watch::Receiver<bool>,
}

impl LiveHub {
    /// Starts following the log from its current head.
    pub async fn start(
        pool: PgPool,
        notifications: LogNotifications,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Self, sqlx::Error> {
        let head: i64 =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1")
                .fetch_one(&pool)
                .await?;
        let (broadcast, _) = broadcast::channel(8_192);
        let hub = Self {
            reader: log::reader_pool(&pool, 2),
            pool,
            broadcast,
            watermark: Arc::new(Mutex::new(Checkpoint {
                txid: head,
                position: i64::MAX,
            })),
            owners: Arc::new(Mutex::new(Owners::default())),
            shutdown: shutdown.clone(),
        };
        let follower = hub.clone();
        let mut wake = notifications.events();
        let mut released = notifications.projections();
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(1);
            loop {
                if *shutdown.borrow() {
                    return;
                }
                let held_back = match follower.step().await {
                    Ok(held_back) => held_back,
                    Err(error) => {
                        tracing::warn!(%error, "live stream could not read the log");
                        true
                    }
                };
                if held_back {
                    // An older transaction is still open; it is usually a projector's batch,
                    // whose commit notifies `docket_projections`, so that wakes us as well.
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = wake.changed() => {}
                        _ = released.changed() => {}
                        _ = shutdown.changed() => {}
                    }
                    pause = (pause * 2).min(Duration::from_millis(20));
                } else {
                    pause = Duration::from_millis(1);
                    tokio::select! {
                        _ = wake.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        });
        let ephemeral_hub = hub.clone();
        let mut ephemeral = notifications.ephemeral();
        let mut stop = hub.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    received = ephemeral.recv() => match received {
                        Ok(payload) => ephemeral_hub.relay_ephemeral(&payload).await,
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = stop.changed() => return,
                }
            }
        });
        Ok(hub)
    }

    /// Reads and broadcasts one batch; says whether events are held back by an open transaction.
    async fn step(&self) -> Result<bool, sqlx::Error> {
        let cursor = self.watermark();
        let mut conn = self.reader.acquire().await?;
        let batch = log::read_batch(
            &mut conn,
            cursor,
            STREAMED_TYPES,
            log::Metadata::Skip,
            1_000,
        )
        .await?;
        self.learn_owners(&mut conn, &batch.events).await?;
        drop(conn);
        let mut messages = Vec::with_capacity(batch.events.len());
        for event in &batch.events {
            if let Some(message) = self.message_for(event).await {
                messages.push(Arc::new(message));
            }
        }
        if let Ok(mut watermark) = self.watermark.lock() {
            *watermark = batch.next;
        }
        for message in messages {
            let _ = self.broadcast.send(message);
        }
        Ok(batch.held_back || batch.events.len() >= 1_000)
    }

    pub fn watermark(&self) -> Checkpoint {
        self.watermark.lock().map(|w| *w).unwrap_or_default()
    }

    /// The stream messages for events in `(after, until]`, from the log.
    pub async fn replay(
        &self,
        after: Checkpoint,
        until: Checkpoint,
    ) -> Result<Vec<LiveMessage>, sqlx::Error> {
        let mut messages = Vec::new();
        let mut cursor = after;
        loop {
            let mut conn = self.reader.acquire().await?;
            let events = log::read_range(
                &mut conn,
                cursor,
                until,
                STREAMED_TYPES,
                log::Metadata::Skip,
                1_000,
            )
            .await?;
            self.learn_owners(&mut conn, &events).await?;
            drop(conn);
            for event in &events {
                if let Some(message) = self.message_for(event).await {
                    messages.push(message);
                }
            }
            match events.last() {
                Some(last) if events.len() >= 1_000 => cursor = last.checkpoint(),
                _ => return Ok(messages),
            }
        }
    }

    /// Where a client that last saw the event at `position` resumes.
    pub async fn resume_point(&self, position: i64) -> Result<Option<Checkpoint>, sqlx::Error> {
        let txid: Option<i64> = sqlx::query_scalar(
            "SELECT transaction_id::text::bigint FROM events WHERE global_position = $1",
        )
        .bind(position)
        .fetch_optional(&self.pool)
        .await?;
        Ok(txid.map(|txid| Checkpoint { txid, position }))
    }

    /// Whether `caller` may watch (and type on) `ticket`: staff any ticket there is, a customer
    /// their own.
    pub async fn may_watch(&self, caller: &Caller, ticket: Uuid) -> bool {
        self.owner_of(ticket)
            .await
            .is_some_and(|owner| caller.is_staff() || owner == caller.id.0)
    }

    /// Tells everyone who may see it that `caller` is typing on `ticket`; an internal note is
    /// typing only staff may do, and only staff see.
    pub async fn typing(
        &self,
        caller: &Caller,
        ticket: Uuid,
        internal: bool,
    ) -> Result<(), sqlx::Error> {
        let internal = caller.is_staff() && internal;
        self.publish(
            &json!({"type": "typing", "ticket_id": ticket, "user_id": caller.id,
                             "role": caller.role, "name": caller.full_name, "internal": internal}),
        )
        .await
    }

    /// Tells staff that a member of staff has `ticket` open (`here`) or has left it; pages send
    /// it every few seconds while open, so a viewer not heard from for a while has gone.
    pub async fn viewing(
        &self,
        caller: &Caller,
        ticket: Uuid,
        here: bool,
    ) -> Result<(), sqlx::Error> {
        if !caller.is_staff() {
            return Ok(());
        }
        let status = if here { "here" } else { "left" };
        self.publish(
            &json!({"type": "viewing", "ticket_id": ticket, "user_id": caller.id,
                             "role": caller.role, "name": caller.full_name, "status": status}),
        )
        .await
    }

    /// Tells staff that a member of staff came online or went away; customers are not tracked.
    pub async fn presence(&self, caller: &Caller, online: bool) -> Result<(), sqlx::Error> {
        if !caller.is_staff() {
            return Ok(());
        }
        let status = if online { "online" } else { "offline" };
        self.publish(
            &json!({"type": "presence", "user_id": caller.id, "role": caller.role,
                             "status": status}),
        )
        .await
    }

    /// Publishes an ephemeral message to every process.
    pub async fn publish(&self, message: &Value) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EPHEMERAL_CHANNEL)
            .bind(message.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn relay_ephemeral(&self, payload: &str) {
        let Ok(body) = serde_json::from_str::<Value>(payload) else {
            return;
        };
        let ticket_id = body["ticket_id"]
            .as_str()
            .and_then(|t| Uuid::parse_str(t).ok());
        let customer_id = match ticket_id {
            Some(ticket) => self.owner_of(ticket).await,
            None => None,
        };
        let staff_only =
            body["type"] == "presence" || body["type"] == "viewing" || body["internal"] == true;
        let recipient = (body["type"] == "notification")
            .then(|| {
                body["user_id"]
                    .as_str()
                    .and_then(|u| Uuid::parse_str(u).ok())
            })
            .flatten();
        let _ = self.broadcast.send(Arc::new(LiveMessage {
            checkpoint: None,
            ticket_id,
            customer_id,
            staff_only,
            recipient,
            body,
        }));
    }

    /// Turns a stored event into its stream message.
    async fn message_for(&self, event: &RecordedEvent) -> Option<LiveMessage> {
        if event.aggregate_type == "agent" {
            return agent_message(event);
        }
        if event.aggregate_type == "alert" {
            return alert_message(event);
        }
        let decoded: TicketEvent = fold::decode(event).ok()?;
        let kind = message_kind(&decoded)?;
        let ticket_id = Uuid::parse_str(&event.aggregate_id).ok()?;
        let customer_id = match &decoded {
            TicketEvent::TicketCreated { customer_id, .. } => {
                if let Ok(mut owners) = self.owners.lock() {
                    owners.remember(ticket_id, customer_id.0);
                }
                Some(customer_id.0)
            }
            _ => self.owner_of(ticket_id).await,
        };
        let actor = decoded.actor();
        Some(LiveMessage {
            checkpoint: Some(event.checkpoint()),
            ticket_id: Some(ticket_id),
            customer_id,
            staff_only: decoded.is_internal(),
            recipient: None,
            body: json!({
                "type": kind,
                "position": event.global_position,
                "ticket_id": ticket_id,
                "event_type": event.event_type,
                "version": event.sequence,
                "occurred_at": decoded.occurred_at(),
                "recorded_at": event.recorded_at,
                "actor": {"id": actor.user_id, "role": actor.role},
                "data": event.data(),
            }),
        })
    }

    /// Remembers the customers of the tickets `events` concern that it does not know yet, with
    /// one read of the log. Authorising each message by a query of its own made the stream as
    /// slow as the database's round trips: an SLA deadline storm over old tickets (one breach
    /// each, none of them remembered) fed clients a thousand sequential queries per batch.
    async fn learn_owners(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), sqlx::Error> {
        let unknown: Vec<String> = {
            let Ok(owners) = self.owners.lock() else {
                return Ok(());
            };
            let tickets = events
                .iter()
                .filter(|event| event.aggregate_type == "ticket");
            // A ticket opened in this batch is learnt from its first event, which comes first.
            let opened: HashSet<&str> = tickets
                .clone()
                .filter(|event| event.sequence == 1)
                .map(|event| event.aggregate_id.as_str())
                .collect();
            let unknown: BTreeSet<&str> = tickets
                .map(|event| event.aggregate_id.as_str())
                .filter(|id| {
                    !opened.contains(id)
                        && Uuid::parse_str(id)
                            .is_ok_and(|ticket| !owners.known.contains_key(&ticket))
                })
                .collect();
            unknown.into_iter().map(str::to_string).collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let found = owners_in_log(&mut *conn, &unknown).await?;
        if let Ok(mut owners) = self.owners.lock() {
            for (ticket, owner) in found {
                owners.remember(ticket, owner);
            }
        }
        Ok(())
    }

    /// The customer of a ticket (cached).
    pub async fn owner_of(&self, ticket: Uuid) -> Option<Uuid> {
        let cached = self
            .owners
            .lock()
            .ok()
            .and_then(|o| o.known.get(&ticket).copied());
        if cached.is_some() {
            return cached;
        }
        let (_, owner) = owners_in_log(&self.pool, &[ticket.to_string()])
            .await
            .ok()?
            .pop()?;
        if let Ok(mut owners) = self.owners.lock() {
            owners.remember(ticket, owner);
        }
        Some(owner)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveMessage>> {
        self.broadcast.subscribe()
    }

    /// Feeds one client: the log from `resume` (if any) up to the watermark, then the broadcast,
    /// skipping what the log already delivered and re-reading the log if the client fell behind.
    /// Ends when `out` is closed. `viewer` is read before each message, so subscriptions apply
    /// at once.
    pub fn serve(
        &self,
        viewer: watch::Receiver<Viewer>,
        resume: Option<Checkpoint>,
        out: mpsc::Sender<Arc<LiveMessage>>,
    ) {
        let hub = self.clone();
        // Subscribed before returning: whatever the caller tells its client next ("welcome"),
        // every message broadcast after it reaches this client.
        let mut live = hub.subscribe();
        tokio::spawn(async move {
            let mut delivered = match resume {
                Some(from) => {
                    let until = hub.watermark();
                    match hub.catch_up(&viewer, from, until, &out).await {
                        Some(reached) => reached,
                        None => return,
                    }
                }
                None => hub.watermark(),
            };
            loop {
                match live.recv().await {
                    Ok(message) => {
                        if let Some(checkpoint) = message.checkpoint {
                            if checkpoint <= delivered {
                                continue;
                            }
                            delivered = checkpoint;
                        }
                        if viewer.borrow().accepts(&message) && out.send(message).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let until = hub.watermark();
                        match hub.catch_up(&viewer, delivered, until, &out).await {
                            Some(reached) => delivered = reached,
                            None => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    async fn catch_up(
        &self,
        viewer: &watch::Receiver<Viewer>,
        from: Checkpoint,
        until: Checkpoint,
        out: &mpsc::Sender<Arc<LiveMessage>>,
    ) -> Option<Checkpoint> {
        if from >= until {
            return Some(from);
        }
        let messages = match self.replay(from, until).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "could not replay the live stream");
                return None;
            }
        };
        for message in messages {
            if viewer.borrow().accepts(&message) && out.send(Arc::new(message)).await.is_err() {
                return None;
            }
        }
        Some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(customer: Uuid, staff_only: bool, ticket: Uuid) -> LiveMessage {
        LiveMessage {
            checkpoint: None,
            ticket_id: Some(ticket),
            customer_id: Some(customer),
            staff_only,
            recipient: None,
            body: json!({"type": "new_comment"}),
        }
    }

    #[test]
    fn customers_get_only_their_own_public_messages() {
        let (me, other, ticket) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let viewer = Viewer {
            user_id: me,
            staff: false,
            tickets: HashSet::new(),
        };
        assert!(viewer.accepts(&message(me, false, ticket)));
        assert!(!viewer.accepts(&message(me, true, ticket)));
        assert!(!viewer.accepts(&message(other, false, ticket)));
    }

    #[test]
    fn staff_get_everything_or_just_their_subscriptions() {
        let (customer, a, b) = (Uuid::from_u128(1), Uuid::from_u128(3), Uuid::from_u128(4));
        let mut viewer = Viewer {
            user_id: Uuid::from_u128(9),
            staff: true,
            tickets: HashSet::new(),
        };
        assert!(viewer.accepts(&message(customer, true, a)));
        assert!(viewer.accepts(&message(customer, false, b)));
        viewer.tickets.insert(a);
        assert!(viewer.accepts(&message(customer, false, a)));
        assert!(!viewer.accepts(&message(customer, false, b)));
    }
}
