//! The workforce read models: `skills_view`, `teams_view`, `team_members_view`,
//! `agent_profiles_view`, `shifts_view` and `routing_tickets_view`, with the queries routing and
//! the workload reports run on them.
//!
//! Agent load (open and critical tickets held) is kept as counters beside the profile and moved
//! in the same transaction as the ticket rows, so routing reads one small row per agent instead
//! of counting a hundred thousand tickets.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use docket_domain::ticket::TicketEvent;
use docket_domain::values::{AgentStatus, TeamRole};
use docket_domain::workforce::agent::AgentEvent;
use docket_domain::workforce::shift::{BreakWindow, ShiftEvent};
use docket_domain::workforce::skill::SkillEvent;
use docket_domain::workforce::team::TeamEvent;
use docket_domain::{Priority, Role, TicketStatus};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::fold;
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

#[derive(Debug, Clone, Copy, Default)]
pub struct WorkforceProjection;

/// The ticket events that change who holds what, or what a ticket needs.
const ROUTING_TICKET_EVENTS: &[&str] = &[
    "TicketCreated",
    "TicketPriorityChanged",
    "TicketStatusChanged",
    "TicketAssigned",
    "TicketUnassigned",
    "TicketRouted",
    "TicketTeamAssigned",
];

fn id_of(event: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| ProjectionError::unapplicable(event, e))
}

fn json<T: Serialize>(
    event: &RecordedEvent,
    value: &T,
) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(value).map_err(|e| ProjectionError::unapplicable(event, e))
}

/// A ticket as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct RoutingTicketRow {
    pub ticket_id: Uuid,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    pub urgency: i16,
    #[sqlx(try_from = "String")]
    pub status: TicketStatus,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub skill_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl RoutingTicketRow {
    fn is_open(&self) -> bool {
        !self.status.is_finished()
    }

    /// What the ticket adds to its assignee's load: (agent, open, critical).
    fn load(&self) -> Option<(Uuid, i32, i32)> {
        let agent = self.assignee_id.filter(|_| self.is_open())?;
        Some((agent, 1, i32::from(self.priority == Priority::Critical)))
    }
}

/// Folds one ticket event into its routing row. Returns the instant of an assignment, if any.
fn fold_ticket(
    row: &mut Option<RoutingTicketRow>,
    ticket_id: Uuid,
    sequence: i64,
    event: TicketEvent,
) -> Result<Option<(Uuid, DateTime<Utc>)>, String> {
    if row.as_ref().is_some_and(|r| sequence <= r.version) {
        return Ok(None);
    }
    let Some(ticket) = row.as_mut() else {
        let TicketEvent::TicketCreated {
            priority,
            occurred_at,
            ..
        } = event
        else {
            return Err(format!("{} before TicketCreated", event.name()));
        };
        *row = Some(RoutingTicketRow {
            ticket_id,
            priority,
            urgency: priority.urgency(),
            status: TicketStatus::New,
            assignee_id: None,
            team_id: None,
            skill_id: None,
            created_at: occurred_at,
            version: sequence,
        });
        return Ok(None);
    };
    ticket.version = sequence;
    let mut assigned = None;
    match event {
        TicketEvent::TicketPriorityChanged { to, .. } => {
            ticket.priority = to;
            ticket.urgency = to.urgency();
        }
        TicketEvent::TicketStatusChanged { to, .. } => ticket.status = to,
        TicketEvent::TicketAssigned {
            assignee_id,
            occurred_at,
            ..
        } => {
            ticket.assignee_id = Some(assignee_id.0);
            assigned = Some((assignee_id.0, occurred_at));
        }
        TicketEvent::TicketRouted { decision, .. } => {
            ticket.skill_id = decision.requirements.skill_id.map(|s| s.0);
            if let Some(team) = decision.requirements.team_id {
                ticket.team_id = Some(team.0);
            }
        }
        TicketEvent::TicketTeamAssigned { team_id, .. } => ticket.team_id = team_id.map(|t| t.0),
        TicketEvent::TicketUnassigned { .. } => ticket.assignee_id = None,
        // What routing does not weigh: the ticket's text, its conversation, its SLA clocks.
        TicketEvent::TicketCreated { .. }
        | TicketEvent::TicketDetailsUpdated { .. }
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
        | TicketEvent::TicketFollowed { .. }
        | TicketEvent::TicketUnfollowed { .. } => {}
    }
    Ok(assigned)
}

#[derive(Debug, Default)]
struct LoadDelta {
    open: i32,
    critical: i32,
    last_assigned_at: Option<DateTime<Utc>>,
}

impl WorkforceProjection {
    async fn apply_tickets(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut decoded = Vec::with_capacity(events.len());
        for event in events {
            decoded.push((*event, id_of(event)?, fold::decode::<TicketEvent>(event)?));
        }
        let mut ids: Vec<Uuid> = decoded.iter().map(|(_, id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let existing: Vec<RoutingTicketRow> =
            sqlx::query_as("SELECT * FROM routing_tickets_view WHERE ticket_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        let mut rows: HashMap<Uuid, Option<RoutingTicketRow>> = existing
            .into_iter()
            .map(|r| (r.ticket_id, Some(r)))
            .collect();
        let before: HashMap<Uuid, Option<(Uuid, i32, i32)>> = ids
            .iter()
            .map(|id| (*id, rows.get(id).and_then(|r| r.as_ref()?.load())))
            .collect();
        let mut deltas: BTreeMap<Uuid, LoadDelta> = BTreeMap::new();
        for (event, id, payload) in decoded {
            let row = rows.entry(id).or_insert(None);
            if let Some((agent, at)) = fold_ticket(row, id, event.sequence, payload)
                .map_err(|reason| ProjectionError::unapplicable(event, reason))?
            {
                let delta = deltas.entry(agent).or_default();
                delta.last_assigned_at = delta.last_assigned_at.max(Some(at));
            }
        }
        let mut changed = Vec::with_capacity(ids.len());
        for id in &ids {
            let Some(Some(row)) = rows.get(id) else {
                continue;
            };
            if let Some(Some((agent, open, critical))) = before.get(id) {
                let delta = deltas.entry(*agent).or_default();
                delta.open -= open;
                delta.critical -= critical;
            }
            if let Some((agent, open, critical)) = row.load() {
                let delta = deltas.entry(agent).or_default();
                delta.open += open;
                delta.critical += critical;
            }
            changed.push(row.clone());
        }
        sqlx::query(
            "INSERT INTO routing_tickets_view (ticket_id, priority, urgency, status, assignee_id,
                    team_id, skill_id, created_at, version)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::smallint[], $4::text[], $5::uuid[],
                    $6::uuid[], $7::uuid[], $8::timestamptz[], $9::bigint[])
             ON CONFLICT (ticket_id) DO UPDATE SET priority = EXCLUDED.priority,
                    urgency = EXCLUDED.urgency, status = EXCLUDED.status,
                    assignee_id = EXCLUDED.assignee_id, team_id = EXCLUDED.team_id,
                    skill_id = EXCLUDED.skill_id, version = EXCLUDED.version",
        )
        .bind(changed.iter().map(|r| r.ticket_id).collect::<Vec<_>>())
        .bind(
            changed
                .iter()
                .map(|r| r.priority.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(changed.iter().map(|r| r.urgency).collect::<Vec<_>>())
        .bind(
            changed
                .iter()
                .map(|r| r.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(changed.iter().map(|r| r.assignee_id).collect::<Vec<_>>())
        .bind(changed.iter().map(|r| r.team_id).collect::<Vec<_>>())
        .bind(changed.iter().map(|r| r.skill_id).collect::<Vec<_>>())
        .bind(changed.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(changed.iter().map(|r| r.version).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        deltas.retain(|_, d| d.open != 0 || d.critical != 0 || d.last_assigned_at.is_some());
        if !deltas.is_empty() {
            sqlx::query(
                "INSERT INTO agent_profiles_view AS p (agent_id, open_tickets, critical_tickets,
                        last_assigned_at)
                 SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::int[], $4::timestamptz[])
                 ON CONFLICT (agent_id) DO UPDATE SET
                        open_tickets = p.open_tickets + EXCLUDED.open_tickets,
                        critical_tickets = p.critical_tickets + EXCLUDED.critical_tickets,
                        last_assigned_at = GREATEST(p.last_assigned_at, EXCLUDED.last_assigned_at),
                        revision = EXCLUDED.revision",
            )
            .bind(deltas.keys().copied().collect::<Vec<_>>())
            .bind(deltas.values().map(|d| d.open).collect::<Vec<_>>())
            .bind(deltas.values().map(|d| d.critical).collect::<Vec<_>>())
            .bind(
                deltas
                    .values()
                    .map(|d| d.last_assigned_at)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn apply_config(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let id = id_of(event)?;
        let sequence = event.sequence;
        match event.aggregate_type.as_str() {
            "skill" => match fold::decode::<SkillEvent>(event)? {
                SkillEvent::SkillCreated {
                    name,
                    description,
                    occurred_at,
                    ..
                } => {
                    sqlx::query(
                        "INSERT INTO skills_view (id, name, description, created_at)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(name.as_str())
                    .bind(description.as_ref().map(|d| d.as_str()))
                    .bind(occurred_at)
                    .execute(&mut *conn)
                    .await?;
                }
            },
            "team" => {
                let current: Option<i64> =
                    sqlx::query_scalar("SELECT aggregate_version FROM teams_view WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                if current.is_some_and(|v| sequence <= v) {
                    return Ok(());
                }
                match fold::decode::<TeamEvent>(event)? {
                    TeamEvent::TeamCreated {
                        name,
                        description,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "INSERT INTO teams_view (id, name, description, created_at, aggregate_version)
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                        )
                        .bind(id)
                        .bind(name.as_str())
                        .bind(description.as_ref().map(|d| d.as_str()))
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                    }
                    TeamEvent::TeamMemberAdded {
                        user_id,
                        team_role,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "INSERT INTO team_members_view (team_id, user_id, team_role, added_at)
                             VALUES ($1, $2, $3, $4) ON CONFLICT (team_id, user_id)
                             DO UPDATE SET team_role = EXCLUDED.team_role",
                        )
                        .bind(id)
                        .bind(user_id.0)
                        .bind(team_role.as_str())
                        .bind(occurred_at)
                        .execute(&mut *conn)
                        .await?;
                        touch_agent(&mut *conn, user_id.0).await?;
                    }
                    TeamEvent::TeamMemberRoleChanged { user_id, to, .. } => {
                        sqlx::query(
                            "UPDATE team_members_view SET team_role = $3
                              WHERE team_id = $1 AND user_id = $2",
                        )
                        .bind(id)
                        .bind(user_id.0)
                        .bind(to.as_str())
                        .execute(&mut *conn)
                        .await?;
                    }
                    TeamEvent::TeamMemberRemoved { user_id, .. } => {
                        sqlx::query(
                            "DELETE FROM team_members_view WHERE team_id = $1 AND user_id = $2",
                        )
                        .bind(id)
                        .bind(user_id.0)
                        .execute(&mut *conn)
                        .await?;
                        touch_agent(&mut *conn, user_id.0).await?;
                    }
                }
                sqlx::query("UPDATE teams_view SET aggregate_version = $2 WHERE id = $1")
                    .bind(id)
                    .bind(sequence)
                    .execute(&mut *conn)
                    .await?;
            }
            "agent" => {
                // The aggregate id is the agent's user id; every event sets one column, so
                // applying it twice changes nothing.
                match fold::decode::<AgentEvent>(event)? {
                    AgentEvent::AgentSkillsSet { skills, .. } => {
                        let map: BTreeMap<String, u8> = skills
                            .iter()
                            .map(|s| (s.skill_id.0.to_string(), s.proficiency))
                            .collect();
                        sqlx::query(
                            "INSERT INTO agent_profiles_view (agent_id, skills) VALUES ($1, $2)
                             ON CONFLICT (agent_id) DO UPDATE SET skills = EXCLUDED.skills,
                                    revision = EXCLUDED.revision",
                        )
                        .bind(id)
                        .bind(json(event, &map)?)
                        .execute(&mut *conn)
                        .await?;
                    }
                    AgentEvent::AgentStatusChanged {
                        to, occurred_at, ..
                    } => {
                        sqlx::query(
                            "INSERT INTO agent_profiles_view (agent_id, status, status_changed_at)
                             VALUES ($1, $2, $3)
                             ON CONFLICT (agent_id) DO UPDATE SET status = EXCLUDED.status,
                                    status_changed_at = EXCLUDED.status_changed_at,
                                    revision = EXCLUDED.revision",
                        )
                        .bind(id)
                        .bind(to.as_str())
                        .bind(occurred_at)
                        .execute(&mut *conn)
                        .await?;
                    }
                    AgentEvent::AgentCapacitySet { capacity, .. } => {
                        sqlx::query(
                            "INSERT INTO agent_profiles_view (agent_id, capacity) VALUES ($1, $2)
                             ON CONFLICT (agent_id) DO UPDATE SET capacity = EXCLUDED.capacity,
                                    revision = EXCLUDED.revision",
                        )
                        .bind(id)
                        .bind(i32::try_from(capacity).unwrap_or(i32::MAX))
                        .execute(&mut *conn)
                        .await?;
                    }
                    // The shift's own events say when it runs; the agent's record of it only
                    // keeps two shifts from starting at once.
                    AgentEvent::AgentShiftOpened { .. } | AgentEvent::AgentShiftClosed { .. } => {}
                }
            }
            "shift" => {
                let current: Option<i64> =
                    sqlx::query_scalar("SELECT aggregate_version FROM shifts_view WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                if current.is_some_and(|v| sequence <= v) {
                    return Ok(());
                }
                match fold::decode::<ShiftEvent>(event)? {
                    ShiftEvent::ShiftStarted {
                        agent_id,
                        scheduled_end,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "INSERT INTO shifts_view (id, agent_id, started_at, scheduled_end, aggregate_version)
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                        )
                        .bind(id)
                        .bind(agent_id.0)
                        .bind(occurred_at)
                        .bind(scheduled_end)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                        // The newest shift is the agent's current one.
                        sqlx::query(
                            "INSERT INTO agent_profiles_view (agent_id, shift_id, shift_started_at,
                                    shift_scheduled_end, breaks)
                             VALUES ($1, $2, $3, $4, '[]')
                             ON CONFLICT (agent_id) DO UPDATE SET shift_id = EXCLUDED.shift_id,
                                    shift_started_at = EXCLUDED.shift_started_at,
                                    shift_scheduled_end = EXCLUDED.shift_scheduled_end,
                                    breaks = '[]', revision = EXCLUDED.revision",
                        )
                        .bind(agent_id.0)
                        .bind(id)
                        .bind(occurred_at)
                        .bind(scheduled_end)
                        .execute(&mut *conn)
                        .await?;
                    }
                    ShiftEvent::BreakScheduled {
                        agent_id, window, ..
                    } => {
                        let window: BreakWindow = window;
                        let value = json(event, &[window])?;
                        sqlx::query(
                            "UPDATE shifts_view SET breaks = breaks || $2, aggregate_version = $3 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(&value)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query(
                            "UPDATE agent_profiles_view SET breaks = breaks || $3,
                                    revision = nextval('agent_profiles_revision')
                              WHERE agent_id = $1 AND shift_id = $2",
                        )
                        .bind(agent_id.0)
                        .bind(id)
                        .bind(&value)
                        .execute(&mut *conn)
                        .await?;
                    }
                    ShiftEvent::ShiftEnded {
                        agent_id,
                        occurred_at,
                        ..
                    } => {
                        sqlx::query(
                            "UPDATE shifts_view SET ended_at = $2, aggregate_version = $3 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(occurred_at)
                        .bind(sequence)
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query(
                            "UPDATE agent_profiles_view SET shift_id = NULL, shift_started_at = NULL,
                                    shift_scheduled_end = NULL, breaks = '[]',
                                    revision = nextval('agent_profiles_revision')
                              WHERE agent_id = $1 AND shift_id = $2",
                        )
                        .bind(agent_id.0)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    }
                }
            }
            other => {
                return Err(ProjectionError::unapplicable(
                    event,
                    format!("unexpected aggregate type {other}"),
                ));
            }
        }
        Ok(())
    }
}

/// Marks an agent's profile as changed for readers that follow `revision` (the routing cache),
/// when something the profile row does not hold itself — team membership — changed.
async fn touch_agent(conn: &mut PgConnection, agent_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE agent_profiles_view SET revision = nextval('agent_profiles_revision')
          WHERE agent_id = $1",
    )
    .bind(agent_id)
    .execute(conn)
    .await
    .map(|_| ())
}

impl Projection for WorkforceProjection {
    const NAME: &'static str = "workforce";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["skill", "team", "agent", "shift", "ticket"];
    /// A profile's revision is drawn from a sequence at each change (for the routing cache to
    /// follow); a rebuild draws it afresh, so it says nothing about the profile.
    const UNCOMPARED_COLUMNS: &'static [(&'static str, &'static str)] =
        &[("agent_profiles_view", "revision")];
    const TABLES: &'static [&'static str] = &[
        "skills_view",
        "teams_view",
        "team_members_view",
        "agent_profiles_view",
        "shifts_view",
        "routing_tickets_view",
    ];
    type Rebuild = ();

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // Runs of ticket events are applied together; configuration events one by one, in
        // order, between them (a shift started after an assignment must see its load).
        let mut run: Vec<&RecordedEvent> = Vec::new();
        for event in events {
            if event.aggregate_type == "ticket" {
                if ROUTING_TICKET_EVENTS.contains(&event.event_type.as_str()) {
                    run.push(event);
                }
                continue;
            }
            self.apply_tickets(conn, &run).await?;
            run.clear();
            self.apply_config(conn, event).await?;
        }
        self.apply_tickets(conn, &run).await
    }
}

// ---- queries ---------------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct SkillRow {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn skills<'e, E: PgExecutor<'e>>(db: E) -> Result<Vec<SkillRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, description, created_at FROM skills_view ORDER BY lower(name)")
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct TeamRow {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn teams<'e, E: PgExecutor<'e>>(db: E) -> Result<Vec<TeamRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, description, created_at FROM teams_view ORDER BY lower(name), id",
    )
    .fetch_all(db)
    .await
}

pub async fn team<'e, E: PgExecutor<'e>>(db: E, id: Uuid) -> Result<Option<TeamRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, description, created_at FROM teams_view WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct MemberRow {
    pub team_id: Uuid,
    pub user_id: Uuid,
    #[sqlx(try_from = "String")]
    pub team_role: TeamRole,
    pub added_at: DateTime<Utc>,
    pub email: Option<String>,
    pub full_name: Option<String>,
}

/// Members of `team` (or of every team when `None`).
pub async fn members<'e, E: PgExecutor<'e>>(
    db: E,
    team: Option<Uuid>,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.team_id, m.user_id, m.team_role, m.added_at, u.email, u.full_name
           FROM team_members_view m LEFT JOIN users_view u ON u.id = m.user_id
          WHERE $1::uuid IS NULL OR m.team_id = $1
          ORDER BY m.team_id, CASE m.team_role WHEN 'manager' THEN 0 WHEN 'lead' THEN 1 ELSE 2 END,
                   m.added_at, m.user_id",
    )
    .bind(team)
    .fetch_all(db)
    .await
}

/// An agent (a user who can hold tickets) with their profile, or its defaults.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct AgentRow {
    pub agent_id: Uuid,
    pub email: String,
    pub full_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub active: bool,
    #[sqlx(try_from = "String")]
    pub status: AgentStatus,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub capacity: i32,
    /// Proficiency (1 to 5) by skill.
    #[sqlx(json)]
    pub skills: BTreeMap<Uuid, u8>,
    pub shift_id: Option<Uuid>,
    pub shift_started_at: Option<DateTime<Utc>>,
    pub shift_scheduled_end: Option<DateTime<Utc>>,
    #[sqlx(json)]
    pub breaks: Vec<BreakWindow>,
    pub open_tickets: i32,
    pub critical_tickets: i32,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub teams: Vec<Uuid>,
    /// Where the profile row stands in the order of changes (`agent_profiles_revision`).
    #[serde(skip)]
    pub revision: i64,
}

impl AgentRow {
    /// The same rule as [`routable_agents`], for rows read another way.
    pub fn routable(&self) -> bool {
        self.status == AgentStatus::Available
            && self.shift_id.is_some()
            && self.active
            && self.role.can_be_assigned()
    }
}

const AGENT_COLUMNS: &str = "u.id AS agent_id, u.email, u.full_name, u.role, u.active,
        COALESCE(p.status, 'offline') AS status, p.status_changed_at,
        COALESCE(p.capacity, 10) AS capacity, COALESCE(p.skills, '{}') AS skills,
        p.shift_id, p.shift_started_at, p.shift_scheduled_end, COALESCE(p.breaks, '[]') AS breaks,
        COALESCE(p.open_tickets, 0) AS open_tickets,
        COALESCE(p.critical_tickets, 0) AS critical_tickets, p.last_assigned_at,
        ARRAY(SELECT m.team_id FROM team_members_view m WHERE m.user_id = u.id ORDER BY m.team_id) AS teams,
        COALESCE(p.revision, 0) AS revision";

/// Every agent and manager account, or one.
pub async fn agents<'e, E: PgExecutor<'e>>(
    db: E,
    only: Option<Uuid>,
) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS}
           FROM users_view u LEFT JOIN agent_profiles_view p ON p.agent_id = u.id
          WHERE u.role IN ('agent', 'manager') AND ($1::uuid IS NULL OR u.id = $1)
          ORDER BY u.full_name, u.id"
    ))
    .bind(only)
    .fetch_all(db)
    .await
}

/// The agents routing could choose now: available, on a shift, active. The rest of the rules
/// (breaks, capacity, skills, teams) are the domain's, applied to these rows.
pub async fn routable_agents<'e, E: PgExecutor<'e>>(db: E) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS}
           FROM agent_profiles_view p JOIN users_view u ON u.id = p.agent_id
          WHERE p.status = 'available' AND p.shift_id IS NOT NULL
            AND u.active AND u.role IN ('agent', 'manager')"
    ))
    .fetch_all(db)
    .await
}

/// What, besides profile rows, can change the routable agents: the users model (an account
/// deactivated or given another role) and the profile table itself (swapped in by a rebuild).
/// While it stands, following `revision` is enough to keep a copy of the agents current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct AgentsGeneration {
    pub users_events_applied: i64,
    pub profiles_table: i64,
    pub latest_revision: i64,
}

pub async fn agents_generation<'e, E: PgExecutor<'e>>(
    db: E,
) -> Result<AgentsGeneration, sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE((SELECT events_applied FROM projector_checkpoints
                           WHERE projector = 'users'), 0) AS users_events_applied,
                'agent_profiles_view'::regclass::oid::bigint AS profiles_table,
                COALESCE((SELECT max(revision) FROM agent_profiles_view), 0) AS latest_revision",
    )
    .fetch_one(db)
    .await
}

/// Agent profiles changed after `revision`, routable or not, oldest change first.
pub async fn agents_changed_since<'e, E: PgExecutor<'e>>(
    db: E,
    revision: i64,
) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS}
           FROM agent_profiles_view p JOIN users_view u ON u.id = p.agent_id
          WHERE p.revision > $1
          ORDER BY p.revision"
    ))
    .bind(revision)
    .fetch_all(db)
    .await
}

/// The agents holding tickets who could be the source of a rebalance: over capacity, or off
/// shift or unavailable with tickets.
pub async fn agents_with_tickets<'e, E: PgExecutor<'e>>(
    db: E,
) -> Result<Vec<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS}
           FROM agent_profiles_view p JOIN users_view u ON u.id = p.agent_id
          WHERE p.open_tickets > 0"
    ))
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct QueuedTicket {
    pub ticket_id: Uuid,
    pub number: Option<i64>,
    pub subject: Option<String>,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    #[sqlx(try_from = "String")]
    pub status: TicketStatus,
    pub team_id: Option<Uuid>,
    pub skill_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The queue's rows in serving order (most urgent, then oldest), as routing needs them.
pub async fn queued_tickets<'e, E: PgExecutor<'e>>(
    db: E,
    limit: i64,
) -> Result<Vec<RoutingTicketRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM routing_tickets_view
          WHERE assignee_id IS NULL AND status NOT IN ('resolved', 'closed')
          ORDER BY urgency DESC, created_at, ticket_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Unassigned unfinished tickets in the order they are served: most urgent, then oldest.
pub async fn queue<'e, E: PgExecutor<'e>>(
    db: E,
    skip: i64,
    limit: i64,
) -> Result<Vec<QueuedTicket>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.ticket_id, t.number, t.subject, r.priority, r.status, r.team_id, r.skill_id,
                r.created_at
           FROM routing_tickets_view r LEFT JOIN tickets_view t ON t.id = r.ticket_id
          WHERE r.assignee_id IS NULL AND r.status NOT IN ('resolved', 'closed')
          ORDER BY r.urgency DESC, r.created_at, r.ticket_id
          LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(skip)
    .fetch_all(db)
    .await
}

pub async fn queue_length<'e, E: PgExecutor<'e>>(db: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM routing_tickets_view
          WHERE assignee_id IS NULL AND status NOT IN ('resolved', 'closed')",
    )
    .fetch_one(db)
    .await
}

/// Whether a queued ticket and a routable agent both exist (two cheap, indexed reads): whether
/// routing has anything to do.
pub async fn routing_pending<'e, E: PgExecutor<'e>>(db: E) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM routing_tickets_view
                         WHERE assignee_id IS NULL AND status NOT IN ('resolved', 'closed'))
            AND EXISTS (SELECT 1 FROM agent_profiles_view
                         WHERE status = 'available' AND shift_id IS NOT NULL
                           AND open_tickets < capacity)",
    )
    .fetch_one(db)
    .await
}

/// Queued tickets per team that has any.
pub async fn queued_per_team<'e, E: PgExecutor<'e>>(
    db: E,
) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT team_id, count(*) FROM routing_tickets_view
          WHERE assignee_id IS NULL AND team_id IS NOT NULL
            AND status NOT IN ('resolved', 'closed')
          GROUP BY team_id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// When the oldest ticket was created.
pub async fn oldest_ticket<'e, E: PgExecutor<'e>>(
    db: E,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(created_at) FROM routing_tickets_view")
        .fetch_one(db)
        .await
}

/// The lead of the ticket's team (its manager when it has no lead).
pub async fn team_lead_of<'e, E: PgExecutor<'e>>(
    db: E,
    ticket: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT m.user_id FROM routing_tickets_view r
           JOIN team_members_view m ON m.team_id = r.team_id
          WHERE r.ticket_id = $1 AND m.team_role IN ('lead', 'manager')
          ORDER BY CASE m.team_role WHEN 'lead' THEN 0 ELSE 1 END, m.added_at, m.user_id
          LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(db)
    .await
}

/// An agent's unfinished tickets, newest assignment last.
pub async fn tickets_of<'e, E: PgExecutor<'e>>(
    db: E,
    agent: Uuid,
) -> Result<Vec<RoutingTicketRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM routing_tickets_view
          WHERE assignee_id = $1 AND status NOT IN ('resolved', 'closed')
          ORDER BY created_at, ticket_id",
    )
    .bind(agent)
    .fetch_all(db)
    .await
}

pub async fn routing_ticket<'e, E: PgExecutor<'e>>(
    db: E,
    ticket: Uuid,
) -> Result<Option<RoutingTicketRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM routing_tickets_view WHERE ticket_id = $1")
        .bind(ticket)
        .fetch_optional(db)
        .await
}

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ShiftRow {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub scheduled_end: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    #[sqlx(json)]
    pub breaks: Vec<BreakWindow>,
}

/// A page of an agent's shifts, newest first, and how many they have in all.
pub async fn shifts_of(
    pool: &sqlx::PgPool,
    agent: Uuid,
    page: i64,
    page_size: i64,
) -> Result<(Vec<ShiftRow>, i64), sqlx::Error> {
    let shifts = sqlx::query_as(
        "SELECT id, agent_id, started_at, scheduled_end, ended_at, breaks FROM shifts_view
          WHERE agent_id = $1 ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(agent)
    .bind(page_size)
    .bind((page - 1).saturating_mul(page_size))
    .fetch_all(pool)
    .await?;
    let (total,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM shifts_view WHERE agent_id = $1")
        .bind(agent)
        .fetch_one(pool)
        .await?;
    Ok((shifts, total))
}

/// Per agent: unfinished tickets whose SLA is at risk or breached (from the tickets model).
pub async fn sla_at_risk_by_agent<'e, E: PgExecutor<'e>>(
    db: E,
) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT assignee_id, count(*) FROM tickets_view
          WHERE assignee_id IS NOT NULL AND status NOT IN ('resolved', 'closed')
            AND sla_state IN ('at_risk', 'breached')
          GROUP BY assignee_id",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Tickets created per hour, for forecasting: `(hour start, count)` since `from`.
pub async fn arrivals_per_hour<'e, E: PgExecutor<'e>>(
    db: E,
    from: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT date_trunc('hour', created_at) AS hour, count(*) FROM routing_tickets_view
          WHERE created_at >= $1 GROUP BY 1 ORDER BY 1",
    )
    .bind(from)
    .fetch_all(db)
    .await
}

/// Mean business hours tickets resolved since `from` spent open (their resolution clocks), and
/// how many there were.
pub async fn mean_resolution_hours<'e, E: PgExecutor<'e>>(
    db: E,
    from: DateTime<Utc>,
) -> Result<(Option<f64>, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (avg(elapsed_ms) / 3600000.0)::float8, count(*) FROM sla_clocks_view
          WHERE metric = 'resolution' AND met IS NOT NULL AND stopped_at >= $1",
    )
    .bind(from)
    .fetch_one(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use docket_domain::values::{
        Actor, Description, Role, Subject, Tags, TicketId, TicketNumber, UserId,
    };

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, minute, 0)
            .single()
            .unwrap_or_default()
    }

    fn created(id: Uuid) -> TicketEvent {
        TicketEvent::TicketCreated {
            ticket_id: TicketId(id),
            number: TicketNumber(1),
            customer_id: UserId(Uuid::from_u128(9)),
            subject: Subject::parse("VPN down").unwrap_or_else(|e| panic!("{e}")),
            description: Description::parse("It is down").unwrap_or_else(|e| panic!("{e}")),
            priority: Priority::Critical,
            category: None,
            tags: Tags::default(),
            created_by: Actor::new(UserId(Uuid::from_u128(9)), Role::Customer),
            occurred_at: at(0),
        }
    }

    #[test]
    fn a_ticket_counts_for_its_assignee_only_while_unfinished() {
        let id = Uuid::from_u128(1);
        let agent = UserId(Uuid::from_u128(2));
        let mut row = None;
        assert_eq!(fold_ticket(&mut row, id, 1, created(id)), Ok(None));
        assert_eq!(row.as_ref().and_then(RoutingTicketRow::load), None);
        let assigned = TicketEvent::TicketAssigned {
            assignee_id: agent,
            previous_assignee_id: None,
            reason: None,
            assigned_by: Actor::system(),
            occurred_at: at(5),
        };
        assert_eq!(
            fold_ticket(&mut row, id, 2, assigned.clone()),
            Ok(Some((agent.0, at(5))))
        );
        assert_eq!(
            row.as_ref().and_then(RoutingTicketRow::load),
            Some((agent.0, 1, 1))
        );
        // The same event again changes nothing.
        assert_eq!(fold_ticket(&mut row, id, 2, assigned), Ok(None));
        let resolved = TicketEvent::TicketStatusChanged {
            from: docket_domain::TicketStatus::New,
            to: docket_domain::TicketStatus::Resolved,
            comment: None,
            changed_by: Actor::system(),
            occurred_at: at(9),
        };
        assert_eq!(fold_ticket(&mut row, id, 3, resolved), Ok(None));
        assert_eq!(row.as_ref().and_then(RoutingTicketRow::load), None);
    }

    #[test]
    fn an_event_before_creation_is_refused() {
        let mut row = None;
        let result = fold_ticket(
            &mut row,
            Uuid::from_u128(1),
            1,
            TicketEvent::TicketTeamAssigned {
                team_id: None,
                previous_team_id: None,
                assigned_by: Actor::system(),
                occurred_at: at(0),
            },
        );
        assert!(result.is_err());
    }
}
