//! The SLA side of the tickets read model: each ticket's clocks as rows (`sla_clocks_view`), a
//! summary on the ticket row, and the queries the deadline scheduler and the SLA API run.

use chrono::{DateTime, Utc};
use docket_domain::Priority;
use docket_domain::sla::config::{RuleCondition, RuleDefinition};
use docket_domain::sla::{Clock, ClockState, SlaMetric};
use docket_domain::ticket::TicketSla;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

/// The ticket-level summary lists filter and sort on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaSummary {
    /// The worst state among the clocks still counting (or among all, when none is).
    pub state: Option<ClockState>,
    /// The nearest deadline of a running clock.
    pub due_at: Option<DateTime<Utc>>,
    /// Some clock has breached.
    pub breached: bool,
}

pub fn summary(sla: Option<&TicketSla>) -> SlaSummary {
    let Some(sla) = sla else {
        return SlaSummary {
            state: None,
            due_at: None,
            breached: false,
        };
    };
    let active: Vec<&Clock> = sla.clocks.values().filter(|c| !c.is_stopped()).collect();
    let considered: Vec<&Clock> = if active.is_empty() {
        sla.clocks.values().collect()
    } else {
        active
    };
    SlaSummary {
        state: considered
            .iter()
            .map(|c| c.recorded_state())
            .max_by_key(|s| s.severity()),
        due_at: sla
            .clocks
            .values()
            .filter(|c| c.is_running())
            .filter_map(|c| c.due_at)
            .min(),
        breached: sla.clocks.values().any(|c| c.breached),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize)]
pub struct ClockRow {
    pub ticket_id: Uuid,
    pub metric: String,
    pub cycle: i32,
    pub state: String,
    pub target_seconds: i64,
    pub started_at: DateTime<Utc>,
    pub elapsed_ms: i64,
    pub running_since: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub warn_at: Option<DateTime<Utc>>,
    pub warned: bool,
    pub breached: bool,
    pub stopped_at: Option<DateTime<Utc>>,
    pub met: Option<bool>,
    pub next_check_at: Option<DateTime<Utc>>,
    pub policy_id: Uuid,
    pub policy_version: i32,
}

/// The rows for a ticket's clocks.
pub fn clock_rows(ticket_id: Uuid, sla: &TicketSla) -> Vec<ClockRow> {
    sla.clocks
        .values()
        .map(|clock| ClockRow {
            ticket_id,
            metric: clock.metric.as_str().to_string(),
            cycle: i32::try_from(clock.cycle).unwrap_or(i32::MAX),
            state: clock.recorded_state().as_str().to_string(),
            target_seconds: i64::try_from(clock.target_seconds).unwrap_or(i64::MAX),
            started_at: clock.started_at,
            elapsed_ms: clock.elapsed_ms,
            running_since: clock.running_since,
            due_at: clock.due_at,
            warn_at: clock.warn_at,
            warned: clock.warned,
            breached: clock.breached,
            stopped_at: clock.stopped_at,
            met: clock.met,
            next_check_at: match (clock.is_running(), clock.warned, clock.breached) {
                (true, false, false) => clock.warn_at.or(clock.due_at),
                (true, true, false) => clock.due_at,
                _ => None,
            },
            policy_id: sla.policy.policy_id,
            policy_version: i32::try_from(sla.policy.version).unwrap_or(i32::MAX),
        })
        .collect()
}

pub async fn upsert_clocks(conn: &mut PgConnection, rows: &[ClockRow]) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "INSERT INTO sla_clocks_view (ticket_id, metric, cycle, state, target_seconds, started_at,
                elapsed_ms, running_since, due_at, warn_at, warned, breached, stopped_at, met,
                next_check_at, policy_id, policy_version)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::text[], $5::bigint[],
                              $6::timestamptz[], $7::bigint[], $8::timestamptz[], $9::timestamptz[],
                              $10::timestamptz[], $11::bool[], $12::bool[], $13::timestamptz[],
                              $14::bool[], $15::timestamptz[], $16::uuid[], $17::int[])
         ON CONFLICT (ticket_id, metric) DO UPDATE SET
                cycle = EXCLUDED.cycle, state = EXCLUDED.state,
                target_seconds = EXCLUDED.target_seconds, started_at = EXCLUDED.started_at,
                elapsed_ms = EXCLUDED.elapsed_ms, running_since = EXCLUDED.running_since,
                due_at = EXCLUDED.due_at, warn_at = EXCLUDED.warn_at, warned = EXCLUDED.warned,
                breached = EXCLUDED.breached, stopped_at = EXCLUDED.stopped_at, met = EXCLUDED.met,
                next_check_at = EXCLUDED.next_check_at, policy_id = EXCLUDED.policy_id,
                policy_version = EXCLUDED.policy_version",
    )
    .bind(column!(ticket_id))
    .bind(column!(metric))
    .bind(column!(cycle))
    .bind(column!(state))
    .bind(column!(target_seconds))
    .bind(column!(started_at))
    .bind(column!(elapsed_ms))
    .bind(column!(running_since))
    .bind(column!(due_at))
    .bind(column!(warn_at))
    .bind(column!(warned))
    .bind(column!(breached))
    .bind(column!(stopped_at))
    .bind(column!(met))
    .bind(column!(next_check_at))
    .bind(column!(policy_id))
    .bind(column!(policy_version))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---- queries ---------------------------------------------------------------------------------

/// Clocks whose warning or deadline has come by `now`, as `(ticket, instant)`, most overdue
/// first, leaving out the pairs in `exclude` (checked a moment ago; the projection has yet to
/// show what the check recorded). Walks the `next_check_at` index, so it costs the same with a
/// hundred thousand due clocks.
pub async fn due_clocks<'e, E: PgExecutor<'e>>(
    executor: E,
    now: DateTime<Utc>,
    limit: i64,
    exclude: &[(Uuid, DateTime<Utc>)],
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    let (ids, instants): (Vec<Uuid>, Vec<DateTime<Utc>>) = exclude.iter().copied().unzip();
    sqlx::query_as(
        "SELECT c.ticket_id, c.next_check_at FROM sla_clocks_view c
          WHERE c.next_check_at <= $1
            AND NOT EXISTS (SELECT 1 FROM unnest($3::uuid[], $4::timestamptz[]) AS x(id, at)
                             WHERE x.id = c.ticket_id AND x.at = c.next_check_at)
          ORDER BY c.next_check_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .bind(&ids)
    .bind(&instants)
    .fetch_all(executor)
    .await
}

/// The next instant any clock needs looking at.
pub async fn next_check<'e, E: PgExecutor<'e>>(
    executor: E,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(next_check_at) FROM sla_clocks_view WHERE next_check_at IS NOT NULL",
    )
    .fetch_one(executor)
    .await
}

/// The SQL condition for one rule condition, over `tickets_view t`. `$2` is the instant of
/// evaluation (the server's clock, not the database's: time is an input) and `$5` the instant
/// the rule was saved, or NULL when it applies to what holds already: a condition must have
/// come about (a clock warned or breached, a wait grown long enough) at or after it.
fn condition_sql(condition: &RuleCondition) -> String {
    let clock = |state: &str, metrics: &[SlaMetric], since: &str| {
        let metric = if metrics.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = metrics
                .iter()
                .map(|m| format!("'{}'", m.as_str()))
                .collect();
            format!(" AND c.metric IN ({})", names.join(", "))
        };
        format!(
            "EXISTS (SELECT 1 FROM sla_clocks_view c WHERE c.ticket_id = t.id AND c.stopped_at IS NULL \
             AND {state}{metric} AND ($5::timestamptz IS NULL OR c.{since} >= $5))"
        )
    };
    let one = |metric: Option<SlaMetric>| metric.into_iter().collect::<Vec<_>>();
    match condition {
        RuleCondition::ResponseOverdue => clock(
            "c.breached",
            &[SlaMetric::FirstResponse, SlaMetric::NextResponse],
            "due_at",
        ),
        RuleCondition::ResolutionOverdue => clock("c.breached", &[SlaMetric::Resolution], "due_at"),
        RuleCondition::AtRisk { metric } => {
            clock("c.warned AND NOT c.breached", &one(*metric), "warn_at")
        }
        RuleCondition::Breached { metric } => clock("c.breached", &one(*metric), "due_at"),
        RuleCondition::UnassignedFor { minutes } => format!(
            "t.assignee_id IS NULL AND t.created_at <= $2 - interval '{minutes} minutes' \
             AND ($5::timestamptz IS NULL OR t.created_at + interval '{minutes} minutes' >= $5)"
        ),
        RuleCondition::NoUpdateFor { minutes } => format!(
            "t.updated_at <= $2 - interval '{minutes} minutes' \
             AND ($5::timestamptz IS NULL OR t.updated_at + interval '{minutes} minutes' >= $5)"
        ),
    }
}

/// Unfinished tickets that meet every condition of `rule` at `now` — come about at or after
/// `since`, when given — and have not had it applied (a ticket's log names every rule that
/// acted on it), oldest first, at most `limit`.
pub async fn rule_candidates(
    pool: &sqlx::PgPool,
    rule_id: Uuid,
    rule: &RuleDefinition,
    now: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let conditions = rule
        .conditions
        .iter()
        .map(condition_sql)
        .collect::<Vec<_>>()
        .join(" AND ");
    let conditions = if conditions.is_empty() {
        "true".to_string()
    } else {
        conditions
    };
    let priorities: Vec<&str> = rule.priorities.iter().map(|p| p.as_str()).collect();
    sqlx::query_scalar(&format!(
        "SELECT t.id FROM tickets_view t
          WHERE t.status NOT IN ('resolved', 'closed')
            AND (cardinality($1::text[]) = 0 OR t.priority = ANY($1))
            AND {conditions}
            AND NOT EXISTS (
                SELECT 1 FROM events e
                 WHERE e.aggregate_type = 'ticket' AND e.aggregate_id = t.id::text
                   AND e.event_type = 'EscalationRuleTriggered'
                   AND e.payload -> 'EscalationRuleTriggered' ->> 'rule_id' = $3)
          ORDER BY t.created_at
          LIMIT $4"
    ))
    .bind(&priorities)
    .bind(now)
    .bind(rule_id.to_string())
    .bind(limit)
    .bind(since)
    .fetch_all(pool)
    .await
}

/// How many clocks run now, and how many of their warnings and deadlines are still to come.
pub async fn clock_counts<'e, E: PgExecutor<'e>>(executor: E) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE running_since IS NOT NULL),
                count(*) FILTER (WHERE next_check_at IS NOT NULL)
           FROM sla_clocks_view",
    )
    .fetch_one(executor)
    .await
}

/// A clock at risk or breached, with its ticket.
#[derive(Debug, Clone, FromRow)]
pub struct Violation {
    pub ticket_id: Uuid,
    pub number: i64,
    pub subject: String,
    #[sqlx(try_from = "String")]
    pub priority: Priority,
    pub customer_id: Uuid,
    #[sqlx(try_from = "String")]
    pub metric: SlaMetric,
    #[sqlx(try_from = "String")]
    pub state: ClockState,
    pub due_at: Option<DateTime<Utc>>,
    pub sla: Option<sqlx::types::Json<TicketSla>>,
}

/// Clocks still counting that are at risk or breached; for a customer, only their tickets.
pub async fn violations(
    pool: &sqlx::PgPool,
    customer: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Violation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.ticket_id, t.number, t.subject, t.priority, t.customer_id, c.metric, c.state,
                c.due_at, t.sla
           FROM sla_clocks_view c JOIN tickets_view t ON t.id = c.ticket_id
          WHERE c.state IN ('at_risk', 'breached') AND c.stopped_at IS NULL
            AND ($1::uuid IS NULL OR t.customer_id = $1)
          ORDER BY c.due_at NULLS LAST, c.ticket_id
          LIMIT $2",
    )
    .bind(customer)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One group of the compliance report.
#[derive(Debug, Clone, FromRow, Serialize)]
pub struct ComplianceRow {
    pub group_key: Option<String>,
    pub metric: String,
    pub met: i64,
    pub breached: i64,
    pub mean_business_seconds: Option<f64>,
    pub p90_business_seconds: Option<f64>,
}

/// Compliance of the clocks whose outcome was decided in `[from, to)` (stopped, or passed their
/// deadline while still running), grouped by a ticket column.
pub async fn compliance(
    pool: &sqlx::PgPool,
    group_by: ComplianceGroup,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ComplianceRow>, sqlx::Error> {
    let key = match group_by {
        ComplianceGroup::Priority => "t.priority",
        ComplianceGroup::Category => "t.category",
        ComplianceGroup::Assignee => "t.assignee_id::text",
        // The team lives in the workforce model.
        ComplianceGroup::Team => {
            "(SELECT r.team_id::text FROM routing_tickets_view r WHERE r.ticket_id = t.id)"
        }
    };
    sqlx::query_as(&format!(
        "SELECT {key} AS group_key, c.metric,
                count(*) FILTER (WHERE NOT c.breached) AS met,
                count(*) FILTER (WHERE c.breached) AS breached,
                (avg(c.elapsed_ms / 1000.0) FILTER (WHERE c.stopped_at IS NOT NULL))::float8
                    AS mean_business_seconds,
                (percentile_cont(0.9) WITHIN GROUP (ORDER BY c.elapsed_ms / 1000.0)
                    FILTER (WHERE c.stopped_at IS NOT NULL))::float8 AS p90_business_seconds
           FROM sla_clocks_view c JOIN tickets_view t ON t.id = c.ticket_id
          WHERE (c.stopped_at >= $1 AND c.stopped_at < $2)
             -- A clock past its deadline has its outcome even while it still runs.
             OR (c.stopped_at IS NULL AND c.breached AND c.due_at >= $1 AND c.due_at < $2)
          GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplianceGroup {
    Priority,
    Category,
    Assignee,
    Team,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use docket_domain::sla::{AppliedPolicy, SlaMetric};

    fn clock(metric: SlaMetric) -> Clock {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 20, 9, 0, 0)
            .single()
            .unwrap_or_default();
        Clock {
            metric,
            cycle: 1,
            target_seconds: 3600,
            started_at: at,
            elapsed_ms: 0,
            running_since: Some(at),
            due_at: Some(at + chrono::Duration::hours(1)),
            warn_at: Some(at + chrono::Duration::minutes(45)),
            warned: false,
            breached: false,
            stopped_at: None,
            met: None,
        }
    }

    #[test]
    fn the_summary_is_the_worst_active_clock_and_the_nearest_deadline() {
        let mut sla = TicketSla::new(AppliedPolicy::default_policy());
        let mut first = clock(SlaMetric::FirstResponse);
        first.stopped_at = first.running_since;
        first.running_since = None;
        first.met = Some(false);
        first.breached = true;
        let mut resolution = clock(SlaMetric::Resolution);
        resolution.warned = true;
        sla.clocks.insert(SlaMetric::FirstResponse, first);
        sla.clocks.insert(SlaMetric::Resolution, resolution.clone());
        let summary = summary(Some(&sla));
        assert_eq!(summary.state, Some(ClockState::AtRisk));
        assert!(summary.breached);
        assert_eq!(summary.due_at, resolution.due_at);
        let rows = clock_rows(Uuid::nil(), &sla);
        assert_eq!(
            rows[0].next_check_at, None,
            "a stopped clock needs no checking"
        );
        assert_eq!(
            rows[1].next_check_at, resolution.due_at,
            "warned: the deadline is next"
        );
    }
}
