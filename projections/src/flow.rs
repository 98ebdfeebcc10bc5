//! The flow of tickets day by day (`ticket_flow_days`): how many were opened, finished
//! (resolved or closed from an unfinished status) and reopened on each UTC day. The backlog at
//! the end of a day is the running sum of opened − finished + reopened up to it, so the
//! dashboard's 30-day backlog and its created-vs-resolved chart are one read of at most a few
//! thousand small rows, however many tickets there are.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use docket_domain::ticket::TicketEvent;
use sqlx::{FromRow, PgConnection, PgExecutor};

use crate::fold::decode;
use crate::log::RecordedEvent;
use crate::runtime::{Projection, ProjectionError};

/// What one day added to the flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayFlow {
    pub opened: i64,
    pub finished: i64,
    pub reopened: i64,
}

impl DayFlow {
    /// How the day moved the backlog.
    pub fn net(&self) -> i64 {
        self.opened - self.finished + self.reopened
    }
}

/// What a ticket event adds to its day's flow; most events add nothing.
pub fn flow_of(event: &TicketEvent) -> Option<(DateTime<Utc>, DayFlow)> {
    match event {
        TicketEvent::TicketCreated { occurred_at, .. } => Some((
            *occurred_at,
            DayFlow {
                opened: 1,
                ..DayFlow::default()
            },
        )),
        TicketEvent::TicketStatusChanged {
            from,
            to,
            occurred_at,
            ..
        } => match (from.is_finished(), to.is_finished()) {
            (false, true) => Some((
                *occurred_at,
                DayFlow {
                    finished: 1,
                    ..DayFlow::default()
                },
            )),
            (true, false) => Some((
                *occurred_at,
                DayFlow {
                    reopened: 1,
                    ..DayFlow::default()
                },
            )),
            _ => None,
        },
        _ => None,
    }
}

/// The event types that can move the flow: the others are not decoded at all.
const FLOWING: [&str; 2] = ["TicketCreated", "TicketStatusChanged"];

/// The days a batch moved, summed.
fn batch_flow(events: &[RecordedEvent]) -> Result<BTreeMap<NaiveDate, DayFlow>, ProjectionError> {
    let mut days: BTreeMap<NaiveDate, DayFlow> = BTreeMap::new();
    for event in events {
        // An event of a version this build does not know stops the projector here, as it
        // stops every other; of the rest, only the types that can move the flow are decoded.
        if event.event_version != "1" {
            return Err(ProjectionError::unapplicable(
                event,
                format!("unknown event_version {}", event.event_version),
            ));
        }
        if !FLOWING.contains(&event.event_type.as_str()) {
            continue;
        }
        let decoded: TicketEvent = decode(event)?;
        if let Some((at, flow)) = flow_of(&decoded) {
            let day = days.entry(at.date_naive()).or_default();
            day.opened += flow.opened;
            day.finished += flow.finished;
            day.reopened += flow.reopened;
        }
    }
    Ok(days)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FlowProjection;

impl Projection for FlowProjection {
    const NAME: &'static str = "ticket_flow";
    const METADATA: crate::log::Metadata = crate::log::Metadata::Skip;
    const AGGREGATE_TYPES: &'static [&'static str] = &["ticket"];
    type Rebuild = ();
    const TABLES: &'static [&'static str] = &["ticket_flow_days"];

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let days = batch_flow(events)?;
        if days.is_empty() {
            return Ok(());
        }
        let dates: Vec<NaiveDate> = days.keys().copied().collect();
        let opened: Vec<i64> = days.values().map(|d| d.opened).collect();
        let finished: Vec<i64> = days.values().map(|d| d.finished).collect();
        let reopened: Vec<i64> = days.values().map(|d| d.reopened).collect();
        // The batch holds the projector's checkpoint, so each event is added exactly once.
        sqlx::query(
            "INSERT INTO ticket_flow_days (day, opened, finished, reopened)
             SELECT * FROM unnest($1::date[], $2::bigint[], $3::bigint[], $4::bigint[])
             ON CONFLICT (day) DO UPDATE SET
                 opened = ticket_flow_days.opened + EXCLUDED.opened,
                 finished = ticket_flow_days.finished + EXCLUDED.finished,
                 reopened = ticket_flow_days.reopened + EXCLUDED.reopened",
        )
        .bind(&dates)
        .bind(&opened)
        .bind(&finished)
        .bind(&reopened)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// One day of the flow, with the backlog left at its end.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FlowDay {
    pub day: NaiveDate,
    pub opened: i64,
    pub finished: i64,
    pub reopened: i64,
    /// Unfinished tickets at the end of the day.
    pub backlog: i64,
}

/// Every day from `first` to `last` (inclusive, UTC), quiet days included with zeros, each
/// with the backlog at its end.
pub async fn days<'e, E: PgExecutor<'e>>(
    db: E,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<FlowDay>, sqlx::Error> {
    sqlx::query_as(
        "WITH running AS (
             SELECT day, opened, finished, reopened,
                    sum(opened - finished + reopened) OVER (ORDER BY day) AS backlog
               FROM ticket_flow_days WHERE day <= $2),
         before AS (
             SELECT coalesce((SELECT backlog FROM running WHERE day < $1
                               ORDER BY day DESC LIMIT 1), 0) AS backlog)
         SELECT d.day::date AS day,
                coalesce(r.opened, 0)::bigint AS opened,
                coalesce(r.finished, 0)::bigint AS finished,
                coalesce(r.reopened, 0)::bigint AS reopened,
                coalesce((SELECT r2.backlog FROM running r2 WHERE r2.day <= d.day
                           ORDER BY r2.day DESC LIMIT 1),
                         (SELECT backlog FROM before))::bigint AS backlog
           FROM generate_series($1::date, $2::date, interval '1 day') AS d(day)
           LEFT JOIN running r ON r.day = d.day::date
          ORDER BY d.day",
    )
    .bind(first)
    .bind(last)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_domain::TicketStatus;

    fn status_change(from: TicketStatus, to: TicketStatus) -> TicketEvent {
        TicketEvent::TicketStatusChanged {
            from,
            to,
            comment: None,
            changed_by: docket_domain::values::Actor {
                user_id: docket_domain::UserId(uuid::Uuid::nil()),
                role: docket_domain::Role::Agent,
            },
            occurred_at: Utc::now(),
        }
    }

    #[test]
    fn finishing_and_reopening_move_the_backlog_and_moves_among_finished_do_not() {
        use TicketStatus::*;
        let flow = |from, to| flow_of(&status_change(from, to)).map(|(_, f)| f);
        assert_eq!(flow(Open, Resolved).map(|f| f.net()), Some(-1));
        assert_eq!(flow(Pending, Closed).map(|f| f.finished), Some(1));
        assert_eq!(flow(Resolved, Open).map(|f| f.net()), Some(1));
        assert_eq!(flow(Resolved, Closed), None, "still finished");
        assert_eq!(flow(Open, Pending), None, "still unfinished");
    }
}
