//! SLA loads: the backfill of tickets that predate SLA tracking, a storm of deadlines falling in
//! the same minute (lateness of the breach events, and the scheduler's CPU while it waits),
//! and what-if replay over the whole log.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use docket_domain::sla::{AppliedPolicy, MetricTargets, PriorityTargets, SlaCatalog};
use docket_domain::ticket::{
    CheckSlaDeadlines, OpenTicket, Ticket, TicketCommand, TicketEvent, UserStanding,
};
use docket_domain::values::{
    Actor, Description, Priority, Role, Subject, Tags, TicketId, TicketNumber, UserId,
};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{Figure, percentile};

/// Process CPU time (user + system) in seconds, of this process or of every PostgreSQL process.
fn cpu_seconds(pids: &[u32]) -> f64 {
    // Clock ticks per second: 100 on every Linux this runs on (`getconf CLK_TCK`).
    const TICKS: f64 = 100.0;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // The command name may hold spaces; fields are counted after its closing paren.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some((user + system) / TICKS)
        })
        .sum()
}

fn postgres_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim().starts_with("postgres"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// CPU used over `window` as a percentage of one core: (this process, PostgreSQL).
async fn idle_cpu(window: Duration) -> (f64, f64) {
    let me = [std::process::id()];
    let postgres = postgres_pids();
    let (own, pg) = (cpu_seconds(&me), cpu_seconds(&postgres));
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = started.elapsed().as_secs_f64();
    (
        (cpu_seconds(&me) - own) / elapsed * 100.0,
        (cpu_seconds(&postgres) - pg) / elapsed * 100.0,
    )
}

/// Waits until every open ticket has an SLA and no clock is due: what a server does by itself
/// after an upgrade to a log whose tickets predate SLA tracking. Returns the tickets it covered.
pub async fn backfill_settles(pool: &PgPool, timeout: Duration) -> anyhow::Result<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let (untracked, due): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM tickets_view
                      WHERE sla IS NULL AND status NOT IN ('resolved', 'closed')),
                    (SELECT count(*) FROM sla_clocks_view WHERE next_check_at <= now())",
        )
        .fetch_one(pool)
        .await?;
        if untracked == 0 && due == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the SLA backfill did not settle: {untracked} tickets without SLA, {due} clocks due"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'SlaPolicyApplied' AND metadata ->> 'user_agent' LIKE '%sla-policy'",
    )
    .fetch_one(pool)
    .await?)
}

/// What-if over the whole log (people's events plus whatever the server recorded), against a
/// plain read of the same rows.
pub async fn what_if(url: &str, pool: &PgPool, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let started = Instant::now();
    let (rows, bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(length(payload::text))::bigint FROM
           (SELECT payload FROM events WHERE aggregate_type = 'ticket' ORDER BY global_position) e",
    )
    .fetch_one(pool)
    .await?;
    let read_seconds = started.elapsed().as_secs_f64();
    let _ = bytes;

    let targets = |first: u64| json!({"first_response": first, "resolution": first * 6, "escalation": first * 3});
    let candidate = json!([{
        "name": "Twice as fast",
        "position": 1,
        "targets": {"critical": targets(1800), "high": targets(7200),
                    "medium": targets(14400), "low": targets(43200)}
    }]);
    let file = std::env::temp_dir().join(format!("docket-bench-candidate-{}.json", Uuid::now_v7()));
    std::fs::write(&file, candidate.to_string())?;
    let file_arg = file.to_string_lossy().to_string();
    let cli = <docket_replay::Cli as clap::Parser>::try_parse_from([
        "docket-replay",
        "--database-url",
        url,
        "what-if-sla",
        "--policies",
        &file_arg,
        "--json",
    ])?;
    let mut out = Vec::new();
    let started = Instant::now();
    docket_replay::run(cli, &mut out).await?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    let report: serde_json::Value = serde_json::from_slice(&out)?;
    let events = report["events_read"].as_f64().context("no events_read")?;
    let per_million = seconds / events * 1_000_000.0;
    let label = "what-if SLA replay (docket-replay what-if-sla, whole log)";
    figures.push(
        Figure::new(label, "events re-lived", events / seconds, "events/s")
            .baseline("reading the same rows in order", rows as f64 / read_seconds),
    );
    figures.push(
        Figure::new(label, "time per 1,000,000 events", per_million, "s")
            .target("< 30 s", per_million < 30.0),
    );
    figures.push(Figure::new(
        label,
        "tickets whose outcome flips",
        report["flipped_tickets"].as_f64().unwrap_or(0.0),
        "tickets",
    ));
    Ok(())
}

/// The log of `count` open tickets whose first-response deadlines are spread over the minute
/// starting at `window_start`, each already warned (so only the breaches remain), written as
/// the domain decides them.
async fn write_due_tickets(
    pool: &PgPool,
    count: i64,
    first_number: i64,
    window_start: DateTime<Utc>,
    spread: chrono::Duration,
) -> anyhow::Result<i64> {
    let customer = Actor::new(UserId(Uuid::now_v7()), Role::Customer);
    let far = 30 * 24 * 3600;
    let targets = MetricTargets::new(3_600, None, far, far);
    let mut policy = AppliedPolicy::default_policy();
    policy.name = "Deadline storm".to_string();
    policy.policy_id = Uuid::now_v7();
    policy.targets = PriorityTargets {
        critical: targets,
        high: targets,
        medium: targets,
        low: targets,
    };
    let catalog = SlaCatalog::new(vec![policy]);
    let subject = Subject::parse("Deadline storm").map_err(|e| anyhow::anyhow!("{e}"))?;
    let description = Description::parse("Due this minute").map_err(|e| anyhow::anyhow!("{e}"))?;
    let tags = Tags::parse::<&str>(&[]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let metadata = json!({"actor_role": "customer", "correlation_id": "bench-deadline-storm"});
    let mut written = 0i64;
    let mut columns = Columns::default();
    for n in 0..count {
        let offset = spread.num_milliseconds() * n / count.max(1);
        let due = window_start + chrono::Duration::milliseconds(offset);
        let opened = due - chrono::Duration::seconds(3_600);
        let id = Uuid::now_v7();
        let mut ticket = Ticket::default();
        let mut events = Vec::new();
        for command in [
            TicketCommand::Open(OpenTicket {
                ticket_id: TicketId(id),
                number: TicketNumber(first_number + n),
                customer: UserStanding {
                    user_id: customer.user_id,
                    role: Role::Customer,
                    active: true,
                },
                subject: subject.clone(),
                description: description.clone(),
                priority: Priority::High,
                category: None,
                tags: tags.clone(),
                sla: catalog.clone(),
                actor: customer,
                at: opened,
            }),
            // Warned at 75 %: only the breach is left for the minute under test.
            TicketCommand::CheckSlaDeadlines(CheckSlaDeadlines {
                at: opened + chrono::Duration::seconds(2_800),
            }),
        ] {
            for event in ticket
                .decide(&command)
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                ticket.apply(event.clone());
                events.push(event);
            }
        }
        for (sequence, event) in events.iter().enumerate() {
            columns.push(&id.to_string(), sequence as i64 + 1, event, &metadata)?;
        }
        if columns.sequences.len() >= 30_000 {
            written += columns.insert(pool).await?;
        }
    }
    written += columns.insert(pool).await?;
    Ok(written)
}

#[derive(Default)]
struct Columns {
    ids: Vec<String>,
    sequences: Vec<i64>,
    types: Vec<String>,
    payloads: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
}

impl Columns {
    fn push(
        &mut self,
        id: &str,
        sequence: i64,
        event: &TicketEvent,
        metadata: &serde_json::Value,
    ) -> anyhow::Result<()> {
        self.ids.push(id.to_string());
        self.sequences.push(sequence);
        self.types.push(event.event_type());
        self.payloads.push(serde_json::to_value(event)?);
        self.metadata.push(metadata.clone());
        Ok(())
    }

    async fn insert(&mut self, pool: &PgPool) -> anyhow::Result<i64> {
        if self.ids.is_empty() {
            return Ok(0);
        }
        let rows = sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata)
             SELECT 'ticket', id, seq, kind, '1', payload, metadata
               FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::jsonb[], $5::jsonb[])
                    AS t(id, seq, kind, payload, metadata)",
        )
        .bind(&self.ids)
        .bind(&self.sequences)
        .bind(&self.types)
        .bind(&self.payloads)
        .bind(&self.metadata)
        .execute(pool)
        .await?
        .rows_affected();
        *self = Columns::default();
        Ok(rows as i64)
    }
}

pub struct StormSizes {
    pub tickets: i64,
    /// From the start of the run to the first deadline: time to write the log, let the
    /// projector apply it, and measure the idle scheduler.
    pub lead: Duration,
    pub idle_window: Duration,
}

/// A server on a fresh database; `tickets` open tickets whose deadlines fall in the same
/// minute. Lateness of each `SlaBreached` (recorded − due) against a lone deadline's.
pub async fn deadline_storm(
    url: &str,
    pool: &PgPool,
    sizes: &StormSizes,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let (stop, server) = crate::start_server(url).await?;
    // The baseline: a server with no clocks at all, idle.
    let (empty_own, empty_pg) = idle_cpu(sizes.idle_window).await;

    let window_start = Utc::now() + chrono::Duration::from_std(sizes.lead)?;
    eprintln!(
        "SLA deadline storm: {} tickets due between {} and a minute later…",
        sizes.tickets,
        window_start.format("%H:%M:%S")
    );
    // One lone deadline ten seconds before the storm: the baseline for lateness.
    write_due_tickets(
        pool,
        1,
        1,
        window_start - chrono::Duration::seconds(10),
        chrono::Duration::zero(),
    )
    .await?;
    let written = write_due_tickets(
        pool,
        sizes.tickets,
        2,
        window_start,
        chrono::Duration::seconds(60),
    )
    .await?;
    eprintln!("  wrote {written} events; waiting for the projector…");
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sla_clocks_view WHERE metric = 'first_response' AND next_check_at IS NOT NULL",
        )
        .fetch_one(pool)
        .await?;
        // The workforce model reads the same tickets; idle means it is done too.
        let routed: i64 = sqlx::query_scalar("SELECT count(*) FROM routing_tickets_view")
            .fetch_one(pool)
            .await?;
        if (running > sizes.tickets && routed > sizes.tickets) || Utc::now() > window_start {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = (window_start - Utc::now() - chrono::Duration::seconds(12))
        .to_std()
        .unwrap_or_default();
    let window = sizes.idle_window.min(left);
    if window >= Duration::from_secs(1) {
        let (own, pg) = idle_cpu(window).await;
        let label = format!(
            "SLA scheduler idle with {} running clocks, none due",
            sizes.tickets + 1
        );
        figures.push(
            Figure::new(&label, "CPU of the Docket process", own, "% of a core")
                .baseline("the same server with no clocks", empty_own)
                .target("< 2 % of a core", own < 2.0),
        );
        figures.push(
            Figure::new(&label, "CPU of PostgreSQL", pg, "% of a core")
                .baseline("the same server with no clocks", empty_pg),
        );
    } else {
        eprintln!("  no time left to measure the idle scheduler before the storm");
    }

    let give_up = window_start + chrono::Duration::seconds(60 + 300);
    loop {
        // Asked of the clocks' projection through its index, not of the log: counting the
        // log's breaches by type is a parallel scan of every event (2 s at 800,000 events), and
        // polled every half second it took cores from the storm it measured (p99 lateness
        // 38 ms to 3.2 s from run to run). The figures below still come from the log.
        let breached: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sla_clocks_view
              WHERE state = 'breached' AND metric = 'first_response'",
        )
        .fetch_one(pool)
        .await?;
        if breached > sizes.tickets || Utc::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let rows: Vec<(i64, f64, f64)> = sqlx::query_as(
        "SELECT (payload -> 'SlaBreached' ->> 'due_at' IS NOT NULL)::int::bigint,
                extract(epoch FROM recorded_at - (payload -> 'SlaBreached' ->> 'due_at')::timestamptz)::float8 * 1000,
                extract(epoch FROM (payload -> 'SlaBreached' ->> 'breached_at')::timestamptz
                                   - (payload -> 'SlaBreached' ->> 'due_at')::timestamptz)::float8 * 1000
           FROM events WHERE event_type = 'SlaBreached' ORDER BY global_position",
    )
    .fetch_all(pool)
    .await?;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    anyhow::ensure!(!rows.is_empty(), "no breach was recorded");
    let lone = rows[0].1;
    let mut recorded: Vec<f64> = rows[1..].iter().map(|r| r.1).collect();
    let mut decided: Vec<f64> = rows[1..].iter().map(|r| r.2).collect();
    recorded.sort_by(f64::total_cmp);
    decided.sort_by(f64::total_cmp);
    let label = format!(
        "SLA deadline storm: {} breaches due within one minute",
        sizes.tickets
    );
    figures.push(Figure::new(
        &label,
        "breaches recorded",
        recorded.len() as f64,
        "events",
    ));
    figures.push(
        Figure::new(
            &label,
            "p50 lateness (recorded − due)",
            percentile(&recorded, 50.0),
            "ms",
        )
        .baseline("a lone deadline", lone),
    );
    let p99 = percentile(&recorded, 99.0);
    figures.push(
        Figure::new(&label, "p99 lateness (recorded − due)", p99, "ms")
            .baseline("a lone deadline", lone)
            .target(
                "<= 1,000 ms",
                p99 <= 1_000.0 && recorded.len() as i64 == sizes.tickets,
            ),
    );
    figures.push(Figure::new(
        &label,
        "max lateness (recorded − due)",
        recorded.last().copied().unwrap_or(f64::NAN),
        "ms",
    ));
    figures.push(Figure::new(
        &label,
        "p99 lateness of the decision (breached_at − due)",
        percentile(&decided, 99.0),
        "ms",
    ));
    Ok(())
}
