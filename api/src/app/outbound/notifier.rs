//! The notifier: a subscriber of the log (DESIGN.md decisions 5 and 14) that tells people what
//! happened to the tickets they have to do with, in the app (and, through the mail outbox, by
//! e-mail).
//!
//! It reads ticket, user, team and webhook events in the safe order with a checkpoint of its
//! own, keeps what it needs to know of tickets, teams and people in tables of its own (written
//! with its checkpoint), asks the domain who is told of each event ([`who_is_told`]), and writes
//! a notification per person who wants it, its id derived from the event and the person: a batch
//! read again after a crash writes nothing twice, and a replay of the log tells the same people
//! the same things. Each new notification is pushed on the live stream to its recipient, when
//! its transaction commits.

use std::collections::{HashMap, HashSet};

use docket_domain::Actor;
use docket_domain::mail::MailKind;
use docket_domain::notice::{
    Channel, NotificationPreferences, TicketFacts, mentioned_addresses, who_is_told,
};
use docket_domain::ticket::TicketEvent;
use docket_domain::user::UserEvent;
use docket_domain::values::TeamRole;
use docket_domain::values::{NotificationKind, Role, TicketNumber, UserId};
use docket_domain::webhook::{DisableReason, WebhookEvent};
use docket_domain::workforce::team::TeamEvent;
use docket_projections::fold::decode;
use docket_projections::log::{Metadata, RecordedEvent};
use docket_projections::notify::EPHEMERAL_CHANNEL;
use docket_projections::registry::Projector;
use docket_projections::runtime::{Projection, ProjectionError};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// The namespace of notification ids (UUID v5 of the event and the recipient).
const NOTIFICATION_NAMESPACE: Uuid = Uuid::from_u128(0x2d7a_91c4_5e0b_4f68_a3d1_7c55_0e9b_42f1);
/// How much of a comment a notification quotes.
const EXCERPT_CHARS: usize = 280;

/// The notifier as the runtime runs it and `/ready` reports it.
pub static NOTIFIER: Projector = Projector::of::<Notifier>();

#[derive(Debug, Clone, Copy, Default)]
pub struct Notifier;

/// One event of a batch, decoded.
enum Decoded {
    Ticket(Uuid, TicketEvent),
    User(Uuid, Box<UserEvent>),
    Team(Uuid, TeamEvent),
    Webhook(Uuid, WebhookEvent),
    Other,
}

fn decoded(event: &RecordedEvent) -> Result<Decoded, ProjectionError> {
    let id = || {
        Uuid::parse_str(&event.aggregate_id).map_err(|e| ProjectionError::unapplicable(event, e))
    };
    Ok(match event.aggregate_type.as_str() {
        "ticket" => Decoded::Ticket(id()?, decode(event)?),
        "user" => Decoded::User(id()?, Box::new(decode(event)?)),
        "team" => Decoded::Team(id()?, decode(event)?),
        "webhook" => Decoded::Webhook(id()?, decode(event)?),
        _ => Decoded::Other,
    })
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct TicketRow {
    ticket_id: Uuid,
    number: i64,
    subject: String,
    status: String,
    priority: String,
    customer_id: Uuid,
    assignee_id: Option<Uuid>,
    team_id: Option<Uuid>,
    followers: Vec<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct PersonRow {
    user_id: Uuid,
    email: String,
    full_name: String,
    role: String,
    active: bool,
    preferences: sqlx::types::Json<NotificationPreferences>,
}

impl PersonRow {
    fn is_staff(&self) -> bool {
        self.role.parse::<Role>().is_ok_and(Role::is_staff)
    }
}

/// What the notifier knows during one batch: the rows it read, changed as the batch goes.
#[derive(Default)]
struct Knowledge {
    tickets: HashMap<Uuid, TicketRow>,
    teams: HashMap<Uuid, HashMap<Uuid, TeamRole>>,
    people: HashMap<Uuid, PersonRow>,
    changed_tickets: HashSet<Uuid>,
    changed_teams: HashSet<Uuid>,
    changed_people: HashSet<Uuid>,
}

impl Knowledge {
    /// Reads what the batch's events may need: their tickets, every team, and the people they
    /// may name (by id, or by an address a comment mentions).
    async fn load(conn: &mut PgConnection, events: &[Decoded]) -> Result<Self, sqlx::Error> {
        let ticket_ids: Vec<Uuid> = events
            .iter()
            .filter_map(|d| match d {
                Decoded::Ticket(id, _) => Some(*id),
                _ => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let tickets: Vec<TicketRow> = sqlx::query_as(
            "SELECT ticket_id, number, subject, status, priority, customer_id, assignee_id,
                    team_id, followers
               FROM notifier_tickets WHERE ticket_id = ANY($1)",
        )
        .bind(&ticket_ids)
        .fetch_all(&mut *conn)
        .await?;
        let teams: Vec<(Uuid, sqlx::types::Json<HashMap<Uuid, TeamRole>>)> =
            sqlx::query_as("SELECT team_id, members FROM notifier_teams")
                .fetch_all(&mut *conn)
                .await?;
        let mut people_ids: HashSet<Uuid> = HashSet::new();
        let mut emails: Vec<String> = Vec::new();
        let mut admins = false;
        for ticket in &tickets {
            people_ids.insert(ticket.customer_id);
            people_ids.extend(ticket.assignee_id);
            people_ids.extend(ticket.followers.iter().copied());
        }
        for (_, members) in &teams {
            people_ids.extend(members.0.keys().copied());
        }
        for event in events {
            match event {
                Decoded::Ticket(_, event) => {
                    people_ids.insert(event.actor().user_id.0);
                    match event {
                        TicketEvent::TicketCreated { customer_id, .. } => {
                            people_ids.insert(customer_id.0);
                        }
                        TicketEvent::TicketAssigned { assignee_id, .. } => {
                            people_ids.insert(assignee_id.0);
                        }
                        TicketEvent::TicketEscalated {
                            escalated_to: Some(to),
                            ..
                        } => {
                            people_ids.insert(to.0);
                        }
                        TicketEvent::NotificationRequested { recipients, .. } => {
                            people_ids.extend(recipients.iter().map(|r| r.0));
                        }
                        TicketEvent::TicketFollowed { user_id, .. } => {
                            people_ids.insert(user_id.0);
                        }
                        TicketEvent::CommentAdded { body, .. } => {
                            emails.extend(mentioned_addresses(body.as_str()));
                        }
                        _ => {}
                    }
                }
                Decoded::User(id, _) => {
                    people_ids.insert(*id);
                }
                Decoded::Team(_, TeamEvent::TeamMemberAdded { user_id, .. }) => {
                    people_ids.insert(user_id.0);
                }
                Decoded::Webhook(_, WebhookEvent::WebhookDisabled { .. }) => admins = true,
                Decoded::Team(..) | Decoded::Webhook(..) | Decoded::Other => {}
            }
        }
        let people_ids: Vec<Uuid> = people_ids.into_iter().collect();
        let people: Vec<PersonRow> = sqlx::query_as(
            "SELECT user_id, email, full_name, role, active, preferences FROM notifier_people
              WHERE user_id = ANY($1) OR email = ANY($2) OR ($3 AND role = 'admin' AND active)",
        )
        .bind(&people_ids)
        .bind(&emails)
        .bind(admins)
        .fetch_all(&mut *conn)
        .await?;
        Ok(Self {
            tickets: tickets.into_iter().map(|t| (t.ticket_id, t)).collect(),
            teams: teams.into_iter().map(|(id, m)| (id, m.0)).collect(),
            people: people.into_iter().map(|p| (p.user_id, p)).collect(),
            ..Self::default()
        })
    }

    fn facts(&self, ticket: Uuid) -> TicketFacts {
        let Some(row) = self.tickets.get(&ticket) else {
            return TicketFacts::default();
        };
        let team_leads = row
            .team_id
            .and_then(|team| self.teams.get(&team))
            .map(leads_of)
            .unwrap_or_default();
        TicketFacts {
            customer_id: Some(UserId(row.customer_id)),
            assignee_id: row.assignee_id.map(UserId),
            team_leads,
            followers: row.followers.iter().copied().map(UserId).collect(),
        }
    }

    /// Active staff named by the addresses a comment mentions.
    fn mentioned(&self, body: &str) -> Vec<UserId> {
        let addresses = mentioned_addresses(body);
        self.people
            .values()
            .filter(|p| p.active && p.is_staff() && addresses.contains(&p.email))
            .map(|p| UserId(p.user_id))
            .collect()
    }

    /// Whether `person` is to get `kind` in the app: an active account that has not switched it
    /// off.
    fn wants(&self, person: UserId, kind: NotificationKind, channel: Channel) -> bool {
        self.people
            .get(&person.0)
            .is_some_and(|p| p.active && p.preferences.0.wants(kind, channel))
    }

    fn name_of(&self, actor: Actor) -> String {
        if actor.role == Role::System {
            return "Docket".to_string();
        }
        self.people
            .get(&actor.user_id.0)
            .map_or_else(|| "Someone".to_string(), |p| p.full_name.clone())
    }

    fn admins(&self) -> Vec<UserId> {
        let mut admins: Vec<UserId> = self
            .people
            .values()
            .filter(|p| p.active && p.role == Role::Admin.as_str())
            .map(|p| UserId(p.user_id))
            .collect();
        admins.sort();
        admins
    }

    fn fold_ticket(&mut self, id: Uuid, event: &TicketEvent) {
        if let TicketEvent::TicketCreated {
            number,
            customer_id,
            subject,
            priority,
            ..
        } = event
        {
            self.tickets.insert(
                id,
                TicketRow {
                    ticket_id: id,
                    number: number.0,
                    subject: subject.as_str().to_string(),
                    status: docket_domain::TicketStatus::New.as_str().to_string(),
                    priority: priority.as_str().to_string(),
                    customer_id: customer_id.0,
                    assignee_id: None,
                    team_id: None,
                    followers: vec![],
                },
            );
            self.changed_tickets.insert(id);
            return;
        }
        let Some(row) = self.tickets.get_mut(&id) else {
            return;
        };
        match event {
            TicketEvent::TicketDetailsUpdated {
                subject: Some(subject),
                ..
            } => row.subject = subject.as_str().to_string(),
            TicketEvent::TicketAssigned { assignee_id, .. } => {
                row.assignee_id = Some(assignee_id.0)
            }
            TicketEvent::TicketStatusChanged { to, .. } => row.status = to.as_str().to_string(),
            TicketEvent::TicketPriorityChanged { to, .. } => {
                row.priority = to.as_str().to_string();
            }
            TicketEvent::TicketUnassigned { .. } => row.assignee_id = None,
            TicketEvent::TicketTeamAssigned { team_id, .. } => row.team_id = team_id.map(|t| t.0),
            TicketEvent::TicketFollowed { user_id, .. } => {
                if !row.followers.contains(&user_id.0) {
                    row.followers.push(user_id.0);
                }
            }
            TicketEvent::TicketUnfollowed { user_id, .. } => {
                row.followers.retain(|f| *f != user_id.0);
            }
            _ => return,
        }
        self.changed_tickets.insert(id);
    }

    fn fold_team(&mut self, id: Uuid, event: &TeamEvent) {
        let members = self.teams.entry(id).or_default();
        match event {
            TeamEvent::TeamCreated { .. } => {}
            TeamEvent::TeamMemberAdded {
                user_id, team_role, ..
            } => {
                members.insert(user_id.0, *team_role);
            }
            TeamEvent::TeamMemberRoleChanged { user_id, to, .. } => {
                members.insert(user_id.0, *to);
            }
            TeamEvent::TeamMemberRemoved { user_id, .. } => {
                members.remove(&user_id.0);
            }
        }
        self.changed_teams.insert(id);
    }

    fn fold_person(&mut self, id: Uuid, event: &UserEvent) {
        if let UserEvent::UserRegistered {
            email,
            full_name,
            role,
            ..
        } = event
        {
            self.people.insert(
                id,
                PersonRow {
                    user_id: id,
                    email: email.as_str().to_string(),
                    full_name: full_name.as_str().to_string(),
                    role: role.as_str().to_string(),
                    active: true,
                    preferences: sqlx::types::Json(NotificationPreferences::default()),
                },
            );
            self.changed_people.insert(id);
            return;
        }
        let Some(person) = self.people.get_mut(&id) else {
            return;
        };
        match event {
            UserEvent::UserRegistered { .. } | UserEvent::UserPasswordChanged { .. } => return,
            UserEvent::UserProfileUpdated {
                full_name, email, ..
            } => {
                if let Some(name) = full_name {
                    person.full_name = name.as_str().to_string();
                }
                if let Some(email) = email {
                    person.email = email.as_str().to_string();
                }
            }
            UserEvent::UserRoleChanged { to, .. } => person.role = to.as_str().to_string(),
            UserEvent::UserDeactivated { .. } => person.active = false,
            UserEvent::UserReactivated { .. } => person.active = true,
            UserEvent::NotificationPreferencesSet { preferences, .. } => {
                person.preferences = sqlx::types::Json(preferences.clone());
            }
        }
        self.changed_people.insert(id);
    }

    /// Writes what changed back, in the batch's transaction.
    async fn persist(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        for id in &self.changed_tickets {
            let Some(t) = self.tickets.get(id) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO notifier_tickets (ticket_id, number, subject, status, priority,
                                               customer_id, assignee_id, team_id, followers)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (ticket_id) DO UPDATE SET subject = EXCLUDED.subject,
                        status = EXCLUDED.status, priority = EXCLUDED.priority,
                        assignee_id = EXCLUDED.assignee_id, team_id = EXCLUDED.team_id,
                        followers = EXCLUDED.followers",
            )
            .bind(t.ticket_id)
            .bind(t.number)
            .bind(&t.subject)
            .bind(&t.status)
            .bind(&t.priority)
            .bind(t.customer_id)
            .bind(t.assignee_id)
            .bind(t.team_id)
            .bind(&t.followers)
            .execute(&mut *conn)
            .await?;
        }
        for id in &self.changed_teams {
            let members = self.teams.get(id).cloned().unwrap_or_default();
            sqlx::query(
                "INSERT INTO notifier_teams (team_id, members) VALUES ($1, $2)
                 ON CONFLICT (team_id) DO UPDATE SET members = EXCLUDED.members",
            )
            .bind(id)
            .bind(sqlx::types::Json(members))
            .execute(&mut *conn)
            .await?;
        }
        for id in &self.changed_people {
            let Some(p) = self.people.get(id) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO notifier_people (user_id, email, full_name, role, active, preferences)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email,
                        full_name = EXCLUDED.full_name, role = EXCLUDED.role,
                        active = EXCLUDED.active, preferences = EXCLUDED.preferences",
            )
            .bind(p.user_id)
            .bind(&p.email)
            .bind(&p.full_name)
            .bind(&p.role)
            .bind(p.active)
            .bind(&p.preferences)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// A team's leads: its `lead`s, or when it has none its `manager`s.
fn leads_of(members: &HashMap<Uuid, TeamRole>) -> Vec<UserId> {
    let with = |role: TeamRole| {
        let mut found: Vec<UserId> = members
            .iter()
            .filter(|(_, r)| **r == role)
            .map(|(id, _)| UserId(*id))
            .collect();
        found.sort();
        found
    };
    let leads = with(TeamRole::Lead);
    if leads.is_empty() {
        with(TeamRole::Manager)
    } else {
        leads
    }
}

/// One notification to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: NotificationKind,
    pub ticket_id: Option<Uuid>,
    pub ticket_number: Option<i64>,
    pub title: String,
    pub body: Option<String>,
    pub actor_id: Option<Uuid>,
    pub position: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn excerpt(text: &str) -> String {
    let mut taken: String = text.chars().take(EXCERPT_CHARS).collect();
    if text.chars().count() > EXCERPT_CHARS {
        taken.push('…');
    }
    taken
}

/// What a notification says: a title, and (for a comment or a reason) its words.
fn wording(
    kind: NotificationKind,
    event: &TicketEvent,
    number: &str,
    subject: &str,
    actor: &str,
) -> (String, Option<String>) {
    let said = match event {
        TicketEvent::CommentAdded { body, .. } => Some(excerpt(body.as_str())),
        TicketEvent::TicketEscalated { reason, .. } => Some(excerpt(reason.as_str())),
        TicketEvent::NotificationRequested { message, .. } => Some(excerpt(message)),
        _ => Some(subject.to_string()),
    };
    let what = match event {
        TicketEvent::CommentAdded { internal: true, .. } => format!("{actor} noted on {number}"),
        TicketEvent::CommentAdded { .. } => format!("{actor} replied on {number}"),
        TicketEvent::TicketStatusChanged { to, .. } => format!("{number} is now {to}"),
        TicketEvent::TicketAssigned { .. } => format!("{number} was assigned by {actor}"),
        TicketEvent::TicketEscalated { to_level, .. } => {
            format!("{number} was escalated to level {to_level}")
        }
        TicketEvent::SlaWarning { metric, .. } => format!("{number}: {metric} is at risk"),
        TicketEvent::SlaBreached { metric, .. } => format!("{number}: {metric} breached"),
        _ => format!("{number} changed"),
    };
    let title = match kind {
        NotificationKind::TicketCreated => format!("{number} was opened for you"),
        NotificationKind::Assigned => format!("{number} was assigned to you"),
        NotificationKind::Mentioned => format!("{actor} mentioned you on {number}"),
        NotificationKind::CustomerReply => format!("The customer replied on {number}"),
        NotificationKind::PublicReply => format!("New reply on your ticket {number}"),
        NotificationKind::Escalated
        | NotificationKind::StatusChanged
        | NotificationKind::SlaWarning
        | NotificationKind::SlaBreached
        | NotificationKind::Followed
        | NotificationKind::WebhookDisabled => what,
        NotificationKind::Rule => format!("A rule asks you to look at {number}"),
    };
    (title, said)
}

fn notification_id(event: &RecordedEvent, recipient: Uuid) -> Uuid {
    Uuid::new_v5(
        &NOTIFICATION_NAMESPACE,
        format!(
            "{}/{}/{}/{recipient}",
            event.aggregate_type, event.aggregate_id, event.sequence
        )
        .as_bytes(),
    )
}

impl Projection for Notifier {
    const NAME: &'static str = "notifier";
    const METADATA: Metadata = Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["ticket", "user", "team", "webhook"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &[
        "notifier_tickets",
        "notifier_teams",
        "notifier_people",
        "notifications",
    ];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let decoded = events.iter().map(decoded).collect::<Result<Vec<_>, _>>()?;
        let mut known = Knowledge::load(conn, &decoded).await?;
        let starts_after: i64 = sqlx::query_scalar(
            "SELECT from_position FROM subscriber_starts WHERE subscriber = 'notifier'",
        )
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or(0);
        let mut written: Vec<Notification> = Vec::new();
        let mut mails: Vec<Mail> = Vec::new();
        for (event, decoded) in events.iter().zip(&decoded) {
            match decoded {
                Decoded::User(id, user_event) => known.fold_person(*id, user_event),
                Decoded::Team(id, team_event) => known.fold_team(*id, team_event),
                Decoded::Webhook(
                    id,
                    WebhookEvent::WebhookDisabled {
                        reason,
                        occurred_at,
                    },
                ) => {
                    let why = match reason {
                        DisableReason::Gone => "it answered 410 Gone".to_string(),
                        DisableReason::Failing { since } => format!(
                            "no delivery succeeded since {}",
                            since.format("%Y-%m-%d %H:%M UTC")
                        ),
                    };
                    for admin in known.admins() {
                        if known.wants(admin, NotificationKind::WebhookDisabled, Channel::InApp) {
                            written.push(Notification {
                                id: notification_id(event, admin.0),
                                user_id: admin.0,
                                kind: NotificationKind::WebhookDisabled,
                                ticket_id: None,
                                ticket_number: None,
                                title: "A webhook endpoint was disabled".to_string(),
                                body: Some(format!("Endpoint {id}: {why}.")),
                                actor_id: None,
                                position: event.global_position,
                                created_at: *occurred_at,
                            });
                        }
                    }
                }
                Decoded::Webhook(..) | Decoded::Other => {}
                Decoded::Ticket(id, ticket_event) => {
                    let facts = known.facts(*id);
                    let mentioned = match ticket_event {
                        TicketEvent::CommentAdded { body, .. } => known.mentioned(body.as_str()),
                        _ => vec![],
                    };
                    // A new ticket is known before anyone is told of it (its number, its subject).
                    if matches!(ticket_event, TicketEvent::TicketCreated { .. }) {
                        known.fold_ticket(*id, ticket_event);
                    }
                    let notices = who_is_told(ticket_event, &facts, &mentioned);
                    if !notices.is_empty() {
                        let (number, subject) = known.tickets.get(id).map_or_else(
                            || (TicketNumber(0), String::new()),
                            |t| (TicketNumber(t.number), t.subject.clone()),
                        );
                        let actor = ticket_event.actor();
                        let actor_name = known.name_of(actor);
                        for notice in &notices {
                            if let Some(mail) =
                                mail_for(&known, event, *id, ticket_event, notice, &actor_name)
                            {
                                mails.push(mail);
                            }
                        }
                        for notice in notices {
                            // The app never tells its reader of what they did themselves.
                            if notice.recipient == actor.user_id
                                || !known.wants(notice.recipient, notice.kind, Channel::InApp)
                            {
                                continue;
                            }
                            let (title, body) = wording(
                                notice.kind,
                                ticket_event,
                                &number.to_string(),
                                &subject,
                                &actor_name,
                            );
                            written.push(Notification {
                                id: notification_id(event, notice.recipient.0),
                                user_id: notice.recipient.0,
                                kind: notice.kind,
                                ticket_id: Some(*id),
                                ticket_number: Some(number.0),
                                title,
                                body,
                                actor_id: (actor.role != Role::System).then_some(actor.user_id.0),
                                position: event.global_position,
                                created_at: ticket_event.occurred_at(),
                            });
                        }
                    }
                    if !matches!(ticket_event, TicketEvent::TicketCreated { .. }) {
                        known.fold_ticket(*id, ticket_event);
                    }
                }
            }
        }
        known.persist(conn).await?;
        // What happened before the notifier existed is learnt from, never told of.
        written.retain(|n| n.position > starts_after);
        mails.retain(|m| m.position > starts_after);
        insert(conn, &written).await?;
        queue_mail(conn, &mails).await?;
        Ok(())
    }
}

/// One mail to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub id: Uuid,
    pub kind: MailKind,
    pub ticket_id: Uuid,
    pub recipient_id: Uuid,
    pub to_address: String,
    pub context: serde_json::Value,
    pub position: i64,
}

/// The mail `notice` is sent as, if its kind goes by mail and its recipient wants it.
fn mail_for(
    known: &Knowledge,
    event: &RecordedEvent,
    ticket: Uuid,
    ticket_event: &TicketEvent,
    notice: &docket_domain::notice::Notice,
    actor_name: &str,
) -> Option<Mail> {
    let kind = MailKind::for_notification(notice.kind)?;
    if !known.wants(notice.recipient, notice.kind, Channel::Email) {
        return None;
    }
    let person = known.people.get(&notice.recipient.0)?;
    let row = known.tickets.get(&ticket)?;
    let mut context = json!({
        "ticket": {"id": ticket, "number": TicketNumber(row.number).to_string(),
                   "subject": row.subject, "status": row.status, "priority": row.priority},
        "recipient": {"name": person.full_name, "email": person.email, "staff": person.is_staff()},
        "actor": {"name": actor_name},
    });
    match ticket_event {
        TicketEvent::CommentAdded { body, .. } => {
            context["comment"] = json!({"body": body.as_str()});
        }
        TicketEvent::TicketStatusChanged { from, to, .. } => {
            context["status"] = json!({"from": from, "to": to});
            context["ticket"]["status"] = json!(to);
        }
        TicketEvent::SlaWarning { metric, due_at, .. }
        | TicketEvent::SlaBreached { metric, due_at, .. } => {
            context["sla"] = json!({
                "metric": metric,
                "due_at": due_at.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()),
            });
        }
        TicketEvent::TicketEscalated {
            to_level, reason, ..
        } => {
            context["escalation"] = json!({"level": to_level, "reason": reason.as_str()});
        }
        _ => {}
    }
    Some(Mail {
        id: Uuid::new_v5(
            &NOTIFICATION_NAMESPACE,
            format!(
                "mail/{}/{}/{}/{}",
                event.aggregate_type, event.aggregate_id, event.sequence, notice.recipient
            )
            .as_bytes(),
        ),
        kind,
        ticket_id: ticket,
        recipient_id: notice.recipient.0,
        to_address: person.email.clone(),
        context,
        position: event.global_position,
    })
}

/// Queues mail in the outbox (what is queued already is left as it is).
async fn queue_mail(conn: &mut PgConnection, mails: &[Mail]) -> Result<(), sqlx::Error> {
    if mails.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO mail_outbox (id, kind, ticket_id, recipient_id, to_address, context, position)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::text[],
                              $6::jsonb[], $7::bigint[])
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(mails.iter().map(|m| m.id).collect::<Vec<_>>())
    .bind(mails.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>())
    .bind(mails.iter().map(|m| m.ticket_id).collect::<Vec<_>>())
    .bind(mails.iter().map(|m| m.recipient_id).collect::<Vec<_>>())
    .bind(
        mails
            .iter()
            .map(|m| m.to_address.clone())
            .collect::<Vec<_>>(),
    )
    .bind(mails.iter().map(|m| m.context.clone()).collect::<Vec<_>>())
    .bind(mails.iter().map(|m| m.position).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes notifications (those already written are left as they are) and pushes each new one
/// to its recipient on the live stream, when the transaction commits.
async fn insert(conn: &mut PgConnection, written: &[Notification]) -> Result<(), sqlx::Error> {
    if written.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Notification) -> Option<String>| -> Vec<Option<String>> {
        written.iter().map(f).collect()
    };
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO notifications (id, user_id, kind, ticket_id, ticket_number, title, body,
                                    actor_id, position, created_at)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::bigint[],
                              $6::text[], $7::text[], $8::uuid[], $9::bigint[], $10::timestamptz[])
         ON CONFLICT (id) DO NOTHING
         RETURNING id",
    )
    .bind(written.iter().map(|n| n.id).collect::<Vec<_>>())
    .bind(written.iter().map(|n| n.user_id).collect::<Vec<_>>())
    .bind(written.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>())
    .bind(written.iter().map(|n| n.ticket_id).collect::<Vec<_>>())
    .bind(written.iter().map(|n| n.ticket_number).collect::<Vec<_>>())
    .bind(column(|n| Some(n.title.clone())))
    .bind(column(|n| n.body.clone()))
    .bind(written.iter().map(|n| n.actor_id).collect::<Vec<_>>())
    .bind(written.iter().map(|n| n.position).collect::<Vec<_>>())
    .bind(written.iter().map(|n| n.created_at).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let inserted: HashSet<Uuid> = inserted.into_iter().collect();
    for notification in written.iter().filter(|n| inserted.contains(&n.id)) {
        let message = json!({
            "type": "notification",
            "user_id": notification.user_id,
            "ticket_id": notification.ticket_id,
            "data": {
                "id": notification.id,
                "kind": notification.kind.as_str(),
                "title": notification.title,
                "body": notification.body,
                "ticket_number": notification.ticket_number.map(|n| TicketNumber(n).to_string()),
                "created_at": notification.created_at,
            },
        });
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EPHEMERAL_CHANNEL)
            .bind(message.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_is_led_by_its_leads_or_else_its_managers() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let mut members = HashMap::from([(a, TeamRole::Member), (b, TeamRole::Manager)]);
        assert_eq!(leads_of(&members), [UserId(b)]);
        members.insert(c, TeamRole::Lead);
        assert_eq!(leads_of(&members), [UserId(c)]);
    }

    #[test]
    fn a_long_comment_is_quoted_in_part() {
        let long = "word ".repeat(100);
        let quoted = excerpt(&long);
        assert_eq!(quoted.chars().count(), EXCERPT_CHARS + 1);
        assert!(quoted.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }
}
